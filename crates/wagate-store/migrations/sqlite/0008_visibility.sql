-- SQLite has one writer at a time, so sequences commit in order and every committed row is
-- visible to the feed; PostgreSQL's 0008 adds the transaction ids it needs for that. Kept so that
-- both backends have the same migration numbers.
SELECT 1;

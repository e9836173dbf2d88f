-- SQLite has one writer at a time: sequences are taken in commit order already. Kept so that both
-- backends have the same migration numbers.
SELECT 1;

-- SQLite serves one gateway: its journal is processed in order behind a cursor, with no claims.
-- Kept so that both backends have the same migration numbers.
SELECT 1;

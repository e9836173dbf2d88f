-- One gateway per SQLite file: its wake-ups stay in the process. Kept so that both backends have
-- the same migration numbers.
SELECT 1;

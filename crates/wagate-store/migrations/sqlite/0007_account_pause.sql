-- An account whose sending is paused (Meta answered 190, 200, 368 or 131031, or someone paused it
-- through the API): why, as JSON; NULL when it sends. Kept across restarts.
ALTER TABLE accounts ADD COLUMN paused TEXT;

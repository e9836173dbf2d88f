-- The contact an event is about (the wa_id or user id of `from` / `recipient_id`), so the log
-- can be read per contact without parsing payloads. Older events have none. Not indexed: an
-- index on it cost 5 % of the inbound path's CPU (bench/ingest); reading a contact's events
-- goes through the log by sequence.
ALTER TABLE events ADD COLUMN contact TEXT;

-- The contact an event is about (the wa_id or user id of `from` / `recipient_id`), so the log
-- can be read per contact without reading every payload. Older events have none.
ALTER TABLE events ADD COLUMN contact TEXT;
CREATE INDEX events_contact_seq ON events(contact, seq) WHERE contact IS NOT NULL;

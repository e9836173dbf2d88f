-- A gap-free feed: readers of events (and of the journal, for `meta` hooks) by sequence only see
-- rows whose transaction ended before every transaction still running began
-- (`txid < pg_snapshot_xmin(pg_current_snapshot())`). A writer that took a lower sequence but
-- commits later can then never be passed over by a reader's cursor.
ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE webhook_journal ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_txid ON events(txid);

-- Activity per account and hour, counted as it happens (messages made, statuses recorded), so the
-- console's last 24 hours read a few rows rather than the day's messages. `shard` spreads the
-- counting of one busy account over several rows (concurrent sends do not queue on one row).
CREATE TABLE activity_hours (
    account_id TEXT NOT NULL,
    hour       INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    shard      INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (hour, account_id, kind, shard)
);
-- What happened before the counters existed: the last day, counted once.
INSERT INTO activity_hours (account_id, hour, kind, shard, count)
SELECT account_id, created_at / 3600000, CASE WHEN direction = 'inbound' THEN 'received' ELSE 'sent' END, 0, COUNT(*)
FROM messages WHERE created_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 90000) * 1000
GROUP BY 1, 2, 3;
INSERT INTO activity_hours (account_id, hour, kind, shard, count)
SELECT m.account_id, s.recorded_at / 3600000, s.status, 0, COUNT(*)
FROM message_statuses s JOIN messages m ON m.id = s.message_id
WHERE s.recorded_at >= (CAST(strftime('%s', 'now') AS INTEGER) - 90000) * 1000
GROUP BY 1, 2, 3;
-- Where counting the event log's activity stands (statuses and inbound messages are counted
-- from the log, off the processing path; what was before the counters is counted above).
CREATE TABLE counter_cursors (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO counter_cursors (name, position) SELECT 'activity', COALESCE(MAX(seq), 0) FROM events;

-- The day's failures, found without reading the day's messages.
CREATE INDEX messages_failed ON messages(id) WHERE status = 'failed';

-- The inbox: conversations move up on outbound messages too, and count what is unread.
ALTER TABLE contacts ADD COLUMN last_outbound_at INTEGER;
ALTER TABLE contacts ADD COLUMN unread INTEGER NOT NULL DEFAULT 0;

-- Each number's messaging limit as Meta last said (TIER_250 … TIER_UNLIMITED).
ALTER TABLE phone_numbers ADD COLUMN messaging_limit TEXT;

-- Why Meta rejected (or paused) a template, as its status webhook or its list said.
ALTER TABLE templates ADD COLUMN rejected_reason TEXT;

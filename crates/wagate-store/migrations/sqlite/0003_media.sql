-- Inbound media: fetched from Meta right after the webhook is processed (Meta's URLs expire),
-- with retries; the message and its event never wait for it.
CREATE TABLE media (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    meta_media_id   TEXT NOT NULL,
    mime_type       TEXT,
    sha256          TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    content_hash    TEXT,
    size            INTEGER,
    error           TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX media_due ON media(state, next_attempt_at);

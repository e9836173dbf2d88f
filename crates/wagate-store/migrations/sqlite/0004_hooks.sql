-- Hooks: the user's services that receive events. A hook reads the event log from its cursor
-- (fan-out), and each event it takes becomes a delivery, tried until it succeeds or the retry
-- schedule runs out. Every attempt is kept.
CREATE TABLE hooks (
    id                    TEXT PRIMARY KEY,
    name                  TEXT UNIQUE,
    url                   TEXT NOT NULL,
    description           TEXT,
    format                TEXT NOT NULL,
    events                TEXT NOT NULL,
    accounts              TEXT NOT NULL,
    contacts              TEXT NOT NULL,
    headers               TEXT NOT NULL,
    media                 TEXT NOT NULL,
    ordered               BOOLEAN NOT NULL,
    enabled               BOOLEAN NOT NULL,
    disabled_reason       TEXT,
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until INTEGER,
    cursor_seq            INTEGER NOT NULL,
    source                TEXT NOT NULL,
    failing_since         INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE hook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_id         TEXT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_seq       INTEGER NOT NULL,
    -- The contact the event is about: an ordered hook delivers one at a time per contact.
    contact         TEXT,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_token     INTEGER,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX hook_deliveries_due ON hook_deliveries(state, next_attempt_at);
CREATE INDEX hook_deliveries_event ON hook_deliveries(event_id);
CREATE INDEX hook_deliveries_hook ON hook_deliveries(hook_id, state);
CREATE INDEX hook_deliveries_contact ON hook_deliveries(hook_id, contact, state, id);

CREATE TABLE hook_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL,
    hook_id          TEXT NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL,
    attempted_at     INTEGER NOT NULL,
    succeeded        BOOLEAN NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    latency_ms       INTEGER NOT NULL,
    response_excerpt TEXT,
    -- A two-way bot's answer: the message sent as the reply, or why it was refused.
    reply_message_id TEXT,
    reply_error      TEXT
);
CREATE INDEX hook_attempts_hook ON hook_attempts(hook_id, id);
CREATE INDEX hook_attempts_event ON hook_attempts(event_id);

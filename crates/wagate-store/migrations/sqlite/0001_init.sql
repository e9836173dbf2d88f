-- wagate's first schema (SQLite). Times are unix milliseconds; JSON is stored as TEXT.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    waba_id     TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE phone_numbers (
    phone_number_id      TEXT PRIMARY KEY,
    account_id           TEXT NOT NULL REFERENCES accounts(id),
    display_phone_number TEXT
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    account_id  TEXT REFERENCES accounts(id),
    scopes      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- How far processing has got in the webhook journal (a separate file, wagate.journal.db): the
-- highest journal id whose updates are applied. It moves in the same transaction as the results,
-- so after a crash processing resumes exactly where its committed work ends.
CREATE TABLE journal_progress (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO journal_progress (id, last_id) VALUES (1, 0);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    phone_number_id TEXT NOT NULL,
    direction       TEXT NOT NULL,
    wamid           TEXT UNIQUE,
    wa_id           TEXT,
    message_type    TEXT NOT NULL,
    status          TEXT NOT NULL,
    content         TEXT NOT NULL,
    error           TEXT,
    pricing         TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX messages_account_created ON messages(account_id, id);
CREATE INDEX messages_contact ON messages(account_id, wa_id, id);

-- Every distinct status Meta reported for a wamid (the timeline). message_id is NULL while the
-- status arrived before the send recorded its wamid.
CREATE TABLE message_statuses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    wamid       TEXT NOT NULL,
    message_id  TEXT,
    status      TEXT NOT NULL,
    occurred_at INTEGER,
    recorded_at INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    UNIQUE (wamid, status)
);
CREATE INDEX message_statuses_message ON message_statuses(message_id);

CREATE TABLE contacts (
    account_id        TEXT NOT NULL,
    phone_number_id   TEXT NOT NULL,
    wa_id             TEXT NOT NULL,
    name              TEXT,
    last_inbound_at   INTEGER,
    window_expires_at INTEGER,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (account_id, phone_number_id, wa_id)
);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    account_id  TEXT,
    event_type  TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    raw         TEXT NOT NULL
);
CREATE INDEX events_type_seq ON events(event_type, seq);

-- The durable send queue: a job is claimed with a lease; only the lease owner may finish it.
CREATE TABLE send_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT NOT NULL UNIQUE REFERENCES messages(id),
    account_id      TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    run_at          INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);
CREATE INDEX send_jobs_ready ON send_jobs(state, run_at);

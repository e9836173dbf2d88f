-- The webhook journal (SQLite): every webhook POST body, committed before Meta gets its 200.
-- It lives in its own file so that acknowledging webhooks never waits for processing, which
-- writes to the main database. Rows are only appended; processing progress is kept in the main
-- database (journal_progress).

CREATE TABLE webhook_journal (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  INTEGER NOT NULL,
    account_id   TEXT,
    body         BLOB NOT NULL,
    state        TEXT NOT NULL,
    processed_at INTEGER,
    error        TEXT
);
CREATE INDEX webhook_journal_pending ON webhook_journal(state, id);


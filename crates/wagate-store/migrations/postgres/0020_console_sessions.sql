-- Console sign-ins, kept in the database so that every gateway sharing it knows them. The id is
-- kept as its SHA-256 (the cookie holds the id), the API key as its hash.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

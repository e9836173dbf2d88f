-- "Connect WhatsApp": each dialog started is a state, used once, within ten minutes; the
-- account it makes belongs to the tenant that started it.
CREATE TABLE connect_states (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    redirect    TEXT NOT NULL,
    pin         TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
ALTER TABLE accounts ADD COLUMN tenant TEXT;

-- "Connect WhatsApp": each dialog started is a state, used once, within ten minutes; the
-- account it makes belongs to the tenant that started it.
CREATE TABLE connect_states (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    redirect    TEXT NOT NULL,
    pin         TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
ALTER TABLE accounts ADD COLUMN tenant TEXT;

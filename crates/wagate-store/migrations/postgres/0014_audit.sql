-- The audit log: administrative actions (keys, accounts, hooks, secrets, journal), who took
-- them (the API key, or the command line), from where, and what they changed. Never a secret.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    actor_name  TEXT,
    remote      TEXT,
    action      TEXT NOT NULL,
    target      TEXT,
    account_id  TEXT,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_account ON audit_log (account_id, id);

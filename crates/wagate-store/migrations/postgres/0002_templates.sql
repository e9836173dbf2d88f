-- The template catalog per account, synced from Meta and kept current by template webhooks.
CREATE TABLE templates (
    account_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    language         TEXT NOT NULL,
    template_id      TEXT,
    status           TEXT NOT NULL,
    category         TEXT,
    parameter_format TEXT,
    components       TEXT,
    quality_score    TEXT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (account_id, name, language)
);
CREATE INDEX templates_by_id ON templates(account_id, template_id);

-- When each account's catalog was last pulled from Meta (none: never, so sends are not checked).
CREATE TABLE template_syncs (
    account_id TEXT PRIMARY KEY,
    synced_at  BIGINT NOT NULL
);

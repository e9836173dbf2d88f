-- Idempotency keys of sends (`Idempotency-Key` on POST /v1/messages), per account: the same key
-- and request give back the same message; a key is honoured for at least 24 hours.
CREATE TABLE idempotency_keys (
    account_id    TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (account_id, key)
);

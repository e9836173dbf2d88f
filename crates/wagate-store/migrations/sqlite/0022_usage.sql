-- What Meta charges, counted as the delivery's priced status is recorded (once per message):
-- per day (days since the unix epoch, UTC), account, number, category, the recipient's country,
-- pricing type and whether it is billed. `shard` spreads concurrent counting over rows.
CREATE TABLE usage_daily (
    day             INTEGER NOT NULL,
    account_id      TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    category        TEXT NOT NULL,
    market          TEXT NOT NULL,
    pricing_type    TEXT NOT NULL,
    billable        INTEGER NOT NULL,
    shard           INTEGER NOT NULL,
    messages        INTEGER NOT NULL,
    PRIMARY KEY (day, account_id, phone_number_id, category, market, pricing_type, billable, shard)
);

-- Rate cards: Meta's rates in one currency from a day on (the rows as JSON, checked on import).
CREATE TABLE rate_cards (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    currency   TEXT NOT NULL,
    effective  INTEGER NOT NULL,
    rates      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (currency, effective)
);

-- Monthly budgets of an account (`account:<id>`) or a tenant (`tenant:<name>`), and the alerts
-- already given (`2026-11:80`, …: each once a month).
CREATE TABLE budgets (
    scope      TEXT PRIMARY KEY,
    amount     TEXT NOT NULL,
    currency   TEXT NOT NULL,
    hard_stop  INTEGER NOT NULL,
    alerted    TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);

-- What Meta's own pricing analytics say, per day (read daily and on demand), to set beside the
-- estimate. `cost` is a decimal string in `currency` (the WABA's).
CREATE TABLE meta_usage_daily (
    day          INTEGER NOT NULL,
    account_id   TEXT NOT NULL,
    market       TEXT NOT NULL,
    category     TEXT NOT NULL,
    pricing_type TEXT NOT NULL,
    volume       INTEGER NOT NULL,
    cost         TEXT NOT NULL,
    currency     TEXT NOT NULL,
    fetched_at   INTEGER NOT NULL,
    PRIMARY KEY (day, account_id, market, category, pricing_type)
);

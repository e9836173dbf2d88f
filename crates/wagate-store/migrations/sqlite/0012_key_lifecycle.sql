-- API keys get an optional expiry (a rotated key's grace period ends there) and the time they
-- were last used (kept to the minute, so that a busy key does not write on every request).
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;

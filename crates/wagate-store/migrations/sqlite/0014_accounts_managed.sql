-- Accounts managed through the API live in the database with their secrets, sealed under the
-- master key (`sealed:v1:…`). Accounts from the configuration file are marked so, and keep
-- their secrets in the file. A deleted account keeps its history (deleted_at); creating an
-- account for its WABA again brings it back.
ALTER TABLE accounts ADD COLUMN managed_by TEXT NOT NULL DEFAULT 'config';
ALTER TABLE accounts ADD COLUMN access_token TEXT;
ALTER TABLE accounts ADD COLUMN app_secret TEXT;
ALTER TABLE accounts ADD COLUMN verify_token TEXT;
ALTER TABLE accounts ADD COLUMN messages_per_second INTEGER;
ALTER TABLE accounts ADD COLUMN deleted_at INTEGER;
ALTER TABLE accounts ADD COLUMN updated_at INTEGER;
-- What Meta says of each number, synced from GET /{waba}/phone_numbers.
ALTER TABLE phone_numbers ADD COLUMN verified_name TEXT;
ALTER TABLE phone_numbers ADD COLUMN quality_rating TEXT;
ALTER TABLE phone_numbers ADD COLUMN throughput TEXT;
ALTER TABLE phone_numbers ADD COLUMN name_status TEXT;
ALTER TABLE phone_numbers ADD COLUMN synced_at INTEGER;

-- Tenants: an API key and a hook may belong to one; a tenant's key sees only the accounts the
-- tenant owns (accounts.tenant), and a tenant's hook gets only their events.
ALTER TABLE api_keys ADD COLUMN tenant TEXT;
ALTER TABLE hooks ADD COLUMN tenant TEXT;

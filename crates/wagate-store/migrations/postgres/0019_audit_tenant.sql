-- The tenant an administrative action was taken for (its key's, or its account's): a tenant's
-- key reads its own actions in the audit log, including those that concern no account (a hook of
-- the tenant, a key).
ALTER TABLE audit_log ADD COLUMN tenant TEXT;

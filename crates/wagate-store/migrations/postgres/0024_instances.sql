-- Gateways register themselves and heartbeat; a claim (send job, hook delivery, media download)
-- names the gateway that holds it, so that the claims of a gateway that stopped heartbeating are
-- taken over at once instead of waiting out their leases (and webhook journal batches).
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
-- When this attempt's call to Meta started (NULL: claimed, not called). Only a job whose call
-- started can have reached Meta; one never called is requeued as soon as its owner is dead.
ALTER TABLE send_jobs ADD COLUMN called_at BIGINT;
ALTER TABLE hook_deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE media ADD COLUMN lease_owner TEXT;

-- Jobs leased before this version may have been called: they stay in doubt.
UPDATE send_jobs SET called_at = 0 WHERE state = 'leased';
ALTER TABLE webhook_journal ADD COLUMN lease_owner TEXT;

-- Several gateways share the journal instead of competing for it: each claims a batch of
-- pending entries (FOR UPDATE SKIP LOCKED) under a lease ('processing' until lease_until), and a
-- lease that runs out (the gateway died) makes its entries claimable again.
ALTER TABLE webhook_journal ADD COLUMN lease_until BIGINT;

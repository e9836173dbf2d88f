-- Deliveries are looked up by state only while pending (to claim them, and for an ordered hook's
-- contact) or failed (replay of the failed ones): partial indexes on just those rows. A delivery
-- that succeeds then leaves them with one delete each, instead of moving inside three indexes
-- over every delivery ever made; a large share of each delivery's writes went to that.
DROP INDEX hook_deliveries_due;
DROP INDEX hook_deliveries_contact;
DROP INDEX hook_deliveries_hook;
CREATE INDEX hook_deliveries_hook ON hook_deliveries(hook_id);
CREATE INDEX hook_deliveries_pending ON hook_deliveries(hook_id, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX hook_deliveries_pending_contact ON hook_deliveries(hook_id, contact, id)
    WHERE state = 'pending' AND contact IS NOT NULL;
CREATE INDEX hook_deliveries_failed ON hook_deliveries(hook_id, created_at) WHERE state = 'failed';

-- Sends that may have reached Meta without their answer being recorded (the gateway died during
-- the call) are resolved from Meta's status webhooks: each send carries
-- `biz_opaque_callback_data` (the caller's, or else the message id), which Meta returns in every
-- status of that message.
ALTER TABLE messages ADD COLUMN callback_data TEXT;
CREATE INDEX messages_callback_data ON messages(callback_data) WHERE wamid IS NULL;
ALTER TABLE message_statuses ADD COLUMN callback_data TEXT;
CREATE INDEX message_statuses_orphans ON message_statuses(callback_data) WHERE message_id IS NULL;
-- Interactive sends (0) go before bulk ones (1) from POST /v1/messages/batch and `wagate send`.
ALTER TABLE send_jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
CREATE INDEX send_jobs_due ON send_jobs(state, priority, run_at);

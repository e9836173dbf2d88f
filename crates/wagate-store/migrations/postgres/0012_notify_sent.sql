-- `?wait=accepted` across gateways: the gateway holding the request hears at once that another
-- one's send left `queued` (Meta took it, refused it, or it failed), with the message's id.
CREATE FUNCTION wagate_notify_sent() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('wagate_sent', NEW.id);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER messages_sent_notify AFTER UPDATE OF status, error ON messages
    FOR EACH ROW
    WHEN (OLD.direction = 'outbound' AND OLD.status = 'queued'
          AND (NEW.status <> 'queued' OR NEW.error IS DISTINCT FROM OLD.error))
    EXECUTE FUNCTION wagate_notify_sent();

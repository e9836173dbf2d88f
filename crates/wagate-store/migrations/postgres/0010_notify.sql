-- Wake-ups across gateways: a commit that adds journal entries, send jobs, events or media
-- downloads notifies every gateway listening (LISTEN wagate_journal, …), which looks at once
-- instead of at its next poll.
CREATE FUNCTION wagate_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER webhook_journal_notify AFTER INSERT ON webhook_journal
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_notify('wagate_journal');
CREATE TRIGGER send_jobs_notify AFTER INSERT ON send_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_notify('wagate_jobs');
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_notify('wagate_events');
CREATE TRIGGER media_notify AFTER INSERT ON media
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_notify('wagate_media');

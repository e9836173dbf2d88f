-- A gap-free feed: event sequences (and journal ids, read by `meta` hooks) are taken in commit
-- order. A statement that inserts into these tables first takes a transaction-level advisory lock
-- per table, held until its transaction ends, so a writer can only take a sequence after every
-- writer before it has committed. A reader following the feed by cursor therefore never passes
-- over a row that commits later. (A transaction-id horizon is not enough: a transaction's id can
-- be older than its sequence.)
CREATE FUNCTION wagate_feed_order() RETURNS trigger AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME));
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER events_feed_order BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_feed_order();
CREATE TRIGGER webhook_journal_feed_order BEFORE INSERT ON webhook_journal
    FOR EACH STATEMENT EXECUTE FUNCTION wagate_feed_order();

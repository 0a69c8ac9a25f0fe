-- Whether customer cid has an Auth Service event not yet delivered, as
-- committed when it is asked. A status change asks it once it holds the
-- customer's row lock, to know whether it may send its own event at once
-- or must leave it behind an earlier one. It has to see the event of a
-- change it waited for: the calling statement's snapshot, taken before
-- that wait, does not, and the change sent its event ahead of the one it
-- waited for. VOLATILE (and PL/pgSQL, never inlined): its query takes a
-- snapshot of its own when it runs.
CREATE FUNCTION events_auth_pending(cid uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM events
                   WHERE customer_id = cid AND destination = 'auth'
                     AND delivered_at IS NULL AND dead_at IS NULL);
END
$$;

-- The Auth Service's status updates are deliveries of the
-- customer.status_changed event: one outbox (events) for every
-- destination, not a queue of their own. An event row is the event and
-- its delivery to one destination: 'notifications' (the Notification
-- Service, CloudEvents) or 'auth' (the Auth Service's
-- PATCH /api/auth/user/{userId}/status). A status change writes both, with
-- the same event_id, in the statement that makes the change; each
-- destination has its own leases, retries, dead letters and order per
-- customer, so a Notification Service that is down never holds back the
-- Auth Service's updates, nor the other way round. The pending rows of
-- auth_outbox move here, each keeping the Idempotency-Key it was sent
-- with (delivery_key), and auth_outbox goes.

ALTER TABLE events
    ADD COLUMN destination text NOT NULL DEFAULT 'notifications',
    -- the Idempotency-Key of a row moved from auth_outbox; NULL:
    -- customer-outbox-<id>
    ADD COLUMN delivery_key text,
    ADD CONSTRAINT events_destination
        CHECK (destination IN ('notifications', 'auth'));

-- one event, one row per destination
ALTER TABLE events DROP CONSTRAINT events_event_id_key;
ALTER TABLE events ADD CONSTRAINT events_event_id_key
    UNIQUE (event_id, destination);

DROP INDEX events_pending_idx;
CREATE INDEX events_pending_idx ON events (destination, next_attempt_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL AND NOT suppressed;
DROP INDEX events_dead_idx;
CREATE INDEX events_dead_idx ON events (destination, id)
    WHERE delivered_at IS NULL AND dead_at IS NOT NULL;
-- a customer's older pending row of the same destination
DROP INDEX events_customer_idx;
CREATE INDEX events_customer_idx ON events (customer_id, destination, id);

-- the event a status change raised: its id, shared by both destinations
-- (NULL for changes made before)
ALTER TABLE customer_status_history ADD COLUMN event_id uuid;


-- A status change's event data, the same for both destinations
CREATE FUNCTION status_event_data(cid uuid, uid text, old_status text,
    new_status text, reason text, changed_by text) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jsonb_build_object('customerId', cid,
                              'userId', uid,
                              'previousStatus', old_status,
                              'customerStatus', new_status,
                              'isActive', new_status = 'Active',
                              'reason', reason,
                              'changedBy', changed_by);


-- event_raise, now with the event's id when the caller has one
DROP FUNCTION event_raise(text, uuid, text, jsonb, text, jsonb);

CREATE FUNCTION event_raise(etype text, cid uuid, subj text, payload jsonb,
    once_key text DEFAULT NULL, prefs jsonb DEFAULT NULL,
    eid uuid DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    mkt    boolean;
BEGIN
    IF once_key IS NOT NULL THEN
        INSERT INTO event_once (key) VALUES (once_key)
            ON CONFLICT (key) DO NOTHING;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
    END IF;

    -- the customer's row lock orders a customer's events by commit (see
    -- sql/027_events.sql); the scan's events do not lock
    IF prefs IS NULL AND once_key IS NULL THEN
        SELECT preferences INTO prefs FROM customers WHERE id = cid
            FOR NO KEY UPDATE;
    ELSIF prefs IS NULL THEN
        SELECT preferences INTO prefs FROM customers WHERE id = cid;
    END IF;
    SELECT marketing INTO STRICT mkt FROM event_types WHERE type = etype;

    INSERT INTO events (event_id, type, customer_id, subject, data,
                        channels, suppressed)
    VALUES (coalesce(eid, gen_random_uuid()), etype, cid, subj,
            jsonb_build_object('customerId', cid) || payload,
            event_channels(coalesce(prefs, '{}'), mkt),
            mkt AND coalesce(prefs->'marketingOptIn', 'false') <> 'true');

    RETURN true;
END
$$;


-- customer.status_changed for the Notification Service; the statement
-- that changes the status writes the Auth Service's row of the same
-- event itself (it answers with that row's delivery)
CREATE OR REPLACE FUNCTION events_status_history() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_raise('customer.status_changed', NEW.customer_id,
        'customers/' || NEW.customer_id,
        status_event_data(NEW.customer_id,
                          (SELECT user_id FROM customers
                           WHERE id = NEW.customer_id),
                          NEW.old_status, NEW.new_status, NEW.reason,
                          NEW.changed_by),
        NULL, NULL, NEW.event_id);
    RETURN NULL;
END
$$;


-- auth_outbox's rows, in their order: the pending and dead ones with
-- their state, the delivered ones of the 30 days the events keep
INSERT INTO events (type, customer_id, subject, data, channels,
                    created_at, attempts, next_attempt_at, lease,
                    last_error, delivered_at, dead_at, destination,
                    delivery_key)
SELECT 'customer.status_changed', a.customer_id,
       'customers/' || a.customer_id,
       jsonb_build_object('customerId', a.customer_id,
                          'userId', a.user_id,
                          'isActive', a.is_active,
                          'reason', a.reason),
       '{}', a.created_at, a.attempts, a.next_attempt_at, a.lease,
       a.last_error, a.delivered_at, a.dead_at, 'auth',
       'customer-outbox-' || a.id
FROM auth_outbox a
WHERE a.delivered_at IS NULL
   OR a.delivered_at > now() - interval '30 days'
ORDER BY a.id;

DROP TABLE auth_outbox;

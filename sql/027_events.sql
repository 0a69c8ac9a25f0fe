-- Events: one outbox for everything a customer's record, vehicles,
-- documents, credit and loyalty have to tell the Notification Service.
-- Each event is a row written by a trigger in the statement that makes
-- the change (a time-based one by the periodic scan), so it exists if and
-- only if the change committed. The row is also its delivery state: the
-- periodic outbox run claims due rows with a lease of their own, in order
-- per customer, and records each outcome while it holds the lease (the
-- Auth Service's auth_outbox rows are run by the same loop). Rows are
-- kept 30 days after delivery for GET /api/events.

-- every type an event may have; a marketing one reaches a customer only
-- with preferences.marketingOptIn
CREATE TABLE event_types (
    type       text PRIMARY KEY,
    marketing  boolean NOT NULL DEFAULT false
);

INSERT INTO event_types (type, marketing) VALUES
    ('customer.created', false),
    ('customer.status_changed', false),
    ('customer.updated', false),
    ('vehicle.service_due', false),
    ('vehicle.service_overdue', false),
    ('document.expiring', false),
    ('document.expired', false),
    ('credit.alert', false),
    ('loyalty.tier_changed', true);

-- no foreign key to customers: an event is delivered even when its
-- customer has been deleted since
CREATE TABLE events (
    id               bigserial PRIMARY KEY,   -- the order, and the cursor
    event_id         uuid NOT NULL DEFAULT gen_random_uuid(),
    -- one of event_types (event_raise looks it up): no foreign key, whose
    -- check would lock the type's row in every writing transaction
    type             text NOT NULL,
    customer_id      uuid NOT NULL,
    subject          text NOT NULL,           -- "vehicles/<id>", ...
    data             jsonb NOT NULL,
    channels         text[] NOT NULL,         -- what the preferences allow
    suppressed       boolean NOT NULL DEFAULT false,  -- never sent
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    -- also a lease: whoever claims a row moves this forward first
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease            uuid,
    last_error       text,
    delivered_at     timestamptz,
    dead_at          timestamptz,

    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_data_object CHECK (jsonb_typeof(data) = 'object')
);

CREATE INDEX events_pending_idx ON events (next_attempt_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL AND NOT suppressed;
-- for the metrics' count of dead events
CREATE INDEX events_dead_idx ON events (id)
    WHERE delivered_at IS NULL AND dead_at IS NOT NULL;
CREATE INDEX events_customer_idx ON events (customer_id, id);
CREATE INDEX events_type_idx ON events (type, id);
CREATE INDEX events_created_idx ON events (created_at);

-- Time-based events are raised once per cycle: the key names the vehicle
-- and the due date and mileage, or the document and its expiry date. The
-- keys outlive the events' 30 days, so a vehicle overdue for months is
-- not raised again when its event is pruned.
CREATE TABLE event_once (
    key        text PRIMARY KEY,
    raised_at  timestamptz NOT NULL DEFAULT now()
);

-- the scan's last run: the periodic run scans at most this often
CREATE TABLE event_scan (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_at  timestamptz NOT NULL DEFAULT '-infinity'
);

INSERT INTO event_scan DEFAULT VALUES;


-- The channels a customer's preferences allow for an event of this kind:
-- communication.email/sms/push over their defaults (email on, the others
-- off), none when notifications is false, none for a marketing event
-- without marketingOptIn.
CREATE FUNCTION event_channels(prefs jsonb, marketing boolean)
    RETURNS text[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
    -- one expression, no sub-select: inlined where it is called
    RETURN CASE
        WHEN coalesce(prefs->'notifications', 'true') = 'false'
             OR (marketing AND coalesce(prefs->'marketingOptIn', 'false')
                               <> 'true')
        THEN '{}'::text[]
        ELSE array_remove(ARRAY[
            CASE WHEN coalesce(prefs->'communication'->'email', 'true')
                      = 'true' THEN 'email' END,
            CASE WHEN coalesce(prefs->'communication'->'sms', 'false')
                      = 'true' THEN 'sms' END,
            CASE WHEN coalesce(prefs->'communication'->'push', 'false')
                      = 'true' THEN 'push' END], NULL)
    END;


-- Raises one event of customer cid; with once_key, only if that key was
-- never raised (two workers racing: the second waits and does nothing).
-- prefs: the customer's preferences when the caller has them at hand.
-- Returns whether it raised it.
CREATE FUNCTION event_raise(etype text, cid uuid, subj text, payload jsonb,
    once_key text DEFAULT NULL, prefs jsonb DEFAULT NULL) RETURNS boolean
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

    -- A change's event takes the customer's row lock (as an UPDATE of it
    -- would: key-share locks of inserts into its child tables go on), so
    -- the changes of one customer raise their events one transaction at
    -- a time and the ids of its events follow their commits: the claim
    -- delivers a customer's events in id order, and a lower id can no
    -- longer commit after a higher one was delivered. The customers
    -- trigger passes prefs, its row already locked; the scan's events
    -- (once_key) do not lock, not to hold customers' writes for a scan.
    IF prefs IS NULL AND once_key IS NULL THEN
        SELECT preferences INTO prefs FROM customers WHERE id = cid
            FOR NO KEY UPDATE;
    ELSIF prefs IS NULL THEN
        SELECT preferences INTO prefs FROM customers WHERE id = cid;
    END IF;
    SELECT marketing INTO STRICT mkt FROM event_types WHERE type = etype;

    INSERT INTO events (type, customer_id, subject, data, channels,
                        suppressed)
    VALUES (etype, cid, subj,
            jsonb_build_object('customerId', cid) || payload,
            event_channels(coalesce(prefs, '{}'), mkt),
            mkt AND coalesce(prefs->'marketingOptIn', 'false') <> 'true');

    RETURN true;
END
$$;


-- customer.created and customer.updated (which fields changed, not their
-- values: an event carries no personal data the receiver can look up)
CREATE FUNCTION events_customers() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    changed  text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM event_raise('customer.created', NEW.id,
            'customers/' || NEW.id,
            jsonb_build_object('userId', NEW.user_id,
                               'customerType', NEW.customer_type,
                               'customerStatus', NEW.customer_status),
            NULL, NEW.preferences);
        RETURN NULL;
    END IF;

    changed := array_remove(ARRAY[
        CASE WHEN NEW.email IS DISTINCT FROM OLD.email
             THEN 'email' END,
        CASE WHEN NEW.full_name IS DISTINCT FROM OLD.full_name
             THEN 'fullName' END,
        CASE WHEN NEW.contact_number IS DISTINCT FROM OLD.contact_number
             THEN 'contactNumber' END,
        CASE WHEN NEW.date_of_birth IS DISTINCT FROM OLD.date_of_birth
             THEN 'dateOfBirth' END,
        CASE WHEN NEW.national_id IS DISTINCT FROM OLD.national_id
             THEN 'nationalId' END,
        CASE WHEN NEW.addresses IS DISTINCT FROM OLD.addresses
             THEN 'addresses' END,
        CASE WHEN NEW.emergency_contact IS DISTINCT FROM
                  OLD.emergency_contact
             THEN 'emergencyContact' END,
        CASE WHEN NEW.business IS DISTINCT FROM OLD.business
             THEN 'business' END,
        CASE WHEN NEW.customer_type IS DISTINCT FROM OLD.customer_type
             THEN 'customerType' END,
        CASE WHEN NEW.is_verified IS DISTINCT FROM OLD.is_verified
             THEN 'isVerified' END,
        CASE WHEN NEW.notes IS DISTINCT FROM OLD.notes
             THEN 'notes' END,
        CASE WHEN NEW.tags IS DISTINCT FROM OLD.tags
             THEN 'tags' END,
        CASE WHEN NEW.preferences IS DISTINCT FROM OLD.preferences
             THEN 'preferences' END], NULL);

    IF cardinality(changed) > 0 THEN
        PERFORM event_raise('customer.updated', NEW.id,
            'customers/' || NEW.id,
            jsonb_build_object('userId', NEW.user_id,
                               'changedFields', to_jsonb(changed),
                               'version', NEW.version),
            NULL, NEW.preferences);
    END IF;

    RETURN NULL;
END
$$;

CREATE TRIGGER customers_events AFTER INSERT OR UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION events_customers();


-- customer.status_changed: every change of status is a history row
CREATE FUNCTION events_status_history() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_raise('customer.status_changed', NEW.customer_id,
        'customers/' || NEW.customer_id,
        jsonb_build_object('userId',
                           (SELECT user_id FROM customers
                            WHERE id = NEW.customer_id),
                           'previousStatus', NEW.old_status,
                           'customerStatus', NEW.new_status,
                           'isActive', NEW.new_status = 'Active',
                           'reason', NEW.reason,
                           'changedBy', NEW.changed_by));
    RETURN NULL;
END
$$;

CREATE TRIGGER customer_status_history_events
    AFTER INSERT ON customer_status_history
    FOR EACH ROW EXECUTE FUNCTION events_status_history();


CREATE FUNCTION events_credit_alerts() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM event_raise('credit.alert', NEW.customer_id,
        'credit-alerts/' || NEW.id,
        jsonb_build_object('alertId', NEW.id,
                           'kind', NEW.kind,
                           'message', NEW.message,
                           'creditScore', NEW.credit_score,
                           'previousScore', NEW.previous_score,
                           'band', NEW.band));
    RETURN NULL;
END
$$;

CREATE TRIGGER credit_alerts_events AFTER INSERT ON credit_alerts
    FOR EACH ROW EXECUTE FUNCTION events_credit_alerts();


-- loyalty.tier_changed: the tier of the lifetime points moved (an
-- account starts at the tier of 0 points)
CREATE FUNCTION events_loyalty_accounts() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    was   text := loyalty_tier(0);
    tier  text := loyalty_tier(NEW.lifetime_points);
BEGIN
    IF TG_OP = 'UPDATE' THEN
        was := loyalty_tier(OLD.lifetime_points);
    END IF;

    IF was IS DISTINCT FROM tier THEN
        PERFORM event_raise('loyalty.tier_changed', NEW.customer_id,
            'customers/' || NEW.customer_id || '/loyalty',
            jsonb_build_object('previousTier', was, 'tier', tier,
                               'lifetimePoints', NEW.lifetime_points));
    END IF;

    RETURN NULL;
END
$$;

CREATE TRIGGER loyalty_accounts_events
    AFTER INSERT OR UPDATE OF lifetime_points ON loyalty_accounts
    FOR EACH ROW EXECUTE FUNCTION events_loyalty_accounts();


-- The periodic scan: vehicles whose service is due or overdue, documents
-- within 30 days of their expiry or expired (in the last 30 days: older
-- ones are history, not news). Each once per vehicle and due date and
-- mileage, per document and expiry date. At most once per min_gap, over
-- all workers: the first to lock event_scan and move its last_at scans,
-- the others skip. Returns how many events it raised.
CREATE FUNCTION events_scan(min_gap interval) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    n  integer := 0;
    r  record;
BEGIN
    -- another worker scanning holds the row: this one skips at once
    PERFORM FROM event_scan WHERE last_at <= now() - min_gap
        FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;

    UPDATE event_scan SET last_at = now();

    -- a key already raised is skipped here, so a scan that finds nothing
    -- new costs one pass and an index probe per candidate
    FOR r IN SELECT x.*, concat_ws(':', 'vehicle.service_' || x.status,
                                   x.id, x.s->>'nextServiceDate',
                                   x.s->>'nextServiceMileage') AS key
             FROM (SELECT v.id, v.customer_id, v.mileage, s,
                          s->>'status' AS status
                   FROM vehicles v, service_due(v) s) x
             WHERE x.status IN ('due', 'overdue') LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM event_once WHERE key = r.key);
        n := n + event_raise('vehicle.service_' || r.status,
            r.customer_id, 'vehicles/' || r.id,
            jsonb_build_object('vehicleId', r.id,
                               'mileage', r.mileage,
                               'nextServiceDate', r.s->'nextServiceDate',
                               'nextServiceMileage',
                               r.s->'nextServiceMileage',
                               'kmRemaining', r.s->'kmRemaining',
                               'daysRemaining', r.s->'daysRemaining',
                               'dueBy', r.s->'dueBy'),
            r.key)::integer;
    END LOOP;

    FOR r IN SELECT x.*, concat_ws(':', x.type_, x.id, x.expires_at) AS key
             FROM (SELECT d.id, d.customer_id, d.vehicle_id, d.type,
                          d.title, d.expires_at,
                          d.expires_at - api_today() AS days,
                          CASE WHEN d.expires_at < api_today()
                               THEN 'document.expired'
                               ELSE 'document.expiring' END AS type_
                   FROM documents d
                   WHERE d.expires_at BETWEEN api_today() - 30
                                          AND api_today() + 30) x LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM event_once WHERE key = r.key);
        n := n + event_raise(r.type_, r.customer_id, 'documents/' || r.id,
            jsonb_build_object('documentId', r.id,
                               'vehicleId', r.vehicle_id,
                               'type', r.type,
                               'title', r.title,
                               'expiresAt', r.expires_at,
                               'daysRemaining', r.days),
            r.key)::integer;
    END LOOP;

    RETURN n;
END
$$;

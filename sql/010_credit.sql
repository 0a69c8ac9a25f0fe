-- Credit status of a customer (seeds 000 and 003): the current
-- score and its band, every change in a history, and alerts raised by a
-- change (a drop or a rise across a band or by at least alert_points, a
-- band reached for the first time).  One statement writes all of it.

CREATE TABLE credit_bands (
    name       text PRIMARY KEY,
    min_score  integer NOT NULL UNIQUE,   -- lowest score of the band
    rank       integer NOT NULL UNIQUE    -- 1 the lowest band
);

INSERT INTO credit_bands (name, min_score, rank) VALUES
    ('Poor', 300, 1),
    ('Fair', 580, 2),
    ('Good', 670, 3),
    ('Very Good', 740, 4),
    ('Exceptional', 800, 5);

CREATE TABLE credit_settings (
    key    text PRIMARY KEY,
    value  integer NOT NULL
);

-- a change of at least this many points raises an alert
INSERT INTO credit_settings (key, value) VALUES ('alert_points', 50);

CREATE TABLE credit_status (
    customer_id   uuid PRIMARY KEY
                  REFERENCES customers (id) ON DELETE CASCADE,
    credit_score  integer NOT NULL,
    band          text NOT NULL,
    source        text,
    last_updated  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT credit_status_score_range
        CHECK (credit_score BETWEEN 300 AND 850)
);

CREATE TABLE credit_history (
    id              bigserial PRIMARY KEY,
    customer_id     uuid NOT NULL
                    REFERENCES customers (id) ON DELETE CASCADE,
    credit_score    integer NOT NULL,
    previous_score  integer,           -- NULL: the first score
    band            text NOT NULL,
    previous_band   text,
    source          text,
    changed_by      text,              -- the token's sub, or the service
    changed_at      timestamptz NOT NULL DEFAULT now()
);

-- a customer's history, newest first (the list's ORDER BY)
CREATE INDEX credit_history_customer_idx
    ON credit_history (customer_id, changed_at DESC, id DESC);

CREATE TABLE credit_alerts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id     uuid NOT NULL
                    REFERENCES customers (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    message         text NOT NULL,
    credit_score    integer NOT NULL,
    previous_score  integer,
    band            text NOT NULL,
    is_read         boolean NOT NULL DEFAULT false,
    read_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT credit_alerts_kind_enum
        CHECK (kind IN ('drop', 'rise', 'milestone'))
);

-- a customer's alerts, newest first
CREATE INDEX credit_alerts_customer_idx
    ON credit_alerts (customer_id, created_at DESC, id DESC);

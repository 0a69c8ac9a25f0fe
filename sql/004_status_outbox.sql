-- Status changes: every one kept with its reason, who and when; and an
-- outbox of what the Auth Service must be told (isActive), written in the
-- same transaction as the change and delivered after it, until it is.

CREATE TABLE customer_status_history (
    id           bigserial PRIMARY KEY,
    customer_id  uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    old_status   text NOT NULL,
    new_status   text NOT NULL,
    reason       text,
    changed_by   text,
    changed_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customer_status_history_reason_len
        CHECK (char_length(reason) <= 500)
);

CREATE INDEX customer_status_history_customer_idx
    ON customer_status_history (customer_id, changed_at DESC);

-- no foreign key: a change is delivered even if the customer is deleted
CREATE TABLE auth_outbox (
    id               bigserial PRIMARY KEY,
    customer_id      uuid NOT NULL,
    user_id          text NOT NULL,
    is_active        boolean NOT NULL,
    reason           text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    -- also a lease: whoever claims a row moves this forward first
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    delivered_at     timestamptz
);

CREATE INDEX auth_outbox_pending_idx ON auth_outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL;

-- Loyalty points (seed 001): an account per customer with a
-- balance that never goes negative, a ledger of earns and redeems, tiers
-- by lifetime points, and the responses stored per Idempotency-Key.
-- Idempotency keys are kept (at least 24 hours); nothing removes them yet.

CREATE TABLE loyalty_tiers (
    name        text PRIMARY KEY,
    min_points  bigint NOT NULL UNIQUE,    -- lifetime points to reach it
    rank        int NOT NULL
);

INSERT INTO loyalty_tiers (name, min_points, rank) VALUES
    ('Bronze', 0, 1),
    ('Silver', 1000, 2),
    ('Gold', 5000, 3),
    ('Platinum', 20000, 4);

-- the tier reached with that many lifetime points
CREATE FUNCTION loyalty_tier(points bigint) RETURNS text
    LANGUAGE sql STABLE
    RETURN (SELECT name FROM loyalty_tiers WHERE min_points <= points
            ORDER BY min_points DESC LIMIT 1);

CREATE TABLE loyalty_accounts (
    customer_id      uuid PRIMARY KEY
                     REFERENCES customers (id) ON DELETE CASCADE,
    balance          bigint NOT NULL DEFAULT 0,
    lifetime_points  bigint NOT NULL DEFAULT 0,   -- earned, ever
    updated_at       timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT loyalty_accounts_balance_nonneg CHECK (balance >= 0),
    CONSTRAINT loyalty_accounts_lifetime_nonneg CHECK (lifetime_points >= 0)
);

CREATE TABLE loyalty_transactions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id    uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    kind           text NOT NULL,
    points         int NOT NULL,
    balance_after  bigint NOT NULL,
    reason         text,
    reference      text,
    created_by     text,             -- the token's sub, or "service"
    created_at     timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT loyalty_transactions_kind_enum
        CHECK (kind IN ('earn', 'redeem')),
    CONSTRAINT loyalty_transactions_points_range
        CHECK (points BETWEEN 1 AND 1000000),
    CONSTRAINT loyalty_transactions_balance_nonneg
        CHECK (balance_after >= 0),
    CONSTRAINT loyalty_transactions_reason_len
        CHECK (char_length(reason) <= 500),
    CONSTRAINT loyalty_transactions_reference_len
        CHECK (char_length(reference) <= 100)
);

-- a customer's ledger, newest first (the list's ORDER BY, both keys)
CREATE INDEX loyalty_transactions_customer_idx
    ON loyalty_transactions (customer_id, created_at DESC, id DESC);

-- the first answer to each (customer, Idempotency-Key): status and the
-- response's data object (or error), replayed for the same request
CREATE TABLE loyalty_idempotency (
    key           text NOT NULL,
    customer_id   uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    request_hash  text NOT NULL,     -- sha256 of kind and canonical body
    status        int NOT NULL,
    response      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),

    PRIMARY KEY (customer_id, key)
);

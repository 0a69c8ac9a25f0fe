-- The exact counts per status and type were one row per pair, upserted by
-- every insert, delete and status or type change: concurrent creates
-- queued on that row's lock, held through each commit's fsync. Each pair
-- now has up to 64 rows (slots); a statement adds its difference to the
-- slot of its own connection (backend pid mod 64), so connections do not
-- wait for each other, and readers sum the slots (they always summed n).
-- A slot's n may go negative (a delete on another connection than the
-- insert); only the sum means anything.

ALTER TABLE customer_counts ADD COLUMN slot smallint NOT NULL DEFAULT 0;
ALTER TABLE customer_counts DROP CONSTRAINT customer_counts_pkey;
ALTER TABLE customer_counts
    ADD PRIMARY KEY (customer_status, customer_type, slot);
ALTER TABLE customer_counts ALTER COLUMN slot DROP DEFAULT;

CREATE FUNCTION customer_counts_slot() RETURNS smallint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (pg_backend_pid() % 64)::smallint
$$;

-- rows sorted by their key, so two statements on one slot lock in order
CREATE OR REPLACE FUNCTION customer_counts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_counts AS c
        (customer_status, customer_type, slot, n)
    SELECT customer_status, customer_type, customer_counts_slot(), count(*)
    FROM new_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (customer_status, customer_type, slot)
    DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customer_counts_sub() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_counts AS c
        (customer_status, customer_type, slot, n)
    SELECT customer_status, customer_type, customer_counts_slot(), -count(*)
    FROM old_rows GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (customer_status, customer_type, slot)
    DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION customer_counts_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- only rows whose status or type changed move between counters
    INSERT INTO customer_counts AS c
        (customer_status, customer_type, slot, n)
    SELECT k.customer_status, k.customer_type, customer_counts_slot(),
           sum(k.d) FROM (
        SELECT n.customer_status, n.customer_type, 1 AS d
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (n.customer_status, n.customer_type)
              IS DISTINCT FROM (o.customer_status, o.customer_type)
        UNION ALL
        SELECT o.customer_status, o.customer_type, -1
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE (n.customer_status, n.customer_type)
              IS DISTINCT FROM (o.customer_status, o.customer_type)
    ) k
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (customer_status, customer_type, slot)
    DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

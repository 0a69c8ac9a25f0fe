-- Exact customer counts per status and type, kept by statement triggers,
-- so the list endpoint's totalItems does not count(*) the table on every
-- page. Sort indexes that match the list's ORDER BY exactly (direction of
-- both the key and the id tie-breaker), so a page is an index range scan.

CREATE TABLE customer_counts (
    customer_status  text NOT NULL,
    customer_type    text NOT NULL,
    n                bigint NOT NULL,
    PRIMARY KEY (customer_status, customer_type)
);

INSERT INTO customer_counts
SELECT customer_status, customer_type, count(*)
FROM customers GROUP BY 1, 2;

CREATE FUNCTION customer_counts_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_counts AS c
    SELECT customer_status, customer_type, count(*) FROM new_rows
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (customer_status, customer_type)
    DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION customer_counts_sub() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE customer_counts AS c SET n = c.n - o.n
    FROM (SELECT customer_status, customer_type, count(*) AS n
          FROM old_rows GROUP BY 1, 2 ORDER BY 1, 2) o
    WHERE c.customer_status = o.customer_status
      AND c.customer_type = o.customer_type;
    RETURN NULL;
END $$;

CREATE FUNCTION customer_counts_move() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- only rows whose status or type changed move between counters
    INSERT INTO customer_counts AS c
    SELECT k.customer_status, k.customer_type, sum(k.d) FROM (
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
    ON CONFLICT (customer_status, customer_type)
    DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION customer_counts_reset() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM customer_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER customers_count_insert AFTER INSERT ON customers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_add();
CREATE TRIGGER customers_count_delete AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_sub();
CREATE TRIGGER customers_count_update AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_move();
CREATE TRIGGER customers_count_truncate AFTER TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_reset();

-- ORDER BY key <dir>, id <dir>: one index serves both directions
DROP INDEX customers_value_idx;
DROP INDEX customers_created_idx;
DROP INDEX customers_orders_idx;
DROP INDEX customers_name_idx;
DROP INDEX customers_last_order_idx;
DROP INDEX customers_status_value_idx;
CREATE INDEX customers_value_idx ON customers (total_order_value, id);
CREATE INDEX customers_created_idx ON customers (created_at, id);
CREATE INDEX customers_orders_idx ON customers (total_orders, id);
CREATE INDEX customers_name_idx ON customers (full_name, id);
-- nullable: NULLS LAST both ways needs one index per direction
CREATE INDEX customers_last_order_asc_idx
    ON customers (last_order_date ASC NULLS LAST, id ASC);
CREATE INDEX customers_last_order_desc_idx
    ON customers (last_order_date DESC NULLS LAST, id DESC);
CREATE INDEX customers_status_value_idx
    ON customers (customer_status, total_order_value, id);
CREATE INDEX customers_status_created_idx
    ON customers (customer_status, created_at, id);

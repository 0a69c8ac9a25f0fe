-- The filtered list's totalItems without counting every match, for
-- "Prefer: count=planned" and "count=estimated" (PostgREST's meanings).
-- exact_max 0: the planner's row estimate for the list's WHERE (planned);
-- exact_max N: count the matches with LIMIT N + 1, so the scan stops
-- early, and answer that count when it is at most N, otherwise the
-- planner's estimate but never less than N + 1 (estimated). A total of
-- at most N is therefore exact.
--
-- The WHERE is the list statement's (its filters[] in
-- src/ngx_http_customer_customers.c, t/64-list-count.t checks they are
-- the same text) with the same parameter numbers; $3 is the LIMIT there
-- too. EXECUTE ... USING hands the values to the planner as constants,
-- so each call gets a custom plan: "$5 IS NULL OR ..." folds away and
-- the LIKE pattern is known, as in the EXPLAIN of a literal query.
-- EXPLAIN is a utility statement, which a STABLE function may not run:
-- the function is VOLATILE; it only reads.

CREATE FUNCTION customer_list_total(exact_max integer, status text,
    ctype text, term text, tag text, verified boolean,
    created_from timestamptz, created_to timestamptz,
    order_from timestamptz, order_to timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $fn$
DECLARE
    filters constant text := $q$
        WHERE ($1::text IS NULL OR customer_status = $1)
        AND ($2::text IS NULL OR customer_type = $2)
        AND ($5::text IS NULL OR search_text LIKE '%' || replace(
        replace(replace(customer_fold($5), '\', '\\'), '%', '\%'),
        '_', '\_') || '%')
        AND ($6::text IS NULL OR tags @> ARRAY[$6::text])
        AND ($7::boolean IS NULL OR is_verified = $7)
        AND ($8::timestamptz IS NULL OR created_at >= $8)
        AND ($9::timestamptz IS NULL OR created_at < $9)
        AND ($10::timestamptz IS NULL OR last_order_date >= $10)
        AND ($11::timestamptz IS NULL OR last_order_date < $11)$q$;
    n     bigint;
    plan  json;
BEGIN
    IF exact_max > 0 THEN
        EXECUTE 'SELECT count(*) FROM (SELECT 1 FROM customers' || filters
                || ' LIMIT $3) s'
        INTO n
        USING status, ctype, exact_max + 1, NULL::integer, term, tag,
              verified, created_from, created_to, order_from, order_to;

        IF n <= exact_max THEN
            RETURN n;
        END IF;
    END IF;

    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM customers' || filters
    INTO plan
    USING status, ctype, NULL::integer, NULL::integer, term, tag,
          verified, created_from, created_to, order_from, order_to;

    -- greatest() skips the NULL n of a planned count
    RETURN greatest(round((plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric),
                    n);
END
$fn$;

-- An earn or a redeem as one PL/pgSQL function instead of one statement
-- of a dozen CTEs. The statement's plan was started whole (every CTE,
-- sub-plan and union of both outcomes) at each call, whichever path the
-- call took: a fifth of the database's CPU per earn. Here each step is a
-- small statement whose plan PL/pgSQL keeps, and only the steps of the
-- path taken run: no key, no key lookup; a replay, nothing else.
--
-- The same rows, answers and locks as the statement it replaces:
-- - a stored answer under this customer and key is locked first, so a
--   concurrent request with the same key waits for it; one younger than
--   24 hours is replayed (same: whether the request's hash matches);
-- - no such customer: no row (the module's 404);
-- - an Active customer's account is upserted (earn) or updated only
--   while its balance covers the points (redeem), under the row's lock,
--   and the ledger row records the balance after;
-- - otherwise a 422 (not Active, or the balance is short), which writes
--   nothing but its stored answer;
-- - with a key, the answer is stored (an expired one replaced in place);
--   a key claimed by a concurrent request meanwhile raises the unique
--   violation of idempotency_taken(), rolling this call back, and the
--   module runs it once more to replay the answer stored by the other.
-- Each step reads with its own snapshot (READ COMMITTED), so a step that
-- waited for a lock sees what the holder committed.
CREATE FUNCTION loyalty_change(p_customer uuid, p_kind text,
    p_points int, p_reason text, p_reference text, p_by text, p_key text,
    p_body jsonb, OUT status int, OUT same boolean, OUT data text,
    OUT message text, OUT field text, OUT detail text, OUT replayed boolean)
    RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
    hash     text;
    k        record;
    cstatus  text;
    balance  bigint;
    lifetime bigint;
    tx       record;
    answer   json;
BEGIN
    IF p_key IS NOT NULL THEN
        hash := encode(sha256(convert_to(p_kind || ' ' || p_body::text,
                                         'UTF8')), 'hex');
        SELECT i.status, i.response, i.request_hash, i.created_at INTO k
        FROM loyalty_idempotency i
        WHERE i.customer_id = p_customer AND i.key = p_key FOR UPDATE;
        IF FOUND AND k.created_at > now() - interval '24 hours' THEN
            status := k.status;
            same := k.request_hash = hash;
            answer := k.response::json;
            data := CASE WHEN k.status < 300 THEN k.response END;
            message := answer->>'message';
            field := answer->>'field';
            detail := answer->>'detail';
            replayed := true;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;

    SELECT c.customer_status INTO cstatus FROM customers c
    WHERE c.id = p_customer;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    IF cstatus = 'Active' THEN
        IF p_kind = 'earn' THEN
            INSERT INTO loyalty_accounts AS a (customer_id, balance,
                lifetime_points, updated_at)
            VALUES (p_customer, p_points, p_points, now())
            ON CONFLICT (customer_id) DO UPDATE
            SET balance = a.balance + excluded.balance,
                lifetime_points = a.lifetime_points + excluded.lifetime_points,
                updated_at = now()
            RETURNING a.balance, a.lifetime_points INTO balance, lifetime;
        ELSE
            UPDATE loyalty_accounts a SET balance = a.balance - p_points,
                updated_at = now()
            WHERE a.customer_id = p_customer AND a.balance >= p_points
            RETURNING a.balance, a.lifetime_points INTO balance, lifetime;
        END IF;
    END IF;

    IF balance IS NOT NULL THEN
        INSERT INTO loyalty_transactions AS t (customer_id, kind, points,
            balance_after, reason, reference, created_by, created_at)
        VALUES (p_customer, p_kind, p_points, balance, p_reason,
                p_reference, p_by, clock_timestamp())
        RETURNING t.id, t.created_at INTO tx;
        status := 201;
        answer := json_build_object('transactionId', tx.id,
            'customerId', p_customer, 'kind', p_kind, 'points', p_points,
            'balance', balance, 'lifetimePoints', lifetime,
            'tier', (SELECT name FROM loyalty_tiers
                     WHERE min_points <= lifetime
                     ORDER BY min_points DESC LIMIT 1),
            'createdAt', api_ts(tx.created_at));
        data := answer::text;
    ELSIF cstatus <> 'Active' THEN
        status := 422;
        message := 'Customer is not active';
        field := 'customerId';
        detail := 'The customer is ' || cstatus || '; points cannot change';
        answer := json_build_object('message', message, 'field', field,
                                    'detail', detail);
    ELSE
        status := 422;
        message := 'Insufficient points';
        field := 'points';
        detail := 'The balance is lower than the points to redeem';
        answer := json_build_object('message', message, 'field', field,
                                    'detail', detail);
    END IF;

    same := true;
    replayed := false;

    IF p_key IS NOT NULL THEN
        INSERT INTO loyalty_idempotency AS i (key, customer_id,
            request_hash, status, response)
        VALUES (p_key, p_customer, hash, status, answer::text)
        ON CONFLICT (customer_id, key) DO UPDATE
        SET request_hash = excluded.request_hash, status = excluded.status,
            response = excluded.response, created_at = now()
        WHERE i.created_at <= now() - interval '24 hours';
        IF NOT FOUND THEN
            PERFORM idempotency_taken();
        END IF;
    END IF;

    RETURN NEXT;
END
$$;

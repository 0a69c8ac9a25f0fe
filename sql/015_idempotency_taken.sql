-- Raised by the loyalty statement when its Idempotency-Key was claimed by
-- a concurrent request between its read and its write (the INSERT ... ON
-- CONFLICT DO UPDATE, which replaces only an expired key, then changes
-- nothing): the statement, points included, is rolled back with the
-- same error a plain duplicate key would give, and the module runs it
-- again to answer the stored result.
CREATE FUNCTION idempotency_taken() RETURNS boolean
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE unique_violation USING
        MESSAGE = 'the idempotency key was taken by a concurrent request',
        CONSTRAINT = 'loyalty_idempotency_pkey';
END
$$;

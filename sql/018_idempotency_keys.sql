-- Idempotency-Key on every write route but loyalty's (which keeps its own
-- per customer): one row per (caller, key). The row is inserted in the
-- same transaction as the request's write, so it exists exactly when the
-- write committed; the answer (status, type, ETag, body) is stored just
-- after, before it is sent. status NULL: the request is still running,
-- or it committed and its answer was lost with the connection. Kept 24
-- hours: an older key is a new request (replaced in place), and the
-- outbox run deletes such rows in batches.
CREATE TABLE idempotency_keys (
    caller        text NOT NULL,     -- "service", or the token's subject
    key           text NOT NULL,
    request_hash  text NOT NULL,     -- sha256 of method, URI and body
    status        int,
    content_type  text,
    etag          text,
    body          text,
    created_at    timestamptz NOT NULL DEFAULT now(),

    PRIMARY KEY (caller, key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Raised when the key is held by a request that committed (or, having
-- waited on the key's index entry, one that committed meanwhile): the
-- write is rolled back with it, and the module answers from the row.
CREATE FUNCTION idempotency_key_taken() RETURNS boolean
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE unique_violation USING
        MESSAGE = 'the idempotency key is held by another request',
        CONSTRAINT = 'idempotency_keys_pkey';
END
$$;

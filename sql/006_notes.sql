-- Notes on a customer (seed 002 §3.2.10): written by
-- Administrators, each with a type and two flags; a private note is never
-- shown to the customer it is about. Adding one also copies its content to
-- customers.notes, in the same statement.

CREATE TABLE customer_notes (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id   uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    content       text NOT NULL,
    note_type     text NOT NULL DEFAULT 'general',
    is_private    boolean NOT NULL DEFAULT false,
    is_important  boolean NOT NULL DEFAULT false,
    author_id     text,             -- the token's sub
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT customer_notes_content_len
        CHECK (char_length(content) BETWEEN 1 AND 1000),
    CONSTRAINT customer_notes_type_enum
        CHECK (note_type IN ('general', 'service', 'billing', 'complaint',
                             'other'))
);

-- a customer's notes, newest first (the list's ORDER BY, both keys)
CREATE INDEX customer_notes_customer_idx
    ON customer_notes (customer_id, created_at DESC, id DESC);

-- Search by name, email and phone: accent- and case-insensitive, prefix
-- and typo tolerant. A stored, normalised text per customer with a
-- trigram index; queries compare with word_similarity (<%) and LIKE.

CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;

-- unaccent() is STABLE (its dictionary could change); pinning the
-- dictionary makes it safe to index, the usual way
CREATE FUNCTION customer_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT lower(public.unaccent('public.unaccent'::regdictionary, t))
$$;

ALTER TABLE customers ADD COLUMN search_text text
    GENERATED ALWAYS AS (customer_fold(full_name || ' ' || email || ' '
                         || coalesce(contact_number, ''))) STORED;

DROP INDEX customers_text_idx;
CREATE INDEX customers_search_idx
    ON customers USING gin (search_text gin_trgm_ops);

-- list filters
CREATE INDEX customers_tags_idx ON customers USING gin (tags);

-- verification: who and when
ALTER TABLE customers ADD COLUMN verified_at timestamptz,
                      ADD COLUMN verified_by text;

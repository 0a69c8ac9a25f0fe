-- Notes, document metadata and service records can be edited (PATCH
-- /api/notes/{noteId}, /api/documents/{documentId},
-- /api/vehicles/{vehicleId}/service-records/{serviceRecordId}): a version
-- for If-Match and ETag, as the other editable resources have, and for
-- notes and documents who edited last and when, NULL until the first
-- edit (the author and creation time stay as they were).
ALTER TABLE customer_notes
    ADD COLUMN updated_at timestamptz,
    ADD COLUMN updated_by text,
    ADD COLUMN version integer NOT NULL DEFAULT 1;

ALTER TABLE documents
    ADD COLUMN updated_at timestamptz,
    ADD COLUMN updated_by text,
    ADD COLUMN version integer NOT NULL DEFAULT 1;

ALTER TABLE service_records
    ADD COLUMN version integer NOT NULL DEFAULT 1;

-- the administrators' lists across customers, newest first
CREATE INDEX customer_notes_created_idx
    ON customer_notes (created_at DESC, id DESC);
CREATE INDEX documents_created_idx ON documents (created_at DESC, id DESC);

-- Emergency contacts as a list (at most 5), as the ServEase service keeps
-- them. emergency_contact (the record's emergencyContact) stays, as the
-- list's first entry: a trigger keeps the two in step whichever a
-- statement writes (the list wins when both change), so writers of
-- either keep working.
ALTER TABLE customers
    ADD COLUMN emergency_contacts jsonb NOT NULL DEFAULT '[]',
    ADD CONSTRAINT customers_emergency_contacts_list
        CHECK (jsonb_typeof(emergency_contacts) = 'array'
               AND jsonb_array_length(emergency_contacts) <= 5);

UPDATE customers SET emergency_contacts = jsonb_build_array(emergency_contact)
WHERE emergency_contact IS NOT NULL;

CREATE FUNCTION customers_emergency_contacts_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.emergency_contacts <> '[]' THEN
            NEW.emergency_contact := NEW.emergency_contacts -> 0;
        ELSIF NEW.emergency_contact IS NOT NULL THEN
            NEW.emergency_contacts := jsonb_build_array(NEW.emergency_contact);
        END IF;
    ELSIF NEW.emergency_contacts IS DISTINCT FROM OLD.emergency_contacts THEN
        NEW.emergency_contact := NEW.emergency_contacts -> 0;
    ELSIF NEW.emergency_contact IS DISTINCT FROM OLD.emergency_contact THEN
        NEW.emergency_contacts := CASE WHEN NEW.emergency_contact IS NULL
            THEN '[]'::jsonb
            ELSE jsonb_build_array(NEW.emergency_contact) END;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER customers_emergency_contacts_sync
    BEFORE INSERT OR UPDATE OF emergency_contact, emergency_contacts
    ON customers FOR EACH ROW
    EXECUTE FUNCTION customers_emergency_contacts_sync();

-- The list's isBusiness filter (a record with business details or
-- without), $14 of the list statement: customer_list_total() takes it
-- too, its WHERE the list statement's again (t/64-list-count.t).
DROP FUNCTION customer_list_total(integer, text, text, text, text, boolean,
    timestamptz, timestamptz, timestamptz, timestamptz);

CREATE FUNCTION customer_list_total(exact_max integer, status text,
    ctype text, term text, tag text, verified boolean,
    created_from timestamptz, created_to timestamptz,
    order_from timestamptz, order_to timestamptz,
    is_business boolean DEFAULT NULL) RETURNS bigint
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
        AND ($11::timestamptz IS NULL OR last_order_date < $11)
        AND ($14::boolean IS NULL OR (business IS NOT NULL) = $14)$q$;
    n     bigint;
    plan  json;
BEGIN
    IF exact_max > 0 THEN
        EXECUTE 'SELECT count(*) FROM (SELECT 1 FROM customers' || filters
                || ' LIMIT $3) s'
        INTO n
        USING status, ctype, exact_max + 1, NULL::integer, term, tag,
              verified, created_from, created_to, order_from, order_to,
              NULL::text, NULL::uuid, is_business;

        IF n <= exact_max THEN
            RETURN n;
        END IF;
    END IF;

    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM customers' || filters
    INTO plan
    USING status, ctype, NULL::integer, NULL::integer, term, tag,
          verified, created_from, created_to, order_from, order_to,
          NULL::text, NULL::uuid, is_business;

    -- greatest() skips the NULL n of a planned count
    RETURN greatest(round((plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric),
                    n);
END
$fn$;

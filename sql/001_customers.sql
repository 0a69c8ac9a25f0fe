-- Customers: the record of the API contract and seed 002 §2.
-- Applied by scripts/pg.sh migrate, recorded in schema_migrations.

-- RFC 3339 UTC with milliseconds, the API's one timestamp format.
CREATE FUNCTION api_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE TABLE customers (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id              text NOT NULL,
    email                text NOT NULL,
    full_name            text NOT NULL,
    contact_number       text,
    date_of_birth        date,
    national_id          text,
    addresses            jsonb NOT NULL DEFAULT '[]',
    emergency_contact    jsonb,
    business             jsonb,
    customer_status      text NOT NULL DEFAULT 'Active',
    customer_type        text NOT NULL DEFAULT 'Regular',
    is_verified          boolean NOT NULL DEFAULT false,
    total_orders         integer NOT NULL DEFAULT 0,
    total_order_value    numeric(14,2) NOT NULL DEFAULT 0,
    total_complaints     integer NOT NULL DEFAULT 0,
    open_complaints      integer NOT NULL DEFAULT 0,
    last_order_date      timestamptz,
    last_complaint_date  timestamptz,
    customer_since       timestamptz NOT NULL DEFAULT now(),
    notes                text,
    tags                 text[] NOT NULL DEFAULT '{}',
    preferences          jsonb NOT NULL
                         DEFAULT '{"newsletter": false,
                                   "notifications": true,
                                   "language": "en"}',
    metadata             jsonb NOT NULL
                         DEFAULT '{"lastLoginDate": null, "loginCount": 0,
                                   "lastActivityDate": null}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    created_by           text,
    updated_by           text,
    version              integer NOT NULL DEFAULT 1,

    CONSTRAINT customers_user_id_key UNIQUE (user_id),
    CONSTRAINT customers_user_id_len CHECK (length(user_id) BETWEEN 1 AND 128),
    CONSTRAINT customers_full_name_len
        CHECK (char_length(full_name) BETWEEN 2 AND 100),
    CONSTRAINT customers_contact_number_e164
        CHECK (contact_number ~ '^\+[1-9][0-9]{1,14}$'),
    CONSTRAINT customers_status_enum
        CHECK (customer_status IN ('Active', 'Inactive', 'Suspended')),
    CONSTRAINT customers_type_enum
        CHECK (customer_type IN ('Regular', 'Premium', 'VIP')),
    CONSTRAINT customers_totals_nonneg
        CHECK (total_orders >= 0 AND total_order_value >= 0
               AND total_complaints >= 0 AND open_complaints >= 0),
    CONSTRAINT customers_notes_len CHECK (char_length(notes) <= 1000),
    CONSTRAINT customers_addresses_array
        CHECK (jsonb_typeof(addresses) = 'array'),
    CONSTRAINT customers_preferences_object
        CHECK (jsonb_typeof(preferences) = 'object')
);

-- seed 002 §2 indexes, as PostgreSQL has them
CREATE INDEX customers_email_idx ON customers (lower(email));
CREATE INDEX customers_status_idx ON customers (customer_status);
CREATE INDEX customers_type_idx ON customers (customer_type);
CREATE INDEX customers_status_type_idx
    ON customers (customer_status, customer_type);
CREATE INDEX customers_last_order_idx
    ON customers (last_order_date DESC NULLS LAST, id);
CREATE INDEX customers_value_idx ON customers (total_order_value DESC, id);
CREATE INDEX customers_created_idx ON customers (created_at DESC, id);
CREATE INDEX customers_orders_idx ON customers (total_orders DESC, id);
CREATE INDEX customers_name_idx ON customers (full_name, id);
-- the list endpoint's common case: one status, by value
CREATE INDEX customers_status_value_idx
    ON customers (customer_status, total_order_value DESC, id);
-- search by name, email, phone (seed 002's text index)
CREATE INDEX customers_text_idx ON customers USING gin (
    to_tsvector('simple', full_name || ' ' || email || ' '
                || coalesce(contact_number, '')));

-- Vehicles, their service records, documents (seed 004).
-- The service status is computed here, in one function, for the
-- service-status endpoint, the admin list's serviceDue filter and the
-- dashboard alike.

-- the API's "today": the UTC date
CREATE FUNCTION api_today() RETURNS date
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (now() AT TIME ZONE 'UTC')::date;

CREATE TABLE vehicles (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id              uuid NOT NULL
                             REFERENCES customers (id) ON DELETE CASCADE,
    make                     text NOT NULL,
    model                    text NOT NULL,
    year                     integer NOT NULL,
    vin                      text NOT NULL,
    license_plate            text,
    color                    text,
    mileage                  integer NOT NULL DEFAULT 0,
    last_service_date        date,
    last_service_mileage     integer,
    service_interval_km      integer NOT NULL DEFAULT 10000,
    service_interval_months  integer NOT NULL DEFAULT 12,
    insurance_expiry         date,
    registration_expiry      date,
    warranty_expiry          date,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    created_by               text,
    updated_by               text,
    version                  integer NOT NULL DEFAULT 1,

    CONSTRAINT vehicles_vin_key UNIQUE (vin),
    CONSTRAINT vehicles_vin_format CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
    CONSTRAINT vehicles_year_range CHECK (year >= 1886),
    CONSTRAINT vehicles_mileage_nonneg CHECK (mileage >= 0),
    CONSTRAINT vehicles_service_mileage_nonneg
        CHECK (last_service_mileage >= 0),
    CONSTRAINT vehicles_interval_km CHECK (service_interval_km > 0),
    CONSTRAINT vehicles_interval_months CHECK (service_interval_months > 0)
);

-- a customer's vehicles, oldest first (lists page newest first: backwards)
CREATE INDEX vehicles_customer_idx ON vehicles (customer_id, created_at, id);
CREATE INDEX vehicles_created_idx ON vehicles (created_at, id);
CREATE INDEX vehicles_insurance_idx ON vehicles (insurance_expiry);

CREATE TABLE service_records (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vehicle_id    uuid NOT NULL REFERENCES vehicles (id) ON DELETE CASCADE,
    customer_id   uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    service_date  date NOT NULL,
    mileage       integer NOT NULL,
    description   text NOT NULL,
    cost          numeric(12,2) NOT NULL DEFAULT 0,
    performed_by  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text,

    CONSTRAINT service_records_mileage_nonneg CHECK (mileage >= 0),
    CONSTRAINT service_records_cost_nonneg CHECK (cost >= 0)
);

CREATE INDEX service_records_vehicle_idx
    ON service_records (vehicle_id, service_date DESC, created_at DESC);
CREATE INDEX service_records_customer_idx
    ON service_records (customer_id, service_date DESC, created_at DESC);

-- metadata; the bytes are in document_contents, written in the same
-- statement, so that lists never read them
CREATE TABLE documents (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id   uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    vehicle_id    uuid REFERENCES vehicles (id) ON DELETE SET NULL,
    type          text NOT NULL,
    title         text NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size          bigint NOT NULL,
    sha256        text NOT NULL,
    expires_at    date,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text,

    CONSTRAINT documents_type_enum
        CHECK (type IN ('insurance', 'registration', 'service', 'identity',
                        'other'))
);

CREATE INDEX documents_customer_idx
    ON documents (customer_id, created_at DESC, id DESC);
CREATE INDEX documents_expires_idx ON documents (expires_at)
    WHERE expires_at IS NOT NULL;

CREATE TABLE document_contents (
    document_id  uuid PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
    content      bytea NOT NULL
);

-- the state of an expiry date: valid | expiring (0..30 days) | expired
CREATE FUNCTION expiry_status(d date) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN jsonb_build_object(
        'expiresOn', d,
        'daysRemaining', d - api_today(),
        'status', CASE WHEN d IS NULL THEN 'unknown'
                       WHEN d < api_today() THEN 'expired'
                       WHEN d - api_today() <= 30 THEN 'expiring'
                       ELSE 'valid' END);

-- when the next service is due and whether it is: the contract of
-- GET /api/vehicles/{id}/service-status
CREATE FUNCTION service_due(v vehicles) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (
        SELECT jsonb_build_object(
            'nextServiceMileage', s.next_km,
            'nextServiceDate', s.next_date,
            'kmRemaining', s.km,
            'daysRemaining', s.days,
            'dueBy', CASE WHEN s.km::numeric * s.span
                               <= s.days::numeric * v.service_interval_km
                          THEN 'mileage' ELSE 'date' END,
            'due', s.km <= 0 OR s.days <= 0,
            'overdue', s.km < 0 OR s.days < 0,
            'status', CASE WHEN s.km < 0 OR s.days < 0 THEN 'overdue'
                           WHEN s.km <= 0 OR s.days <= 0 THEN 'due'
                           WHEN s.km <= 500 OR s.days <= 14 THEN 'due-soon'
                           ELSE 'ok' END)
        FROM (SELECT n.next_km, n.next_date,
                     n.next_km - v.mileage AS km,
                     n.next_date - api_today() AS days,
                     greatest(n.next_date - n.base, 1) AS span
              FROM (SELECT coalesce(v.last_service_mileage, 0)
                               + v.service_interval_km AS next_km,
                           (b.base + make_interval(
                               months => v.service_interval_months))::date
                               AS next_date,
                           b.base
                    FROM (SELECT coalesce(v.last_service_date,
                                          (v.created_at AT TIME ZONE 'UTC')
                                          ::date) AS base) b) n) s);

-- the whole service-status object
CREATE FUNCTION service_status(v vehicles) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN jsonb_build_object(
        'service', service_due(v),
        'insurance', expiry_status(v.insurance_expiry),
        'registration', expiry_status(v.registration_expiry),
        'warranty', expiry_status(v.warranty_expiry));

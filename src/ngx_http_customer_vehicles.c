
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_access.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * Vehicles and their service records.  A Customer
 * reaches only the vehicles of its own record: every statement joins the
 * owner and compares its userId with the token's sub ($2, NULL for an
 * Administrator), so another customer's vehicle is simply not found.
 * Writes pass the validated body to SQL as one jsonb parameter; the
 * statements take the members they need from it.  Service status is the
 * SQL function service_status() (sql/013, service_due() redone in
 * PL/pgSQL by sql/014), shared with the admin filter and the dashboard.
 */


#define NGX_HTTP_CUSTOMER_VEHICLE_COLUMNS                                    \
    "v.id, v.customer_id, v.make, v.model, v.year, v.vin,"                  \
    " vin_check_digit_valid(v.vin), v.license_plate, v.color,"             \
    " v.mileage, v.last_service_date,"                                      \
    " v.last_service_mileage, v.service_interval_km,"                       \
    " v.service_interval_months, v.insurance_expiry,"                       \
    " v.registration_expiry, v.warranty_expiry,"                           \
    " api_ts(v.created_at) AS created, api_ts(v.updated_at) AS updated,"    \
    " v.created_by, v.updated_by, v.version"

/* after the 22 columns: the owner's (create) or the vehicle's (update) id */
#define NGX_HTTP_CUSTOMER_VEHICLE_FOUND     22

/* update, after that: the If-Match version did not match */
#define NGX_HTTP_CUSTOMER_VEHICLE_STALE     23

/* the vehicle $1, when the caller ($2: a Customer's sub) may reach it */
#define NGX_HTTP_CUSTOMER_VEHICLE_OWN                                        \
    " JOIN customers c ON c.id = v.customer_id"                             \
    " WHERE v.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)"

/* a body member: b is the jsonb body */
#define NGX_HTTP_CUSTOMER_VEHICLE_INT(name)  "(b->>'" name "')::integer"
#define NGX_HTTP_CUSTOMER_VEHICLE_DATE(name)  "(b->>'" name "')::date"

/*
 * A column's new value on PUT ($4 true: absent members take the default)
 * or PATCH (absent members keep the old value): the member as type.
 */
#define NGX_HTTP_CUSTOMER_VEHICLE_SET(col, name, type, def)                  \
    " " col " = CASE WHEN b ? '" name "' THEN (b->>'" name "')" type        \
    " WHEN $4::boolean THEN " def " ELSE v." col " END,"

#define NGX_HTTP_CUSTOMER_RECORD_COLUMNS                                     \
    "r.id, r.vehicle_id, r.customer_id, r.service_date, r.mileage,"         \
    " r.description, r.cost, r.performed_by, api_ts(r.created_at),"         \
    " r.created_by, r.version"

#define NGX_HTTP_CUSTOMER_RECORD_NCOLUMNS  11      /* the last: version */

#define NGX_HTTP_CUSTOMER_RECORD_ORDER                                       \
    " ORDER BY r.service_date DESC, r.created_at DESC, r.id DESC"


static ngx_int_t ngx_http_customer_vehicles_years(
    ngx_http_customer_ctx_t *ctx);


/* a vehicle's columns and members (see router.h) */
#define NGX_HTTP_CUSTOMER_VEHICLE(column, field)                             \
    column("vehicleId", STRING)                                              \
    column("customerId", STRING)                                             \
    field("make", STRING, REQUIRED, line, 1, 50, NULL)                       \
    field("model", STRING, REQUIRED, line, 1, 50, NULL)                      \
    field("year", NUMBER, REQUIRED, year, 0, 0, NULL)                        \
    field("vin", STRING, REQUIRED, vin, 0, 0, NULL)                          \
    column("vinCheckDigitValid", BOOL)                                       \
    field("licensePlate", STRING, NULLABLE, line, 1, 20, NULL)               \
    field("color", STRING, NULLABLE, line, 1, 30, NULL)                      \
    field("mileage", NUMBER, OPTIONAL, count, 0, 10000000, NULL)             \
    field("lastServiceDate", STRING, NULLABLE, date, 0, 1, NULL)             \
    field("lastServiceMileage", NUMBER, NULLABLE, count, 0, 10000000, NULL)  \
    field("serviceIntervalKm", NUMBER, OPTIONAL, count, 1, 1000000, NULL)    \
    field("serviceIntervalMonths", NUMBER, OPTIONAL, count, 1, 120, NULL)    \
    field("insuranceExpiry", STRING, NULLABLE, date, 0, 0, NULL)             \
    field("registrationExpiry", STRING, NULLABLE, date, 0, 0, NULL)          \
    field("warrantyExpiry", STRING, NULLABLE, date, 0, 0, NULL)              \
    column("createdAt", STRING)                                              \
    column("updatedAt", STRING)                                              \
    column("createdBy", STRING)                                              \
    column("updatedBy", STRING)                                              \
    column("version", NUMBER)

/* a service record's; the history adds its vehicle's make, model and VIN */
#define NGX_HTTP_CUSTOMER_SERVICE_RECORD(column, field)                      \
    column("serviceRecordId", STRING)                                        \
    column("vehicleId", STRING)                                              \
    column("customerId", STRING)                                             \
    field("serviceDate", STRING, REQUIRED, date, 0, 1, NULL)                 \
    field("mileage", NUMBER, REQUIRED, count, 0, 10000000, NULL)             \
    field("description", STRING, REQUIRED, text, 1, 1000, NULL)              \
    field("cost", NUMBER, OPTIONAL, money, 0, 0, NULL)                       \
    field("performedBy", STRING, NULLABLE, line, 0, 100, NULL)               \
    column("createdAt", STRING)                                              \
    column("createdBy", STRING)                                              \
    column("version", NUMBER)


static ngx_http_customer_field_t  ngx_http_customer_vehicle_fields[] = {
    NGX_HTTP_CUSTOMER_FIELDS_OF(NGX_HTTP_CUSTOMER_VEHICLE)
};


/* POST /api/vehicles: the owner's customerId, then a vehicle's members */
static ngx_http_customer_field_t  ngx_http_customer_vehicle_new_fields[] = {
    NGX_HTTP_CUSTOMER_REQUIRED("customerId", uuid, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_OF(NGX_HTTP_CUSTOMER_VEHICLE)
};


static ngx_http_customer_field_t  ngx_http_customer_mileage_fields[] = {
    NGX_HTTP_CUSTOMER_REQUIRED("mileage", count, 0, 10000000),
    NGX_HTTP_CUSTOMER_FIELDS_END
};


/* a PATCH of a service record takes those given, at least one */
static ngx_http_customer_field_t  ngx_http_customer_record_fields[] = {
    NGX_HTTP_CUSTOMER_FIELDS_OF(NGX_HTTP_CUSTOMER_SERVICE_RECORD)
};


static ngx_http_customer_column_t  ngx_http_customer_vehicle_columns[] = {
    NGX_HTTP_CUSTOMER_COLUMNS_OF(NGX_HTTP_CUSTOMER_VEHICLE)
};


static ngx_http_customer_column_t  ngx_http_customer_record_columns[] = {
    NGX_HTTP_CUSTOMER_COLUMNS_OF(NGX_HTTP_CUSTOMER_SERVICE_RECORD)
    { "make", NGX_HTTP_CUSTOMER_COL_STRING },
    { "model", NGX_HTTP_CUSTOMER_COL_STRING },
    { "vin", NGX_HTTP_CUSTOMER_COL_STRING }
};


static ngx_http_customer_column_t  ngx_http_customer_status_columns[] = {
    { "vehicleId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "mileage", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "asOf", NGX_HTTP_CUSTOMER_COL_STRING },
    { "service", NGX_HTTP_CUSTOMER_COL_JSON },
    { "insurance", NGX_HTTP_CUSTOMER_COL_JSON },
    { "registration", NGX_HTTP_CUSTOMER_COL_JSON },
    { "warranty", NGX_HTTP_CUSTOMER_COL_JSON }
};


static ngx_http_customer_missing_t  ngx_http_customer_vehicle_missing = {
    "Vehicle not found", "vehicleId", "No such vehicle", 0
};


static ngx_http_customer_missing_t  ngx_http_customer_record_missing = {
    "Service record not found", "serviceRecordId", "No such service record",
    0
};


static ngx_http_customer_refusal_t  ngx_http_customer_vin_taken = {
    NGX_HTTP_CONFLICT, "Vehicle already exists", "vin",
    "A vehicle with this VIN is registered", "vehicles_vin_key"
};


static ngx_http_customer_refusal_t  ngx_http_customer_vehicle_stale =
    NGX_HTTP_CUSTOMER_STALE_OF("vehicle");


static ngx_http_customer_refusal_t  ngx_http_customer_mileage_lower = {
    NGX_HTTP_UNPROCESSABLE_ENTITY, "Mileage cannot decrease", "mileage",
    "Mileage cannot decrease: it is lower than the vehicle's current "
    "mileage", NULL
};


static ngx_http_customer_refusal_t  ngx_http_customer_record_stale =
    NGX_HTTP_CUSTOMER_STALE_OF("service record");


/*
 * $1 the customer, $2 the caller's sub or NULL, $3 the body, $4 who.
 * Always one row: NULL columns when nothing was inserted, then the
 * customer's id (NULL: no such customer, else the VIN is taken).
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_create_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "WITH c AS (SELECT id FROM customers WHERE id = $1"
    " AND ($2::text IS NULL OR user_id = $2::text)),"
    " v AS (INSERT INTO vehicles AS v (customer_id, make, model, year, vin,"
    " license_plate, color, mileage, last_service_date,"
    " last_service_mileage, service_interval_km, service_interval_months,"
    " insurance_expiry, registration_expiry, warranty_expiry, created_by,"
    " updated_by)"
    " SELECT c.id, b->>'make', b->>'model',"
    NGX_HTTP_CUSTOMER_VEHICLE_INT("year") ", b->>'vin', b->>'licensePlate',"
    " b->>'color', coalesce(" NGX_HTTP_CUSTOMER_VEHICLE_INT("mileage") ", 0),"
    NGX_HTTP_CUSTOMER_VEHICLE_DATE("lastServiceDate") ","
    NGX_HTTP_CUSTOMER_VEHICLE_INT("lastServiceMileage") ","
    " coalesce(" NGX_HTTP_CUSTOMER_VEHICLE_INT("serviceIntervalKm")
    ", 10000),"
    " coalesce(" NGX_HTTP_CUSTOMER_VEHICLE_INT("serviceIntervalMonths")
    ", 12),"
    NGX_HTTP_CUSTOMER_VEHICLE_DATE("insuranceExpiry") ","
    NGX_HTTP_CUSTOMER_VEHICLE_DATE("registrationExpiry") ","
    NGX_HTTP_CUSTOMER_VEHICLE_DATE("warrantyExpiry") ","
    " $4::text, $4::text FROM c, (SELECT $3::jsonb AS b) j"
    " ON CONFLICT (vin) DO NOTHING RETURNING v.*)"
    " SELECT " NGX_HTTP_CUSTOMER_VEHICLE_COLUMNS ", (SELECT id FROM c)"
    " FROM (SELECT 1) s LEFT JOIN v ON true");

/*
 * $1 the vehicle, $2 the caller's sub or NULL, $3 the body, $4 true for
 * PUT, $5 the If-Match version or NULL, $6 who.  No row: no such
 * vehicle; NULL columns: a stale version (the last column) or a lower
 * mileage.  The mileage never goes back, not even on PUT.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_update_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(6,
    "WITH o AS (SELECT v.id, v.mileage, v.version FROM vehicles v"
    NGX_HTTP_CUSTOMER_VEHICLE_OWN " FOR UPDATE OF v),"
    " u AS (UPDATE vehicles AS v SET"
    NGX_HTTP_CUSTOMER_VEHICLE_SET("make", "make", "", "v.make")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("model", "model", "", "v.model")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("year", "year", "::integer", "v.year")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("vin", "vin", "", "v.vin")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("license_plate", "licensePlate", "", "NULL")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("color", "color", "", "NULL")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("mileage", "mileage", "::integer",
                                  "v.mileage")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("last_service_date", "lastServiceDate",
                                  "::date", "NULL")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("last_service_mileage",
                                  "lastServiceMileage", "::integer", "NULL")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("service_interval_km", "serviceIntervalKm",
                                  "::integer", "10000")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("service_interval_months",
                                  "serviceIntervalMonths", "::integer", "12")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("insurance_expiry", "insuranceExpiry",
                                  "::date", "NULL")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("registration_expiry",
                                  "registrationExpiry", "::date", "NULL")
    NGX_HTTP_CUSTOMER_VEHICLE_SET("warranty_expiry", "warrantyExpiry",
                                  "::date", "NULL")
    " updated_at = now(), updated_by = $6::text, version = v.version + 1"
    " FROM o, (SELECT $3::jsonb AS b) j"
    " WHERE v.id = o.id AND ($5::integer IS NULL OR o.version = $5::integer)"
    " AND coalesce(" NGX_HTTP_CUSTOMER_VEHICLE_INT("mileage")
    ", o.mileage) >= o.mileage"
    " RETURNING v.*)"
    " SELECT " NGX_HTTP_CUSTOMER_VEHICLE_COLUMNS ", o.id,"
    " ($5::integer IS NOT NULL AND o.version <> $5::integer)"
    " FROM o LEFT JOIN u v ON true");

static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_get_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(2,
    "SELECT " NGX_HTTP_CUSTOMER_VEHICLE_COLUMNS " FROM vehicles v"
    NGX_HTTP_CUSTOMER_VEHICLE_OWN);

/* its service records go with it; its documents stay, without it */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_delete_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "DELETE FROM vehicles v USING customers c"
    " WHERE v.id = $1 AND c.id = v.customer_id"
    " AND ($2::text IS NULL OR c.user_id = $2::text)"
    " RETURNING v.id, api_ts(now())");

static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_status_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(2,
    "SELECT v.id, v.mileage, api_today(), service_due(v),"
    " expiry_status(v.insurance_expiry),"
    " expiry_status(v.registration_expiry),"
    " expiry_status(v.warranty_expiry) FROM vehicles v"
    NGX_HTTP_CUSTOMER_VEHICLE_OWN);

/* $1 customer, $2 sub, $3 limit, $4 offset; newest first */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_list_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(4,
    NGX_HTTP_CUSTOMER_PAGE_SQL("vehicles WHERE customer_id = c.id",
        "SELECT " NGX_HTTP_CUSTOMER_VEHICLE_COLUMNS
        " FROM vehicles v WHERE v.customer_id = c.id"
        " ORDER BY v.created_at DESC, v.id DESC LIMIT $3 OFFSET $4"));

#define NGX_HTTP_CUSTOMER_VEHICLES_FILTER                                    \
    " ($1::text IS NULL OR lower(v.make) = lower($1::text))"                \
    " AND ($2::text IS NULL OR lower(v.model) = lower($2::text))"           \
    " AND ($3::integer IS NULL OR v.year >= $3::integer)"                   \
    " AND ($4::integer IS NULL OR v.year <= $4::integer)"                   \
    " AND ($5::boolean IS NULL"                                             \
    " OR (service_due(v)->>'due')::boolean = $5::boolean)"                  \
    " AND ($6::integer IS NULL OR v.insurance_expiry"                       \
    " BETWEEN api_today() AND api_today() + $6::integer)"                   \
    " AND ($7::uuid IS NULL OR v.customer_id = $7::uuid)"

/* the admin's list: $1..$7 the filters, $8 limit, $9 offset */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_all_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(9,
    "SELECT n.total, v.* FROM (SELECT count(*) AS total FROM vehicles v"
    " WHERE" NGX_HTTP_CUSTOMER_VEHICLES_FILTER ") n"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_VEHICLE_COLUMNS
    " FROM vehicles v WHERE" NGX_HTTP_CUSTOMER_VEHICLES_FILTER
    " ORDER BY v.created_at DESC, v.id DESC LIMIT $8 OFFSET $9) v ON true");

/*
 * $1 the vehicle, $2 sub, $3 the body, $4 who.  The record and the
 * vehicle's last service (unless the record is older), its mileage
 * (never lower) and version, in one statement.  No row: no vehicle.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_record_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "WITH o AS (SELECT v.id, v.customer_id FROM vehicles v"
    NGX_HTTP_CUSTOMER_VEHICLE_OWN " FOR UPDATE OF v),"
    " r AS (INSERT INTO service_records AS r (vehicle_id, customer_id,"
    " service_date, mileage, description, cost, performed_by, created_by)"
    " SELECT o.id, o.customer_id,"
    NGX_HTTP_CUSTOMER_VEHICLE_DATE("serviceDate") ","
    NGX_HTTP_CUSTOMER_VEHICLE_INT("mileage") ", b->>'description',"
    " coalesce((b->>'cost')::numeric, 0), b->>'performedBy', $4::text"
    " FROM o, (SELECT $3::jsonb AS b) j RETURNING r.*),"
    " u AS (UPDATE vehicles v SET"
    " last_service_date = CASE WHEN v.last_service_date IS NULL"
    " OR r.service_date >= v.last_service_date THEN r.service_date"
    " ELSE v.last_service_date END,"
    " last_service_mileage = CASE WHEN v.last_service_date IS NULL"
    " OR r.service_date >= v.last_service_date THEN r.mileage"
    " ELSE v.last_service_mileage END,"
    " mileage = greatest(v.mileage, r.mileage), updated_at = now(),"
    " updated_by = $4::text, version = v.version + 1"
    " FROM r WHERE v.id = r.vehicle_id RETURNING v.id)"
    " SELECT " NGX_HTTP_CUSTOMER_RECORD_COLUMNS " FROM r");

/* $1 the vehicle, $2 sub, $3 limit, $4 offset */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_records_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(4,
    "SELECT n.total, r.* FROM vehicles v"
    " CROSS JOIN LATERAL (SELECT count(*) AS total FROM service_records"
    " WHERE vehicle_id = v.id) n"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_RECORD_COLUMNS
    " FROM service_records r WHERE r.vehicle_id = v.id"
    NGX_HTTP_CUSTOMER_RECORD_ORDER " LIMIT $3 OFFSET $4) r ON true"
    NGX_HTTP_CUSTOMER_VEHICLE_OWN);

/* $1 the customer, $2 sub, $3 limit, $4 offset: every vehicle's */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_vehicles_history_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(4,
    NGX_HTTP_CUSTOMER_PAGE_SQL("service_records WHERE customer_id = c.id",
        "SELECT " NGX_HTTP_CUSTOMER_RECORD_COLUMNS ","
        " v.make, v.model, v.vin FROM service_records r"
        " JOIN vehicles v ON v.id = r.vehicle_id WHERE r.customer_id = c.id"
        NGX_HTTP_CUSTOMER_RECORD_ORDER " LIMIT $3 OFFSET $4"));


/*
 * A record's edit or delete moves its vehicle's last service only where
 * that came from the record: the vehicle's last service date and mileage
 * were the record's ("o" has the vehicle, "old" the record as it was).
 * Then they become those of the newest record left (the others, and the
 * edited one where "changed" adds it), or none.  An edited record that
 * is now newer than the vehicle's last service moves it as a new record
 * would.  The vehicle's mileage only ever rises.
 */
#define NGX_HTTP_CUSTOMER_RECORD_OWN                                         \
    "WITH o AS (SELECT v.id, v.last_service_date AS date,"                  \
    " v.last_service_mileage AS mileage FROM vehicles v"                    \
    NGX_HTTP_CUSTOMER_VEHICLE_OWN " FOR UPDATE OF v),"                      \
    " old AS (SELECT r.* FROM service_records r, o"                         \
    " WHERE r.id = $3 AND r.vehicle_id = o.id),"                            \
    " was AS (SELECT o.date IS NOT DISTINCT FROM old.service_date"          \
    " AND o.mileage IS NOT DISTINCT FROM old.mileage AS was FROM o, old)"

/* the edited record r is the vehicle v's last service now */
#define NGX_HTTP_CUSTOMER_RECORD_NEWER                                       \
    "(v.last_service_date IS NULL"                                          \
    " OR r.service_date >= v.last_service_date)"

#define NGX_HTTP_CUSTOMER_RECORD_NEWEST(changed)                             \
    " l AS (SELECT x.service_date, x.mileage FROM"                          \
    " (SELECT id, service_date, mileage, created_at FROM service_records"   \
    " WHERE vehicle_id = $1 AND id <> $3" changed ") x"                    \
    " ORDER BY x.service_date DESC, x.created_at DESC, x.id DESC LIMIT 1)"

/*
 * $1 the vehicle, $2 sub, $3 the record, $4 the members (jsonb), $5 who,
 * $6 the If-Match version or NULL.  No row: no such vehicle or record (of
 * that vehicle); NULL columns: a stale version.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_record_edit_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(6,
    NGX_HTTP_CUSTOMER_RECORD_OWN ","
    " r AS (UPDATE service_records r SET"
    " service_date = coalesce(" NGX_HTTP_CUSTOMER_VEHICLE_DATE("serviceDate")
    ", r.service_date),"
    " mileage = coalesce(" NGX_HTTP_CUSTOMER_VEHICLE_INT("mileage")
    ", r.mileage),"
    " description = coalesce(b->>'description', r.description),"
    " cost = coalesce((b->>'cost')::numeric, r.cost),"
    " performed_by = CASE WHEN b ? 'performedBy' THEN b->>'performedBy'"
    " ELSE r.performed_by END, version = r.version + 1"
    " FROM old, (SELECT $4::jsonb AS b) j WHERE r.id = old.id"
    " AND ($6::integer IS NULL OR old.version = $6::integer)"
    " RETURNING r.*),"
    NGX_HTTP_CUSTOMER_RECORD_NEWEST(" UNION ALL SELECT id, service_date,"
                                    " mileage, created_at FROM r") ","
    " u AS (UPDATE vehicles v SET"
    " last_service_date = CASE WHEN was.was THEN l.service_date"
    " WHEN " NGX_HTTP_CUSTOMER_RECORD_NEWER " THEN r.service_date"
    " ELSE v.last_service_date END,"
    " last_service_mileage = CASE WHEN was.was THEN l.mileage"
    " WHEN " NGX_HTTP_CUSTOMER_RECORD_NEWER " THEN r.mileage"
    " ELSE v.last_service_mileage END,"
    " mileage = greatest(v.mileage, r.mileage), updated_at = now(),"
    " updated_by = $5::text, version = v.version + 1"
    " FROM r, was, l WHERE v.id = $1 AND (was.was"
    " OR " NGX_HTTP_CUSTOMER_RECORD_NEWER " OR r.mileage > v.mileage)"
    " RETURNING v.id)"
    " SELECT " NGX_HTTP_CUSTOMER_RECORD_COLUMNS
    " FROM old LEFT JOIN r ON true");

/* $1 the vehicle, $2 sub, $3 the record, $4 who */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_record_delete_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    NGX_HTTP_CUSTOMER_RECORD_OWN ","
    " d AS (DELETE FROM service_records r USING old WHERE r.id = old.id"
    " RETURNING r.id)," NGX_HTTP_CUSTOMER_RECORD_NEWEST("") ","
    " u AS (UPDATE vehicles v SET last_service_date = l.service_date,"
    " last_service_mileage = l.mileage, updated_at = now(),"
    " updated_by = $4::text, version = v.version + 1"
    " FROM d, was LEFT JOIN l ON true WHERE v.id = $1 AND was.was"
    " RETURNING v.id)"
    " SELECT d.id, api_ts(now()) FROM d");


#define NGX_HTTP_CUSTOMER_VEHICLE_PAGE(name)                                 \
    NGX_HTTP_CUSTOMER_OWN_ID(name), NGX_HTTP_CUSTOMER_PARAM(PAGE)

/* a new vehicle or service record: $3 the body, $4 who */
#define NGX_HTTP_CUSTOMER_VEHICLE_NEW(name)                                  \
    NGX_HTTP_CUSTOMER_OWN_ID(name), NGX_HTTP_CUSTOMER_PARAM(JSON),           \
    NGX_HTTP_CUSTOMER_PARAM(SUB)

/* PUT (put "t": absent members take the default), PATCH, the mileage */
#define NGX_HTTP_CUSTOMER_VEHICLE_UPDATE(put, text)                          \
    .nonempty = NGX_HTTP_CUSTOMER_ONE_FIELD,                                 \
    .stmt = &ngx_http_customer_vehicles_update_sql,                          \
    .params = { NGX_HTTP_CUSTOMER_OWN_ID("vehicleId"),                       \
                NGX_HTTP_CUSTOMER_PARAM(JSON),                               \
                NGX_HTTP_CUSTOMER_NAMED(VALUE, put),                         \
                NGX_HTTP_CUSTOMER_PARAM(IF_MATCH),                           \
                NGX_HTTP_CUSTOMER_PARAM(SUB) },                              \
    .message = text, NGX_HTTP_CUSTOMER_VEHICLE_ROW,                          \
    .missing = &ngx_http_customer_vehicle_missing, .etag = 1,                \
    .refused = &ngx_http_customer_vehicle_stale,                             \
    .otherwise = &ngx_http_customer_mileage_lower,                           \
    .because = NGX_HTTP_CUSTOMER_VEHICLE_STALE,                              \
    .conflict = &ngx_http_customer_vin_taken

/* a created vehicle; no customer, or the VIN is taken */
#define NGX_HTTP_CUSTOMER_VEHICLE_CREATED                                    \
    .stmt = &ngx_http_customer_vehicles_create_sql,                          \
    .status = NGX_HTTP_CREATED, .message = "Vehicle created successfully",   \
    NGX_HTTP_CUSTOMER_VEHICLE_ROW, .etag = 1,                                \
    .refused = &ngx_http_customer_vin_taken,                                 \
    .exists = NGX_HTTP_CUSTOMER_VEHICLE_FOUND,                               \
    .conflict = &ngx_http_customer_vin_taken

#define NGX_HTTP_CUSTOMER_VEHICLE_ROW                                        \
    NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_vehicle_columns)

#define NGX_HTTP_CUSTOMER_RECORD_ROW                                         \
    .columns = ngx_http_customer_record_columns,                             \
    .ncolumns = NGX_HTTP_CUSTOMER_RECORD_NCOLUMNS

/* a page of vehicles, newest first */
#define NGX_HTTP_CUSTOMER_VEHICLE_LIST                                       \
    .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,                                 \
    .message = "Vehicles retrieved successfully", .list = "vehicles",        \
    NGX_HTTP_CUSTOMER_VEHICLE_ROW

/* a page of service records */
#define NGX_HTTP_CUSTOMER_RECORD_LIST(text)                                  \
    .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE, .message = text,                \
    .list = "serviceRecords"

/* the vehicle of the path, when the caller may reach it */
#define NGX_HTTP_CUSTOMER_VEHICLE_ID                                         \
    .params = { NGX_HTTP_CUSTOMER_OWN_ID("vehicleId") },                     \
    .missing = &ngx_http_customer_vehicle_missing

static const char  *ngx_http_customer_booleans[] = { "true", "false", NULL };

ngx_http_customer_route_t  ngx_http_customer_vehicles_routes[] = {
    { NGX_HTTP_GET, "/api/customers/{}/vehicles",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_vehicles_list_sql,
      .params = { NGX_HTTP_CUSTOMER_VEHICLE_PAGE("customerId") },
      NGX_HTTP_CUSTOMER_VEHICLE_LIST },
    { NGX_HTTP_POST, "/api/customers/{}/vehicles",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_vehicle_fields,
      .params = { NGX_HTTP_CUSTOMER_VEHICLE_NEW("customerId") },
      NGX_HTTP_CUSTOMER_VEHICLE_CREATED },
    /* every vehicle's records, each with its make, model and VIN */
    { NGX_HTTP_GET, "/api/customers/{}/service-history",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_vehicles_history_sql,
      .params = { NGX_HTTP_CUSTOMER_VEHICLE_PAGE("customerId") },
      NGX_HTTP_CUSTOMER_RECORD_LIST("Service history retrieved successfully"),
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_record_columns) },
    /* its 400 names the filters before the page, and the years last */
    { NGX_HTTP_GET, "/api/vehicles",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .stmt = &ngx_http_customer_vehicles_all_sql,
      .params = {
          NGX_HTTP_CUSTOMER_CHECKED("make", ngx_http_customer_check_line,
                                    1, 50),
          NGX_HTTP_CUSTOMER_CHECKED("model", ngx_http_customer_check_line,
                                    1, 50),
          NGX_HTTP_CUSTOMER_UINT("yearFrom", 1886, 0, 0),
          NGX_HTTP_CUSTOMER_UINT("yearTo", 1886, 0, 0),
          NGX_HTTP_CUSTOMER_ENUM("serviceDue", ngx_http_customer_booleans),
          NGX_HTTP_CUSTOMER_UINT("insuranceExpiringWithin", 0, 365, 0),
          NGX_HTTP_CUSTOMER_CHECKED("customerId",
                                    ngx_http_customer_check_uuid, 0, 0),
          NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      .args_first = 1, .check = ngx_http_customer_vehicles_years,
      NGX_HTTP_CUSTOMER_VEHICLE_LIST },
    /* the owner's customerId in the body: 422 when it names none */
    { NGX_HTTP_POST, "/api/vehicles",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_vehicle_new_fields,
      .params = { NGX_HTTP_CUSTOMER_NAMED(BODY, "customerId"),
                  NGX_HTTP_CUSTOMER_PARAM(OWN),
                  NGX_HTTP_CUSTOMER_PARAM(JSON),
                  NGX_HTTP_CUSTOMER_PARAM(SUB) },
      NGX_HTTP_CUSTOMER_VEHICLE_CREATED,
      .missing = &ngx_http_customer_no_customer },
    { NGX_HTTP_GET, "/api/vehicles/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_vehicles_get_sql,
      NGX_HTTP_CUSTOMER_VEHICLE_ID, .message = "Vehicle retrieved successfully",
      NGX_HTTP_CUSTOMER_VEHICLE_ROW, .etag = 1 },
    { NGX_HTTP_PUT, "/api/vehicles/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_vehicle_fields,
      NGX_HTTP_CUSTOMER_VEHICLE_UPDATE("t", "Vehicle updated successfully") },
    { NGX_HTTP_PATCH, "/api/vehicles/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_vehicle_fields, .partial = 1,
      NGX_HTTP_CUSTOMER_VEHICLE_UPDATE("f", "Vehicle updated successfully") },
    { NGX_HTTP_DELETE, "/api/vehicles/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_vehicles_delete_sql,
      NGX_HTTP_CUSTOMER_VEHICLE_ID, .message = "Vehicle deleted successfully",
      NGX_HTTP_CUSTOMER_DELETED("vehicleId") },
    /* the mileage required, the rest kept */
    { NGX_HTTP_POST, "/api/vehicles/{}/update-mileage",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_mileage_fields,
      NGX_HTTP_CUSTOMER_VEHICLE_UPDATE("f", "Mileage updated successfully") },
    { NGX_HTTP_GET, "/api/vehicles/{}/service-status",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_vehicles_status_sql,
      NGX_HTTP_CUSTOMER_VEHICLE_ID,
      .message = "Service status retrieved successfully",
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_status_columns) },
    { NGX_HTTP_GET, "/api/vehicles/{}/service-records",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_vehicles_records_sql,
      .params = { NGX_HTTP_CUSTOMER_VEHICLE_PAGE("vehicleId") },
      NGX_HTTP_CUSTOMER_RECORD_LIST("Service records retrieved successfully"),
      NGX_HTTP_CUSTOMER_RECORD_ROW,
      .missing = &ngx_http_customer_vehicle_missing },
    { NGX_HTTP_POST, "/api/vehicles/{}/service-records",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_record_fields,
      .stmt = &ngx_http_customer_vehicles_record_sql,
      .params = { NGX_HTTP_CUSTOMER_VEHICLE_NEW("vehicleId") },
      .status = NGX_HTTP_CREATED,
      .message = "Service record added successfully",
      NGX_HTTP_CUSTOMER_RECORD_ROW,
      .missing = &ngx_http_customer_vehicle_missing },
    { NGX_HTTP_PATCH, "/api/vehicles/{}/service-records/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_record_fields, .partial = 1,
      .nonempty = NGX_HTTP_CUSTOMER_ONE_FIELD,
      .stmt = &ngx_http_customer_record_edit_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("vehicleId"),
                  NGX_HTTP_CUSTOMER_NAMED(ID, "serviceRecordId"),
                  NGX_HTTP_CUSTOMER_PARAM(JSON),
                  NGX_HTTP_CUSTOMER_PARAM(SUB),
                  NGX_HTTP_CUSTOMER_PARAM(IF_MATCH) },
      .message = "Service record updated successfully",
      NGX_HTTP_CUSTOMER_RECORD_ROW,
      .missing = &ngx_http_customer_record_missing, .etag = 1,
      .refused = &ngx_http_customer_record_stale },
    { NGX_HTTP_DELETE, "/api/vehicles/{}/service-records/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_record_delete_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("vehicleId"),
                  NGX_HTTP_CUSTOMER_NAMED(ID, "serviceRecordId"),
                  NGX_HTTP_CUSTOMER_PARAM(SUB) },
      .message = "Service record deleted successfully",
      NGX_HTTP_CUSTOMER_DELETED("serviceRecordId"),
      .missing = &ngx_http_customer_record_missing },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/* the admin's list: yearFrom, when both are given, not after yearTo */

static ngx_int_t
ngx_http_customer_vehicles_years(ngx_http_customer_ctx_t *ctx)
{
    ngx_uint_t  from, to;

    /* both were checked already: these cannot fail */

    (void) ngx_http_customer_arg_uint(ctx, "yearFrom", 0, 0,
                                      NGX_MAX_UINT32_VALUE, &from);
    (void) ngx_http_customer_arg_uint(ctx, "yearTo", 0, 0,
                                      NGX_MAX_UINT32_VALUE, &to);

    if (from == 0 || to == 0 || from <= to) {
        return NGX_OK;
    }

    if (ngx_http_customer_add_error(ctx, (u_char *) "yearFrom", 8,
                                    "Must not be after yearTo")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}

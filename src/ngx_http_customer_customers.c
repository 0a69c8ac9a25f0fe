
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_customers.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_peer.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_users.h"


/*
 * Customers: create, read, update (PUT replaces the objects it names,
 * PATCH merges "preferences"), delete, and the paged list.  Every write is
 * one SQL statement, so it is one transaction.  The validated body goes to
 * PostgreSQL as one jsonb parameter; statements pick the members out.
 */


#define NGX_HTTP_CUSTOMER_COLUMNS                                            \
    "id, user_id, email, full_name, contact_number, date_of_birth::text, "   \
    "national_id, addresses, emergency_contact, business, "                  \
    "customer_status, customer_type, is_verified, total_orders, "            \
    "total_order_value, total_complaints, open_complaints, "                 \
    "api_ts(last_order_date), api_ts(last_complaint_date), "                 \
    "api_ts(customer_since), notes, to_json(tags), preferences, metadata, "  \
    "api_ts(created_at), api_ts(updated_at), created_by, updated_by, "       \
    "api_ts(verified_at), verified_by, emergency_contacts, "                 \
    "business IS NOT NULL, version"

#define NGX_HTTP_CUSTOMER_NCOLUMNS  33      /* the last one is version */
#define NGX_HTTP_CUSTOMER_NATIONAL_ID  6    /* its column */

#define NGX_HTTP_CUSTOMER_LIST_COLUMNS                                       \
    "id, user_id, email, full_name, contact_number, customer_status, "       \
    "customer_type, is_verified, total_orders, total_order_value, "          \
    "total_complaints, open_complaints, api_ts(last_order_date), "           \
    "api_ts(customer_since), api_ts(created_at)"

#define NGX_HTTP_CUSTOMER_NLIST_COLUMNS  15

#define NGX_HTTP_CUSTOMER_DEFAULT_PREFERENCES                                \
    "'{\"newsletter\": false, \"notifications\": true, "                     \
    "\"language\": \"en\"}'::jsonb"

#define NGX_HTTP_CUSTOMER_NSORTS  5

/* where the list's totalItems comes from (Prefer: count=...) */
#define NGX_HTTP_CUSTOMER_COUNT_EXACT      0    /* count(*) or the counters */
#define NGX_HTTP_CUSTOMER_COUNT_PLANNED    1    /* the planner's estimate */
#define NGX_HTTP_CUSTOMER_COUNT_ESTIMATED  2    /* exact up to a threshold */
#define NGX_HTTP_CUSTOMER_NCOUNTS          3

/* count=estimated counts exactly up to this many matches */
#define NGX_HTTP_CUSTOMER_COUNT_EXACT_MAX  "1000"


typedef struct {
    ngx_uint_t    page;
    ngx_uint_t    limit;
    ngx_uint_t    sort;       /* index into ngx_http_customer_sorts */
    ngx_uint_t    dir;        /* 0 asc, 1 desc */
    ngx_uint_t    count;      /* NGX_HTTP_CUSTOMER_COUNT_*, as answered */
    unsigned      cursor:1;   /* paging by cursor */
    unsigned      prefer:1;   /* the request asked for a count kind */
} ngx_http_customer_list_t;


static ngx_int_t ngx_http_customer_stats_check(ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_delete_checked);
static ngx_int_t ngx_http_customer_delete_orders(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_delete_orders_known(
    ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_deleted_done);
static ngx_int_t ngx_http_customer_list(ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_list_done);
static ngx_int_t ngx_http_customer_list_extra(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_list_t *l);
static void ngx_http_customer_list_count(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_list_t *l);
static ngx_int_t ngx_http_customer_list_headers(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_list_t *l);
static ngx_int_t ngx_http_customer_next_cursor(ngx_http_customer_ctx_t *ctx,
    yajl_gen g, PGresult *res, ngx_http_customer_list_t *l);
static NGX_HTTP_CUSTOMER_CHECK(addresses);


/*
 * The record described once, in its answer's column order: column(name,
 * type) is a column only, readonly(name, type) one that a body may not
 * set, and field(name, type, how, check, min, max, values, sub) one that
 * it may (see router.h; sub: an object's members).
 */
#define NGX_HTTP_CUSTOMER_MEMBERS(column, readonly, field)                   \
    readonly("customerId", STRING)                                           \
    field("userId", STRING, KEY, user_id, 1, 128, NULL, NULL)                \
    field("email", STRING, REQUIRED, email, 3, 254, NULL, NULL)              \
    field("fullName", STRING, REQUIRED, line, 2, 100, NULL, NULL)            \
    field("contactNumber", STRING, NULLABLE, phone, 0, 0, NULL, NULL)        \
    field("dateOfBirth", STRING, NULLABLE, birth_date, 0, 150, NULL, NULL)   \
    field("nationalId", STRING, NULLABLE, line, 1, 64, NULL, NULL)           \
    field("addresses", JSON, OPTIONAL, addresses, 0, 10, NULL,               \
          ngx_http_customer_address_fields)                                  \
    field("emergencyContact", JSON, NULLABLE, object, 0, 0, NULL,            \
          ngx_http_customer_contact_fields)                                  \
    field("business", JSON, NULLABLE, object, 0, 0, NULL,                    \
          ngx_http_customer_business_fields)                                 \
    field("customerStatus", STRING, OPTIONAL, enum, 0, 0,                    \
          ngx_http_customer_statuses, NULL)                                  \
    field("customerType", STRING, OPTIONAL, enum, 0, 0,                      \
          ngx_http_customer_types, NULL)                                     \
    field("isVerified", BOOL, OPTIONAL, bool, 0, 0, NULL, NULL)              \
    field("totalOrders", NUMBER, CREATE, count, 0, NGX_MAX_INT32_VALUE,      \
          NULL, NULL)                                                        \
    field("totalOrderValue", NUMBER, CREATE, money, 0, 0, NULL, NULL)        \
    field("totalComplaints", NUMBER, CREATE, count, 0, NGX_MAX_INT32_VALUE,  \
          NULL, NULL)                                                        \
    field("openComplaints", NUMBER, CREATE, count, 0, NGX_MAX_INT32_VALUE,   \
          NULL, NULL)                                                        \
    field("lastOrderDate", STRING, LAST, timestamp, 0, 0, NULL, NULL)        \
    field("lastComplaintDate", STRING, LAST, timestamp, 0, 0, NULL, NULL)    \
    field("customerSince", STRING, CREATE, timestamp, 0, 0, NULL, NULL)      \
    field("notes", STRING, NULLABLE, text, 0, 1000, NULL, NULL)              \
    field("tags", JSON, OPTIONAL, tags, 0, 20, NULL, NULL)                   \
    field("preferences", JSON, OPTIONAL, object, 0, 0, NULL,                 \
          ngx_http_customer_preference_fields)                               \
    readonly("metadata", JSON)                                               \
    readonly("createdAt", STRING)                                            \
    readonly("updatedAt", STRING)                                            \
    readonly("createdBy", STRING)                                            \
    readonly("updatedBy", STRING)                                            \
    readonly("verifiedAt", STRING)                                           \
    readonly("verifiedBy", STRING)                                           \
    /* the list; emergencyContact is its first (a trigger, sql/026) */      \
    field("emergencyContacts", JSON, OPTIONAL, objects, 0, 5, NULL,          \
          ngx_http_customer_contact_fields)                                  \
    column("isBusiness", BOOL)               /* has business details */      \
    readonly("version", NUMBER)

/* userId: required, and set on create only; the last order's and
   complaint's times: set on create only, or null */
#define NGX_HTTP_CUSTOMER_F_KEY                                              \
    (NGX_HTTP_CUSTOMER_F_REQUIRED | NGX_HTTP_CUSTOMER_F_CREATE)
#define NGX_HTTP_CUSTOMER_F_LAST                                             \
    (NGX_HTTP_CUSTOMER_F_CREATE | NGX_HTTP_CUSTOMER_F_NULLABLE)

#define NGX_HTTP_CUSTOMER_RECORD_COLUMN(name, type, how, check, min, max,    \
                                        values, sub)                         \
    { name, NGX_HTTP_CUSTOMER_COL_##type },
#define NGX_HTTP_CUSTOMER_RECORD_READONLY(name, type)                        \
    { name, NULL, NGX_HTTP_CUSTOMER_F_READONLY, 0, 0, NULL, NULL },
#define NGX_HTTP_CUSTOMER_RECORD_FIELD(name, type, how, check, min, max,     \
                                       values, sub)                          \
    { name, ngx_http_customer_check_##check, NGX_HTTP_CUSTOMER_F_##how,      \
      min, max, values, sub },


static ngx_http_customer_column_t  ngx_http_customer_columns[] = {
    NGX_HTTP_CUSTOMER_MEMBERS(NGX_HTTP_CUSTOMER_COLUMN,
                              NGX_HTTP_CUSTOMER_COLUMN,
                              NGX_HTTP_CUSTOMER_RECORD_COLUMN)
};


/* the same, nationalId masked; filled at start */
static ngx_http_customer_column_t
    ngx_http_customer_masked_columns[NGX_HTTP_CUSTOMER_NCOLUMNS];


static ngx_http_customer_column_t  ngx_http_customer_list_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "userId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "email", NGX_HTTP_CUSTOMER_COL_STRING },
    { "fullName", NGX_HTTP_CUSTOMER_COL_STRING },
    { "contactNumber", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerStatus", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerType", NGX_HTTP_CUSTOMER_COL_STRING },
    { "isVerified", NGX_HTTP_CUSTOMER_COL_BOOL },
    { "totalOrders", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "totalOrderValue", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "totalComplaints", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "openComplaints", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "lastOrderDate", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerSince", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


static const char  *ngx_http_customer_statuses[] = {
    "Active", "Inactive", "Suspended", NULL
};

static const char  *ngx_http_customer_types[] = {
    "Regular", "Premium", "VIP", NULL
};

static ngx_http_customer_field_t  ngx_http_customer_type_fields[] = {
    NGX_HTTP_CUSTOMER_ONE_OF("type", REQUIRED, ngx_http_customer_types),
    NGX_HTTP_CUSTOMER_FIELDS_END
};


static ngx_http_customer_field_t  ngx_http_customer_address_fields[] = {
    NGX_HTTP_CUSTOMER_OPTIONAL("label", line, 1, 50),
    NGX_HTTP_CUSTOMER_REQUIRED("line1", line, 1, 200),
    NGX_HTTP_CUSTOMER_NULLABLE("line2", line, 0, 200),
    NGX_HTTP_CUSTOMER_REQUIRED("city", line, 1, 100),
    NGX_HTTP_CUSTOMER_NULLABLE("state", line, 0, 100),
    NGX_HTTP_CUSTOMER_NULLABLE("postalCode", line, 1, 20),
    NGX_HTTP_CUSTOMER_REQUIRED("country", country, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("isDefault", bool, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_END
};

static ngx_http_customer_field_t  ngx_http_customer_contact_fields[] = {
    { "name", ngx_http_customer_check_line,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 2, 100, NULL, NULL },
    { "relationship", ngx_http_customer_check_line,
      NGX_HTTP_CUSTOMER_F_NULLABLE, 1, 50, NULL, NULL },
    { "phone", ngx_http_customer_check_phone,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0, NULL, NULL },
    { "email", ngx_http_customer_check_email,
      NGX_HTTP_CUSTOMER_F_NULLABLE, 3, 254, NULL, NULL },
    NGX_HTTP_CUSTOMER_FIELDS_END
};

static ngx_http_customer_field_t  ngx_http_customer_business_fields[] = {
    { "companyName", ngx_http_customer_check_line,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 1, 200, NULL, NULL },
    { "taxId", ngx_http_customer_check_line,
      NGX_HTTP_CUSTOMER_F_NULLABLE, 1, 50, NULL, NULL },
    NGX_HTTP_CUSTOMER_FIELDS_END
};


/* the writable customer record; see the README for the rules */
static ngx_http_customer_field_t  ngx_http_customer_fields[] = {
    NGX_HTTP_CUSTOMER_MEMBERS(NGX_HTTP_CUSTOMER_NO_FIELD,
                              NGX_HTTP_CUSTOMER_RECORD_READONLY,
                              NGX_HTTP_CUSTOMER_RECORD_FIELD)
    NGX_HTTP_CUSTOMER_FIELDS_END
};


/*
 * what the Auth Service sends when a user registers, the record's four
 * fields after customerId (filled at start); the rest after userId is
 * what it keeps of a user, for users.c
 */
#define NGX_HTTP_CUSTOMER_NINTERNAL  4

ngx_http_customer_field_t
    ngx_http_customer_internal_fields[NGX_HTTP_CUSTOMER_NINTERNAL + 1];


static ngx_http_customer_field_t  ngx_http_customer_increment_fields[] = {
    NGX_HTTP_CUSTOMER_OPTIONAL("totalOrders", delta, 0, 1000000),
    NGX_HTTP_CUSTOMER_OPTIONAL("totalOrderValue", money_delta, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("totalComplaints", delta, 0, 1000000),
    NGX_HTTP_CUSTOMER_OPTIONAL("openComplaints", delta, 0, 1000000),
    NGX_HTTP_CUSTOMER_FIELDS_END
};


/* absolute values, or signed increments under "increment" */
static ngx_http_customer_field_t  ngx_http_customer_stats_fields[] = {
    NGX_HTTP_CUSTOMER_OPTIONAL("totalOrders", count, 0, NGX_MAX_INT32_VALUE),
    NGX_HTTP_CUSTOMER_OPTIONAL("totalOrderValue", money, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("totalComplaints", count, 0,
                               NGX_MAX_INT32_VALUE),
    NGX_HTTP_CUSTOMER_OPTIONAL("openComplaints", count, 0, NGX_MAX_INT32_VALUE),
    NGX_HTTP_CUSTOMER_NULLABLE("lastOrderDate", timestamp, 0, 0),
    NGX_HTTP_CUSTOMER_NULLABLE("lastComplaintDate", timestamp, 0, 0),
    { "increment", ngx_http_customer_check_object, 0, 0, 0, NULL,
      ngx_http_customer_increment_fields },
    NGX_HTTP_CUSTOMER_FIELDS_END
};


/* PATCH /me: the fields of ngx_http_customer_fields, most read-only */
static ngx_http_customer_field_t
    ngx_http_customer_me_fields[sizeof(ngx_http_customer_fields)
                                / sizeof(ngx_http_customer_field_t)];


static ngx_http_customer_column_t  ngx_http_customer_stats_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "totalOrders", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "totalOrderValue", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "totalComplaints", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "openComplaints", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "lastOrderDate", NGX_HTTP_CUSTOMER_COL_STRING },
    { "lastComplaintDate", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerSince", NGX_HTTP_CUSTOMER_COL_STRING },
    { "updatedAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


/*
 * $1 id, $2 the Customer's sub (NULL for an Administrator).  The reads of
 * a turn of the loop with the same $2 run as one statement for all their
 * ids (many): one execution instead of one per read, the way the server
 * spends the least per read.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_get_many_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(2,
    "SELECT " NGX_HTTP_CUSTOMER_COLUMNS " FROM unnest($1::uuid[])"
    " WITH ORDINALITY AS k(k_id, k_n) LEFT JOIN customers ON id = k_id"
    " AND ($2::text IS NULL OR user_id = $2::text) ORDER BY k_n");

static ngx_http_customer_pg_stmt_t  ngx_http_customer_get_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED_MANY(2,
    "SELECT " NGX_HTTP_CUSTOMER_COLUMNS " FROM customers WHERE id = $1"
    " AND ($2::text IS NULL OR user_id = $2::text)",
    &ngx_http_customer_get_many_sql);


/* $1 the validated body, $2 who; make bench runs it through pgbench */
#define NGX_HTTP_CUSTOMER_INSERT_SQL                                         \
    "INSERT INTO customers (user_id, email, full_name, contact_number,"     \
    " date_of_birth, national_id, addresses, emergency_contact,"            \
    " emergency_contacts, business, customer_status, customer_type,"        \
    " is_verified, total_orders,"                                           \
    " total_order_value, total_complaints, open_complaints,"                \
    " last_order_date, last_complaint_date, customer_since, notes, tags,"   \
    " preferences, created_by, updated_by)"                                 \
    " SELECT j->>'userId', j->>'email', j->>'fullName',"                    \
    " j->>'contactNumber', (j->>'dateOfBirth')::date, j->>'nationalId',"    \
    " coalesce(j->'addresses', '[]'),"                                      \
    " nullif(j->'emergencyContact', 'null'),"                               \
    " coalesce(j->'emergencyContacts', '[]'),"                              \
    " nullif(j->'business', 'null'),"                                       \
    " coalesce(j->>'customerStatus', 'Active'),"                            \
    " coalesce(j->>'customerType', 'Regular'),"                             \
    " coalesce((j->>'isVerified')::boolean, false),"                        \
    " coalesce((j->>'totalOrders')::integer, 0),"                           \
    " coalesce((j->>'totalOrderValue')::numeric, 0),"                       \
    " coalesce((j->>'totalComplaints')::integer, 0),"                       \
    " coalesce((j->>'openComplaints')::integer, 0),"                        \
    " (j->>'lastOrderDate')::timestamptz,"                                  \
    " (j->>'lastComplaintDate')::timestamptz,"                              \
    " coalesce((j->>'customerSince')::timestamptz, now()),"                 \
    " j->>'notes',"                                                         \
    " ARRAY(SELECT jsonb_array_elements_text("                              \
    "coalesce(j->'tags', '[]'))),"                                          \
    " " NGX_HTTP_CUSTOMER_DEFAULT_PREFERENCES                               \
    " || coalesce(j->'preferences', '{}'),"                                 \
    " $2, $2"                                                               \
    " FROM (SELECT $1::jsonb AS j) s"

#define NGX_HTTP_CUSTOMER_CREATE_SQL                                         \
    NGX_HTTP_CUSTOMER_INSERT_SQL " RETURNING " NGX_HTTP_CUSTOMER_COLUMNS

static ngx_http_customer_pg_stmt_t  ngx_http_customer_create_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    NGX_HTTP_CUSTOMER_CREATE_SQL);

/* the Auth Service's: the new record's keys, not all of it */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_internal_create_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    NGX_HTTP_CUSTOMER_INSERT_SQL " RETURNING id, user_id, customer_status,"
    " customer_type, api_ts(created_at)");

static ngx_http_customer_column_t  ngx_http_customer_internal_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "userId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerStatus", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerType", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


/*
 * $1 id (or userId), $2 body (j, as jsonb), $3 merge preferences (PATCH),
 * $4 If-Match version or NULL, $5 who.  A member the body lacks keeps its
 * column (coalesce() where null is refused before).  The last column
 * tells a missing row (NULL) from a stale version when no row was
 * updated.  A customerStatus that changes the status is a status change
 * like any other: the same statement writes its history row (whose
 * trigger raises the event) and the event's row that tells the Auth
 * Service (delivered by the outbox run).  cur locks the row and reads the
 * status it replaces; u joins it so that cur runs first (read after the
 * update, FOR UPDATE would follow it to the new version).
 */
#define NGX_HTTP_CUSTOMER_UPDATE_SQL(key, j)                                 \
    "WITH cur AS (SELECT id AS cur_id, version AS cur_version,"            \
    " customer_status AS old_status FROM customers"                         \
    " WHERE " key " = $1 FOR UPDATE),"                                      \
    " u AS (UPDATE customers SET"                                           \
    " email = coalesce(j->>'email', email),"                                \
    " full_name = coalesce(j->>'fullName', full_name),"                     \
    " contact_number = CASE WHEN j ? 'contactNumber'"                       \
    " THEN j->>'contactNumber' ELSE contact_number END,"                    \
    " date_of_birth = CASE WHEN j ? 'dateOfBirth'"                          \
    " THEN (j->>'dateOfBirth')::date ELSE date_of_birth END,"               \
    " national_id = CASE WHEN j ? 'nationalId' THEN j->>'nationalId'"       \
    " ELSE national_id END,"                                                \
    " addresses = coalesce(j->'addresses', addresses),"                     \
    " emergency_contact = CASE WHEN j ? 'emergencyContact'"                 \
    " THEN nullif(j->'emergencyContact', 'null')"                           \
    " ELSE emergency_contact END,"                                          \
    " emergency_contacts = coalesce(j->'emergencyContacts',"                \
    " emergency_contacts),"                                                 \
    " business = CASE WHEN j ? 'business'"                                  \
    " THEN nullif(j->'business', 'null') ELSE business END,"                \
    " customer_status = coalesce(j->>'customerStatus', customer_status),"   \
    " customer_type = coalesce(j->>'customerType', customer_type),"         \
    " is_verified = coalesce((j->>'isVerified')::boolean, is_verified),"    \
    " notes = CASE WHEN j ? 'notes' THEN j->>'notes' ELSE notes END,"       \
    " tags = CASE WHEN j ? 'tags'"                                          \
    " THEN ARRAY(SELECT jsonb_array_elements_text(j->'tags'))"              \
    " ELSE tags END,"                                                       \
    " preferences = CASE WHEN NOT j ? 'preferences' THEN preferences"       \
    " WHEN $3::boolean THEN preferences || (j->'preferences')"              \
    " ELSE " NGX_HTTP_CUSTOMER_DEFAULT_PREFERENCES                          \
    " || (j->'preferences') END,"                                           \
    " updated_at = now(), updated_by = $5, version = version + 1"           \
    " FROM (SELECT " j " AS j) s, cur"                                      \
    " WHERE customers.id = cur.cur_id"                                      \
    " AND ($4::integer IS NULL OR version = $4::integer)"                   \
    " RETURNING " NGX_HTTP_CUSTOMER_COLUMNS "),"                            \
    " h AS (INSERT INTO customer_status_history (customer_id, old_status,"  \
    " new_status, reason, changed_by, event_id) SELECT u.id,"               \
    " cur.old_status, u.customer_status, NULL, $5, gen_random_uuid()"       \
    " FROM u JOIN cur ON cur.cur_id = u.id"                                 \
    " WHERE u.customer_status <> cur.old_status"                            \
    " RETURNING customer_id, old_status, new_status, changed_by,"           \
    " event_id),"                                                           \
    " o AS (INSERT INTO events (event_id, destination, type, customer_id,"  \
    " subject, data, channels) SELECT h.event_id, 'auth',"                  \
    " 'customer.status_changed', u.id, 'customers/' || u.id,"               \
    " status_event_data(u.id, u.user_id, h.old_status, h.new_status,"       \
    " NULL, h.changed_by), '{}' FROM u JOIN h ON h.customer_id = u.id"      \
    " RETURNING id)"                                                        \
    " SELECT u.*, (SELECT cur_version FROM cur)"                            \
    " FROM (SELECT 1) one LEFT JOIN u ON true"


static ngx_http_customer_pg_stmt_t  ngx_http_customer_update_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(5,
    NGX_HTTP_CUSTOMER_UPDATE_SQL("id", "$2::jsonb"));

static ngx_http_customer_pg_stmt_t  ngx_http_customer_update_me_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(5,
    NGX_HTTP_CUSTOMER_UPDATE_SQL("user_id", "$2::jsonb"));

/* PATCH /{id}/type: the update with one member, $2 the type */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_update_type_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(5,
    NGX_HTTP_CUSTOMER_UPDATE_SQL("id", "jsonb_build_object('customerType',"
                                 " $2::text)"));


static ngx_http_customer_pg_stmt_t  ngx_http_customer_get_by_user_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT " NGX_HTTP_CUSTOMER_COLUMNS " FROM customers WHERE user_id = $1");


static ngx_http_customer_pg_stmt_t  ngx_http_customer_stats_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT id, total_orders, total_order_value, total_complaints,"
    " open_complaints, api_ts(last_order_date), api_ts(last_complaint_date),"
    " api_ts(customer_since), api_ts(updated_at) FROM customers"
    " WHERE user_id = $1");


/*
 * $1 id, $2 body, $3 who.  Absolute values replace, "increment" adds
 * (signed); the table's CHECK keeps every total at or above zero.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_stats_update_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(3,
    "UPDATE customers SET"
    " total_orders = coalesce((j->>'totalOrders')::integer, total_orders)"
    " + coalesce((j#>>'{increment,totalOrders}')::integer, 0),"
    " total_order_value = coalesce((j->>'totalOrderValue')::numeric,"
    " total_order_value)"
    " + coalesce((j#>>'{increment,totalOrderValue}')::numeric, 0),"
    " total_complaints = coalesce((j->>'totalComplaints')::integer,"
    " total_complaints)"
    " + coalesce((j#>>'{increment,totalComplaints}')::integer, 0),"
    " open_complaints = coalesce((j->>'openComplaints')::integer,"
    " open_complaints)"
    " + coalesce((j#>>'{increment,openComplaints}')::integer, 0),"
    " last_order_date = CASE WHEN j ? 'lastOrderDate'"
    " THEN (j->>'lastOrderDate')::timestamptz ELSE last_order_date END,"
    " last_complaint_date = CASE WHEN j ? 'lastComplaintDate'"
    " THEN (j->>'lastComplaintDate')::timestamptz"
    " ELSE last_complaint_date END,"
    " updated_at = now(), updated_by = $3, version = version + 1"
    " FROM (SELECT $2::jsonb AS j) s WHERE id = $1"
    " RETURNING id, total_orders, total_order_value, total_complaints,"
    " open_complaints, api_ts(last_order_date),"
    " api_ts(last_complaint_date), api_ts(customer_since),"
    " api_ts(updated_at), version");


/* $1 id, $2 who */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_verify_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "UPDATE customers SET is_verified = true, verified_at = now(),"
    " verified_by = $2, updated_at = now(), updated_by = $2,"
    " version = version + 1 WHERE id = $1"
    " RETURNING " NGX_HTTP_CUSTOMER_COLUMNS);


static ngx_http_customer_pg_stmt_t  ngx_http_customer_open_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT open_complaints FROM customers WHERE id = $1");


/* $1 id, $2 the id as the path spells it: the answer's customerId */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_delete_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "WITH c AS (SELECT id, open_complaints FROM customers WHERE id = $1"
    " FOR UPDATE),"
    " d AS (DELETE FROM customers WHERE id ="
    " (SELECT id FROM c WHERE open_complaints = 0) RETURNING id)"
    " SELECT $2::text, api_ts(now()), c.open_complaints,"
    " (SELECT count(*) FROM d) FROM c");


static ngx_http_customer_refusal_t  ngx_http_customer_taken = {
    NGX_HTTP_CONFLICT, "Customer already exists", "userId",
    "A customer with this userId already exists", "customers_user_id_key"
};

static ngx_http_customer_refusal_t  ngx_http_customer_stale =
    NGX_HTTP_CUSTOMER_STALE("The customer was changed since that "
                            "version; fetch it again");

static ngx_http_customer_refusal_t  ngx_http_customer_negative = {
    NGX_HTTP_UNPROCESSABLE_ENTITY, "Statistics cannot go below zero",
    "increment",
    "The change would make a total negative; nothing was written",
    "customers_totals_nonneg"
};


/* the record, nationalId masked for a Customer, its version the ETag */
#define NGX_HTTP_CUSTOMER_RECORD                                             \
    .columns = ngx_http_customer_columns,                                    \
    .masked = ngx_http_customer_masked_columns,                              \
    .ncolumns = NGX_HTTP_CUSTOMER_NCOLUMNS, .etag = 1

/* PUT, PATCH, PATCH /me, /type: the update (a bad id before the body) */
#define NGX_HTTP_CUSTOMER_UPDATE(key, value, merge)                          \
    .ids_first = 1,                                                          \
    .params = { key, value, NGX_HTTP_CUSTOMER_NAMED(VALUE, merge),           \
                NGX_HTTP_CUSTOMER_PARAM(IF_MATCH),                           \
                NGX_HTTP_CUSTOMER_PARAM(SUB) },                              \
    .message = "Customer updated successfully", NGX_HTTP_CUSTOMER_RECORD,   \
    .refused = &ngx_http_customer_stale,                                     \
    .exists = NGX_HTTP_CUSTOMER_NCOLUMNS

/* PUT and PATCH of the record by id: the members they name */
#define NGX_HTTP_CUSTOMER_PROFILE_EDIT(merge)                                \
    .fields = ngx_http_customer_fields, .partial = 1,                        \
    .nonempty = NGX_HTTP_CUSTOMER_CHANGE_ONE,                                \
    .stmt = &ngx_http_customer_update_sql,                                   \
    NGX_HTTP_CUSTOMER_UPDATE(NGX_HTTP_CUSTOMER_ID, NGX_HTTP_CUSTOMER_BODY,   \
                             merge)

#define NGX_HTTP_CUSTOMER_STATS                                              \
    NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_stats_columns)

/* a new record: the body, and its creator */
#define NGX_HTTP_CUSTOMER_NEW                                                \
    .params = { NGX_HTTP_CUSTOMER_PARAM(JSON), NGX_HTTP_CUSTOMER_PARAM(SUB) }, \
    .status = NGX_HTTP_CREATED, .conflict = &ngx_http_customer_taken

#define NGX_HTTP_CUSTOMER_ID    NGX_HTTP_CUSTOMER_CUSTOMER_ID
#define NGX_HTTP_CUSTOMER_BODY  NGX_HTTP_CUSTOMER_PARAM(JSON)

#define NGX_HTTP_CUSTOMER_A  NGX_HTTP_CUSTOMER_ADMIN
#define NGX_HTTP_CUSTOMER_S  NGX_HTTP_CUSTOMER_SELF
#define NGX_HTTP_CUSTOMER_I  NGX_HTTP_CUSTOMER_SERVICE

/* literal paths before the "{}" patterns that would also match them */
ngx_http_customer_route_t  ngx_http_customer_customers_routes[] = {
    { NGX_HTTP_GET, "/api/customers", ngx_http_customer_list,
      NGX_HTTP_CUSTOMER_A, 0, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_POST, "/api/customers", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_A, 1, 0,
      .fields = ngx_http_customer_fields,
      .stmt = &ngx_http_customer_create_sql,
      .run = ngx_http_customer_user_check,
      NGX_HTTP_CUSTOMER_NEW, .message = "Customer created successfully",
      NGX_HTTP_CUSTOMER_RECORD },
    { NGX_HTTP_GET, "/api/customers/me", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_S, 0, 0,
      .stmt = &ngx_http_customer_get_by_user_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(ME) },
      .message = "Customer retrieved successfully",
      NGX_HTTP_CUSTOMER_RECORD },
    { NGX_HTTP_PATCH, "/api/customers/me", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_S, 1, 0,
      .fields = ngx_http_customer_me_fields, .partial = 1,
      .nonempty = NGX_HTTP_CUSTOMER_CHANGE_ONE,
      .stmt = &ngx_http_customer_update_me_sql,
      NGX_HTTP_CUSTOMER_UPDATE(NGX_HTTP_CUSTOMER_PARAM(ME),
                               NGX_HTTP_CUSTOMER_BODY, "true") },
    { NGX_HTTP_GET, "/api/customers/me/statistics",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_S, 0, 0,
      .stmt = &ngx_http_customer_stats_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(ME) },
      .message = "Customer statistics retrieved successfully",
      NGX_HTTP_CUSTOMER_STATS },
    { NGX_HTTP_POST, "/api/customers/internal/create",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_I, 1, 0,
      .fields = ngx_http_customer_internal_fields,
      .stmt = &ngx_http_customer_internal_create_sql,
      .run = ngx_http_customer_user_check,
      NGX_HTTP_CUSTOMER_NEW,
      .message = "Customer record created successfully",
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_internal_columns) },
    /* a total is either set or incremented in one request, not both */
    { NGX_HTTP_PATCH, "/api/customers/internal/{}/statistics",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_I, 1, 0,
      .ids_first = 1, .check = ngx_http_customer_stats_check,
      .fields = ngx_http_customer_stats_fields, .partial = 1,
      .nonempty = NGX_HTTP_CUSTOMER_CHANGE_ONE,
      .stmt = &ngx_http_customer_stats_update_sql,
      .params = { NGX_HTTP_CUSTOMER_ID, NGX_HTTP_CUSTOMER_BODY,
                  NGX_HTTP_CUSTOMER_PARAM(SUB) },
      .message = "Customer statistics updated successfully",
      NGX_HTTP_CUSTOMER_STATS, .conflict = &ngx_http_customer_negative },
    /* the path's userId is checked as on create: a bad one is 400 */
    { NGX_HTTP_GET, "/api/customers/internal/user/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_I, 0, 0,
      .stmt = &ngx_http_customer_get_by_user_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(USER) },
      .message = "Customer retrieved successfully",
      NGX_HTTP_CUSTOMER_RECORD },
    { NGX_HTTP_PATCH, "/api/customers/{}/type", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_A, 1, 0,
      .fields = ngx_http_customer_type_fields,
      .stmt = &ngx_http_customer_update_type_sql,
      NGX_HTTP_CUSTOMER_UPDATE(NGX_HTTP_CUSTOMER_ID,
                               NGX_HTTP_CUSTOMER_NAMED(BODY, "type"),
                               "true") },
    { NGX_HTTP_POST, "/api/customers/{}/verify", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_A, 0, 0,
      .stmt = &ngx_http_customer_verify_sql,
      .params = { NGX_HTTP_CUSTOMER_ID, NGX_HTTP_CUSTOMER_PARAM(SUB) },
      .message = "Customer verified successfully",
      NGX_HTTP_CUSTOMER_RECORD },
    /* a Customer reads its own record by id too (others are 404) */
    { NGX_HTTP_GET, "/api/customers/{}", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_S, 0, 0,
      .stmt = &ngx_http_customer_get_sql,
      .params = { NGX_HTTP_CUSTOMER_ID, NGX_HTTP_CUSTOMER_PARAM(OWN) },
      .message = "Customer retrieved successfully",
      NGX_HTTP_CUSTOMER_RECORD },
    /* PUT replaces the objects it names, PATCH merges preferences */
    { NGX_HTTP_PUT, "/api/customers/{}", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_A, 1, 0,
      NGX_HTTP_CUSTOMER_PROFILE_EDIT("false") },
    { NGX_HTTP_PATCH, "/api/customers/{}", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_A, 1, 0,
      NGX_HTTP_CUSTOMER_PROFILE_EDIT("true") },
    /* its open complaints, then the Order Service, then the delete */
    { NGX_HTTP_DELETE, "/api/customers/{}", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_A, 0, 0,
      .stmt = &ngx_http_customer_open_sql,
      .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID },
      .done = ngx_http_customer_delete_checked,
      .message = "Customer deleted successfully",
      NGX_HTTP_CUSTOMER_DELETED("customerId") },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/* one statement per sort key and direction, made at worker start */
static ngx_http_customer_pg_stmt_t
    ngx_http_customer_list_sql[NGX_HTTP_CUSTOMER_NSORTS][2];

/* API name, column, NULLS LAST for the nullable one, the column's type */
static const char  *ngx_http_customer_sorts[NGX_HTTP_CUSTOMER_NSORTS][4] = {
    { "createdAt", "created_at", "", "timestamptz" },
    { "totalOrders", "total_orders", "", "integer" },
    { "totalOrderValue", "total_order_value", "", "numeric" },
    { "lastOrderDate", "last_order_date", " NULLS LAST", "timestamptz" },
    { "fullName", "full_name", "", "text" }
};


/* the same with every filter and a keyset cursor */
static ngx_http_customer_pg_stmt_t
    ngx_http_customer_list_filtered_sql[NGX_HTTP_CUSTOMER_NSORTS][2];

/*
 * And again with the total from customer_list_total() (sql/022) instead
 * of count(*): $14 is 0 for count=planned, the threshold for
 * count=estimated.
 */
static ngx_http_customer_pg_stmt_t
    ngx_http_customer_list_estimated_sql[NGX_HTTP_CUSTOMER_NSORTS][2];

static ngx_str_t  ngx_http_customer_counts[NGX_HTTP_CUSTOMER_NCOUNTS] = {
    ngx_string("exact"),
    ngx_string("planned"),
    ngx_string("estimated")
};


static ngx_int_t ngx_http_customer_list_filtered(ngx_cycle_t *cycle,
    ngx_uint_t i, ngx_uint_t d, const char *filters);
static ngx_int_t ngx_http_customer_list_statement(ngx_cycle_t *cycle,
    ngx_http_customer_pg_stmt_t *stmt, ngx_uint_t nparams, const char *total,
    ngx_uint_t i, ngx_uint_t d, const char *filters, u_char *keyset);


/* status and type: the list's filters when no other is given */
#define NGX_HTTP_CUSTOMER_LIST_WHERE                                         \
    " WHERE ($1::text IS NULL OR customer_status = $1)"                      \
    " AND ($2::text IS NULL OR customer_type = $2)"


ngx_int_t
ngx_http_customer_customers_init(ngx_cycle_t *cycle)
{
    ngx_uint_t   i, d;

    static const char  *mine[] = {
        "contactNumber", "preferences", "fullName", "addresses",
        "emergencyContact", "emergencyContacts", "dateOfBirth", NULL
    };

    /*
     * $5 searchTerm (a substring of name, email or phone, case and
     * accents folded; /search is the typo-tolerant one), $6 tag, $7
     * verified, $8..$9 created, $10..$11 last order ([from, to)),
     * $12/$13 the cursor's sort value (NULL: in the NULLs) and id (NULL:
     * no cursor), $14 isBusiness (business details or none)
     */
    static const char  filters[] =
        " WHERE ($1::text IS NULL OR customer_status = $1)"
        " AND ($2::text IS NULL OR customer_type = $2)"
        " AND ($5::text IS NULL OR search_text LIKE '%' || replace("
        "replace(replace(customer_fold($5), '\\', '\\\\'), '%', '\\%'),"
        " '_', '\\_') || '%')"
        " AND ($6::text IS NULL OR tags @> ARRAY[$6::text])"
        " AND ($7::boolean IS NULL OR is_verified = $7)"
        " AND ($8::timestamptz IS NULL OR created_at >= $8)"
        " AND ($9::timestamptz IS NULL OR created_at < $9)"
        " AND ($10::timestamptz IS NULL OR last_order_date >= $10)"
        " AND ($11::timestamptz IS NULL OR last_order_date < $11)"
        " AND ($14::boolean IS NULL OR (business IS NOT NULL) = $14)";

    ngx_memcpy(ngx_http_customer_masked_columns, ngx_http_customer_columns,
               sizeof(ngx_http_customer_masked_columns));
    ngx_http_customer_masked_columns[NGX_HTTP_CUSTOMER_NATIONAL_ID].type =
                                               NGX_HTTP_CUSTOMER_COL_MASKED;

    /*
     * a customer may change these of its own record, nothing else: not
     * its status, type, statistics, verification, email (the Auth
     * Service's) or national id
     */

    ngx_memcpy(ngx_http_customer_me_fields, ngx_http_customer_fields,
               sizeof(ngx_http_customer_fields));
    ngx_memcpy(ngx_http_customer_internal_fields, &ngx_http_customer_fields[1],
               NGX_HTTP_CUSTOMER_NINTERNAL
               * sizeof(ngx_http_customer_field_t));

    for (i = 0; ngx_http_customer_me_fields[i].name; i++) {
        for (d = 0; mine[d]; d++) {
            if (ngx_strcmp(ngx_http_customer_me_fields[i].name, mine[d])
                == 0)
            {
                break;
            }
        }

        if (mine[d] == NULL) {
            ngx_http_customer_me_fields[i].flags |=
                                               NGX_HTTP_CUSTOMER_F_READONLY;
        }
    }

    /*
     * Totals come from customer_counts, kept by triggers; the page is cut
     * before its columns are formatted, so rows that OFFSET skips are
     * never passed through to_char().
     */

    for (i = 0; i < NGX_HTTP_CUSTOMER_NSORTS; i++) {
        for (d = 0; d < 2; d++) {
            if (ngx_http_customer_list_statement(cycle,
                                     &ngx_http_customer_list_sql[i][d], 4,
                                     "SELECT coalesce(sum(n), 0) AS total"
                                     " FROM customer_counts"
                                     NGX_HTTP_CUSTOMER_LIST_WHERE,
                                     i, d, NGX_HTTP_CUSTOMER_LIST_WHERE, NULL)
                != NGX_OK
                || ngx_http_customer_list_filtered(cycle, i, d, filters)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/*
 * The keyset: rows after (v, id) in the order "col dir [NULLS LAST], id
 * dir".  A NOT NULL column compares as a row, which an index serves; the
 * nullable one (last_order_date) spells out where its NULLs go.
 */

static ngx_int_t
ngx_http_customer_list_filtered(ngx_cycle_t *cycle, ngx_uint_t i,
    ngx_uint_t d, const char *filters)
{
    u_char       *k, *t;
    const char   *col, *type, *cmp;

    col = ngx_http_customer_sorts[i][1];
    type = ngx_http_customer_sorts[i][3];
    cmp = d ? "<" : ">";

    k = ngx_pnalloc(cycle->pool, 512);
    t = ngx_pnalloc(cycle->pool, 1024);
    if (k == NULL || t == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_customer_sorts[i][2][0] == '\0') {
        ngx_snprintf(k, 511, "($13::uuid IS NULL OR (%s, id) %s"
                     " ($12::%s, $13::uuid))%Z", col, cmp, type);

    } else {
        ngx_snprintf(k, 511, "($13::uuid IS NULL"
                     " OR ($12::%s IS NOT NULL AND (%s %s $12::%s"
                     " OR (%s = $12::%s AND id %s $13::uuid)"
                     " OR %s IS NULL))"
                     " OR ($12::%s IS NULL AND %s IS NULL"
                     " AND id %s $13::uuid))%Z",
                     type, col, cmp, type, col, type, cmp, col,
                     type, col, cmp);
    }

    /* the total without the keyset: every match, not those after it */

    ngx_snprintf(t, 1023, "SELECT count(*) AS total FROM customers%s%Z",
                 filters);

    if (ngx_http_customer_list_statement(cycle,
                                 &ngx_http_customer_list_filtered_sql[i][d],
                                 14, (char *) t, i, d, filters, k)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_customer_list_statement(cycle,
                                 &ngx_http_customer_list_estimated_sql[i][d],
                                 15,
                                 "SELECT customer_list_total($15::integer,"
                                 " $1::text, $2::text, $5::text, $6::text,"
                                 " $7::boolean, $8::timestamptz,"
                                 " $9::timestamptz, $10::timestamptz,"
                                 " $11::timestamptz, $14::boolean) AS total",
                                 i, d, filters, k);
}


/*
 * The page, filtered (and after the keyset, when there is one), beside
 * the one-row total that the SELECT gives; sort key names come from the
 * table above, never a request.
 */

static ngx_int_t
ngx_http_customer_list_statement(ngx_cycle_t *cycle,
    ngx_http_customer_pg_stmt_t *stmt, ngx_uint_t nparams, const char *total,
    ngx_uint_t i, ngx_uint_t d, const char *filters, u_char *keyset)
{
    u_char       *p;
    size_t        len;
    const char   *col;

    static const char  *dirs[2] = { "ASC", "DESC" };

    col = ngx_http_customer_sorts[i][1];

    p = ngx_pnalloc(cycle->pool, 3072);
    if (p == NULL) {
        return NGX_ERROR;
    }

    len = ngx_snprintf(p, 3071,
                       "SELECT t.total, c.* FROM (%s) t"
                       " LEFT JOIN LATERAL (SELECT "
                       NGX_HTTP_CUSTOMER_LIST_COLUMNS ", %s::text AS sort_key"
                       " FROM (SELECT * FROM customers%s%s%s"
                       " ORDER BY %s %s%s, id %s"
                       " LIMIT $3 OFFSET $4) p"
                       " ORDER BY %s %s%s, id %s) c ON true",
                       total, col, filters, keyset ? " AND " : "",
                       keyset ? (char *) keyset : "",
                       col, dirs[d], ngx_http_customer_sorts[i][2], dirs[d],
                       col, dirs[d], ngx_http_customer_sorts[i][2], dirs[d])
          - p;

    if (len >= 3071) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "customer: list statement too long");
        return NGX_ERROR;
    }

    p[len] = '\0';

    stmt->sql = (char *) p;
    stmt->nparams = nparams;
    /* pages cost milliseconds: each runs alone (see pg.c) */
    stmt->shared = 0;
    stmt->readonly = 1;
    stmt->replica = 1;

    return NGX_OK;
}


static NGX_HTTP_CUSTOMER_CHECK(addresses)
{
    ngx_int_t                  rc;
    ngx_uint_t                 defaults;
    ngx_http_customer_json_t  *a, *m;

    rc = ngx_http_customer_check_objects(ctx, path, v, f);
    if (rc != NGX_OK) {
        return rc;
    }

    defaults = 0;

    for (a = v->child; a; a = a->next) {
        m = ngx_http_customer_json_member(a, "isDefault");
        defaults += (m && m->boolean);
    }

    if (defaults > 1) {
        return ngx_http_customer_fail(ctx, path,
                                      "At most one address can be the "
                                      "default");
    }

    return NGX_OK;
}


/*
 * DELETE: the open complaints are ours, the active orders the Order
 * Service's: asked first (when customer_order_service is set); the
 * delete itself checks the complaints again, atomically.
 */

static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_delete_checked)
{
    ngx_int_t                      rc;
    ngx_str_t                      args, path;
    ngx_http_customer_loc_conf_t  *llcf;

    if (ngx_http_customer_rows(ctx, q, res, &rc) == 0) {
        return rc;
    }

    ctx->open = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                         PQgetlength(res, 0, 0));

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    if (llcf->order_service.len == 0) {
        /* no Order Service here: only our own complaints count */
        return ngx_http_customer_delete_orders_known(ctx);
    }

    args.data = ngx_pnalloc(ctx->request->pool, 80);
    if (args.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args.len = ngx_sprintf(args.data,
                           "customerId=%V&status=active&page=1&limit=100",
                           &ctx->params[0])
               - args.data;

    ngx_str_set(&path, "/api/orders");

    return ngx_http_customer_peer_call(ctx, &llcf->order_service,
                                       NGX_HTTP_GET, &path, &args, NULL,
                                       NULL, ngx_http_customer_delete_orders);
}


static ngx_int_t
ngx_http_customer_delete_orders(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                  n;
    ngx_http_customer_json_t  *items, *pg, *total;

    if (ctx->peer.rc == NGX_OK && ctx->peer.status == NGX_HTTP_NOT_FOUND) {
        ctx->active = 0;
        return ngx_http_customer_delete_orders_known(ctx);
    }

    if (ctx->peer.rc != NGX_OK || ctx->peer.status < 200
        || ctx->peer.status >= 300
        || ngx_http_customer_peer_list(ctx, "orders", &items, &pg) != NGX_OK)
    {
        /* cannot know: refuse rather than delete a customer with orders */
        return ngx_http_customer_peer_error(ctx, "Order Service",
                                            "order data");
    }

    n = items->n;
    total = ngx_http_customer_json_member(pg, "totalItems");

    if (total && total->type == NGX_HTTP_CUSTOMER_JSON_NUMBER
        && ngx_atoi(total->str.data, total->str.len) != NGX_ERROR)
    {
        n = ngx_max(n, ngx_atoi(total->str.data, total->str.len));
    }

    ctx->active = n;

    return ngx_http_customer_delete_orders_known(ctx);
}


static ngx_int_t
ngx_http_customer_delete_orders_known(ngx_http_customer_ctx_t *ctx)
{
    u_char                        *msg;
    ngx_http_customer_pg_query_t  *q;

    if (ctx->active > 0 || ctx->open > 0) {
        msg = ngx_pnalloc(ctx->request->pool, 160);
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(msg, "Customer has %i active order%s and %i open "
                    "complaint%s. Please resolve these first.%Z",
                    ctx->active, ctx->active == 1 ? "" : "s",
                    ctx->open, ctx->open == 1 ? "" : "s");

        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                   "Cannot delete customer with active orders or "
                   "complaints", "customer", (char *) msg);
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = (char *) ctx->params[0].data;
    q->values[1] = q->values[0];

    return ngx_http_customer_query_run(ctx, q, &ngx_http_customer_delete_sql,
                                       ngx_http_customer_deleted_done);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_deleted_done)
{
    u_char     *msg;
    char       *open;
    ngx_int_t   rc;

    if (ngx_http_customer_rows(ctx, q, res, &rc) == 0) {
        return rc;
    }

    if (PQgetvalue(res, 0, 3)[0] == '0') {
        open = PQgetvalue(res, 0, 2);

        msg = ngx_pnalloc(ctx->request->pool, 128);
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(msg, "Customer has %s open complaint%s. "
                    "Please resolve these first.%Z",
                    open, ngx_strcmp(open, "1") == 0 ? "" : "s");

        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                   "Cannot delete customer with active orders or "
                   "complaints", "customer", (char *) msg);
    }

    return ngx_http_customer_send_row(ctx, NGX_HTTP_OK, ctx->route->message,
                                      res, ctx->route->columns,
                                      ctx->route->ncolumns);
}


/* the optional list filters: query name, checker, where it goes ($n) */
static struct {
    const char                  *name;
    ngx_uint_t                   param;
    ngx_http_customer_check_pt   check;
} ngx_http_customer_list_filters[] = {
    { "searchTerm", 5, NULL },
    { "tag", 6, NULL },
    { "verified", 7, NULL },
    { "isBusiness", 14, NULL },
    { "createdFrom", 8, ngx_http_customer_check_timestamp },
    { "createdTo", 9, ngx_http_customer_check_timestamp },
    { "lastOrderFrom", 10, ngx_http_customer_check_timestamp },
    { "lastOrderTo", 11, ngx_http_customer_check_timestamp },
    { NULL, 0, NULL }
};


static ngx_int_t
ngx_http_customer_list(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_str_t                      status, type, sort, order;
    ngx_uint_t                     s, d, invalid;
    ngx_http_customer_list_t      *l;
    ngx_http_customer_pg_stmt_t   *stmt;
    ngx_http_customer_pg_query_t  *q;

    l = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_customer_list_t));
    if (l == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = l;
    invalid = 0;

    rc = ngx_http_customer_page_args(ctx, &l->page, &l->limit);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    invalid |= (rc != NGX_OK);

    rc = ngx_http_customer_arg_enum(ctx, "status",
                                    ngx_http_customer_statuses, &status);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    invalid |= (rc == NGX_ABORT);

    rc = ngx_http_customer_arg_enum(ctx, "type", ngx_http_customer_types,
                                    &type);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    invalid |= (rc == NGX_ABORT);

    s = 0;

    if (ngx_http_customer_arg_str(ctx, "sortBy", &sort) == NGX_OK) {
        for (s = 0; s < NGX_HTTP_CUSTOMER_NSORTS; s++) {
            if (ngx_strlen(ngx_http_customer_sorts[s][0]) == sort.len
                && ngx_strncmp(ngx_http_customer_sorts[s][0], sort.data,
                               sort.len) == 0)
            {
                break;
            }
        }

        if (s == NGX_HTTP_CUSTOMER_NSORTS) {
            ngx_http_customer_add_error(ctx, (u_char *) "sortBy", 6,
                                        "Must be one of: createdAt, "
                                        "totalOrders, totalOrderValue, "
                                        "lastOrderDate, fullName");
            invalid = 1;
        }
    }

    d = 1;

    if (ngx_http_customer_arg_str(ctx, "sortOrder", &order) == NGX_OK) {
        if (order.len == 3 && ngx_strncasecmp(order.data,
                                              (u_char *) "asc", 3) == 0)
        {
            d = 0;

        } else if (!(order.len == 4
                     && ngx_strncasecmp(order.data, (u_char *) "desc", 4)
                        == 0))
        {
            ngx_http_customer_add_error(ctx, (u_char *) "sortOrder", 9,
                                        "Must be asc or desc");
            invalid = 1;
        }
    }

    if (invalid) {
        return ngx_http_customer_invalid(ctx);
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = status.len ? (char *) status.data : NULL;
    q->values[1] = type.len ? (char *) type.data : NULL;

    if (ngx_http_customer_page_values(ctx, q, 2, l->page, l->limit)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    l->sort = s;
    l->dir = d;

    ngx_http_customer_list_count(ctx, l);

    rc = ngx_http_customer_list_extra(ctx, q, l);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_customer_invalid(ctx);
    }

    if (rc == NGX_OK) {
        /*
         * status and type only: exact totals from customer_counts, which
         * cost less than any estimate, whatever the Prefer header asked
         */
        l->count = NGX_HTTP_CUSTOMER_COUNT_EXACT;
        stmt = &ngx_http_customer_list_sql[s][d];

    } else if (l->count == NGX_HTTP_CUSTOMER_COUNT_EXACT) {
        stmt = &ngx_http_customer_list_filtered_sql[s][d];

    } else {
        q->values[14] = (l->count == NGX_HTTP_CUSTOMER_COUNT_PLANNED)
                        ? "0" : NGX_HTTP_CUSTOMER_COUNT_EXACT_MAX;
        stmt = &ngx_http_customer_list_estimated_sql[s][d];
    }

    return ngx_http_customer_query_run(ctx, q, stmt,
                                       ngx_http_customer_list_done);
}


/*
 * "Prefer: count=exact|planned|estimated" (PostgREST's meanings) into
 * l->count; exact when absent.  Other preferences, and a count whose value
 * is none of these, are ignored (RFC 7240 §2).
 */

static void
ngx_http_customer_list_count(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_list_t *l)
{
    ngx_str_t   v;
    ngx_uint_t  i;

    l->count = NGX_HTTP_CUSTOMER_COUNT_EXACT;

    if (ngx_http_customer_prefer(ctx->request, "count", &v) != NGX_OK) {
        return;
    }

    for (i = 0; i < NGX_HTTP_CUSTOMER_NCOUNTS; i++) {
        if (v.len == ngx_http_customer_counts[i].len
            && ngx_strncasecmp(v.data, ngx_http_customer_counts[i].data,
                               v.len)
               == 0)
        {
            l->count = i;
            l->prefer = 1;
            return;
        }
    }
}


/*
 * Preference-Applied names the kind of this total when a count was asked
 * for (it may be exact where planned was asked: a total from the counters
 * is exact and cheaper).  The answer depends on Prefer: Vary says so.
 */

static ngx_int_t
ngx_http_customer_list_headers(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_list_t *l)
{
    u_char              *p;
    ngx_str_t            v;
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_str_set(&v, "Prefer");

    if (ngx_http_customer_push_header(&r->headers_out.headers, "Vary", &v)
        == NULL)
    {
        return NGX_ERROR;
    }

    if (!l->prefer) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, sizeof("count=estimated") - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v.data = p;
    v.len = ngx_sprintf(p, "count=%V", &ngx_http_customer_counts[l->count])
            - p;

    if (ngx_http_customer_push_header(&r->headers_out.headers,
                                      "Preference-Applied", &v)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The filters beyond status and type, and the cursor, into $5..$14.
 * NGX_OK: none given; NGX_AGAIN: some (the filtered statement);
 * NGX_DECLINED: bad values (errors added).
 */

static ngx_int_t
ngx_http_customer_list_extra(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_list_t *l)
{
    u_char                    *p, *bar;
    ngx_int_t                  rc;
    ngx_str_t                  v, path, cur, raw;
    ngx_uint_t                 i, any;
    const char                *flag;
    ngx_http_customer_json_t   j;
    ngx_http_customer_field_t  f;

    rc = NGX_OK;
    any = 0;

    ngx_memzero(&f, sizeof(ngx_http_customer_field_t));
    ngx_memzero(&j, sizeof(ngx_http_customer_json_t));

    for (i = 0; ngx_http_customer_list_filters[i].name; i++) {

        path.data = (u_char *) ngx_http_customer_list_filters[i].name;
        path.len = ngx_strlen(ngx_http_customer_list_filters[i].name);

        if (ngx_http_customer_arg_str(ctx, (char *) path.data, &v)
            != NGX_OK)
        {
            continue;
        }

        /* verified and isBusiness: true or false (v is), the rest text */

        if (i == 2 || i == 3) {
            if (ngx_http_customer_arg_flag(ctx, (char *) path.data, &flag)
                != NGX_OK)
            {
                rc = NGX_DECLINED;
                continue;
            }

        } else if (v.len == 0 || v.len > 100
                   || ngx_http_customer_utf8(v.data, v.len) != NGX_OK
                   || ngx_strlen(v.data) != v.len)
        {
            rc = ngx_http_customer_fail(ctx, &path,
                                        "Must be 1 to 100 characters");
            continue;
        }

        /*
         * a substring of three characters has a trigram, so the trigram
         * index finds its rows; a shorter one matched by reading every
         * customer
         */

        if (i == 0 && ngx_utf8_length(v.data, v.len) < 3) {
            rc = ngx_http_customer_fail(ctx, &path,
                                        "Must be 3 to 100 characters");
            continue;
        }

        if (ngx_http_customer_list_filters[i].check) {
            j.type = NGX_HTTP_CUSTOMER_JSON_STRING;
            j.str = v;

            if (ngx_http_customer_list_filters[i].check(ctx, &path, &j, &f)
                != NGX_OK)
            {
                rc = NGX_DECLINED;
                continue;
            }
        }

        q->values[ngx_http_customer_list_filters[i].param - 1] =
                                                             (char *) v.data;
        any = 1;
    }

    /* cursor: base64url of "<sort><dir>:<value or \1>|<id>" (ours) */

    if (ngx_http_customer_arg_str(ctx, "cursor", &raw) == NGX_OK) {
        ngx_str_set(&path, "cursor");

        cur.data = ngx_pnalloc(ctx->request->pool,
                               ngx_base64_decoded_length(raw.len) + 1);
        if (cur.data == NULL) {
            return NGX_ERROR;
        }

        if (raw.len == 0 || raw.len > 400
            || ngx_decode_base64url(&cur, &raw) != NGX_OK
            || cur.len < 40 || cur.data[2] != ':'
            || (size_t) (cur.data[0] - '0') != l->sort
            || (size_t) (cur.data[1] - '0') != l->dir)
        {
            return ngx_http_customer_fail(ctx, &path,
                                          "Not a cursor of this sort order; "
                                          "use the nextCursor of a page");
        }

        cur.data[cur.len] = '\0';

        bar = cur.data + cur.len - 37;
        v.data = bar + 1;
        v.len = 36;

        if (*bar != '|' || !ngx_http_customer_is_uuid(&v)
            || ngx_http_customer_utf8(cur.data, cur.len) != NGX_OK)
        {
            return ngx_http_customer_fail(ctx, &path,
                                          "Not a cursor of this sort order; "
                                          "use the nextCursor of a page");
        }

        *bar = '\0';
        p = cur.data + 3;

        q->values[11] = (*p == '\1') ? NULL : (char *) p;
        q->values[12] = (char *) v.data;

        /* the cursor says where: no offset */
        q->values[3] = "0";
        l->cursor = 1;
        any = 1;
    }

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    return any ? NGX_AGAIN : NGX_OK;
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_list_done)
{
    int                        n;
    yajl_gen                   g;
    ngx_int_t                  total;
    ngx_uint_t                 offset, rows;
    ngx_http_customer_list_t  *l;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) < 1)
    {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    l = ctx->data;

    total = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                     PQgetlength(res, 0, 0));
    if (total == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = PQntuples(res);

    if (l->count != NGX_HTTP_CUSTOMER_COUNT_EXACT) {

        /*
         * An estimate never contradicts the page itself: there are at
         * least as many matches as the rows up to its end, and a short
         * page of offset paging is the end, so the total is known.  (A
         * cursor page's offset is not.)
         */

        rows = PQgetisnull(res, 0, 1) ? 0 : (ngx_uint_t) n;
        offset = l->cursor ? 0 : (l->page - 1) * l->limit;

        if (!l->cursor && rows < l->limit && (rows > 0 || offset == 0)) {
            total = offset + rows;

        } else if (rows == 0 && !l->cursor) {
            total = ngx_min((ngx_uint_t) total, offset);

        } else {
            total = ngx_max((ngx_uint_t) total, offset + rows);
        }
    }

    g = ngx_http_customer_envelope(ctx, "Customers retrieved successfully");
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);

    if (ngx_http_customer_gen_rows(ctx, g, res, "customers", 1,
                                   ngx_http_customer_list_columns,
                                   NGX_HTTP_CUSTOMER_NLIST_COLUMNS)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_customer_gen_pagination(g, l->page, l->limit, total,
                                     l->page > 1 && !l->cursor);
    ngx_http_customer_gen_lit(g, "nextCursor");

    if (ngx_http_customer_next_cursor(ctx, g, res, l) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_customer_gen_lit(g, "totalItemsKind");
    ngx_http_customer_gen_str(g, &ngx_http_customer_counts[l->count]);

    yajl_gen_map_close(g);

    if (ngx_http_customer_list_headers(ctx, l) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}


/* PATCH statistics: a total is either set or incremented, not both */

static ngx_int_t
ngx_http_customer_stats_check(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_http_customer_json_t  *m, *inc, *d;

    rc = NGX_OK;
    inc = ngx_http_customer_json_member(ctx->body, "increment");

    if (inc && inc->type != NGX_HTTP_CUSTOMER_JSON_OBJECT) {
        inc = NULL;
    }

    for (m = ctx->body->child; inc && m; m = m->next) {
        for (d = inc->child; d; d = d->next) {
            if (d->key.len == m->key.len
                && ngx_strncmp(d->key.data, m->key.data, m->key.len) == 0)
            {
                if (ngx_http_customer_fail(ctx, &m->key,
                                           "Give a value or an increment, "
                                           "not both")
                    == NGX_ERROR)
                {
                    return NGX_ERROR;
                }

                rc = NGX_DECLINED;
            }
        }
    }

    return rc;
}


/*
 * A full page ends with a cursor for the next: the last row's sort value
 * and id, with the sort and direction they belong to, base64url.
 */

static ngx_int_t
ngx_http_customer_next_cursor(ngx_http_customer_ctx_t *ctx, yajl_gen g,
    PGresult *res, ngx_http_customer_list_t *l)
{
    int         last, key;
    u_char     *p;
    size_t      len;
    ngx_str_t   plain, enc;

    last = PQntuples(res) - 1;
    key = NGX_HTTP_CUSTOMER_NLIST_COLUMNS + 1;

    if (last < 0 || PQgetisnull(res, last, 1)
        || (ngx_uint_t) last + 1 < l->limit)
    {
        yajl_gen_null(g);
        return NGX_OK;
    }

    len = 3 + (PQgetisnull(res, last, key) ? 1 : PQgetlength(res, last, key))
          + 1 + 36;

    plain.data = ngx_pnalloc(ctx->request->pool, len);
    enc.data = ngx_pnalloc(ctx->request->pool, ngx_base64_encoded_length(len));
    if (plain.data == NULL || enc.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(plain.data, "%ui%ui:", l->sort, l->dir);

    if (PQgetisnull(res, last, key)) {
        *p++ = '\1';

    } else {
        p = ngx_cpymem(p, PQgetvalue(res, last, key),
                       PQgetlength(res, last, key));
    }

    *p++ = '|';
    p = ngx_cpymem(p, PQgetvalue(res, last, 1), 36);

    plain.len = p - plain.data;

    ngx_encode_base64url(&enc, &plain);

    yajl_gen_string(g, enc.data, enc.len);

    return NGX_OK;
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_credit.h"
#include "ngx_http_customer_router.h"


/*
 * Credit status of a customer.  An
 * Administrator or a service sets the score; one statement stores it with
 * its band, appends a history row and raises the alerts the change calls
 * for.  The reads are an Administrator's, or a Customer's own: for a
 * Customer the statements match the record only when its user_id is the
 * token's sub (any other id is "not found").
 */


#define NGX_HTTP_CUSTOMER_CREDIT_ALERT_COLUMNS                               \
    "a.id, a.customer_id, a.kind, a.message, a.credit_score,"                \
    " a.previous_score, a.band, a.is_read, api_ts(a.read_at),"               \
    " api_ts(a.created_at)"

#define NGX_HTTP_CUSTOMER_CREDIT_HISTORY_COLUMNS                             \
    "h.id, h.credit_score, h.previous_score, h.band, h.previous_band,"       \
    " h.source, h.changed_by, api_ts(h.changed_at)"

/* a customer's status, NULL columns after the id when no score is set */
#define NGX_HTTP_CUSTOMER_CREDIT_STATUS_SQL(where)                           \
    "SELECT c.id, s.credit_score, s.band, s.source,"                         \
    " api_ts(s.last_updated) FROM customers c"                               \
    " LEFT JOIN credit_status s ON s.customer_id = c.id WHERE " where


static ngx_http_customer_field_t  ngx_http_customer_credit_fields[] = {
    NGX_HTTP_CUSTOMER_REQUIRED("creditScore", count, 300, 850),
    NGX_HTTP_CUSTOMER_OPTIONAL("source", text, 1, 50),
    NGX_HTTP_CUSTOMER_FIELDS_END
};


static ngx_http_customer_field_t  ngx_http_customer_credit_read_fields[] = {
    NGX_HTTP_CUSTOMER_REQUIRED("read", bool, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_END
};


static ngx_http_customer_column_t  ngx_http_customer_credit_status_columns[]
    = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "creditScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "band", NGX_HTTP_CUSTOMER_COL_STRING },
    { "source", NGX_HTTP_CUSTOMER_COL_STRING },
    { "lastUpdated", NGX_HTTP_CUSTOMER_COL_STRING }
};


ngx_http_customer_column_t  ngx_http_customer_credit_put_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "creditScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "band", NGX_HTTP_CUSTOMER_COL_STRING },
    { "previousScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "previousBand", NGX_HTTP_CUSTOMER_COL_STRING },
    { "source", NGX_HTTP_CUSTOMER_COL_STRING },
    { "lastUpdated", NGX_HTTP_CUSTOMER_COL_STRING },
    { "alerts", NGX_HTTP_CUSTOMER_COL_JSON }
};


static ngx_http_customer_column_t  ngx_http_customer_credit_history_columns[]
    = {
    { "historyId", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "creditScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "previousScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "band", NGX_HTTP_CUSTOMER_COL_STRING },
    { "previousBand", NGX_HTTP_CUSTOMER_COL_STRING },
    { "source", NGX_HTTP_CUSTOMER_COL_STRING },
    { "changedBy", NGX_HTTP_CUSTOMER_COL_STRING },
    { "changedAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


static ngx_http_customer_column_t  ngx_http_customer_credit_alert_columns[] = {
    { "alertId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "kind", NGX_HTTP_CUSTOMER_COL_STRING },
    { "message", NGX_HTTP_CUSTOMER_COL_STRING },
    { "creditScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "previousScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "band", NGX_HTTP_CUSTOMER_COL_STRING },
    { "isRead", NGX_HTTP_CUSTOMER_COL_BOOL },
    { "readAt", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator).  No
 * row: no such customer, or not the caller's; NULL columns after the id:
 * no score set yet.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_get_sql =
    NGX_HTTP_CUSTOMER_PG_READ(2,
    NGX_HTTP_CUSTOMER_CREDIT_STATUS_SQL("c.id = $1"
        " AND ($2::text IS NULL OR c.user_id = $2::text)"));


/* $1 the token's sub */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_me_sql =
    NGX_HTTP_CUSTOMER_PG_READ(1,
    NGX_HTTP_CUSTOMER_CREDIT_STATUS_SQL("c.user_id = $1::text"));


/*
 * $1 customer id, $2 score, $3 source, $4 who.  Locking the customer
 * orders concurrent writes of one customer; locking its status row makes
 * a write that waited read the score the one before it committed (u
 * reads o, so the lock comes before u's own update of the row).  The
 * band is the highest whose min_score the score reaches.  A drop or a
 * rise alert when the band changes or the score moves by alert_points or
 * more; a milestone when the band is above the previous one and no
 * earlier history row has it.  The first score raises none.  No row: no
 * such customer.  The score estimate stores its score through it too.
 */
ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_put_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "WITH c AS (SELECT id FROM customers WHERE id = $1 FOR UPDATE),"
    " b AS (SELECT name, rank FROM credit_bands"
    " WHERE min_score <= $2::int ORDER BY min_score DESC LIMIT 1),"
    " o AS (SELECT s.credit_score, s.band, ob.rank FROM c"
    " JOIN credit_status s ON s.customer_id = c.id"
    " LEFT JOIN credit_bands ob ON ob.name = s.band FOR UPDATE OF s),"
    " t AS (SELECT coalesce((SELECT value FROM credit_settings"
    " WHERE key = 'alert_points'), 50) AS points),"
    " u AS (INSERT INTO credit_status AS s (customer_id, credit_score, band,"
    " source, last_updated)"
    " SELECT c.id, $2::int, b.name, $3::text, clock_timestamp()"
    " FROM c CROSS JOIN b LEFT JOIN o ON true"
    " ON CONFLICT (customer_id) DO UPDATE SET"
    " credit_score = excluded.credit_score, band = excluded.band,"
    " source = excluded.source, last_updated = excluded.last_updated"
    " RETURNING s.*),"
    " h AS (INSERT INTO credit_history (customer_id, credit_score,"
    " previous_score, band, previous_band, source, changed_by, changed_at)"
    " SELECT u.customer_id, u.credit_score, o.credit_score, u.band, o.band,"
    " u.source, $4::text, u.last_updated FROM u LEFT JOIN o ON true"
    " RETURNING id),"
    " a AS (INSERT INTO credit_alerts (customer_id, kind, message,"
    " credit_score, previous_score, band, created_at)"
    " SELECT u.customer_id, k.kind, 'Credit score '"
    " || CASE k.kind WHEN 'drop' THEN 'dropped' ELSE 'rose' END"
    " || ' from ' || o.credit_score || ' to ' || u.credit_score || ' ('"
    " || CASE WHEN o.band = u.band THEN u.band"
    " ELSE o.band || ' \xe2\x86\x92 ' || u.band END || ')',"
    " u.credit_score, o.credit_score, u.band, u.last_updated"
    " FROM u CROSS JOIN o CROSS JOIN t"
    " CROSS JOIN LATERAL (SELECT CASE WHEN u.credit_score < o.credit_score"
    " THEN 'drop' ELSE 'rise' END AS kind) k"
    " WHERE o.band <> u.band"
    " OR abs(u.credit_score - o.credit_score) >= t.points"
    " UNION ALL"
    " SELECT u.customer_id, 'milestone', 'Credit score reached the '"
    " || u.band || ' band for the first time (' || u.credit_score || ')',"
    " u.credit_score, o.credit_score, u.band, u.last_updated"
    " FROM u CROSS JOIN o CROSS JOIN b WHERE b.rank > o.rank"
    " AND NOT EXISTS (SELECT 1 FROM credit_history p"
    " WHERE p.customer_id = u.customer_id AND p.band = u.band)"
    " RETURNING *)"
    " SELECT u.customer_id, u.credit_score, u.band, o.credit_score, o.band,"
    " u.source, api_ts(u.last_updated),"
    " (SELECT coalesce(json_agg(json_build_object('alertId', a.id,"
    " 'customerId', a.customer_id, 'kind', a.kind, 'message', a.message,"
    " 'creditScore', a.credit_score, 'previousScore', a.previous_score,"
    " 'band', a.band, 'isRead', a.is_read, 'readAt', api_ts(a.read_at),"
    " 'createdAt', api_ts(a.created_at))"
    " ORDER BY a.kind = 'milestone'), '[]') FROM a)"
    " FROM u LEFT JOIN o ON true");


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator),
 * $3 limit, $4 offset.  No row: no such customer, or not the caller's.
 * Otherwise the total in each row, and one row with NULL columns for an
 * empty page.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_history_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(4,
    NGX_HTTP_CUSTOMER_PAGE_SQL("credit_history WHERE customer_id = c.id",
        "SELECT " NGX_HTTP_CUSTOMER_CREDIT_HISTORY_COLUMNS
        " FROM credit_history h WHERE h.customer_id = c.id"
        " ORDER BY h.changed_at DESC, h.id DESC LIMIT $3 OFFSET $4"));


/* as the history, and $5 true: the unread ones, false: the read, or NULL */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_alerts_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(5,
    NGX_HTTP_CUSTOMER_PAGE_SQL("credit_alerts WHERE customer_id = c.id"
        " AND ($5::boolean IS NULL OR is_read <> $5::boolean)",
        "SELECT " NGX_HTTP_CUSTOMER_CREDIT_ALERT_COLUMNS
        " FROM credit_alerts a WHERE a.customer_id = c.id"
        " AND ($5::boolean IS NULL OR a.is_read <> $5::boolean)"
        " ORDER BY a.created_at DESC, a.id DESC LIMIT $3 OFFSET $4"));


/*
 * $1 customer id, $2 alert id, $3 the Customer's sub (NULL for an
 * Administrator), $4 read.  read_at keeps the first time it was read.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_read_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "UPDATE credit_alerts a SET is_read = $4::boolean,"
    " read_at = CASE WHEN $4::boolean THEN coalesce(a.read_at, now()) END"
    " FROM customers c WHERE a.id = $2 AND a.customer_id = $1"
    " AND c.id = a.customer_id"
    " AND ($3::text IS NULL OR c.user_id = $3::text)"
    " RETURNING " NGX_HTTP_CUSTOMER_CREDIT_ALERT_COLUMNS);


/* no score set yet: the columns after the id are NULL */
static ngx_http_customer_refusal_t  ngx_http_customer_credit_none = {
    NGX_HTTP_NOT_FOUND, "Credit status not found", "creditScore",
    "No credit score has been set for this customer", NULL
};

static ngx_http_customer_missing_t  ngx_http_customer_credit_no_alert = {
    "Alert not found", "alertId",
    "No alert exists with the provided ID for this customer", 0
};


#define NGX_HTTP_CUSTOMER_CREDIT_PUT                                         \
    .fields = ngx_http_customer_credit_fields,                               \
    .stmt = &ngx_http_customer_credit_put_sql,                               \
    .params = {                                                              \
        NGX_HTTP_CUSTOMER_CUSTOMER_ID,                                       \
        NGX_HTTP_CUSTOMER_NAMED(BODY, "creditScore"),                        \
        NGX_HTTP_CUSTOMER_NAMED(BODY, "source"),                             \
        NGX_HTTP_CUSTOMER_PARAM(ACTOR) },                                    \
    .message = "Credit status updated successfully",                         \
    NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_credit_put_columns)

#define NGX_HTTP_CUSTOMER_CREDIT_STATUS                                      \
    .message = "Credit status retrieved successfully",                       \
    NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_credit_status_columns),       \
    .refused = &ngx_http_customer_credit_none, .test = 1

/* the status of the path's customer, when the caller may reach it */
#define NGX_HTTP_CUSTOMER_CREDIT_OF_ID                                       \
    .stmt = &ngx_http_customer_credit_get_sql,                               \
    .params = { NGX_HTTP_CUSTOMER_OWN_ID("customerId") },                    \
    NGX_HTTP_CUSTOMER_CREDIT_STATUS


/* literal paths before the "{}" patterns that would also match them */
ngx_http_customer_route_t  ngx_http_customer_credit_routes[] = {
    { NGX_HTTP_GET, "/api/customers/me/credit-status",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_credit_me_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(ME) },
      NGX_HTTP_CUSTOMER_CREDIT_STATUS },
    /* the Credit Score Service's read: a service sees every record */
    { NGX_HTTP_GET, "/api/customers/internal/{}/credit-status",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 0, 0,
      NGX_HTTP_CUSTOMER_CREDIT_OF_ID, .scope = NGX_HTTP_CUSTOMER_SCOPE_CREDIT },
    { NGX_HTTP_PUT, "/api/customers/internal/{}/credit-status",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 1, 0,
      NGX_HTTP_CUSTOMER_CREDIT_PUT,
      .scope = NGX_HTTP_CUSTOMER_SCOPE_CREDIT },
    { NGX_HTTP_GET, "/api/customers/{}/credit-status",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_CREDIT_OF_ID },
    { NGX_HTTP_PUT, "/api/customers/{}/credit-status",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_CREDIT_PUT },
    { NGX_HTTP_GET, "/api/customers/{}/credit-status/history",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_credit_history_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("customerId"),
                  NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,
      .message = "Credit history retrieved successfully", .list = "history",
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_credit_history_columns) },
    /* its 400 names a bad "unread" before the id and the page */
    { NGX_HTTP_GET, "/api/customers/{}/alerts",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_credit_alerts_sql, .args_first = 1,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("customerId"),
                  NGX_HTTP_CUSTOMER_PARAM(PAGE),
                  NGX_HTTP_CUSTOMER_NAMED(FLAG, "unread") },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,
      .message = "Alerts retrieved successfully", .list = "alerts",
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_credit_alert_columns) },
    { NGX_HTTP_PATCH, "/api/customers/{}/alerts/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      .fields = ngx_http_customer_credit_read_fields,
      .stmt = &ngx_http_customer_credit_read_sql,
      .params = {
          NGX_HTTP_CUSTOMER_CUSTOMER_ID,
          NGX_HTTP_CUSTOMER_NAMED(ID, "alertId"),
          NGX_HTTP_CUSTOMER_PARAM(OWN),
          NGX_HTTP_CUSTOMER_NAMED(BODY, "read") },
      .message = "Alert updated successfully",
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_credit_alert_columns),
      .missing = &ngx_http_customer_credit_no_alert },
    NGX_HTTP_CUSTOMER_ROUTES_END
};

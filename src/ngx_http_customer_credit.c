
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_access.h"
#include "ngx_http_customer_credit.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
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

#define NGX_HTTP_CUSTOMER_CREDIT_ALERT_NCOLUMNS    10

#define NGX_HTTP_CUSTOMER_CREDIT_HISTORY_COLUMNS                             \
    "h.id, h.credit_score, h.previous_score, h.band, h.previous_band,"       \
    " h.source, h.changed_by, api_ts(h.changed_at)"

#define NGX_HTTP_CUSTOMER_CREDIT_HISTORY_NCOLUMNS  8

#define NGX_HTTP_CUSTOMER_CREDIT_STATUS_NCOLUMNS   5

#define NGX_HTTP_CUSTOMER_CREDIT_PUT_NCOLUMNS      8


static ngx_int_t ngx_http_customer_credit_me(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_credit_got(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res);
static ngx_int_t ngx_http_customer_credit_put(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_credit_stored(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_credit_alerts(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_credit_listed(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_credit_read(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_credit_marked(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);


static ngx_http_customer_field_t  ngx_http_customer_credit_fields[] = {
    { "creditScore", ngx_http_customer_check_count,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 300, 850, NULL, NULL },
    { "source", ngx_http_customer_check_text, 0, 1, 50, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


static ngx_http_customer_field_t  ngx_http_customer_credit_read_fields[] = {
    { "read", ngx_http_customer_check_bool, NGX_HTTP_CUSTOMER_F_REQUIRED,
      0, 0, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


static ngx_http_customer_column_t  ngx_http_customer_credit_status_columns[]
    = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "creditScore", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "band", NGX_HTTP_CUSTOMER_COL_STRING },
    { "source", NGX_HTTP_CUSTOMER_COL_STRING },
    { "lastUpdated", NGX_HTTP_CUSTOMER_COL_STRING }
};


static ngx_http_customer_column_t  ngx_http_customer_credit_put_columns[] = {
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
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_get_sql = {
    "SELECT c.id, s.credit_score, s.band, s.source,"
    " api_ts(s.last_updated) FROM customers c"
    " LEFT JOIN credit_status s ON s.customer_id = c.id"
    " WHERE c.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)",
    2, 0, 0, "", 0, 0, 1, 0
};


/* $1 the token's sub */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_me_sql = {
    "SELECT c.id, s.credit_score, s.band, s.source,"
    " api_ts(s.last_updated) FROM customers c"
    " LEFT JOIN credit_status s ON s.customer_id = c.id"
    " WHERE c.user_id = $1::text",
    1, 0, 0, "", 0, 0, 1, 0
};


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
ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_put_sql = {
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
    " FROM u LEFT JOIN o ON true",
    4, 0, 0, "", 0, 0, 0, 0
};


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator),
 * $3 limit, $4 offset.  No row: no such customer, or not the caller's.
 * Otherwise the total in each row, and one row with NULL columns for an
 * empty page.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_history_sql = {
    "SELECT t.total, h.* FROM customers c"
    " CROSS JOIN LATERAL (SELECT count(*) AS total FROM credit_history"
    " WHERE customer_id = c.id) t"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_CREDIT_HISTORY_COLUMNS
    " FROM credit_history h WHERE h.customer_id = c.id"
    " ORDER BY h.changed_at DESC, h.id DESC LIMIT $3 OFFSET $4) h ON true"
    " WHERE c.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)",
    4, 0, 0, "", 0, 0, 1, 1
};


/* as the history, and $5 true: the unread ones, false: the read, or NULL */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_alerts_sql = {
    "SELECT t.total, a.* FROM customers c"
    " CROSS JOIN LATERAL (SELECT count(*) AS total FROM credit_alerts"
    " WHERE customer_id = c.id"
    " AND ($5::boolean IS NULL OR is_read <> $5::boolean)) t"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_CREDIT_ALERT_COLUMNS
    " FROM credit_alerts a WHERE a.customer_id = c.id"
    " AND ($5::boolean IS NULL OR a.is_read <> $5::boolean)"
    " ORDER BY a.created_at DESC, a.id DESC LIMIT $3 OFFSET $4) a ON true"
    " WHERE c.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)",
    5, 0, 0, "", 0, 0, 1, 1
};


/*
 * $1 customer id, $2 alert id, $3 the Customer's sub (NULL for an
 * Administrator), $4 read.  read_at keeps the first time it was read.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_read_sql = {
    "UPDATE credit_alerts a SET is_read = $4::boolean,"
    " read_at = CASE WHEN $4::boolean THEN coalesce(a.read_at, now()) END"
    " FROM customers c WHERE a.id = $2 AND a.customer_id = $1"
    " AND c.id = a.customer_id"
    " AND ($3::text IS NULL OR c.user_id = $3::text)"
    " RETURNING " NGX_HTTP_CUSTOMER_CREDIT_ALERT_COLUMNS,
    4, 0, 0, "", 0, 0, 0, 0
};


/* literal paths before the "{}" patterns that would also match them */
ngx_http_customer_route_t  ngx_http_customer_credit_routes[] = {
    { NGX_HTTP_GET, "/api/customers/me/credit-status",
      ngx_http_customer_credit_me, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_PUT, "/api/customers/internal/{}/credit-status",
      ngx_http_customer_credit_put, NGX_HTTP_CUSTOMER_SERVICE, 1, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_GET, "/api/customers/{}/credit-status",
      ngx_http_customer_credit_get, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_PUT, "/api/customers/{}/credit-status",
      ngx_http_customer_credit_put, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_GET, "/api/customers/{}/credit-status/history",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_credit_history_sql,
      .params = {
          { NGX_HTTP_CUSTOMER_FROM_ID, "customerId", NULL, NULL },
          { NGX_HTTP_CUSTOMER_FROM_OWN, NULL, NULL, NULL },
          { NGX_HTTP_CUSTOMER_FROM_PAGE, NULL, NULL, NULL } },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,
      .message = "Credit history retrieved successfully", .list = "history",
      .columns = ngx_http_customer_credit_history_columns,
      .ncolumns = NGX_HTTP_CUSTOMER_CREDIT_HISTORY_NCOLUMNS },
    /* a hook: its 400 names a bad "unread" before the id and the page */
    { NGX_HTTP_GET, "/api/customers/{}/alerts",
      ngx_http_customer_credit_alerts, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_PATCH, "/api/customers/{}/alerts/{}",
      ngx_http_customer_credit_read, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/* an Administrator's, a service's, or a Customer's for its own record */

ngx_int_t
ngx_http_customer_credit_get(ngx_http_customer_ctx_t *ctx)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer credit get");

    return ngx_http_customer_own_read(ctx, "customerId",
                                      &ngx_http_customer_credit_get_sql,
                                      ngx_http_customer_credit_got);
}


static ngx_int_t
ngx_http_customer_credit_me(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_pg_query_t  *q;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer credit me");

    ctx->by_user = 1;

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = ctx->who.sub.len ? (char *) ctx->who.sub.data : "";

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_credit_me_sql,
                                       ngx_http_customer_credit_got);
}


static ngx_int_t
ngx_http_customer_credit_got(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_not_found(ctx);
    }

    if (PQgetisnull(res, 0, 1)) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
                                            "Credit status not found",
                                            "creditScore",
                                            "No credit score has been set "
                                            "for this customer");
    }

    return ngx_http_customer_send_row(ctx, NGX_HTTP_OK,
                                      "Credit status retrieved "
                                      "successfully", res,
                                      ngx_http_customer_credit_status_columns,
                                      NGX_HTTP_CUSTOMER_CREDIT_STATUS_NCOLUMNS);
}


static ngx_int_t
ngx_http_customer_credit_put(ngx_http_customer_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_uint_t                     invalid;
    ngx_http_customer_json_t      *v;
    ngx_http_customer_pg_query_t  *q;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer credit put");

    rc = ngx_http_customer_validate(ctx, NULL, ctx->body,
                                    ngx_http_customer_credit_fields, 1);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    invalid = (rc != NGX_OK);

    switch (ngx_http_customer_id(ctx)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    if (invalid) {
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                             "Validation failed");
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = (char *) ctx->params[0].data;

    v = ngx_http_customer_json_member(ctx->body, "creditScore");

    p = ngx_pnalloc(ctx->request->pool, v->str.len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(p, v->str.data, v->str.len) = '\0';
    q->values[1] = (char *) p;

    v = ngx_http_customer_json_member(ctx->body, "source");

    if (v != NULL) {
        p = ngx_pnalloc(ctx->request->pool, v->str.len + 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *ngx_cpymem(p, v->str.data, v->str.len) = '\0';
        q->values[2] = (char *) p;

    } else {
        q->values[2] = NULL;
    }

    if (ctx->who.sub.len) {
        q->values[3] = (char *) ctx->who.sub.data;

    } else {
        q->values[3] = ctx->who.service ? "service" : NULL;
    }

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_credit_put_sql,
                                       ngx_http_customer_credit_stored);
}


static ngx_int_t
ngx_http_customer_credit_stored(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_not_found(ctx);
    }

    return ngx_http_customer_send_row(ctx, NGX_HTTP_OK,
                                      "Credit status updated successfully",
                                      res,
                                      ngx_http_customer_credit_put_columns,
                                      NGX_HTTP_CUSTOMER_CREDIT_PUT_NCOLUMNS);
}


static ngx_int_t
ngx_http_customer_credit_alerts(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_uint_t                     invalid;
    const char                    *unread;
    ngx_http_customer_pg_query_t  *q;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer credit alerts");

    rc = ngx_http_customer_arg_flag(ctx, "unread", &unread);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    invalid = (rc != NGX_OK);

    switch (ngx_http_customer_id(ctx)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    switch (ngx_http_customer_page_args(ctx, &ctx->page, &ctx->limit)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    if (invalid) {
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                             "Validation failed");
    }

    q = ngx_http_customer_own_query(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    q->values[4] = unread;

    if (ngx_http_customer_page_values(ctx, q, 2, ctx->page, ctx->limit)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_credit_alerts_sql,
                                       ngx_http_customer_credit_listed);
}


static ngx_int_t
ngx_http_customer_credit_listed(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_not_found(ctx);
    }

    return ngx_http_customer_send_page(ctx, res,
               "Alerts retrieved successfully", "alerts",
               ngx_http_customer_credit_alert_columns,
               NGX_HTTP_CUSTOMER_CREDIT_ALERT_NCOLUMNS, ctx->page,
               ctx->limit);
}


static ngx_int_t
ngx_http_customer_credit_read(ngx_http_customer_ctx_t *ctx)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_uint_t                     invalid;
    ngx_http_customer_json_t      *v;
    ngx_http_customer_pg_query_t  *q;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer credit alert read");

    rc = ngx_http_customer_validate(ctx, NULL, ctx->body,
                                    ngx_http_customer_credit_read_fields, 1);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    invalid = (rc != NGX_OK);

    switch (ngx_http_customer_id(ctx)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    if (!ngx_http_customer_is_uuid(&ctx->params[1])) {
        if (ngx_http_customer_add_error(ctx, (u_char *) "alertId",
                                        sizeof("alertId") - 1,
                                        "Must be a UUID")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        invalid = 1;
    }

    if (invalid) {
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                             "Validation failed");
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(ctx->request->pool, ctx->params[1].len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_cpymem(p, ctx->params[1].data, ctx->params[1].len) = '\0';

    v = ngx_http_customer_json_member(ctx->body, "read");

    q->values[0] = (char *) ctx->params[0].data;
    q->values[1] = (char *) p;
    q->values[2] = ngx_http_customer_own_sub(ctx);
    q->values[3] = v->boolean ? "true" : "false";

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_credit_read_sql,
                                       ngx_http_customer_credit_marked);
}


static ngx_int_t
ngx_http_customer_credit_marked(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
                                            "Alert not found", "alertId",
                                            "No alert exists with the "
                                            "provided ID for this customer");
    }

    return ngx_http_customer_send_row(ctx, NGX_HTTP_OK,
                                      "Alert updated successfully", res,
                                      ngx_http_customer_credit_alert_columns,
                                      NGX_HTTP_CUSTOMER_CREDIT_ALERT_NCOLUMNS);
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_idempotency.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * Loyalty points.  An Administrator, or a service on
 * the internal routes, earns and redeems points; an Administrator or the
 * Customer itself reads the account and its ledger.
 *
 * Earning and redeeming is one statement: the account row is upserted
 * (earn) or updated only while balance >= points (redeem), both under the
 * row's lock, so concurrent redeems never take the balance below zero;
 * the ledger row follows from the account's RETURNING.  With an
 * Idempotency-Key the statement first replays a stored answer it can
 * see, else it stores its own answer in the same statement.  A concurrent
 * request with the same key waits on the first's key row, fails with a
 * unique violation (writing nothing), and is run once more: its new
 * snapshot sees the stored answer, which it replays.
 */


#define NGX_HTTP_CUSTOMER_LOYALTY_TX_COLUMNS                                 \
    "t.id, t.customer_id, t.kind, t.points, t.balance_after, t.reason,"      \
    " t.reference, t.created_by, api_ts(t.created_at)"

#define NGX_HTTP_CUSTOMER_LOYALTY_TX_NCOLUMNS  9

/* $3 kind or NULL, $4 from or NULL, $5 to or NULL */
#define NGX_HTTP_CUSTOMER_LOYALTY_TX_FILTER                                  \
    " ($3::text IS NULL OR kind = $3::text)"                                 \
    " AND ($4::timestamptz IS NULL OR created_at >= $4::timestamptz)"        \
    " AND ($5::timestamptz IS NULL OR created_at <= $5::timestamptz)"


/* an earn or redeem in flight */
#define NGX_HTTP_CUSTOMER_LOYALTY_NPARAMS  8


static ngx_int_t ngx_http_customer_loyalty_changed(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);


static const char  *ngx_http_customer_loyalty_kinds[] = {
    "earn", "redeem", NULL
};


static ngx_http_customer_field_t  ngx_http_customer_loyalty_fields[] = {
    { "points", ngx_http_customer_check_count, NGX_HTTP_CUSTOMER_F_REQUIRED,
      1, 1000000, NULL, NULL },
    { "reason", ngx_http_customer_check_text, 0, 0, 500, NULL, NULL },
    { "reference", ngx_http_customer_check_line, 0, 0, 100, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


static ngx_http_customer_column_t  ngx_http_customer_loyalty_tx_columns[] = {
    { "transactionId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "kind", NGX_HTTP_CUSTOMER_COL_STRING },
    { "points", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "balanceAfter", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "reason", NGX_HTTP_CUSTOMER_COL_STRING },
    { "reference", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdBy", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator).  No
 * row: no such customer, or not the caller's.  A customer without an
 * account has zeros.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_loyalty_get_sql =
    NGX_HTTP_CUSTOMER_PG_READ(2,
    "SELECT json_build_object('customerId', c.id,"
    " 'balance', coalesce(a.balance, 0),"
    " 'lifetimePoints', coalesce(a.lifetime_points, 0),"
    " 'tier', loyalty_tier(coalesce(a.lifetime_points, 0)),"
    " 'nextTier', n.name,"
    " 'pointsToNextTier', n.min_points - coalesce(a.lifetime_points, 0))"
    " FROM customers c"
    " LEFT JOIN loyalty_accounts a ON a.customer_id = c.id"
    " LEFT JOIN LATERAL (SELECT name, min_points FROM loyalty_tiers"
    " WHERE min_points > coalesce(a.lifetime_points, 0)"
    " ORDER BY min_points LIMIT 1) n ON true"
    " WHERE c.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)");


/*
 * $1 customer id, $2 kind, $3 points, $4 reason, $5 reference, $6 who,
 * $7 Idempotency-Key or NULL, $8 the validated body (hashed as jsonb, so
 * member order and spacing do not matter).  Rows: none for no such
 * customer, else one: status, whether the stored request was the same,
 * the data object (2xx), an error's message, field and detail, and
 * whether the answer is a stored one replayed.
 * Data-modifying CTEs all run to completion; the key's row is inserted
 * for a 201 and a 422 alike, the 422 writing nothing else.  A key older
 * than 24 hours counts as new (replaced in place), whether or not the
 * outbox run has deleted it yet: its row is locked first (lk), so a
 * concurrent request with the same key waits, then sees the new row
 * (FOR UPDATE reads the latest version) and replays it.  A key that has
 * no row yet is claimed by the INSERT; a request that finds it claimed
 * meanwhile (k empty) raises unique_violation (idempotency_taken(),
 * sql/015), rolling back its points, and runs again (below).
 */
#define NGX_HTTP_CUSTOMER_LOYALTY_CHANGE_SQL(acct)                           \
    "WITH c AS (SELECT id, customer_status FROM customers WHERE id = $1),"   \
    " h AS (SELECT encode(sha256(convert_to($2::text || ' '"                 \
    " || $8::jsonb::text, 'UTF8')), 'hex') AS hash),"                        \
    " lk AS (SELECT i.status, i.response, i.request_hash, i.created_at"      \
    " FROM loyalty_idempotency i WHERE $7::text IS NOT NULL"                 \
    " AND i.customer_id = $1 AND i.key = $7::text FOR UPDATE),"              \
    " prev AS (SELECT lk.status, lk.response, lk.request_hash = h.hash"      \
    " AS same FROM lk, h"                                                    \
    " WHERE lk.created_at > now() - interval '24 hours'),"                   \
    " go AS (SELECT id FROM c WHERE customer_status = 'Active'"              \
    " AND NOT EXISTS (SELECT 1 FROM prev)),"                                 \
    acct                                                                     \
    " t AS (INSERT INTO loyalty_transactions (customer_id, kind, points,"    \
    " balance_after, reason, reference, created_by, created_at)"             \
    " SELECT customer_id, $2::text, $3::int, balance, $4::text, $5::text,"   \
    " $6::text, clock_timestamp() FROM acct RETURNING *),"                   \
    " res AS (SELECT 201 AS status, json_build_object("                      \
    " 'transactionId', t.id, 'customerId', t.customer_id, 'kind', t.kind,"   \
    " 'points', t.points, 'balance', acct.balance,"                          \
    " 'lifetimePoints', acct.lifetime_points,"                               \
    " 'tier', (SELECT name FROM loyalty_tiers"                               \
    " WHERE min_points <= acct.lifetime_points"                              \
    " ORDER BY min_points DESC LIMIT 1),"                                    \
    " 'createdAt', api_ts(t.created_at))::text AS response FROM t, acct"     \
    " UNION ALL"                                                             \
    " SELECT 422, CASE WHEN c.customer_status <> 'Active'"                   \
    " THEN json_build_object('message', 'Customer is not active',"           \
    " 'field', 'customerId', 'detail', 'The customer is '"                   \
    " || c.customer_status || '; points cannot change')"                     \
    " ELSE json_build_object('message', 'Insufficient points',"              \
    " 'field', 'points', 'detail', 'The balance is lower than the points"    \
    " to redeem') END::text"                                                 \
    " FROM c WHERE NOT EXISTS (SELECT 1 FROM prev)"                          \
    " AND NOT EXISTS (SELECT 1 FROM t)),"                                    \
    " k AS (INSERT INTO loyalty_idempotency AS i (key, customer_id,"         \
    " request_hash, status, response) SELECT $7::text, $1, h.hash,"          \
    " res.status, res.response FROM res, h WHERE $7::text IS NOT NULL"       \
    " ON CONFLICT (customer_id, key) DO UPDATE"                              \
    " SET request_hash = excluded.request_hash, status = excluded.status,"   \
    " response = excluded.response, created_at = now()"                      \
    " WHERE i.created_at <= now() - interval '24 hours' RETURNING 1),"       \
    " o AS (SELECT status, response, true AS same, false AS replayed"        \
    " FROM res UNION ALL SELECT status, response, same, true FROM prev)"     \
    " SELECT status, same, CASE WHEN status < 300 THEN response END,"        \
    " response::json->>'message', response::json->>'field',"                 \
    " response::json->>'detail', replayed FROM o"                            \
    " WHERE CASE WHEN $7::text IS NULL OR EXISTS (SELECT 1 FROM prev)"       \
    " OR NOT EXISTS (SELECT 1 FROM res) OR EXISTS (SELECT 1 FROM k)"         \
    " THEN true ELSE idempotency_taken() END"


/* the account row after an earn: created, or added to under its lock */
#define NGX_HTTP_CUSTOMER_LOYALTY_EARN                                       \
    " acct AS (INSERT INTO loyalty_accounts AS a (customer_id, balance,"     \
    " lifetime_points, updated_at) SELECT id, $3::int, $3::int, now()"       \
    " FROM go ON CONFLICT (customer_id) DO UPDATE"                           \
    " SET balance = a.balance + excluded.balance,"                           \
    " lifetime_points = a.lifetime_points + excluded.lifetime_points,"       \
    " updated_at = now()"                                                    \
    " RETURNING a.customer_id, a.balance, a.lifetime_points),"

/* the account row after a redeem: none when the balance is short */
#define NGX_HTTP_CUSTOMER_LOYALTY_REDEEM                                     \
    " acct AS (UPDATE loyalty_accounts a SET balance = a.balance - $3::int," \
    " updated_at = now() FROM go WHERE a.customer_id = go.id"                \
    " AND a.balance >= $3::int"                                              \
    " RETURNING a.customer_id, a.balance, a.lifetime_points),"

/* one statement each, so that neither plan carries the other's nodes */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_loyalty_earn_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(8, NGX_HTTP_CUSTOMER_LOYALTY_CHANGE_SQL(
                                  NGX_HTTP_CUSTOMER_LOYALTY_EARN));

static ngx_http_customer_pg_stmt_t  ngx_http_customer_loyalty_redeem_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(8, NGX_HTTP_CUSTOMER_LOYALTY_CHANGE_SQL(
                                  NGX_HTTP_CUSTOMER_LOYALTY_REDEEM));


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator),
 * $3..$5 the filter, $6 limit, $7 offset.  No row: no such customer, or
 * not the caller's.  Otherwise the total in each row, and one row with
 * NULL columns for an empty page.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_loyalty_list_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(7,
    NGX_HTTP_CUSTOMER_PAGE_SQL("loyalty_transactions"
        " WHERE customer_id = c.id AND" NGX_HTTP_CUSTOMER_LOYALTY_TX_FILTER,
        "SELECT " NGX_HTTP_CUSTOMER_LOYALTY_TX_COLUMNS
        " FROM loyalty_transactions t WHERE t.customer_id = c.id AND"
        NGX_HTTP_CUSTOMER_LOYALTY_TX_FILTER
        " ORDER BY t.created_at DESC, t.id DESC LIMIT $6 OFFSET $7"));


#define NGX_HTTP_CUSTOMER_LOYALTY_OWN                                        \
    NGX_HTTP_CUSTOMER_CUSTOMER_ID,                                           \
    NGX_HTTP_CUSTOMER_PARAM(OWN)


/* the body, the path's id, then the key: the 400's order */
#define NGX_HTTP_CUSTOMER_LOYALTY_CHANGE(kind)                               \
    .fields = ngx_http_customer_loyalty_fields,                             \
    .stmt = &ngx_http_customer_loyalty_##kind##_sql,                       \
    .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID,                              \
                NGX_HTTP_CUSTOMER_NAMED(VALUE, #kind),                      \
                NGX_HTTP_CUSTOMER_NAMED(BODY, "points"),                    \
                NGX_HTTP_CUSTOMER_NAMED(BODY, "reason"),                    \
                NGX_HTTP_CUSTOMER_NAMED(BODY, "reference"),                 \
                NGX_HTTP_CUSTOMER_PARAM(SUB),                               \
                NGX_HTTP_CUSTOMER_PARAM(KEY),                               \
                NGX_HTTP_CUSTOMER_PARAM(JSON) },                            \
    .done = ngx_http_customer_loyalty_changed

ngx_http_customer_route_t  ngx_http_customer_loyalty_routes[] = {
    { NGX_HTTP_GET, "/api/customers/{}/loyalty",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_loyalty_get_sql,
      .params = { NGX_HTTP_CUSTOMER_LOYALTY_OWN },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_JSON,
      .message = "Loyalty account retrieved successfully" },
    { NGX_HTTP_POST|NGX_HTTP_CUSTOMER_OWN_KEY,
      "/api/customers/{}/loyalty/earn",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_LOYALTY_CHANGE(earn) },
    { NGX_HTTP_POST|NGX_HTTP_CUSTOMER_OWN_KEY,
      "/api/customers/{}/loyalty/redeem",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_LOYALTY_CHANGE(redeem) },
    { NGX_HTTP_GET, "/api/customers/{}/loyalty/transactions",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_loyalty_list_sql,
      .params = {
          NGX_HTTP_CUSTOMER_LOYALTY_OWN,
          { NGX_HTTP_CUSTOMER_FROM_ENUM, "kind",
            ngx_http_customer_loyalty_kinds, NULL },
          { NGX_HTTP_CUSTOMER_FROM_CHECK, "from", NULL,
            ngx_http_customer_check_timestamp },
          { NGX_HTTP_CUSTOMER_FROM_CHECK, "to", NULL,
            ngx_http_customer_check_timestamp },
          NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,
      .message = "Loyalty transactions retrieved successfully",
      .list = "transactions",
      .columns = ngx_http_customer_loyalty_tx_columns,
      .ncolumns = NGX_HTTP_CUSTOMER_LOYALTY_TX_NCOLUMNS },
    { NGX_HTTP_POST|NGX_HTTP_CUSTOMER_OWN_KEY,
      "/api/customers/internal/{}/loyalty/earn",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 1, 0,
      NGX_HTTP_CUSTOMER_LOYALTY_CHANGE(earn),
      .scope = NGX_HTTP_CUSTOMER_SCOPE_LOYALTY },
    { NGX_HTTP_POST|NGX_HTTP_CUSTOMER_OWN_KEY,
      "/api/customers/internal/{}/loyalty/redeem",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 1, 0,
      NGX_HTTP_CUSTOMER_LOYALTY_CHANGE(redeem),
      .scope = NGX_HTTP_CUSTOMER_SCOPE_LOYALTY },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


static ngx_int_t
ngx_http_customer_loyalty_changed(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    char                          *state, *name;
    ngx_int_t                      rc, status;
    ngx_str_t                      v;
    ngx_http_customer_pg_query_t  *again;

    /* ctx->data: the query run a second time, which is the last */

    if (res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR
        && ctx->data == NULL)
    {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        name = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);

        if (state && name && ngx_strcmp(state, "23505") == 0
            && ngx_strcmp(name, "loyalty_idempotency_pkey") == 0)
        {
            /*
             * a request with the same key committed while this one ran;
             * nothing of this one was written: run it again to see its
             * stored answer
             */
            again = ngx_http_customer_query_create(ctx);
            if (again == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(again->values, q->values,
                       NGX_HTTP_CUSTOMER_LOYALTY_NPARAMS * sizeof(char *));
            ctx->data = again;

            return ngx_http_customer_query_run(ctx, again, q->stmt,
                       ngx_http_customer_loyalty_changed);
        }
    }

    if (ngx_http_customer_rows(ctx, q, res, &rc) == 0) {
        return rc;
    }

    if (PQgetvalue(res, 0, 1)[0] != 't') {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_CONFLICT,
                   "Idempotency key reused with a different request",
                   "Idempotency-Key",
                   "This key was used with a different request");
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    if (status == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (PQgetvalue(res, 0, 6)[0] == 't') {
        /* the same mark as every other write route's replay */
        ngx_str_set(&v, "true");

        if (ngx_http_customer_push_header(&ctx->request->headers_out.headers,
                                          "Idempotent-Replayed", &v)
            == NULL)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (PQgetisnull(res, 0, 2)) {
        return ngx_http_customer_send_error(ctx, status,
                                            PQgetvalue(res, 0, 3),
                                            PQgetvalue(res, 0, 4),
                                            PQgetvalue(res, 0, 5));
    }

    /* $2 is the kind */

    return ngx_http_customer_send_json(ctx, status, q->values[1][0] == 'e'
                                              ? "Points earned successfully"
                                              : "Points redeemed "
                                                "successfully", res, 2);
}

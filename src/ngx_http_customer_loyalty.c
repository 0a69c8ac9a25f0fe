
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * Loyalty points.  An Administrator, or a service on the internal routes,
 * earns and redeems points; an Administrator or the Customer itself reads
 * the account and its ledger.
 *
 * Earning and redeeming is one call of loyalty_change() in PostgreSQL:
 * the account row is upserted (earn) or updated only while balance >=
 * points (redeem), both under the row's lock, so concurrent redeems never
 * take the balance below zero; the ledger row follows from the account's
 * new balance.  With an Idempotency-Key the call first replays a stored
 * answer it can see, else it stores its own answer in the same
 * transaction.  A concurrent request with the same key waits on the
 * first's key row, fails with a unique violation (writing nothing), and
 * is run once more: its new snapshot sees the stored answer, which it
 * replays.
 */


#define NGX_HTTP_CUSTOMER_LOYALTY_TX_COLUMNS                                 \
    "t.id, t.customer_id, t.kind, t.points, t.balance_after, t.reason,"      \
    " t.reference, t.created_by, api_ts(t.created_at)"

/* $3 kind or NULL, $4 from or NULL, $5 to or NULL */
#define NGX_HTTP_CUSTOMER_LOYALTY_TX_FILTER                                  \
    " ($3::text IS NULL OR kind = $3::text)"                                 \
    " AND ($4::timestamptz IS NULL OR created_at >= $4::timestamptz)"        \
    " AND ($5::timestamptz IS NULL OR created_at <= $5::timestamptz)"


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_loyalty_changed);


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
 * whether the answer is a stored one replayed.  loyalty_change()
 * (sql/032) says how the key, the account and the ledger are written and
 * locked; a request that finds its key claimed by a concurrent one
 * raises unique_violation (idempotency_taken(), sql/015), rolling back
 * its points, and runs again (below).  Changes that wait for a connection
 * commit together (a batch): the function answers every refusal as a
 * row, so one change rarely fails the others' transaction.
 */
#define NGX_HTTP_CUSTOMER_LOYALTY_CHANGE_SQL                                 \
    "SELECT * FROM loyalty_change($1::uuid, $2::text, $3::int, $4::text,"    \
    " $5::text, $6::text, $7::text, $8::jsonb)"

static ngx_http_customer_pg_stmt_t  ngx_http_customer_loyalty_change_sql =
    NGX_HTTP_CUSTOMER_PG_BATCH(8, NGX_HTTP_CUSTOMER_LOYALTY_CHANGE_SQL);


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


/* the body, the path's id, then the key: the 400's order */
#define NGX_HTTP_CUSTOMER_LOYALTY_CHANGE(kind)                               \
    .fields = ngx_http_customer_loyalty_fields,                             \
    .stmt = &ngx_http_customer_loyalty_change_sql,                          \
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
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("customerId") },
      NGX_HTTP_CUSTOMER_AS_JSON(&ngx_http_customer_loyalty_get_sql,
                                "Loyalty account retrieved successfully") },
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
          NGX_HTTP_CUSTOMER_OWN_ID("customerId"),
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
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_loyalty_tx_columns) },
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


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_loyalty_changed)
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
                       q->stmt->nparams * sizeof(char *));
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

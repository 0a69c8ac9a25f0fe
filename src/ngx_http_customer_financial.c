
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * The financial profile of a customer: at most one per
 * customer, in financial_profiles.  An Administrator creates it (POST) or
 * creates or replaces it (PUT, If-Match against the profile's version);
 * each is one statement that also tells a missing customer, an existing
 * profile or a stale version from success.  The debt-to-income ratio and
 * the net worth are computed in SQL on every answer, never stored.  A
 * Customer reads its own through /me.
 */


/* the profile f as the answer's columns, in the order of the table below */
#define NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS                                  \
    "f.customer_id, f.annual_income, f.monthly_debts, f.total_assets,"      \
    " f.total_liabilities, f.employment_status, f.employer, f.currency,"    \
    " round(f.monthly_debts * 12 / nullif(f.annual_income, 0), 4),"         \
    " f.total_assets - f.total_liabilities, api_ts(f.created_at),"          \
    " api_ts(f.updated_at), f.version"

#define NGX_HTTP_CUSTOMER_FINANCIAL_NCOLUMNS  13   /* the last: version */

/* after the columns: the customer's id, NULL when there is none */
#define NGX_HTTP_CUSTOMER_FINANCIAL_CUSTOMER  13

/* PUT, after that: true when the row was inserted */
#define NGX_HTTP_CUSTOMER_FINANCIAL_CREATED   14

#define NGX_HTTP_CUSTOMER_FINANCIAL_GET_SQL(key)                             \
    "SELECT " NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS                           \
    " FROM customers c"                                                     \
    " LEFT JOIN financial_profiles f ON f.customer_id = c.id"              \
    " WHERE c." key " = $1"

/* $2..$8 the fields, $9 who */
#define NGX_HTTP_CUSTOMER_FINANCIAL_INSERT                                   \
    " INSERT INTO financial_profiles AS p (customer_id, annual_income,"     \
    " monthly_debts, total_assets, total_liabilities, employment_status,"   \
    " employer, currency, updated_by)"                                      \
    " SELECT c.id, $2::numeric, $3::numeric, $4::numeric, $5::numeric,"     \
    " $6::text, nullif($7::text, ''), $8::text, $9::text FROM c"

#define NGX_HTTP_CUSTOMER_FINANCIAL_NPARAMS  10    /* PUT's; POST's 9 */


static ngx_int_t ngx_http_customer_financial_get(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_financial_me_get(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_financial_create(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_financial_put(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_financial_read(
    ngx_http_customer_ctx_t *ctx, char *key,
    ngx_http_customer_pg_stmt_t *stmt);
static ngx_int_t ngx_http_customer_financial_write(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done);
static ngx_int_t ngx_http_customer_financial_read_done(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_financial_created(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_financial_replaced(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_financial_send(
    ngx_http_customer_ctx_t *ctx, ngx_uint_t status, const char *message,
    PGresult *res);
static char *ngx_http_customer_financial_member(
    ngx_http_customer_ctx_t *ctx, const char *name, ngx_uint_t *failed);
static ngx_int_t ngx_http_customer_check_currency(
    ngx_http_customer_ctx_t *ctx, ngx_str_t *path,
    ngx_http_customer_json_t *v, ngx_http_customer_field_t *f);


#define NGX_HTTP_CUSTOMER_A  NGX_HTTP_CUSTOMER_ADMIN
#define NGX_HTTP_CUSTOMER_S  NGX_HTTP_CUSTOMER_SELF

/* the literal /me path before the "{}" pattern that would also match it */
ngx_http_customer_route_t  ngx_http_customer_financial_routes[] = {
    { NGX_HTTP_GET, "/api/customers/me/financial-profile",
      ngx_http_customer_financial_me_get, NGX_HTTP_CUSTOMER_S, 0, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_GET, "/api/customers/{}/financial-profile",
      ngx_http_customer_financial_get, NGX_HTTP_CUSTOMER_A, 0, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_POST, "/api/customers/{}/financial-profile",
      ngx_http_customer_financial_create, NGX_HTTP_CUSTOMER_A, 1, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_PUT, "/api/customers/{}/financial-profile",
      ngx_http_customer_financial_put, NGX_HTTP_CUSTOMER_A, 1, 0,
      NGX_HTTP_CUSTOMER_HOOK },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


static const char  *ngx_http_customer_employment_statuses[] = {
    "employed", "self-employed", "unemployed", "retired", "student", NULL
};


/* both POST and PUT take the whole profile */
static ngx_http_customer_field_t  ngx_http_customer_financial_fields[] = {
    { "annualIncome", ngx_http_customer_check_money,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0, NULL, NULL },
    { "monthlyDebts", ngx_http_customer_check_money,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0, NULL, NULL },
    { "totalAssets", ngx_http_customer_check_money,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0, NULL, NULL },
    { "totalLiabilities", ngx_http_customer_check_money,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0, NULL, NULL },
    { "employmentStatus", ngx_http_customer_check_enum,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0,
      ngx_http_customer_employment_statuses, NULL },
    { "employer", ngx_http_customer_check_line, NGX_HTTP_CUSTOMER_F_NULLABLE,
      0, 200, NULL, NULL },
    { "currency", ngx_http_customer_check_currency,
      NGX_HTTP_CUSTOMER_F_REQUIRED, 0, 0, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


static ngx_http_customer_column_t  ngx_http_customer_financial_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "annualIncome", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "monthlyDebts", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "totalAssets", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "totalLiabilities", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "employmentStatus", NGX_HTTP_CUSTOMER_COL_STRING },
    { "employer", NGX_HTTP_CUSTOMER_COL_STRING },
    { "currency", NGX_HTTP_CUSTOMER_COL_STRING },
    { "debtToIncomeRatio", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "netWorth", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "createdAt", NGX_HTTP_CUSTOMER_COL_STRING },
    { "updatedAt", NGX_HTTP_CUSTOMER_COL_STRING },
    { "version", NGX_HTTP_CUSTOMER_COL_NUMBER }
};


/* no row: no such customer; NULL columns: the customer has no profile */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_get_sql = {
    NGX_HTTP_CUSTOMER_FINANCIAL_GET_SQL("id"), 1, 1, 0, "", 0, 0, 0, 0
};

static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_me_sql = {
    NGX_HTTP_CUSTOMER_FINANCIAL_GET_SQL("user_id"), 1, 1, 0, "", 0, 0, 0, 0
};

/*
 * $1 customer id, $2..$8 the fields, $9 who.  Always one row: NULL
 * columns when nothing was inserted, then the customer's id (NULL: no
 * such customer, otherwise the profile existed).
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_create_sql = {
    "WITH c AS (SELECT id FROM customers WHERE id = $1),"
    " f AS (" NGX_HTTP_CUSTOMER_FINANCIAL_INSERT
    " ON CONFLICT (customer_id) DO NOTHING RETURNING p.*)"
    " SELECT " NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS ", (SELECT id FROM c)"
    " FROM (SELECT 1) s LEFT JOIN f ON true",
    9, 0, 0, "", 0, 0, 0, 0
};

/*
 * As create, $10 the If-Match version or NULL.  A version given for a
 * profile that does not exist inserts nothing: NULL columns with the
 * customer's id are a stale version either way.  The last column tells
 * an insert (xmax 0) from a replacement.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_put_sql = {
    "WITH c AS (SELECT id FROM customers WHERE id = $1),"
    " f AS (" NGX_HTTP_CUSTOMER_FINANCIAL_INSERT
    " WHERE $10::integer IS NULL OR EXISTS (SELECT 1 FROM financial_profiles"
    " WHERE customer_id = c.id)"
    " ON CONFLICT (customer_id) DO UPDATE SET"
    " annual_income = excluded.annual_income,"
    " monthly_debts = excluded.monthly_debts,"
    " total_assets = excluded.total_assets,"
    " total_liabilities = excluded.total_liabilities,"
    " employment_status = excluded.employment_status,"
    " employer = excluded.employer, currency = excluded.currency,"
    " updated_at = now(), updated_by = excluded.updated_by,"
    " version = p.version + 1"
    " WHERE $10::integer IS NULL OR p.version = $10::integer"
    " RETURNING p.*, (p.xmax = 0) AS created)"
    " SELECT " NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS ", (SELECT id FROM c),"
    " f.created FROM (SELECT 1) s LEFT JOIN f ON true",
    NGX_HTTP_CUSTOMER_FINANCIAL_NPARAMS, 0, 0, "", 0, 0, 0, 0
};


static ngx_int_t
ngx_http_customer_financial_get(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t  rc;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer financial profile get");

    rc = ngx_http_customer_id(ctx);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                             "Validation failed");
    }

    return ngx_http_customer_financial_read(ctx,
               (char *) ctx->params[0].data,
               &ngx_http_customer_financial_get_sql);
}


/* the caller's own record: the token's sub is its userId */

static ngx_int_t
ngx_http_customer_financial_me_get(ngx_http_customer_ctx_t *ctx)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer financial profile me get");

    ctx->by_user = 1;

    /* the sub is NUL-terminated in the request pool */

    return ngx_http_customer_financial_read(ctx,
               ctx->who.sub.len ? (char *) ctx->who.sub.data : "",
               &ngx_http_customer_financial_me_sql);
}


static ngx_int_t
ngx_http_customer_financial_create(ngx_http_customer_ctx_t *ctx)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer financial profile create");

    return ngx_http_customer_financial_write(ctx,
               &ngx_http_customer_financial_create_sql,
               ngx_http_customer_financial_created);
}


static ngx_int_t
ngx_http_customer_financial_put(ngx_http_customer_ctx_t *ctx)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer financial profile put");

    return ngx_http_customer_financial_write(ctx,
               &ngx_http_customer_financial_put_sql,
               ngx_http_customer_financial_replaced);
}


static ngx_int_t
ngx_http_customer_financial_read(ngx_http_customer_ctx_t *ctx, char *key,
    ngx_http_customer_pg_stmt_t *stmt)
{
    ngx_http_customer_pg_query_t  *q;

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = key;

    return ngx_http_customer_query_run(ctx, q, stmt,
                                       ngx_http_customer_financial_read_done);
}


/*
 * Validates the whole profile and the path's id, listing every bad field
 * in one 400, then runs stmt: POST's (nine parameters) or PUT's (those
 * and the If-Match version).
 */

static ngx_int_t
ngx_http_customer_financial_write(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_stmt_t *stmt, ngx_http_customer_done_pt done)
{
    ngx_int_t                      rc;
    ngx_uint_t                     invalid;
    ngx_http_customer_pg_query_t  *q;

    rc = ngx_http_customer_validate(ctx, NULL, ctx->body,
                                    ngx_http_customer_financial_fields, 1);
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

    /* ngx_http_customer_id() made the id NUL-terminated */
    q->values[0] = (char *) ctx->params[0].data;
    q->values[1] = ngx_http_customer_financial_member(ctx, "annualIncome",
                                                      &invalid);
    q->values[2] = ngx_http_customer_financial_member(ctx, "monthlyDebts",
                                                      &invalid);
    q->values[3] = ngx_http_customer_financial_member(ctx, "totalAssets",
                                                      &invalid);
    q->values[4] = ngx_http_customer_financial_member(ctx,
                                                      "totalLiabilities",
                                                      &invalid);
    q->values[5] = ngx_http_customer_financial_member(ctx,
                                                      "employmentStatus",
                                                      &invalid);
    q->values[6] = ngx_http_customer_financial_member(ctx, "employer",
                                                      &invalid);
    q->values[7] = ngx_http_customer_financial_member(ctx, "currency",
                                                      &invalid);
    q->values[8] = ctx->who.sub.len ? (char *) ctx->who.sub.data : NULL;

    if (invalid) {
        /* out of memory */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (stmt->nparams == NGX_HTTP_CUSTOMER_FINANCIAL_NPARAMS
        && ngx_http_customer_if_match(ctx, &q->values[9]) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_query_run(ctx, q, stmt, done);
}


/*
 * A validated member of the body as a NUL-terminated parameter: a
 * string's (trimmed) text or a number's, NULL when absent or null.  Sets
 * *failed when out of memory.
 */

static char *
ngx_http_customer_financial_member(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_uint_t *failed)
{
    u_char                    *p;
    ngx_http_customer_json_t  *v;

    v = ngx_http_customer_json_member(ctx->body, name);

    if (v == NULL || v->type == NGX_HTTP_CUSTOMER_JSON_NULL) {
        return NULL;
    }

    p = ngx_pnalloc(ctx->request->pool, v->str.len + 1);
    if (p == NULL) {
        *failed = 1;
        return NULL;
    }

    *ngx_cpymem(p, v->str.data, v->str.len) = '\0';

    return (char *) p;
}


static ngx_int_t
ngx_http_customer_financial_read_done(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_not_found(ctx);
    }

    if (PQgetisnull(res, 0, 0)) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
                                            "Financial profile not found",
                                            "financialProfile",
                                            "The customer has no financial "
                                            "profile");
    }

    return ngx_http_customer_financial_send(ctx, NGX_HTTP_OK,
               "Financial profile retrieved successfully", res);
}


static ngx_int_t
ngx_http_customer_financial_created(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (!PQgetisnull(res, 0, 0)) {
        return ngx_http_customer_financial_send(ctx, NGX_HTTP_CREATED,
                   "Financial profile created successfully", res);
    }

    if (PQgetisnull(res, 0, NGX_HTTP_CUSTOMER_FINANCIAL_CUSTOMER)) {
        return ngx_http_customer_not_found(ctx);
    }

    return ngx_http_customer_send_error(ctx, NGX_HTTP_CONFLICT,
                                        "Financial profile already exists",
                                        "financialProfile",
                                        "The customer has a financial "
                                        "profile; replace it with PUT");
}


static ngx_int_t
ngx_http_customer_financial_replaced(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    char  *created;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (!PQgetisnull(res, 0, 0)) {
        created = PQgetvalue(res, 0, NGX_HTTP_CUSTOMER_FINANCIAL_CREATED);

        if (created[0] == 't') {
            return ngx_http_customer_financial_send(ctx, NGX_HTTP_CREATED,
                       "Financial profile created successfully", res);
        }

        return ngx_http_customer_financial_send(ctx, NGX_HTTP_OK,
                   "Financial profile updated successfully", res);
    }

    if (PQgetisnull(res, 0, NGX_HTTP_CUSTOMER_FINANCIAL_CUSTOMER)) {
        return ngx_http_customer_not_found(ctx);
    }

    return ngx_http_customer_send_error(ctx, NGX_HTTP_PRECONDITION_FAILED,
                                        "Precondition failed", "If-Match",
                                        "The financial profile was changed "
                                        "since that version; fetch it "
                                        "again");
}


/* the profile with its version as the ETag */

static ngx_int_t
ngx_http_customer_financial_send(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message, PGresult *res)
{
    return ngx_http_customer_send_versioned(ctx, status, message, res,
               ngx_http_customer_financial_columns,
               NGX_HTTP_CUSTOMER_FINANCIAL_NCOLUMNS);
}


/* ISO 4217: exactly three upper-case letters */

static ngx_int_t
ngx_http_customer_check_currency(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, ngx_http_customer_json_t *v,
    ngx_http_customer_field_t *f)
{
    ngx_uint_t  i;

    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING || v->str.len != 3) {
        goto invalid;
    }

    for (i = 0; i < 3; i++) {
        if (v->str.data[i] < 'A' || v->str.data[i] > 'Z') {
            goto invalid;
        }
    }

    return NGX_OK;

invalid:

    return ngx_http_customer_fail(ctx, path,
                                  "Must be an ISO 4217 currency code: "
                                  "three upper-case letters");
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_access.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_idempotency.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_replica.h"


/*
 * Running a route's statement: the query in the request pool, its
 * parameters (the page, the body as jsonb, If-Match), the pool it goes
 * to (the primary, or a replica for a read that may be a little stale),
 * and its continuation, called with the result unless the idempotency
 * layer answered already.
 */


static void ngx_http_customer_query_done(ngx_http_customer_pg_query_t *q,
    PGresult *res);


ngx_http_customer_pg_query_t *
ngx_http_customer_query_create(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_pg_query_t  *q;

    q = ngx_http_customer_pg_query_create(ctx->request->pool,
                                          ctx->request->connection->log);
    if (q == NULL) {
        return NULL;
    }

    q->handler = ngx_http_customer_query_done;
    q->data = ctx;

    return q;
}


ngx_int_t
ngx_http_customer_query_run(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done)
{
    q->stmt = stmt;
    ctx->done = done;

    ngx_http_customer_idem_query(ctx, q);

    /* the primary, or a replica for a read that may be a little stale */
    ngx_http_customer_pg_run(ngx_http_customer_replica_route(ctx, q), q);

    return NGX_DONE;
}


static void
ngx_http_customer_query_done(ngx_http_customer_pg_query_t *q, PGresult *res)
{
    ngx_int_t                 rc;
    ngx_connection_t         *c;
    ngx_http_customer_ctx_t  *ctx;

    ctx = q->data;
    c = ctx->request->connection;

    if (ngx_http_customer_replica_done(ctx, q, res) == NGX_AGAIN) {
        /* a replica failed it: sent to the primary instead */
        return;
    }

    rc = ngx_http_customer_idem_result(ctx, q, res);

    if (rc == NGX_DECLINED) {
        rc = ctx->done(ctx, q, res);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(ctx->request, rc);
    }

    ngx_http_run_posted_requests(c);
}


/* a page's LIMIT and OFFSET as the parameters $n+1 and $n+2 */

ngx_int_t
ngx_http_customer_page_values(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_uint_t n, ngx_uint_t page,
    ngx_uint_t limit)
{
    u_char  *p;

    p = ngx_pnalloc(ctx->request->pool, 2 * (NGX_INT_T_LEN + 1));
    if (p == NULL) {
        return NGX_ERROR;
    }

    q->values[n] = (char *) p;
    p = ngx_sprintf(p, "%ui%Z", limit);
    q->values[n + 1] = (char *) p;
    ngx_sprintf(p, "%ui%Z", (page - 1) * limit);

    return NGX_OK;
}


/* the validated (and trimmed) body as a NUL-terminated jsonb parameter */

char *
ngx_http_customer_body_param(ngx_http_customer_ctx_t *ctx)
{
    u_char    *buf;
    size_t     len;
    yajl_gen   g;

    g = ngx_http_customer_json_gen(ctx->request->pool);
    if (g == NULL) {
        return NULL;
    }

    if (ngx_http_customer_json_copy(g, ctx->body) != NGX_OK
        || ngx_http_customer_json_result(g, &buf, &len) != NGX_OK)
    {
        return NULL;
    }

    return ngx_http_customer_cstr(ctx->request->pool, buf, len);
}


/*
 * If-Match: "<version>" (W/ and the quotes optional; "*" matches any) as
 * a NUL-terminated parameter, or NULL for none.  Anything that cannot be
 * a version we sent becomes -1, which matches no row.
 */

ngx_int_t
ngx_http_customer_if_match(ngx_http_customer_ctx_t *ctx,
    const char **version)
{
    u_char           *p, *last;
    ngx_table_elt_t  *h;

    *version = NULL;
    h = ctx->request->headers_in.if_match;

    if (h == NULL) {
        return NGX_OK;
    }

    p = h->value.data;
    last = p + h->value.len;

    if (last - p == 1 && *p == '*') {
        return NGX_OK;
    }

    if (last - p > 2 && p[0] == 'W' && p[1] == '/') {
        p += 2;
    }

    if (last - p >= 2 && *p == '"' && last[-1] == '"') {
        p++;
        last--;
    }

    if (last - p < 1 || last - p > 9 || ngx_atoi(p, last - p) == NGX_ERROR) {
        *version = "-1";
        return NGX_OK;
    }

    *version = ngx_http_customer_cstr(ctx->request->pool, p, last - p);

    return (*version == NULL) ? NGX_ERROR : NGX_OK;
}


/*
 * A validated member of the body as a NUL-terminated parameter: a
 * string's (trimmed) text, a number's, "true"/"false", or NULL when it
 * is absent or null.
 */

ngx_int_t
ngx_http_customer_member_param(ngx_http_customer_ctx_t *ctx,
    const char *name, const char **value)
{
    ngx_http_customer_json_t  *v;

    *value = NULL;

    v = ngx_http_customer_json_member(ctx->body, name);

    if (v == NULL || v->type == NGX_HTTP_CUSTOMER_JSON_NULL) {
        return NGX_OK;
    }

    if (v->type == NGX_HTTP_CUSTOMER_JSON_BOOL) {
        *value = v->boolean ? "true" : "false";
        return NGX_OK;
    }

    *value = ngx_http_customer_cstr(ctx->request->pool, v->str.data,
                                    v->str.len);

    return *value ? NGX_OK : NGX_ERROR;
}


/* a result's value, copied: the result is cleared when its callback ends */

char *
ngx_http_customer_value(ngx_pool_t *pool, PGresult *res, int row, int col)
{
    return ngx_http_customer_cstr(pool, PQgetvalue(res, row, col),
                                  PQgetlength(res, row, col));
}


/*
 * Row 0's column 0, copied (res is cleared after its callback), of a
 * statement that must find a row; NULL with *rc the answer otherwise
 */

char *
ngx_http_customer_found(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res, ngx_int_t *rc)
{
    char  *value;

    if (ngx_http_customer_rows(ctx, q, res, rc) == 0) {
        return NULL;
    }

    value = ngx_http_customer_value(ctx->request->pool, res, 0, 0);
    if (value == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return value;
}


/* len bytes at data, NUL-terminated in the pool: what libpq takes */

char *
ngx_http_customer_cstr(ngx_pool_t *pool, const void *data, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    *ngx_cpymem(p, data, len) = '\0';

    return (char *) p;
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_idempotency.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"


/*
 * Idempotency-Key on the write routes (POST, PUT, PATCH, DELETE; loyalty
 * keeps its own, per customer).  A key is scoped to its caller: a token's
 * subject, or "service" for the service keys.
 *
 * 1. The stored row of (caller, key) is read first.  An answer stored for
 *    the same request (method, URI and body) is sent again, with
 *    Idempotent-Replayed: true, and nothing runs; another request under
 *    the key is 409; a row without an answer (its request committed and
 *    is finishing, or its answer was lost) is 409 too.
 * 2. Else the route runs, and its first write statement carries the claim
 *    of the key (q->pre): both go under one Sync, one transaction, so the
 *    key's row exists exactly when the write committed.  A concurrent
 *    request with the key waits on the row's index entry and then fails
 *    with idempotency_keys_pkey; it answers from the row (step 1).
 * 3. The answer, once built, is stored in the row before it is sent.
 *
 * A write whose outcome is unknown (its connection lost after Sync) is
 * not answered from here: a retry with its key finds either no row (not
 * committed: it runs) or the row (committed: 409, never applied twice).
 */


#define NGX_HTTP_CUSTOMER_IDEM_NONE      0
#define NGX_HTTP_CUSTOMER_IDEM_PENDING   1   /* the next write claims */
#define NGX_HTTP_CUSTOMER_IDEM_SENT      2   /* claim and write in flight */
#define NGX_HTTP_CUSTOMER_IDEM_CLAIMED   3   /* committed with the write */
#define NGX_HTTP_CUSTOMER_IDEM_STORING   4
#define NGX_HTTP_CUSTOMER_IDEM_DONE      5


struct ngx_http_customer_idem_s {
    char                           *key;
    char                           *caller;
    char                            hash[2 * 32 + 1];
    ngx_uint_t                      state;
    ngx_uint_t                      status;     /* the answer being stored */
    ngx_str_t                       type;
    u_char                         *data;
    size_t                          len;
};


static ngx_int_t ngx_http_customer_idem_lookup(ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_idem_looked_up);
static ngx_int_t ngx_http_customer_idem_answer(ngx_http_customer_ctx_t *ctx,
    PGresult *res);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_idem_stored);
static ngx_int_t ngx_http_customer_idem_hash(ngx_http_customer_ctx_t *ctx,
    u_char *data, size_t len);


/* $1 caller, $2 key */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_idem_get_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(2,
    "SELECT request_hash, status, content_type, etag, body,"
    " created_at < now() - interval '24 hours'"
    " FROM idempotency_keys WHERE caller = $1 AND key = $2");

#define NGX_HTTP_CUSTOMER_IDEM_HASH     0
#define NGX_HTTP_CUSTOMER_IDEM_STATUS   1
#define NGX_HTTP_CUSTOMER_IDEM_TYPE     2
#define NGX_HTTP_CUSTOMER_IDEM_ETAG     3
#define NGX_HTTP_CUSTOMER_IDEM_BODY     4
#define NGX_HTTP_CUSTOMER_IDEM_EXPIRED  5


/*
 * $1 caller, $2 key, $3 request hash: sent before the route's write, in
 * its transaction.  An expired row is replaced in place; a live one
 * raises unique_violation, which rolls the write back.
 */
static const char  ngx_http_customer_idem_claim_sql[] =
    "WITH k AS (INSERT INTO idempotency_keys AS i (caller, key,"
    " request_hash) VALUES ($1, $2, $3) ON CONFLICT (caller, key)"
    " DO UPDATE SET request_hash = excluded.request_hash, status = NULL,"
    " content_type = NULL, etag = NULL, body = NULL, created_at = now()"
    " WHERE i.created_at < now() - interval '24 hours' RETURNING 1)"
    " SELECT CASE WHEN EXISTS (SELECT 1 FROM k) THEN true"
    " ELSE idempotency_key_taken() END";


/* $1 caller, $2 key, $3 status, $4 type, $5 ETag or NULL, $6 body */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_idem_put_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(6,
    "UPDATE idempotency_keys SET status = $3, content_type = $4,"
    " etag = $5, body = $6 WHERE caller = $1 AND key = $2");


/*
 * The Idempotency-Key header: NULL when absent, else 1..100 printable
 * ASCII characters, NUL-terminated; at most one of them.  NGX_DECLINED
 * with an error added when it is not.
 */

ngx_int_t
ngx_http_customer_idempotency_key(ngx_http_customer_ctx_t *ctx,
    const char **key)
{
    ngx_uint_t        i;
    ngx_str_t        *v;
    ngx_table_elt_t  *h;

    *key = NULL;

    h = ngx_http_customer_header(ctx->request, "Idempotency-Key",
                                 sizeof("Idempotency-Key") - 1, 0);
    if (h == NULL) {
        return NGX_OK;
    }

    v = &h->value;

    if (ngx_http_customer_header(ctx->request, "Idempotency-Key",
                                 sizeof("Idempotency-Key") - 1, 1)
        || v->len == 0 || v->len > NGX_HTTP_CUSTOMER_IDEM_KEY_MAX)
    {
        goto invalid;
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] < 0x20 || v->data[i] > 0x7e) {
            goto invalid;
        }
    }

    *key = ngx_http_customer_cstr(ctx->request->pool, v->data, v->len);

    return (*key == NULL) ? NGX_ERROR : NGX_OK;

invalid:

    if (ngx_http_customer_add_error(ctx, (u_char *) "Idempotency-Key",
                                    sizeof("Idempotency-Key") - 1,
                                    "Must be one header of 1 to 100 "
                                    "printable characters")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * Runs the route, through the stored answer when the request is a write
 * with an Idempotency-Key.  data/len: the request's body, if any.
 */

ngx_int_t
ngx_http_customer_idem_route(ngx_http_customer_ctx_t *ctx, u_char *data,
    size_t len)
{
    u_char                    *p;
    ngx_int_t                  rc;
    const char                *key;
    ngx_http_customer_idem_t  *idem;

    if ((ctx->route->methods & NGX_HTTP_CUSTOMER_OWN_KEY)
        || !(ctx->request->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_PATCH
                                     |NGX_HTTP_DELETE)))
    {
        return ctx->route->handler(ctx);
    }

    rc = ngx_http_customer_idempotency_key(ctx, &key);

    if (rc != NGX_OK) {
        return rc == NGX_ERROR ? NGX_HTTP_INTERNAL_SERVER_ERROR
                               : ngx_http_customer_invalid(ctx);
    }

    if (key == NULL) {
        return ctx->route->handler(ctx);
    }

    idem = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_customer_idem_t));
    if (idem == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->idem = idem;
    idem->key = (char *) key;

    if (ctx->who.service) {
        idem->caller = "service";

    } else if (ctx->who.sub.len == 0) {
        /* customer_auth off: one trusted caller */
        idem->caller = "trusted";

    } else {
        p = ngx_pnalloc(ctx->request->pool,
                        sizeof("user:") + ctx->who.sub.len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(p, "user:%V%Z", &ctx->who.sub);
        idem->caller = (char *) p;
    }

    if (ngx_http_customer_idem_hash(ctx, data, len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_idem_lookup(ctx);
}


/* sha256 of the method, the URI as sent (arguments too) and the body */

static ngx_int_t
ngx_http_customer_idem_hash(ngx_http_customer_ctx_t *ctx, u_char *data,
    size_t len)
{
    u_char               md[EVP_MAX_MD_SIZE];
    ngx_int_t            rc;
    unsigned int         n;
    EVP_MD_CTX          *mdctx;
    ngx_http_request_t  *r;

    r = ctx->request;

    mdctx = EVP_MD_CTX_new();
    if (mdctx == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (EVP_DigestInit_ex(mdctx, EVP_sha256(), NULL) == 1
        && EVP_DigestUpdate(mdctx, r->method_name.data, r->method_name.len)
           == 1
        && EVP_DigestUpdate(mdctx, " ", 1) == 1
        && EVP_DigestUpdate(mdctx, r->unparsed_uri.data, r->unparsed_uri.len)
           == 1
        && EVP_DigestUpdate(mdctx, "\n", 1) == 1
        && (len == 0 || EVP_DigestUpdate(mdctx, data, len) == 1)
        && EVP_DigestFinal_ex(mdctx, md, &n) == 1
        && n == 32)
    {
        *ngx_hex_dump((u_char *) ctx->idem->hash, md, n) = '\0';
        rc = NGX_OK;
    }

    EVP_MD_CTX_free(mdctx);

    return rc;
}


static ngx_int_t
ngx_http_customer_idem_lookup(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_pg_query_t  *q;

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = ctx->idem->caller;
    q->values[1] = ctx->idem->key;

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_idem_get_sql,
                                       ngx_http_customer_idem_looked_up);
}


/* the key's row, looked up first, or again after the claim failed */

static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_idem_looked_up)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    /* the key's stored row is there and younger than 24 hours */

    if (PQntuples(res) != 0
        && *PQgetvalue(res, 0, NGX_HTTP_CUSTOMER_IDEM_EXPIRED) != 't')
    {
        return ngx_http_customer_idem_answer(ctx, res);
    }

    if (ctx->idem->state == NGX_HTTP_CUSTOMER_IDEM_SENT) {
        /* gone again (expired meanwhile): let the client decide */
        return ngx_http_customer_send_error(ctx, NGX_HTTP_CONFLICT,
                   "Idempotency key in use", "Idempotency-Key",
                   "A request with this key was being processed; "
                   "retry it");
    }

    /* a new request: its first write claims the key */
    ctx->idem->state = NGX_HTTP_CUSTOMER_IDEM_PENDING;

    return ctx->route->handler(ctx);
}


/* the answer from a stored row: replayed, or 409 */

static ngx_int_t
ngx_http_customer_idem_answer(ngx_http_customer_ctx_t *ctx, PGresult *res)
{
    ngx_str_t            type, v;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->idem->state = NGX_HTTP_CUSTOMER_IDEM_DONE;

    if (ngx_strcmp(PQgetvalue(res, 0, NGX_HTTP_CUSTOMER_IDEM_HASH),
                   ctx->idem->hash)
        != 0)
    {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_CONFLICT,
                   "Idempotency key reused with a different request",
                   "Idempotency-Key",
                   "This key was used for another method, path or body");
    }

    if (PQgetisnull(res, 0, NGX_HTTP_CUSTOMER_IDEM_STATUS)) {
        /* committed: its answer is being completed, or it was lost */
        return ngx_http_customer_send_error(ctx, NGX_HTTP_CONFLICT,
                   "Request already applied", "Idempotency-Key",
                   "The request with this key was applied and is not "
                   "applied again; its answer is not available (still "
                   "being completed, or lost with a connection): retry "
                   "later or read the resource back");
    }

    ngx_str_set(&v, "true");

    h = ngx_http_customer_push_header(&r->headers_out.headers,
                                      "Idempotent-Replayed", &v);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!PQgetisnull(res, 0, NGX_HTTP_CUSTOMER_IDEM_ETAG)) {
        ctx->etag.len = PQgetlength(res, 0, NGX_HTTP_CUSTOMER_IDEM_ETAG);
        ctx->etag.data = (u_char *) ngx_http_customer_value(r->pool, res, 0,
                                          NGX_HTTP_CUSTOMER_IDEM_ETAG);
        if (ctx->etag.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        ngx_str_null(&ctx->etag);
    }

    type.len = PQgetlength(res, 0, NGX_HTTP_CUSTOMER_IDEM_TYPE);
    type.data = (u_char *) ngx_http_customer_value(r->pool, res, 0,
                                              NGX_HTTP_CUSTOMER_IDEM_TYPE);
    if (type.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* res is cleared when this returns: the body is copied */
    ctx->idem->len = PQgetlength(res, 0, NGX_HTTP_CUSTOMER_IDEM_BODY);
    ctx->idem->data = (u_char *) ngx_http_customer_value(r->pool, res, 0,
                                              NGX_HTTP_CUSTOMER_IDEM_BODY);
    if (ctx->idem->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_send_bytes(ctx,
               ngx_atoi((u_char *) PQgetvalue(res, 0,
                                              NGX_HTTP_CUSTOMER_IDEM_STATUS),
                        PQgetlength(res, 0, NGX_HTTP_CUSTOMER_IDEM_STATUS)),
               &type, ctx->idem->data, ctx->idem->len);
}


/* the route's first write statement claims the key in its transaction */

void
ngx_http_customer_idem_query(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q)
{
    ngx_http_customer_idem_t  *idem;

    idem = ctx->idem;

    if (idem == NULL || idem->state != NGX_HTTP_CUSTOMER_IDEM_PENDING
        || q->stmt->shared || q->stmt->readonly)
    {
        return;
    }

    q->pre = ngx_http_customer_idem_claim_sql;
    q->pre_nparams = 3;
    q->pre_values[0] = idem->caller;
    q->pre_values[1] = idem->key;
    q->pre_values[2] = idem->hash;

    idem->state = NGX_HTTP_CUSTOMER_IDEM_SENT;
}


/*
 * The claiming write's result, before the route sees it: NGX_DECLINED to
 * go on to the route, else an rc (the key was taken: answered from its
 * row).
 */

ngx_int_t
ngx_http_customer_idem_result(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    char                      *name;
    ngx_http_customer_idem_t  *idem;

    idem = ctx->idem;

    if (idem == NULL || idem->state != NGX_HTTP_CUSTOMER_IDEM_SENT
        || q->pre == NULL)
    {
        return NGX_DECLINED;
    }

    q->pre = NULL;

    if (res
        && (PQresultStatus(res) == PGRES_TUPLES_OK
            || PQresultStatus(res) == PGRES_COMMAND_OK))
    {
        idem->state = NGX_HTTP_CUSTOMER_IDEM_CLAIMED;
        return NGX_DECLINED;
    }

    name = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;

    if (name && ngx_strcmp(name, "idempotency_keys_pkey") == 0) {
        return ngx_http_customer_idem_lookup(ctx);
    }

    /* rolled back, or unknown: nothing is stored under the key by us */
    idem->state = NGX_HTTP_CUSTOMER_IDEM_DONE;

    return NGX_DECLINED;
}


/*
 * An answer is about to go out: if the key was claimed, store the answer
 * first (NGX_DONE: sent when stored), else NGX_DECLINED, send it now.
 */

ngx_int_t
ngx_http_customer_idem_send(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len)
{
    u_char                        *p;
    ngx_http_customer_idem_t      *idem;
    ngx_http_customer_pg_query_t  *q;

    idem = ctx->idem;

    if (idem == NULL || idem->state != NGX_HTTP_CUSTOMER_IDEM_CLAIMED) {
        return NGX_DECLINED;
    }

    idem->state = NGX_HTTP_CUSTOMER_IDEM_STORING;
    idem->status = status;
    idem->type = *type;
    idem->data = data;
    idem->len = len;

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(ctx->request->pool, NGX_INT_T_LEN + 1 + type->len + 1
                                        + ctx->etag.len + 1 + len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = idem->caller;
    q->values[1] = idem->key;

    q->values[2] = (char *) p;
    p = ngx_sprintf(p, "%ui%Z", status);

    q->values[3] = (char *) p;
    p = ngx_sprintf(p, "%V%Z", type);

    if (ctx->etag.len) {
        q->values[4] = (char *) p;
        p = ngx_sprintf(p, "%V%Z", &ctx->etag);
    }

    q->values[5] = (char *) p;
    p = ngx_cpymem(p, data, len);
    *p = '\0';

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_idem_put_sql,
                                       ngx_http_customer_idem_stored);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_idem_stored)
{
    ngx_http_customer_idem_t  *idem;

    idem = ctx->idem;
    idem->state = NGX_HTTP_CUSTOMER_IDEM_DONE;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        /* the change is made: answer it; a retry will be told so */
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "customer: the answer for Idempotency-Key \"%s\" "
                      "could not be stored: %s", idem->key,
                      ngx_http_customer_pg_why(res));
    }

    return ngx_http_customer_send_bytes(ctx, idem->status, &idem->type,
                                        idem->data, idem->len);
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/rand.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_idempotency.h"
#include "ngx_http_customer_intake.h"


/*
 * Answers: the envelope ({"success", "message", "data"}), one row, a
 * page, the errors of a 400 (every bad field at once), the error of a
 * failed query, and the headers every answer carries (X-Request-Id, an
 * ETag).  Every answer goes out through ngx_http_customer_send_bytes(),
 * where a write's answer is stored for its Idempotency-Key.
 */


static void ngx_http_customer_new_request_id(u_char *p);


/* the generator of request ids, seeded in each worker */
static uint64_t   ngx_http_customer_rid_state;
static ngx_pid_t  ngx_http_customer_rid_pid;


yajl_gen
ngx_http_customer_envelope(ngx_http_customer_ctx_t *ctx, const char *message)
{
    yajl_gen  g;

    g = ngx_http_customer_json_gen(ctx->request->pool);
    if (g == NULL) {
        return NULL;
    }

    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "success");
    yajl_gen_bool(g, 1);
    ngx_http_customer_gen_lit(g, "message");
    ngx_http_customer_gen_cstr(g, message);
    ngx_http_customer_gen_lit(g, "data");

    return g;
}


/* closes the data's object and the envelope around it, and sends them */

ngx_int_t
ngx_http_customer_send_data(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    yajl_gen g)
{
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    return ngx_http_customer_send(ctx, status, g);
}


ngx_int_t
ngx_http_customer_send(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    yajl_gen g)
{
    u_char     *data;
    size_t      len;
    ngx_str_t   type;

    if (g == NULL || ngx_http_customer_json_result(g, &data, &len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&type, "application/json");

    return ngx_http_customer_send_bytes(ctx, status, &type, data, len);
}


/* the envelope around data that PostgreSQL wrote as JSON: res's column */

ngx_int_t
ngx_http_customer_send_json(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    const char *message, PGresult *res, int column)
{
    yajl_gen  g;

    g = ngx_http_customer_envelope(ctx, message);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_customer_json_text(g, (u_char *) PQgetvalue(res, 0, column),
                                    PQgetlength(res, 0, column))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_close(g);

    return ngx_http_customer_send(ctx, status, g);
}


/* an answer of any type: the status, our headers, the bytes */

ngx_int_t
ngx_http_customer_send_bytes(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t          out;
    ngx_http_request_t  *r;

    rc = ngx_http_customer_idem_send(ctx, status, type, data, len);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    r = ctx->request;

    rc = ngx_http_customer_send_header(ctx, status, type, len);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The status line and our headers for a body of len bytes that the
 * caller sends itself: the rc of ngx_http_send_header().
 */

ngx_int_t
ngx_http_customer_send_header(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    ngx_str_t *type, off_t len)
{
    ngx_str_t            id;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = ctx->request;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    if (status == NGX_HTTP_UNPROCESSABLE_ENTITY) {
        /* not in nginx 1.22's table of reason phrases */
        ngx_str_set(&r->headers_out.status_line,
                    "422 Unprocessable Entity");
    }
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_customer_request_id_of(r, &id) == NGX_OK
        && ngx_http_customer_push_header(&r->headers_out.headers,
                                         "X-Request-Id", &id)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->etag.len && status < NGX_HTTP_SPECIAL_RESPONSE) {
        h = ngx_http_customer_push_header(&r->headers_out.headers, "ETag",
                                          &ctx->etag);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        r->headers_out.etag = h;
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        /* If-Match is ours to check against the stored version */
        r->disable_not_modified = 1;
    }

    return ngx_http_send_header(r);
}


/*
 * The client's id when it is sane, else nginx's $request_id.  The latter
 * is filled in here unless something evaluated it already, so the log
 * and the peers see the same id: nginx draws 16 bytes from OpenSSL's
 * generator for it, which took 6% of a worker's time on a GET (a
 * getpid() and an AES block per request); 32 hex digits from a
 * per-worker generator seeded from OpenSSL serve as well.  They are
 * unique, not secret.
 */

ngx_int_t
ngx_http_customer_request_id_of(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char                         *p, *last;
    ngx_table_elt_t                *h;
    ngx_http_variable_value_t      *vv;
    ngx_http_customer_main_conf_t  *cmcf;

    /* not ngx_str_null(): the loop below adds len to data */
    ngx_str_set(id, "");

    h = ngx_http_customer_header(r, "X-Request-Id",
                                 sizeof("X-Request-Id") - 1, 0);
    if (h && h->value.len <= 128) {
        *id = h->value;
    }

    for (p = id->data, last = p + id->len; p < last; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            id->len = 0;
            break;
        }
    }

    if (id->len) {
        return NGX_OK;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_customer_module);

    if (cmcf->request_id_index == NGX_ERROR) {
        return NGX_DECLINED;
    }

    vv = &r->variables[cmcf->request_id_index];

    if (!vv->valid && !vv->not_found) {
        p = ngx_pnalloc(r->pool, 32);
        if (p == NULL) {
            return NGX_DECLINED;
        }

        ngx_http_customer_new_request_id(p);

        vv->data = p;
        vv->len = 32;
        vv->valid = 1;
        vv->no_cacheable = 0;
    }

    if (!vv->valid) {
        return NGX_DECLINED;
    }

    id->data = vv->data;
    id->len = vv->len;

    return NGX_OK;
}


/* splitmix64 over a counter: 2^64 distinct values before it repeats */

static uint64_t
ngx_http_customer_rid_next(void)
{
    uint64_t  z;

    z = (ngx_http_customer_rid_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;

    return z ^ (z >> 31);
}


static void
ngx_http_customer_new_request_id(u_char *p)
{
    uint64_t  v[2];

    if (ngx_http_customer_rid_pid != ngx_pid) {
        /* first use in this process: a seed of its own */

        if (RAND_bytes((u_char *) &ngx_http_customer_rid_state,
                       sizeof(uint64_t))
            != 1)
        {
            ngx_http_customer_rid_state = (uint64_t) ngx_random() << 32
                                          ^ ngx_random() ^ ngx_pid;
        }

        ngx_http_customer_rid_pid = ngx_pid;
    }

    v[0] = ngx_http_customer_rid_next();
    v[1] = ngx_http_customer_rid_next();

    ngx_hex_dump(p, (u_char *) v, sizeof(v));
}


/*
 * A header line at the end of a list (a response's, or a subrequest's
 * request headers), its value set when value is given.  From nginx 1.23
 * on, lines of one name are linked through next, which ngx_list_push()
 * leaves as it found it.
 */

ngx_table_elt_t *
ngx_http_customer_push_header(ngx_list_t *headers, const char *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->lowcase_key = NULL;

    if (value) {
        h->value = *value;
    }

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


ngx_int_t
ngx_http_customer_add_error(ngx_http_customer_ctx_t *ctx, u_char *field,
    size_t len, const char *message)
{
    ngx_http_customer_error_t  *e;

    if (ctx->errors && ctx->errors->nelts >= NGX_HTTP_CUSTOMER_ERRORS_MAX) {
        /* a 400 lists a bounded number; the rest are only counted */
        ctx->errors_more++;
        return NGX_OK;
    }

    e = ngx_http_customer_array_push(ctx->request->pool, &ctx->errors, 4,
                                     sizeof(ngx_http_customer_error_t));
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->field.data = field;
    e->field.len = len;
    e->message.data = (u_char *) message;
    e->message.len = ngx_strlen(message);

    return NGX_OK;
}


ngx_int_t
ngx_http_customer_send_errors(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    const char *message)
{
    size_t                      n;
    u_char                     *more;
    yajl_gen                    g;
    ngx_uint_t                  i;
    ngx_http_customer_error_t  *e;

    g = ngx_http_customer_json_gen(ctx->request->pool);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "success");
    yajl_gen_bool(g, 0);
    ngx_http_customer_gen_lit(g, "message");
    ngx_http_customer_gen_cstr(g, message);
    ngx_http_customer_gen_lit(g, "errors");
    yajl_gen_array_open(g);

    if (ctx->errors) {
        e = ctx->errors->elts;

        for (i = 0; i < ctx->errors->nelts; i++) {
            yajl_gen_map_open(g);
            ngx_http_customer_gen_lit(g, "field");
            ngx_http_customer_gen_str(g, &e[i].field);
            ngx_http_customer_gen_lit(g, "message");
            ngx_http_customer_gen_str(g, &e[i].message);
            yajl_gen_map_close(g);
        }
    }

    if (ctx->errors_more) {
        more = ngx_pnalloc(ctx->request->pool, NGX_INT_T_LEN + 32);
        if (more == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = ngx_sprintf(more, "%ui more errors not listed", ctx->errors_more)
            - more;

        yajl_gen_map_open(g);
        ngx_http_customer_gen_lit(g, "field");
        ngx_http_customer_gen_lit(g, "body");
        ngx_http_customer_gen_lit(g, "message");
        yajl_gen_string(g, more, n);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
    yajl_gen_map_close(g);

    ctx->etag.len = 0;

    return ngx_http_customer_send(ctx, status, g);
}


ngx_int_t
ngx_http_customer_send_error(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    const char *message, const char *field, const char *detail)
{
    if (ctx->errors) {
        ctx->errors->nelts = 0;
    }

    ctx->errors_more = 0;

    if (ngx_http_customer_add_error(ctx, (u_char *) field, ngx_strlen(field),
                                    detail)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_send_errors(ctx, status, message);
}


ngx_int_t
ngx_http_customer_db_error(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    char  *state;

    switch (q->error) {

    case NGX_HTTP_CUSTOMER_PG_OK:
        break;

    case NGX_HTTP_CUSTOMER_PG_BUSY:
        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "Service busy", "database",
                   "Too many requests are waiting for the database; "
                   "try again later");

    case NGX_HTTP_CUSTOMER_PG_TIMEOUT:
        if (q->sent && !q->stmt->shared && !q->stmt->readonly) {
            return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "Outcome unknown",
                   "database", "The database did not answer in time; the "
                   "change may or may not have been applied: read it back, "
                   "or retry with the same Idempotency-Key");
        }

        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "Database unavailable",
                   "database", "The database did not answer in time");

    case NGX_HTTP_CUSTOMER_PG_LOST:
        if (q->sent && !q->stmt->shared && !q->stmt->readonly) {
            return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "Outcome unknown",
                   "database", "The connection to the database was lost "
                   "after the change was sent; it may or may not have been "
                   "applied: read it back, or retry with the same "
                   "Idempotency-Key");
        }

        /* fall through */

    default:
        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "Database unavailable",
                   "database", "The database cannot be reached; "
                   "try again later");
    }

    if (res && PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {
        /*
         * another statement of its batch failed (its connection was
         * terminated, say) and this one never ran, even when sent again
         */
        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "Database unavailable",
                   "database", "The database cannot be reached; "
                   "try again later");
    }

    state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    if (state != NULL) {
        if (ngx_strcmp(state, "57014") == 0
            || ngx_strncmp(state, "08", 2) == 0
            || ngx_strncmp(state, "57P", 3) == 0)
        {
            return ngx_http_customer_send_error(ctx,
                       NGX_HTTP_SERVICE_UNAVAILABLE, "Database unavailable",
                       "database", "The database did not answer in time");
        }

        if (ngx_strcmp(state, "23505") == 0) {
            return ngx_http_customer_send_error(ctx, NGX_HTTP_CONFLICT,
                       "Conflict", "resource",
                       "A record with the same unique value exists");
        }

        if (ngx_strncmp(state, "22", 2) == 0
            || ngx_strncmp(state, "23", 2) == 0)
        {
            return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                       "Validation failed", "body",
                       "A value is out of range or malformed");
        }
    }

    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "customer: query failed: %s",
                  ngx_http_customer_pg_why(res));

    return ngx_http_customer_send_error(ctx,
               NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error",
               "server", "The request could not be completed");
}


ngx_int_t
ngx_http_customer_not_found(ngx_http_customer_ctx_t *ctx)
{
    return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
               "Customer not found", ctx->by_user ? "userId" : "customerId",
               ctx->by_user ? "No customer record exists for this user"
                            : "No customer exists with the provided ID");
}


/* the 400 of the errors collected: every bad field named */

ngx_int_t
ngx_http_customer_invalid(ngx_http_customer_ctx_t *ctx)
{
    return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                         "Validation failed");
}


/*
 * The rows of a statement's result; 0 when it failed or found none, and
 * then *rc is the answer sent: the failure's, or 404 for the customer
 */

ngx_int_t
ngx_http_customer_rows(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res, ngx_int_t *rc)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        *rc = ngx_http_customer_db_error(ctx, q, res);
        return 0;
    }

    if (PQntuples(res) == 0) {
        *rc = ngx_http_customer_not_found(ctx);
        return 0;
    }

    return PQntuples(res);
}


/* the envelope around row 0 of res as an object */

ngx_int_t
ngx_http_customer_send_row(ngx_http_customer_ctx_t *ctx, ngx_uint_t status,
    const char *message, PGresult *res, ngx_http_customer_column_t *cols,
    int ncols)
{
    yajl_gen  g;

    g = ngx_http_customer_envelope(ctx, message);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);

    if (ngx_http_customer_json_row(ctx->request->pool, g, res, 0, 0, cols,
                                   ncols)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_send_data(ctx, status, g);
}


/* the record's version, column of row 0, as the ETag "<version>" */

ngx_int_t
ngx_http_customer_set_etag(ngx_http_customer_ctx_t *ctx, PGresult *res,
    ngx_uint_t column)
{
    u_char  *p;

    p = ngx_pnalloc(ctx->request->pool, NGX_INT_T_LEN + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->etag.data = p;
    ctx->etag.len = ngx_snprintf(p, NGX_INT_T_LEN + 2, "\"%s\"",
                                 PQgetvalue(res, 0, column))
                    - p;

    return NGX_OK;
}


/*
 * The rows of res as the array name, their columns from column first on.
 * A page's statement answers the total in the first column and the
 * items' columns after it (first 1), one row with NULL items for an
 * empty page (a LEFT JOIN), no row at all when the owner is not found.
 */

ngx_int_t
ngx_http_customer_gen_rows(ngx_http_customer_ctx_t *ctx, yajl_gen g,
    PGresult *res, const char *name, int first,
    ngx_http_customer_column_t *cols, int ncols)
{
    int  row, n;

    n = PQntuples(res);

    ngx_http_customer_gen_cstr(g, name);
    yajl_gen_array_open(g);

    for (row = 0; row < n; row++) {

        if (PQgetisnull(res, row, first)) {
            /* the LEFT JOIN's empty page */
            continue;
        }

        yajl_gen_map_open(g);

        if (ngx_http_customer_json_row(ctx->request->pool, g, res, row,
                                       first, cols, ncols)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    return NGX_OK;
}


ngx_int_t
ngx_http_customer_send_page(ngx_http_customer_ctx_t *ctx, PGresult *res,
    const char *message, const char *name, ngx_http_customer_column_t *cols,
    int ncols, ngx_uint_t page, ngx_uint_t limit)
{
    yajl_gen   g;
    ngx_int_t  total;

    total = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                     PQgetlength(res, 0, 0));
    if (total == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    g = ngx_http_customer_envelope(ctx, message);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);

    if (ngx_http_customer_gen_rows(ctx, g, res, name, 1, cols, ncols)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_customer_gen_pagination(g, page, limit, total, page > 1);
    yajl_gen_map_close(g);

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}

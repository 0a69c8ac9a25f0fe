
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_access.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * Request intake.  The content handler routes the request; a route that
 * takes a body reads it first (ngx_http_read_client_request_body holds a
 * reference on the request), others discard the body.  The body is kept
 * in memory, checked for its type, size, UTF-8 and JSON, and the route
 * is run (ngx_http_customer_run_route(), after the caller's account
 * check).  A route either answers at once (validation errors) and
 * returns the rc of ngx_http_output_filter(), or starts a query and
 * returns NGX_DONE; then the request is finalized from the query's
 * continuation.  On the path without a body the content handler takes
 * the reference itself (r->main->count++) before NGX_DONE.  Also here:
 * the request's headers, query arguments and path parameters.
 */


static ngx_int_t ngx_http_customer_error_page(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_json_type(ngx_http_request_t *r);
static void ngx_http_customer_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_customer_body(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_body_bytes(ngx_http_request_t *r,
    ngx_str_t *body, ngx_uint_t copy);
static ngx_uint_t ngx_http_customer_tchar(u_char c);
static u_char *ngx_http_customer_prefer_next(u_char *p, u_char *last);


ngx_int_t
ngx_http_customer_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_str_t                      v;
    ngx_uint_t                     allowed, body, bad;
    const char                    *reason;
    ngx_http_customer_ctx_t       *ctx;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_customer_loc_conf_t  *llcf;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "customer handler \"%V\"", &r->uri);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_customer_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ngx_http_set_ctx(r, ctx, ngx_http_customer_module);

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_customer_module);

    /* CORS headers go on every answer, errors too */

    if (llcf->cors_origins && ngx_http_customer_cors(r, llcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->err_status >= NGX_HTTP_BAD_REQUEST) {
        /* error_page ... /_customer_error: nginx's own error, our shape */
        return ngx_http_customer_error_page(ctx);
    }

    /* a path that fails the check is not routed */

    allowed = 0;
    bad = (ngx_http_customer_path_check(r, &reason) != NGX_OK);
    ctx->route = bad ? NULL : ngx_http_customer_route(r, ctx, &allowed);

    /* a JSON body is read when the route takes one and one came */

    body = ctx->route
           && (ctx->route->json_body & 1
               || (ctx->route->json_body == 2
                   && (r->headers_in.content_length_n > 0
                       || r->headers_in.chunked)));

    if (!body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (bad) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                            "Bad request", "path", reason);
    }

    if (ctx->route == NULL) {
        if (allowed && r->method == NGX_HTTP_OPTIONS) {
            /* a CORS preflight, or a client asking what the path takes */
            return ngx_http_customer_options(ctx, allowed);
        }

        if (allowed) {
            if (ngx_http_customer_allow_header(r, allowed, &v) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_customer_send_error(ctx,
                       NGX_HTTP_NOT_ALLOWED, "Method not allowed", "method",
                       "This endpoint does not support the method");
        }

        return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
                                            "Not found", "path",
                                            "No such endpoint");
    }

    rc = ngx_http_customer_authorize(ctx);

    if (rc != NGX_OK) {
        if (body) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        return ngx_http_customer_send_errors(ctx, ctx->status,
                                             ctx->status == NGX_HTTP_FORBIDDEN
                                             ? "Access denied"
                                             : "Unauthorized");
    }

    if (!body) {
        rc = ngx_http_customer_run_route(ctx, NULL, 0);

        if (rc == NGX_DONE) {
            r->main->count++;
        }

        return rc;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (ctx->route->json_body != 3 && ngx_http_customer_json_type(r) != NGX_OK)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "Unsupported media type",
                   "Content-Type", "The body must be application/json");
    }

    /* a body is kept in memory: the module never reads a file */

    if ((clcf->client_max_body_size
         && r->headers_in.content_length_n > clcf->client_max_body_size)
        || r->headers_in.content_length_n
           > (off_t) clcf->client_body_buffer_size)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        r->keepalive = 0;

        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "Payload too large",
                   "body", (clcf->client_max_body_size
                            && r->headers_in.content_length_n
                               > clcf->client_max_body_size)
                           ? "The body is larger than client_max_body_size"
                           : "The body is larger than "
                             "client_body_buffer_size");
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_customer_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * nginx's own errors, answered through error_page, in our shape: the
 * status, the one answered instead (0: the same), message and detail.
 */
static struct ngx_http_customer_error_page_s {
    ngx_uint_t    status;
    ngx_uint_t    answer;
    const char   *message;
    const char   *detail;
} ngx_http_customer_error_pages[] = {
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, 0, "Payload too large",
      "The body is larger than client_max_body_size" },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, 0, "URI too long",
      "The request line is too long" },
    { NGX_HTTP_NOT_FOUND, 0, "Not found", "No such endpoint" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, 0, "Service unavailable",
      "The service cannot take the request now" },
    /* limit_req, limit_conn */
    { NGX_HTTP_TOO_MANY_REQUESTS, 0, "Too many requests",
      "Slow down and try again later" },

    /*
     * Errors of the request itself that nginx answers with a 5xx: the
     * client caused them, so they are 400s.  (494-497 come here as 400
     * already: error_page overwrites them so.)
     */
    { NGX_HTTP_NOT_IMPLEMENTED, NGX_HTTP_BAD_REQUEST, "Bad request",
      "The request's method or Transfer-Encoding is not supported" },
    { NGX_HTTP_VERSION_NOT_SUPPORTED, NGX_HTTP_BAD_REQUEST, "Bad request",
      "The HTTP version is not supported" },

    /* any other: a 5xx, or a 4xx (a request line nginx could not parse) */
    { 0, 0, "Internal server error", "The request could not be completed" },
    { 0, 0, "Bad request", "The request could not be processed" }
};


static ngx_int_t
ngx_http_customer_error_page(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_uint_t           status;
    ngx_http_request_t  *r;

    struct ngx_http_customer_error_page_s  *e;

    r = ctx->request;
    status = r->err_status;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    for (e = ngx_http_customer_error_pages; e->status; e++) {
        if (e->status == status) {
            break;
        }
    }

    e += (e->status == 0 && status < NGX_HTTP_INTERNAL_SERVER_ERROR);
    status = e->answer ? e->answer : status;

    /* nginx sends err_status, not headers_out.status */
    r->err_status = status;

    return ngx_http_customer_send_error(ctx, status, e->message,
                                        status == NGX_HTTP_NOT_FOUND
                                        ? "path" : "request", e->detail);
}


static ngx_int_t
ngx_http_customer_json_type(ngx_http_request_t *r)
{
    size_t      n;
    ngx_str_t  *t;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    t = &r->headers_in.content_type->value;
    n = sizeof("application/json") - 1;

    /* the type, alone or with parameters */

    return (t->len >= n
            && ngx_strncasecmp(t->data, (u_char *) "application/json", n) == 0
            && (t->len == n || t->data[n] == ';' || t->data[n] == ' '))
           ? NGX_OK : NGX_DECLINED;
}


static void
ngx_http_customer_body_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_customer_body(ngx_http_get_module_ctx(r,
                                                ngx_http_customer_module));

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the body read: checked and handed to the route; the route's rc */

static ngx_int_t
ngx_http_customer_body(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_str_t            data, err;
    const char          *detail;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->route->json_body != 3
        && (r->request_body == NULL || r->request_body->bufs == NULL))
    {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                            "Malformed JSON", "body",
                                            "A JSON body is required");
    }

    if (r->request_body && r->request_body->temp_file) {
        /* reading a file would block the worker: bodies must fit memory */
        r->keepalive = 0;
        return ngx_http_customer_send_error(ctx,
                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "Payload too large",
                  "body", "The body is larger than client_body_buffer_size");
    }

    if (ctx->route->json_body == 3) {
        /* any bytes, perhaps none: the route reads ctx->raw */
        if (ngx_http_customer_body_bytes(r, &ctx->raw, 0) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_customer_run_route(ctx, ctx->raw.data, ctx->raw.len);
    }

    if (ngx_http_customer_body_bytes(r, &data, 1) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_customer_utf8(data.data, data.len) != NGX_OK) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                            "Malformed JSON", "body",
                                            "The body is not valid UTF-8");
    }

    rc = ngx_http_customer_json_parse(r->pool, data.data, data.len,
                                      &ctx->body, &err);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED || ctx->body == NULL) {
        detail = (rc == NGX_DECLINED)
                 ? ngx_http_customer_cstr(r->pool, err.data, err.len)
                 : "A JSON body is required";
        if (detail == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                            "Malformed JSON", "body", detail);
    }

    if (ctx->body->type != NGX_HTTP_CUSTOMER_JSON_OBJECT) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                            "Malformed JSON", "body",
                                            "The body must be a JSON object");
    }

    return ngx_http_customer_run_route(ctx, data.data, data.len);
}


/*
 * The body's bytes in one piece, "" when there are none: its one buffer
 * itself unless copy is asked for, else a copy, NUL-terminated
 */

static ngx_int_t
ngx_http_customer_body_bytes(ngx_http_request_t *r, ngx_str_t *body,
    ngx_uint_t copy)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    ngx_str_set(body, "");

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !copy) {
        /* request_body_in_single_buf: the usual case, no copy */
        if (cl->buf->last > cl->buf->pos) {
            /* an empty buffer's pos may be NULL: that would be SQL NULL */
            body->data = cl->buf->pos;
            body->len = cl->buf->last - cl->buf->pos;
        }

        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        /* empty buffers (an empty body, a chunked body's end): pos NULL */
        if (cl->buf->last > cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    *p = '\0';

    return NGX_OK;
}


/* the nth (0: the first) request header of that name, or NULL */

ngx_table_elt_t *
ngx_http_customer_header(ngx_http_request_t *r, const char *name, size_t len,
    ngx_uint_t nth)
{
    return ngx_http_customer_list_header(&r->headers_in.headers, name, len,
                                         nth);
}


/* the nth header of that name in a list of headers, or NULL */

ngx_table_elt_t *
ngx_http_customer_list_header(ngx_list_t *headers, const char *name,
    size_t len, ngx_uint_t nth)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            if (nth--) {
                continue;
            }

            return &h[i];
        }
    }
}



/* RFC 9110 tchar: the characters of a token */

static ngx_uint_t
ngx_http_customer_tchar(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9')
           || (c != '\0' && ngx_strchr("!#$%&'*+-.^_`|~", c) != NULL);
}


/* past the rest of one preference: to its comma, over quoted strings */

static u_char *
ngx_http_customer_prefer_next(u_char *p, u_char *last)
{
    ngx_uint_t  quoted;

    for (quoted = 0; p < last; p++) {

        if (quoted) {
            if (*p == '\\' && p + 1 < last) {
                p++;

            } else if (*p == '"') {
                quoted = 0;
            }

            continue;
        }

        if (*p == '"') {
            quoted = 1;

        } else if (*p == ',') {
            break;
        }
    }

    return p;
}


/*
 * The value of the first preference of that name in the Prefer headers
 * (RFC 7240: preference = token [BWS "=" BWS word] *(OWS ";" [OWS
 * parameter]); names are case-insensitive, and a preference given more
 * than once counts only the first time).  NGX_DECLINED: not there;
 * NGX_OK: value set, its len 0 when it has none or one that does not
 * parse (a token, or a quoted string without escapes).  Parameters are
 * skipped.
 */

ngx_int_t
ngx_http_customer_prefer(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char           *p, *last, *n;
    size_t            len, nlen;
    ngx_uint_t        i, ok, esc;
    ngx_str_t         v;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);

    for (i = 0; /* void */; i++) {

        h = ngx_http_customer_header(r, "Prefer", sizeof("Prefer") - 1, i);
        if (h == NULL) {
            return NGX_DECLINED;
        }

        p = h->value.data;
        last = p + h->value.len;

        while (p < last) {

            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            if (p == last) {
                break;
            }

            n = p;

            while (p < last && ngx_http_customer_tchar(*p)) {
                p++;
            }

            nlen = p - n;
            ok = (nlen > 0);
            ngx_str_null(&v);

            while (p < last && (*p == ' ' || *p == '\t')) {
                p++;
            }

            if (ok && p < last && *p == '=') {

                do {
                    p++;
                } while (p < last && (*p == ' ' || *p == '\t'));

                v.data = p;

                if (p < last && *p == '"') {
                    v.data = ++p;
                    esc = 0;

                    while (p < last && *p != '"') {
                        if (*p == '\\') {
                            esc = 1;
                            p++;
                        }

                        p += (p < last);
                    }

                    v.len = p - v.data;

                    /* escapes or no closing quote: not a value of ours */
                    ok = (p < last && !esc);
                    p += (p < last);

                } else {
                    while (p < last && ngx_http_customer_tchar(*p)) {
                        p++;
                    }

                    v.len = p - v.data;
                }

                while (p < last && (*p == ' ' || *p == '\t')) {
                    p++;
                }
            }

            ok = ok && (p == last || *p == ';' || *p == ',');

            if (!ok) {
                ngx_str_null(&v);
            }

            if (nlen == len && ngx_strncasecmp(n, (u_char *) name, len) == 0)
            {
                *value = v;
                return NGX_OK;
            }

            p = ngx_http_customer_prefer_next(p, last);
        }
    }
}


ngx_int_t
ngx_http_customer_arg_str(ngx_http_customer_ctx_t *ctx, const char *name,
    ngx_str_t *value)
{
    u_char      *dst, *src;
    ngx_str_t    raw;
    ngx_uint_t   i;

    if (ngx_http_arg(ctx->request, (u_char *) name, ngx_strlen(name), &raw)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(ctx->request->pool, raw.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    /* a form-encoded '+' is a space; "%2B" stays a '+' */

    for (i = 0; i < raw.len; i++) {
        dst[i] = (raw.data[i] == '+') ? ' ' : raw.data[i];
    }

    value->data = dst;
    src = dst;

    ngx_unescape_uri(&dst, &src, raw.len, 0);

    *dst = '\0';
    value->len = dst - value->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_customer_arg_uint(ngx_http_customer_ctx_t *ctx, const char *name,
    ngx_uint_t def, ngx_uint_t min, ngx_uint_t max, ngx_uint_t *value)
{
    u_char     *msg;
    ngx_int_t   n;
    ngx_str_t   s;

    *value = def;

    if (ngx_http_customer_arg_str(ctx, name, &s) != NGX_OK) {
        return NGX_OK;
    }

    n = ngx_atoi(s.data, s.len);

    if (n != NGX_ERROR && (ngx_uint_t) n >= min && (ngx_uint_t) n <= max) {
        *value = n;
        return NGX_OK;
    }

    msg = ngx_pnalloc(ctx->request->pool, 80);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(msg, "Must be a whole number from %ui to %ui%Z", min, max);

    ngx_http_customer_add_error(ctx, (u_char *) name, ngx_strlen(name),
                                (char *) msg);

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_customer_is_uuid(ngx_str_t *s)
{
    ngx_uint_t  i;

    if (s->len != 36) {
        return 0;
    }

    for (i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s->data[i] != '-') {
                return 0;
            }

            continue;
        }

        if (!((s->data[i] >= '0' && s->data[i] <= '9')
              || (s->data[i] >= 'a' && s->data[i] <= 'f')
              || (s->data[i] >= 'A' && s->data[i] <= 'F')))
        {
            return 0;
        }
    }

    return 1;
}


/* the path's customer id: a UUID, NUL-terminated for libpq */

ngx_int_t
ngx_http_customer_id(ngx_http_customer_ctx_t *ctx)
{
    return ngx_http_customer_uuid_param(ctx, 0, "customerId");
}


/*
 * The path's n-th parameter, which must be a UUID, made NUL-terminated
 * for libpq; otherwise an error under name and NGX_DECLINED.
 */

ngx_int_t
ngx_http_customer_uuid_param(ngx_http_customer_ctx_t *ctx, ngx_uint_t n,
    const char *name)
{
    ngx_str_t  *id;

    id = &ctx->params[n];

    if (!ngx_http_customer_is_uuid(id)) {
        ngx_http_customer_add_error(ctx, (u_char *) name, ngx_strlen(name),
                                    "Must be a UUID");
        return NGX_DECLINED;
    }

    /* a NUL-terminated copy for libpq */

    id->data = (u_char *) ngx_http_customer_cstr(ctx->request->pool,
                                                 id->data, id->len);

    return (id->data == NULL) ? NGX_ERROR : NGX_OK;
}


/* page (1..) and limit (1..100, 20): NGX_OK, NGX_DECLINED or NGX_ERROR */

ngx_int_t
ngx_http_customer_page_args(ngx_http_customer_ctx_t *ctx, ngx_uint_t *page,
    ngx_uint_t *limit)
{
    ngx_int_t  rc, rc2;

    rc = ngx_http_customer_arg_uint(ctx, "page", 1, 1, 1000000, page);
    rc2 = ngx_http_customer_arg_uint(ctx, "limit", 20, 1, 100, limit);

    if (rc == NGX_ERROR || rc2 == NGX_ERROR) {
        return NGX_ERROR;
    }

    return (rc == NGX_OK && rc2 == NGX_OK) ? NGX_OK : NGX_DECLINED;
}


/* a true|false query argument: "true", "false", or NULL when absent */

ngx_int_t
ngx_http_customer_arg_flag(ngx_http_customer_ctx_t *ctx, const char *name,
    const char **value)
{
    ngx_int_t  rc;
    ngx_str_t  s;

    *value = NULL;

    rc = ngx_http_customer_arg_str(ctx, name, &s);
    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? NGX_OK : rc;
    }

    if ((s.len == 4 && ngx_strncmp(s.data, "true", 4) == 0)
        || (s.len == 5 && ngx_strncmp(s.data, "false", 5) == 0))
    {
        *value = (s.len == 4) ? "true" : "false";
        return NGX_OK;
    }

    return (ngx_http_customer_add_error(ctx, (u_char *) name,
                                        ngx_strlen(name),
                                        "Must be true or false")
            == NGX_OK) ? NGX_DECLINED : NGX_ERROR;
}

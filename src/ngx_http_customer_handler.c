
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


/*
 * Request flow.  The content handler routes the request; a route that
 * takes a JSON body reads it first (ngx_http_read_client_request_body
 * holds a reference on the request), others discard the body.  A resource
 * handler either answers at once (validation errors) and returns the rc of
 * ngx_http_output_filter(), or starts a query and returns NGX_DONE; then
 * the request is finalized from the query's continuation, which may in
 * turn start another query.  On the path without a body the content
 * handler takes the reference itself (r->main->count++) before NGX_DONE.
 */


static void ngx_http_customer_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_customer_json_type(ngx_http_request_t *r);
static ngx_int_t ngx_http_customer_raw_body(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_error_page(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_authorize(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_unauthorized(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t service, const char *reason);
static ngx_int_t ngx_http_customer_run_route(ngx_http_customer_ctx_t *ctx,
    u_char *data, size_t len);
static ngx_int_t ngx_http_customer_account_checked(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static void ngx_http_customer_query_done(ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_request_id(ngx_http_request_t *r);


ngx_int_t
ngx_http_customer_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_uint_t                 allowed, body;
    const char                *reason;
    ngx_http_customer_ctx_t   *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "customer handler \"%V\"", &r->uri);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_customer_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ngx_http_set_ctx(r, ctx, ngx_http_customer_module);

    if (r->err_status >= NGX_HTTP_BAD_REQUEST) {
        /* error_page ... /_customer_error: nginx's own error, our shape */
        return ngx_http_customer_error_page(ctx);
    }

    if (ngx_http_customer_path_check(r, &reason) != NGX_OK) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                            "Bad request", "path", reason);
    }

    ctx->route = ngx_http_customer_route(r, ctx, &allowed);

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

    if (ctx->route == NULL) {
        if (allowed) {
            if (ngx_http_customer_allow_header(r, allowed) != NGX_OK) {
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
 * Internal routes take only X-Service-API-Key, every other non-public
 * route only a bearer JWT; a Customer gets 403 on admin routes.  On
 * failure ctx->status and ctx->errors are set and NGX_DECLINED returned.
 */

static ngx_int_t
ngx_http_customer_authorize(ngx_http_customer_ctx_t *ctx)
{
    u_char                         *p, *last;
    ngx_str_t                       token;
    const char                     *reason;
    ngx_table_elt_t                *auth, *key;
    ngx_http_request_t             *r;
    ngx_http_customer_loc_conf_t   *llcf;
    ngx_http_customer_main_conf_t  *cmcf;

    r = ctx->request;

    if (ctx->route->access == NGX_HTTP_CUSTOMER_PUBLIC) {
        return NGX_OK;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_customer_module);

    if (!llcf->auth) {
        /* customer_auth off: a trusted caller with every right, no sub */
        ctx->who.roles = NGX_HTTP_CUSTOMER_ROLE_ADMIN;
        ctx->who.service = 1;
        return NGX_OK;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_customer_module);

    auth = r->headers_in.authorization;
    key = ngx_http_customer_header(r, "X-Service-API-Key",
                                   sizeof("X-Service-API-Key") - 1, 0);

    if (key && ngx_http_customer_header(r, "X-Service-API-Key",
                                        sizeof("X-Service-API-Key") - 1, 1))
    {
        /* a second one: which would count is anyone's guess */
        return ngx_http_customer_unauthorized(ctx,
                   ctx->route->access == NGX_HTTP_CUSTOMER_SERVICE,
                   "more than one service key header");
    }

    if (ctx->route->access == NGX_HTTP_CUSTOMER_SERVICE) {

        if (auth) {
            return ngx_http_customer_unauthorized(ctx, 1,
                       "a bearer token is not accepted on internal routes");
        }

        if (key == NULL) {
            return ngx_http_customer_unauthorized(ctx, 1,
                                                  "no service key");
        }

        if (ngx_http_customer_check_service_key(&cmcf->auth, &key->value)
            != NGX_OK)
        {
            return ngx_http_customer_unauthorized(ctx, 1,
                                                  "unknown service key");
        }

        ctx->who.service = 1;
        ngx_str_set(&ctx->who.sub, "service");

        return NGX_OK;
    }

    if (auth == NULL) {
        return ngx_http_customer_unauthorized(ctx, 0,
                                              key ? "a service key is not "
                                                    "accepted here"
                                                  : NULL);
    }

    p = auth->value.data;
    last = p + auth->value.len;

    if (last - p < 7 || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0) {
        return ngx_http_customer_unauthorized(ctx, 0,
                                              "authorization is not Bearer");
    }

    p += 7;

    while (p < last && *p == ' ') {
        p++;
    }

    token.data = p;
    token.len = last - p;

    if (ngx_http_customer_verify_jwt(r, &cmcf->auth, &token, &ctx->who,
                                     &reason)
        != NGX_OK)
    {
        return ngx_http_customer_unauthorized(ctx, 0, reason);
    }

    if (ctx->route->access == NGX_HTTP_CUSTOMER_ADMIN
        && !(ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN))
    {
        ctx->status = NGX_HTTP_FORBIDDEN;
        ngx_http_customer_add_error(ctx, (u_char *) "authorization",
                                    sizeof("authorization") - 1,
                                    "This operation requires administrator "
                                    "privileges");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_customer_unauthorized(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t service, const char *reason)
{
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = ctx->request;

    /* why goes to the log, not to the client */

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "customer: 401: %s", reason ? reason : "no credentials");

    h = ngx_http_customer_push_header(&r->headers_out.headers,
                                      "WWW-Authenticate", NULL);
    if (h == NULL) {
        return NGX_ERROR;
    }

    if (service) {
        ngx_str_set(&h->value, "ApiKey header=\"X-Service-API-Key\"");

    } else if (reason) {
        ngx_str_set(&h->value,
                    "Bearer realm=\"customer-api\", error=\"invalid_token\"");

    } else {
        ngx_str_set(&h->value, "Bearer realm=\"customer-api\"");
    }

    r->headers_out.www_authenticate = h;

    ctx->status = NGX_HTTP_UNAUTHORIZED;

    if (service) {
        ngx_http_customer_add_error(ctx, (u_char *) "X-Service-API-Key",
                                    sizeof("X-Service-API-Key") - 1,
                                    "A valid service API key is required");
    } else {
        ngx_http_customer_add_error(ctx, (u_char *) "authorization",
                                    sizeof("authorization") - 1,
                                    "A valid bearer token is required");
    }

    return NGX_DECLINED;
}


/* the nth (from 0) request header of that name */

/* the nth (0: the first) request header of that name, or NULL */

ngx_table_elt_t *
ngx_http_customer_header(ngx_http_request_t *r, const char *name, size_t len,
    ngx_uint_t nth)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
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


static ngx_int_t
ngx_http_customer_error_page(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_uint_t           status;
    const char          *message, *detail;
    ngx_http_request_t  *r;

    r = ctx->request;
    status = r->err_status;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    switch (status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        message = "Payload too large";
        detail = "The body is larger than client_max_body_size";
        break;

    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
        message = "URI too long";
        detail = "The request line is too long";
        break;

    case NGX_HTTP_NOT_FOUND:
        message = "Not found";
        detail = "No such endpoint";
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        message = "Service unavailable";
        detail = "The service cannot take the request now";
        break;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        /* limit_req, limit_conn */
        message = "Too many requests";
        detail = "Slow down and try again later";
        break;

    /*
     * Errors of the request itself that nginx answers with a 5xx: the
     * client caused them, so they are 400s.  (494-497 come here as 400
     * already: error_page overwrites them so.)
     */

    case NGX_HTTP_NOT_IMPLEMENTED:
        status = NGX_HTTP_BAD_REQUEST;
        message = "Bad request";
        detail = "The request's method or Transfer-Encoding is not "
                 "supported";
        break;

    case NGX_HTTP_VERSION_NOT_SUPPORTED:
        status = NGX_HTTP_BAD_REQUEST;
        message = "Bad request";
        detail = "The HTTP version is not supported";
        break;

    default:
        if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
            message = "Internal server error";
            detail = "The request could not be completed";

        } else {
            /* among them a request line nginx could not parse (%00) */
            message = "Bad request";
            detail = "The request could not be processed";
        }
    }

    /* nginx sends err_status, not headers_out.status */
    r->err_status = status;

    return ngx_http_customer_send_error(ctx, status, message,
                                        status == NGX_HTTP_NOT_FOUND
                                        ? "path" : "request", detail);
}


static ngx_int_t
ngx_http_customer_json_type(ngx_http_request_t *r)
{
    u_char  *p, *last;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    p = r->headers_in.content_type->value.data;
    last = p + r->headers_in.content_type->value.len;

    if ((size_t) (last - p) < sizeof("application/json") - 1
        || ngx_strncasecmp(p, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof("application/json") - 1;

    if (p == last || *p == ';' || *p == ' ') {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


static void
ngx_http_customer_body_handler(ngx_http_request_t *r)
{
    u_char                   *data, *p;
    size_t                    len;
    ngx_int_t                 rc;
    ngx_str_t                 err;
    ngx_chain_t              *cl;
    ngx_http_customer_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_customer_module);

    if (ctx->route->json_body != 3
        && (r->request_body == NULL || r->request_body->bufs == NULL))
    {
        rc = ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                          "Malformed JSON", "body",
                                          "A JSON body is required");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (r->request_body && r->request_body->temp_file) {
        /* reading a file would block the worker: bodies must fit memory */
        r->keepalive = 0;
        rc = ngx_http_customer_send_error(ctx,
                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "Payload too large",
                  "body", "The body is larger than client_body_buffer_size");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->route->json_body == 3) {
        /* any bytes, perhaps none: the route reads ctx->raw */
        rc = ngx_http_customer_raw_body(ctx);

        if (rc == NGX_OK) {
            rc = ngx_http_customer_run_route(ctx, ctx->raw.data,
                                             ctx->raw.len);
        }

        if (rc == NGX_DONE) {
            return;
        }

        ngx_http_finalize_request(r, rc);
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    data = ngx_pnalloc(r->pool, len + 1);
    if (data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        /* empty buffers (an empty body, a chunked body's end): pos NULL */
        if (cl->buf->last > cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    *p = '\0';

    if (ngx_http_customer_utf8(data, len) != NGX_OK) {
        rc = ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                          "Malformed JSON", "body",
                                          "The body is not valid UTF-8");
        ngx_http_finalize_request(r, rc);
        return;
    }

    rc = ngx_http_customer_json_parse(r->pool, data, len, &ctx->body, &err);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED || ctx->body == NULL) {
        if (rc == NGX_DECLINED) {
            p = ngx_pnalloc(r->pool, err.len + 1);
            if (p == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            *ngx_cpymem(p, err.data, err.len) = '\0';

            ngx_http_customer_add_error(ctx, (u_char *) "body", 4,
                                        (char *) p);
        } else {
            ngx_http_customer_add_error(ctx, (u_char *) "body", 4,
                                        "A JSON body is required");
        }

        rc = ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                           "Malformed JSON");
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->body->type != NGX_HTTP_CUSTOMER_JSON_OBJECT) {
        rc = ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                                          "Malformed JSON", "body",
                                          "The body must be a JSON object");
        ngx_http_finalize_request(r, rc);
        return;
    }

    rc = ngx_http_customer_run_route(ctx, data, len);

    if (rc == NGX_DONE) {
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * A Customer's own account is checked on every request, so that one made
 * Inactive or Suspended is refused at once rather than when its token
 * expires: a lookup by user id, shared with other reads.  A caller with
 * no record yet goes on (the routes answer 404 themselves).
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_account_sql = {
    "SELECT customer_status FROM customers WHERE user_id = $1",
    1, 1, 0, "", 0, 0, 0, 0
};


static ngx_int_t
ngx_http_customer_run_route(ngx_http_customer_ctx_t *ctx, u_char *data,
    size_t len)
{
    ngx_http_customer_pg_query_t  *q;

    if ((ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN)
        || ctx->who.service
        || ctx->who.sub.len == 0
        || ctx->route->access == NGX_HTTP_CUSTOMER_PUBLIC)
    {
        return ngx_http_customer_idem_route(ctx, data, len);
    }

    ctx->bytes.data = data;
    ctx->bytes.len = len;

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the token's subject, NUL-terminated by the JWT check */
    q->values[0] = (char *) ctx->who.sub.data;

    return ngx_http_customer_query_run(ctx, q, &ngx_http_customer_account_sql,
                                       ngx_http_customer_account_checked);
}


static ngx_int_t
ngx_http_customer_account_checked(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    char  *status;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 1) {
        status = PQgetvalue(res, 0, 0);

        if (ngx_strcmp(status, "Active") != 0) {
            ngx_http_customer_add_error(ctx, (u_char *) "authorization",
                                        sizeof("authorization") - 1,
                                        status[0] == 'S'
                                        ? "This customer account is "
                                          "Suspended"
                                        : "This customer account is "
                                          "Inactive");
            return ngx_http_customer_send_errors(ctx, NGX_HTTP_FORBIDDEN,
                                                 "Access denied");
        }
    }

    return ngx_http_customer_idem_route(ctx, ctx->bytes.data,
                                        ctx->bytes.len);
}


/* the body's bytes in one piece in ctx->raw; "" when there are none */

static ngx_int_t
ngx_http_customer_raw_body(ngx_http_customer_ctx_t *ctx)
{
    u_char              *p;
    size_t               len;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_str_set(&ctx->raw, "");

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL) {
        /* request_body_in_single_buf: the usual case, no copy */
        if (cl->buf->last > cl->buf->pos) {
            /* an empty buffer's pos may be NULL: that would be SQL NULL */
            ctx->raw.data = cl->buf->pos;
            ctx->raw.len = cl->buf->last - cl->buf->pos;
        }

        return NGX_OK;
    }

    len = 0;

    for ( /* void */ ; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->raw.data = p;
    ctx->raw.len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        /* empty buffers (an empty body, a chunked body's end): pos NULL */
        if (cl->buf->last > cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}


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
    ngx_http_request_t       *r;
    ngx_http_customer_ctx_t  *ctx;

    ctx = q->data;
    r = ctx->request;
    c = r->connection;

    if (ngx_http_customer_replica_done(ctx, q, res) == NGX_AGAIN) {
        /* a replica failed it: sent to the primary instead */
        return;
    }

    rc = ngx_http_customer_idem_result(ctx, q, res);

    if (rc == NGX_DECLINED) {
        rc = ctx->done(ctx, q, res);
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


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

    if (ngx_http_customer_request_id(r) != NGX_OK) {
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


/* the client's id when it is sane, else nginx's $request_id */

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

    vv = ngx_http_get_indexed_variable(r, cmcf->request_id_index);
    if (vv == NULL || vv->not_found) {
        return NGX_DECLINED;
    }

    id->data = vv->data;
    id->len = vv->len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_customer_request_id(ngx_http_request_t *r)
{
    ngx_str_t         id;
    ngx_table_elt_t  *h;

    if (ngx_http_customer_request_id_of(r, &id) != NGX_OK) {
        return NGX_OK;
    }

    h = ngx_http_customer_push_header(&r->headers_out.headers,
                                      "X-Request-Id", &id);

    return h ? NGX_OK : NGX_ERROR;
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

    if (ctx->errors == NULL) {
        ctx->errors = ngx_array_create(ctx->request->pool, 4,
                                       sizeof(ngx_http_customer_error_t));
        if (ctx->errors == NULL) {
            return NGX_ERROR;
        }
    }

    e = ngx_array_push(ctx->errors);
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
                  res ? PQresultErrorMessage(res) : "no result");

    return ngx_http_customer_send_error(ctx,
               NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal server error",
               "server", "The request could not be completed");
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


/*
 * The parameter that limits a statement to the caller's own record: NULL
 * for an Administrator (every record), else the token's sub, and never
 * NULL for a Customer (NULL would show every record).
 */

char *
ngx_http_customer_own_sub(ngx_http_customer_ctx_t *ctx)
{
    if (ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN) {
        return NULL;
    }

    return ctx->who.sub.len ? (char *) ctx->who.sub.data : "";
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
    u_char  *p;

    if (!ngx_http_customer_is_uuid(&ctx->params[n])) {
        ngx_http_customer_add_error(ctx, (u_char *) name, ngx_strlen(name),
                                    "Must be a UUID");
        return NGX_DECLINED;
    }

    /* a NUL-terminated copy for libpq */

    p = ngx_pnalloc(ctx->request->pool, ctx->params[n].len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(p, ctx->params[n].data, ctx->params[n].len) = '\0';
    ctx->params[n].data = p;

    return NGX_OK;
}


/*
 * The common read of one record by the path's id (a UUID named name in
 * errors): stmt gets the id as $1 and, as $2, the caller's sub when the
 * caller is a Customer (NULL for an Administrator), so that a Customer
 * finds only what belongs to its own record.
 */

ngx_int_t
ngx_http_customer_own_read(ngx_http_customer_ctx_t *ctx, const char *name,
    ngx_http_customer_pg_stmt_t *stmt, ngx_http_customer_done_pt done)
{
    ngx_http_customer_pg_query_t  *q;

    switch (ngx_http_customer_uuid_param(ctx, 0, name)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                             "Validation failed");
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = (char *) ctx->params[0].data;
    q->values[1] = ngx_http_customer_own_sub(ctx);

    return ngx_http_customer_query_run(ctx, q, stmt, done);
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


/*
 * A page of a list whose statement answers the total in the first
 * column and the items' columns after it, one row with NULL items for an
 * empty page (a LEFT JOIN), no row at all when the owner is not found.
 */

ngx_int_t
ngx_http_customer_send_page(ngx_http_customer_ctx_t *ctx, PGresult *res,
    const char *message, const char *name, ngx_http_customer_column_t *cols,
    int ncols, ngx_uint_t page, ngx_uint_t limit)
{
    int        row, n;
    yajl_gen   g;
    ngx_int_t  total;

    n = PQntuples(res);

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
    ngx_http_customer_gen_cstr(g, name);
    yajl_gen_array_open(g);

    for (row = 0; row < n; row++) {

        if (PQgetisnull(res, row, 1)) {
            continue;
        }

        yajl_gen_map_open(g);

        if (ngx_http_customer_json_row(ctx->request->pool, g, res, row, 1,
                                       cols, ncols)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);

    ngx_http_customer_gen_pagination(g, page, limit, total, page > 1);
    yajl_gen_map_close(g);

    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    return ngx_http_customer_send(ctx, NGX_HTTP_OK, g);
}


ngx_int_t
ngx_http_customer_not_found(ngx_http_customer_ctx_t *ctx)
{
    if (ctx->by_user) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
                                            "Customer not found", "userId",
                                            "No customer record exists for "
                                            "this user");
    }

    return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
                                        "Customer not found", "customerId",
                                        "No customer exists with the "
                                        "provided ID");
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

    yajl_gen_map_close(g);
    yajl_gen_map_close(g);

    return ngx_http_customer_send(ctx, status, g);
}


/* the validated (and trimmed) body as a NUL-terminated jsonb parameter */

char *
ngx_http_customer_body_param(ngx_http_customer_ctx_t *ctx)
{
    u_char    *buf, *p;
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

    p = ngx_pnalloc(ctx->request->pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, buf, len);
    p[len] = '\0';

    return (char *) p;
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
    u_char           *p, *last, *v;
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

    v = ngx_pnalloc(ctx->request->pool, last - p + 1);
    if (v == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(v, p, last - p) = '\0';
    *version = (char *) v;

    return NGX_OK;
}

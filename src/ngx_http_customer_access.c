
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_access.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_idempotency.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"


/*
 * Who may call a route: a service key on internal routes (one whose
 * classes include the route's), a bearer JWT on the others (or, behind a
 * gateway, the header it sets), an Administrator's role on admin routes,
 * and for a Customer an account that is Active.  Also here: the headers
 * that let browsers on other origins call the API (CORS), and OPTIONS.
 */


#define NGX_HTTP_CUSTOMER_CORS_HEADERS                                       \
    "Authorization, Content-Type, If-Match, Idempotency-Key, X-Request-Id, " \
    "Prefer"

#define NGX_HTTP_CUSTOMER_CORS_EXPOSE   "ETag, X-Request-Id, Location"


static ngx_int_t ngx_http_customer_unauthorized(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t service, const char *reason);
static ngx_int_t ngx_http_customer_out_of_scope(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_service_key_t *sk);
static ngx_int_t ngx_http_customer_gateway_user(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_loc_conf_t *llcf);
static ngx_table_elt_t *ngx_http_customer_cors_origin(ngx_http_request_t *r,
    ngx_http_customer_loc_conf_t *llcf);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_account_checked);
static ngx_int_t ngx_http_customer_account_run(ngx_http_customer_ctx_t *ctx,
    char *who, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_activity_done);


/*
 * Internal routes take only X-Service-API-Key, every other non-public
 * route only a bearer JWT (or the gateway's header under customer_auth
 * header); a Customer gets 403 on admin routes, a service key 403 on a
 * route outside its classes.  On failure ctx->status and ctx->errors are
 * set and NGX_DECLINED returned.
 */

ngx_int_t
ngx_http_customer_authorize(ngx_http_customer_ctx_t *ctx)
{
    u_char                           *p, *last;
    ngx_int_t                         rc;
    ngx_str_t                         token;
    const char                       *reason;
    ngx_table_elt_t                  *auth, *key;
    ngx_http_request_t               *r;
    ngx_http_customer_loc_conf_t     *llcf;
    ngx_http_customer_main_conf_t    *cmcf;
    ngx_http_customer_service_key_t  *sk;

    r = ctx->request;

    if (ctx->route->access == NGX_HTTP_CUSTOMER_PUBLIC) {
        return NGX_OK;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_customer_module);

    if (llcf->auth == NGX_HTTP_CUSTOMER_AUTH_OFF) {
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

        sk = ngx_http_customer_find_service_key(&cmcf->auth, &key->value);

        if (sk == NULL) {
            return ngx_http_customer_unauthorized(ctx, 1,
                                                  "unknown service key");
        }

        rc = ngx_http_customer_out_of_scope(ctx, sk);
        if (rc != NGX_OK) {
            return rc;
        }

        ctx->who.service = 1;
        ngx_str_set(&ctx->who.sub, "service");

        return NGX_OK;
    }

    if (llcf->auth == NGX_HTTP_CUSTOMER_AUTH_HEADER) {
        rc = ngx_http_customer_gateway_user(ctx, llcf);
        if (rc != NGX_OK) {
            return rc;
        }

        goto admin;
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

admin:

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


/*
 * A key whose classes do not include the route's (a key of all classes
 * passes): 403, and the key's name and the class in the log, for the
 * operator who handed the key out.
 */

static ngx_int_t
ngx_http_customer_out_of_scope(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_service_key_t *sk)
{
    ngx_uint_t           scope;
    ngx_http_request_t  *r;

    r = ctx->request;
    scope = ctx->route->scope;

    if (scope == 0) {
        scope = (ctx->route->methods & (NGX_HTTP_GET|NGX_HTTP_HEAD))
                ? NGX_HTTP_CUSTOMER_SCOPE_READ
                : NGX_HTTP_CUSTOMER_SCOPE_WRITE;
    }

    if (sk->scopes & scope) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "customer: 403: service key \"%V\" may not use "
                  "%s routes (%V %s)", &sk->name,
                  ngx_http_customer_scope_name(scope), &r->method_name,
                  ctx->route->pattern);

    ctx->status = NGX_HTTP_FORBIDDEN;
    ngx_http_customer_add_error(ctx, (u_char *) "X-Service-API-Key",
                                sizeof("X-Service-API-Key") - 1,
                                "This service key may not use this route");

    return NGX_DECLINED;
}


/*
 * customer_auth header <name>: the gateway in front authenticated the
 * caller and names it in that header, taken as a Customer's sub (the
 * location is guarded, see merge_loc_conf).  Bearer tokens are not read.
 */

static ngx_int_t
ngx_http_customer_gateway_user(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_loc_conf_t *llcf)
{
    u_char              *p, *last;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = ctx->request;

    h = ngx_http_customer_header(r, (const char *) llcf->auth_header.data,
                                 llcf->auth_header.len, 0);
    if (h == NULL) {
        return ngx_http_customer_unauthorized(ctx, 0,
                                              "no gateway user header");
    }

    if (ngx_http_customer_header(r, (const char *) llcf->auth_header.data,
                                 llcf->auth_header.len, 1))
    {
        return ngx_http_customer_unauthorized(ctx, 0,
                                              "more than one gateway user "
                                              "header");
    }

    /* as a token's sub: 1 to 128 bytes of UTF-8, no controls or spaces */

    p = h->value.data;
    last = p + h->value.len;

    if (h->value.len == 0 || h->value.len > 128
        || ngx_http_customer_utf8(p, h->value.len) != NGX_OK)
    {
        return ngx_http_customer_unauthorized(ctx, 0,
                                              "gateway user header is "
                                              "empty, too long or not "
                                              "UTF-8");
    }

    for ( /* void */ ; p < last; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            return ngx_http_customer_unauthorized(ctx, 0,
                                                  "gateway user header has "
                                                  "a space or a control "
                                                  "character");
        }
    }

    /* NUL-terminated for libpq, as a verified token's sub is */

    p = (u_char *) ngx_http_customer_cstr(r->pool, h->value.data,
                                          h->value.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->who.sub.data = p;
    ctx->who.sub.len = h->value.len;
    ctx->who.roles = NGX_HTTP_CUSTOMER_ROLE_CUSTOMER;

    return NGX_OK;
}


static ngx_int_t
ngx_http_customer_unauthorized(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t service, const char *reason)
{
    const char          *field;
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
    field = service ? "X-Service-API-Key" : "authorization";

    ngx_http_customer_add_error(ctx, (u_char *) field, ngx_strlen(field),
                                service ? "A valid service API key is required"
                                        : "A valid bearer token is required");

    return NGX_DECLINED;
}


/*
 * A Customer's own account is checked on every request, so that one made
 * Inactive or Suspended is refused at once rather than when its token
 * expires: a lookup by user id, shared with other reads.  A caller with
 * no record yet goes on (the routes answer 404 themselves).  $2 is
 * customer_activity_interval in milliseconds: the last column says
 * whether metadata.lastActivityDate is older than that (or unset), so
 * that the request writes it first.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_account_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(2,
    "SELECT customer_status, id, $2::bigint > 0"
    " AND coalesce((metadata->>'lastActivityDate')::timestamptz"
    " < now() - $2::bigint * interval '1 millisecond', true)"
    " FROM customers WHERE user_id = $1");


/*
 * $1 customer id, $2 as above.  At most one write per interval however
 * many requests arrive together: a second one waiting on the row finds
 * the date fresh once the first commits, and writes nothing.  Not an
 * edit of the record: neither version nor updatedAt moves.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_activity_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "UPDATE customers SET metadata = jsonb_set(metadata,"
    " '{lastActivityDate}', to_jsonb(api_ts(now())))"
    " WHERE id = $1 AND coalesce((metadata->>'lastActivityDate')"
    "::timestamptz < now() - $2::bigint * interval '1 millisecond', true)");


ngx_int_t
ngx_http_customer_run_route(ngx_http_customer_ctx_t *ctx, u_char *data,
    size_t len)
{
    if ((ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN)
        || ctx->who.service
        || ctx->who.sub.len == 0
        || ctx->route->access == NGX_HTTP_CUSTOMER_PUBLIC)
    {
        return ngx_http_customer_idem_route(ctx, data, len);
    }

    ctx->bytes.data = data;
    ctx->bytes.len = len;

    /* the token's subject, NUL-terminated by the JWT check */

    return ngx_http_customer_account_run(ctx, (char *) ctx->who.sub.data,
                                         &ngx_http_customer_account_sql,
                                         ngx_http_customer_account_checked);
}


/* stmt with $1 who and $2 customer_activity_interval in milliseconds */

static ngx_int_t
ngx_http_customer_account_run(ngx_http_customer_ctx_t *ctx, char *who,
    ngx_http_customer_pg_stmt_t *stmt, ngx_http_customer_done_pt done)
{
    u_char                        *p;
    ngx_http_customer_pg_query_t  *q;
    ngx_http_customer_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    q = ngx_http_customer_query_create(ctx);
    p = ngx_pnalloc(ctx->request->pool, NGX_INT_T_LEN + 1);

    if (q == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(p, "%M%Z", llcf->activity_interval);

    q->values[0] = who;
    q->values[1] = (char *) p;

    return ngx_http_customer_query_run(ctx, q, stmt, done);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_account_checked)
{
    char  *status;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 1) {
        status = PQgetvalue(res, 0, 0);

        if (ngx_strcmp(status, "Active") != 0) {
            return ngx_http_customer_send_error(ctx, NGX_HTTP_FORBIDDEN,
                       "Access denied", "authorization",
                       status[0] == 'S' ? "This customer account is Suspended"
                                        : "This customer account is Inactive");
        }

        /* the /me routes need no lookup of their own for it */

        ctx->self = ngx_http_customer_value(ctx->request->pool, res, 0, 1);
        if (ctx->self == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (PQgetvalue(res, 0, 2)[0] == 't') {
            /* before the route: its first write claims the request's key */

            return ngx_http_customer_account_run(ctx, ctx->self,
                                           &ngx_http_customer_activity_sql,
                                           ngx_http_customer_activity_done);
        }
    }

    return ngx_http_customer_idem_route(ctx, ctx->bytes.data,
                                        ctx->bytes.len);
}


/* the activity is bookkeeping: its failure does not fail the request */

static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_activity_done)
{
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "customer: lastActivityDate not written: %s",
                      ngx_http_customer_pg_why(res));
    }

    return ngx_http_customer_idem_route(ctx, ctx->bytes.data,
                                        ctx->bytes.len);
}


/*
 * The parameter that limits a statement to the caller's own record: NULL
 * for an Administrator or a service (every record), else the token's
 * sub, and never NULL for a Customer (NULL would show every record).
 */

char *
ngx_http_customer_own_sub(ngx_http_customer_ctx_t *ctx)
{
    if ((ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN) || ctx->who.service) {
        return NULL;
    }

    return ctx->who.sub.len ? (char *) ctx->who.sub.data : "";
}


/*
 * CORS (customer_cors_origins): every answer of such a location says
 * "Vary: Origin", and one to a listed origin allows it to read the answer
 * (errors included) and the headers a client needs (ETag for If-Match,
 * X-Request-Id, Location).  An origin not listed gets no CORS header, so
 * the browser keeps the answer from the page.  Called first by the
 * content handler, also for the error_page pass, which may follow a
 * first pass that added them already.
 */

ngx_int_t
ngx_http_customer_cors(ngx_http_request_t *r,
    ngx_http_customer_loc_conf_t *llcf)
{
    ngx_uint_t        i;
    ngx_table_elt_t  *origin, *h;

    for (i = 0; r->err_status; i++) {
        h = ngx_http_customer_list_header(&r->headers_out.headers, "Vary",
                                          sizeof("Vary") - 1, i);
        if (h == NULL) {
            break;
        }

        if (h->hash && h->value.len == sizeof("Origin") - 1
            && ngx_strncmp(h->value.data, "Origin", sizeof("Origin") - 1)
               == 0)
        {
            return NGX_OK;
        }
    }

    if (ngx_http_customer_add_header(r, "Vary", (u_char *) "Origin",
                                     sizeof("Origin") - 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    origin = ngx_http_customer_cors_origin(r, llcf);

    if (origin == NULL) {
        return NGX_OK;
    }

    if (ngx_http_customer_add_header(r, "Access-Control-Allow-Origin",
                                     llcf->cors_any ? (u_char *) "*"
                                                    : origin->value.data,
                                     llcf->cors_any ? 1 : origin->value.len)
        != NGX_OK
        || (llcf->cors_credentials
            && ngx_http_customer_add_header(r,
                                   "Access-Control-Allow-Credentials",
                                   (u_char *) "true", sizeof("true") - 1)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return ngx_http_customer_add_header(r, "Access-Control-Expose-Headers",
                                 (u_char *) NGX_HTTP_CUSTOMER_CORS_EXPOSE,
                                 sizeof(NGX_HTTP_CUSTOMER_CORS_EXPOSE) - 1);
}


/* the request's Origin when it is one of the location's, else NULL */

static ngx_table_elt_t *
ngx_http_customer_cors_origin(ngx_http_request_t *r,
    ngx_http_customer_loc_conf_t *llcf)
{
    ngx_str_t        *o;
    ngx_uint_t        i;
    ngx_table_elt_t  *origin;

    if (llcf->cors_origins == NULL) {
        return NULL;
    }

    origin = ngx_http_customer_header(r, "Origin", sizeof("Origin") - 1, 0);

    if (origin == NULL
        || ngx_http_customer_header(r, "Origin", sizeof("Origin") - 1, 1))
    {
        return NULL;
    }

    if (llcf->cors_any) {
        return origin;
    }

    /* scheme and host are case-insensitive; browsers send them lower */

    o = llcf->cors_origins->elts;

    for (i = 0; i < llcf->cors_origins->nelts; i++) {
        if (o[i].len == origin->value.len
            && ngx_strncasecmp(o[i].data, origin->value.data, o[i].len) == 0)
        {
            return origin;
        }
    }

    return NULL;
}


/*
 * OPTIONS on a known path: 204 with Allow, and for a CORS preflight from
 * a listed origin (Access-Control-Request-Method) the methods, the
 * request headers the API reads and how long the browser may keep this.
 * No credentials are needed: browsers send none with a preflight.
 */

ngx_int_t
ngx_http_customer_options(ngx_http_customer_ctx_t *ctx, ngx_uint_t allowed)
{
    u_char                        *p;
    ngx_str_t                      none, methods;
    ngx_http_request_t            *r;
    ngx_http_customer_loc_conf_t  *llcf;

    r = ctx->request;
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_customer_module);

    if (ngx_http_customer_allow_header(r, allowed | NGX_HTTP_OPTIONS,
                                       &methods)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_customer_cors_origin(r, llcf)
        && ngx_http_customer_header(r, "Access-Control-Request-Method",
                         sizeof("Access-Control-Request-Method") - 1, 0))
    {
        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);

        if (p == NULL
            || ngx_http_customer_add_header(r, "Access-Control-Allow-Methods",
                                            methods.data, methods.len)
               != NGX_OK
            || ngx_http_customer_add_header(r,
                                   "Access-Control-Allow-Headers",
                                   (u_char *) NGX_HTTP_CUSTOMER_CORS_HEADERS,
                                   sizeof(NGX_HTTP_CUSTOMER_CORS_HEADERS) - 1)
               != NGX_OK
            || ngx_http_customer_add_header(r, "Access-Control-Max-Age", p,
                                            ngx_sprintf(p, "%T",
                                                        llcf->cors_max_age)
                                            - p)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_str_null(&none);

    return ngx_http_customer_send_header(ctx, NGX_HTTP_NO_CONTENT, &none, 0);
}


/* a response header key: data, len bytes; NGX_ERROR when out of memory */

ngx_int_t
ngx_http_customer_add_header(ngx_http_request_t *r, const char *key,
    u_char *data, size_t len)
{
    ngx_str_t  value;

    value.data = data;
    value.len = len;

    return ngx_http_customer_push_header(&r->headers_out.headers, key,
                                         &value)
           ? NGX_OK : NGX_ERROR;
}

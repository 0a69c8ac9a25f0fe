
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
 * Who may call a route: a service key on internal routes, a bearer JWT
 * on the others, an Administrator's role on admin routes, and for a
 * Customer an account that is Active.
 */


static ngx_int_t ngx_http_customer_unauthorized(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t service, const char *reason);
static ngx_int_t ngx_http_customer_account_checked(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static char *ngx_http_customer_activity_ms(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_activity_done(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);


/*
 * Internal routes take only X-Service-API-Key, every other non-public
 * route only a bearer JWT; a Customer gets 403 on admin routes.  On
 * failure ctx->status and ctx->errors are set and NGX_DECLINED returned.
 */

ngx_int_t
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


/*
 * A Customer's own account is checked on every request, so that one made
 * Inactive or Suspended is refused at once rather than when its token
 * expires: a lookup by user id, shared with other reads.  A caller with
 * no record yet goes on (the routes answer 404 themselves).  $2 is
 * customer_activity_interval in milliseconds: the last column says
 * whether metadata.lastActivityDate is older than that (or unset), so
 * that the request writes it first.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_account_sql = {
    "SELECT customer_status, id, $2::bigint > 0"
    " AND coalesce((metadata->>'lastActivityDate')::timestamptz"
    " < now() - $2::bigint * interval '1 millisecond', true)"
    " FROM customers WHERE user_id = $1",
    2, 1, 0, "", 0, 0, 0, 0
};


/*
 * $1 customer id, $2 as above.  At most one write per interval however
 * many requests arrive together: a second one waiting on the row finds
 * the date fresh once the first commits, and writes nothing.  Not an
 * edit of the record: neither version nor updatedAt moves.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_activity_sql = {
    "UPDATE customers SET metadata = jsonb_set(metadata,"
    " '{lastActivityDate}', to_jsonb(api_ts(now())))"
    " WHERE id = $1 AND coalesce((metadata->>'lastActivityDate')"
    "::timestamptz < now() - $2::bigint * interval '1 millisecond', true)",
    2, 0, 0, "", 0, 0, 0, 0
};


ngx_int_t
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

    q->values[1] = ngx_http_customer_activity_ms(ctx);
    if (q->values[1] == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_query_run(ctx, q, &ngx_http_customer_account_sql,
                                       ngx_http_customer_account_checked);
}


/* customer_activity_interval as a NUL-terminated parameter */

static char *
ngx_http_customer_activity_ms(ngx_http_customer_ctx_t *ctx)
{
    u_char                        *p;
    ngx_http_customer_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    p = ngx_pnalloc(ctx->request->pool, NGX_INT_T_LEN + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_sprintf(p, "%M%Z", llcf->activity_interval);

    return (char *) p;
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

        /* the /me routes need no lookup of their own for it */

        ctx->self = ngx_pnalloc(ctx->request->pool,
                                PQgetlength(res, 0, 1) + 1);
        if (ctx->self == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->self, PQgetvalue(res, 0, 1),
                   PQgetlength(res, 0, 1) + 1);

        if (PQgetvalue(res, 0, 2)[0] == 't') {
            /* before the route: its first write claims the request's key */

            q = ngx_http_customer_query_create(ctx);
            if (q == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            q->values[0] = ctx->self;
            q->values[1] = ngx_http_customer_activity_ms(ctx);
            if (q->values[1] == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_customer_query_run(ctx, q,
                                           &ngx_http_customer_activity_sql,
                                           ngx_http_customer_activity_done);
        }
    }

    return ngx_http_customer_idem_route(ctx, ctx->bytes.data,
                                        ctx->bytes.len);
}


/* the activity is bookkeeping: its failure does not fail the request */

static ngx_int_t
ngx_http_customer_activity_done(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "customer: lastActivityDate not written: %s",
                      res ? PQresultErrorMessage(res) : "no result");
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

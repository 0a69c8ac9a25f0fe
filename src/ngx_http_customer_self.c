
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_idempotency.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * A Customer's own resources through /me: each row here runs the row of
 * the same path with "{}" for "me" (its vehicles, documents, loyalty,
 * alerts, service history), with the caller's own customerId as that
 * id.  The id comes from the account check every Customer's request
 * makes (ngx_http_customer_run_route()); an Administrator's /me looks it
 * up by the token's sub.  The row that runs is a copy of the {id} row
 * under this row's id and pattern, so metrics and $customer_route name
 * the /me path.  The {id} rows still restrict a Customer to its own
 * record, so /me adds no access of its own but redeeming points and
 * estimating the credit score: those {id} routes are an Administrator's,
 * their /me ones the Customer's for itself.
 */


static ngx_int_t ngx_http_customer_self_me(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_self_redeem(ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_self_found);
static ngx_int_t ngx_http_customer_self_run(ngx_http_customer_ctx_t *ctx);
static ngx_http_customer_route_t *ngx_http_customer_self_target(
    ngx_http_customer_route_t *me, ngx_uint_t method);


/* $1 the token's sub */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_self_id_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT id FROM customers WHERE user_id = $1");


#define NGX_HTTP_CUSTOMER_S  NGX_HTTP_CUSTOMER_SELF
#define NGX_HTTP_CUSTOMER_M  ngx_http_customer_self_me

/* without the caller's own id: its record looked up by the sub */
#define NGX_HTTP_CUSTOMER_ME                                                 \
    .stmt = &ngx_http_customer_self_id_sql,                                  \
    .params = { NGX_HTTP_CUSTOMER_PARAM(ME) },                               \
    .done = ngx_http_customer_self_found

/* before the tables whose "/api/customers/{}/..." would take "me" */
ngx_http_customer_route_t  ngx_http_customer_self_routes[] = {
    { NGX_HTTP_GET, "/api/customers/me/vehicles",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_POST, "/api/customers/me/vehicles",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 1, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_GET, "/api/customers/me/documents",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    /* any bytes, as the {id} upload takes */
    { NGX_HTTP_POST, "/api/customers/me/documents",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 3, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_GET, "/api/customers/me/service-history",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_GET, "/api/customers/me/loyalty",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_GET, "/api/customers/me/loyalty/transactions",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    /* the key is the loyalty statement's own, and required here */
    { NGX_HTTP_POST|NGX_HTTP_CUSTOMER_OWN_KEY,
      "/api/customers/me/loyalty/redeem",
      ngx_http_customer_self_redeem, NGX_HTTP_CUSTOMER_S, 1, 0,
      NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_GET, "/api/customers/me/credit-status/history",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_GET, "/api/customers/me/alerts",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_PATCH, "/api/customers/me/alerts/{}",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 1, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_GET, "/api/customers/me/survey/answers",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    { NGX_HTTP_PUT, "/api/customers/me/survey/answers",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 1, 0, NGX_HTTP_CUSTOMER_ME },
    /* the {id} estimate is an Administrator's, this one the Customer's */
    { NGX_HTTP_POST, "/api/customers/me/credit-score/estimate",
      NGX_HTTP_CUSTOMER_M, NGX_HTTP_CUSTOMER_S, 0, 0, NGX_HTTP_CUSTOMER_ME },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/* the {id} row each row runs, found on first use */
static ngx_http_customer_route_t
    *ngx_http_customer_self_targets[sizeof(ngx_http_customer_self_routes)
                                    / sizeof(ngx_http_customer_route_t)];


static ngx_int_t
ngx_http_customer_self_me(ngx_http_customer_ctx_t *ctx)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer self \"%s\"", ctx->route->pattern);

    if (ctx->self) {
        return ngx_http_customer_self_run(ctx);
    }

    /* an Administrator's own record, or none: the row's statement */

    return ngx_http_customer_endpoint(ctx);
}


/*
 * A redeem needs an Idempotency-Key: a Customer's retry after a lost
 * answer must not spend its points twice.  Without one: 400, as the
 * IETF's Idempotency-Key draft advises, naming the header.
 */

static ngx_int_t
ngx_http_customer_self_redeem(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t    rc;
    const char  *key;

    rc = ngx_http_customer_idempotency_key(ctx, &key);

    if (rc != NGX_OK) {
        return rc == NGX_ERROR ? NGX_HTTP_INTERNAL_SERVER_ERROR
                               : ngx_http_customer_invalid(ctx);
    }

    if (key == NULL) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_REQUEST,
                   "Idempotency-Key required", "Idempotency-Key",
                   "Redeeming points requires an Idempotency-Key header, "
                   "so that a retry never redeems twice");
    }

    return ngx_http_customer_self_me(ctx);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_self_found)
{
    ngx_int_t  rc;

    /* the caller's own id, kept where the account check keeps a Customer's */

    ctx->self = ngx_http_customer_found(ctx, q, res, &rc);
    if (ctx->self == NULL) {
        return rc;
    }

    return ngx_http_customer_self_run(ctx);
}


/* the {id} row with the own id, ctx->self, first among the path's ones */

static ngx_int_t
ngx_http_customer_self_run(ngx_http_customer_ctx_t *ctx)
{
    ngx_uint_t                  i;
    ngx_http_customer_route_t  *me, *target, *rt;

    me = ctx->route;

    target = ngx_http_customer_self_target(me,
                 ctx->request->method == NGX_HTTP_HEAD
                 ? NGX_HTTP_GET : ctx->request->method);

    if (target == NULL || ctx->nparams == NGX_HTTP_CUSTOMER_MAX_PARAMS) {
        ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log, 0,
                      "customer: no route runs \"%s\"", me->pattern);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rt = ngx_palloc(ctx->request->pool, sizeof(ngx_http_customer_route_t));
    if (rt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *rt = *target;
    rt->pattern = me->pattern;
    rt->id = me->id;
    rt->slashes = me->slashes;

    for (i = ctx->nparams; i > 0; i--) {
        ctx->params[i] = ctx->params[i - 1];
    }

    ctx->params[0].data = (u_char *) ctx->self;
    ctx->params[0].len = ngx_strlen(ctx->self);
    ctx->nparams++;

    ctx->by_user = 0;
    ctx->route = rt;

    return rt->handler(ctx);
}


/*
 * The row whose pattern is me's with "{}" for its "me" segment, of the
 * same method: found once, then kept.
 */

static ngx_http_customer_route_t *
ngx_http_customer_self_target(ngx_http_customer_route_t *me,
    ngx_uint_t method)
{
    u_char                      *p;
    size_t                       len;
    ngx_uint_t                   t, n;
    const char                  *s;
    ngx_http_customer_route_t   *rt;
    u_char                       pattern[128];

    n = me - ngx_http_customer_self_routes;

    if (ngx_http_customer_self_targets[n]) {
        return ngx_http_customer_self_targets[n];
    }

    s = ngx_strstr(me->pattern, "/me");
    len = ngx_strlen(me->pattern);

    if (s == NULL || len + 1 > sizeof(pattern)) {
        return NULL;
    }

    p = ngx_cpymem(pattern, me->pattern, s - me->pattern);
    p = ngx_cpymem(p, "/{}", 3);
    p = ngx_cpymem(p, s + 3, len - (s + 3 - me->pattern));
    *p = '\0';

    for (t = 0; ngx_http_customer_route_tables[t]; t++) {
        for (rt = ngx_http_customer_route_tables[t]; rt->pattern; rt++) {
            if ((rt->methods & method)
                && rt->json_body == me->json_body
                && ngx_strcmp(rt->pattern, pattern) == 0)
            {
                ngx_http_customer_self_targets[n] = rt;
                return rt;
            }
        }
    }

    return NULL;
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_backlog.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_replica.h"
#include "ngx_http_customer_router.h"


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_health_done);
static ngx_int_t ngx_http_customer_health_answer(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_backlog_t *bl);
static void ngx_http_customer_health_backlog(yajl_gen g, ngx_int_t pending,
    ngx_int_t dead);
static void ngx_http_customer_health_replicas(yajl_gen g,
    ngx_array_t *replicas);


/*
 * Every call asks the database this, a cheap read: the database answers,
 * or the call is 503.  The outbox's backlog, whose count costs with its
 * size, comes from the worker's recent count (ngx_http_customer_backlog).
 */
typedef struct {
    char                            *name;
    size_t                           offset;
} ngx_http_customer_health_member_t;


/* the pool's members in /health, in the answer's order */
static ngx_http_customer_health_member_t  ngx_http_customer_health_pool[] = {
    { "size", offsetof(ngx_http_customer_pg_stats_t, size) },
    { "live", offsetof(ngx_http_customer_pg_stats_t, live) },
    { "idle", offsetof(ngx_http_customer_pg_stats_t, idle) },
    { "inFlight", offsetof(ngx_http_customer_pg_stats_t, inflight) },
    { "waiting", offsetof(ngx_http_customer_pg_stats_t, waiting) },
    { "connects", offsetof(ngx_http_customer_pg_stats_t, connects) },
    { "connectFailures", offsetof(ngx_http_customer_pg_stats_t, failures) },
    { NULL, 0 }
};


static ngx_http_customer_pg_stmt_t  ngx_http_customer_health_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(0,
    "SELECT count(*)::text FROM schema_migrations");


ngx_http_customer_route_t  ngx_http_customer_health_routes[] = {
    { NGX_HTTP_GET, "/health", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_PUBLIC, 0, 0,
      .stmt = &ngx_http_customer_health_sql,
      .done = ngx_http_customer_health_done },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_health_done)
{
    if (q->error == NGX_HTTP_CUSTOMER_PG_BUSY) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        if (q->error == NGX_HTTP_CUSTOMER_PG_OK) {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "customer: health query failed: %s",
                          ngx_http_customer_pg_why(res));
        }

        /* the answer without a backlog: the database does not answer */
        return ngx_http_customer_health_answer(ctx, NULL);
    }

    /* the migrations applied, kept while the backlog may be counted */
    ctx->data = ngx_http_customer_value(ctx->request->pool, res, 0, 0);
    if (ctx->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_backlog(ctx, ngx_http_customer_health_answer);
}


static ngx_int_t
ngx_http_customer_health_answer(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_backlog_t *bl)
{
    char                                *v;
    yajl_gen                             g;
    ngx_http_customer_pg_stats_t         st;
    ngx_http_customer_main_conf_t       *cmcf;
    ngx_http_customer_health_member_t   *m;

    if (bl == NULL) {
        return ngx_http_customer_send_error(ctx,
                   NGX_HTTP_SERVICE_UNAVAILABLE, "Database unavailable",
                   "database", "PostgreSQL does not answer");
    }

    cmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_customer_module);

    ngx_http_customer_pg_stats(cmcf->pool, &st);

    g = ngx_http_customer_envelope(ctx, "Service is healthy");
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v = ctx->data;

    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "status");
    ngx_http_customer_gen_lit(g, "ok");
    ngx_http_customer_gen_lit(g, "database");
    ngx_http_customer_gen_lit(g, "up");
    ngx_http_customer_gen_lit(g, "migrations");
    yajl_gen_number(g, v, ngx_strlen(v));
    /*
     * The outbox's backlog: "outbox" the Auth Service's status updates,
     * "events" the Notification Service's events.  Dead: set aside after
     * too many failed attempts, an operator's to look at.
     */
    ngx_http_customer_gen_lit(g, "outbox");
    ngx_http_customer_health_backlog(g, bl->outbox_pending, bl->outbox_dead);
    ngx_http_customer_gen_lit(g, "events");
    ngx_http_customer_health_backlog(g, bl->events_pending, bl->events_dead);
    ngx_http_customer_gen_lit(g, "pool");
    yajl_gen_map_open(g);

    for (m = ngx_http_customer_health_pool; m->name; m++) {
        ngx_http_customer_gen_cstr(g, m->name);
        yajl_gen_integer(g, *(ngx_uint_t *) ((u_char *) &st + m->offset));
    }

    yajl_gen_map_close(g);

    if (cmcf->replicas) {
        ngx_http_customer_health_replicas(g, cmcf->replicas);
    }

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}


static void
ngx_http_customer_health_backlog(yajl_gen g, ngx_int_t pending,
    ngx_int_t dead)
{
    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "pending");
    yajl_gen_integer(g, pending);
    ngx_http_customer_gen_lit(g, "dead");
    yajl_gen_integer(g, dead);
    yajl_gen_map_close(g);
}


/*
 * This worker's view of each replica: up (answered its last check as a
 * standby), lagSeconds (null: unknown), usable (takes reads now).
 */

static void
ngx_http_customer_health_replicas(yajl_gen g, ngx_array_t *replicas)
{
    u_char                        num[NGX_INT_T_LEN + 8], *p;
    ngx_uint_t                    i;
    ngx_http_customer_replica_t  *rp;

    rp = replicas->elts;

    ngx_http_customer_gen_lit(g, "replicas");
    yajl_gen_array_open(g);

    for (i = 0; i < replicas->nelts; i++) {
        yajl_gen_map_open(g);
        ngx_http_customer_gen_lit(g, "name");
        yajl_gen_string(g, rp[i].name.data, rp[i].name.len);
        ngx_http_customer_gen_lit(g, "up");
        yajl_gen_bool(g, rp[i].up);
        ngx_http_customer_gen_lit(g, "lagSeconds");

        if (!rp[i].up || rp[i].lag == (ngx_msec_t) NGX_MAX_INT_T_VALUE) {
            yajl_gen_null(g);

        } else {
            p = ngx_sprintf(num, "%M.%03M", rp[i].lag / 1000,
                            rp[i].lag % 1000);
            yajl_gen_number(g, (char *) num, p - num);
        }

        ngx_http_customer_gen_lit(g, "usable");
        yajl_gen_bool(g, ngx_http_customer_replica_usable(&rp[i]));
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
}

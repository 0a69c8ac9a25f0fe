
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_backlog.h"
#include "ngx_http_customer_metrics.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_replica.h"


/*
 * Metrics live in a shared memory zone ("customer_metrics"), so every
 * worker's requests are counted once and a scrape answered by any worker
 * sees them all; a reload keeps the zone and its counters.  The log phase
 * counts each API request by route template, method and status class and
 * files its latency into a histogram; each worker also copies its pool's
 * gauges into its own slot there.  `customer_metrics;` turns a location
 * into the Prometheus text endpoint; each scrape asks PostgreSQL a cheap
 * question (customer_db_up), and takes the outbox's backlog from the
 * worker's recent count (ngx_http_customer_backlog: at most one a
 * second).  $customer_route gives the route template to
 * log_format.
 */


#define NGX_HTTP_CUSTOMER_METRICS_ROUTES   256   /* rows of the route tables,
                                                    and one for no route */
#define NGX_HTTP_CUSTOMER_METRICS_BUCKETS  12
#define NGX_HTTP_CUSTOMER_METRICS_WORKERS  64
#define NGX_HTTP_CUSTOMER_METRICS_METHODS  6

/* a replica's lag is not known: it answered no check, replayed nothing */
#define NGX_HTTP_CUSTOMER_METRICS_NOLAG    ((ngx_atomic_uint_t) -1)

/* the last route slot counts requests that matched no route */
#define NGX_HTTP_CUSTOMER_METRICS_NONE                                       \
    (NGX_HTTP_CUSTOMER_METRICS_ROUTES - 1)


typedef struct {
    ngx_atomic_t   requests[NGX_HTTP_CUSTOMER_METRICS_METHODS][5];
    ngx_atomic_t   buckets[NGX_HTTP_CUSTOMER_METRICS_METHODS]
                          [NGX_HTTP_CUSTOMER_METRICS_BUCKETS + 1];
    ngx_atomic_t   sum_us[NGX_HTTP_CUSTOMER_METRICS_METHODS];
} ngx_http_customer_metrics_route_t;


/* the per-worker counters of the pool, each with its HELP and TYPE */
typedef struct {
    size_t         offset;    /* in ngx_http_customer_pg_stats_t */
    const char    *name;
    const char    *type;
    const char    *help;
} ngx_http_customer_metrics_counter_t;


#define ngx_http_customer_pool_at(field)                                     \
    offsetof(ngx_http_customer_pg_stats_t, field)

static ngx_http_customer_metrics_counter_t
    ngx_http_customer_metrics_pool_counters[] = {
    { ngx_http_customer_pool_at(inflight), "customer_db_queries_in_flight",
      "gauge", "Queries sent and not yet answered, per worker." },
    { ngx_http_customer_pool_at(waiting), "customer_db_queue_length",
      "gauge", "Requests waiting for a connection, per worker." },
    { ngx_http_customer_pool_at(connects), "customer_db_connects_total",
      "counter", "Connections opened, per worker." },
    { ngx_http_customer_pool_at(failures), "customer_db_connect_failures_total",
      "counter", "Connects that failed, per worker." },
    { ngx_http_customer_pool_at(terminated), "customer_db_terminated_total",
      "counter", "Backends of queries that timed out, terminated so that "
      "they cannot commit later, per worker." },
    { ngx_http_customer_pool_at(batches), "customer_db_write_batches_total",
      "counter", "Transactions sent with several writes in them, "
      "per worker." },
    { ngx_http_customer_pool_at(batched), "customer_db_batched_writes_total",
      "counter", "Writes sent in those transactions, per worker." },
    { ngx_http_customer_pool_at(groups), "customer_db_read_groups_total",
      "counter", "Statements that read several keys for as many reads "
      "(lookups by id arriving together), per worker." },
    { ngx_http_customer_pool_at(grouped), "customer_db_grouped_reads_total",
      "counter", "Reads answered by those statements, per worker." },
    { 0, NULL, NULL, NULL }
};


/* a customer_db_replica, by its place in the configuration */
typedef struct {
    ngx_atomic_t   up;        /* as the last check of any worker found */
    ngx_atomic_t   lag_ms;    /* ditto; NGX_HTTP_CUSTOMER_METRICS_NOLAG */
    ngx_atomic_t   reads;     /* routed reads it answered */
} ngx_http_customer_metrics_replica_t;


typedef struct {
    ngx_http_customer_metrics_route_t  routes[NGX_HTTP_CUSTOMER_METRICS_ROUTES];
    ngx_http_customer_pg_stats_t       pools[NGX_HTTP_CUSTOMER_METRICS_WORKERS];
    ngx_atomic_t                       peer_failures[4];
    ngx_atomic_t                       primary_reads; /* routed reads */
    ngx_http_customer_metrics_replica_t
                                  replicas[NGX_HTTP_CUSTOMER_REPLICAS_MAX];
} ngx_http_customer_metrics_t;


static ngx_int_t ngx_http_customer_metrics_log(ngx_http_request_t *r);
static ngx_int_t ngx_http_customer_metrics_handler(ngx_http_request_t *r);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_metrics_done);
static ngx_int_t ngx_http_customer_metrics_answer(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_backlog_t *bl);
static void ngx_http_customer_metrics_replicas(ngx_buf_t *b, u_char *end,
    ngx_http_customer_metrics_t *mt, ngx_array_t *replicas);
static void ngx_http_customer_metrics_route_out(ngx_buf_t *b, u_char *end,
    ngx_http_customer_metrics_route_t *rm, const char *route,
    ngx_uint_t pass);
static ngx_int_t ngx_http_customer_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_customer_metrics_t *ngx_http_customer_metrics_get(
    ngx_http_request_t *r);


/*
 * The route template of each counter, by route id: set before the workers
 * start; NULL for a counter no route uses
 */
static const char  *ngx_http_customer_metrics_routes
    [NGX_HTTP_CUSTOMER_METRICS_ROUTES] = {
    [NGX_HTTP_CUSTOMER_METRICS_NONE] = "none"
};

/* upper bounds of the latency buckets, microseconds */
static ngx_msec_t  ngx_http_customer_metrics_le[] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000
};

static const char  *ngx_http_customer_metrics_le_text[] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5", "1", "2.5", "5", "+Inf"
};

static const char  *ngx_http_customer_metrics_methods[] = {
    "GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"
};

static const char  *ngx_http_customer_metrics_services[] = {
    "auth", "orders", "complaints", "notifications"
};

static const char  *ngx_http_customer_metrics_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx"
};


static ngx_http_customer_pg_stmt_t  ngx_http_customer_metrics_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(0, "SELECT true");


/* at configuration: the zone, the log phase, $customer_route */

ngx_int_t
ngx_http_customer_metrics_conf(ngx_conf_t *cf,
    ngx_http_customer_route_t **tables)
{
    ngx_uint_t                  t, n;
    ngx_str_t                   name = ngx_string("customer_metrics");
    ngx_str_t                   var = ngx_string("customer_route");
    ngx_http_handler_pt        *h;
    ngx_http_variable_t        *v;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_customer_route_t      *rt;
    ngx_http_customer_main_conf_t  *ccf;

    n = 0;

    for (t = 0; tables[t]; t++) {
        for (rt = tables[t]; rt->pattern; rt++) {
            if (n == NGX_HTTP_CUSTOMER_METRICS_NONE) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "customer: too many routes for metrics");
                return NGX_ERROR;
            }

            rt->id = n;
            ngx_http_customer_metrics_routes[n++] = rt->pattern;
        }
    }

    /*
     * The zone is kept in this configuration, not in a static: a reload
     * that fails frees the new cycle, and workers started afterwards run
     * the old one.
     */
    ccf = ngx_http_conf_get_module_main_conf(cf, ngx_http_customer_module);

    ccf->metrics_zone = ngx_http_customer_shm_zone(cf, &name,
                                        sizeof(ngx_http_customer_metrics_t));
    if (ccf->metrics_zone == NULL) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_customer_metrics_log;

    v = ngx_http_add_variable(cf, &var, NGX_HTTP_VAR_NOCACHEABLE);
    if (v == NULL) {
        return NGX_ERROR;
    }

    v->get_handler = ngx_http_customer_route_variable;

    return NGX_OK;
}


/* GET (and HEAD) 0, POST 1, PUT 2, PATCH 3, DELETE 4, any other 5 */

ngx_uint_t
ngx_http_customer_method_index(ngx_uint_t method)
{
    switch (method) {
    case NGX_HTTP_GET:
    case NGX_HTTP_HEAD:
        return 0;
    case NGX_HTTP_POST:
        return 1;
    case NGX_HTTP_PUT:
        return 2;
    case NGX_HTTP_PATCH:
        return 3;
    case NGX_HTTP_DELETE:
        return 4;
    default:
        return 5;
    }
}


/*
 * The counters of r's configuration, or, with r NULL, of the cycle this
 * worker runs, whatever reloads failed since; NULL without the zone
 */

static ngx_http_customer_metrics_t *
ngx_http_customer_metrics_get(ngx_http_request_t *r)
{
    ngx_http_customer_main_conf_t  *cmcf;

    cmcf = r ? ngx_http_get_module_main_conf(r, ngx_http_customer_module)
             : ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                   ngx_http_customer_module);

    if (cmcf == NULL || cmcf->metrics_zone == NULL) {
        return NULL;
    }

    return cmcf->metrics_zone->data;
}


static ngx_int_t
ngx_http_customer_metrics_log(ngx_http_request_t *r)
{
    ngx_uint_t                           route, m, status, b, w;
    ngx_msec_int_t                       us;
    ngx_time_t                          *tp;
    ngx_http_customer_ctx_t             *ctx;
    ngx_http_customer_metrics_t         *mt;
    ngx_http_customer_main_conf_t       *cmcf;
    ngx_http_customer_metrics_route_t   *rm;

    ctx = ngx_http_get_module_ctx(r, ngx_http_customer_module);

    if (ctx == NULL || ctx->metrics) {
        return NGX_OK;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_customer_module);

    mt = ngx_http_customer_metrics_get(r);
    if (mt == NULL) {
        return NGX_OK;
    }

    route = ctx->route ? ctx->route->id : NGX_HTTP_CUSTOMER_METRICS_NONE;
    m = ngx_http_customer_method_index(r->method);
    rm = &mt->routes[route];

    status = r->err_status ? r->err_status : r->headers_out.status;
    status = (status >= 100 && status < 600) ? status / 100 - 1 : 4;

    (void) ngx_atomic_fetch_add(&rm->requests[m][status], 1);

    tp = ngx_timeofday();
    us = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000000
                           + (tp->msec - r->start_msec) * 1000);
    if (us < 0) {
        us = 0;
    }

    for (b = 0; b < NGX_HTTP_CUSTOMER_METRICS_BUCKETS; b++) {
        if ((ngx_msec_t) us <= ngx_http_customer_metrics_le[b]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&rm->buckets[m][b], 1);
    (void) ngx_atomic_fetch_add(&rm->sum_us[m], us);

    /* this worker's pool, into its own slot */

    w = ngx_worker;

    if (cmcf->pool && w < NGX_HTTP_CUSTOMER_METRICS_WORKERS) {
        ngx_http_customer_pg_stats(cmcf->pool, &mt->pools[w]);
    }

    return NGX_OK;
}


void
ngx_http_customer_metrics_peer_failure(ngx_uint_t service)
{
    ngx_http_customer_metrics_t  *mt;

    if (service > NGX_HTTP_CUSTOMER_PEER_NOTIFY) {
        return;
    }

    mt = ngx_http_customer_metrics_get(NULL);
    if (mt == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&mt->peer_failures[service], 1);
}


/* a replica's state after a check (or a failed read), from any worker */

void
ngx_http_customer_metrics_replica(ngx_http_customer_replica_t *rp)
{
    ngx_http_customer_metrics_t  *mt;

    mt = ngx_http_customer_metrics_get(NULL);
    if (mt == NULL || rp->index >= NGX_HTTP_CUSTOMER_REPLICAS_MAX) {
        return;
    }

    mt->replicas[rp->index].up = rp->up;
    mt->replicas[rp->index].lag_ms =
        (rp->up && rp->lag != (ngx_msec_t) NGX_MAX_INT_T_VALUE)
        ? rp->lag : NGX_HTTP_CUSTOMER_METRICS_NOLAG;
}


/* a read that may go to a replica, answered by target 0 (the primary), 1.. */

void
ngx_http_customer_metrics_read(ngx_uint_t target)
{
    ngx_http_customer_metrics_t  *mt;

    mt = ngx_http_customer_metrics_get(NULL);
    if (mt == NULL || target > NGX_HTTP_CUSTOMER_REPLICAS_MAX) {
        return;
    }

    if (target == 0) {
        (void) ngx_atomic_fetch_add(&mt->primary_reads, 1);

    } else {
        (void) ngx_atomic_fetch_add(&mt->replicas[target - 1].reads, 1);
    }
}


static ngx_int_t
ngx_http_customer_route_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_customer_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_customer_module);

    if (ctx == NULL || ctx->route == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = (u_char *) ctx->route->pattern;
    v->len = ngx_strlen(ctx->route->pattern);
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


char *
ngx_http_customer_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "conflicts with another content handler in this location";
    }

    clcf->handler = ngx_http_customer_metrics_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_customer_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_customer_ctx_t        *ctx;
    ngx_http_customer_pg_query_t   *q;
    ngx_http_customer_main_conf_t  *cmcf;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_customer_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->metrics = 1;
    ngx_http_set_ctx(r, ctx, ngx_http_customer_module);

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_customer_module);

    if (cmcf->pool == NULL) {
        /* no customer_db here: the counters only, customer_db_up 0 */
        return ngx_http_customer_metrics_answer(ctx, NULL);
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_customer_query_run(ctx, q, &ngx_http_customer_metrics_sql,
                                     ngx_http_customer_metrics_done);
    if (rc == NGX_DONE) {
        r->main->count++;
    }

    return rc;
}


#define ngx_http_customer_metrics_out(b, end, ...)                           \
    (b)->last = ngx_slprintf((b)->last, end, __VA_ARGS__)


/* replicas: up, lag, and the routed reads each target answered */

static void
ngx_http_customer_metrics_replicas(ngx_buf_t *b, u_char *end,
    ngx_http_customer_metrics_t *mt, ngx_array_t *replicas)
{
    ngx_uint_t                            i, n;
    ngx_atomic_uint_t                     lag;
    ngx_http_customer_replica_t          *rp;
    ngx_http_customer_metrics_replica_t  *mr;

    rp = replicas->elts;
    n = ngx_min(replicas->nelts, NGX_HTTP_CUSTOMER_REPLICAS_MAX);

    ngx_http_customer_metrics_out(b, end,
        "# HELP customer_db_replica_up 1 when the replica answered its "
        "last lag check as a standby.\n"
        "# TYPE customer_db_replica_up gauge\n");

    for (i = 0; i < n; i++) {
        ngx_http_customer_metrics_out(b, end,
            "customer_db_replica_up{replica=\"%V\"} %uA\n",
            &rp[i].name, mt->replicas[i].up);
    }

    ngx_http_customer_metrics_out(b, end,
        "# HELP customer_db_replica_lag_seconds Replay lag the last check "
        "found (0: all WAL received is replayed; NaN: unknown).\n"
        "# TYPE customer_db_replica_lag_seconds gauge\n");

    for (i = 0; i < n; i++) {
        mr = &mt->replicas[i];
        lag = mr->lag_ms;

        if (lag == NGX_HTTP_CUSTOMER_METRICS_NOLAG) {
            ngx_http_customer_metrics_out(b, end,
                "customer_db_replica_lag_seconds{replica=\"%V\"} NaN\n",
                &rp[i].name);
            continue;
        }

        ngx_http_customer_metrics_out(b, end,
            "customer_db_replica_lag_seconds{replica=\"%V\"} %uA.%03uA\n",
            &rp[i].name, lag / 1000, lag % 1000);
    }

    ngx_http_customer_metrics_out(b, end,
        "# HELP customer_db_routed_reads_total Reads that may go to a "
        "replica (lists, search, analytics, dashboards, histories), by "
        "the server that answered.\n"
        "# TYPE customer_db_routed_reads_total counter\n"
        "customer_db_routed_reads_total{target=\"primary\"} %uA\n",
        mt->primary_reads);

    for (i = 0; i < n; i++) {
        ngx_http_customer_metrics_out(b, end,
            "customer_db_routed_reads_total{target=\"%V\"} %uA\n",
            &rp[i].name, mt->replicas[i].reads);
    }
}


/* a route's lines: its counts (pass 0) or its histogram (pass 1) */

static void
ngx_http_customer_metrics_route_out(ngx_buf_t *b, u_char *end,
    ngx_http_customer_metrics_route_t *rm, const char *route,
    ngx_uint_t pass)
{
    ngx_uint_t  m, k, n, cum;

    for (m = 0; m < NGX_HTTP_CUSTOMER_METRICS_METHODS; m++) {

        for (k = 0; pass == 0 && k < 5; k++) {
            if (rm->requests[m][k]) {
                ngx_http_customer_metrics_out(b, end,
                    "customer_http_requests_total{route=\"%s\","
                    "method=\"%s\",status=\"%s\"} %uA\n",
                    route, ngx_http_customer_metrics_methods[m],
                    ngx_http_customer_metrics_classes[k],
                    rm->requests[m][k]);
            }
        }

        n = 0;

        for (k = 0; k <= NGX_HTTP_CUSTOMER_METRICS_BUCKETS; k++) {
            n += rm->buckets[m][k];
        }

        if (pass == 0 || n == 0) {
            continue;
        }

        cum = 0;

        for (k = 0; k <= NGX_HTTP_CUSTOMER_METRICS_BUCKETS; k++) {
            cum += rm->buckets[m][k];

            ngx_http_customer_metrics_out(b, end,
                "customer_http_request_duration_seconds_bucket{"
                "route=\"%s\",method=\"%s\",le=\"%s\"} %ui\n",
                route, ngx_http_customer_metrics_methods[m],
                ngx_http_customer_metrics_le_text[k], cum);
        }

        ngx_http_customer_metrics_out(b, end,
            "customer_http_request_duration_seconds_sum{route=\"%s\","
            "method=\"%s\"} %uA.%06uA\n"
            "customer_http_request_duration_seconds_count{"
            "route=\"%s\",method=\"%s\"} %ui\n",
            route, ngx_http_customer_metrics_methods[m],
            rm->sum_us[m] / 1000000, rm->sum_us[m] % 1000000,
            route, ngx_http_customer_metrics_methods[m], n);
    }
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_metrics_done)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_metrics_answer(ctx, NULL);
    }

    /* the database answered: customer_db_up 1, and the backlog */
    ctx->data = ctx;

    return ngx_http_customer_backlog(ctx, ngx_http_customer_metrics_answer);
}


/* ctx->data set: the database answered the scrape's question */

static ngx_int_t
ngx_http_customer_metrics_answer(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_backlog_t *bl)
{
    u_char                             *end;
    ngx_int_t                           rc;
    ngx_buf_t                          *b;
    ngx_uint_t                          i, k, pass;
    ngx_str_t                           v;
    ngx_chain_t                         out;
    ngx_table_elt_t                    *h;
    ngx_http_request_t                 *r;
    ngx_http_customer_metrics_t        *mt;
    ngx_http_customer_main_conf_t      *cmcf;
    const char                         *route;
    ngx_http_customer_metrics_counter_t  *pc;

    r = ctx->request;

    mt = ngx_http_customer_metrics_get(r);
    if (mt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_create_temp_buf(r->pool, 256 * 1024);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    end = b->end;

    /* by route: the counts of every route, then the histograms */

    for (pass = 0; pass < 2; pass++) {

        ngx_http_customer_metrics_out(b, end, pass
            ? "# HELP customer_http_request_duration_seconds Time from the "
              "request's first byte to its log line.\n"
              "# TYPE customer_http_request_duration_seconds histogram\n"
            : "# HELP customer_http_requests_total API requests answered, "
              "by route template, method and status class.\n"
              "# TYPE customer_http_requests_total counter\n");

        for (i = 0; i < NGX_HTTP_CUSTOMER_METRICS_ROUTES; i++) {

            route = ngx_http_customer_metrics_routes[i];

            if (route) {
                ngx_http_customer_metrics_route_out(b, end, &mt->routes[i],
                                                    route, pass);
            }
        }
    }

    ngx_http_customer_metrics_out(b, end,
        "# HELP customer_db_connections PostgreSQL connections per worker "
        "(as of its last request).\n"
        "# TYPE customer_db_connections gauge\n");

    for (i = 0; i < NGX_HTTP_CUSTOMER_METRICS_WORKERS; i++) {
        if (mt->pools[i].connects == 0 && mt->pools[i].failures == 0) {
            continue;
        }

        ngx_http_customer_metrics_out(b, end,
            "customer_db_connections{worker=\"%ui\",state=\"busy\"} %ui\n"
            "customer_db_connections{worker=\"%ui\",state=\"idle\"} %ui\n",
            i, mt->pools[i].live - mt->pools[i].idle,
            i, mt->pools[i].idle);
    }

    for (k = 0; ngx_http_customer_metrics_pool_counters[k].name; k++) {
        pc = &ngx_http_customer_metrics_pool_counters[k];

        ngx_http_customer_metrics_out(b, end, "# HELP %s %s\n# TYPE %s %s\n",
                                      pc->name, pc->help, pc->name,
                                      pc->type);

        for (i = 0; i < NGX_HTTP_CUSTOMER_METRICS_WORKERS; i++) {
            if (mt->pools[i].connects || mt->pools[i].failures) {
                ngx_http_customer_metrics_out(b, end,
                    "%s{worker=\"%ui\"} %ui\n", pc->name, i,
                    *(ngx_uint_t *) ((u_char *) &mt->pools[i]
                                     + pc->offset));
            }
        }
    }

    ngx_http_customer_metrics_out(b, end,
        "# HELP customer_peer_failures_total Calls to a service that "
        "failed or timed out.\n"
        "# TYPE customer_peer_failures_total counter\n");

    for (i = 0; i < 4; i++) {
        ngx_http_customer_metrics_out(b, end,
            "customer_peer_failures_total{service=\"%s\"} %uA\n",
            ngx_http_customer_metrics_services[i], mt->peer_failures[i]);
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_customer_module);

    if (cmcf->replicas) {
        ngx_http_customer_metrics_replicas(b, end, mt, cmcf->replicas);
    }

    if (bl) {
        ngx_http_customer_metrics_out(b, end,
            "# HELP customer_outbox_pending Auth Service updates not yet "
            "delivered.\n"
            "# TYPE customer_outbox_pending gauge\n"
            "customer_outbox_pending %i\n"
            "# HELP customer_outbox_dead Auth Service updates set aside "
            "after too many failed attempts.\n"
            "# TYPE customer_outbox_dead gauge\n"
            "customer_outbox_dead %i\n"
            "# HELP customer_events_pending Events not yet delivered to "
            "the Notification Service.\n"
            "# TYPE customer_events_pending gauge\n"
            "customer_events_pending %i\n"
            "# HELP customer_events_dead Events set aside after too many "
            "failed attempts.\n"
            "# TYPE customer_events_dead gauge\n"
            "customer_events_dead %i\n",
            bl->outbox_pending, bl->outbox_dead,
            bl->events_pending, bl->events_dead);
    }

    ngx_http_customer_metrics_out(b, end,
        "# HELP customer_db_up 1 when the scrape's query answered.\n"
        "# TYPE customer_db_up gauge\n"
        "customer_db_up %d\n",
        ctx->data ? 1 : 0);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    ngx_str_set(&v, "no-store");

    h = ngx_http_customer_push_header(&r->headers_out.headers,
                                      "Cache-Control", &v);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}

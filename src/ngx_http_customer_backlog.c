
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_backlog.h"
#include "ngx_http_customer_outbox.h"


/*
 * The outbox's backlog for /health and the metrics, counted at most once
 * a second per worker.  Counting reads a partial index of the undelivered
 * events, so it costs in proportion to the backlog (tens of ms at 100,000
 * pending events); a balancer's probes or a scraper, however often they
 * call, must not pay that per call, nor hold up, pipelined behind such a
 * count, the cheap reads on the same connection.  So the count runs on a
 * connection of its own (an unshared read), and each worker keeps the
 * last one it got:
 *
 *   - counts sent less than BACKLOG_FRESH ms ago answer at once;
 *   - older ones start a new count, and the call waits for it (a call
 *     that arrives while a count runs answers with the counts it
 *     replaces, if they are less than BACKLOG_STALE ms old, else waits
 *     too).
 *
 * So an answer's counts are about a second old at most, a worker counts
 * at most once a second whatever the rate of calls, and a probe that
 * comes every few seconds gets a count of its own.  The callers still
 * send their own cheap statement each time: that the database answers is
 * what a health check is for.  A count that fails answers its waiters
 * with no counts.
 */


typedef struct {
    ngx_queue_t                     queue;
    ngx_http_customer_ctx_t        *ctx;
    ngx_http_customer_backlog_pt    answer;
    unsigned                        queued:1;
} ngx_http_customer_backlog_wait_t;


typedef struct {
    ngx_cycle_t                    *cycle;     /* the count's pool's */
    ngx_http_customer_pg_query_t   *count;
    ngx_http_customer_backlog_t     counts;
    ngx_msec_t                      counted;   /* when counts' count was
                                                  sent */
    ngx_msec_t                      sent;      /* ... and the running one */
    ngx_queue_t                     waiting;   /* of ..._backlog_wait_t */
    unsigned                        valid:1;   /* counts hold a count */
    unsigned                        counting:1;
} ngx_http_customer_backlog_state_t;


static ngx_int_t ngx_http_customer_backlog_init(
    ngx_http_customer_backlog_state_t *st);
static void ngx_http_customer_backlog_counted(ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_backlog_parse(PGresult *res,
    ngx_http_customer_backlog_t *bl);
static void ngx_http_customer_backlog_cleanup(void *data);


static ngx_http_customer_pg_stmt_t  ngx_http_customer_backlog_sql =
    NGX_HTTP_CUSTOMER_PG_READ(0, NGX_HTTP_CUSTOMER_OUTBOX_GAUGES_SQL);

/* this worker's */
static ngx_http_customer_backlog_state_t  ngx_http_customer_backlog_state;


/*
 * The counts for ctx's answer: answer(ctx, counts) at once, and its
 * return, when this worker's are recent; else NGX_DONE, and answer is
 * called when a count ends (the request then finalized with its return).
 */

ngx_int_t
ngx_http_customer_backlog(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_backlog_pt answer)
{
    ngx_msec_t                          age;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_request_t                 *r;
    ngx_http_customer_main_conf_t      *cmcf;
    ngx_http_customer_backlog_wait_t   *w;
    ngx_http_customer_backlog_state_t  *st;

    r = ctx->request;
    st = &ngx_http_customer_backlog_state;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_customer_module);

    if (cmcf->pool == NULL) {
        return answer(ctx, NULL);
    }

    if (st->cycle != (ngx_cycle_t *) ngx_cycle) {
        if (ngx_http_customer_backlog_init(st) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    age = ngx_current_msec - st->counted;

    if (st->valid && age < NGX_HTTP_CUSTOMER_BACKLOG_FRESH) {
        return answer(ctx, &st->counts);
    }

    if (st->counting) {
        if (st->valid && age < NGX_HTTP_CUSTOMER_BACKLOG_STALE) {
            return answer(ctx, &st->counts);
        }

    } else {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "customer backlog: counting");

        st->counting = 1;
        st->sent = ngx_current_msec;

        /* the handler is never called from in here */
        ngx_http_customer_pg_run(cmcf->pool, st->count);
    }

    w = ngx_palloc(r->pool, sizeof(ngx_http_customer_backlog_wait_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->ctx = ctx;
    w->answer = answer;
    w->queued = 1;
    ngx_queue_insert_tail(&st->waiting, &w->queue);

    /* a request that goes away while it waits leaves the queue */
    cln->handler = ngx_http_customer_backlog_cleanup;
    cln->data = w;

    return NGX_DONE;
}


/* at a worker's first call: the count, made once in the cycle's pool */

static ngx_int_t
ngx_http_customer_backlog_init(ngx_http_customer_backlog_state_t *st)
{
    ngx_http_customer_pg_query_t  *q;

    q = ngx_http_customer_pg_query_create(ngx_cycle->pool, ngx_cycle->log);
    if (q == NULL) {
        return NGX_ERROR;
    }

    q->stmt = &ngx_http_customer_backlog_sql;
    q->handler = ngx_http_customer_backlog_counted;
    q->data = st;

    ngx_memzero(st, sizeof(ngx_http_customer_backlog_state_t));

    st->cycle = (ngx_cycle_t *) ngx_cycle;
    st->count = q;
    ngx_queue_init(&st->waiting);

    return NGX_OK;
}


static void
ngx_http_customer_backlog_counted(ngx_http_customer_pg_query_t *q,
    PGresult *res)
{
    ngx_int_t                           rc;
    ngx_queue_t                        *qu, waiting;
    ngx_connection_t                   *c;
    ngx_http_request_t                 *r;
    ngx_http_customer_backlog_t        *bl;
    ngx_http_customer_backlog_wait_t   *w;
    ngx_http_customer_backlog_state_t  *st;

    st = q->data;
    st->counting = 0;

    if (ngx_http_customer_backlog_parse(res, &st->counts) == NGX_OK) {
        st->counted = st->sent;
        st->valid = 1;
        bl = &st->counts;

    } else {
        /* the pool logs what kept a query from an answer */
        if (q->error == NGX_HTTP_CUSTOMER_PG_OK) {
            ngx_log_error(NGX_LOG_ERR, q->log, 0,
                          "customer: counting the outbox's backlog "
                          "failed: %s",
                          ngx_http_customer_pg_why(res));
        }

        bl = NULL;
    }

    /*
     * The waiters of this count only: an answer may run posted requests
     * that start the next count and wait for it.
     */

    ngx_queue_init(&waiting);

    if (!ngx_queue_empty(&st->waiting)) {
        ngx_queue_add(&waiting, &st->waiting);
        ngx_queue_init(&st->waiting);
    }

    while (!ngx_queue_empty(&waiting)) {
        qu = ngx_queue_head(&waiting);
        ngx_queue_remove(qu);

        w = ngx_queue_data(qu, ngx_http_customer_backlog_wait_t, queue);
        w->queued = 0;

        r = w->ctx->request;
        c = r->connection;

        rc = w->answer(w->ctx, bl);

        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }

        ngx_http_run_posted_requests(c);
    }
}


/* the four counts of NGX_HTTP_CUSTOMER_OUTBOX_GAUGES_SQL's one row */

static ngx_int_t
ngx_http_customer_backlog_parse(PGresult *res, ngx_http_customer_backlog_t *bl)
{
    int         i;
    ngx_int_t   n[4];

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1 || PQnfields(res) != 4)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < 4; i++) {
        n[i] = ngx_atoi((u_char *) PQgetvalue(res, 0, i),
                        PQgetlength(res, 0, i));
        if (n[i] == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    bl->outbox_pending = n[0];
    bl->outbox_dead = n[1];
    bl->events_pending = n[2];
    bl->events_dead = n[3];

    return NGX_OK;
}


static void
ngx_http_customer_backlog_cleanup(void *data)
{
    ngx_http_customer_backlog_wait_t  *w = data;

    if (w->queued) {
        ngx_queue_remove(&w->queue);
        w->queued = 0;
    }
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_customer_pg.h"


/*
 * A per-worker pool of non-blocking libpq connections driven by the nginx
 * event loop, in libpq's pipeline mode.
 *
 * A statement that is not "shared" (a write) is sent as [Parse]
 * Bind/Execute Sync on an idle connection of its own, so it is its own
 * transaction, and a write waiting on a lock holds up nobody else.
 * Shared statements (reads) may join a busy connection whose in-flight
 * queries are all shared and whose oldest query has not run for
 * NGX_HTTP_CUSTOMER_PG_SLOW ms.  Reads go out in batches under one Sync
 * (one round trip, one server wake-up and one transaction for the lot):
 * those added to a connection during one turn of the event loop are sent
 * at the end of the turn, unless an earlier batch of that connection is
 * still out; then the batch is held and goes when the earlier one has
 * been answered, and the reads that arrive meanwhile join it.  Under load
 * a batch thus carries what came in during a round trip, not what came in
 * during one turn of the loop, and the server spends its time on the
 * statements rather than on a transaction, a read and a write for each;
 * a read waits for no more than the batch ahead of it, which the server
 * would have worked through first anyway.  A read that the server aborts
 * because another in its batch failed is sent again.
 * When the oldest query on a connection has run for
 * NGX_HTTP_CUSTOMER_PG_STALL ms, the reads queued behind it are sent
 * again elsewhere and nothing more joins that connection, so one stuck
 * query (a table lock, say) does not hold the others.
 *
 * Ownership: a query lives in its request's pool.  While it waits it is on
 * pool->waiting; while it runs, a slot of its connection points to it.
 * Whatever ends a query (its result, an error, its timeout, its request
 * going away) unlinks it from the pool first, then calls q->handler, and
 * never touches q again: the handler may finalize the request and free
 * q.  Results are delivered from connection event handlers; failures found
 * while ngx_http_customer_pg_run() is still on the stack are posted to
 * ngx_posted_events instead, so a handler never runs inside run().
 *
 * Connections use level-triggered events: libpq may leave bytes in the
 * socket after PQconsumeInput(), which an edge-triggered event would never
 * report again.  The read event is always active once connected (it also
 * notices a server that closes an idle connection); the write event only
 * while PQflush() has data left or PQconnectPoll() asks for it.
 */


#define NGX_HTTP_CUSTOMER_PG_BACKOFF_MIN  50      /* ms */
#define NGX_HTTP_CUSTOMER_PG_BACKOFF_MAX  2000    /* ms */
#define NGX_HTTP_CUSTOMER_PG_STALL        200     /* ms: reads leave */
#define NGX_HTTP_CUSTOMER_PG_SLOW         5       /* ms: no one joins */
#define NGX_HTTP_CUSTOMER_PG_KILLS        8       /* terminations at once */

/* a connection's slots: a batch out and the next one being filled */
#define NGX_HTTP_CUSTOMER_PG_MAX_RING     (2 * NGX_HTTP_CUSTOMER_PG_MAX_DEPTH)

/* connection states */
#define NGX_HTTP_CUSTOMER_PG_FREE         0
#define NGX_HTTP_CUSTOMER_PG_CONNECTING   1
#define NGX_HTTP_CUSTOMER_PG_IDLE         2
#define NGX_HTTP_CUSTOMER_PG_BUSY         3

/*
 * The session's plan_cache_mode, as last set on a connection.  Writes and
 * cheap reads run with generic plans: the same plan suits every value,
 * and the planner would otherwise plan their statements (CTEs of several
 * writes) again at every execution, which cost as much as running them
 * (a loyalty earn: 1 ms of planning, 1 ms of execution; 0.1 and 0.6
 * with a generic plan).  Reads that cost milliseconds (lists, search)
 * keep PostgreSQL's choice: their optional filters and patterns need a
 * plan for the values given.  Unknown after a connect and after an error
 * (a failed transaction takes its SET back).
 */
#define NGX_HTTP_CUSTOMER_PG_PLAN_UNKNOWN  0
#define NGX_HTTP_CUSTOMER_PG_PLAN_GENERIC  1
#define NGX_HTTP_CUSTOMER_PG_PLAN_AUTO     2


/* query states */
#define NGX_HTTP_CUSTOMER_PG_Q_NEW        0
#define NGX_HTTP_CUSTOMER_PG_Q_WAITING    1
#define NGX_HTTP_CUSTOMER_PG_Q_RUNNING    2
#define NGX_HTTP_CUSTOMER_PG_Q_POSTED     3
#define NGX_HTTP_CUSTOMER_PG_Q_DONE       4
#define NGX_HTTP_CUSTOMER_PG_Q_GATHERED   5   /* in pool->gathered */
#define NGX_HTTP_CUSTOMER_PG_Q_GROUPED    6   /* a member of a group */


/*
 * Reads of a statement with many, gathered during a turn of the loop and
 * run as one execution of many (a group): its keys as an array literal,
 * its other parameters copied (a member may go away before it is sent).
 * Keys and other parameters longer than these go alone.
 */
#define NGX_HTTP_CUSTOMER_PG_MAX_MANY     32      /* reads in a group */
#define NGX_HTTP_CUSTOMER_PG_MANY_KEY     64      /* bytes of a key */
#define NGX_HTTP_CUSTOMER_PG_MANY_REST    256     /* of the others */
#define NGX_HTTP_CUSTOMER_PG_SCAN         64      /* waiting queries
                                                     looked at to fill a
                                                     batch */

typedef struct {
    ngx_http_customer_pg_query_t      q;         /* the execution of many */
    ngx_queue_t                       queue;     /* in pool->groups: free */
    ngx_uint_t                        n;
    ngx_http_customer_pg_query_t     *members[NGX_HTTP_CUSTOMER_PG_MAX_MANY];
    u_char                            keys[NGX_HTTP_CUSTOMER_PG_MAX_MANY
                                           * (2 * NGX_HTTP_CUSTOMER_PG_MANY_KEY
                                              + 3) + 3];
    u_char                            rest[NGX_HTTP_CUSTOMER_PG_MANY_REST];
} ngx_http_customer_pg_group_t;


typedef struct {
    ngx_http_customer_pg_query_t     *query;     /* NULL: request gone */
    PGresult                         *result;
    ngx_uint_t                        parse;     /* stmt id + 1 if Parse */
    unsigned                          groups:3;  /* result runs to come */
    unsigned                          got_result:1;
    unsigned                          at_sync:1; /* a write: complete only
                                                    at its Sync */
} ngx_http_customer_pg_slot_t;


struct ngx_http_customer_pg_conn_s {
    ngx_queue_t                       queue;     /* pool->free or ->idle */
    ngx_http_customer_pg_pool_t      *pool;
    PGconn                           *pgconn;
    ngx_connection_t                 *connection;
    ngx_http_customer_pg_slot_t      *slots;     /* ring, pool->ring */
    ngx_uint_t                        head;      /* oldest in flight */
    ngx_uint_t                        nflight;
    ngx_http_customer_pg_stats_t      counts;    /* and backoff */
    ngx_uint_t                        nopen;     /* the newest nflight:
                                                    reads not yet under a
                                                    Sync (the batch being
                                                    filled) */
    ngx_uint_t                        ndone;     /* the oldest nflight:
                                                    writes answered, their
                                                    Sync (commit) to come */
    ngx_uint_t                        gen;       /* +1 per connect */
    ngx_msec_t                        head_at;   /* oldest query sent */
    ngx_uint_t                        state;
    ngx_log_t                         log;
    ngx_event_t                       sync;      /* posted: Sync + flush */
    uint64_t                          prepared[
                                      NGX_HTTP_CUSTOMER_PG_MAX_STMTS / 64];
    ino_t                             sock_ino;  /* identity of the fd */
    unsigned                          reused:1;   /* answered a query */
    unsigned                          exclusive:1; /* unshared in flight */
    unsigned                          stalled:1;   /* oldest runs long */
    unsigned                          held:1;      /* the open batch waits
                                                      for the one out */
    unsigned                          plan:2;      /* plan_cache_mode set:
                                                      NGX_HTTP_CUSTOMER_PG_
                                                      PLAN_* */
    unsigned                          batch:1;     /* writes being sent
                                                      under one Sync */
    unsigned                          late:1;      /* an error after the
                                                      writes' own results:
                                                      the commit failed */
    unsigned                          ending:1;    /* the server said it
                                                      ends the session */
};


struct ngx_http_customer_pg_pool_s {
    ngx_http_customer_pg_conn_t      *conns;
    ngx_uint_t                        size;
    ngx_uint_t                        depth;     /* reads per batch */
    ngx_uint_t                        ring;      /* slots per connection */
    ngx_queue_t                       free;
    ngx_queue_t                       idle;
    ngx_queue_t                       waiting;
    ngx_uint_t                        nwaiting;
    ngx_uint_t                        max_waiting;
    ngx_uint_t                        nlive;
    ngx_uint_t                        nidle;
    ngx_uint_t                        nconnecting;
    ngx_uint_t                        nflight;
    ngx_http_customer_pg_stats_t      counts;    /* the totals, backoff */
    ngx_msec_t                        timeout;
    ngx_msec_t                        retry_at;
    ngx_queue_t                       gathered;  /* reads for groups */
    ngx_event_t                       gather;    /* posted: form them */
    ngx_queue_t                       groups;    /* free ones */
    ngx_uint_t                        ngroups;   /* allocated */
    ngx_http_customer_pg_query_t     *kills;     /* terminations */
    char                             *kill_pids; /* their parameters */
    const char                       *keywords[5];
    const char                       *values[5];
    ngx_log_t                        *log;
    ngx_pool_t                       *cycle_pool; /* for groups */
};


static void ngx_http_customer_pg_grow(ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_connect(ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_connect_handler(ngx_event_t *ev);
static void ngx_http_customer_pg_connect_failed(
    ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_io_handler(ngx_event_t *ev);
static ino_t ngx_http_customer_pg_sock_ino(ngx_socket_t fd);
static ngx_int_t ngx_http_customer_pg_want(ngx_http_customer_pg_conn_t *pc,
    ngx_uint_t rd, ngx_uint_t wr);
static ngx_http_customer_pg_conn_t *ngx_http_customer_pg_pick(
    ngx_http_customer_pg_pool_t *pool, ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_send(ngx_http_customer_pg_conn_t *pc,
    ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_flush(ngx_http_customer_pg_conn_t *pc,
    ngx_uint_t sync);
static void ngx_http_customer_pg_sync(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_sync_handler(ngx_event_t *ev);
static void ngx_http_customer_pg_stall(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_watch(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_dispatch(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_query_t *q);
static ngx_uint_t ngx_http_customer_pg_groupable(
    ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_gather_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_customer_pg_alike(ngx_http_customer_pg_query_t *a,
    ngx_http_customer_pg_query_t *b);
static ngx_http_customer_pg_group_t *ngx_http_customer_pg_group(
    ngx_http_customer_pg_pool_t *pool, ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_grouped(ngx_http_customer_pg_query_t *gq,
    PGresult *res);
static PGresult *ngx_http_customer_pg_row(PGresult *res, ngx_uint_t row);
static void ngx_http_customer_pg_ungroup(ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_batch(ngx_http_customer_pg_conn_t *pc,
    ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_commit(ngx_http_customer_pg_conn_t *pc);
static ngx_uint_t ngx_http_customer_pg_failed(PGresult *res,
    const char *states);

#define NGX_HTTP_CUSTOMER_PG_TRANSIENT  "40P01 40001"
#define NGX_HTTP_CUSTOMER_PG_ENDING     "57P01 57P02 57P03"
static void ngx_http_customer_pg_complete(ngx_http_customer_pg_conn_t *pc);
static ngx_uint_t ngx_http_customer_pg_unprepared(
    ngx_http_customer_pg_conn_t *pc, PGresult *res);
static void ngx_http_customer_pg_abort(ngx_http_customer_pg_conn_t *pc,
    ngx_uint_t timedout);
static void ngx_http_customer_pg_close(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_idle(ngx_http_customer_pg_conn_t *pc);
static ngx_int_t ngx_http_customer_pg_spoke(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_serve(ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_fail_waiting(
    ngx_http_customer_pg_pool_t *pool, ngx_uint_t error);
static void ngx_http_customer_pg_requeue(ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_post(ngx_http_customer_pg_query_t *q,
    ngx_uint_t error);
static void ngx_http_customer_pg_finish(ngx_http_customer_pg_query_t *q,
    PGresult *res, ngx_uint_t error);
static void ngx_http_customer_pg_query_handler(ngx_event_t *ev);
static void ngx_http_customer_pg_query_cleanup(void *data);
static void ngx_http_customer_pg_terminate(ngx_http_customer_pg_pool_t *pool,
    int pid);
static void ngx_http_customer_pg_terminated(ngx_http_customer_pg_query_t *q,
    PGresult *res);


/*
 * The backend of a query given up on: the connection is closed, but the
 * backend would go on with the statement until it next writes to the
 * socket, and a write waiting on a lock could still commit after the
 * client was told 503.  Terminated from another connection of the pool
 * (PQcancel() would block the worker).
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_pg_kill_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT pg_terminate_backend($1::int)");


static ngx_uint_t  ngx_http_customer_pg_nstmts;


ngx_http_customer_pg_pool_t *
ngx_http_customer_pg_pool_create(ngx_cycle_t *cycle, ngx_str_t *conninfo,
    ngx_uint_t size, ngx_uint_t depth, ngx_msec_t timeout, ngx_uint_t queue)
{
    u_char                       *p;
    ngx_uint_t                    i;
    ngx_http_customer_pg_pool_t  *pool;

    pool = ngx_pcalloc(cycle->pool, sizeof(ngx_http_customer_pg_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->conns = ngx_pcalloc(cycle->pool,
                              size * sizeof(ngx_http_customer_pg_conn_t));
    if (pool->conns == NULL) {
        return NULL;
    }

    pool->size = size;
    pool->depth = depth;
    pool->ring = depth > 1 ? 2 * depth : 1;
    pool->max_waiting = queue;
    pool->timeout = timeout;
    pool->log = cycle->log;

    ngx_queue_init(&pool->free);
    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->waiting);
    ngx_queue_init(&pool->gathered);
    ngx_queue_init(&pool->groups);

    pool->gather.handler = ngx_http_customer_pg_gather_handler;
    pool->gather.data = pool;
    pool->gather.log = cycle->log;
    pool->cycle_pool = cycle->pool;

    for (i = 0; i < size; i++) {
        pool->conns[i].pool = pool;
        pool->conns[i].slots = ngx_pcalloc(cycle->pool,
                                  pool->ring
                                  * sizeof(ngx_http_customer_pg_slot_t));
        if (pool->conns[i].slots == NULL) {
            return NULL;
        }

        pool->conns[i].sync.handler = ngx_http_customer_pg_sync_handler;
        pool->conns[i].sync.data = &pool->conns[i];
        pool->conns[i].sync.log = cycle->log;

        ngx_queue_insert_tail(&pool->free, &pool->conns[i].queue);
    }

    pool->kills = ngx_pcalloc(cycle->pool,
                              NGX_HTTP_CUSTOMER_PG_KILLS
                              * sizeof(ngx_http_customer_pg_query_t));
    pool->kill_pids = ngx_pcalloc(cycle->pool,
                                  NGX_HTTP_CUSTOMER_PG_KILLS
                                  * (NGX_INT_T_LEN + 1));
    if (pool->kills == NULL || pool->kill_pids == NULL) {
        return NULL;
    }

    for (i = 0; i < NGX_HTTP_CUSTOMER_PG_KILLS; i++) {
        pool->kills[i].state = NGX_HTTP_CUSTOMER_PG_Q_DONE;
        pool->kills[i].log = cycle->log;
        pool->kills[i].handler = ngx_http_customer_pg_terminated;
        pool->kills[i].event.handler = ngx_http_customer_pg_query_handler;
        pool->kills[i].event.data = &pool->kills[i];
        pool->kills[i].event.log = cycle->log;
    }

    /*
     * The operator's string comes first and is expanded; the server-side
     * statement_timeout matches customer_db_timeout, so a statement we
     * gave up on (say, one waiting on a lock) is also cancelled there.
     */

    p = ngx_pnalloc(cycle->pool,
                    sizeof("-c statement_timeout= -c pg_trgm."
                           "word_similarity_threshold=0.3"
                           " -c DateStyle=ISO,YMD -c TimeZone=UTC")
                    + NGX_INT_T_LEN);
    if (p == NULL) {
        return NULL;
    }

    /*
     * search: typo tolerance of <% (the default 0.6 misses "jonh");
     * dates as text (date::text) are YYYY-MM-DD and "today" is the UTC
     * date whatever the server's or the database's defaults say
     */

    ngx_sprintf(p, "-c statement_timeout=%M"
                " -c pg_trgm.word_similarity_threshold=0.3"
                " -c DateStyle=ISO,YMD -c TimeZone=UTC%Z", timeout);

    pool->keywords[0] = "dbname";
    pool->values[0] = (const char *) conninfo->data;
    pool->keywords[1] = "fallback_application_name";
    pool->values[1] = "nginx-customer";
    pool->keywords[2] = "options";
    pool->values[2] = (const char *) p;

    return pool;
}


/* addresses resolved at configuration time: after dbname, so they win */

void
ngx_http_customer_pg_pool_hostaddr(ngx_http_customer_pg_pool_t *pool,
    ngx_str_t *hostaddr)
{
    if (hostaddr->len) {
        pool->keywords[3] = "hostaddr";
        pool->values[3] = (const char *) hostaddr->data;
    }
}


/* the fallback application_name, so that each target's sessions show */

void
ngx_http_customer_pg_pool_application(ngx_http_customer_pg_pool_t *pool,
    const char *name)
{
    pool->values[1] = name;
}


void
ngx_http_customer_pg_pool_destroy(ngx_http_customer_pg_pool_t *pool)
{
    ngx_uint_t  i;

    if (pool->gather.posted) {
        ngx_delete_posted_event(&pool->gather);
    }

    for (i = 0; i < pool->size; i++) {
        if (pool->conns[i].state != NGX_HTTP_CUSTOMER_PG_FREE) {
            ngx_http_customer_pg_close(&pool->conns[i]);
        }
    }
}


/*
 * st may be another worker's to read (the metrics zone): each of its
 * fields is written once, with its value
 */

void
ngx_http_customer_pg_stats(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_stats_t *st)
{
    ngx_http_customer_pg_stats_t  now;

    now = pool->counts;
    now.size = pool->size;
    now.live = pool->nlive;
    now.idle = pool->nidle;
    now.inflight = pool->nflight;
    now.waiting = pool->nwaiting;

    *st = now;
}


ngx_http_customer_pg_query_t *
ngx_http_customer_pg_query_create(ngx_pool_t *p, ngx_log_t *log)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_customer_pg_query_t  *q;

    q = ngx_pcalloc(p, sizeof(ngx_http_customer_pg_query_t));
    if (q == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(p, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_customer_pg_query_cleanup;
    cln->data = q;

    q->log = log;
    q->event.handler = ngx_http_customer_pg_query_handler;
    q->event.data = q;
    q->event.log = log;

    return q;
}


void
ngx_http_customer_pg_run(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_query_t *q)
{
    /*
     * A query that has finished may be run again (the next chunk of a
     * download, a periodic check, a read that falls back to the primary):
     * each run starts unsent and with its one retry unused.
     */

    q->pool = pool;
    q->error = NGX_HTTP_CUSTOMER_PG_OK;
    q->retried = 0;
    q->sent = 0;

    ngx_add_timer(&q->event, pool->timeout);

    if (q->stmt->many && pool->depth > 1
        && ngx_http_customer_pg_groupable(q))
    {
        /* formed into groups at the end of this turn of the loop */
        q->state = NGX_HTTP_CUSTOMER_PG_Q_GATHERED;
        ngx_queue_insert_tail(&pool->gathered, &q->queue);

        if (!pool->gather.posted) {
            ngx_post_event(&pool->gather, &ngx_posted_events);
        }

        return;
    }

    ngx_http_customer_pg_dispatch(pool, q);
}


static void
ngx_http_customer_pg_dispatch(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_query_t *q)
{
    ngx_http_customer_pg_conn_t  *pc;

    if (ngx_queue_empty(&pool->waiting)) {
        pc = ngx_http_customer_pg_pick(pool, q);

        if (pc) {
            ngx_http_customer_pg_send(pc, q);
            return;
        }
    }

    /* a request waiting for a connection that is being opened is fine */

    if (pool->nwaiting >= pool->max_waiting + pool->nconnecting
                         + (pool->size - pool->nlive))
    {
        ngx_log_error(NGX_LOG_ERR, q->log, 0,
                      "customer: %ui requests already wait for a "
                      "PostgreSQL connection (customer_db_queue)",
                      pool->nwaiting);
        ngx_http_customer_pg_post(q, NGX_HTTP_CUSTOMER_PG_BUSY);
        return;
    }

    if (pool->nlive == 0
        && (ngx_msec_int_t) (pool->retry_at - ngx_current_msec) > 0)
    {
        /* the database refused us a moment ago: fail fast, do not pile up */
        ngx_http_customer_pg_post(q, NGX_HTTP_CUSTOMER_PG_UNAVAILABLE);
        return;
    }

    q->state = NGX_HTTP_CUSTOMER_PG_Q_WAITING;
    ngx_queue_insert_tail(&pool->waiting, &q->queue);
    pool->nwaiting++;

    ngx_http_customer_pg_grow(pool);
}


/* a key and other parameters short enough to be copied into a group */

static ngx_uint_t
ngx_http_customer_pg_groupable(ngx_http_customer_pg_query_t *q)
{
    size_t      len;
    ngx_uint_t  i;

    if (q->pre || q->values[0] == NULL
        || ngx_strlen(q->values[0]) > NGX_HTTP_CUSTOMER_PG_MANY_KEY)
    {
        return 0;
    }

    len = 0;

    for (i = 1; i < q->stmt->nparams; i++) {
        if (q->values[i]) {
            len += ngx_strlen(q->values[i]) + 1;
        }
    }

    return len <= NGX_HTTP_CUSTOMER_PG_MANY_REST;
}


/*
 * The end of a turn of the loop: the gathered reads, in their order, form
 * groups of those alike (the same statement, the same other parameters).
 * A read with none alike among the next NGX_HTTP_CUSTOMER_PG_MAX_MANY, or
 * with no group to be had, runs alone: the work of a turn stays linear in
 * its reads even when none are alike (each Customer's own reads differ).
 */

static void
ngx_http_customer_pg_gather_handler(ngx_event_t *ev)
{
    u_char                        *p, *k;
    ngx_uint_t                     i, scan;
    ngx_queue_t                   *x, *y, *next;
    ngx_http_customer_pg_pool_t   *pool;
    ngx_http_customer_pg_group_t  *g;
    ngx_http_customer_pg_query_t  *q, *w;

    pool = ev->data;

    while (!ngx_queue_empty(&pool->gathered)) {
        x = ngx_queue_head(&pool->gathered);
        q = ngx_queue_data(x, ngx_http_customer_pg_query_t, queue);
        g = NULL;
        scan = 0;

        for (y = ngx_queue_next(x);
             y != ngx_queue_sentinel(&pool->gathered)
             && scan++ < NGX_HTTP_CUSTOMER_PG_MAX_MANY;
             y = next)
        {
            next = ngx_queue_next(y);
            w = ngx_queue_data(y, ngx_http_customer_pg_query_t, queue);

            if (!ngx_http_customer_pg_alike(q, w)) {
                continue;
            }

            if (g == NULL) {
                g = ngx_http_customer_pg_group(pool, q);
                if (g == NULL) {
                    break;
                }

                ngx_queue_remove(x);
                q->state = NGX_HTTP_CUSTOMER_PG_Q_GROUPED;
                q->group = g;
                q->row = 0;
                g->members[0] = q;
                g->n = 1;
            }

            ngx_queue_remove(y);
            w->state = NGX_HTTP_CUSTOMER_PG_Q_GROUPED;
            w->group = g;
            w->row = g->n;
            g->members[g->n++] = w;

            if (g->n == NGX_HTTP_CUSTOMER_PG_MAX_MANY) {
                break;
            }
        }

        if (g == NULL) {
            ngx_queue_remove(x);
            q->state = NGX_HTTP_CUSTOMER_PG_Q_NEW;
            ngx_http_customer_pg_dispatch(pool, q);
            continue;
        }

        /* the keys as an array literal, each quoted */

        p = g->keys;
        *p++ = '{';

        for (i = 0; i < g->n; i++) {
            if (i) {
                *p++ = ',';
            }

            *p++ = '"';

            for (k = (u_char *) g->members[i]->values[0]; *k; k++) {
                if (*k == '"' || *k == '\\') {
                    *p++ = '\\';
                }

                *p++ = *k;
            }

            *p++ = '"';
        }

        *p++ = '}';
        *p = '\0';

        pool->counts.groups++;
        pool->counts.grouped += g->n;

        ngx_http_customer_pg_run(pool, &g->q);
    }
}


static ngx_uint_t
ngx_http_customer_pg_alike(ngx_http_customer_pg_query_t *a,
    ngx_http_customer_pg_query_t *b)
{
    ngx_uint_t  i;

    if (a->stmt != b->stmt) {
        return 0;
    }

    for (i = 1; i < a->stmt->nparams; i++) {
        if (a->values[i] == NULL || b->values[i] == NULL) {
            if (a->values[i] != b->values[i]) {
                return 0;
            }

            continue;
        }

        if (ngx_strcmp(a->values[i], b->values[i]) != 0) {
            return 0;
        }
    }

    return 1;
}


/*
 * A group for reads alike q, with q's other parameters: a free one, or a
 * new one while there are fewer than the pool could have in flight.
 */

static ngx_http_customer_pg_group_t *
ngx_http_customer_pg_group(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_query_t *q)
{
    u_char                        *p;
    ngx_uint_t                     i;
    ngx_queue_t                   *x;
    ngx_http_customer_pg_group_t  *g;

    if (!ngx_queue_empty(&pool->groups)) {
        x = ngx_queue_head(&pool->groups);
        ngx_queue_remove(x);
        g = ngx_queue_data(x, ngx_http_customer_pg_group_t, queue);

    } else {
        if (pool->ngroups >= pool->size * pool->ring) {
            return NULL;
        }

        g = ngx_pcalloc(pool->cycle_pool,
                        sizeof(ngx_http_customer_pg_group_t));
        if (g == NULL) {
            return NULL;
        }

        pool->ngroups++;

        g->q.log = pool->log;
        g->q.handler = ngx_http_customer_pg_grouped;
        g->q.data = g;
        g->q.event.handler = ngx_http_customer_pg_query_handler;
        g->q.event.data = &g->q;
        g->q.event.log = pool->log;
    }

    g->q.stmt = q->stmt->many;
    g->q.values[0] = (const char *) g->keys;
    g->n = 0;

    p = g->rest;

    for (i = 1; i < q->stmt->nparams; i++) {
        if (q->values[i] == NULL) {
            g->q.values[i] = NULL;
            continue;
        }

        g->q.values[i] = (const char *) p;
        p = ngx_cpymem(p, q->values[i], ngx_strlen(q->values[i]) + 1);
    }

    return g;
}


/*
 * The group's execution answered: each member that is still there gets a
 * result of its own row (none where the key found none), or the error or
 * failure all of them share, as if it had run alone.
 */

static void
ngx_http_customer_pg_grouped(ngx_http_customer_pg_query_t *gq,
    PGresult *res)
{
    PGresult                      *r;
    ngx_uint_t                     i;
    ngx_http_customer_pg_group_t  *g;
    ngx_http_customer_pg_query_t  *w;

    g = gq->data;

    for (i = 0; i < g->n; i++) {
        w = g->members[i];

        if (w == NULL) {
            /* its request went away, or it timed out */
            continue;
        }

        g->members[i] = NULL;
        w->group = NULL;
        r = res;

        if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
            r = ngx_http_customer_pg_row(res, i);

            if (r == NULL) {
                ngx_log_error(NGX_LOG_ALERT, w->log, 0,
                              "customer: no memory for a read's row");
                ngx_http_customer_pg_finish(w, NULL,
                                            NGX_HTTP_CUSTOMER_PG_LOST);
                continue;
            }
        }

        ngx_http_customer_pg_finish(w, r, gq->error);

        if (r != res) {
            PQclear(r);
        }
    }

    g->n = 0;
    ngx_queue_insert_head(&gq->pool->groups, &g->queue);
}


/* a read leaves before its group was formed, or before it answered */

static void
ngx_http_customer_pg_ungroup(ngx_http_customer_pg_query_t *q)
{
    ngx_http_customer_pg_group_t  *g;

    if (q->state == NGX_HTTP_CUSTOMER_PG_Q_GATHERED) {
        ngx_queue_remove(&q->queue);
        return;
    }

    g = q->group;
    g->members[q->row] = NULL;
    q->group = NULL;
}


/* row of res as a result of its own: no row where its first column is NULL */

static PGresult *
ngx_http_customer_pg_row(PGresult *res, ngx_uint_t row)
{
    int        f, n;
    PGresult  *r;

    r = PQcopyResult(res, PG_COPYRES_ATTRS);
    if (r == NULL) {
        return NULL;
    }

    if ((int) row >= PQntuples(res) || PQgetisnull(res, row, 0)) {
        return r;
    }

    n = PQnfields(res);

    for (f = 0; f < n; f++) {
        if (!PQsetvalue(r, 0, f,
                        PQgetisnull(res, row, f)
                        ? NULL : PQgetvalue(res, row, f),
                        PQgetisnull(res, row, f)
                        ? -1 : PQgetlength(res, row, f)))
        {
            PQclear(r);
            return NULL;
        }
    }

    return r;
}


/*
 * For a shared statement, a connection whose batch is being filled (in
 * this turn of the loop, or held until the batch ahead of it has been
 * answered).  Else, once half of the live connections are busy, the
 * least loaded busy one that runs only shared statements and has room,
 * where the read opens the next batch; else an idle connection; else
 * that busy one after all.  While most of the pool is idle a read goes
 * out at once on a connection of its own; beyond that reads gather in
 * batches, which is where the server's and the worker's time per read
 * drops the most (one transaction, one read and one write on either side
 * per batch instead of per read).
 */

static ngx_http_customer_pg_conn_t *
ngx_http_customer_pg_pick(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_query_t *q)
{
    ngx_uint_t                    i, shared, busy;
    ngx_queue_t                  *x;
    ngx_http_customer_pg_conn_t  *pc, *best;

    shared = q->stmt->shared && pool->depth > 1;
    best = NULL;

    for (i = 0; shared && i < pool->size; i++) {
        pc = &pool->conns[i];

        if (pc->state != NGX_HTTP_CUSTOMER_PG_BUSY || pc->exclusive
            || pc->stalled || pc->ending || pc->nopen >= pool->depth
            || ngx_current_msec - pc->head_at >= NGX_HTTP_CUSTOMER_PG_SLOW)
        {
            continue;
        }

        if (pc->nopen) {
            return pc;
        }

        if (best == NULL || pc->nflight < best->nflight) {
            best = pc;
        }
    }

    busy = pool->nlive - pool->nidle - pool->nconnecting;

    if (best && 2 * busy >= pool->nlive) {
        return best;
    }

    while (!ngx_queue_empty(&pool->idle)) {
        x = ngx_queue_head(&pool->idle);
        pc = ngx_queue_data(x, ngx_http_customer_pg_conn_t, queue);

        /* broken, or closed by the server (a write asks the socket) */

        if (PQstatus(pc->pgconn) != CONNECTION_OK || pc->ending
            || pc->connection->read->pending_eof || pc->connection->close
            || (!q->stmt->shared && ngx_http_customer_pg_spoke(pc)))
        {
            ngx_log_error(NGX_LOG_INFO, &pc->log, 0,
                          "customer: an idle PostgreSQL connection was "
                          "closed or broken; a request takes another");
            ngx_http_customer_pg_close(pc);
            continue;
        }

        return pc;
    }

    return best;
}


/*
 * Whether the server sent anything on an idle connection, or closed it.
 * It sends nothing unasked there but the FATAL before it ends a session
 * (pg_terminate_backend, a shutdown).  Asked on an idle read event, and
 * before a write takes an idle connection, as that event may still wait
 * in this turn of the loop: a write sent on a closed connection has an
 * unknown outcome and is never sent again, while one sent elsewhere just
 * runs.  A read that meets the close is sent again anyway.
 */

static ngx_int_t
ngx_http_customer_pg_spoke(ngx_http_customer_pg_conn_t *pc)
{
    u_char   c;
    ssize_t  n;

    n = recv(pc->connection->fd, &c, 1, MSG_PEEK|MSG_DONTWAIT);

    return !(n == -1 && ngx_socket_errno == NGX_EAGAIN);
}


static void
ngx_http_customer_pg_grow(ngx_http_customer_pg_pool_t *pool)
{
    while (pool->nconnecting < pool->nwaiting && pool->nlive < pool->size) {

        if ((ngx_msec_int_t) (pool->retry_at - ngx_current_msec) > 0) {

            if (pool->nlive == 0) {
                ngx_http_customer_pg_fail_waiting(pool,
                                          NGX_HTTP_CUSTOMER_PG_UNAVAILABLE);
            }

            /* else the waiting get one of the live connections */
            return;
        }

        ngx_http_customer_pg_connect(pool);
    }
}


static void
ngx_http_customer_pg_connect(ngx_http_customer_pg_pool_t *pool)
{
    PGconn                       *pg;
    ngx_socket_t                  fd;
    ngx_queue_t                  *x;
    ngx_connection_t             *c;
    ngx_http_customer_pg_conn_t  *pc;

    x = ngx_queue_head(&pool->free);
    pc = ngx_queue_data(x, ngx_http_customer_pg_conn_t, queue);

    pc->log = *pool->log;
    pc->log.action = "connecting to PostgreSQL";

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, &pc->log, 0,
                   "customer pg connect");

    pg = PQconnectStartParams(pool->keywords, pool->values, 1);

    if (pg == NULL) {
        ngx_log_error(NGX_LOG_ERR, &pc->log, 0,
                      "customer: PQconnectStartParams() failed");
        ngx_http_customer_pg_connect_failed(pool);
        return;
    }

    if (PQstatus(pg) == CONNECTION_BAD
        || PQsetnonblocking(pg, 1) == -1
        || (fd = PQsocket(pg)) == -1)
    {
        ngx_log_error(NGX_LOG_ERR, &pc->log, 0,
                      "customer: %s", PQerrorMessage(pg));
        PQfinish(pg);
        ngx_http_customer_pg_connect_failed(pool);
        return;
    }

    c = ngx_get_connection(fd, &pc->log);
    if (c == NULL) {
        PQfinish(pg);
        ngx_http_customer_pg_connect_failed(pool);
        return;
    }

    ngx_queue_remove(x);

    pc->pgconn = pg;
    pc->connection = c;
    pc->sock_ino = ngx_http_customer_pg_sock_ino(fd);
    pc->state = NGX_HTTP_CUSTOMER_PG_CONNECTING;
    pc->head = 0;
    pc->nflight = 0;
    pc->nopen = 0;
    pc->held = 0;
    pc->gen++;
    pc->reused = 0;
    pc->exclusive = 0;
    pc->stalled = 0;
    pc->plan = NGX_HTTP_CUSTOMER_PG_PLAN_UNKNOWN;
    ngx_memzero(pc->prepared, sizeof(pc->prepared));

    c->data = pc;
    c->log = &pc->log;
    c->read->log = &pc->log;
    c->write->log = &pc->log;
    c->read->handler = ngx_http_customer_pg_connect_handler;
    c->write->handler = ngx_http_customer_pg_connect_handler;

    pool->nlive++;
    pool->nconnecting++;

    /* libpq: start as if PQconnectPoll() had asked for writing */

    if (ngx_http_customer_pg_want(pc, 0, 1) != NGX_OK) {
        ngx_http_customer_pg_close(pc);
        ngx_http_customer_pg_connect_failed(pool);
        return;
    }

    ngx_add_timer(c->read, pool->timeout);
}


static void
ngx_http_customer_pg_connect_handler(ngx_event_t *ev)
{
    ino_t                         ino;
    PGconn                       *pg;
    ngx_socket_t                  fd;
    ngx_connection_t             *c;
    PostgresPollingStatusType     st;
    ngx_http_customer_pg_conn_t  *pc;
    ngx_http_customer_pg_pool_t  *pool;

    c = ev->data;
    pc = c->data;
    pool = pc->pool;
    pg = pc->pgconn;

    if (ev->timedout || c->close) {
        ngx_log_error(NGX_LOG_ERR, &pc->log, NGX_ETIMEDOUT,
                      "customer: PostgreSQL connect timed out");
        ngx_http_customer_pg_close(pc);
        ngx_http_customer_pg_connect_failed(pool);
        return;
    }

    st = PQconnectPoll(pg);

    fd = PQsocket(pg);

    /*
     * libpq closes its socket and opens another when it moves on to the
     * next host or tries again without SSL, and the new one usually gets
     * the same number: the inode tells them apart.  The old socket left
     * epoll when it was closed, so the new one is registered afresh.
     */

    if (fd != -1) {
        ino = ngx_http_customer_pg_sock_ino(fd);

        if (fd != c->fd || ino != pc->sock_ino) {
            c->read->active = 0;
            c->write->active = 0;
            c->fd = fd;
            pc->sock_ino = ino;
        }
    }

    switch (st) {

    case PGRES_POLLING_READING:
        if (ngx_http_customer_pg_want(pc, 1, 0) != NGX_OK) {
            break;
        }
        return;

    case PGRES_POLLING_WRITING:
        /* level-triggered: an already writable socket reports again */
        if (ngx_http_customer_pg_want(pc, 0, 1) != NGX_OK) {
            break;
        }
        return;

    case PGRES_POLLING_OK:
        if (!PQenterPipelineMode(pg)) {
            ngx_log_error(NGX_LOG_ERR, &pc->log, 0,
                          "customer: PQenterPipelineMode() failed: %s",
                          PQerrorMessage(pg));
            break;
        }

        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        pool->nconnecting--;
        pool->counts.connects++;
        pool->counts.backoff = 0;

        pc->state = NGX_HTTP_CUSTOMER_PG_IDLE;
        pc->log.action = "talking to PostgreSQL";
        c->read->handler = ngx_http_customer_pg_io_handler;
        c->write->handler = ngx_http_customer_pg_io_handler;

        if (ngx_http_customer_pg_want(pc, 1, 0) != NGX_OK) {
            break;
        }

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, &pc->log, 0,
                       "customer pg connected, %ui live", pool->nlive);

        ngx_http_customer_pg_idle(pc);
        ngx_http_customer_pg_serve(pool);
        return;

    default:
        ngx_log_error(NGX_LOG_ERR, &pc->log, 0,
                      "customer: %s", PQerrorMessage(pg));
        break;
    }

    ngx_http_customer_pg_close(pc);
    ngx_http_customer_pg_connect_failed(pool);
}


static ino_t
ngx_http_customer_pg_sock_ino(ngx_socket_t fd)
{
    struct stat  st;

    if (fstat(fd, &st) == -1) {
        return 0;
    }

    return st.st_ino;
}


static void
ngx_http_customer_pg_connect_failed(ngx_http_customer_pg_pool_t *pool)
{
    pool->counts.failures++;

    if (pool->counts.backoff == 0) {
        pool->counts.backoff = NGX_HTTP_CUSTOMER_PG_BACKOFF_MIN;

    } else {
        pool->counts.backoff = ngx_min(pool->counts.backoff * 2,
                                       NGX_HTTP_CUSTOMER_PG_BACKOFF_MAX);
    }

    pool->retry_at = ngx_current_msec + pool->counts.backoff;

    if (pool->nlive == 0) {
        ngx_http_customer_pg_fail_waiting(pool,
                                          NGX_HTTP_CUSTOMER_PG_UNAVAILABLE);
    }
}


static ngx_int_t
ngx_http_customer_pg_want(ngx_http_customer_pg_conn_t *pc, ngx_uint_t rd,
    ngx_uint_t wr)
{
    ngx_int_t     rc, event;
    ngx_uint_t    i, on;
    ngx_event_t  *ev;

    rc = NGX_OK;

    /* the read event, then the write event: active only while wanted */

    for (i = 0; i < 2 && rc == NGX_OK; i++) {
        ev = i ? pc->connection->write : pc->connection->read;
        event = i ? NGX_WRITE_EVENT : NGX_READ_EVENT;
        on = i ? wr : rd;

        if (on && !ev->active) {
            rc = ngx_add_event(ev, event, NGX_LEVEL_EVENT);

        } else if (!on && ev->active) {
            rc = ngx_del_event(ev, event, 0);
        }
    }

    return rc;
}


static void
ngx_http_customer_pg_idle(ngx_http_customer_pg_conn_t *pc)
{
    pc->state = NGX_HTTP_CUSTOMER_PG_IDLE;
    pc->exclusive = 0;
    pc->stalled = 0;
    pc->connection->idle = 1;

    if (pc->connection->read->timer_set) {
        ngx_del_timer(pc->connection->read);
    }
    ngx_queue_insert_head(&pc->pool->idle, &pc->queue);
    pc->pool->nidle++;
}


static void
ngx_http_customer_pg_serve(ngx_http_customer_pg_pool_t *pool)
{
    ngx_queue_t                   *x;
    ngx_http_customer_pg_conn_t   *pc;
    ngx_http_customer_pg_query_t  *q;

    while (!ngx_queue_empty(&pool->waiting)) {
        x = ngx_queue_head(&pool->waiting);
        q = ngx_queue_data(x, ngx_http_customer_pg_query_t, queue);

        pc = ngx_http_customer_pg_pick(pool, q);
        if (pc == NULL) {
            break;
        }

        ngx_queue_remove(x);
        pool->nwaiting--;

        if (q->stmt->batch && !q->retried && q->pre == NULL
            && pool->depth > 1)
        {
            ngx_http_customer_pg_batch(pc, q);
            continue;
        }

        ngx_http_customer_pg_send(pc, q);
    }

    ngx_http_customer_pg_grow(pool);
}


/*
 * Writes that may share a transaction, and waited for a connection: q and
 * those waiting behind it, in their order, up to customer_db_pipeline,
 * under one Sync.  Only writes that wait are gathered, so a write never
 * waits for a batch to fill: while connections are free, each goes out
 * at once and alone.  Sent once already (q->retried) or with a statement
 * of their own before them (q->pre), they go alone.
 */

static void
ngx_http_customer_pg_batch(ngx_http_customer_pg_conn_t *pc,
    ngx_http_customer_pg_query_t *q)
{
    ngx_uint_t                     n, gen, scan;
    ngx_queue_t                   *x, *next;
    ngx_http_customer_pg_pool_t   *pool;
    ngx_http_customer_pg_query_t  *w;

    pool = pc->pool;
    gen = pc->gen;

    pc->batch = 1;
    ngx_http_customer_pg_send(pc, q);

    x = ngx_queue_head(&pool->waiting);

    /* a long queue of reads is not walked for the writes among them */

    for (n = 1, scan = 0;
         n < pool->depth && x != ngx_queue_sentinel(&pool->waiting)
         && scan++ < NGX_HTTP_CUSTOMER_PG_SCAN;
         x = next)
    {
        next = ngx_queue_next(x);
        w = ngx_queue_data(x, ngx_http_customer_pg_query_t, queue);

        if (pc->gen != gen || pc->state != NGX_HTTP_CUSTOMER_PG_BUSY) {
            /* a send failed: the connection is gone */
            return;
        }

        if (!w->stmt->batch || w->retried || w->pre) {
            continue;
        }

        ngx_queue_remove(x);
        pool->nwaiting--;
        n++;

        ngx_http_customer_pg_send(pc, w);
    }

    if (pc->gen != gen || pc->state != NGX_HTTP_CUSTOMER_PG_BUSY) {
        return;
    }

    pc->batch = 0;

    if (n > 1) {
        pool->counts.batches++;
        pool->counts.batched += n;
    }

    ngx_http_customer_pg_flush(pc, 1);
}


static void
ngx_http_customer_pg_send(ngx_http_customer_pg_conn_t *pc,
    ngx_http_customer_pg_query_t *q)
{
    int                           formats[NGX_HTTP_CUSTOMER_PG_MAX_PARAMS];
    PGconn                       *pg;
    ngx_uint_t                    id, i, n, plan;
    ngx_http_customer_pg_slot_t  *slot;
    ngx_http_customer_pg_stmt_t  *stmt;

    pg = pc->pgconn;
    stmt = q->stmt;

    if (stmt->id == 0) {
        if (ngx_http_customer_pg_nstmts == NGX_HTTP_CUSTOMER_PG_MAX_STMTS) {
            ngx_log_error(NGX_LOG_ALERT, q->log, 0,
                          "customer: too many statements");
            ngx_http_customer_pg_post(q, NGX_HTTP_CUSTOMER_PG_LOST);
            return;
        }

        stmt->id = ++ngx_http_customer_pg_nstmts;
        ngx_sprintf((u_char *) stmt->name, "c%ui%Z", stmt->id);
    }

    id = stmt->id - 1;

    if (pc->state == NGX_HTTP_CUSTOMER_PG_IDLE) {
        ngx_queue_remove(&pc->queue);
        pc->pool->nidle--;
        pc->state = NGX_HTTP_CUSTOMER_PG_BUSY;
        pc->connection->idle = 0;
    }

    i = (pc->head + pc->nflight) % pc->pool->ring;
    slot = &pc->slots[i];
    slot->query = q;
    slot->result = NULL;
    slot->parse = 0;
    slot->groups = 1;
    slot->got_result = 0;
    slot->at_sync = !stmt->shared && !stmt->readonly;
    pc->nflight++;
    pc->pool->nflight++;

    if (!stmt->shared) {
        pc->exclusive = 1;
    }

    q->conn = pc;
    q->slot = i;
    q->state = NGX_HTTP_CUSTOMER_PG_Q_RUNNING;

    plan = stmt->readonly ? NGX_HTTP_CUSTOMER_PG_PLAN_AUTO
                          : NGX_HTTP_CUSTOMER_PG_PLAN_GENERIC;

    if (pc->plan != plan) {
        /* before the rest, like pre: the Parse result is still seen at 2 */
        if (!PQsendQueryParams(pg, plan == NGX_HTTP_CUSTOMER_PG_PLAN_AUTO
                                   ? "SET plan_cache_mode = auto"
                                   : "SET plan_cache_mode = "
                                     "force_generic_plan",
                               0, NULL, NULL, NULL, NULL, 0))
        {
            ngx_http_customer_pg_abort(pc, 0);
            return;
        }

        pc->plan = plan;
        slot->groups++;
    }

    if (q->pre) {
        /* first, so that the Parse result is still the one seen at 2 */
        if (!PQsendQueryParams(pg, q->pre, q->pre_nparams, NULL,
                               q->pre_values, NULL, NULL, 0))
        {
            ngx_http_customer_pg_abort(pc, 0);
            return;
        }

        slot->groups++;
    }

    if (!(pc->prepared[id / 64] & ((uint64_t) 1 << (id % 64)))) {
        if (!PQsendPrepare(pg, stmt->name, stmt->sql, stmt->nparams, NULL)) {
            ngx_http_customer_pg_abort(pc, 0);
            return;
        }

        pc->prepared[id / 64] |= (uint64_t) 1 << (id % 64);
        slot->parse = id + 1;
        slot->groups++;
    }

    if (stmt->binary) {
        for (n = 0; n < stmt->nparams; n++) {
            formats[n] = (stmt->binary >> n) & 1;
        }
    }

    if (!PQsendQueryPrepared(pg, stmt->name, stmt->nparams, q->values,
                             stmt->binary ? q->lengths : NULL,
                             stmt->binary ? formats : NULL,
                             stmt->bytes ? 1 : 0))
    {
        ngx_http_customer_pg_abort(pc, 0);
        return;
    }

    /* from here on its outcome is unknown until its result arrives */
    q->sent = 1;

    if (pc->nflight == 1) {
        ngx_http_customer_pg_watch(pc);
    }

    if (stmt->shared) {
        /* one Sync for the batch, at the end of this turn of the loop */

        pc->nopen++;

        if (!pc->sync.posted && !pc->held) {
            ngx_post_event(&pc->sync, &ngx_posted_events);
        }

        return;
    }

    if (pc->batch) {
        /* more writes follow under the same Sync */
        return;
    }

    ngx_http_customer_pg_flush(pc, 1);
}


static void
ngx_http_customer_pg_sync_handler(ngx_event_t *ev)
{
    ngx_http_customer_pg_conn_t  *pc = ev->data;

    /* nothing to send, or a held batch, which goes out from complete() */

    if (pc->state != NGX_HTTP_CUSTOMER_PG_BUSY || pc->nopen == 0
        || pc->held)
    {
        return;
    }

    ngx_http_customer_pg_sync(pc);
}


/*
 * The batch being filled goes out under its Sync, unless reads of an
 * earlier batch still wait for their results: then it is held, and sent
 * when the last of those completes.
 */

static void
ngx_http_customer_pg_sync(ngx_http_customer_pg_conn_t *pc)
{
    if (pc->nflight > pc->nopen) {
        pc->held = 1;
        return;
    }

    pc->held = 0;
    pc->nopen = 0;

    ngx_http_customer_pg_flush(pc, 1);
}


/* the stall timer runs for the oldest query in flight */

static void
ngx_http_customer_pg_watch(ngx_http_customer_pg_conn_t *pc)
{
    pc->head_at = ngx_current_msec;

    if (pc->pool->depth > 1) {
        ngx_add_timer(pc->connection->read, NGX_HTTP_CUSTOMER_PG_STALL);
    }
}


static void
ngx_http_customer_pg_stall(ngx_http_customer_pg_conn_t *pc)
{
    ngx_uint_t                     i, k, n;
    ngx_http_customer_pg_slot_t   *slot;
    ngx_http_customer_pg_pool_t   *pool;
    ngx_http_customer_pg_query_t  *q, *redo[NGX_HTTP_CUSTOMER_PG_MAX_RING];

    pool = pc->pool;
    pc->stalled = 1;
    n = 0;

    /*
     * reads behind the slow one go elsewhere; their answers here are lost.
     * Writes committing with it stay: sent elsewhere, they could run twice.
     */

    for (k = 1; k < pc->nflight; k++) {
        i = (pc->head + k) % pool->ring;
        slot = &pc->slots[i];
        q = slot->query;

        if (q == NULL || slot->got_result || slot->at_sync) {
            continue;
        }

        slot->query = NULL;
        q->conn = NULL;
        redo[n++] = q;
    }

    if (n) {
        ngx_log_error(NGX_LOG_INFO, &pc->log, 0,
                      "customer: a query runs long, %ui queued behind it "
                      "go to another connection", n);
    }

    while (n--) {
        ngx_http_customer_pg_requeue(redo[n]);
    }

    ngx_http_customer_pg_serve(pool);
}


/* with sync, a Sync first: what was sent before it is one transaction */

static void
ngx_http_customer_pg_flush(ngx_http_customer_pg_conn_t *pc, ngx_uint_t sync)
{
    int  rc;

    if (sync && !PQpipelineSync(pc->pgconn)) {
        ngx_http_customer_pg_abort(pc, 0);
        return;
    }

    rc = PQflush(pc->pgconn);

    if (rc == -1 || ngx_http_customer_pg_want(pc, 1, rc == 1) != NGX_OK) {
        ngx_http_customer_pg_abort(pc, 0);
    }
}


static void
ngx_http_customer_pg_io_handler(ngx_event_t *ev)
{
    PGconn                       *pg;
    PGresult                     *res;
    ngx_uint_t                    gen, nulls, id, k;
    ngx_connection_t             *c;
    ngx_http_customer_pg_slot_t  *slot;
    ngx_http_customer_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;
    pg = pc->pgconn;

    if (c->close) {
        /* graceful shutdown closes idle connections through here */
        ngx_http_customer_pg_close(pc);
        return;
    }

    if (ev->timedout) {
        ev->timedout = 0;

        if (pc->state == NGX_HTTP_CUSTOMER_PG_BUSY) {
            ngx_http_customer_pg_stall(pc);
        }

        return;
    }

    if (pc->state == NGX_HTTP_CUSTOMER_PG_IDLE) {

        /*
         * The server sends nothing unasked on an idle connection but the
         * FATAL before it ends the session, then the close.  Read by
         * libpq, that FATAL would leave the connection looking healthy
         * until the close comes, and a write taking it meanwhile would
         * have an unknown outcome: it is closed on the FATAL already.
         */

        if (!ngx_http_customer_pg_spoke(pc)) {
            return;
        }

        ngx_log_error(NGX_LOG_INFO, &pc->log, 0,
                      "customer: PostgreSQL closed an idle connection");
        ngx_http_customer_pg_close(pc);
        return;
    }

    if (c->write->active) {
        ngx_http_customer_pg_flush(pc, 0);

        if (ev->write || pc->state == NGX_HTTP_CUSTOMER_PG_FREE) {
            return;
        }
    }

    if (ev->write) {
        return;
    }

    if (!PQconsumeInput(pg)) {
        ngx_http_customer_pg_abort(pc, 0);
        return;
    }

    /*
     * Per query: [the Parse's result, NULL,] its result(s), NULL; a
     * PGRES_PIPELINE_SYNC ends each batch.  The first error wins;
     * otherwise the last result (the query's, after the Parse's) is the
     * one delivered.  A read is complete with its result; a write only
     * at its Sync's PGRES_PIPELINE_SYNC, which the server sends after the
     * commit: its rows may arrive before the commit (a backend killed
     * mid-commit flushes what it had buffered, a large result is flushed
     * early), and a write answered 2xx must have committed.  One that
     * loses its connection in between is "outcome unknown" (abort).  The
     * writes under one Sync wait for it together (pc->ndone of them have
     * their results); an error after the last one's results is the
     * commit's own, kept with the last one.
     */

    gen = pc->gen;
    nulls = 0;

    while (pc->nflight && !PQisBusy(pg)) {
        res = PQgetResult(pg);
        k = pc->ndone - (pc->ndone == pc->nflight);
        slot = &pc->slots[(pc->head + k) % pc->pool->ring];

        if (res == NULL) {
            if (++nulls > 1) {
                break;
            }

            if (pc->ndone == pc->nflight || --slot->groups) {
                continue;
            }

            if (slot->at_sync) {
                pc->ndone++;
                continue;
            }

        } else if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            nulls = 0;
            PQclear(res);

            if (pc->ndone == 0) {
                /* the end of an earlier batch of reads */
                continue;
            }

            /* the writes' transaction is committed (or rolled back) */

            ngx_http_customer_pg_commit(pc);

            if (pc->gen != gen || pc->state == NGX_HTTP_CUSTOMER_PG_FREE) {
                return;
            }

            continue;

        } else {
            nulls = 0;
            slot->got_result = 1;

            if (pc->ndone == pc->nflight) {
                pc->late = 1;
            }

            if (PQresultStatus(res) == PGRES_FATAL_ERROR
                || PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
            {
                /* a SET in a failed transaction is taken back */
                pc->plan = NGX_HTTP_CUSTOMER_PG_PLAN_UNKNOWN;

                if (ngx_http_customer_pg_failed(res,
                                                NGX_HTTP_CUSTOMER_PG_ENDING))
                {
                    pc->ending = 1;
                }
            }

            if (slot->groups == 2 && slot->parse
                && PQresultStatus(res) != PGRES_COMMAND_OK)
            {
                /* the Parse failed or was skipped: not prepared after all */
                id = slot->parse - 1;
                pc->prepared[id / 64] &= ~((uint64_t) 1 << (id % 64));
            }

            if (slot->result == NULL) {
                slot->result = res;

            } else if (PQresultStatus(slot->result) == PGRES_FATAL_ERROR) {
                PQclear(res);

            } else {
                PQclear(slot->result);
                slot->result = res;
            }

            continue;
        }

        ngx_http_customer_pg_complete(pc);

        if (pc->gen != gen || pc->state == NGX_HTTP_CUSTOMER_PG_FREE) {
            /* the handler's own query broke this connection */
            return;
        }
    }
}


/*
 * The Sync of pc->ndone writes has come: they committed together, or the
 * transaction was rolled back whole.  Alone, a write gets what it got, as
 * any write.  In a batch that failed, the members that did not fail it
 * never committed and are sent again, each alone, as are all of them when
 * the commit itself failed.  A deadlock's or a serialization failure's
 * victim that may share its transaction is sent again, even alone: it was
 * rolled back, and would most likely pass the next time.  They go back to
 * the head of the queue in their order, put back last first.
 */

static void
ngx_http_customer_pg_commit(ngx_http_customer_pg_conn_t *pc)
{
    PGresult                      *res;
    ngx_uint_t                     n, k, gen, failed, late;
    ngx_http_customer_pg_slot_t   *slot;
    ngx_http_customer_pg_query_t  *q;

    n = pc->ndone;
    late = pc->late;
    pc->ndone = 0;
    pc->late = 0;
    failed = late;

    for (k = 0; k < n; k++) {
        slot = &pc->slots[(pc->head + k) % pc->pool->ring];

        if (slot->result
            && PQresultStatus(slot->result) == PGRES_FATAL_ERROR)
        {
            failed = 1;
        }
    }

    for (k = n; failed && k-- > 0; /* void */) {
        slot = &pc->slots[(pc->head + k) % pc->pool->ring];
        q = slot->query;
        res = slot->result;

        if (q == NULL || res == NULL || q->retried) {
            continue;
        }

        if (!(n > 1 && (late || PQresultStatus(res) != PGRES_FATAL_ERROR))
            && !(q->stmt->batch
                 && ngx_http_customer_pg_failed(res,
                                        NGX_HTTP_CUSTOMER_PG_TRANSIENT)))
        {
            continue;
        }

        ngx_log_error(NGX_LOG_INFO, q->log, 0,
                      "customer: a write was rolled back (%s): sending it "
                      "again alone",
                      PQresultStatus(res) == PGRES_FATAL_ERROR
                      ? PQresultErrorMessage(res)
                      : "another write in its transaction failed");

        PQclear(res);
        slot->result = NULL;
        slot->query = NULL;

        q->retried = 1;
        q->conn = NULL;
        ngx_http_customer_pg_requeue(q);
    }

    gen = pc->gen;

    while (n--) {
        ngx_http_customer_pg_complete(pc);

        if (pc->gen != gen || pc->state == NGX_HTTP_CUSTOMER_PG_FREE) {
            return;
        }
    }
}


/*
 * Whether res failed with one of states, SQLSTATEs separated by spaces:
 * 40P01 and 40001 (a deadlock, a serialization failure) roll back what
 * may pass the next time; after 57P01, 57P02 and 57P03 (terminated, a
 * crash elsewhere, shutting down) the server ends the session.
 */

static ngx_uint_t
ngx_http_customer_pg_failed(PGresult *res, const char *states)
{
    char  *state;

    if (PQresultStatus(res) != PGRES_FATAL_ERROR) {
        return 0;
    }

    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    return state != NULL && ngx_strlen(state) == 5
           && ngx_strstr(states, state) != NULL;
}


/*
 * 26000, "prepared statement does not exist": the server lost what this
 * connection prepared (DISCARD ALL, DEALLOCATE, a transaction pooler that
 * handed the session to another server connection).  Forget them all,
 * except those whose Parse is still in flight, which settle their own bit.
 */

static ngx_uint_t
ngx_http_customer_pg_unprepared(ngx_http_customer_pg_conn_t *pc,
    PGresult *res)
{
    ngx_uint_t                    k, i, id;
    ngx_http_customer_pg_slot_t  *slot;

    if (!ngx_http_customer_pg_failed(res, "26000")) {
        return 0;
    }

    ngx_memzero(pc->prepared, sizeof(pc->prepared));

    for (k = 0; k < pc->nflight; k++) {
        i = (pc->head + k) % pc->pool->ring;
        slot = &pc->slots[i];

        if (slot->parse) {
            id = slot->parse - 1;
            pc->prepared[id / 64] |= (uint64_t) 1 << (id % 64);
        }
    }

    return 1;
}


static void
ngx_http_customer_pg_complete(ngx_http_customer_pg_conn_t *pc)
{
    PGresult                      *res;
    ngx_http_customer_pg_slot_t   *slot;
    ngx_http_customer_pg_query_t  *q;

    slot = &pc->slots[pc->head];

    q = slot->query;
    res = slot->result;
    slot->query = NULL;
    slot->result = NULL;

    pc->head = (pc->head + 1) % pc->pool->ring;
    pc->nflight--;
    pc->pool->nflight--;
    pc->reused = 1;

    if (pc->nflight == 0) {
        /* an unshared statement always runs alone: this ends it too */
        pc->held = 0;
        ngx_http_customer_pg_idle(pc);

    } else {
        /* the next one is the oldest now */
        pc->stalled = 0;
        ngx_http_customer_pg_watch(pc);

        if (pc->held && pc->nflight <= pc->nopen) {
            /* the batch ahead is answered: the held one goes */
            ngx_http_customer_pg_sync(pc);
        }
    }

    /*
     * It never ran, and is sent once more: another read in its batch
     * failed, or its statement is to be prepared again, or it is a read
     * whose session the server ended under it (a terminated backend, a
     * shutdown), which is what a lost connection is for a read
     */

    if (q != NULL && res != NULL && !q->retried
        && (PQresultStatus(res) == PGRES_PIPELINE_ABORTED
            || ngx_http_customer_pg_unprepared(pc, res)
            || ((q->stmt->shared || q->stmt->readonly)
                && ngx_http_customer_pg_failed(res,
                                               NGX_HTTP_CUSTOMER_PG_ENDING))))
    {
        if (ngx_http_customer_pg_failed(res, NGX_HTTP_CUSTOMER_PG_ENDING)) {
            ngx_log_error(NGX_LOG_INFO, q->log, 0,
                          "customer: retrying the query on another "
                          "connection: %s", PQresultErrorMessage(res));

        } else if (PQresultStatus(res) != PGRES_PIPELINE_ABORTED) {
            ngx_log_error(NGX_LOG_WARN, q->log, 0,
                          "customer: prepared statements were dropped on "
                          "the server (DISCARD ALL, a pooler?): preparing "
                          "again");
        }

        PQclear(res);
        res = NULL;

        q->retried = 1;
        q->conn = NULL;
        ngx_http_customer_pg_requeue(q);
        q = NULL;
    }

    if (q != NULL) {
        ngx_http_customer_pg_finish(q, res, NGX_HTTP_CUSTOMER_PG_OK);
    }

    if (res) {
        PQclear(res);
    }

    ngx_http_customer_pg_serve(pc->pool);
}


/*
 * The connection is unusable (broken, or a query on it timed out): close
 * it; a read that got no result yet is tried once more on another
 * connection when it is safe (its connection had served before, or it was
 * only caught behind the timed-out one), else it fails.  A write never is:
 * "no result seen" does not mean "not committed" (the commit happens at
 * Sync, and its answer can be what was lost).
 */

static void
ngx_http_customer_pg_abort(ngx_http_customer_pg_conn_t *pc,
    ngx_uint_t timedout)
{
    ngx_uint_t                     i, n, k, retry;
    ngx_http_customer_pg_slot_t   *slot;
    ngx_http_customer_pg_pool_t   *pool;
    ngx_http_customer_pg_query_t  *q, *redo[NGX_HTTP_CUSTOMER_PG_MAX_RING];

    pool = pc->pool;

    if (!timedout) {
        ngx_log_error(NGX_LOG_ERR, &pc->log, 0,
                      "customer: PostgreSQL connection failed: %s",
                      PQerrorMessage(pc->pgconn));
    }

    n = 0;

    for (k = 0; k < pc->nflight; k++) {
        i = (pc->head + k) % pool->ring;
        slot = &pc->slots[i];
        q = slot->query;

        if (q == NULL) {
            continue;
        }

        slot->query = NULL;
        q->conn = NULL;

        retry = !slot->got_result && !q->retried
                && (pc->reused || timedout)
                && (q->stmt->shared || q->stmt->readonly);

        if (retry) {
            redo[n++] = q;
            continue;
        }

        ngx_http_customer_pg_post(q, NGX_HTTP_CUSTOMER_PG_LOST);
    }

    ngx_http_customer_pg_close(pc);

    /* back to the head of the queue, in their order */

    while (n--) {
        q = redo[n];

        ngx_log_error(NGX_LOG_INFO, q->log, 0,
                      "customer: retrying the query on another connection");

        q->retried = 1;
        ngx_http_customer_pg_requeue(q);
    }

    ngx_http_customer_pg_serve(pool);
}


static void
ngx_http_customer_pg_close(ngx_http_customer_pg_conn_t *pc)
{
    ngx_uint_t                    k, i;
    ngx_connection_t             *c;
    ngx_http_customer_pg_slot_t  *slot;
    ngx_http_customer_pg_pool_t  *pool;

    pool = pc->pool;
    c = pc->connection;

    if (c) {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        /* libpq owns the socket: forget it here, PQfinish() closes it */

        if (ngx_del_conn) {
            ngx_del_conn(c, NGX_CLOSE_EVENT);

        } else {
            if (c->read->active) {
                ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
            }

            if (c->write->active) {
                ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
            }
        }

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        pc->connection = NULL;
    }

    if (pc->sync.posted) {
        ngx_delete_posted_event(&pc->sync);
    }

    for (k = 0; k < pc->nflight; k++) {
        i = (pc->head + k) % pool->ring;
        slot = &pc->slots[i];

        if (slot->query) {
            /* closed under a running query (shutdown): nobody to tell */
            slot->query->conn = NULL;
            slot->query->state = NGX_HTTP_CUSTOMER_PG_Q_DONE;
            slot->query = NULL;
        }

        if (slot->result) {
            PQclear(slot->result);
            slot->result = NULL;
        }
    }

    pool->nflight -= pc->nflight;
    pc->nflight = 0;
    pc->nopen = 0;
    pc->ndone = 0;
    pc->held = 0;
    pc->batch = 0;
    pc->late = 0;
    pc->ending = 0;
    pc->head = 0;

    if (pc->pgconn) {
        PQfinish(pc->pgconn);
        pc->pgconn = NULL;
    }

    switch (pc->state) {

    case NGX_HTTP_CUSTOMER_PG_FREE:
        return;

    case NGX_HTTP_CUSTOMER_PG_IDLE:
        ngx_queue_remove(&pc->queue);
        pool->nidle--;
        break;

    case NGX_HTTP_CUSTOMER_PG_CONNECTING:
        pool->nconnecting--;
        break;
    }

    pool->nlive--;
    pc->state = NGX_HTTP_CUSTOMER_PG_FREE;
    pc->exclusive = 0;
    ngx_queue_insert_tail(&pool->free, &pc->queue);
}


static void
ngx_http_customer_pg_fail_waiting(ngx_http_customer_pg_pool_t *pool,
    ngx_uint_t error)
{
    ngx_queue_t                   *x;
    ngx_http_customer_pg_query_t  *q;

    while (!ngx_queue_empty(&pool->waiting)) {
        x = ngx_queue_head(&pool->waiting);
        q = ngx_queue_data(x, ngx_http_customer_pg_query_t, queue);
        ngx_queue_remove(x);
        pool->nwaiting--;

        ngx_http_customer_pg_post(q, error);
    }
}


/* to the front of the queue: it was sent once already */

static void
ngx_http_customer_pg_requeue(ngx_http_customer_pg_query_t *q)
{
    q->state = NGX_HTTP_CUSTOMER_PG_Q_WAITING;
    ngx_queue_insert_head(&q->pool->waiting, &q->queue);
    q->pool->nwaiting++;
}


static void
ngx_http_customer_pg_post(ngx_http_customer_pg_query_t *q, ngx_uint_t error)
{
    q->state = NGX_HTTP_CUSTOMER_PG_Q_POSTED;
    q->error = error;
    q->conn = NULL;

    ngx_post_event(&q->event, &ngx_posted_events);
}


static void
ngx_http_customer_pg_finish(ngx_http_customer_pg_query_t *q, PGresult *res,
    ngx_uint_t error)
{
    if (q->event.timer_set) {
        ngx_del_timer(&q->event);
    }

    if (q->event.posted) {
        ngx_delete_posted_event(&q->event);
    }

    q->state = NGX_HTTP_CUSTOMER_PG_Q_DONE;
    q->conn = NULL;
    q->error = error;

    q->handler(q, res);
}


static void
ngx_http_customer_pg_query_handler(ngx_event_t *ev)
{
    int                            pid;
    ngx_http_customer_pg_conn_t   *pc;
    ngx_http_customer_pg_query_t  *q;

    q = ev->data;

    switch (q->state) {

    case NGX_HTTP_CUSTOMER_PG_Q_POSTED:
        ngx_http_customer_pg_finish(q, NULL, q->error);
        return;

    case NGX_HTTP_CUSTOMER_PG_Q_WAITING:
        ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                      "customer: no PostgreSQL connection within "
                      "customer_db_timeout");
        ngx_queue_remove(&q->queue);
        q->pool->nwaiting--;
        break;

    case NGX_HTTP_CUSTOMER_PG_Q_GATHERED:
    case NGX_HTTP_CUSTOMER_PG_Q_GROUPED:
        ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                      "customer: PostgreSQL query timed out");
        ngx_http_customer_pg_ungroup(q);
        break;

    case NGX_HTTP_CUSTOMER_PG_Q_RUNNING:
        ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                      "customer: PostgreSQL query timed out");

        /* PQcancel() blocks: drop the connection, end the backend */
        pc = q->conn;
        pid = PQbackendPID(pc->pgconn);
        pc->slots[q->slot].query = NULL;
        q->conn = NULL;
        ngx_http_customer_pg_abort(pc, 1);

        if (pid > 0 && q->stmt != &ngx_http_customer_pg_kill_sql) {
            ngx_http_customer_pg_terminate(q->pool, pid);
        }

        break;

    default:
        return;
    }

    ngx_http_customer_pg_finish(q, NULL, NGX_HTTP_CUSTOMER_PG_TIMEOUT);
}


static void
ngx_http_customer_pg_query_cleanup(void *data)
{
    ngx_http_customer_pg_query_t  *q = data;

    switch (q->state) {

    case NGX_HTTP_CUSTOMER_PG_Q_WAITING:
        ngx_queue_remove(&q->queue);
        q->pool->nwaiting--;
        break;

    case NGX_HTTP_CUSTOMER_PG_Q_RUNNING:
        /* the connection finishes the statement and drops the result */
        q->conn->slots[q->slot].query = NULL;
        break;

    case NGX_HTTP_CUSTOMER_PG_Q_GATHERED:
    case NGX_HTTP_CUSTOMER_PG_Q_GROUPED:
        /* the group runs on, and drops its row */
        ngx_http_customer_pg_ungroup(q);
        break;
    }

    q->state = NGX_HTTP_CUSTOMER_PG_Q_DONE;

    if (q->event.timer_set) {
        ngx_del_timer(&q->event);
    }

    if (q->event.posted) {
        ngx_delete_posted_event(&q->event);
    }
}


static void
ngx_http_customer_pg_terminate(ngx_http_customer_pg_pool_t *pool, int pid)
{
    char                          *p;
    ngx_uint_t                     i;
    ngx_http_customer_pg_query_t  *q;

    for (i = 0; i < NGX_HTTP_CUSTOMER_PG_KILLS; i++) {
        if (pool->kills[i].state == NGX_HTTP_CUSTOMER_PG_Q_DONE) {
            break;
        }
    }

    if (i == NGX_HTTP_CUSTOMER_PG_KILLS) {
        ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                      "customer: PostgreSQL backend %d of a timed out "
                      "query left running: too many terminations at once",
                      pid);
        return;
    }

    q = &pool->kills[i];
    p = pool->kill_pids + i * (NGX_INT_T_LEN + 1);
    *ngx_sprintf((u_char *) p, "%d", pid) = '\0';

    q->stmt = &ngx_http_customer_pg_kill_sql;
    q->values[0] = p;
    q->data = (void *) (intptr_t) pid;

    pool->counts.terminated++;

    ngx_http_customer_pg_run(pool, q);
}


static void
ngx_http_customer_pg_terminated(ngx_http_customer_pg_query_t *q,
    PGresult *res)
{
    int  pid;

    pid = (int) (intptr_t) q->data;

    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        ngx_log_error(NGX_LOG_WARN, q->log, 0,
                      "customer: terminated PostgreSQL backend %d of a "
                      "timed out query: %s", pid,
                      *PQgetvalue(res, 0, 0) == 't'
                      ? "it was still running" : "it had already ended");
        return;
    }

    ngx_log_error(NGX_LOG_ERR, q->log, 0,
                  "customer: could not terminate PostgreSQL backend %d of "
                  "a timed out query: %s", pid,
                  res ? PQresultErrorMessage(res) : "no connection");
}

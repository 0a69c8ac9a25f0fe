
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_customer_pg.h"


/*
 * A per-worker pool of non-blocking libpq connections driven by the nginx
 * event loop.
 *
 * Ownership: a query lives in its request's pool.  While it waits it is on
 * pool->waiting; while it runs, conn->query points to it.  Whatever ends
 * a query (a result, an error, its timeout, its request going away)
 * unlinks it from the pool first, then calls q->handler, and never touches
 * q again: the handler may finalize the request and free q's memory.
 * Results are delivered from connection event handlers; failures found
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

/* connection states */
#define NGX_HTTP_CUSTOMER_PG_FREE         0
#define NGX_HTTP_CUSTOMER_PG_CONNECTING   1
#define NGX_HTTP_CUSTOMER_PG_IDLE         2
#define NGX_HTTP_CUSTOMER_PG_PREPARE      3
#define NGX_HTTP_CUSTOMER_PG_QUERY        4

/* query states */
#define NGX_HTTP_CUSTOMER_PG_Q_NEW        0
#define NGX_HTTP_CUSTOMER_PG_Q_WAITING    1
#define NGX_HTTP_CUSTOMER_PG_Q_RUNNING    2
#define NGX_HTTP_CUSTOMER_PG_Q_POSTED     3
#define NGX_HTTP_CUSTOMER_PG_Q_DONE       4


struct ngx_http_customer_pg_conn_s {
    ngx_queue_t                       queue;     /* pool->free or ->idle */
    ngx_http_customer_pg_pool_t      *pool;
    PGconn                           *pgconn;
    ngx_connection_t                 *connection;
    ngx_http_customer_pg_query_t     *query;
    PGresult                         *result;    /* first result of a step */
    ngx_uint_t                        state;
    ngx_log_t                         log;
    uint64_t                          prepared[
                                      NGX_HTTP_CUSTOMER_PG_MAX_STMTS / 64];
    unsigned                          reused:1;  /* served a query before */
    unsigned                          got_result:1;
};


struct ngx_http_customer_pg_pool_s {
    ngx_http_customer_pg_conn_t      *conns;
    ngx_uint_t                        size;
    ngx_queue_t                       free;
    ngx_queue_t                       idle;
    ngx_queue_t                       waiting;
    ngx_uint_t                        nwaiting;
    ngx_uint_t                        max_waiting;
    ngx_uint_t                        nlive;
    ngx_uint_t                        nidle;
    ngx_uint_t                        nconnecting;
    ngx_uint_t                        connects;
    ngx_uint_t                        failures;
    ngx_msec_t                        timeout;
    ngx_msec_t                        backoff;
    ngx_msec_t                        retry_at;
    const char                       *keywords[4];
    const char                       *values[4];
    ngx_log_t                        *log;
};


static void ngx_http_customer_pg_grow(ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_connect(ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_connect_handler(ngx_event_t *ev);
static void ngx_http_customer_pg_connect_failed(
    ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_io_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_customer_pg_want(ngx_http_customer_pg_conn_t *pc,
    ngx_uint_t rd, ngx_uint_t wr);
static void ngx_http_customer_pg_send(ngx_http_customer_pg_conn_t *pc,
    ngx_http_customer_pg_query_t *q);
static void ngx_http_customer_pg_flush(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_step_done(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_fail(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_close(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_idle(ngx_http_customer_pg_conn_t *pc);
static ngx_int_t ngx_http_customer_pg_dead(ngx_http_customer_pg_conn_t *pc);
static void ngx_http_customer_pg_serve(ngx_http_customer_pg_pool_t *pool);
static void ngx_http_customer_pg_fail_waiting(
    ngx_http_customer_pg_pool_t *pool, ngx_uint_t error);
static void ngx_http_customer_pg_post(ngx_http_customer_pg_query_t *q,
    ngx_uint_t error);
static void ngx_http_customer_pg_finish(ngx_http_customer_pg_query_t *q,
    PGresult *res, ngx_uint_t error);
static void ngx_http_customer_pg_query_handler(ngx_event_t *ev);
static void ngx_http_customer_pg_query_cleanup(void *data);


static ngx_uint_t  ngx_http_customer_pg_nstmts;


ngx_http_customer_pg_pool_t *
ngx_http_customer_pg_pool_create(ngx_cycle_t *cycle, ngx_str_t *conninfo,
    ngx_uint_t size, ngx_msec_t timeout, ngx_uint_t queue)
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
    pool->max_waiting = queue;
    pool->timeout = timeout;
    pool->log = cycle->log;

    ngx_queue_init(&pool->free);
    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->waiting);

    for (i = 0; i < size; i++) {
        pool->conns[i].pool = pool;
        ngx_queue_insert_tail(&pool->free, &pool->conns[i].queue);
    }

    /*
     * The operator's string comes first and is expanded; the server-side
     * statement_timeout matches customer_db_timeout, so a statement we
     * gave up on (say, one waiting on a lock) is also cancelled there.
     */

    p = ngx_pnalloc(cycle->pool,
                    sizeof("-c statement_timeout=") + NGX_INT_T_LEN);
    if (p == NULL) {
        return NULL;
    }

    ngx_sprintf(p, "-c statement_timeout=%M%Z", timeout);

    pool->keywords[0] = "dbname";
    pool->values[0] = (const char *) conninfo->data;
    pool->keywords[1] = "fallback_application_name";
    pool->values[1] = "nginx-customer";
    pool->keywords[2] = "options";
    pool->values[2] = (const char *) p;

    return pool;
}


void
ngx_http_customer_pg_pool_destroy(ngx_http_customer_pg_pool_t *pool)
{
    ngx_uint_t  i;

    for (i = 0; i < pool->size; i++) {
        if (pool->conns[i].state != NGX_HTTP_CUSTOMER_PG_FREE) {
            pool->conns[i].query = NULL;
            ngx_http_customer_pg_close(&pool->conns[i]);
        }
    }
}


void
ngx_http_customer_pg_stats(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_stats_t *st)
{
    st->size = pool->size;
    st->live = pool->nlive;
    st->idle = pool->nidle;
    st->waiting = pool->nwaiting;
    st->connects = pool->connects;
    st->failures = pool->failures;
    st->backoff = pool->backoff;
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
    ngx_queue_t                  *x;
    ngx_http_customer_pg_conn_t  *pc;

    q->pool = pool;
    q->error = NGX_HTTP_CUSTOMER_PG_OK;

    ngx_add_timer(&q->event, pool->timeout);

    while (!ngx_queue_empty(&pool->idle)) {
        x = ngx_queue_head(&pool->idle);
        pc = ngx_queue_data(x, ngx_http_customer_pg_conn_t, queue);

        if (ngx_http_customer_pg_dead(pc)) {
            ngx_http_customer_pg_close(pc);
            continue;
        }

        ngx_queue_remove(x);
        pool->nidle--;

        ngx_http_customer_pg_send(pc, q);
        return;
    }

    if (pool->nwaiting >= pool->max_waiting) {
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


static void
ngx_http_customer_pg_grow(ngx_http_customer_pg_pool_t *pool)
{
    while (pool->nconnecting < pool->nwaiting && pool->nlive < pool->size) {

        if (pool->nlive == 0
            && (ngx_msec_int_t) (pool->retry_at - ngx_current_msec) > 0)
        {
            ngx_http_customer_pg_fail_waiting(pool,
                                          NGX_HTTP_CUSTOMER_PG_UNAVAILABLE);
            return;
        }

        if (pool->nlive > 0 && pool->backoff
            && (ngx_msec_int_t) (pool->retry_at - ngx_current_msec) > 0)
        {
            /* some connections live; the waiting will get one of those */
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
    pc->state = NGX_HTTP_CUSTOMER_PG_CONNECTING;
    pc->query = NULL;
    pc->result = NULL;
    pc->reused = 0;
    pc->got_result = 0;
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

    if (fd != -1 && fd != c->fd) {
        /* libpq opened another socket: the old one left epoll on close */
        c->read->active = 0;
        c->write->active = 0;
        c->fd = fd;
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
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        pool->nconnecting--;
        pool->connects++;
        pool->backoff = 0;

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


static void
ngx_http_customer_pg_connect_failed(ngx_http_customer_pg_pool_t *pool)
{
    pool->failures++;

    if (pool->backoff == 0) {
        pool->backoff = NGX_HTTP_CUSTOMER_PG_BACKOFF_MIN;

    } else {
        pool->backoff = ngx_min(pool->backoff * 2,
                                NGX_HTTP_CUSTOMER_PG_BACKOFF_MAX);
    }

    pool->retry_at = ngx_current_msec + pool->backoff;

    if (pool->nlive == 0) {
        ngx_http_customer_pg_fail_waiting(pool,
                                          NGX_HTTP_CUSTOMER_PG_UNAVAILABLE);
    }
}


static ngx_int_t
ngx_http_customer_pg_want(ngx_http_customer_pg_conn_t *pc, ngx_uint_t rd,
    ngx_uint_t wr)
{
    ngx_connection_t  *c;

    c = pc->connection;

    if (rd && !c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!rd && c->read->active) {
        if (ngx_del_event(c->read, NGX_READ_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (wr && !c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (!wr && c->write->active) {
        if (ngx_del_event(c->write, NGX_WRITE_EVENT, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_customer_pg_dead(ngx_http_customer_pg_conn_t *pc)
{
    return PQstatus(pc->pgconn) != CONNECTION_OK
           || pc->connection->read->pending_eof
           || pc->connection->close;
}


static void
ngx_http_customer_pg_idle(ngx_http_customer_pg_conn_t *pc)
{
    pc->state = NGX_HTTP_CUSTOMER_PG_IDLE;
    pc->connection->idle = 1;
    ngx_queue_insert_head(&pc->pool->idle, &pc->queue);
    pc->pool->nidle++;
}


static void
ngx_http_customer_pg_serve(ngx_http_customer_pg_pool_t *pool)
{
    ngx_queue_t                   *x;
    ngx_http_customer_pg_conn_t   *pc;
    ngx_http_customer_pg_query_t  *q;

    while (!ngx_queue_empty(&pool->waiting)
           && !ngx_queue_empty(&pool->idle))
    {
        x = ngx_queue_head(&pool->idle);
        pc = ngx_queue_data(x, ngx_http_customer_pg_conn_t, queue);

        if (ngx_http_customer_pg_dead(pc)) {
            ngx_http_customer_pg_close(pc);
            continue;
        }

        ngx_queue_remove(x);
        pool->nidle--;

        x = ngx_queue_head(&pool->waiting);
        q = ngx_queue_data(x, ngx_http_customer_pg_query_t, queue);
        ngx_queue_remove(x);
        pool->nwaiting--;

        ngx_http_customer_pg_send(pc, q);
    }

    ngx_http_customer_pg_grow(pool);
}


static void
ngx_http_customer_pg_send(ngx_http_customer_pg_conn_t *pc,
    ngx_http_customer_pg_query_t *q)
{
    int                           ok;
    ngx_uint_t                    id;
    ngx_http_customer_pg_stmt_t  *stmt;

    stmt = q->stmt;

    if (stmt->id == 0) {
        if (ngx_http_customer_pg_nstmts == NGX_HTTP_CUSTOMER_PG_MAX_STMTS) {
            ngx_log_error(NGX_LOG_ALERT, q->log, 0,
                          "customer: too many statements");
            ngx_http_customer_pg_idle(pc);
            ngx_http_customer_pg_post(q, NGX_HTTP_CUSTOMER_PG_LOST);
            return;
        }

        stmt->id = ++ngx_http_customer_pg_nstmts;
        ngx_sprintf((u_char *) stmt->name, "c%ui%Z", stmt->id);
    }

    id = stmt->id - 1;

    pc->query = q;
    pc->result = NULL;
    pc->got_result = 0;
    pc->connection->idle = 0;
    q->conn = pc;
    q->state = NGX_HTTP_CUSTOMER_PG_Q_RUNNING;

    if (pc->prepared[id / 64] & ((uint64_t) 1 << (id % 64))) {
        pc->state = NGX_HTTP_CUSTOMER_PG_QUERY;
        ok = PQsendQueryPrepared(pc->pgconn, stmt->name, stmt->nparams,
                                 q->values, NULL, NULL, 0);

    } else {
        pc->state = NGX_HTTP_CUSTOMER_PG_PREPARE;
        ok = PQsendPrepare(pc->pgconn, stmt->name, stmt->sql,
                           stmt->nparams, NULL);
    }

    if (!ok) {
        ngx_http_customer_pg_fail(pc);
        return;
    }

    ngx_http_customer_pg_flush(pc);
}


static void
ngx_http_customer_pg_flush(ngx_http_customer_pg_conn_t *pc)
{
    int  rc;

    rc = PQflush(pc->pgconn);

    if (rc == -1 || ngx_http_customer_pg_want(pc, 1, rc == 1) != NGX_OK) {
        ngx_http_customer_pg_fail(pc);
    }
}


static void
ngx_http_customer_pg_io_handler(ngx_event_t *ev)
{
    PGconn                       *pg;
    PGresult                     *res;
    PGnotify                     *n;
    ngx_connection_t             *c;
    ngx_http_customer_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;
    pg = pc->pgconn;

    if (c->close) {
        /* graceful shutdown closes idle connections through here */
        ngx_http_customer_pg_close(pc);
        return;
    }

    if (pc->state == NGX_HTTP_CUSTOMER_PG_IDLE) {

        if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK
            || ev->pending_eof)
        {
            ngx_log_error(NGX_LOG_INFO, &pc->log, 0,
                          "customer: PostgreSQL closed an idle connection");
            ngx_http_customer_pg_close(pc);
            return;
        }

        while ((n = PQnotifies(pg)) != NULL) {
            PQfreemem(n);
        }

        return;
    }

    if (c->write->active) {
        ngx_http_customer_pg_flush(pc);

        if (ev->write || pc->state == NGX_HTTP_CUSTOMER_PG_FREE) {
            return;
        }
    }

    if (ev->write) {
        return;
    }

    if (!PQconsumeInput(pg)) {
        ngx_http_customer_pg_fail(pc);
        return;
    }

    while (!PQisBusy(pg)) {
        res = PQgetResult(pg);

        if (res == NULL) {
            ngx_http_customer_pg_step_done(pc);
            return;
        }

        if (pc->state == NGX_HTTP_CUSTOMER_PG_QUERY) {
            pc->got_result = 1;
        }

        if (pc->result == NULL) {
            pc->result = res;

        } else {
            PQclear(res);
        }
    }
}


static void
ngx_http_customer_pg_step_done(ngx_http_customer_pg_conn_t *pc)
{
    ngx_uint_t                     id;
    PGresult                      *res;
    ngx_http_customer_pg_pool_t   *pool;
    ngx_http_customer_pg_query_t  *q;

    pool = pc->pool;
    res = pc->result;
    pc->result = NULL;
    q = pc->query;

    if (pc->state == NGX_HTTP_CUSTOMER_PG_PREPARE
        && res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK)
    {
        PQclear(res);

        if (q != NULL) {
            id = q->stmt->id - 1;
            pc->prepared[id / 64] |= (uint64_t) 1 << (id % 64);
            ngx_http_customer_pg_send(pc, q);
            return;
        }

        /* the request went away while we prepared: the statement is lost */
        ngx_http_customer_pg_idle(pc);
        ngx_http_customer_pg_serve(pool);
        return;
    }

    /* a query's result, or a failed PREPARE: both go to the handler */

    pc->reused = 1;
    pc->query = NULL;
    ngx_http_customer_pg_idle(pc);

    if (q != NULL) {
        ngx_http_customer_pg_finish(q, res, NGX_HTTP_CUSTOMER_PG_OK);
    }

    if (res) {
        PQclear(res);
    }

    ngx_http_customer_pg_serve(pool);
}


static void
ngx_http_customer_pg_fail(ngx_http_customer_pg_conn_t *pc)
{
    ngx_uint_t                     retry;
    ngx_http_customer_pg_pool_t   *pool;
    ngx_http_customer_pg_query_t  *q;

    pool = pc->pool;
    q = pc->query;
    pc->query = NULL;

    ngx_log_error(NGX_LOG_ERR, &pc->log, 0,
                  "customer: PostgreSQL connection failed: %s",
                  PQerrorMessage(pc->pgconn));

    retry = q != NULL && pc->reused && !pc->got_result && !q->retried;

    ngx_http_customer_pg_close(pc);

    if (q == NULL) {
        return;
    }

    q->conn = NULL;

    if (!retry) {
        ngx_http_customer_pg_post(q, NGX_HTTP_CUSTOMER_PG_LOST);
        return;
    }

    /* a pooled connection died before any result: once more, fresh */

    ngx_log_error(NGX_LOG_INFO, q->log, 0,
                  "customer: retrying the query on a new connection");

    q->retried = 1;
    q->state = NGX_HTTP_CUSTOMER_PG_Q_WAITING;
    ngx_queue_insert_head(&pool->waiting, &q->queue);
    pool->nwaiting++;

    ngx_http_customer_pg_serve(pool);
}


static void
ngx_http_customer_pg_close(ngx_http_customer_pg_conn_t *pc)
{
    ngx_connection_t             *c;
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

    if (pc->result) {
        PQclear(pc->result);
        pc->result = NULL;
    }

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

    case NGX_HTTP_CUSTOMER_PG_Q_RUNNING:
        ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                      "customer: PostgreSQL query timed out");

        /* PQcancel() blocks: drop the connection instead */
        pc = q->conn;
        pc->query = NULL;
        ngx_http_customer_pg_close(pc);
        ngx_http_customer_pg_serve(q->pool);
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
        q->conn->query = NULL;
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


/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_PG_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_PG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <libpq-fe.h>


#define NGX_HTTP_CUSTOMER_PG_MAX_STMTS    256   /* per worker */
#define NGX_HTTP_CUSTOMER_PG_MAX_PARAMS   16
#define NGX_HTTP_CUSTOMER_PG_MAX_DEPTH    64    /* queries per connection */
#define NGX_HTTP_CUSTOMER_PG_PRE_MAX      4     /* parameters of q->pre */

/* why a query ended without a result (q->error) */
#define NGX_HTTP_CUSTOMER_PG_OK           0
#define NGX_HTTP_CUSTOMER_PG_UNAVAILABLE  1   /* no connection could be had */
#define NGX_HTTP_CUSTOMER_PG_TIMEOUT      2   /* customer_db_timeout passed */
#define NGX_HTTP_CUSTOMER_PG_BUSY         3   /* the wait queue is full */
#define NGX_HTTP_CUSTOMER_PG_LOST         4   /* connection lost in a query */


typedef struct ngx_http_customer_pg_pool_s   ngx_http_customer_pg_pool_t;
typedef struct ngx_http_customer_pg_conn_s   ngx_http_customer_pg_conn_t;
typedef struct ngx_http_customer_pg_query_s  ngx_http_customer_pg_query_t;

/*
 * Called once per query, always from an event handler, never from inside
 * ngx_http_customer_pg_run().  res is NULL when q->error says why; it is
 * PQclear()ed by the pool after the call returns.
 */
typedef void (*ngx_http_customer_pg_handler_pt)(
    ngx_http_customer_pg_query_t *q, PGresult *res);


/*
 * A page of a customer's rows: $1 the customer, $2 a Customer's sub (NULL
 * for an Administrator).  total: the FROM and WHERE of what the total
 * counts, rows: the page's SELECT, ordered and limited (c is the
 * customer in both).  The total in every row, one row of NULLs after it
 * for an empty page, no row when the caller may not reach the customer.
 */
#define NGX_HTTP_CUSTOMER_PAGE_SQL(total, rows)                              \
    "SELECT n.total, p.* FROM customers c"                                  \
    " CROSS JOIN LATERAL (SELECT count(*) AS total FROM " total ") n"       \
    " LEFT JOIN LATERAL (" rows ") p ON true"                               \
    " WHERE c.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)"


/*
 * A statement, prepared on each connection the first time it runs there.
 * A "shared" statement is a cheap read (a lookup by key) that does not
 * wait on row locks: it may be pipelined behind other shared statements
 * on a busy connection, and is retried on another connection when its
 * own breaks.  Everything else, writes and reads that cost milliseconds
 * (lists, search, analytics), runs on a connection of its own: queued
 * behind each other they would hold up the cheap ones.  Of those, only
 * the ones marked readonly are sent again after a broken connection: a
 * write that saw no result may have committed all the same.  A read
 * marked replica (a list, a search, a history page, analytics, a
 * dashboard) may be answered a little stale: the caller's routing sends
 * it to a streaming replica when one is current enough.  A write marked
 * batch may share its transaction with other such writes: when they wait
 * for a connection, up to customer_db_pipeline of them go out under one
 * Sync and commit together (one commit, one WAL flush for all).  Its
 * statement answers a caller's mistakes as values rather than errors, so
 * that a batch rarely fails; when one does, the transaction is rolled
 * back whole, and the members that did not fail it are sent again,
 * each alone; a deadlock's or a serialization failure's victim is sent
 * again too, in a batch or alone.
 *
 * A shared read with many is a lookup by key ($1) that reads arriving in
 * the same turn of the loop share: those with the same statement and the
 * same other parameters become one execution of many, whose $1 is the
 * array of their keys and whose other parameters are theirs, and which
 * answers one row per key, in the array's order, with the same columns,
 * its first column NULL where the read alone would have found no row.
 * Each read is handed a result of its own row (or none), as if it had
 * run alone: the server plans and starts one statement for all of them.
 */
typedef struct ngx_http_customer_pg_stmt_s  ngx_http_customer_pg_stmt_t;

struct ngx_http_customer_pg_stmt_s {
    const char                       *sql;
    ngx_uint_t                        nparams;
    ngx_uint_t                        shared;
    ngx_uint_t                        id;        /* 1.., set on first use */
    char                              name[8];   /* "c<id>" */
    ngx_uint_t                        binary;    /* params sent as bytes:
                                                    bit n for $n+1, their
                                                    lengths in q->lengths */
    ngx_uint_t                        bytes;     /* results in binary */
    ngx_uint_t                        readonly;  /* an unshared read:
                                                    safe to send again */
    ngx_uint_t                        replica;   /* may read a replica */
    ngx_uint_t                        batch;     /* a write that may share
                                                    its transaction */
    ngx_http_customer_pg_stmt_t      *many;      /* the same read for many
                                                    keys at once (below) */
};


/*
 * A statement by kind: n parameters, and how the pool may run it.  A
 * write; a write that may share its transaction; an unshared read, safe
 * to send again; such a read that may be answered by a replica; a shared
 * read.
 */
#define NGX_HTTP_CUSTOMER_PG_WRITE(n, sql)                                   \
    { sql, n, 0, 0, "", 0, 0, 0, 0, 0, NULL }
#define NGX_HTTP_CUSTOMER_PG_BATCH(n, sql)                                   \
    { sql, n, 0, 0, "", 0, 0, 0, 0, 1, NULL }
#define NGX_HTTP_CUSTOMER_PG_READ(n, sql)                                    \
    { sql, n, 0, 0, "", 0, 0, 1, 0, 0, NULL }
#define NGX_HTTP_CUSTOMER_PG_LIST(n, sql)                                    \
    { sql, n, 0, 0, "", 0, 0, 1, 1, 0, NULL }
#define NGX_HTTP_CUSTOMER_PG_SHARED(n, sql)                                  \
    { sql, n, 1, 0, "", 0, 0, 0, 0, 0, NULL }
#define NGX_HTTP_CUSTOMER_PG_SHARED_MANY(n, sql, many)                       \
    { sql, n, 1, 0, "", 0, 0, 0, 0, 0, many }


struct ngx_http_customer_pg_query_s {
    ngx_queue_t                       queue;     /* in pool->waiting */
    ngx_http_customer_pg_stmt_t      *stmt;
    const char                       *values[NGX_HTTP_CUSTOMER_PG_MAX_PARAMS];
    int                               lengths[NGX_HTTP_CUSTOMER_PG_MAX_PARAMS];
    /*
     * A statement sent just before this one under the same Sync, so that
     * both are one transaction: if it fails the query does not run, and
     * its error is the query's result.  Sent unprepared, parameters as
     * text.
     */
    const char                       *pre;
    ngx_uint_t                        pre_nparams;
    const char                       *pre_values[NGX_HTTP_CUSTOMER_PG_PRE_MAX];
    ngx_http_customer_pg_handler_pt   handler;
    void                             *data;
    ngx_log_t                        *log;
    ngx_event_t                       event;     /* timeout, posted error */
    ngx_http_customer_pg_pool_t      *pool;
    ngx_http_customer_pg_conn_t      *conn;      /* while running */
    ngx_uint_t                        slot;      /* in conn's in-flight */
    ngx_uint_t                        state;
    ngx_uint_t                        error;
    void                             *group;     /* reads sharing many */
    ngx_uint_t                        row;       /* its row there */
    unsigned                          retried:1;
    unsigned                          sent:1;    /* handed to libpq */
};


typedef struct {
    ngx_uint_t                        size;          /* configured */
    ngx_uint_t                        live;          /* connecting+idle+busy */
    ngx_uint_t                        idle;
    ngx_uint_t                        inflight;      /* queries sent */
    ngx_uint_t                        waiting;
    ngx_uint_t                        connects;      /* successful, total */
    ngx_uint_t                        failures;      /* failed connects */
    ngx_uint_t                        terminated;    /* backends of timed
                                                        out queries */
    ngx_uint_t                        batches;       /* several writes
                                                        under one Sync */
    ngx_uint_t                        batched;       /* writes in them */
    ngx_uint_t                        groups;        /* many: executions */
    ngx_uint_t                        grouped;       /* reads in them */
    ngx_msec_t                        backoff;       /* current, ms */
} ngx_http_customer_pg_stats_t;


void ngx_http_customer_pg_pool_hostaddr(ngx_http_customer_pg_pool_t *pool,
    ngx_str_t *hostaddr);
void ngx_http_customer_pg_pool_application(ngx_http_customer_pg_pool_t *pool,
    const char *name);
ngx_http_customer_pg_pool_t *ngx_http_customer_pg_pool_create(
    ngx_cycle_t *cycle, ngx_str_t *conninfo, ngx_uint_t size,
    ngx_uint_t depth, ngx_msec_t timeout, ngx_uint_t queue);
void ngx_http_customer_pg_pool_destroy(ngx_http_customer_pg_pool_t *pool);
ngx_http_customer_pg_query_t *ngx_http_customer_pg_query_create(
    ngx_pool_t *p, ngx_log_t *log);
void ngx_http_customer_pg_run(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_query_t *q);
void ngx_http_customer_pg_stats(ngx_http_customer_pg_pool_t *pool,
    ngx_http_customer_pg_stats_t *st);

/* why a statement failed, for the log: res is NULL when it never ran */
#define ngx_http_customer_pg_why(res)                                        \
    ((res) ? PQresultErrorMessage(res) : "no result")


#endif /* _NGX_HTTP_CUSTOMER_PG_H_INCLUDED_ */


/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_OUTBOX_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_OUTBOX_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


#define NGX_HTTP_CUSTOMER_OUTBOX_BATCH  20    /* rows a run claims */
#define NGX_HTTP_CUSTOMER_OUTBOX_COLS   6     /* a row's columns at most */

/*
 * The common tail of every sink's failure statement: 1, 2, 4 ...
 * seconds, at most five minutes (the exponent is capped, so the power
 * never overflows); after ten failures the row is set aside as dead.
 */
#define NGX_HTTP_CUSTOMER_OUTBOX_BACKOFF                                     \
    " next_attempt_at = now() + least(power(2, least(attempts, 9)), 300)"   \
    " * interval '1 second',"                                               \
    " dead_at = CASE WHEN attempts + 1 >= 10 THEN now() END"


/*
 * The outbox's backlog, one row: the Auth Service's pending and dead
 * rows, then the Notification Service's (a suppressed event is never
 * sent: not pending).  Its cost grows with the backlog: only
 * ngx_http_customer_backlog() runs it, at most once a second per worker,
 * for /health and the metrics.
 */
#define NGX_HTTP_CUSTOMER_OUTBOX_GAUGES_SQL                                  \
    "SELECT " NGX_HTTP_CUSTOMER_OUTBOX_PENDING("auth") ","                  \
    " " NGX_HTTP_CUSTOMER_OUTBOX_DEAD("auth") ","                           \
    " " NGX_HTTP_CUSTOMER_OUTBOX_PENDING("notifications") ","               \
    " " NGX_HTTP_CUSTOMER_OUTBOX_DEAD("notifications")

/* each count by a partial index of events (sql/029_auth_events.sql) */
#define NGX_HTTP_CUSTOMER_OUTBOX_PENDING(d)                                  \
    "(SELECT count(*) FROM events WHERE destination = '" d "'"              \
    " AND delivered_at IS NULL AND dead_at IS NULL AND NOT suppressed)::text"

#define NGX_HTTP_CUSTOMER_OUTBOX_DEAD(d)                                     \
    "(SELECT count(*) FROM events WHERE destination = '" d "'"              \
    " AND delivered_at IS NULL AND dead_at IS NOT NULL)::text"


/* what outbox runs did, summed over the sinks */
typedef struct {
    ngx_uint_t                      claimed;
    ngx_uint_t                      delivered;
    ngx_uint_t                      failed;
    ngx_uint_t                      skipped;   /* lease lost, or released */
} ngx_http_customer_outbox_counts_t;


/* a claimed row: its id and lease, then the sink's own columns */
typedef struct {
    char                           *id;
    char                           *lease;
    char                           *cols[NGX_HTTP_CUSTOMER_OUTBOX_COLS];
    unsigned                        null:NGX_HTTP_CUSTOMER_OUTBOX_COLS;
} ngx_http_customer_outbox_row_t;


/*
 * A sink's send: calls its service for row and continues with
 * ngx_http_customer_outbox_sent() (as the peer call's continuation, or
 * at once with ctx->peer.rc NGX_DECLINED: not configured, NGX_ABORT:
 * the row cannot be sent).
 */
typedef ngx_int_t (*ngx_http_customer_outbox_send_pt)(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_outbox_row_t *row);


/*
 * Where rows go, and the statements that keep their state.  claim: no
 * parameters, returns id, lease, then ncols columns; renew: $1 id, $2
 * lease, a row while the lease holds; release: $1 leases, "{l1,l2}";
 * delivered: $1 id, $2 lease; failed: $1 id, $2 the error, $3 lease.
 */
typedef struct {
    const char                     *service;   /* "auth service" */
    const char                     *directive; /* its customer_*_service */
    ngx_uint_t                      peer;      /* for the metrics */
    ngx_uint_t                      ncols;
    ngx_http_customer_pg_stmt_t    *claim;
    ngx_http_customer_pg_stmt_t    *renew;
    ngx_http_customer_pg_stmt_t    *release;
    ngx_http_customer_pg_stmt_t    *delivered;
    ngx_http_customer_pg_stmt_t    *failed;
    ngx_http_customer_outbox_send_pt  send;
    ngx_uint_t                      repeat;    /* claim again after a
                                                  batch that went through:
                                                  a customer's next rows */
} ngx_http_customer_outbox_sink_t;


/* claims the sink's due rows and delivers them, then finish */
ngx_int_t ngx_http_customer_outbox_run(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_sink_t *sink,
    ngx_http_customer_outbox_counts_t *counts,
    ngx_http_customer_peer_done_pt finish);

/* delivers one row the caller claimed (NULL: claims as a run), then finish */
ngx_int_t ngx_http_customer_outbox_deliver(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_sink_t *sink,
    ngx_http_customer_outbox_row_t *row,
    ngx_http_customer_outbox_counts_t *counts,
    ngx_http_customer_peer_done_pt finish);

/* row r of a claim's res (id, lease, ncols columns from first) into row */
ngx_int_t ngx_http_customer_outbox_row(ngx_pool_t *pool, PGresult *res,
    int r, int id, int lease, int first, ngx_uint_t ncols,
    ngx_http_customer_outbox_row_t *row);

/* a sink's send is done: records the outcome and goes on */
ngx_int_t ngx_http_customer_outbox_sent(ngx_http_customer_ctx_t *ctx);


#endif /* _NGX_HTTP_CUSTOMER_OUTBOX_H_INCLUDED_ */

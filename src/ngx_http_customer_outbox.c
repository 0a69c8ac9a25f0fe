
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_metrics.h"
#include "ngx_http_customer_outbox.h"
#include "ngx_http_customer_query.h"


/*
 * The one delivery loop of the event outbox (the events table): each
 * destination of the events, the Notification Service and the Auth
 * Service, is a sink of it, with its own claim and its own send.
 *
 * A run claims due rows with FOR UPDATE SKIP LOCKED, each under a 60 s
 * lease of its own, in order per customer (the claim statement's
 * business).  Then one row at a time: the lease is renewed just before
 * the send, so a row another run has taken meanwhile is skipped, never
 * sent twice; the outcome is recorded only while the lease still holds.
 * A run starts no send after NGX_HTTP_CUSTOMER_OUTBOX_BUDGET: the rows it
 * has not reached are released, due at once for the next run.  Delivery
 * is at least once: a "delivered" mark lost after the service took the
 * row means the row is sent again when its lease runs out.
 */


/*
 * A run starts no send after this long (ms).  A run must end well within
 * the lease and within the trigger's wait for its answer: a run cut
 * short by its client would cut the call under way, whose outcome is
 * then unknown, and the row would be sent again.
 */
#define NGX_HTTP_CUSTOMER_OUTBOX_BUDGET  20000

/* batches a run of a repeating sink claims at most */
#define NGX_HTTP_CUSTOMER_OUTBOX_BATCHES  50

/* a lease's text: a UUID */
#define NGX_HTTP_CUSTOMER_LEASE_LEN                                          \
    (sizeof("01234567-89ab-cdef-0123-456789abcdef") - 1)


typedef struct {
    ngx_http_customer_outbox_row_t     rows[NGX_HTTP_CUSTOMER_OUTBOX_BATCH];
    ngx_uint_t                         n;
    ngx_uint_t                         i;
    ngx_msec_t                         started;
    ngx_uint_t                         batches;   /* claimed; 0: a row
                                                     the caller gave */
    ngx_uint_t                         failed;    /* in this batch */
    unsigned                           released:1;
    ngx_http_customer_outbox_sink_t   *sink;
    ngx_http_customer_outbox_counts_t *counts;
    ngx_http_customer_peer_done_pt     finish;
    void                              *saved;     /* the caller's data */
} ngx_http_customer_outbox_run_t;


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_outbox_claimed);
static ngx_int_t ngx_http_customer_outbox_next(ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_outbox_renewed);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_outbox_recorded);
static ngx_int_t ngx_http_customer_outbox_release(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_outbox_end(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_run_t *run);


ngx_int_t
ngx_http_customer_outbox_run(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_sink_t *sink,
    ngx_http_customer_outbox_counts_t *counts,
    ngx_http_customer_peer_done_pt finish)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer outbox run: %s", sink->service);

    return ngx_http_customer_outbox_deliver(ctx, sink, NULL, counts, finish);
}


/* row: the one row to send, which the caller has claimed; NULL: claim */

ngx_int_t
ngx_http_customer_outbox_deliver(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_sink_t *sink,
    ngx_http_customer_outbox_row_t *row,
    ngx_http_customer_outbox_counts_t *counts,
    ngx_http_customer_peer_done_pt finish)
{
    ngx_http_customer_outbox_run_t  *run;

    run = ngx_pcalloc(ctx->request->pool,
                      sizeof(ngx_http_customer_outbox_run_t));
    if (run == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    run->sink = sink;
    run->counts = counts;
    run->finish = finish;
    run->started = ngx_current_msec;
    run->saved = ctx->data;
    ctx->data = run;

    if (row) {
        run->rows[0] = *row;
        run->n = 1;
        counts->claimed++;
    }

    /* with no row, the run's end claims its first batch */

    return ngx_http_customer_outbox_next(ctx);
}


/*
 * Row r of res into row, copied: its id and lease from the columns id
 * and lease, the sink's ncols columns from column first on.
 */

ngx_int_t
ngx_http_customer_outbox_row(ngx_pool_t *pool, PGresult *res, int r,
    int id, int lease, int first, ngx_uint_t ncols,
    ngx_http_customer_outbox_row_t *row)
{
    ngx_uint_t  k;

    ngx_memzero(row, sizeof(ngx_http_customer_outbox_row_t));

    row->id = ngx_http_customer_value(pool, res, r, id);
    row->lease = ngx_http_customer_value(pool, res, r, lease);

    if (row->id == NULL || row->lease == NULL) {
        return NGX_ERROR;
    }

    for (k = 0; k < ncols; k++) {
        if (PQgetisnull(res, r, first + k)) {
            row->null |= 1 << k;
            continue;
        }

        row->cols[k] = ngx_http_customer_value(pool, res, r, first + k);
        if (row->cols[k] == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_outbox_claimed)
{
    int                              i;
    ngx_http_customer_outbox_run_t  *run;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    run = ctx->data;

    for (i = 0; i < PQntuples(res) && i < NGX_HTTP_CUSTOMER_OUTBOX_BATCH;
         i++)
    {
        if (ngx_http_customer_outbox_row(ctx->request->pool, res, i, 0, 1, 2,
                                         run->sink->ncols,
                                         &run->rows[run->n])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        run->n++;
        run->counts->claimed++;
    }

    return ngx_http_customer_outbox_next(ctx);
}


/* one row at a time: renew its lease, send it, record how it went */

static ngx_int_t
ngx_http_customer_outbox_next(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_pg_query_t    *q;
    ngx_http_customer_outbox_run_t  *run;

    run = ctx->data;

    if (run->i == run->n) {
        return ngx_http_customer_outbox_end(ctx, run);
    }

    if (run->i > 0
        && ngx_current_msec - run->started > NGX_HTTP_CUSTOMER_OUTBOX_BUDGET)
    {
        return ngx_http_customer_outbox_release(ctx);
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = run->rows[run->i].id;
    q->values[1] = run->rows[run->i].lease;

    return ngx_http_customer_query_run(ctx, q, run->sink->renew,
                                       ngx_http_customer_outbox_renewed);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_outbox_renewed)
{
    ngx_http_customer_outbox_run_t  *run;
    ngx_http_customer_outbox_row_t  *row;

    run = ctx->data;
    row = &run->rows[run->i];

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1)
    {
        /* the lease is gone (or unknown): another worker has the row */
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "customer: %s outbox row %s left to its new claimant",
                      run->sink->service, row->id);
        run->counts->skipped++;
        run->i++;
        return ngx_http_customer_outbox_next(ctx);
    }

    return run->sink->send(ctx, row);
}


ngx_int_t
ngx_http_customer_outbox_sent(ngx_http_customer_ctx_t *ctx)
{
    u_char                          *err;
    ngx_http_customer_pg_query_t    *q;
    ngx_http_customer_outbox_run_t  *run;
    ngx_http_customer_outbox_row_t  *row;

    run = ctx->data;
    row = &run->rows[run->i];

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = row->id;
    q->values[1] = row->lease;

    if (ctx->peer.rc == NGX_OK && ctx->peer.status >= 200
        && ctx->peer.status < 300)
    {
        run->counts->delivered++;

        return ngx_http_customer_query_run(ctx, q, run->sink->delivered,
                                           ngx_http_customer_outbox_recorded);
    }

    run->counts->failed++;
    run->failed++;
    ngx_http_customer_metrics_peer_failure(run->sink->peer);

    err = ngx_pnalloc(ctx->request->pool, 100);
    if (err == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->peer.rc == NGX_DECLINED) {
        ngx_sprintf(err, "%s is not configured%Z", run->sink->directive);

    } else if (ctx->peer.rc == NGX_ABORT) {
        ngx_sprintf(err, "not sent: the userId is not one path segment%Z");

    } else {
        ngx_sprintf(err, "%s answered rc %i, status %ui%Z",
                    run->sink->service, ctx->peer.rc, ctx->peer.status);
    }

    ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                  "customer: %s outbox row %s kept: %s",
                  run->sink->service, row->id, err);

    q->values[1] = (char *) err;
    q->values[2] = row->lease;

    return ngx_http_customer_query_run(ctx, q, run->sink->failed,
                                       ngx_http_customer_outbox_recorded);
}


/*
 * A delivery recorded, or the rows not reached released; on to the next
 * row or the run's end.  What could not be recorded is not lost: the
 * row's lease runs out and it is tried again; rows not released wait for
 * their leases to run out instead.
 */

static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_outbox_recorded)
{
    ngx_http_customer_outbox_run_t  *run = ctx->data;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "customer: could not %s",
                      run->released ? "release outbox rows"
                                    : "record an outbox delivery");
    }

    if (!run->released) {
        run->i++;
    }

    return ngx_http_customer_outbox_next(ctx);
}


/* the run has had its time: the rows not reached go back, due now */

static ngx_int_t
ngx_http_customer_outbox_release(ngx_http_customer_ctx_t *ctx)
{
    u_char                          *p;
    ngx_uint_t                       k;
    ngx_http_customer_pg_query_t    *q;
    ngx_http_customer_outbox_run_t  *run;

    run = ctx->data;

    /* "{l1,l2}": a lease, a comma or a brace each */
    p = ngx_pnalloc(ctx->request->pool,
                    2 + (run->n - run->i) * (NGX_HTTP_CUSTOMER_LEASE_LEN + 1));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = (char *) p;
    *p++ = '{';

    for (k = run->i; k < run->n; k++) {
        p = ngx_sprintf(p, "%s%s", k == run->i ? "" : ",",
                        run->rows[k].lease);
    }

    *p++ = '}';
    *p = '\0';

    ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                  "customer: %s outbox run past %ui ms: %ui rows left to "
                  "the next run", run->sink->service,
                  (ngx_uint_t) NGX_HTTP_CUSTOMER_OUTBOX_BUDGET,
                  run->n - run->i);

    run->counts->skipped += run->n - run->i;
    run->i = run->n;
    run->released = 1;

    return ngx_http_customer_query_run(ctx, q, run->sink->release,
                                       ngx_http_customer_outbox_recorded);
}


/*
 * A batch is done, or none was claimed yet.  A run claims its first
 * batch; a repeating sink claims again while batches go through whole (a
 * claim takes one row per customer: the next claim takes each customer's
 * next row), within the run's time; otherwise the caller's data back,
 * and its continuation.
 */

static ngx_int_t
ngx_http_customer_outbox_end(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_run_t *run)
{
    ngx_http_customer_pg_query_t  *q;

    if ((run->batches == 0 && run->n == 0)
        || (run->sink->repeat && run->batches > 0
            && run->batches < NGX_HTTP_CUSTOMER_OUTBOX_BATCHES
            && run->n > 0 && run->failed == 0 && !run->released
            && ngx_current_msec - run->started
               < NGX_HTTP_CUSTOMER_OUTBOX_BUDGET))
    {
        run->batches++;
        run->n = 0;
        run->i = 0;
        run->failed = 0;

        q = ngx_http_customer_query_create(ctx);
        if (q == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_customer_query_run(ctx, q, run->sink->claim,
                                           ngx_http_customer_outbox_claimed);
    }

    ctx->data = run->saved;

    return run->finish(ctx);
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_metrics.h"
#include "ngx_http_customer_replica.h"


/*
 * Read replicas.  Each customer_db_replica gets, in every worker, a pool
 * of its own (customer_db_pool connections, customer_db_pipeline deep)
 * and a lag check: every NGX_HTTP_CUSTOMER_REPLICA_CHECK ms one cheap
 * statement on a connection of that pool asks the standby how far its
 * replay is behind.  A replica is usable while its last check, sent at
 * most NGX_HTTP_CUSTOMER_REPLICA_FRESH ms ago, found it a standby less
 * than customer_db_replica_max_lag behind.
 *
 * Routing is one decision, ngx_http_customer_replica_route(), made for
 * each query: a statement marked replica goes to the next usable
 * replica, round robin, unless its caller wrote recently; everything
 * else, and everything when no replica is usable, goes to the primary.
 * A replica read that gets no result (the replica stopped, its
 * connection broke, it timed out) or an error (a query cancelled by a
 * recovery conflict) is sent once more to the primary, so a replica that
 * fails costs time, never an error; one that gave no result is also not
 * used again until its next check.
 *
 * Read-your-writes: a replica read may miss up to max_lag + FRESH ms of
 * the primary's commits (the lag found, plus the age of the check).  So
 * every write a caller makes (a statement neither shared nor readonly
 * that went out, whatever its outcome) stamps the caller's bucket with
 * the time, and the caller's replica reads go to the primary until
 * max_lag + FRESH + SLACK ms have passed.  The caller is the token's sub
 * (or the service, or the one trusted caller of customer_auth off).  The
 * next request of the same caller may reach another worker, so the
 * stamps live in shared memory (the "customer_replica" zone): a fixed
 * table of buckets indexed by a hash of the caller, each holding the
 * latest write time of any caller hashed there.  Two callers sharing a
 * bucket only send each other to the primary a little more often; no
 * caller is ever sent to a replica too early, and the table needs no
 * locks and no eviction.  Within one nginx; several nginx hosts behind
 * a balancer need it to keep a caller on one host.
 */


static ngx_atomic_t *ngx_http_customer_writer(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_main_conf_t *cmcf);
static void ngx_http_customer_replica_tick(ngx_event_t *ev);
static void ngx_http_customer_replica_checked(
    ngx_http_customer_pg_query_t *q, PGresult *res);
static void ngx_http_customer_replica_log(ngx_http_customer_replica_t *rp,
    ngx_log_t *log, const char *why);


/*
 * A standby whose walreceiver streams and has replayed all it received
 * is current, however old its last replayed commit (an idle primary
 * commits nothing to replay); otherwise the lag is the age of the last
 * commit replayed, NULL when none was.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_replica_lag_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(0,
    "SELECT pg_is_in_recovery(),"
    " CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
    " AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver"
    " WHERE status = 'streaming') THEN 0"
    " ELSE greatest(0, (1000 * extract(epoch FROM"
    " now() - pg_last_xact_replay_timestamp()))::bigint) END");


/* at configuration: the recent writers' zone, when there are replicas */

ngx_int_t
ngx_http_customer_replica_conf(ngx_conf_t *cf,
    ngx_http_customer_main_conf_t *cmcf)
{
    ngx_str_t  name = ngx_string("customer_replica");

    if (cmcf->replicas == NULL) {
        return NGX_OK;
    }

    cmcf->writers_zone = ngx_http_customer_shm_zone(cf, &name,
                                        sizeof(ngx_http_customer_writers_t));
    if (cmcf->writers_zone == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* per worker: a pool and a lag check for each replica */

ngx_int_t
ngx_http_customer_replica_init(ngx_cycle_t *cycle,
    ngx_http_customer_main_conf_t *cmcf)
{
    ngx_uint_t                    i;
    ngx_http_customer_replica_t  *rp;

    if (cmcf->replicas == NULL) {
        return NGX_OK;
    }

    rp = cmcf->replicas->elts;

    for (i = 0; i < cmcf->replicas->nelts; i++) {
        rp[i].pool = ngx_http_customer_pg_pool_create(cycle, &rp[i].conninfo,
                                                      cmcf->pool_size,
                                                      cmcf->pipeline,
                                                      cmcf->timeout,
                                                      cmcf->queue_size);
        if (rp[i].pool == NULL) {
            return NGX_ERROR;
        }

        ngx_http_customer_pg_pool_hostaddr(rp[i].pool, &rp[i].hostaddr);
        ngx_http_customer_pg_pool_application(rp[i].pool,
                                              "nginx-customer-replica");

        rp[i].check = ngx_http_customer_pg_query_create(cycle->pool,
                                                        cycle->log);
        if (rp[i].check == NULL) {
            return NGX_ERROR;
        }

        rp[i].check->stmt = &ngx_http_customer_replica_lag_sql;
        rp[i].check->handler = ngx_http_customer_replica_checked;
        rp[i].check->data = &rp[i];

        /* up, usable and checking are 0 from the configuration */
        rp[i].max_lag = cmcf->replica_max_lag;

        rp[i].timer.handler = ngx_http_customer_replica_tick;
        rp[i].timer.data = &rp[i];
        rp[i].timer.log = cycle->log;
        rp[i].timer.cancelable = 1;

        /* the first check at once, so that reads need not wait a second */
        ngx_add_timer(&rp[i].timer, 1);
    }

    cmcf->replica_next = ngx_worker % cmcf->replicas->nelts;

    return NGX_OK;
}


void
ngx_http_customer_replica_exit(ngx_http_customer_main_conf_t *cmcf)
{
    ngx_uint_t                    i;
    ngx_http_customer_replica_t  *rp;

    if (cmcf->replicas == NULL) {
        return;
    }

    rp = cmcf->replicas->elts;

    for (i = 0; i < cmcf->replicas->nelts; i++) {
        if (rp[i].timer.timer_set) {
            ngx_del_timer(&rp[i].timer);
        }

        if (rp[i].pool) {
            ngx_http_customer_pg_pool_destroy(rp[i].pool);
            rp[i].pool = NULL;
        }
    }
}


ngx_uint_t
ngx_http_customer_replica_usable(ngx_http_customer_replica_t *rp)
{
    return rp->up
           && (ngx_msec_int_t) (ngx_current_msec - rp->checked)
              < NGX_HTTP_CUSTOMER_REPLICA_FRESH
           && rp->lag < rp->max_lag;
}


/* the one routing decision: which server q goes to */

ngx_http_customer_pg_pool_t *
ngx_http_customer_replica_route(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q)
{
    ngx_uint_t                      i, k, n;
    ngx_atomic_t                   *w;
    ngx_atomic_uint_t               at;
    ngx_http_customer_replica_t    *rp;
    ngx_http_customer_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_customer_module);

    if (cmcf->replicas == NULL || !q->stmt->replica || q->pre) {
        return cmcf->pool;
    }

    w = ngx_http_customer_writer(ctx, cmcf);

    if (w) {
        at = *w;

        if (at != 0
            && (ngx_msec_int_t) (ngx_current_msec - (ngx_msec_t) (at - 1))
               < (ngx_msec_int_t) (cmcf->replica_max_lag
                                   + NGX_HTTP_CUSTOMER_REPLICA_FRESH
                                   + NGX_HTTP_CUSTOMER_REPLICA_SLACK))
        {
            /* read-your-writes: a replica may not have it yet */
            return cmcf->pool;
        }
    }

    rp = cmcf->replicas->elts;
    n = cmcf->replicas->nelts;

    for (k = 0; k < n; k++) {
        i = (cmcf->replica_next + k) % n;

        if (ngx_http_customer_replica_usable(&rp[i])) {
            cmcf->replica_next = i + 1;
            return rp[i].pool;
        }
    }

    return cmcf->pool;
}


/*
 * Each query's outcome, before its route sees it: a write stamps its
 * caller; a replica read that failed goes to the primary (NGX_AGAIN: not
 * finished yet); a routable read is counted by the server that answered.
 */

ngx_int_t
ngx_http_customer_replica_done(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    ngx_uint_t                      i, failed;
    ngx_atomic_t                   *w;
    ngx_atomic_uint_t               old, now;
    ngx_http_customer_replica_t    *rp;
    ngx_http_customer_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_customer_module);

    if (cmcf->replicas == NULL) {
        return NGX_OK;
    }

    if (!q->stmt->shared && !q->stmt->readonly) {

        /* a write, perhaps committed even without a result */

        if (q->sent && (w = ngx_http_customer_writer(ctx, cmcf)) != NULL) {
            now = (ngx_atomic_uint_t) ngx_current_msec + 1;

            do {
                old = *w;

                if (old != 0 && (ngx_msec_int_t) (old - now) >= 0) {
                    break;
                }

            } while (!ngx_atomic_cmp_set(w, old, now));
        }

        return NGX_OK;
    }

    if (!q->stmt->replica) {
        return NGX_OK;
    }

    failed = (res == NULL || PQresultStatus(res) == PGRES_FATAL_ERROR);

    if (q->pool == cmcf->pool) {
        if (!failed) {
            ngx_http_customer_metrics_read(0);
        }

        return NGX_OK;
    }

    rp = cmcf->replicas->elts;

    for (i = 0; i < cmcf->replicas->nelts; i++) {
        if (rp[i].pool == q->pool) {
            break;
        }
    }

    if (i == cmcf->replicas->nelts) {
        return NGX_OK;
    }

    rp = &rp[i];

    if (!failed) {
        ngx_http_customer_metrics_read(rp->index + 1);
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_INFO, q->log, 0,
                  "customer: replica \"%V\" did not answer a read (%s): "
                  "sending it to the primary", &rp->name,
                  res ? PQresultErrorMessage(res)
                  : q->error == NGX_HTTP_CUSTOMER_PG_TIMEOUT ? "timed out"
                  : q->error == NGX_HTTP_CUSTOMER_PG_BUSY ? "queue full"
                  : "no connection");

    if (res == NULL && q->error != NGX_HTTP_CUSTOMER_PG_BUSY) {
        /* down, as far as this worker knows, until its next check */
        rp->up = 0;
        ngx_http_customer_replica_log(rp, q->log, "does not answer");
        ngx_http_customer_metrics_replica(rp);
    }

    rp->fallbacks++;

    ngx_http_customer_pg_run(cmcf->pool, q);

    return NGX_AGAIN;
}


/* the caller's bucket, or NULL without replicas */

static ngx_atomic_t *
ngx_http_customer_writer(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_main_conf_t *cmcf)
{
    uint32_t                      h;
    ngx_http_customer_writers_t  *wr;

    if (cmcf->writers_zone == NULL || cmcf->writers_zone->data == NULL) {
        return NULL;
    }

    wr = cmcf->writers_zone->data;

    /* a service and a token whose sub is "service" are different callers */
    h = ngx_murmur_hash2(ctx->who.sub.data, ctx->who.sub.len);

    if (ctx->who.service) {
        h = ~h;
    }

    return &wr->at[h % NGX_HTTP_CUSTOMER_WRITERS];
}


static void
ngx_http_customer_replica_tick(ngx_event_t *ev)
{
    ngx_http_customer_replica_t  *rp = ev->data;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    /* a check that hangs lets the replica go stale, then unusable */
    ngx_http_customer_replica_log(rp, ev->log, "stopped answering checks");

    if (!rp->checking) {
        rp->checking = 1;
        rp->sent = ngx_current_msec;

        ngx_http_customer_pg_run(rp->pool, rp->check);
    }

    ngx_add_timer(ev, NGX_HTTP_CUSTOMER_REPLICA_CHECK);
}


static void
ngx_http_customer_replica_checked(ngx_http_customer_pg_query_t *q,
    PGresult *res)
{
    char                         *v;
    ngx_int_t                     lag;
    const char                   *why;
    ngx_http_customer_replica_t  *rp;

    rp = q->data;
    rp->checking = 0;
    rp->up = 0;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1 || PQnfields(res) != 2)
    {
        why = res ? PQresultErrorMessage(res) : "does not answer";

    } else if (*PQgetvalue(res, 0, 0) != 't') {
        /* promoted, or never a standby: not the primary's copy */
        why = "is not a standby";

    } else {
        /* nothing replayed yet (NULL): how far behind is unknown */

        lag = NGX_ERROR;

        if (!PQgetisnull(res, 0, 1)) {
            v = PQgetvalue(res, 0, 1);
            lag = ngx_atoi((u_char *) v, ngx_strlen(v));
        }

        rp->up = 1;
        rp->checked = rp->sent;
        rp->lag = (lag == NGX_ERROR) ? (ngx_msec_t) NGX_MAX_INT_T_VALUE
                                     : (ngx_msec_t) lag;
        why = "lags";
    }

    ngx_http_customer_replica_log(rp, q->log, why);
    ngx_http_customer_metrics_replica(rp);
}


/* says so in the error log when a replica starts or stops taking reads */

static void
ngx_http_customer_replica_log(ngx_http_customer_replica_t *rp,
    ngx_log_t *log, const char *why)
{
    ngx_uint_t  usable;

    usable = ngx_http_customer_replica_usable(rp);

    if (usable == rp->usable) {
        return;
    }

    rp->usable = usable;

    if (usable) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "customer: replica \"%V\" takes reads (lag %M ms)",
                      &rp->name, rp->lag);
        return;
    }

    if (rp->up && rp->lag >= rp->max_lag
        && (ngx_msec_int_t) (ngx_current_msec - rp->checked)
           < NGX_HTTP_CUSTOMER_REPLICA_FRESH)
    {
        if (rp->lag == (ngx_msec_t) NGX_MAX_INT_T_VALUE) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "customer: replica \"%V\" has replayed nothing "
                          "yet: its reads go to the primary", &rp->name);

        } else {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "customer: replica \"%V\" lags %M ms: its reads "
                          "go to the primary", &rp->name, rp->lag);
        }

        return;
    }

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "customer: replica \"%V\" %s: its reads go to the primary",
                  &rp->name, rp->up ? "stopped answering checks" : why);
}

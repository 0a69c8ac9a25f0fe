
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_REPLICA_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_REPLICA_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_customer_pg.h"


#define NGX_HTTP_CUSTOMER_REPLICAS_MAX     8
#define NGX_HTTP_CUSTOMER_REPLICA_CHECK    1000   /* ms between lag checks */
#define NGX_HTTP_CUSTOMER_REPLICA_FRESH    1500   /* ms a check is good for */
#define NGX_HTTP_CUSTOMER_REPLICA_SLACK    250    /* ms, clocks and turns */
#define NGX_HTTP_CUSTOMER_WRITERS          16384  /* recent-writer buckets */


/* one customer_db_replica: configuration, then this worker's view of it */
typedef struct {
    ngx_str_t                       conninfo;
    ngx_str_t                       hostaddr;  /* names resolved at
                                                  configuration */
    ngx_str_t                       name;      /* "host:port": metrics,
                                                  /health, the log */
    ngx_uint_t                      index;     /* 0.. in the order given */

    ngx_http_customer_pg_pool_t    *pool;      /* per worker */
    ngx_http_customer_pg_query_t   *check;     /* the lag check */
    ngx_event_t                     timer;     /* every REPLICA_CHECK ms */
    ngx_msec_t                      sent;      /* the check went out */
    ngx_msec_t                      checked;   /* the last good one did */
    ngx_msec_t                      lag;       /* ms, as of that check */
    ngx_msec_t                      max_lag;   /* customer_db_replica_
                                                  max_lag */
    ngx_uint_t                      fallbacks; /* reads sent to the
                                                  primary after failing */
    unsigned                        checking:1;
    unsigned                        up:1;      /* answered as a standby */
    unsigned                        usable:1;  /* as last logged */
} ngx_http_customer_replica_t;


/* the recent writers, in the "customer_replica" zone, shared by workers */
typedef struct {
    ngx_atomic_t                    at[NGX_HTTP_CUSTOMER_WRITERS]; /* ms+1 */
} ngx_http_customer_writers_t;


#include "ngx_http_customer_module.h"


ngx_int_t ngx_http_customer_replica_conf(ngx_conf_t *cf,
    ngx_http_customer_main_conf_t *cmcf);
ngx_int_t ngx_http_customer_replica_init(ngx_cycle_t *cycle,
    ngx_http_customer_main_conf_t *cmcf);
void ngx_http_customer_replica_exit(ngx_http_customer_main_conf_t *cmcf);
ngx_http_customer_pg_pool_t *ngx_http_customer_replica_route(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q);
ngx_int_t ngx_http_customer_replica_done(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res);
ngx_uint_t ngx_http_customer_replica_usable(ngx_http_customer_replica_t *rp);


#endif /* _NGX_HTTP_CUSTOMER_REPLICA_H_INCLUDED_ */

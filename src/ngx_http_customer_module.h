
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_MODULE_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <yajl/yajl_gen.h>

#include "ngx_http_customer_pg.h"
#include "ngx_http_customer_json.h"
#include "ngx_http_customer_auth.h"


#define NGX_HTTP_CUSTOMER_MAX_PARAMS  4      /* path parameters per route */
#define NGX_HTTP_CUSTOMER_ERRORS_MAX  50     /* errors a 400 lists */
#define NGX_HTTP_CUSTOMER_IDEM_KEY_MAX  100  /* Idempotency-Key length */

/* in a route's methods: the handler does Idempotency-Key itself */
#define NGX_HTTP_CUSTOMER_OWN_KEY     0x40000000

#ifndef NGX_HTTP_UNPROCESSABLE_ENTITY
#define NGX_HTTP_UNPROCESSABLE_ENTITY 422
#endif


typedef struct ngx_http_customer_ctx_s  ngx_http_customer_ctx_t;
typedef struct ngx_http_customer_idem_s  ngx_http_customer_idem_t;
typedef struct ngx_http_customer_route_s  ngx_http_customer_route_t;

typedef ngx_int_t (*ngx_http_customer_handler_pt)(
    ngx_http_customer_ctx_t *ctx);

/* a peer call's continuation: returns an rc to finalize with, or NGX_DONE */
typedef ngx_int_t (*ngx_http_customer_peer_done_pt)(
    ngx_http_customer_ctx_t *ctx);


/* what a service answered */
typedef struct {
    ngx_int_t                       rc;        /* the subrequest's */
    ngx_uint_t                      status;    /* the service's */
    ngx_str_t                       body;
    ngx_http_customer_json_t       *json;      /* a 2xx body, parsed */
    unsigned                        done:1;
} ngx_http_customer_peer_t;


/* a query's continuation: returns an rc to finalize with, or NGX_DONE */
typedef ngx_int_t (*ngx_http_customer_done_pt)(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res);

/* declares or defines name, a continuation as above */
#define NGX_HTTP_CUSTOMER_DONE(name)                                         \
    ngx_int_t name(ngx_http_customer_ctx_t *ctx,                             \
        ngx_http_customer_pg_query_t *q, PGresult *res)


typedef struct {
    ngx_str_t                       conninfo;
    ngx_str_t                       hostaddr;      /* names resolved at
                                                      configuration */
    ngx_uint_t                      pool_size;     /* per worker */
    ngx_uint_t                      pipeline;      /* queries in flight
                                                      per connection */
    ngx_msec_t                      timeout;       /* connect and query */
    ngx_uint_t                      queue_size;    /* waiting requests */
    ngx_int_t                       request_id_index;
    ngx_http_customer_auth_conf_t   auth;
    ngx_str_t                       peer_key;      /* sent to services */
    ngx_url_t                       trigger;       /* outbox: our address */
    ngx_msec_t                      outbox_interval;
    ngx_msec_t                      event_scan_interval;
    ngx_array_t                    *notification_secrets;  /* of
                                                      ngx_str_t, keys */
    ngx_http_customer_pg_pool_t    *pool;          /* set per worker */
    ngx_shm_zone_t                 *metrics_zone;  /* this cycle's */
    ngx_array_t                    *replicas;      /* of ..._replica_t */
    ngx_msec_t                      replica_max_lag;
    ngx_shm_zone_t                 *writers_zone;  /* recent writers */
    ngx_uint_t                      replica_next;  /* round robin, per
                                                      worker */
} ngx_http_customer_main_conf_t;


typedef struct {
    ngx_flag_t                      api;           /* customer_api here */
    ngx_int_t                       auth;          /* customer_auth:
                                                      NGX_HTTP_CUSTOMER_AUTH_*
                                                      */
    ngx_str_t                       auth_service;  /* internal locations */
    ngx_flag_t                      user_check;    /* a new customer's
                                                      userId asked of the
                                                      Auth Service */
    ngx_msec_t                      activity_interval;  /* between writes
                                                      of lastActivityDate;
                                                      0: none */
    ngx_str_t                       order_service;
    ngx_str_t                       complaint_service;
    ngx_str_t                       notification_service;
    ngx_str_t                       auth_header;   /* customer_auth header */
    ngx_array_t                    *cors_origins;  /* of ngx_str_t; NULL:
                                                      no CORS here */
    ngx_flag_t                      cors_any;      /* "*" among them */
    ngx_flag_t                      cors_credentials;
    time_t                          cors_max_age;  /* seconds */
    void                          **parent;        /* the enclosing block's
                                                      loc_conf, at
                                                      configuration */
} ngx_http_customer_loc_conf_t;


/* per-request state; also reachable from pg queries through q->data */
struct ngx_http_customer_ctx_s {
    ngx_http_request_t             *request;
    ngx_http_customer_route_t      *route;
    ngx_str_t                       params[NGX_HTTP_CUSTOMER_MAX_PARAMS];
    ngx_uint_t                      nparams;
    ngx_http_customer_json_t       *body;          /* parsed JSON body */
    ngx_str_t                       raw;           /* or its bytes */
    ngx_str_t                       bytes;         /* the body as read */
    ngx_array_t                    *errors;        /* of ..._error_t */
    ngx_uint_t                      errors_more;   /* not listed */
    ngx_str_t                       etag;          /* "\"<version>\"" */
    ngx_http_customer_principal_t   who;           /* the caller */
    char                           *self;          /* a Customer's own
                                                      customerId, from the
                                                      account check, or
                                                      NULL */
    ngx_uint_t                      status;        /* of a refusal */
    ngx_int_t                       open;          /* DELETE: complaints */
    ngx_int_t                       active;        /* DELETE: orders */
    unsigned                        by_user:1;     /* found by userId */
    unsigned                        metrics:1;     /* a scrape */
    ngx_http_customer_done_pt       done;          /* query continuation */
    ngx_http_customer_peer_t        peer;
    ngx_http_customer_peer_done_pt  peer_done;
    ngx_array_t                    *peer_headers;  /* of ngx_keyval_t:
                                                      the next call's */
    void                           *data;          /* resource state */
    ngx_http_customer_idem_t       *idem;          /* Idempotency-Key */
    ngx_uint_t                      page;          /* a page's number */
    ngx_uint_t                      limit;         /* and its size */
};


extern ngx_module_t  ngx_http_customer_module;


ngx_shm_zone_t *ngx_http_customer_shm_zone(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);
void *ngx_http_customer_array_push(ngx_pool_t *pool, ngx_array_t **a,
    ngx_uint_t n, size_t size);


#endif /* _NGX_HTTP_CUSTOMER_MODULE_H_INCLUDED_ */

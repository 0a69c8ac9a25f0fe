
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
#include "ngx_http_customer_replica.h"
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


/* one entry of a resource's route table */
typedef struct {
    ngx_uint_t                      methods;   /* NGX_HTTP_GET | ... */
    const char                     *pattern;   /* "/api/customers/{}" */
    ngx_http_customer_handler_pt    handler;
    ngx_uint_t                      access;    /* NGX_HTTP_CUSTOMER_ADMIN.. */
    unsigned                        json_body:2;   /* 1: a JSON body,
                                                      2: one, or none,
                                                      3: any bytes */
    ngx_uint_t                      id;            /* set at start */
} ngx_http_customer_route_t;


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
    ngx_flag_t                      auth;          /* customer_auth */
    ngx_str_t                       auth_service;  /* internal locations */
    ngx_str_t                       order_service;
    ngx_str_t                       complaint_service;
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
    ngx_uint_t                      status;        /* of a refusal */
    ngx_int_t                       open;          /* DELETE: complaints */
    ngx_int_t                       active;        /* DELETE: orders */
    unsigned                        by_user:1;     /* found by userId */
    unsigned                        metrics:1;     /* a scrape */
    ngx_http_customer_done_pt       done;          /* query continuation */
    ngx_http_customer_peer_t        peer;
    ngx_http_customer_peer_done_pt  peer_done;
    void                           *data;          /* resource state */
    ngx_http_customer_idem_t       *idem;          /* Idempotency-Key */
};


extern ngx_module_t  ngx_http_customer_module;


/* ngx_http_customer_router.c */
ngx_http_customer_route_t *ngx_http_customer_route(ngx_http_request_t *r,
    ngx_http_customer_ctx_t *ctx, ngx_uint_t *allowed);
ngx_int_t ngx_http_customer_allow_header(ngx_http_request_t *r,
    ngx_uint_t allowed);
ngx_int_t ngx_http_customer_path_check(ngx_http_request_t *r,
    const char **reason);

/* ngx_http_customer_handler.c */
ngx_int_t ngx_http_customer_handler(ngx_http_request_t *r);
ngx_http_customer_pg_query_t *ngx_http_customer_query_create(
    ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_query_run(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done);
ngx_int_t ngx_http_customer_add_error(ngx_http_customer_ctx_t *ctx,
    u_char *field, size_t len, const char *message);
yajl_gen ngx_http_customer_envelope(ngx_http_customer_ctx_t *ctx,
    const char *message);
ngx_int_t ngx_http_customer_send(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, yajl_gen g);
ngx_int_t ngx_http_customer_send_json(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message, PGresult *res, int column);
ngx_int_t ngx_http_customer_send_bytes(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *type, u_char *data, size_t len);
ngx_int_t ngx_http_customer_send_header(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *type, off_t len);
ngx_int_t ngx_http_customer_send_row(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message, PGresult *res,
    ngx_http_customer_column_t *cols, int ncols);
ngx_int_t ngx_http_customer_send_error(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message, const char *field,
    const char *detail);
ngx_int_t ngx_http_customer_send_errors(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message);
ngx_int_t ngx_http_customer_db_error(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res);
ngx_int_t ngx_http_customer_arg_uint(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_uint_t def, ngx_uint_t min, ngx_uint_t max,
    ngx_uint_t *value);
ngx_int_t ngx_http_customer_arg_str(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_str_t *value);
ngx_table_elt_t *ngx_http_customer_push_header(ngx_list_t *headers,
    const char *key, ngx_str_t *value);
ngx_table_elt_t *ngx_http_customer_header(ngx_http_request_t *r,
    const char *name, size_t len, ngx_uint_t nth);
ngx_int_t ngx_http_customer_prefer(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_customer_is_uuid(ngx_str_t *s);
ngx_int_t ngx_http_customer_id(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_uuid_param(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t n, const char *name);
ngx_int_t ngx_http_customer_own_read(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done);
ngx_int_t ngx_http_customer_page_args(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t *page, ngx_uint_t *limit);
ngx_int_t ngx_http_customer_page_values(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_uint_t n, ngx_uint_t page,
    ngx_uint_t limit);
ngx_int_t ngx_http_customer_send_page(ngx_http_customer_ctx_t *ctx,
    PGresult *res, const char *message, const char *name,
    ngx_http_customer_column_t *cols, int ncols, ngx_uint_t page,
    ngx_uint_t limit);
char *ngx_http_customer_own_sub(ngx_http_customer_ctx_t *ctx);
char *ngx_http_customer_body_param(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_if_match(ngx_http_customer_ctx_t *ctx,
    const char **version);
ngx_int_t ngx_http_customer_not_found(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_request_id_of(ngx_http_request_t *r,
    ngx_str_t *id);

/* ngx_http_customer_replica.c */
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

/* ngx_http_customer_idempotency.c */
ngx_int_t ngx_http_customer_idempotency_key(ngx_http_customer_ctx_t *ctx,
    const char **key);
ngx_int_t ngx_http_customer_idem_route(ngx_http_customer_ctx_t *ctx,
    u_char *data, size_t len);
void ngx_http_customer_idem_query(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q);
ngx_int_t ngx_http_customer_idem_result(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res);
ngx_int_t ngx_http_customer_idem_send(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *type, u_char *data, size_t len);

/* ngx_http_customer_peer.c */
ngx_int_t ngx_http_customer_peer_call(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *loc, ngx_uint_t method, ngx_str_t *path, ngx_str_t *args,
    ngx_str_t *body, ngx_str_t *key, ngx_http_customer_peer_done_pt done);
ngx_int_t ngx_http_customer_peer_error(ngx_http_customer_ctx_t *ctx,
    const char *name, const char *what);
ngx_int_t ngx_http_customer_peer_parse(ngx_pool_t *pool, ngx_str_t *body,
    ngx_http_customer_json_t **json);
ngx_int_t ngx_http_customer_peer_list(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_http_customer_json_t **items,
    ngx_http_customer_json_t **pg);

/* ngx_http_customer_metrics.c */
ngx_int_t ngx_http_customer_metrics_conf(ngx_conf_t *cf,
    ngx_http_customer_route_t **tables);
char *ngx_http_customer_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_customer_metrics_peer_failure(ngx_uint_t service);
void ngx_http_customer_metrics_replica(ngx_http_customer_replica_t *rp);
void ngx_http_customer_metrics_read(ngx_uint_t target);

#define NGX_HTTP_CUSTOMER_PEER_AUTH        0
#define NGX_HTTP_CUSTOMER_PEER_ORDERS      1
#define NGX_HTTP_CUSTOMER_PEER_COMPLAINTS  2

/* resources: one route table each, all of them in route_tables */
extern ngx_http_customer_route_t  *ngx_http_customer_route_tables[];
extern ngx_http_customer_route_t  ngx_http_customer_health_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_customers_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_relations_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_status_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_notes_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_search_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_financial_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_credit_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_loyalty_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_preferences_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_vehicles_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_documents_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_dashboard_routes[];
ngx_int_t ngx_http_customer_trigger_init(ngx_cycle_t *cycle,
    ngx_http_customer_main_conf_t *cmcf);
ngx_int_t ngx_http_customer_customers_init(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_CUSTOMER_MODULE_H_INCLUDED_ */

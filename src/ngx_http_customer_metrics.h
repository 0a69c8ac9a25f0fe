
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_METRICS_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_replica.h"


ngx_int_t ngx_http_customer_metrics_conf(ngx_conf_t *cf,
    ngx_http_customer_route_t **tables);
char *ngx_http_customer_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_customer_metrics_peer_failure(ngx_uint_t service);
void ngx_http_customer_metrics_replica(ngx_http_customer_replica_t *rp);
void ngx_http_customer_metrics_read(ngx_uint_t target);
ngx_uint_t ngx_http_customer_method_index(ngx_uint_t method);

#define NGX_HTTP_CUSTOMER_PEER_AUTH        0
#define NGX_HTTP_CUSTOMER_PEER_ORDERS      1
#define NGX_HTTP_CUSTOMER_PEER_COMPLAINTS  2
#define NGX_HTTP_CUSTOMER_PEER_NOTIFY      3


#endif /* _NGX_HTTP_CUSTOMER_METRICS_H_INCLUDED_ */

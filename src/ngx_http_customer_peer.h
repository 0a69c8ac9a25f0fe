
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_PEER_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_PEER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


ngx_int_t ngx_http_customer_peer_call(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *loc, ngx_uint_t method, ngx_str_t *path, ngx_str_t *args,
    ngx_str_t *body, ngx_str_t *key, ngx_http_customer_peer_done_pt done);
ngx_int_t ngx_http_customer_peer_error(ngx_http_customer_ctx_t *ctx,
    const char *name, const char *what);
ngx_int_t ngx_http_customer_peer_list(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_http_customer_json_t **items,
    ngx_http_customer_json_t **pg);
ngx_int_t ngx_http_customer_peer_parse(ngx_pool_t *pool, ngx_str_t *body,
    ngx_http_customer_json_t **json);


#endif /* _NGX_HTTP_CUSTOMER_PEER_H_INCLUDED_ */

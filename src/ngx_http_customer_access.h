
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_ACCESS_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_ACCESS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


ngx_int_t ngx_http_customer_authorize(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_run_route(ngx_http_customer_ctx_t *ctx,
    u_char *data, size_t len);
char *ngx_http_customer_own_sub(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_cors(ngx_http_request_t *r,
    ngx_http_customer_loc_conf_t *llcf);
ngx_int_t ngx_http_customer_options(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t allowed);
ngx_int_t ngx_http_customer_add_header(ngx_http_request_t *r,
    const char *key, u_char *data, size_t len);


#endif /* _NGX_HTTP_CUSTOMER_ACCESS_H_INCLUDED_ */

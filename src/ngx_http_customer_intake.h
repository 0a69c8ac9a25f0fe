
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_INTAKE_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_INTAKE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


ngx_int_t ngx_http_customer_handler(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_customer_header(ngx_http_request_t *r,
    const char *name, size_t len, ngx_uint_t nth);
ngx_table_elt_t *ngx_http_customer_list_header(ngx_list_t *headers,
    const char *name, size_t len, ngx_uint_t nth);
ngx_int_t ngx_http_customer_prefer(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_customer_arg_str(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_str_t *value);
ngx_int_t ngx_http_customer_arg_uint(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_uint_t def, ngx_uint_t min, ngx_uint_t max,
    ngx_uint_t *value);
ngx_int_t ngx_http_customer_is_uuid(ngx_str_t *s);
ngx_int_t ngx_http_customer_id(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_uuid_param(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t n, const char *name);
ngx_int_t ngx_http_customer_page_args(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t *page, ngx_uint_t *limit);
ngx_int_t ngx_http_customer_arg_flag(ngx_http_customer_ctx_t *ctx,
    const char *name, const char **value);


#endif /* _NGX_HTTP_CUSTOMER_INTAKE_H_INCLUDED_ */


/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_QUERY_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_QUERY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


ngx_http_customer_pg_query_t *ngx_http_customer_query_create(
    ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_query_run(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done);
ngx_int_t ngx_http_customer_page_values(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_uint_t n, ngx_uint_t page,
    ngx_uint_t limit);
char *ngx_http_customer_body_param(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_if_match(ngx_http_customer_ctx_t *ctx,
    const char **version);
ngx_int_t ngx_http_customer_member_param(ngx_http_customer_ctx_t *ctx,
    const char *name, const char **value);
char *ngx_http_customer_cstr(ngx_pool_t *pool, const void *data,
    size_t len);
char *ngx_http_customer_found(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res, ngx_int_t *rc);
char *ngx_http_customer_value(ngx_pool_t *pool, PGresult *res, int row,
    int col);


#endif /* _NGX_HTTP_CUSTOMER_QUERY_H_INCLUDED_ */


/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_IDEMPOTENCY_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_IDEMPOTENCY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


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


#endif /* _NGX_HTTP_CUSTOMER_IDEMPOTENCY_H_INCLUDED_ */

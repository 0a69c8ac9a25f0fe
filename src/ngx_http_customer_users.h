
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_USERS_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_USERS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


ngx_int_t ngx_http_customer_user_check(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done);


#endif /* _NGX_HTTP_CUSTOMER_USERS_H_INCLUDED_ */

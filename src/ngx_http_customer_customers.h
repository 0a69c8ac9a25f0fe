
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_CUSTOMERS_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_CUSTOMERS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"


ngx_int_t ngx_http_customer_customers_init(ngx_cycle_t *cycle);

extern ngx_http_customer_field_t  ngx_http_customer_internal_fields[];


#endif /* _NGX_HTTP_CUSTOMER_CUSTOMERS_H_INCLUDED_ */

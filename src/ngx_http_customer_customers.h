
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_CUSTOMERS_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_CUSTOMERS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


ngx_int_t ngx_http_customer_customers_init(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_CUSTOMER_CUSTOMERS_H_INCLUDED_ */

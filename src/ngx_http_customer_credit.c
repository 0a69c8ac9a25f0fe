
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"


ngx_http_customer_route_t  ngx_http_customer_credit_routes[] = {
    { 0, NULL, NULL, 0, 0, 0 }
};

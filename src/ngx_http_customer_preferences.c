
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"


/*
 * Preferences: the groups of DESIGN.md 4.3, validated here for the
 * customer record's "preferences" member and for the preferences routes.
 */


/* the members of "preferences" (customers.c validates the record with it) */
ngx_http_customer_field_t  ngx_http_customer_preference_fields[] = {
    { "newsletter", ngx_http_customer_check_bool, 0, 0, 0, NULL, NULL },
    { "notifications", ngx_http_customer_check_bool, 0, 0, 0, NULL, NULL },
    { "language", ngx_http_customer_check_language, 0, 0, 0, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


ngx_http_customer_route_t  ngx_http_customer_preferences_routes[] = {
    { 0, NULL, NULL, 0, 0, 0 }
};


/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_CREDIT_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_CREDIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


/*
 * The one write of a score: $1 customer id, $2 score, $3 source, $4 who;
 * the status with its band, a history row and the alerts.  Columns:
 * customerId, creditScore, band, previousScore, previousBand, source,
 * lastUpdated, alerts (JSON).  No row: no such customer.
 */
extern ngx_http_customer_pg_stmt_t  ngx_http_customer_credit_put_sql;
extern ngx_http_customer_column_t  ngx_http_customer_credit_put_columns[];

#define NGX_HTTP_CUSTOMER_CREDIT_PUT_NCOLUMNS  8


#endif /* _NGX_HTTP_CUSTOMER_CREDIT_H_INCLUDED_ */

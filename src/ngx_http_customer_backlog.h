
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_BACKLOG_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_BACKLOG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


/* a worker's counts are used for an answer until they are this old, ms */
#define NGX_HTTP_CUSTOMER_BACKLOG_FRESH   1000

/* ... and, while a new count runs, until they are this old */
#define NGX_HTTP_CUSTOMER_BACKLOG_STALE   2000


/* the undelivered rows of the outbox, by destination */
typedef struct {
    ngx_int_t                       outbox_pending;   /* the Auth Service's */
    ngx_int_t                       outbox_dead;
    ngx_int_t                       events_pending;   /* the Notification
                                                         Service's */
    ngx_int_t                       events_dead;
} ngx_http_customer_backlog_t;


/*
 * Answers a request with the counts, or with bl NULL when they could not
 * be had; returns what a route's continuation returns.
 */
typedef ngx_int_t (*ngx_http_customer_backlog_pt)(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_backlog_t *bl);


ngx_int_t ngx_http_customer_backlog(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_backlog_pt answer);


#endif /* _NGX_HTTP_CUSTOMER_BACKLOG_H_INCLUDED_ */

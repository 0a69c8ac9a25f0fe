
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_EVENTS_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_EVENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_outbox.h"


/*
 * The scan for time-based events, then the delivery of due events to
 * the Notification Service; adds to counts, restores ctx->data and
 * continues with finish.
 */
ngx_int_t ngx_http_customer_events_run(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_counts_t *counts,
    ngx_http_customer_peer_done_pt finish);

char *ngx_http_customer_notification_secret(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


#endif /* _NGX_HTTP_CUSTOMER_EVENTS_H_INCLUDED_ */

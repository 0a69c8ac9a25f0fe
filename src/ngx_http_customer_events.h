
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
 * Claims the due rows of destination d ("notifications", "auth") as
 * "UPDATE events o ... FROM (...) c WHERE o.id = c.id", for the caller's
 * RETURNING: leased for 60 s, each row with a lease of its own.  A
 * customer's rows of one destination go in order: none while an older
 * one of the same customer and destination waits (one set aside as dead,
 * or never to be sent, does not hold the later ones back; nor does a
 * row of the other destination).
 */
#define NGX_HTTP_CUSTOMER_EVENTS_CLAIM(d)                                    \
    "UPDATE events o SET next_attempt_at = now() + interval '60 seconds',"  \
    " lease = gen_random_uuid()"                                            \
    " FROM (SELECT id FROM events a WHERE destination = '" d "'"            \
    " AND delivered_at IS NULL AND dead_at IS NULL AND NOT suppressed"      \
    " AND next_attempt_at <= now()"                                         \
    " AND NOT EXISTS (SELECT 1 FROM events p"                               \
    " WHERE p.customer_id = a.customer_id"                                  \
    " AND p.destination = a.destination AND p.delivered_at IS NULL"         \
    " AND p.dead_at IS NULL AND NOT p.suppressed AND p.id < a.id)"          \
    " ORDER BY next_attempt_at, id LIMIT 20"                                \
    " FOR UPDATE SKIP LOCKED) c WHERE o.id = c.id"


/*
 * The statements of the outbox loop that serve every destination (a
 * row's id and lease are its own): renew, release, delivered, failed.
 */
extern ngx_http_customer_pg_stmt_t  ngx_http_customer_events_renew_sql;
extern ngx_http_customer_pg_stmt_t  ngx_http_customer_events_release_sql;
extern ngx_http_customer_pg_stmt_t  ngx_http_customer_events_delivered_sql;
extern ngx_http_customer_pg_stmt_t  ngx_http_customer_events_failed_sql;


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

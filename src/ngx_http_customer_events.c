
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_events.h"
#include "ngx_http_customer_metrics.h"
#include "ngx_http_customer_peer.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_validate.h"


/*
 * Events for the Notification Service.  Triggers (sql/027_events.sql)
 * write each event into the events table in the statement that makes the
 * change, as a row of destination 'notifications' (a status change also
 * writes the same event's row of destination 'auth', for the Auth
 * Service: ngx_http_customer_status.c); the periodic scan raises the
 * time-based ones (service due or overdue, a document expiring or
 * expired) once per vehicle and due date and mileage, per document and
 * expiry date.  The outbox run that customer_outbox_trigger starts in
 * every worker delivers them after the Auth Service's rows, by the same
 * loop (ngx_http_customer_outbox.c): each destination is a sink of it,
 * its rows claimed with FOR UPDATE SKIP LOCKED and a lease of their own,
 * in order per customer and destination, retried with a backoff and set
 * aside as dead after ten failures.
 *
 * Each is POSTed to <customer_notification_service>/events as a
 * CloudEvents 1.0 structured JSON event, signed the Standard Webhooks
 * way: webhook-id (the event's id, the same at every attempt, for the
 * receiver to drop repeats), webhook-timestamp (seconds, this attempt's)
 * and webhook-signature, "v1,<base64 HMAC-SHA256 of id.timestamp.body>"
 * for each customer_notification_secret, so that a receiver holding
 * either the old or the new secret accepts it during a rotation.
 */


#define NGX_HTTP_CUSTOMER_EVENTS_SECRET_MIN  16  /* bytes */

#define NGX_HTTP_CUSTOMER_EVENT_SOURCE  "/customer-service"

/* an event as CloudEvents 1.0 structured JSON, from a row e of events */
#define NGX_HTTP_CUSTOMER_EVENT_JSON(e)                                      \
    "jsonb_build_object('specversion', '1.0', 'id', " e ".event_id,"        \
    " 'source', '" NGX_HTTP_CUSTOMER_EVENT_SOURCE "', 'type', " e ".type,"  \
    " 'time', api_ts(" e ".created_at), 'subject', " e ".subject,"          \
    " 'datacontenttype', 'application/json',"                               \
    " 'data', " e ".data || jsonb_build_object('channels',"                 \
    " to_jsonb(" e ".channels)))"


/* the scan first, then the sink's run */
typedef struct {
    ngx_http_customer_outbox_counts_t *counts;
    ngx_http_customer_peer_done_pt     finish;
    void                              *saved;     /* the caller's data */
} ngx_http_customer_events_t;


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_events_scanned);
static ngx_int_t ngx_http_customer_events_send(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_row_t *row);
static ngx_int_t ngx_http_customer_events_sign(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_row_t *row, ngx_str_t *ts, ngx_str_t *sig);
static NGX_HTTP_CUSTOMER_CHECK(after);
static NGX_HTTP_CUSTOMER_CHECK(events_limit);


static const char  *ngx_http_customer_event_types[] = {
    "customer.created", "customer.status_changed", "customer.updated",
    "vehicle.service_due", "vehicle.service_overdue", "document.expiring",
    "document.expired", "credit.alert", "loyalty.tier_changed", NULL
};


/* where an event's rows go: the Notification Service, the Auth Service */
static const char  *ngx_http_customer_event_destinations[] = {
    "notifications", "auth", NULL
};


/*
 * $1 type, $2 customerId, $3 after (a sequence), $4 limit, $5 destination
 * (the Notification Service's rows unless named): what the 30 days kept
 * hold, oldest first from the cursor on.  One row: the data.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_events_list_sql =
    NGX_HTTP_CUSTOMER_PG_READ(5,
    "WITH e AS (SELECT * FROM events"
    " WHERE destination = coalesce($5::text, 'notifications')"
    " AND ($1::text IS NULL OR type = $1::text)"
    " AND ($2::uuid IS NULL OR customer_id = $2::uuid)"
    " AND id > coalesce($3::bigint, 0)"
    " AND created_at >= now() - interval '30 days'"
    " ORDER BY id LIMIT coalesce($4::integer, 50) + 1),"
    " p AS (SELECT * FROM e ORDER BY id LIMIT coalesce($4::integer, 50))"
    " SELECT jsonb_build_object('events', coalesce(jsonb_agg("
    NGX_HTTP_CUSTOMER_EVENT_JSON("p")
    " || jsonb_build_object('sequence', p.id, 'customerId', p.customer_id,"
    " 'delivery', jsonb_build_object('destination', p.destination,"
    " 'status', CASE"
    " WHEN p.delivered_at IS NOT NULL THEN 'delivered'"
    " WHEN p.suppressed THEN 'suppressed'"
    " WHEN p.dead_at IS NOT NULL THEN 'dead' ELSE 'pending' END,"
    " 'attempts', p.attempts, 'deliveredAt', api_ts(p.delivered_at),"
    " 'lastError', p.last_error)) ORDER BY p.id), '[]'),"
    " 'count', count(p.id), 'nextAfter', max(p.id),"
    " 'hasMore', (SELECT count(*) FROM e) > count(p.id))"
    " FROM p");


ngx_http_customer_route_t  ngx_http_customer_events_routes[] = {
    { NGX_HTTP_GET, "/api/events", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .params = {
          NGX_HTTP_CUSTOMER_ENUM("type", ngx_http_customer_event_types),
          NGX_HTTP_CUSTOMER_CHECKED("customerId",
                                    ngx_http_customer_check_uuid, 0, 0),
          NGX_HTTP_CUSTOMER_CHECKED("after", ngx_http_customer_check_after,
                                    0, 0),
          NGX_HTTP_CUSTOMER_CHECKED("limit",
                                    ngx_http_customer_check_events_limit,
                                    0, 0),
          NGX_HTTP_CUSTOMER_ENUM("destination",
                                 ngx_http_customer_event_destinations) },
      NGX_HTTP_CUSTOMER_AS_JSON(&ngx_http_customer_events_list_sql,
                                "Events retrieved successfully") },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/*
 * $1 the least time between two scans ("<n> milliseconds"): raises the
 * time-based events (at most one scan per interval over all workers),
 * prunes what was settled more than 30 days ago, and the once-keys of
 * cycles more than a year old.  Skips rows another worker is deleting.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_events_scan_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(1,
    "WITH pruned AS (DELETE FROM events WHERE id IN (SELECT id FROM events"
    " WHERE created_at < now() - interval '30 days'"
    " AND (delivered_at IS NOT NULL OR dead_at IS NOT NULL OR suppressed)"
    " LIMIT 500 FOR UPDATE SKIP LOCKED)),"
    " forgotten AS (DELETE FROM event_once WHERE key IN (SELECT key"
    " FROM event_once WHERE raised_at < now() - interval '400 days'"
    " LIMIT 500 FOR UPDATE SKIP LOCKED))"
    " SELECT events_scan($1::interval)");


/* the due events of the Notification Service, each as its CloudEvent */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_events_claim_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(0,
    NGX_HTTP_CUSTOMER_EVENTS_CLAIM("notifications")
    " RETURNING o.id, o.lease, o.event_id, "
    NGX_HTTP_CUSTOMER_EVENT_JSON("o") "::text");


/*
 * The statements below serve every destination (the Auth Service's sink
 * too): a row's id and lease are its own.
 */

/* just before a send: no row, another worker took the event over */
ngx_http_customer_pg_stmt_t  ngx_http_customer_events_renew_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "UPDATE events SET next_attempt_at = now() + interval '60 seconds'"
    " WHERE id = $1 AND lease = $2::uuid AND delivered_at IS NULL"
    " AND dead_at IS NULL RETURNING id");


/* events a run leaves unsent, due again at once: $1 their leases */
ngx_http_customer_pg_stmt_t  ngx_http_customer_events_release_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(1,
    "UPDATE events SET next_attempt_at = now()"
    " WHERE lease = ANY ($1::uuid[]) AND delivered_at IS NULL"
    " AND dead_at IS NULL");


/* the outcome counts only while the lease is the claimant's */
ngx_http_customer_pg_stmt_t  ngx_http_customer_events_delivered_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "UPDATE events SET delivered_at = now(), attempts = attempts + 1,"
    " last_error = NULL WHERE id = $1 AND lease = $2::uuid");


/* a retry with the outboxes' backoff, dead after ten failures */
ngx_http_customer_pg_stmt_t  ngx_http_customer_events_failed_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(3,
    "UPDATE events SET attempts = attempts + 1, last_error = $2,"
    NGX_HTTP_CUSTOMER_OUTBOX_BACKOFF
    " WHERE id = $1 AND lease = $3::uuid");


/* the Notification Service as a sink of the outbox loop: id, body */
static ngx_http_customer_outbox_sink_t  ngx_http_customer_events_sink = {
    "notification service", "customer_notification_service",
    NGX_HTTP_CUSTOMER_PEER_NOTIFY, 2,
    &ngx_http_customer_events_claim_sql, &ngx_http_customer_events_renew_sql,
    &ngx_http_customer_events_release_sql,
    &ngx_http_customer_events_delivered_sql,
    &ngx_http_customer_events_failed_sql, ngx_http_customer_events_send, 1
};


ngx_int_t
ngx_http_customer_events_run(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_counts_t *counts,
    ngx_http_customer_peer_done_pt finish)
{
    u_char                         *p;
    ngx_http_customer_events_t     *ev;
    ngx_http_customer_pg_query_t   *q;
    ngx_http_customer_main_conf_t  *cmcf;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer events run");

    ev = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_customer_events_t));
    if (ev == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ev->counts = counts;
    ev->finish = finish;
    ev->saved = ctx->data;
    ctx->data = ev;

    cmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_customer_module);

    p = ngx_pnalloc(ctx->request->pool,
                    NGX_INT_T_LEN + sizeof(" milliseconds"));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(p, "%M milliseconds%Z", cmcf->event_scan_interval);

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = (char *) p;

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_events_scan_sql,
                                       ngx_http_customer_events_scanned);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_events_scanned)
{
    ngx_http_customer_events_t    *ev;
    ngx_http_customer_loc_conf_t  *llcf;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* the next run scans again: nothing is lost */
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "customer: the event scan failed: %s",
                      ngx_http_customer_pg_why(res));

    } else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
               && ngx_strcmp(PQgetvalue(res, 0, 0), "0") != 0)
    {
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "customer: the event scan raised %s events",
                      PQgetvalue(res, 0, 0));
    }

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    ev = ctx->data;
    ctx->data = ev->saved;

    if (llcf->notification_service.len == 0) {
        /* nowhere to send them: they wait in the outbox */
        return ev->finish(ctx);
    }

    return ngx_http_customer_outbox_run(ctx, &ngx_http_customer_events_sink,
                                        ev->counts, ev->finish);
}


/*
 * The Notification Service sink's send: POST <service>/events, the
 * event's JSON as the claim wrote it, signed.
 */

static ngx_int_t
ngx_http_customer_events_send(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_row_t *row)
{
    ngx_str_t                      path, args, body, v, ts, sig;
    ngx_array_t                   *h;
    ngx_keyval_t                  *kv;
    ngx_http_customer_loc_conf_t  *llcf;

    if (ngx_http_customer_events_sign(ctx, row, &ts, &sig) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v.data = (u_char *) row->cols[0];
    v.len = ngx_strlen(row->cols[0]);

    h = ngx_array_create(ctx->request->pool, 4, sizeof(ngx_keyval_t));
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the signature only when there are secrets */

    kv = ngx_array_push_n(h, sig.len ? 4 : 3);
    if (kv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&kv[0].key, "Content-Type");
    ngx_str_set(&kv[0].value, "application/cloudevents+json; charset=utf-8");
    ngx_str_set(&kv[1].key, "webhook-id");
    kv[1].value = v;
    ngx_str_set(&kv[2].key, "webhook-timestamp");
    kv[2].value = ts;

    if (sig.len) {
        ngx_str_set(&kv[3].key, "webhook-signature");
        kv[3].value = sig;
    }

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    ngx_str_set(&path, "/events");
    ngx_str_null(&args);

    body.data = (u_char *) row->cols[1];
    body.len = ngx_strlen(row->cols[1]);

    ctx->peer_headers = h;

    /*
     * Delivery is at least once: the mark "delivered" can be lost after
     * the Notification Service took the event, which is then sent again
     * with the same webhook-id (and Idempotency-Key).
     */

    return ngx_http_customer_peer_call(ctx, &llcf->notification_service,
                                       NGX_HTTP_POST, &path, &args, &body,
                                       &v, ngx_http_customer_outbox_sent);
}


/*
 * ts: this attempt's time in seconds; sig: "v1,<base64>" for each
 * secret, separated by spaces, empty without secrets.
 */

static ngx_int_t
ngx_http_customer_events_sign(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_row_t *row, ngx_str_t *ts, ngx_str_t *sig)
{
    u_char                         *p, *msg;
    size_t                          len;
    ngx_str_t                       mac, b64, *secret;
    ngx_uint_t                      i;
    unsigned int                    mac_len;
    u_char                          md[EVP_MAX_MD_SIZE];
    ngx_http_customer_main_conf_t  *cmcf;

    ts->data = ngx_pnalloc(ctx->request->pool, NGX_TIME_T_LEN);
    if (ts->data == NULL) {
        return NGX_ERROR;
    }

    ts->len = ngx_sprintf(ts->data, "%T", ngx_time()) - ts->data;

    ngx_str_null(sig);

    cmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_customer_module);

    if (cmcf->notification_secrets == NULL) {
        return NGX_OK;
    }

    /* the signed content: id.timestamp.body */

    len = ngx_strlen(row->cols[0]) + 1 + ts->len + 1
          + ngx_strlen(row->cols[1]);

    msg = ngx_pnalloc(ctx->request->pool, len);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(msg, "%s.%V.%s", row->cols[0], ts, row->cols[1]);

    secret = cmcf->notification_secrets->elts;

    sig->data = ngx_pnalloc(ctx->request->pool,
                            cmcf->notification_secrets->nelts
                            * (sizeof("v1, ") - 1
                               + ngx_base64_encoded_length(32)));
    if (sig->data == NULL) {
        return NGX_ERROR;
    }

    p = sig->data;

    for (i = 0; i < cmcf->notification_secrets->nelts; i++) {

        if (HMAC(EVP_sha256(), secret[i].data, (int) secret[i].len, msg, len,
                 md, &mac_len)
            == NULL)
        {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "customer: HMAC-SHA256 failed");
            return NGX_ERROR;
        }

        mac.data = md;
        mac.len = mac_len;

        if (i > 0) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, "v1,", 3);

        b64.data = p;
        ngx_encode_base64(&b64, &mac);
        p += b64.len;
    }

    sig->len = p - sig->data;

    return NGX_OK;
}


/* after: a sequence from an earlier page, a whole number */

static NGX_HTTP_CUSTOMER_CHECK(after)
{
    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING || v->str.len == 0
        || v->str.len > 18
        || ngx_atoof(v->str.data, v->str.len) == NGX_ERROR)
    {
        return ngx_http_customer_fail(ctx, path,
                                      "Must be the sequence of an event "
                                      "(a whole number)");
    }

    return NGX_OK;
}


static NGX_HTTP_CUSTOMER_CHECK(events_limit)
{
    ngx_int_t  n;

    n = NGX_ERROR;

    if (v->type == NGX_HTTP_CUSTOMER_JSON_STRING && v->str.len <= 3) {
        n = ngx_atoi(v->str.data, v->str.len);
    }

    if (n < 1 || n > 200) {
        return ngx_http_customer_fail(ctx, path,
                                      "Must be a whole number from 1 to "
                                      "200");
    }

    return NGX_OK;
}


/*
 * customer_notification_secret whsec_<base64> | <text>: once per secret;
 * every one signs each event, the newest first by convention.
 */

char *
ngx_http_customer_notification_secret(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_customer_main_conf_t  *cmcf = conf;

    ngx_str_t  *value, *secret, src;

    value = cf->args->elts;

    secret = ngx_http_customer_array_push(cf->pool,
                                          &cmcf->notification_secrets, 2,
                                          sizeof(ngx_str_t));
    if (secret == NULL) {
        return NGX_CONF_ERROR;
    }

    if (value[1].len > 6 && ngx_strncmp(value[1].data, "whsec_", 6) == 0) {
        src.data = value[1].data + 6;
        src.len = value[1].len - 6;

        secret->data = ngx_pnalloc(cf->pool,
                                   ngx_base64_decoded_length(src.len));
        if (secret->data == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_decode_base64(secret, &src) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": \"whsec_\" must be followed by "
                               "base64", &cmd->name);
            return NGX_CONF_ERROR;
        }

    } else {
        *secret = value[1];
    }

    if (secret->len < NGX_HTTP_CUSTOMER_EVENTS_SECRET_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be at least %d bytes",
                           &cmd->name, NGX_HTTP_CUSTOMER_EVENTS_SECRET_MIN);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}

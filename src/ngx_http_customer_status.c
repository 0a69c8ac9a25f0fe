
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_events.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_metrics.h"
#include "ngx_http_customer_outbox.h"
#include "ngx_http_customer_peer.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_status.h"


/*
 * Status changes and the Auth Service.  One statement changes the status,
 * keeps the change in customer_status_history (whose trigger raises the
 * customer.status_changed event for the Notification Service,
 * sql/027_events.sql) and writes the same event's row of destination
 * 'auth' into the events outbox ("tell the Auth Service isActive=...",
 * sql/029_auth_events.sql): all or nothing.  After the commit the
 * request delivers its own row (PATCH /api/auth/user/{userId}/status
 * through customer_auth_service) and answers; the row holds a 60 s lease
 * so nobody else sends it meanwhile.  A row not delivered stays with a
 * backoff; POST /api/customers/internal/outbox delivers what is due.  The
 * delivery loop is the outbox's one (ngx_http_customer_outbox.c): the
 * Auth Service is a sink of it, as the Notification Service is, and the
 * same run delivers both.  Each worker has a timer that calls that route
 * over loopback (customer_outbox_trigger), so there is always a real
 * request for the subrequests to hang from.  Rows survive reloads and
 * restarts.
 */


/* how long the trigger waits for a run's answer (ms) */
#define NGX_HTTP_CUSTOMER_TRIGGER_WAIT   300000


/* a status change, kept for its answer, and how its delivery went */
typedef struct {
    char                              *values[6];
    ngx_http_customer_outbox_counts_t  counts;
} ngx_http_customer_outbox_t;


typedef struct {
    ngx_peer_connection_t          peer;
    ngx_pool_t                    *pool;
    ngx_buf_t                     *out;
    ngx_event_t                    timer;
    ngx_http_customer_main_conf_t *cmcf;
} ngx_http_customer_trigger_t;


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_status_done);
static ngx_int_t ngx_http_customer_status_answer(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_outbox(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_outbox_events(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_outbox_answer(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_auth_send(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_row_t *row);

static void ngx_http_customer_trigger_tick(ngx_event_t *ev);
static void ngx_http_customer_trigger_handler(ngx_event_t *ev);
static void ngx_http_customer_trigger_close(
    ngx_http_customer_trigger_t *t);
static ngx_int_t ngx_http_customer_trigger_io(ngx_http_customer_trigger_t *t,
    ngx_event_t *ev, ssize_t n);


/* the stored history of one customer's status, newest first */

static ngx_http_customer_column_t  ngx_http_customer_status_history_columns[]
    = {
    { "historyId", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "oldStatus", NGX_HTTP_CUSTOMER_COL_STRING },
    { "newStatus", NGX_HTTP_CUSTOMER_COL_STRING },
    { "reason", NGX_HTTP_CUSTOMER_COL_STRING },
    { "changedBy", NGX_HTTP_CUSTOMER_COL_STRING },
    { "changedAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


/*
 * $1 customer id, $2 limit, $3 offset.  No row: no such customer;
 * otherwise the total in each row, and one row of NULLs for an empty page.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_status_history_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(3,
    "SELECT t.total, h.* FROM customers c"
    " CROSS JOIN LATERAL (SELECT count(*) AS total"
    " FROM customer_status_history WHERE customer_id = c.id) t"
    " LEFT JOIN LATERAL (SELECT h.id, h.old_status, h.new_status, h.reason,"
    " h.changed_by, api_ts(h.changed_at) FROM customer_status_history h"
    " WHERE h.customer_id = c.id"
    " ORDER BY h.changed_at DESC, h.id DESC LIMIT $2 OFFSET $3) h ON true"
    " WHERE c.id = $1");


static const char  *ngx_http_customer_statuses[] = {
    "Active", "Inactive", "Suspended", NULL
};

static ngx_http_customer_field_t  ngx_http_customer_status_fields[] = {
    NGX_HTTP_CUSTOMER_ONE_OF("status", REQUIRED, ngx_http_customer_statuses),
    NGX_HTTP_CUSTOMER_NULLABLE("reason", text, 0, 500),
    NGX_HTTP_CUSTOMER_FIELDS_END
};

static ngx_http_customer_field_t  ngx_http_customer_reason_fields[] = {
    NGX_HTTP_CUSTOMER_NULLABLE("reason", text, 0, 500),
    NGX_HTTP_CUSTOMER_FIELDS_END
};


/*
 * $1 id, $2 status, $3 reason, $4 who: change, history, the event's row
 * for the Auth Service at once (the history's trigger writes its row for
 * the Notification Service, with the same event_id).  The row is this
 * request's to send (due in 60 s) unless an earlier event of the customer
 * is still pending, as committed once the row lock is held
 * (events_auth_pending()); then it is due now, behind that one.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_status_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "WITH cur AS (SELECT id, user_id, customer_status, updated_at,"
    " updated_by FROM customers WHERE id = $1 FOR UPDATE),"
    " u AS (UPDATE customers c SET customer_status = $2::text,"
    " updated_at = now(), updated_by = $4, version = c.version + 1"
    " FROM cur WHERE c.id = cur.id AND cur.customer_status <> $2::text"
    " RETURNING c.id, c.user_id, c.updated_at, c.updated_by),"
    " h AS (INSERT INTO customer_status_history (customer_id, old_status,"
    " new_status, reason, changed_by, event_id) SELECT cur.id,"
    " cur.customer_status, $2::text, $3, $4, gen_random_uuid()"
    " FROM cur JOIN u ON u.id = cur.id RETURNING event_id),"
    " o AS (INSERT INTO events (event_id, destination, type, customer_id,"
    " subject, data, channels, next_attempt_at, lease)"
    " SELECT h.event_id, 'auth', 'customer.status_changed', u.id,"
    " 'customers/' || u.id, status_event_data(u.id, u.user_id,"
    " cur.customer_status, $2::text, $3, $4), '{}',"
    " CASE WHEN events_auth_pending(u.id) THEN now()"
    " ELSE now() + interval '60 seconds' END, gen_random_uuid()"
    " FROM u, h, cur"
    " RETURNING id, data->>'userId' AS user_id,"
    " (data->>'isActive')::boolean AS is_active, customer_id,"
    " data->>'reason' AS reason, 'customer-outbox-' || id AS key, lease,"
    " next_attempt_at <= now() AS queued)"
    " SELECT cur.id, $2::text, api_ts(coalesce(u.updated_at,"
    " cur.updated_at)), CASE WHEN u.id IS NULL THEN cur.updated_by"
    " ELSE u.updated_by END, cur.customer_status,"
    " o.id, o.user_id, o.is_active, o.customer_id, o.reason, o.key,"
    " o.lease, o.queued"
    " FROM cur LEFT JOIN u ON true LEFT JOIN o ON true");


/*
 * The Auth Service's due rows of the events (NGX_HTTP_CUSTOMER_EVENTS_CLAIM
 * says how), each with the Idempotency-Key it is sent with: a row moved
 * from the former auth_outbox keeps its own.
 * The same periodic run expires idempotency keys older than 24 hours
 * (loyalty's and the other routes'), at most 500 of each a time,
 * skipping rows another worker is deleting.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_claim_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(0,
    "WITH expired AS (DELETE FROM loyalty_idempotency"
    " WHERE (customer_id, key) IN (SELECT customer_id, key"
    " FROM loyalty_idempotency"
    " WHERE created_at < now() - interval '24 hours'"
    " LIMIT 500 FOR UPDATE SKIP LOCKED)),"
    " expired_keys AS (DELETE FROM idempotency_keys"
    " WHERE (caller, key) IN (SELECT caller, key FROM idempotency_keys"
    " WHERE created_at < now() - interval '24 hours'"
    " LIMIT 500 FOR UPDATE SKIP LOCKED))"
    " " NGX_HTTP_CUSTOMER_EVENTS_CLAIM("auth")
    " RETURNING o.id, o.lease, o.data->>'userId',"
    " (o.data->>'isActive')::boolean, o.customer_id, o.data->>'reason',"
    " coalesce(o.delivery_key, 'customer-outbox-' || o.id)");


/*
 * The Auth Service as a sink of the outbox loop: userId, isActive,
 * customerId, reason, Idempotency-Key
 */
static ngx_http_customer_outbox_sink_t  ngx_http_customer_auth_sink = {
    "auth service", "customer_auth_service", NGX_HTTP_CUSTOMER_PEER_AUTH, 5,
    &ngx_http_customer_claim_sql, &ngx_http_customer_events_renew_sql,
    &ngx_http_customer_events_release_sql,
    &ngx_http_customer_events_delivered_sql,
    &ngx_http_customer_events_failed_sql, ngx_http_customer_auth_send, 0
};


/* $1 the path's id, $2 the new status, $3 the reason, $4 who */
#define NGX_HTTP_CUSTOMER_STATUS(body, status)                               \
    .fields = body, .stmt = &ngx_http_customer_status_sql,                   \
    .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID, status,                       \
                NGX_HTTP_CUSTOMER_NAMED(BODY, "reason"),                     \
                NGX_HTTP_CUSTOMER_PARAM(SUB) },                              \
    .done = ngx_http_customer_status_done

ngx_http_customer_route_t  ngx_http_customer_status_routes[] = {
    { NGX_HTTP_PATCH, "/api/customers/{}/status", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_STATUS(ngx_http_customer_status_fields,
                               NGX_HTTP_CUSTOMER_NAMED(BODY, "status")) },
    /* its body is optional: only a reason */
    { NGX_HTTP_POST, "/api/customers/{}/deactivate",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 2, 0,
      NGX_HTTP_CUSTOMER_STATUS(ngx_http_customer_reason_fields,
                               NGX_HTTP_CUSTOMER_NAMED(VALUE, "Inactive")) },
    { NGX_HTTP_POST, "/api/customers/internal/outbox", ngx_http_customer_outbox,
      NGX_HTTP_CUSTOMER_SERVICE, 0, 0, NGX_HTTP_CUSTOMER_HOOK },
    { NGX_HTTP_GET, "/api/customers/{}/status-history",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .stmt = &ngx_http_customer_status_history_sql,
      .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID,
                  NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,
      .message = "Status history retrieved successfully",
      .list = "history",
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_status_history_columns) },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_status_done)
{
    int                              i;
    ngx_int_t                        rc;
    ngx_pool_t                      *pool;
    ngx_http_customer_outbox_t      *ob;
    ngx_http_customer_outbox_row_t   row;

    if (ngx_http_customer_rows(ctx, q, res, &rc) == 0) {
        return rc;
    }

    pool = ctx->request->pool;

    ob = ngx_pcalloc(pool, sizeof(ngx_http_customer_outbox_t));
    if (ob == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = ob;

    /* keep the answer's values: res is gone after this call */

    for (i = 0; i < 5; i++) {
        ob->values[i] = PQgetisnull(res, 0, i)
                        ? NULL
                        : ngx_http_customer_value(pool, res, 0, i);
    }

    ob->values[5] = PQgetisnull(res, 0, 5) ? NULL : "";

    /*
     * An older change of this customer still waits in the outbox: this
     * one goes after it, from the outbox, never ahead of it from here.
     */

    if (PQgetisnull(res, 0, 5) || PQgetvalue(res, 0, 12)[0] == 't') {
        return ngx_http_customer_status_answer(ctx);
    }

    /*
     * The row as the sink's claim gives it (id, lease, user_id,
     * is_active, customer_id, reason, key) from columns 5, 11, 6 to 10.
     */

    if (ngx_http_customer_outbox_row(pool, res, 0, 5, 11, 6,
                                     ngx_http_customer_auth_sink.ncols, &row)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_outbox_deliver(ctx, &ngx_http_customer_auth_sink,
                                            &row, &ob->counts,
                                            ngx_http_customer_status_answer);
}


static ngx_int_t
ngx_http_customer_status_answer(ngx_http_customer_ctx_t *ctx)
{
    yajl_gen                     g;
    const char                  *auth;
    ngx_http_customer_outbox_t  *ob;

    ob = ctx->data;

    g = ngx_http_customer_envelope(ctx,
                                   "Customer status updated successfully");
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "customerId");
    ngx_http_customer_gen_cstr(g, ob->values[0]);
    ngx_http_customer_gen_lit(g, "customerStatus");
    ngx_http_customer_gen_cstr(g, ob->values[1]);
    ngx_http_customer_gen_lit(g, "previousStatus");
    ngx_http_customer_gen_cstr(g, ob->values[4]);
    ngx_http_customer_gen_lit(g, "updatedAt");
    ngx_http_customer_gen_cstr(g, ob->values[2]);
    ngx_http_customer_gen_lit(g, "updatedBy");

    if (ob->values[3]) {
        ngx_http_customer_gen_cstr(g, ob->values[3]);

    } else {
        yajl_gen_null(g);
    }

    /* "notified", "pending" (kept in the outbox), or "unchanged" */

    auth = ob->values[5] == NULL ? "unchanged"
           : ob->counts.delivered ? "notified" : "pending";

    ngx_http_customer_gen_lit(g, "authService");
    ngx_http_customer_gen_cstr(g, auth);

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}


static ngx_int_t
ngx_http_customer_outbox(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_outbox_t  *ob;

    ob = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_customer_outbox_t));
    if (ob == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = ob;

    return ngx_http_customer_outbox_run(ctx, &ngx_http_customer_auth_sink,
                                        &ob->counts,
                                        ngx_http_customer_outbox_events);
}


/*
 * The Auth Service's rows are done: the events for the Notification
 * Service next, by the same loop, and one answer for both.
 */

static ngx_int_t
ngx_http_customer_outbox_events(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_outbox_t  *ob;

    ob = ctx->data;

    return ngx_http_customer_events_run(ctx, &ob->counts,
                                        ngx_http_customer_outbox_answer);
}


static ngx_int_t
ngx_http_customer_outbox_answer(ngx_http_customer_ctx_t *ctx)
{
    yajl_gen                     g;
    ngx_http_customer_outbox_t  *ob;

    ob = ctx->data;

    g = ngx_http_customer_envelope(ctx, "Outbox delivered");
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "claimed");
    yajl_gen_integer(g, ob->counts.claimed);
    ngx_http_customer_gen_lit(g, "delivered");
    yajl_gen_integer(g, ob->counts.delivered);
    ngx_http_customer_gen_lit(g, "failed");
    yajl_gen_integer(g, ob->counts.failed);
    ngx_http_customer_gen_lit(g, "skipped");
    yajl_gen_integer(g, ob->counts.skipped);

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}


/*
 * The Auth Service sink's send: PATCH /api/auth/user/{userId}/status
 * {userId, customerId, isActive, reason}.
 */

static ngx_int_t
ngx_http_customer_auth_send(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_outbox_row_t *row)
{
    yajl_gen                       g;
    ngx_str_t                      path, body, args, key;
    char                          *user_id, *customer_id, *reason;
    ngx_http_customer_loc_conf_t  *llcf;

    user_id = row->cols[0];
    customer_id = row->cols[2];
    reason = (row->null & 8) ? NULL : row->cols[3];

    if ((row->null & 7) || ngx_strchr(user_id, '/') != NULL
        || ngx_strcmp(user_id, ".") == 0
        || ngx_strcmp(user_id, "..") == 0)
    {
        /*
         * Not one path segment: a row older than the checks on userId
         * (sql/019_user_id_not_dot.sql), or one without a userId.  It is
         * never sent, and waits as a failure for the operator.
         */
        ngx_memzero(&ctx->peer, sizeof(ngx_http_customer_peer_t));
        ctx->peer.rc = NGX_ABORT;
        return ngx_http_customer_outbox_sent(ctx);
    }

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    if (llcf->auth_service.len == 0) {
        /* nowhere to send it: it waits in the outbox */
        ngx_memzero(&ctx->peer, sizeof(ngx_http_customer_peer_t));
        ctx->peer.rc = NGX_DECLINED;
        return ngx_http_customer_outbox_sent(ctx);
    }

    /*
     * The subrequest's URI is a decoded one: the proxy module escapes it
     * (spaces, '%', '?', '#', non-ASCII) on its way out.  A userId is
     * neither "." nor ".." and has no '/' (validation, CHECKs and the test
     * above), so it stays one segment.
     */

    path.data = ngx_pnalloc(ctx->request->pool,
                            sizeof("/api/auth/user//status") - 1
                            + ngx_strlen(user_id));
    if (path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path.len = ngx_sprintf(path.data, "/api/auth/user/%s/status", user_id)
               - path.data;

    g = ngx_http_customer_json_gen(ctx->request->pool);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "userId");
    ngx_http_customer_gen_cstr(g, user_id);
    ngx_http_customer_gen_lit(g, "customerId");
    ngx_http_customer_gen_cstr(g, customer_id);
    ngx_http_customer_gen_lit(g, "isActive");
    yajl_gen_bool(g, row->cols[1][0] == 't');
    ngx_http_customer_gen_lit(g, "reason");

    if (reason) {
        ngx_http_customer_gen_cstr(g, reason);

    } else {
        yajl_gen_null(g);
    }

    yajl_gen_map_close(g);

    if (ngx_http_customer_json_result(g, &body.data, &body.len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&args);

    /*
     * Delivery is at least once: the mark "delivered" can be lost after
     * the Auth Service took the update (PostgreSQL gone in between), and
     * the row is sent again when its lease runs out.  The key
     * (customer-outbox-<id>) is the same at every attempt, so the
     * receiver can tell a repeat.
     */

    key.data = (u_char *) row->cols[4];
    key.len = ngx_strlen(row->cols[4]);

    return ngx_http_customer_peer_call(ctx, &llcf->auth_service,
                                       NGX_HTTP_PATCH, &path, &args, &body,
                                       &key, ngx_http_customer_outbox_sent);
}


/*
 * The trigger: every customer_outbox_interval each worker POSTs to
 * /api/customers/internal/outbox at customer_outbox_trigger, with the
 * first service key.  A plain nginx peer connection; the answer is read
 * to the end and dropped.
 */

ngx_int_t
ngx_http_customer_trigger_init(ngx_cycle_t *cycle,
    ngx_http_customer_main_conf_t *cmcf)
{
    ngx_http_customer_trigger_t  *t;

    if (cmcf->trigger.naddrs == 0 || cmcf->auth.service_keys == NULL) {
        return NGX_OK;
    }

    t = ngx_pcalloc(cycle->pool, sizeof(ngx_http_customer_trigger_t));
    if (t == NULL) {
        return NGX_ERROR;
    }

    t->cmcf = cmcf;
    t->timer.handler = ngx_http_customer_trigger_tick;
    t->timer.data = t;
    t->timer.log = cycle->log;
    t->timer.cancelable = 1;

    ngx_add_timer(&t->timer, cmcf->outbox_interval);

    return NGX_OK;
}


static void
ngx_http_customer_trigger_tick(ngx_event_t *ev)
{
    ngx_int_t                     rc;
    ngx_str_t                    *key;
    ngx_buf_t                    *b;
    ngx_connection_t             *c;
    ngx_http_customer_trigger_t  *t;

    t = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* each failure closes what there is and waits for the next tick */

    t->pool = ngx_create_pool(1024, ev->log);
    if (t->pool == NULL) {
        ngx_http_customer_trigger_close(t);
        return;
    }

    key = t->cmcf->auth.service_keys->elts;

    b = ngx_create_temp_buf(t->pool, 256 + key->len);
    if (b == NULL) {
        ngx_http_customer_trigger_close(t);
        return;
    }

    b->last = ngx_sprintf(b->last,
                          "POST /api/customers/internal/outbox HTTP/1.0\r\n"
                          "Host: localhost\r\n"
                          "X-Service-API-Key: %V\r\n"
                          "Content-Length: 0\r\n\r\n", key);
    t->out = b;

    ngx_memzero(&t->peer, sizeof(ngx_peer_connection_t));
    t->peer.sockaddr = t->cmcf->trigger.addrs[0].sockaddr;
    t->peer.socklen = t->cmcf->trigger.addrs[0].socklen;
    t->peer.name = &t->cmcf->trigger.addrs[0].name;
    t->peer.get = ngx_event_get_peer;
    t->peer.log = ev->log;
    t->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&t->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_http_customer_trigger_close(t);
        return;
    }

    c = t->peer.connection;
    c->data = t;
    c->pool = t->pool;
    c->read->handler = ngx_http_customer_trigger_handler;
    c->write->handler = ngx_http_customer_trigger_handler;

    ngx_add_timer(c->write, 10000);

    if (rc == NGX_OK) {
        ngx_http_customer_trigger_handler(c->write);
    }
}


/* both events: the request written whole, then the answer read and dropped */

static void
ngx_http_customer_trigger_handler(ngx_event_t *ev)
{
    u_char                        buf[1024];
    ssize_t                       n;
    ngx_connection_t             *c;
    ngx_http_customer_trigger_t  *t;

    c = ev->data;
    t = c->data;

    if (ev->timedout) {
        ngx_http_customer_trigger_close(t);
        return;
    }

    while (!ev->write) {
        n = c->recv(c, buf, sizeof(buf));

        if (ngx_http_customer_trigger_io(t, ev, n) != NGX_OK) {
            return;
        }
    }

    if (t->out->pos == t->out->last) {
        /* written already: the read timer runs */
        return;
    }

    do {
        n = c->send(c, t->out->pos, t->out->last - t->out->pos);

        if (ngx_http_customer_trigger_io(t, ev, n) != NGX_OK) {
            return;
        }

        t->out->pos += n;

    } while (t->out->pos < t->out->last);

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_add_timer(c->read, NGX_HTTP_CUSTOMER_TRIGGER_WAIT);

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_customer_trigger_close(t);
    }
}


/*
 * What a send or a recv returned: NGX_OK to go on, else NGX_DONE once the
 * connection waits for its event again, or is closed: it broke, or the
 * answer ended (HTTP/1.0), done either way
 */

static ngx_int_t
ngx_http_customer_trigger_io(ngx_http_customer_trigger_t *t,
    ngx_event_t *ev, ssize_t n)
{
    ngx_int_t  rc;

    if (n == NGX_AGAIN) {
        rc = ev->write ? ngx_handle_write_event(ev, 0)
                       : ngx_handle_read_event(ev, 0);
        if (rc == NGX_OK) {
            return NGX_DONE;
        }
    }

    if (n <= 0) {
        ngx_http_customer_trigger_close(t);
        return NGX_DONE;
    }

    return NGX_OK;
}


static void
ngx_http_customer_trigger_close(ngx_http_customer_trigger_t *t)
{
    if (t->peer.connection) {
        ngx_close_connection(t->peer.connection);
        t->peer.connection = NULL;
    }

    if (t->pool) {
        ngx_destroy_pool(t->pool);
        t->pool = NULL;
    }

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(&t->timer, t->cmcf->outbox_interval);
    }
}



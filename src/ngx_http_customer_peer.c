
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_metrics.h"
#include "ngx_http_customer_peer.h"


/*
 * Calls to the Auth, Order and Complaint services are subrequests into
 * the internal locations the operator names (customer_order_service
 * /_svc/orders; ...), which proxy_pass to upstream{} blocks: timeouts,
 * retries, keepalive and balancing are nginx configuration.  The answer
 * is kept in memory (subrequest_output_buffer_size must hold it); when
 * the subrequest ends, nginx posts the parent, whose write event handler
 * then continues with ctx->peer_done.
 *
 * A subrequest shares the parent's headers and variables: it gets its
 * own header list (Accept, Content-Type, X-Request-Id and the service key
 * or the caller's token), its own Content-Length, and its own variables,
 * so a cached $proxy_internal_body_length of one call never leaks into
 * the next.
 */


static ngx_int_t ngx_http_customer_peer_post(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_customer_peer_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_customer_peer_header(ngx_http_request_t *sr,
    const char *key, ngx_str_t *value);


ngx_int_t
ngx_http_customer_peer_call(ngx_http_customer_ctx_t *ctx, ngx_str_t *loc,
    ngx_uint_t method, ngx_str_t *path, ngx_str_t *args, ngx_str_t *body,
    ngx_str_t *key, ngx_http_customer_peer_done_pt done)
{
    u_char                         *p;
    ngx_str_t                       uri, v, id;
    ngx_buf_t                      *b;
    ngx_uint_t                      i, own_type;
    ngx_array_t                    *extra;
    ngx_keyval_t                   *kv;
    ngx_table_elt_t                *h;
    ngx_http_request_t             *r, *sr;
    ngx_http_core_main_conf_t      *core;
    ngx_http_post_subrequest_t     *ps;
    ngx_http_customer_main_conf_t  *cmcf;

    /* by ngx_http_customer_method_index(): any other method is sent as GET */
    static ngx_str_t  names[] = {
        ngx_string("GET"), ngx_string("POST"), ngx_string("PUT"),
        ngx_string("PATCH"), ngx_string("DELETE"), ngx_string("GET")
    };

    struct {
        const char                 *name;
        ngx_str_t                  *value;
    } ours[] = {
        { "Content-Type", NULL }, { NULL, NULL },
        { "X-Request-Id", NULL }, { "Idempotency-Key", NULL }
    };

    r = ctx->request;

    if (loc->len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "customer: no location is configured for this "
                      "service (customer_*_service)");
        return ngx_http_customer_send_error(ctx, NGX_HTTP_BAD_GATEWAY,
                                            "Service not configured",
                                            "service",
                                            "This deployment has no route "
                                            "to the service");
    }

    uri.len = loc->len + path->len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(uri.data, loc->data, loc->len);
    ngx_memcpy(p, path->data, path->len);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = ngx_http_customer_peer_post;
    ps->data = ctx;

    ngx_memzero(&ctx->peer, sizeof(ngx_http_customer_peer_t));
    ctx->peer_done = done;

    if (ngx_http_subrequest(r, &uri, args, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sr->method = method;
    sr->method_name = names[ngx_http_customer_method_index(method)];

    /* headers, length and variables of its own */

    h = r->headers_in.authorization;

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));
    sr->headers_in.content_length_n = body ? (off_t) body->len : -1;
    sr->headers_in.keep_alive_n = -1;

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 8,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    core = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    sr->variables = ngx_pcalloc(r->pool, core->variables.nelts
                                         * sizeof(ngx_http_variable_value_t));
    if (sr->variables == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&v, "application/json");

    if (ngx_http_customer_peer_header(sr, "Accept", &v) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the caller's own headers: a Content-Type of its own replaces ours */

    extra = ctx->peer_headers;
    ctx->peer_headers = NULL;
    own_type = 0;

    if (extra) {
        kv = extra->elts;

        for (i = 0; i < extra->nelts; i++) {
            if (kv[i].key.len == sizeof("Content-Type") - 1
                && ngx_strncasecmp(kv[i].key.data, (u_char *) "Content-Type",
                                   kv[i].key.len)
                   == 0)
            {
                own_type = 1;
            }

            if (ngx_http_customer_peer_header(sr, (char *) kv[i].key.data,
                                              &kv[i].value)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    /*
     * Ours after them, those with a value: the key of our own, or else
     * the caller's token
     */

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_customer_module);

    ours[0].value = (body && !own_type) ? &v : NULL;
    ours[1].name = cmcf->peer_key.len ? "X-Service-API-Key" : "Authorization";
    ours[1].value = cmcf->peer_key.len ? &cmcf->peer_key
                                       : h ? &h->value : NULL;
    ours[2].value = (ngx_http_customer_request_id_of(r, &id) == NGX_OK)
                    ? &id : NULL;
    ours[3].value = key;

    for (i = 0; i < 4; i++) {
        if (ours[i].value
            && ngx_http_customer_peer_header(sr, ours[i].name, ours[i].value)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    sr->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (sr->request_body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (body) {
        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->pos = body->data;
        b->last = body->data + body->len;
        b->memory = 1;
        b->last_buf = 1;

        sr->request_body->bufs = ngx_alloc_chain_link(r->pool);
        if (sr->request_body->bufs == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sr->request_body->bufs->buf = b;
        sr->request_body->bufs->next = NULL;
        sr->request_body->buf = b;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "customer peer call \"%V?%V\"", &uri, args);

    r->write_event_handler = ngx_http_customer_peer_resume;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_customer_peer_header(ngx_http_request_t *sr, const char *key,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_http_customer_push_header(&sr->headers_in.headers, key, value);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->lowcase_key = ngx_pnalloc(sr->pool, h->key.len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, h->key.data, h->key.len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_customer_peer_post(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_customer_ctx_t  *ctx = data;

    ngx_buf_t         *b;
    ngx_connection_t  *c;

    /* nginx may call this twice for one subrequest */

    if (ctx->peer.done) {
        return rc;
    }

    ctx->peer.done = 1;
    ctx->peer.rc = rc;
    ctx->peer.status = sr->headers_out.status;

    c = sr->connection;

    if (c->error && !c->read->eof && !c->read->error && !c->write->error
        && !c->timedout)
    {
        /*
         * The client is still there: the error is the subrequest's own
         * (an answer over subrequest_output_buffer_size).  Left set, it
         * would close the client's connection without an answer.
         */
        c->error = 0;
        ctx->peer.rc = NGX_ERROR;
        return NGX_OK;
    }

    if (sr->out && sr->out->buf) {
        b = sr->out->buf;
        ctx->peer.body.data = b->pos;
        ctx->peer.body.len = b->last - b->pos;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "customer peer done rc:%i status:%ui", rc,
                   ctx->peer.status);

    /*
     * Whatever went wrong with the call (an answer over
     * subrequest_output_buffer_size, say) is ours to answer with 502:
     * handed back, an error would terminate the client's request too.
     */

    if (rc == NGX_ERROR || rc == NGX_HTTP_REQUEST_TIME_OUT
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST)
    {
        /* nginx says 499 when the in-memory buffer refused the answer */
        return NGX_OK;
    }

    return rc;
}


static void
ngx_http_customer_peer_resume(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_customer_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_customer_module);

    if (ctx == NULL || !ctx->peer.done) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    /* a 2xx JSON answer is parsed; anything else is the caller's to judge */

    if (ctx->peer.rc == NGX_OK && ctx->peer.status >= 200
        && ctx->peer.status < 300 && ctx->peer.body.len
        && ngx_http_customer_peer_parse(r->pool, &ctx->peer.body,
                                        &ctx->peer.json)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ctx->peer_done(ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * A service's answer as a JSON tree in pool, or NULL when it is not
 * strictly UTF-8 JSON (nonsense, for the caller to judge).  NGX_ERROR
 * only when out of memory.
 */

ngx_int_t
ngx_http_customer_peer_parse(ngx_pool_t *pool, ngx_str_t *body,
    ngx_http_customer_json_t **json)
{
    u_char     *copy;
    ngx_str_t   err;

    *json = NULL;

    copy = ngx_pnalloc(pool, body->len + 1);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(copy, body->data, body->len);
    copy[body->len] = '\0';

    if (ngx_http_customer_utf8(copy, body->len) != NGX_OK
        || ngx_http_customer_json_parse(pool, copy, body->len, json, &err)
           != NGX_OK)
    {
        *json = NULL;
    }

    return NGX_OK;
}


/*
 * A service's list: {"data": {"<name>": [...], "pagination": {...}}}, the
 * same without "data", {"data": [...]}, or a bare array.  NGX_DECLINED
 * when the answer has no such list.
 */

ngx_int_t
ngx_http_customer_peer_list(ngx_http_customer_ctx_t *ctx, const char *name,
    ngx_http_customer_json_t **items, ngx_http_customer_json_t **pg)
{
    ngx_http_customer_json_t  *root, *data;

    root = ctx->peer.json;
    *items = NULL;
    *pg = NULL;

    if (root == NULL) {
        return NGX_DECLINED;
    }

    data = ngx_http_customer_json_member(root, "data");

    if (root->type == NGX_HTTP_CUSTOMER_JSON_ARRAY) {
        *items = root;

    } else if (data && data->type == NGX_HTTP_CUSTOMER_JSON_ARRAY) {
        *items = data;

    } else {
        *items = ngx_http_customer_json_member(data ? data : root, name);
        *pg = ngx_http_customer_json_member(data ? data : root,
                                            "pagination");
    }

    if (*items == NULL || (*items)->type != NGX_HTTP_CUSTOMER_JSON_ARRAY) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * 502 when the service failed, refused or answered nonsense, 504 when it
 * did not answer in time.
 */

ngx_int_t
ngx_http_customer_peer_error(ngx_http_customer_ctx_t *ctx, const char *name,
    const char *what)
{
    u_char      *detail, *message;
    ngx_uint_t   status;

    ngx_http_customer_metrics_peer_failure(name[0] == 'A'
                                           ? NGX_HTTP_CUSTOMER_PEER_AUTH
                                           : name[0] == 'O'
                                           ? NGX_HTTP_CUSTOMER_PEER_ORDERS
                                           : NGX_HTTP_CUSTOMER_PEER_COMPLAINTS);

    status = (ctx->peer.rc == NGX_HTTP_GATEWAY_TIME_OUT
              || ctx->peer.status == NGX_HTTP_GATEWAY_TIME_OUT)
             ? NGX_HTTP_GATEWAY_TIME_OUT : NGX_HTTP_BAD_GATEWAY;

    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "customer: %s answered rc:%i status:%ui, %s JSON",
                  name, ctx->peer.rc, ctx->peer.status,
                  ctx->peer.json ? "with" : "without");

    message = ngx_pnalloc(ctx->request->pool, 128);
    detail = ngx_pnalloc(ctx->request->pool, 128);
    if (message == NULL || detail == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_snprintf(message, 127, "Unable to fetch %s%Z", what);
    ngx_snprintf(detail, 127, "%s %s. Please try again later.%Z", name,
                 status == NGX_HTTP_GATEWAY_TIME_OUT
                 ? "did not answer in time" : "is currently unavailable");

    return ngx_http_customer_send_error(ctx, status, (char *) message,
                                        "service", (char *) detail);
}

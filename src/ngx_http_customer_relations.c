
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_peer.h"
#include "ngx_http_customer_router.h"


/*
 * A customer's orders and complaints live in the Order and Complaint
 * services: the customer is looked up here first (404 without a call),
 * then the service is asked for one page.  A service that does not know
 * the customer (404) has nothing for it: an empty page.
 */


/* the service; the row names the page's member and the answer's message */
typedef struct {
    const char                  *name;      /* "Order Service" */
    const char                  *what;      /* "order data" */
    ngx_str_t                    path;      /* "/api/orders" */
    size_t                       loc;       /* offsetof the location */
} ngx_http_customer_relation_t;


typedef struct {
    ngx_http_customer_relation_t  *rel;
    ngx_uint_t                     page;
    ngx_uint_t                     limit;
} ngx_http_customer_history_t;


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_history_found);
static ngx_int_t ngx_http_customer_history_done(ngx_http_customer_ctx_t *ctx);
static void ngx_http_customer_gen_count(yajl_gen g,
    ngx_http_customer_json_t *pg, const char *key, ngx_uint_t def);


static ngx_http_customer_pg_stmt_t  ngx_http_customer_exists_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT id FROM customers WHERE id = $1");


/* the customer, its page and limit; then the service's page */
#define NGX_HTTP_CUSTOMER_RELATION                                           \
    .stmt = &ngx_http_customer_exists_sql,                                  \
    .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID,                              \
                NGX_HTTP_CUSTOMER_UINT("page", 1, 1000000, 1),              \
                NGX_HTTP_CUSTOMER_UINT("limit", 1, 100, 10) },              \
    .done = ngx_http_customer_history_found

ngx_http_customer_route_t  ngx_http_customer_relations_routes[] = {
    { NGX_HTTP_GET, "/api/customers/{}/orders", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      NGX_HTTP_CUSTOMER_RELATION, .list = "orders",
      .message = "Customer order history retrieved successfully" },
    { NGX_HTTP_GET, "/api/customers/{}/complaints",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      NGX_HTTP_CUSTOMER_RELATION,
      .message = "Customer complaint history retrieved successfully",
      .list = "complaints" },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


static ngx_http_customer_relation_t  ngx_http_customer_order_rel = {
    "Order Service", "order data", ngx_string("/api/orders"),
    offsetof(ngx_http_customer_loc_conf_t, order_service)
};

static ngx_http_customer_relation_t  ngx_http_customer_complaint_rel = {
    "Complaint Service", "complaint data", ngx_string("/api/complaints"),
    offsetof(ngx_http_customer_loc_conf_t, complaint_service)
};


/*
 * The customer is there: one page from the service the row's list names,
 * as the row checked.
 */

static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_history_found)
{
    ngx_int_t                      rc;
    ngx_str_t                      args, *loc;
    ngx_http_customer_history_t   *h;
    ngx_http_customer_loc_conf_t  *llcf;

    if (ngx_http_customer_rows(ctx, q, res, &rc) == 0) {
        return rc;
    }

    h = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_customer_history_t));
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->rel = (ngx_strcmp(ctx->route->list, "orders") == 0)
             ? &ngx_http_customer_order_rel : &ngx_http_customer_complaint_rel;
    ctx->data = h;

    /* the page and the limit as the row checked them, after the id */

    h->page = ngx_atoi((u_char *) q->values[1], ngx_strlen(q->values[1]));
    h->limit = ngx_atoi((u_char *) q->values[2], ngx_strlen(q->values[2]));

    args.data = ngx_pnalloc(ctx->request->pool,
                            sizeof("customerId=&page=&limit=") + 36
                            + 2 * NGX_INT_T_LEN);
    if (args.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args.len = ngx_sprintf(args.data, "customerId=%V&page=%ui&limit=%ui",
                           &ctx->params[0], h->page, h->limit)
               - args.data;

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);
    loc = (ngx_str_t *) ((u_char *) llcf + h->rel->loc);

    return ngx_http_customer_peer_call(ctx, loc, NGX_HTTP_GET, &h->rel->path,
                                       &args, NULL, NULL,
                                       ngx_http_customer_history_done);
}


static ngx_int_t
ngx_http_customer_history_done(ngx_http_customer_ctx_t *ctx)
{
    yajl_gen                      g;
    ngx_uint_t                    n;
    ngx_http_customer_json_t     *items, *pg, *e;
    ngx_http_customer_history_t  *h;

    h = ctx->data;
    items = NULL;
    pg = NULL;

    if (ctx->peer.rc == NGX_OK && ctx->peer.status == NGX_HTTP_NOT_FOUND) {
        /* the service has never heard of this customer */
        goto answer;
    }

    if (ctx->peer.rc != NGX_OK || ctx->peer.status < 200
        || ctx->peer.status >= 300 || ctx->peer.json == NULL)
    {
        return ngx_http_customer_peer_error(ctx, h->rel->name, h->rel->what);
    }

    if (ngx_http_customer_peer_list(ctx, ctx->route->list, &items, &pg)
        != NGX_OK)
    {
        ctx->peer.json = NULL;
        return ngx_http_customer_peer_error(ctx, h->rel->name, h->rel->what);
    }

answer:

    g = ngx_http_customer_envelope(ctx, ctx->route->message);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "customerId");
    ngx_http_customer_gen_str(g, &ctx->params[0]);
    ngx_http_customer_gen_cstr(g, ctx->route->list);
    yajl_gen_array_open(g);

    n = 0;

    for (e = items ? items->child : NULL; e; e = e->next) {
        ngx_http_customer_json_copy(g, e);
        n++;
    }

    yajl_gen_array_close(g);

    ngx_http_customer_gen_lit(g, "pagination");
    yajl_gen_map_open(g);
    ngx_http_customer_gen_count(g, pg, "currentPage", h->page);
    ngx_http_customer_gen_count(g, pg, "totalPages", n ? 1 : 0);
    ngx_http_customer_gen_count(g, pg, "totalItems", n);
    ngx_http_customer_gen_lit(g, "itemsPerPage");
    yajl_gen_integer(g, h->limit);
    yajl_gen_map_close(g);

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}


/* the service's pagination member key when it is a whole number, else ours */

static void
ngx_http_customer_gen_count(yajl_gen g, ngx_http_customer_json_t *pg,
    const char *key, ngx_uint_t def)
{
    ngx_http_customer_json_t  *v;

    v = ngx_http_customer_json_member(pg, key);

    ngx_http_customer_gen_cstr(g, key);

    if (v && v->type == NGX_HTTP_CUSTOMER_JSON_NUMBER
        && ngx_atoi(v->str.data, v->str.len) != NGX_ERROR)
    {
        yajl_gen_number(g, (const char *) v->str.data, v->str.len);
        return;
    }

    yajl_gen_integer(g, def);
}

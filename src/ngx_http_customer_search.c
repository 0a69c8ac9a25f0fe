
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_router.h"


/*
 * Search and analytics.  Search folds case and accents
 * (customer_fold(), migration 007) and ranks by pg_trgm's word
 * similarity, so "jonhatan", "JOSE" and "whitf" find Jonathan Whitfield
 * and José; candidates come from a table of the customers' words.
 * Analytics is one statement that builds its JSON in PostgreSQL.
 */


static ngx_int_t ngx_http_customer_search_term(
    ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_search_done);


static ngx_http_customer_column_t  ngx_http_customer_search_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "email", NGX_HTTP_CUSTOMER_COL_STRING },
    { "fullName", NGX_HTTP_CUSTOMER_COL_STRING },
    { "contactNumber", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerStatus", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerType", NGX_HTTP_CUSTOMER_COL_STRING },
    { "totalOrders", NGX_HTTP_CUSTOMER_COL_NUMBER }
};


/*
 * $1 the query, $2 the limit: customer_search() (sql/033) bounds the
 * candidates whatever the term, and ranks them by word similarity.
 */
#define NGX_HTTP_CUSTOMER_SEARCH_SQL                                         \
    "SELECT * FROM customer_search($1, $2::int)"

static ngx_http_customer_pg_stmt_t  ngx_http_customer_search_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(2,
    NGX_HTTP_CUSTOMER_SEARCH_SQL);


static ngx_http_customer_pg_stmt_t  ngx_http_customer_analytics_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(0,
    "WITH t AS (SELECT coalesce(sum(n), 0)::bigint AS total"
    " FROM customer_counts),"
    " v AS (SELECT count(*) AS verified FROM customers WHERE is_verified),"
    " o AS (SELECT coalesce(sum(total_orders), 0) AS orders,"
    " coalesce(sum(total_order_value), 0)::numeric(16,2) AS value,"
    " round(coalesce(avg(total_order_value), 0), 2) AS per_customer"
    " FROM customers)"
    " SELECT json_build_object("
    "'totalCustomers', t.total,"
    "'byStatus', (SELECT json_object_agg(s, coalesce(n, 0) ORDER BY s)"
    " FROM unnest(ARRAY['Active', 'Inactive', 'Suspended']) s"
    " LEFT JOIN (SELECT customer_status, sum(n)::bigint AS n"
    " FROM customer_counts GROUP BY 1) x ON x.customer_status = s),"
    "'byType', (SELECT json_object_agg(s, coalesce(n, 0) ORDER BY s)"
    " FROM unnest(ARRAY['Premium', 'Regular', 'VIP']) s"
    " LEFT JOIN (SELECT customer_type, sum(n)::bigint AS n"
    " FROM customer_counts GROUP BY 1) x ON x.customer_type = s),"
    "'verified', v.verified,"
    "'verifiedShare', CASE WHEN t.total = 0 THEN 0"
    " ELSE round(v.verified::numeric / t.total, 4) END,"
    "'newCustomersByMonth', (SELECT json_agg(json_build_object("
    "'month', to_char(m, 'YYYY-MM'), 'count', coalesce(x.n, 0))"
    " ORDER BY m) FROM generate_series(date_trunc('month', now(), 'UTC')"
    " - interval '11 months', date_trunc('month', now(), 'UTC'),"
    " interval '1 month') m"
    " LEFT JOIN (SELECT date_trunc('month', created_at, 'UTC') AS mm,"
    " count(*) AS n FROM customers WHERE created_at >="
    " date_trunc('month', now(), 'UTC') - interval '11 months'"
    " GROUP BY 1) x ON x.mm = m),"
    "'orders', json_build_object('totalOrders', o.orders,"
    " 'totalOrderValue', o.value,"
    " 'averageOrderValue', CASE WHEN o.orders = 0 THEN 0"
    " ELSE round(o.value / o.orders, 2) END,"
    " 'averageValuePerCustomer', o.per_customer),"
    "'topCustomers', (SELECT coalesce(json_agg(json_build_object("
    "'customerId', id, 'fullName', full_name, 'customerType',"
    " customer_type, 'totalOrders', total_orders,"
    " 'totalOrderValue', total_order_value)"
    " ORDER BY total_order_value DESC, id), '[]')"
    " FROM (SELECT * FROM customers"
    " ORDER BY total_order_value DESC, id LIMIT 10) top),"
    "'loyalty', json_build_object("
    " 'pointsIssued', (SELECT coalesce(sum(points), 0)"
    " FROM loyalty_transactions WHERE kind = 'earn'),"
    " 'pointsRedeemed', (SELECT coalesce(sum(points), 0)"
    " FROM loyalty_transactions WHERE kind = 'redeem'),"
    " 'customersByTier', (SELECT json_object_agg(lt.name,"
    " (SELECT count(*) FROM customers c LEFT JOIN loyalty_accounts a"
    " ON a.customer_id = c.id"
    " WHERE coalesce(a.lifetime_points, 0) >= lt.min_points"
    " AND NOT EXISTS (SELECT 1 FROM loyalty_tiers u"
    " WHERE u.min_points > lt.min_points"
    " AND coalesce(a.lifetime_points, 0) >= u.min_points))"
    " ORDER BY lt.min_points)"
    " FROM loyalty_tiers lt)),"
    "'credit', json_build_object("
    " 'averageScoreByBand', (SELECT coalesce(json_object_agg(band, avg"
    " ORDER BY band), '{}') FROM (SELECT band,"
    " round(avg(credit_score), 1) AS avg FROM credit_status"
    " GROUP BY band) b))"
    ")::text FROM t, v, o");


/* its JSON built by the statement, one row */
#define NGX_HTTP_CUSTOMER_ANALYTICS                                          \
    NGX_HTTP_CUSTOMER_AS_JSON(&ngx_http_customer_analytics_sql,              \
                              "Customer analytics retrieved successfully")

/* before the customers' own table: these would match "/api/customers/{}" */
ngx_http_customer_route_t  ngx_http_customer_search_routes[] = {
    /*
     * the limit (args_first), then the check of the term (ids_first: at
     * once, not only when all else was good): both named in one 400
     */
    { NGX_HTTP_GET, "/api/customers/search", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .stmt = &ngx_http_customer_search_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(CHECKED),
                  NGX_HTTP_CUSTOMER_UINT("limit", 1, 50, 20) },
      .args_first = 1, .ids_first = 1,
      .check = ngx_http_customer_search_term,
      .done = ngx_http_customer_search_done },
    { NGX_HTTP_GET, "/api/customers/analytics", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      NGX_HTTP_CUSTOMER_ANALYTICS },
    { NGX_HTTP_GET, "/api/customers/analytics/summary",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      NGX_HTTP_CUSTOMER_ANALYTICS },
    { NGX_HTTP_GET, "/api/customers/stats", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      NGX_HTTP_CUSTOMER_ANALYTICS },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/* q: 2 to 100 characters once its spaces around are trimmed */

static ngx_int_t
ngx_http_customer_search_term(ngx_http_customer_ctx_t *ctx)
{
    ngx_str_t  *term, path;

    term = ngx_palloc(ctx->request->pool, sizeof(ngx_str_t));
    if (term == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_customer_arg_str(ctx, "q", term) != NGX_OK) {
        ngx_str_null(term);
    }

    while (term->len && term->data[0] == ' ') {
        term->data++;
        term->len--;
    }

    while (term->len && term->data[term->len - 1] == ' ') {
        term->len--;
    }

    if (term->len < 2 || ngx_utf8_length(term->data, term->len) > 100
        || ngx_http_customer_utf8(term->data, term->len) != NGX_OK
        || ngx_strlen(term->data) < term->len)
    {
        ngx_str_set(&path, "q");
        return ngx_http_customer_fail(ctx, &path,
                                      "Must be 2 to 100 characters");
    }

    term->data[term->len] = '\0';
    ctx->data = term;

    return NGX_OK;
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_search_done)
{
    int        n;
    yajl_gen   g;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    n = PQntuples(res);

    g = ngx_http_customer_envelope(ctx, "Search completed successfully");
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);

    /* a match's first column, its id, is never NULL */

    if (ngx_http_customer_gen_rows(ctx, g, res, "results", 0,
                                   ngx_http_customer_search_columns, 7)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_customer_gen_lit(g, "totalResults");
    yajl_gen_integer(g, n);
    ngx_http_customer_gen_lit(g, "searchTerm");
    ngx_http_customer_gen_str(g, (ngx_str_t *) ctx->data);

    return ngx_http_customer_send_data(ctx, NGX_HTTP_OK, g);
}


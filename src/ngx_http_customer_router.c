
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


/*
 * Patterns are absolute paths whose "{}" segments match any one non-empty
 * segment, captured in ctx->params in order.  Within a table, literal
 * paths come before patterns that would also match them ("/me" before
 * "/{}"): the first pattern matching the path names the resource, and all
 * entries with that same pattern make up its methods.
 */


static ngx_int_t ngx_http_customer_match(const char *pattern, ngx_str_t *uri,
    ngx_http_customer_ctx_t *ctx);
static ngx_uint_t ngx_http_customer_dot_segment(u_char *p, u_char *last);


ngx_http_customer_route_t  *ngx_http_customer_route_tables[] = {
    ngx_http_customer_health_routes,
    ngx_http_customer_relations_routes,
    ngx_http_customer_status_routes,
    ngx_http_customer_notes_routes,
    ngx_http_customer_preferences_routes,
    ngx_http_customer_search_routes,
    ngx_http_customer_financial_routes,
    ngx_http_customer_credit_routes,
    ngx_http_customer_loyalty_routes,
    ngx_http_customer_vehicles_routes,
    ngx_http_customer_documents_routes,
    ngx_http_customer_dashboard_routes,
    ngx_http_customer_customers_routes,
    NULL
};


static struct {
    ngx_uint_t   method;
    const char  *name;
} ngx_http_customer_methods[] = {
    { NGX_HTTP_GET, "GET" },
    { NGX_HTTP_HEAD, "HEAD" },
    { NGX_HTTP_POST, "POST" },
    { NGX_HTTP_PUT, "PUT" },
    { NGX_HTTP_PATCH, "PATCH" },
    { NGX_HTTP_DELETE, "DELETE" },
    { 0, NULL }
};


ngx_http_customer_route_t *
ngx_http_customer_route(ngx_http_request_t *r, ngx_http_customer_ctx_t *ctx,
    ngx_uint_t *allowed)
{
    ngx_str_t                   uri;
    ngx_uint_t                  method, t;
    const char                 *found;
    ngx_http_customer_route_t  *rt;

    *allowed = 0;
    found = NULL;

    method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_GET : r->method;

    uri = r->uri;

    if (uri.len > 1 && uri.data[uri.len - 1] == '/') {
        uri.len--;
    }

    for (t = 0; ngx_http_customer_route_tables[t]; t++) {

        for (rt = ngx_http_customer_route_tables[t]; rt->pattern; rt++) {

            if (found) {
                if (ngx_strcmp(found, rt->pattern) != 0) {
                    continue;
                }

            } else if (!ngx_http_customer_match(rt->pattern, &uri, ctx)) {
                continue;
            }

            found = rt->pattern;

            if (rt->methods & method) {
                return rt;
            }

            *allowed |= rt->methods;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_customer_match(const char *pattern, ngx_str_t *uri,
    ngx_http_customer_ctx_t *ctx)
{
    u_char      *p, *last, *start;
    const char  *s;

    p = uri->data;
    last = p + uri->len;
    s = pattern;
    ctx->nparams = 0;

    while (*s) {

        if (s[0] == '{' && s[1] == '}') {
            start = p;

            while (p < last && *p != '/') {
                p++;
            }

            if (p == start || ctx->nparams == NGX_HTTP_CUSTOMER_MAX_PARAMS) {
                return 0;
            }

            ctx->params[ctx->nparams].data = start;
            ctx->params[ctx->nparams].len = p - start;
            ctx->nparams++;

            s += 2;
            continue;
        }

        if (p == last || *p != (u_char) *s) {
            return 0;
        }

        p++;
        s++;
    }

    return p == last;
}


/*
 * nginx decodes the path and resolves "." and ".." segments before a
 * location is chosen, so "/api/customers/{id}/notes/.." would reach
 * DELETE /api/customers/{id}, and an id of "%2F" would vanish into the
 * path ("/api/customers/%2F" is the list).  A segment the client sent
 * must stay one segment: the raw path may hold neither a dot segment
 * (plain or percent-encoded) nor an encoded '/', and the decoded path
 * must be UTF-8.  NGX_OK, or NGX_DECLINED with the reason for a 400.
 */

ngx_int_t
ngx_http_customer_path_check(ngx_http_request_t *r, const char **reason)
{
    u_char  *p, *last, *start;

    p = r->unparsed_uri.data;
    last = p + r->unparsed_uri.len;

    if (r->args_start && r->args_start > p && r->args_start <= last) {
        last = r->args_start - 1;
    }

    start = p;

    for ( /* void */ ; p <= last; p++) {

        if (p < last && *p != '/') {
            if (*p == '%' && last - p >= 3 && p[1] == '2'
                && (p[2] == 'F' || p[2] == 'f'))
            {
                *reason = "A path segment must not contain an encoded '/'";
                return NGX_DECLINED;
            }

            continue;
        }

        if (ngx_http_customer_dot_segment(start, p)) {
            *reason = "A path segment must not be '.' or '..'";
            return NGX_DECLINED;
        }

        start = p + 1;
    }

    if (ngx_http_customer_utf8(r->uri.data, r->uri.len) != NGX_OK) {
        *reason = "The path is not valid UTF-8";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a raw segment that decodes to "." or "..": '.' or "%2E" once or twice */

static ngx_uint_t
ngx_http_customer_dot_segment(u_char *p, u_char *last)
{
    ngx_uint_t  dots;

    dots = 0;

    while (p < last) {

        if (*p == '.') {
            p++;

        } else if (last - p >= 3 && p[0] == '%' && p[1] == '2'
                   && (p[2] == 'E' || p[2] == 'e'))
        {
            p += 3;

        } else {
            return 0;
        }

        dots++;
    }

    return dots == 1 || dots == 2;
}


ngx_int_t
ngx_http_customer_allow_header(ngx_http_request_t *r, ngx_uint_t allowed)
{
    u_char           *p;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    if (allowed & NGX_HTTP_GET) {
        allowed |= NGX_HTTP_HEAD;
    }

    p = ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, PUT, PATCH, DELETE"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_http_customer_push_header(&r->headers_out.headers, "Allow",
                                      NULL);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = p;

    for (i = 0; ngx_http_customer_methods[i].name; i++) {
        if (allowed & ngx_http_customer_methods[i].method) {
            if (p != h->value.data) {
                *p++ = ',';
                *p++ = ' ';
            }

            p = ngx_cpymem(p, ngx_http_customer_methods[i].name,
                           ngx_strlen(ngx_http_customer_methods[i].name));
        }
    }

    h->value.len = p - h->value.data;

    return NGX_OK;
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_access.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_idempotency.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


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
static ngx_uint_t ngx_http_customer_endpoint_params(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_route_t *rt,
    ngx_uint_t ids, const char **values);
static ngx_int_t ngx_http_customer_user_param(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_endpoint_missing(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_route_t *rt);
static ngx_int_t ngx_http_customer_refuse(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_refusal_t *m);


#define NGX_HTTP_CUSTOMER_ENDPOINT_BAD     1   /* an id is not a UUID */
#define NGX_HTTP_CUSTOMER_ENDPOINT_FAILED  2   /* out of memory */


ngx_http_customer_route_t  *ngx_http_customer_route_tables[] = {
    ngx_http_customer_health_routes,
    /* "/api/customers/me/..." before the "{}" patterns taking "me" */
    ngx_http_customer_self_routes,
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
    ngx_http_customer_events_routes,
    ngx_http_customer_customers_routes,
    ngx_http_customer_users_routes,
    ngx_http_customer_survey_routes,
    /* after the literal "internal/create" and "internal/outbox" */
    ngx_http_customer_internal_routes,
    NULL
};


ngx_http_customer_missing_t  ngx_http_customer_no_customer = {
    "Customer not found", "customerId", "No such customer",
    NGX_HTTP_UNPROCESSABLE_ENTITY
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
    { NGX_HTTP_OPTIONS, "OPTIONS" },
    { 0, NULL }
};


ngx_http_customer_route_t *
ngx_http_customer_route(ngx_http_request_t *r, ngx_http_customer_ctx_t *ctx,
    ngx_uint_t *allowed)
{
    size_t                      i;
    ngx_str_t                   uri;
    ngx_uint_t                  method, t, slashes;
    const char                 *found, *s;
    ngx_http_customer_route_t  *rt;

    *allowed = 0;
    found = NULL;

    method = (r->method == NGX_HTTP_HEAD) ? NGX_HTTP_GET : r->method;

    uri = r->uri;

    if (uri.len > 1 && uri.data[uri.len - 1] == '/') {
        uri.len--;
    }

    /*
     * A "{}" stands for exactly one segment, so only patterns with as
     * many slashes as the path can match it: most are passed over with
     * one comparison instead of being walked through their common
     * "/api/customers/" (the walk was 5% of a worker's time on GET by id).
     */

    slashes = 0;

    for (i = 0; i < uri.len; i++) {
        slashes += (uri.data[i] == '/');
    }

    for (t = 0; ngx_http_customer_route_tables[t]; t++) {

        for (rt = ngx_http_customer_route_tables[t]; rt->pattern; rt++) {

            if (found) {
                if (ngx_strcmp(found, rt->pattern) != 0) {
                    continue;
                }

            } else {
                if (rt->slashes == 0) {
                    for (s = rt->pattern; *s; s++) {
                        rt->slashes += (*s == '/');
                    }
                }

                if (rt->slashes != slashes
                    || !ngx_http_customer_match(rt->pattern, &uri, ctx))
                {
                    continue;
                }
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


/* Allow: the methods allowed (and HEAD with GET); *value its value */

ngx_int_t
ngx_http_customer_allow_header(ngx_http_request_t *r, ngx_uint_t allowed,
    ngx_str_t *value)
{
    u_char           *p;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    if (allowed & NGX_HTTP_GET) {
        allowed |= NGX_HTTP_HEAD;
    }

    p = ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, PUT, PATCH, DELETE, "
                                    "OPTIONS"));
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
    *value = h->value;

    return NGX_OK;
}


/*
 * The generic handler of a row: the body against the row's fields, the
 * path's ids (before the body when the row says so, then its check of
 * the members together), the page and the query arguments (first when
 * the row says so), in that order, every bad one named in one 400;
 * then the statement with each parameter from where the row says, and
 * ngx_http_customer_endpoint_done() for the answer.  Nothing is
 * allocated beyond the query and the parameters' text.
 */

ngx_int_t
ngx_http_customer_endpoint(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                      rc;
    char                          *sub;
    ngx_uint_t                     i, n, path, invalid;
    const char                    *values[NGX_HTTP_CUSTOMER_ROUTE_PARAMS];
    ngx_http_customer_route_t     *rt;
    ngx_http_customer_param_t     *p;
    ngx_http_customer_done_pt      done;
    ngx_http_customer_pg_query_t  *q;

    rt = ctx->route;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer endpoint \"%s\"", rt->pattern);

    invalid = 0;

    if (rt->args_first) {
        invalid = ngx_http_customer_endpoint_params(ctx, rt, 0, values);
    }

    if (rt->ids_first) {
        invalid |= ngx_http_customer_endpoint_params(ctx, rt, 1, values);

        rc = rt->check ? rt->check(ctx) : NGX_OK;
        invalid |= (rc != NGX_OK);

        if ((invalid & NGX_HTTP_CUSTOMER_ENDPOINT_FAILED) || rc == NGX_ERROR)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /*
     * A body the row takes "one, or none" of may be absent; one that no
     * field table can say is its check's alone.
     */

    if (ctx->body) {
        rc = NGX_OK;

        if (rt->fields) {
            rc = ngx_http_customer_validate(ctx, NULL, ctx->body, rt->fields,
                                            !rt->partial);

            if (rc == NGX_OK && rt->nonempty && ctx->body->n == 0) {
                rc = (ngx_http_customer_add_error(ctx, (u_char *) "body", 4,
                                                  rt->nonempty)
                      == NGX_OK) ? NGX_DECLINED : NGX_ERROR;
            }

            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            invalid |= (rc != NGX_OK);
        }

        if (rc == NGX_OK && rt->check && !rt->ids_first) {
            rc = rt->check(ctx);
            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            invalid |= (rc != NGX_OK);
        }
    }

    /* the path's ids, the page, then the arguments: the 400's order */

    if (!rt->ids_first) {
        invalid |= ngx_http_customer_endpoint_params(ctx, rt, 1, values);
    }

    if (!rt->args_first) {
        invalid |= ngx_http_customer_endpoint_params(ctx, rt, 0, values);
    }

    if (invalid & NGX_HTTP_CUSTOMER_ENDPOINT_FAILED) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!invalid && rt->check && !rt->ids_first && rt->fields == NULL
        && ctx->body == NULL)
    {
        rc = rt->check(ctx);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        invalid = (rc != NGX_OK);
    }

    if (invalid) {
        return ngx_http_customer_invalid(ctx);
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the caller's sub is NUL-terminated in the request pool */
    sub = ctx->who.sub.len ? (char *) ctx->who.sub.data : NULL;

    for (i = 0, n = 0, path = 0, p = rt->params; p->from; i++, p++) {

        switch (p->from) {

        case NGX_HTTP_CUSTOMER_FROM_ID:
            /* ngx_http_customer_uuid_param() made it NUL-terminated */
            q->values[n++] = (char *) ctx->params[path++].data;
            break;

        case NGX_HTTP_CUSTOMER_FROM_OWN:
            q->values[n++] = ngx_http_customer_own_sub(ctx);
            break;

        case NGX_HTTP_CUSTOMER_FROM_SUB:
            q->values[n++] = sub;
            break;

        case NGX_HTTP_CUSTOMER_FROM_ACTOR:
            q->values[n++] = sub ? sub : ctx->who.service ? "service" : NULL;
            break;

        case NGX_HTTP_CUSTOMER_FROM_ME:
            q->values[n++] = sub ? sub : "";
            ctx->by_user = 1;
            break;

        case NGX_HTTP_CUSTOMER_FROM_USER:
            q->values[n++] = (char *) ctx->params[0].data;
            ctx->by_user = 1;
            break;

        case NGX_HTTP_CUSTOMER_FROM_ADMIN:
            q->values[n++] = (ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN)
                             ? "true" : "false";
            break;

        case NGX_HTTP_CUSTOMER_FROM_VALUE:
            q->values[n++] = p->name;
            break;

        case NGX_HTTP_CUSTOMER_FROM_CHECKED:
            q->values[n++] = (char *) ((ngx_str_t *) ctx->data)->data;
            break;

        case NGX_HTTP_CUSTOMER_FROM_BODY:
            if (ngx_http_customer_member_param(ctx, p->name, &q->values[n++])
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            break;

        case NGX_HTTP_CUSTOMER_FROM_JSON:
            q->values[n] = ngx_http_customer_body_param(ctx);

            if (q->values[n++] == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            break;

        case NGX_HTTP_CUSTOMER_FROM_IF_MATCH:
            if (ngx_http_customer_if_match(ctx, &q->values[n++]) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            break;

        case NGX_HTTP_CUSTOMER_FROM_PAGE:
            if (ngx_http_customer_page_values(ctx, q, n, ctx->page,
                                              ctx->limit)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            n += 2;
            break;

        default:
            q->values[n++] = values[i];
        }
    }

    done = rt->done ? rt->done : ngx_http_customer_endpoint_done;

    if (rt->run) {
        return rt->run(ctx, q, rt->stmt, done);
    }

    return ngx_http_customer_query_run(ctx, q, rt->stmt, done);
}


/*
 * The path's ids and the page (ids), or else the query's arguments, each
 * argument's value in values[] at its parameter's index: 0,
 * NGX_HTTP_CUSTOMER_ENDPOINT_BAD, or _FAILED
 */

static ngx_uint_t
ngx_http_customer_endpoint_params(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_route_t *rt, ngx_uint_t ids, const char **values)
{
    u_char                     *n;
    ngx_tm_t                    tm;
    ngx_int_t                   rc;
    ngx_str_t                   s;
    ngx_uint_t                  i, path, invalid, max, value;
    const char                 *flag;
    ngx_http_customer_param_t  *p;

    invalid = 0;

    for (i = 0, path = 0, p = rt->params; p->from; i++, p++) {

        if (ids != (p->from == NGX_HTTP_CUSTOMER_FROM_ID
                    || p->from == NGX_HTTP_CUSTOMER_FROM_USER
                    || p->from == NGX_HTTP_CUSTOMER_FROM_PAGE))
        {
            continue;
        }

        values[i] = NULL;
        rc = NGX_OK;

        switch (p->from) {

        case NGX_HTTP_CUSTOMER_FROM_USER:
            rc = ngx_http_customer_user_param(ctx);
            break;

        case NGX_HTTP_CUSTOMER_FROM_ID:
            rc = ngx_http_customer_uuid_param(ctx, path++, p->name);
            break;

        case NGX_HTTP_CUSTOMER_FROM_PAGE:
            rc = ngx_http_customer_page_args(ctx, &ctx->page, &ctx->limit);
            break;

        case NGX_HTTP_CUSTOMER_FROM_ENUM:
        case NGX_HTTP_CUSTOMER_FROM_CHECK:
            rc = (p->from == NGX_HTTP_CUSTOMER_FROM_ENUM)
                 ? ngx_http_customer_arg_enum(ctx, p->name, p->values, &s)
                 : ngx_http_customer_arg_check(ctx, p->name, p->check,
                                               p->min, p->max, &s);
            values[i] = (rc == NGX_OK && s.len) ? (char *) s.data : NULL;
            rc = (rc == NGX_DECLINED) ? NGX_OK : rc;
            break;

        case NGX_HTTP_CUSTOMER_FROM_UINT:
            max = p->max;

            if (max == 0) {
                ngx_gmtime(ngx_time(), &tm);
                max = tm.ngx_tm_year + 1;
            }

            rc = ngx_http_customer_arg_uint(ctx, p->name,
                                            p->def ? p->def
                                                   : NGX_MAX_UINT32_VALUE,
                                            p->min, max, &value);

            if (rc == NGX_OK && value != NGX_MAX_UINT32_VALUE) {
                n = ngx_pnalloc(ctx->request->pool, NGX_INT_T_LEN + 1);
                if (n == NULL) {
                    return NGX_HTTP_CUSTOMER_ENDPOINT_FAILED;
                }

                ngx_sprintf(n, "%ui%Z", value);
                values[i] = (char *) n;
            }

            break;

        case NGX_HTTP_CUSTOMER_FROM_FLAG:
            rc = ngx_http_customer_arg_flag(ctx, p->name, &flag);
            values[i] = flag;
            break;

        case NGX_HTTP_CUSTOMER_FROM_KEY:
            rc = ngx_http_customer_idempotency_key(ctx, &values[i]);
            break;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_CUSTOMER_ENDPOINT_FAILED;
        }

        invalid |= (rc != NGX_OK) ? NGX_HTTP_CUSTOMER_ENDPOINT_BAD : 0;
    }

    return invalid;
}


/*
 * The path's first segment as a userId: NUL-terminated for libpq and
 * checked as on create, so that one that cannot be stored is refused
 * rather than not found
 */

static ngx_int_t
ngx_http_customer_user_param(ngx_http_customer_ctx_t *ctx)
{
    static ngx_http_customer_field_t  user = {
        "userId", ngx_http_customer_check_user_id,
        NGX_HTTP_CUSTOMER_F_REQUIRED, 1, 128, NULL, NULL
    };

    ctx->params[0].data = (u_char *) ngx_http_customer_cstr(
                              ctx->request->pool, ctx->params[0].data,
                              ctx->params[0].len);
    if (ctx->params[0].data == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_customer_check_param(ctx, &user, &ctx->params[0]);
}


/*
 * A row's answer: one row, a page, or JSON.  No row at all is 404; a
 * write's statement answers one row whose test column is NULL when it
 * did nothing: no customer (its exists column NULL too), or a refusal
 * (a stale If-Match, a record that is there already).  A constraint the
 * row names is its refusal too.
 */

NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_endpoint_done)
{
    char                        *constraint;
    ngx_uint_t                   status;
    const char                  *message;
    ngx_http_customer_route_t   *rt;
    ngx_http_customer_column_t  *cols;

    rt = ctx->route;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)
                         : NULL;

        if (constraint && rt->conflict
            && ngx_strcmp(constraint, rt->conflict->constraint) == 0)
        {
            return ngx_http_customer_refuse(ctx, rt->conflict);
        }

        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_endpoint_missing(ctx, rt);
    }

    if (rt->answer == NGX_HTTP_CUSTOMER_ANSWER_PAGE) {
        return ngx_http_customer_send_page(ctx, res, rt->message, rt->list,
                                           rt->columns, rt->ncolumns,
                                           ctx->page, ctx->limit);
    }

    if (rt->refused && PQgetisnull(res, 0, rt->test)) {
        if (rt->exists && PQgetisnull(res, 0, rt->exists)) {
            return ngx_http_customer_endpoint_missing(ctx, rt);
        }

        if (rt->otherwise && PQgetvalue(res, 0, rt->because)[0] != 't') {
            return ngx_http_customer_refuse(ctx, rt->otherwise);
        }

        return ngx_http_customer_refuse(ctx, rt->refused);
    }

    status = rt->status ? rt->status : NGX_HTTP_OK;
    message = rt->message;

    if (rt->created && PQgetvalue(res, 0, PQnfields(res) - 1)[0] == 't') {
        status = NGX_HTTP_CREATED;
        message = rt->created;
    }


    /* nationalId and the like in full to administrators and services */

    cols = rt->columns;

    if (rt->masked && !(ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN)
        && !ctx->who.service)
    {
        cols = rt->masked;
    }

    if (rt->etag
        && ngx_http_customer_set_etag(ctx, res, rt->version
                                                ? rt->version
                                                : rt->ncolumns - 1)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rt->answer == NGX_HTTP_CUSTOMER_ANSWER_JSON) {
        return ngx_http_customer_send_json(ctx, status, message, res, 0);
    }

    return ngx_http_customer_send_row(ctx, status, message, res, cols,
                                      rt->ncolumns);
}


/* no row, or no customer: 404 "Customer not found" unless the row says */

static ngx_int_t
ngx_http_customer_endpoint_missing(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_route_t *rt)
{
    if (rt->missing == NULL) {
        return ngx_http_customer_not_found(ctx);
    }

    return ngx_http_customer_send_error(ctx,
                                        rt->missing->status
                                        ? rt->missing->status
                                        : NGX_HTTP_NOT_FOUND,
                                        rt->missing->message,
                                        rt->missing->field,
                                        rt->missing->detail);
}


static ngx_int_t
ngx_http_customer_refuse(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_refusal_t *m)
{
    return ngx_http_customer_send_error(ctx, m->status, m->message, m->field,
                                        m->detail);
}


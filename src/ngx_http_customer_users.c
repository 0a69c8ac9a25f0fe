
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_customers.h"
#include "ngx_http_customer_peer.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_users.h"


/*
 * The Auth Service's user data.  A user registers there; the customer
 * record keeps a copy of its email, name and phone.  Here:
 *
 * - creating a customer (admin or internal) first asks the Auth Service
 *   for its userId (GET /api/auth/user/{userId}) where
 *   customer_auth_service is set and customer_auth_user_check is on: an
 *   unknown user is 422 and a service that cannot say is 502/504, both
 *   before anything is written;
 * - POST /api/customers/{id}/sync copies email, fullName and
 *   contactNumber from the same answer into the record, and PATCH
 *   /api/customers/internal/user/{userId} lets the Auth Service push
 *   them when they change there;
 * - POST /api/customers/internal/{id}/login, from the Auth Service at
 *   each login, keeps metadata.lastLoginDate and loginCount.
 *
 * The user is the answer's "data" object, or the answer itself.
 */


static ngx_int_t ngx_http_customer_user_call(ngx_http_customer_ctx_t *ctx,
    char *user, ngx_http_customer_peer_done_pt done);
static ngx_int_t ngx_http_customer_user_checked(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_user_unknown(
    ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_sync_found);
static ngx_int_t ngx_http_customer_sync_fetched(
    ngx_http_customer_ctx_t *ctx);


/*
 * what sync takes from the user, as a create checks it: email and
 * fullName required, the phone nullable
 */
#define ngx_http_customer_user_fields  (ngx_http_customer_internal_fields + 1)


static ngx_http_customer_column_t  ngx_http_customer_login_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "userId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "metadata", NGX_HTTP_CUSTOMER_COL_JSON }
};


/* $1 customer id */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_sync_user_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(1,
    "SELECT user_id FROM customers WHERE id = $1");


/*
 * $1 customer id (or userId), $2 some of {email, fullName,
 * contactNumber} as jsonb, $3 who.  An absent member keeps the stored
 * value.  The record is written (version + 1) only when a value
 * differs; "changed" names those.  No row: no such customer (or it went
 * meanwhile).
 */
#define NGX_HTTP_CUSTOMER_SYNC_SQL(key)                                      \
    "WITH o AS (SELECT id, user_id, email, full_name, contact_number,"      \
    " updated_at, version FROM customers WHERE " key " = $1 FOR UPDATE),"  \
    " n AS (SELECT coalesce(j->>'email', o.email) AS email,"                \
    " coalesce(j->>'fullName', o.full_name) AS full_name,"                  \
    " CASE WHEN j ? 'contactNumber' THEN j->>'contactNumber'"               \
    " ELSE o.contact_number END AS contact_number"                          \
    " FROM o, (SELECT $2::jsonb AS j) s),"                                  \
    " d AS (SELECT ARRAY(SELECT f FROM (VALUES"                             \
    " ('email', o.email IS DISTINCT FROM n.email),"                         \
    " ('fullName', o.full_name IS DISTINCT FROM n.full_name),"              \
    " ('contactNumber',"                                                    \
    " o.contact_number IS DISTINCT FROM n.contact_number))"                 \
    " v(f, c) WHERE c) AS changed FROM o, n),"                              \
    " u AS (UPDATE customers c SET email = n.email,"                        \
    " full_name = n.full_name, contact_number = n.contact_number,"          \
    " updated_at = now(), updated_by = $3, version = c.version + 1"         \
    " FROM o, n, d WHERE c.id = o.id AND cardinality(d.changed) > 0"        \
    " RETURNING c.updated_at, c.version)"                                   \
    " SELECT json_build_object('customerId', o.id, 'userId', o.user_id,"    \
    " 'email', n.email, 'fullName', n.full_name,"                           \
    " 'contactNumber', n.contact_number, 'changed', to_json(d.changed),"    \
    " 'updatedAt', api_ts(coalesce(u.updated_at, o.updated_at)),"           \
    " 'version', coalesce(u.version, o.version)),"                          \
    " coalesce(u.version, o.version)"                                       \
    " FROM o CROSS JOIN n CROSS JOIN d LEFT JOIN u ON true"

static ngx_http_customer_pg_stmt_t  ngx_http_customer_sync_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(3,
    NGX_HTTP_CUSTOMER_SYNC_SQL("id"));

static ngx_http_customer_pg_stmt_t  ngx_http_customer_push_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(3,
    NGX_HTTP_CUSTOMER_SYNC_SQL("user_id"));


/*
 * $1 customer id.  Not an edit of the record: neither version nor
 * updatedAt moves.  No row: no such customer.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_login_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(1,
    "UPDATE customers SET metadata = metadata"
    " || jsonb_build_object('lastLoginDate', api_ts(now()),"
    " 'loginCount', coalesce((metadata->>'loginCount')::integer, 0) + 1)"
    " WHERE id = $1 RETURNING id, user_id, metadata");


/* the record as the sync statement answers it, its version the ETag */
#define NGX_HTTP_CUSTOMER_SYNCED                                             \
    .answer = NGX_HTTP_CUSTOMER_ANSWER_JSON,                                 \
    .message = "Customer synchronised with the Auth Service",                \
    .etag = 1, .version = 1

ngx_http_customer_route_t  ngx_http_customer_users_routes[] = {
    /* its userId, then the Auth Service's user, then the record */
    { NGX_HTTP_POST, "/api/customers/{}/sync",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .stmt = &ngx_http_customer_sync_user_sql,
      .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID },
      .done = ngx_http_customer_sync_found, NGX_HTTP_CUSTOMER_SYNCED },
    /*
     * The Auth Service pushes what changed: some of email, fullName and
     * contactNumber, checked as on create, for the record of the path's
     * userId.  GET of the same path is the customers' own.
     */
    { NGX_HTTP_PATCH, "/api/customers/internal/user/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 1, 0,
      .fields = ngx_http_customer_user_fields, .partial = 1,
      .nonempty = NGX_HTTP_CUSTOMER_CHANGE_ONE,
      .stmt = &ngx_http_customer_push_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(USER),
                  NGX_HTTP_CUSTOMER_PARAM(JSON),
                  NGX_HTTP_CUSTOMER_NAMED(VALUE, "service") },
      NGX_HTTP_CUSTOMER_SYNCED },
    { NGX_HTTP_POST, "/api/customers/internal/{}/login",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 0, 0,
      .stmt = &ngx_http_customer_login_sql,
      .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID },
      .message = "Login recorded successfully",
      NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_login_columns) },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/*
 * Runs stmt for a create once the Auth Service knows the body's userId;
 * without customer_auth_service, or with customer_auth_user_check off,
 * at once.
 */

ngx_int_t
ngx_http_customer_user_check(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done)
{
    const char                    *user;
    ngx_http_customer_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    if (llcf->auth_service.len == 0 || !llcf->user_check) {
        return ngx_http_customer_query_run(ctx, q, stmt, done);
    }

    if (ngx_http_customer_member_param(ctx, "userId", &user) != NGX_OK
        || user == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the create waits for the Auth Service's word on its userId */

    q->stmt = stmt;
    ctx->done = done;
    ctx->data = q;

    return ngx_http_customer_user_call(ctx, (char *) user,
                                       ngx_http_customer_user_checked);
}


/*
 * GET /api/auth/user/{userId}.  The subrequest's URI is a decoded one,
 * escaped by the proxy module on its way out; a userId has no '/' and is
 * neither "." nor "..", so it stays one segment.
 */

static ngx_int_t
ngx_http_customer_user_call(ngx_http_customer_ctx_t *ctx, char *user,
    ngx_http_customer_peer_done_pt done)
{
    ngx_str_t                      path, args;
    ngx_http_customer_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_customer_module);

    path.data = ngx_pnalloc(ctx->request->pool,
                            sizeof("/api/auth/user/") - 1 + ngx_strlen(user));
    if (path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path.len = ngx_sprintf(path.data, "/api/auth/user/%s", user) - path.data;

    ngx_str_null(&args);

    return ngx_http_customer_peer_call(ctx, &llcf->auth_service,
                                       NGX_HTTP_GET, &path, &args, NULL,
                                       NULL, done);
}


static ngx_int_t
ngx_http_customer_user_checked(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_pg_query_t  *q;

    q = ctx->data;

    if (ctx->peer.rc == NGX_OK && ctx->peer.status == NGX_HTTP_NOT_FOUND) {
        return ngx_http_customer_user_unknown(ctx);
    }

    if (ctx->peer.rc != NGX_OK || ctx->peer.status < 200
        || ctx->peer.status >= 300)
    {
        return ngx_http_customer_peer_error(ctx, "Auth Service",
                                            "user data");
    }

    return ngx_http_customer_query_run(ctx, q, q->stmt, ctx->done);
}


static ngx_int_t
ngx_http_customer_user_unknown(ngx_http_customer_ctx_t *ctx)
{
    return ngx_http_customer_send_error(ctx, NGX_HTTP_UNPROCESSABLE_ENTITY,
                                        "Unknown user", "userId",
                                        "The Auth Service has no user "
                                        "with this userId");
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_sync_found)
{
    char       *user;
    ngx_int_t   rc;

    user = ngx_http_customer_found(ctx, q, res, &rc);
    if (user == NULL) {
        return rc;
    }

    return ngx_http_customer_user_call(ctx, user,
                                       ngx_http_customer_sync_fetched);
}


/*
 * The user's email, fullName and contactNumber, checked as the record's
 * own fields are: a service that answers what the record cannot hold is
 * a bad gateway, each bad member named.
 */

static ngx_int_t
ngx_http_customer_sync_fetched(ngx_http_customer_ctx_t *ctx)
{
    u_char                        *buf;
    size_t                         len;
    yajl_gen                       g;
    ngx_str_t                      path;
    ngx_uint_t                     invalid;
    ngx_http_customer_json_t      *user, *data, *m;
    ngx_http_customer_field_t     *f;
    ngx_http_customer_pg_query_t  *q;

    if (ctx->peer.rc == NGX_OK && ctx->peer.status == NGX_HTTP_NOT_FOUND) {
        return ngx_http_customer_user_unknown(ctx);
    }

    user = ctx->peer.json;

    if (ctx->peer.rc != NGX_OK || ctx->peer.status < 200
        || ctx->peer.status >= 300 || user == NULL
        || user->type != NGX_HTTP_CUSTOMER_JSON_OBJECT)
    {
        return ngx_http_customer_peer_error(ctx, "Auth Service",
                                            "user data");
    }

    data = ngx_http_customer_json_member(user, "data");

    if (data && data->type == NGX_HTTP_CUSTOMER_JSON_OBJECT) {
        user = data;
    }

    g = ngx_http_customer_json_gen(ctx->request->pool);
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    yajl_gen_map_open(g);
    invalid = 0;

    for (f = ngx_http_customer_user_fields; f->name; f++) {
        path.data = (u_char *) f->name;
        path.len = ngx_strlen(f->name);

        m = ngx_http_customer_json_member(user, f->name);

        if (m == NULL) {
            if (f->flags & NGX_HTTP_CUSTOMER_F_REQUIRED) {
                invalid = 1;
                if (ngx_http_customer_fail(ctx, &path, "Missing in the "
                                           "Auth Service's answer")
                    == NGX_ERROR)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }

            continue;
        }

        if (m->type == NGX_HTTP_CUSTOMER_JSON_NULL) {
            if (!(f->flags & NGX_HTTP_CUSTOMER_F_NULLABLE)) {
                invalid = 1;
                if (ngx_http_customer_fail(ctx, &path, "Must not be null")
                    == NGX_ERROR)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                continue;
            }

            ngx_http_customer_gen_cstr(g, f->name);
            yajl_gen_null(g);
            continue;
        }

        if (f->check(ctx, &path, m, f) != NGX_OK) {
            invalid = 1;
            continue;
        }

        ngx_http_customer_gen_cstr(g, f->name);
        ngx_http_customer_gen_str(g, &m->str);
    }

    yajl_gen_map_close(g);

    if (invalid) {
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "customer: the Auth Service's user is not one a "
                      "customer record can hold");
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_GATEWAY,
                   "Invalid user data from the Auth Service");
    }

    if (ngx_http_customer_json_result(g, &buf, &len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = (char *) ctx->params[0].data;

    q->values[1] = ngx_http_customer_cstr(ctx->request->pool, buf, len);
    if (q->values[1] == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[2] = ctx->who.sub.len ? (char *) ctx->who.sub.data : NULL;

    return ngx_http_customer_query_run(ctx, q, &ngx_http_customer_sync_sql,
                                       ngx_http_customer_endpoint_done);
}



/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_ROUTER_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_ROUTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"


#define NGX_HTTP_CUSTOMER_ROUTE_PARAMS  10   /* a statement's, from a row */

/* where a statement's parameter comes from (ngx_http_customer_param_t) */
#define NGX_HTTP_CUSTOMER_FROM_ID       1    /* the path's UUID, named */
#define NGX_HTTP_CUSTOMER_FROM_OWN      2    /* a Customer's sub, NULL for
                                                an Administrator */
#define NGX_HTTP_CUSTOMER_FROM_SUB      3    /* the caller's sub or NULL */
#define NGX_HTTP_CUSTOMER_FROM_BODY     4    /* a body member or NULL */
#define NGX_HTTP_CUSTOMER_FROM_ENUM     5    /* an argument among values */
#define NGX_HTTP_CUSTOMER_FROM_FLAG     6    /* a true|false argument */
#define NGX_HTTP_CUSTOMER_FROM_CHECK    7    /* an argument that check
                                                accepts */
#define NGX_HTTP_CUSTOMER_FROM_ADMIN    8    /* "true" for an Administrator */
#define NGX_HTTP_CUSTOMER_FROM_PAGE     9    /* LIMIT, then OFFSET */
#define NGX_HTTP_CUSTOMER_FROM_ME       10   /* the caller's sub or "" for
                                                /me: its 404 names userId */
#define NGX_HTTP_CUSTOMER_FROM_JSON     11   /* the validated body, jsonb */
#define NGX_HTTP_CUSTOMER_FROM_IF_MATCH 12   /* If-Match's version or NULL */
#define NGX_HTTP_CUSTOMER_FROM_VALUE    13   /* name itself, a constant */
#define NGX_HTTP_CUSTOMER_FROM_ACTOR    14   /* the caller's sub, "service"
                                                for a service key, or NULL */
#define NGX_HTTP_CUSTOMER_FROM_USER     15   /* the path's first segment,
                                                checked as a userId: its
                                                404 names it */
#define NGX_HTTP_CUSTOMER_FROM_KEY      17   /* the Idempotency-Key header,
                                                checked, or NULL */
#define NGX_HTTP_CUSTOMER_FROM_UINT     16   /* a whole number argument from
                                                min to max (0: next year);
                                                absent: def, or NULL for 0 */
#define NGX_HTTP_CUSTOMER_FROM_CHECKED  18   /* what the row's check made of
                                                the request: ctx->data, a
                                                NUL-terminated ngx_str_t */

/* the answer's shape */
#define NGX_HTTP_CUSTOMER_ANSWER_ROW    0    /* row 0 as an object */
#define NGX_HTTP_CUSTOMER_ANSWER_PAGE   1    /* a page of rows, the total
                                                in column 0 */
#define NGX_HTTP_CUSTOMER_ANSWER_JSON   2    /* row 0's column 0, the data
                                                as PostgreSQL wrote it */


/* runs a row's statement, as ngx_http_customer_query_run() does */
typedef ngx_int_t (*ngx_http_customer_run_pt)(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, ngx_http_customer_pg_stmt_t *stmt,
    ngx_http_customer_done_pt done);


/*
 * a row's answer when no row is not 404 "Customer not found": another
 * message, or another status (422: an id in the body names nothing)
 */
typedef struct {
    const char                     *message;
    const char                     *field;
    const char                     *detail;
    ngx_uint_t                      status;    /* 0 is 404 */
} ngx_http_customer_missing_t;


/*
 * A write's answer other than success (404, 409, 412, 422): when it did
 * nothing, or when the statement broke constraint
 */
typedef struct {
    ngx_uint_t                      status;
    const char                     *message;
    const char                     *field;
    const char                     *detail;
    const char                     *constraint;
} ngx_http_customer_refusal_t;


typedef struct {
    ngx_uint_t                      from;      /* NGX_HTTP_CUSTOMER_FROM_ */
    const char                     *name;      /* the member, argument or
                                                  path id */
    const char                    **values;    /* FROM_ENUM */
    ngx_http_customer_check_pt      check;     /* FROM_CHECK */
    ngx_uint_t                      min;       /* FROM_CHECK, FROM_UINT */
    ngx_uint_t                      max;
    ngx_uint_t                      def;       /* FROM_UINT */
} ngx_http_customer_param_t;


/* the refusal of a stale If-Match */
#define NGX_HTTP_CUSTOMER_STALE(detail)                                      \
    { NGX_HTTP_PRECONDITION_FAILED, "Precondition failed", "If-Match",       \
      detail, NULL }


/* a statement that writes the answer's data itself, row 0's column 0 */
#define NGX_HTTP_CUSTOMER_AS_JSON(sql, text)                                 \
    .stmt = sql, .answer = NGX_HTTP_CUSTOMER_ANSWER_JSON, .message = text


/* a row's parameter: where it comes from, and the name it has there */
#define NGX_HTTP_CUSTOMER_PARAM(from)                                        \
    { NGX_HTTP_CUSTOMER_FROM_##from, NULL, NULL, NULL }
#define NGX_HTTP_CUSTOMER_NAMED(from, name)                                  \
    { NGX_HTTP_CUSTOMER_FROM_##from, name, NULL, NULL }
#define NGX_HTTP_CUSTOMER_CUSTOMER_ID                                        \
    NGX_HTTP_CUSTOMER_NAMED(ID, "customerId")
#define NGX_HTTP_CUSTOMER_CHECKED(name, check, min, max)                     \
    { NGX_HTTP_CUSTOMER_FROM_CHECK, name, NULL, check, min, max, 0 }
#define NGX_HTTP_CUSTOMER_UINT(name, min, max, def)                          \
    { NGX_HTTP_CUSTOMER_FROM_UINT, name, NULL, NULL, min, max, def }

/* a path's id and the caller's sub for a Customer: what it may reach */
#define NGX_HTTP_CUSTOMER_OWN_ID(name)                                       \
    NGX_HTTP_CUSTOMER_NAMED(ID, name), NGX_HTTP_CUSTOMER_PARAM(OWN)

/* a partial write's 400 when the body names nothing */
#define NGX_HTTP_CUSTOMER_CHANGE_ONE  "Name at least one field to change"
#define NGX_HTTP_CUSTOMER_ONE_FIELD   "At least one field is required"


/* the rest of a row whose handler is its own C */
#define NGX_HTTP_CUSTOMER_HOOK  .stmt = NULL

#define NGX_HTTP_CUSTOMER_ROUTES_END                                         \
    { 0, NULL, NULL, 0, 0, 0, NGX_HTTP_CUSTOMER_HOOK }


/*
 * One endpoint: a row of a resource's table.  A row with a statement is
 * run by ngx_http_customer_endpoint() from what the row says; a route
 * that a row cannot say (streaming, peer calls, several statements) has
 * its own handler, the row's hook.
 */
struct ngx_http_customer_route_s {
    ngx_uint_t                      methods;   /* NGX_HTTP_GET | ... */
    const char                     *pattern;   /* "/api/customers/{}" */
    ngx_http_customer_handler_pt    handler;
    ngx_uint_t                      access;    /* NGX_HTTP_CUSTOMER_ADMIN.. */
    unsigned                        json_body:2;   /* 1: a JSON body,
                                                      2: one, or none,
                                                      3: any bytes */
    ngx_uint_t                      id;            /* set at start */

    ngx_http_customer_field_t      *fields;    /* the body's, on create */
    ngx_http_customer_pg_stmt_t    *stmt;
    ngx_http_customer_param_t       params[NGX_HTTP_CUSTOMER_ROUTE_PARAMS];
    ngx_uint_t                      answer;    /* ..._ANSWER_ROW, _PAGE */
    ngx_uint_t                      status;    /* of success: 201; 0 is
                                                  200 */
    const char                     *message;
    const char                     *list;      /* a page's member */
    ngx_http_customer_column_t     *columns;
    ngx_uint_t                      ncolumns;
    ngx_http_customer_missing_t    *missing;   /* the 404 for no row */
    unsigned                        etag:1;    /* the last column, the
                                                  version, is the ETag */
    ngx_uint_t                      slashes;   /* in the pattern; 0 until
                                                  the router first uses it */

    /* what a write needs, beyond a read's */
    unsigned                        ids_first:1;   /* the 400 names bad
                                                      path ids (and page)
                                                      before the body's
                                                      fields */
    unsigned                        args_first:1;  /* ... the arguments
                                                      before all else */
    unsigned                        partial:1;     /* no field required */
    const char                     *nonempty;  /* ... but one given: the
                                                  400's words if none */
    ngx_http_customer_handler_pt    check;     /* a rule across members:
                                                  with ids_first after the
                                                  ids; else after the
                                                  members when they are
                                                  good (with no fields, in
                                                  their place: it reads the
                                                  body), or, with no body,
                                                  last when all was good;
                                                  adds errors, NGX_ERROR */
    ngx_http_customer_refusal_t    *refused;   /* row 0's column test NULL:
                                                  nothing done */
    ngx_uint_t                      test;
    ngx_uint_t                      exists;    /* a column NULL when there
                                                  is no customer: 404, or
                                                  .missing */
    ngx_http_customer_refusal_t    *otherwise; /* refused, but the column
                                                  because is not true */
    ngx_uint_t                      because;
    ngx_http_customer_refusal_t    *conflict;  /* a constraint's refusal */
    const char                     *created;   /* the last column true:
                                                  201 with this message */
    ngx_http_customer_column_t     *masked;    /* the columns a Customer
                                                  sees */
    ngx_uint_t                      version;   /* the ETag's column, when
                                                  not the last answered */

    ngx_http_customer_done_pt       done;      /* answers the statement's
                                                  result itself: a second
                                                  statement, a peer call,
                                                  a stream */
    ngx_http_customer_run_pt        run;       /* runs the statement when
                                                  something must come first
                                                  (the Auth Service's check
                                                  of a new userId) */

    ngx_uint_t                      scope;     /* service-key routes: the
                                                  key's class it needs,
                                                  NGX_HTTP_CUSTOMER_SCOPE_*;
                                                  0: internal:read for GET,
                                                  internal:write else */
};


ngx_http_customer_route_t *ngx_http_customer_route(ngx_http_request_t *r,
    ngx_http_customer_ctx_t *ctx, ngx_uint_t *allowed);
ngx_int_t ngx_http_customer_allow_header(ngx_http_request_t *r,
    ngx_uint_t allowed, ngx_str_t *value);
ngx_int_t ngx_http_customer_path_check(ngx_http_request_t *r,
    const char **reason);
ngx_int_t ngx_http_customer_endpoint(ngx_http_customer_ctx_t *ctx);
NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_endpoint_done);

/* resources: one route table each, all of them in route_tables */
extern ngx_http_customer_route_t  *ngx_http_customer_route_tables[];
extern ngx_http_customer_route_t  ngx_http_customer_health_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_customers_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_relations_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_status_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_notes_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_search_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_financial_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_credit_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_loyalty_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_preferences_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_vehicles_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_documents_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_dashboard_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_events_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_internal_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_self_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_users_routes[];
extern ngx_http_customer_route_t  ngx_http_customer_survey_routes[];


/* a DELETE's answer: the id it was given, and when */
#define NGX_HTTP_CUSTOMER_DELETED(id)                                        \
    .columns = (ngx_http_customer_column_t []) {                             \
        { id, NGX_HTTP_CUSTOMER_COL_STRING },                                \
        { "deletedAt", NGX_HTTP_CUSTOMER_COL_STRING } },                     \
    .ncolumns = 2

/* the refusal of a stale If-Match, for "what" the path names */
#define NGX_HTTP_CUSTOMER_STALE_OF(what)                                     \
    NGX_HTTP_CUSTOMER_STALE("The " what " was changed since that version; "  \
                            "fetch it again")

/*
 * A resource's members described once, in its answer's column order, by
 * a macro of two arguments: column(name, type) is a column only, and
 * field(name, type, how, check, min, max, values) one that a body sets
 * too: how is REQUIRED, OPTIONAL or NULLABLE, check names its checker
 * ngx_http_customer_check_<check>.  Handed the four macros below, a
 * description makes its column table, or its field table with the end.
 */
#define NGX_HTTP_CUSTOMER_COLUMN(name, type)                                 \
    { name, NGX_HTTP_CUSTOMER_COL_##type },
#define NGX_HTTP_CUSTOMER_FIELD_COLUMN(name, type, how, check, min, max, v)  \
    { name, NGX_HTTP_CUSTOMER_COL_##type },
#define NGX_HTTP_CUSTOMER_NO_FIELD(name, type)
#define NGX_HTTP_CUSTOMER_FIELD(name, type, how, check, min, max, values)    \
    { name, ngx_http_customer_check_##check, NGX_HTTP_CUSTOMER_F_##how,      \
      min, max, values, NULL },

#define NGX_HTTP_CUSTOMER_COLUMNS_OF(members)                                \
    members(NGX_HTTP_CUSTOMER_COLUMN, NGX_HTTP_CUSTOMER_FIELD_COLUMN)
#define NGX_HTTP_CUSTOMER_FIELDS_OF(members)                                 \
    members(NGX_HTTP_CUSTOMER_NO_FIELD, NGX_HTTP_CUSTOMER_FIELD)             \
    NGX_HTTP_CUSTOMER_FIELDS_END

/* a row's columns: the whole table, however many it has */
#define NGX_HTTP_CUSTOMER_ROW_OF(cols)                                       \
    .columns = cols, .ncolumns = sizeof(cols) / sizeof(cols[0])

/*
 * A PATCH of the path's id: the members given, at least one, as jsonb,
 * the caller's sub and the If-Match version
 */
#define NGX_HTTP_CUSTOMER_EDIT(members, id)                                  \
    .fields = members, .partial = 1,                                         \
    .nonempty = NGX_HTTP_CUSTOMER_ONE_FIELD,                                 \
    .params = { NGX_HTTP_CUSTOMER_NAMED(ID, id),                             \
                NGX_HTTP_CUSTOMER_PARAM(JSON),                               \
                NGX_HTTP_CUSTOMER_PARAM(SUB),                                \
                NGX_HTTP_CUSTOMER_PARAM(IF_MATCH) }

/* a customerId of the body (or the query) that names no customer: 422 */
extern ngx_http_customer_missing_t  ngx_http_customer_no_customer;

/* an argument among values, or NULL when it is absent */
#define NGX_HTTP_CUSTOMER_ENUM(name, values)                                 \
    { NGX_HTTP_CUSTOMER_FROM_ENUM, name, values, NULL }


#endif /* _NGX_HTTP_CUSTOMER_ROUTER_H_INCLUDED_ */

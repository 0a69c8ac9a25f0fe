
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"


/*
 * Notes on a customer (seed 002 3.2.10).  An Administrator adds them; one
 * statement inserts the note and, unless it is private, copies its
 * content to customers.notes, bumping the record's version.  The list is
 * an Administrator's, or a Customer's own: for a Customer the statement
 * matches the record only when its user_id is the token's sub (any other
 * id is "not found") and leaves private notes out.
 */


#define NGX_HTTP_CUSTOMER_NOTE_COLUMNS                                       \
    "n.id, n.customer_id, n.content, n.note_type, n.is_private, "            \
    "n.is_important, n.author_id, api_ts(n.created_at)"

#define NGX_HTTP_CUSTOMER_NOTE_NCOLUMNS  8

/* $3 private ones too, $4 note type or NULL, $5 importance or NULL */
#define NGX_HTTP_CUSTOMER_NOTE_FILTER                                        \
    " (NOT is_private OR $3::boolean)"                                       \
    " AND ($4::text IS NULL OR note_type = $4::text)"                        \
    " AND ($5::boolean IS NULL OR is_important = $5::boolean)"


typedef struct {
    ngx_uint_t                     page;
    ngx_uint_t                     limit;
} ngx_http_customer_notes_page_t;


static ngx_int_t ngx_http_customer_notes_add(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_notes_added(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res);
static ngx_int_t ngx_http_customer_notes_list(ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_notes_listed(
    ngx_http_customer_ctx_t *ctx, ngx_http_customer_pg_query_t *q,
    PGresult *res);
static ngx_int_t ngx_http_customer_notes_flag(ngx_http_customer_ctx_t *ctx,
    const char *name, const char **value);
static char *ngx_http_customer_notes_member(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_uint_t *failed);


ngx_http_customer_route_t  ngx_http_customer_notes_routes[] = {
    { NGX_HTTP_GET, "/api/customers/{}/notes", ngx_http_customer_notes_list,
      NGX_HTTP_CUSTOMER_SELF, 0, 0 },
    { NGX_HTTP_POST, "/api/customers/{}/notes", ngx_http_customer_notes_add,
      NGX_HTTP_CUSTOMER_ADMIN, 1, 0 },
    { 0, NULL, NULL, 0, 0, 0 }
};


static const char  *ngx_http_customer_note_types[] = {
    "general", "service", "billing", "complaint", "other", NULL
};


static ngx_http_customer_field_t  ngx_http_customer_note_fields[] = {
    { "content", ngx_http_customer_check_text, NGX_HTTP_CUSTOMER_F_REQUIRED,
      1, 1000, NULL, NULL },
    { "noteType", ngx_http_customer_check_enum, 0, 0, 0,
      ngx_http_customer_note_types, NULL },
    { "isPrivate", ngx_http_customer_check_bool, 0, 0, 0, NULL, NULL },
    { "isImportant", ngx_http_customer_check_bool, 0, 0, 0, NULL, NULL },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};


static ngx_http_customer_column_t  ngx_http_customer_note_columns[] = {
    { "noteId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "content", NGX_HTTP_CUSTOMER_COL_STRING },
    { "noteType", NGX_HTTP_CUSTOMER_COL_STRING },
    { "isPrivate", NGX_HTTP_CUSTOMER_COL_BOOL },
    { "isImportant", NGX_HTTP_CUSTOMER_COL_BOOL },
    { "authorId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdAt", NGX_HTTP_CUSTOMER_COL_STRING }
};


/*
 * $1 customer id, $2 content, $3 type, $4 private, $5 important, $6 who.
 * The customer row is locked first, so created_at (the clock, not the
 * transaction's start) orders the notes of one customer as they were
 * written, and customers.notes always holds the newest public one's
 * content.  A private note leaves the record alone (content, version and
 * updatedAt): the Customer reads its record, and must learn nothing of a
 * private note from it.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_add_sql = {
    "WITH c AS (SELECT id FROM customers WHERE id = $1 FOR UPDATE),"
    " u AS (UPDATE customers SET notes = left($2::text, 1000),"
    " updated_at = now(), updated_by = $6::text, version = version + 1"
    " FROM c WHERE customers.id = c.id"
    " AND NOT coalesce($4::boolean, false) RETURNING customers.id),"
    " n AS (INSERT INTO customer_notes (customer_id, content, note_type,"
    " is_private, is_important, author_id, created_at)"
    " SELECT c.id, $2::text, coalesce($3::text, 'general'),"
    " coalesce($4::boolean, false), coalesce($5::boolean, false),"
    " $6::text, clock_timestamp() FROM c RETURNING *)"
    " SELECT " NGX_HTTP_CUSTOMER_NOTE_COLUMNS " FROM n",
    6, 0, 0, "", 0, 0, 0, 0
};


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator),
 * $3..$5 the filter, $6 limit, $7 offset.  No row: no such customer, or
 * not the caller's.  Otherwise the total in each row, and one row with
 * NULL columns for an empty page.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_list_sql = {
    "SELECT t.total, n.* FROM customers c"
    " CROSS JOIN LATERAL (SELECT count(*) AS total FROM customer_notes"
    " WHERE customer_id = c.id AND" NGX_HTTP_CUSTOMER_NOTE_FILTER ") t"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_NOTE_COLUMNS
    " FROM customer_notes n WHERE n.customer_id = c.id AND"
    NGX_HTTP_CUSTOMER_NOTE_FILTER
    " ORDER BY n.created_at DESC, n.id DESC LIMIT $6 OFFSET $7) n ON true"
    " WHERE c.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)",
    7, 1, 0, "", 0, 0, 0, 1
};


static ngx_int_t
ngx_http_customer_notes_add(ngx_http_customer_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_uint_t                     invalid;
    ngx_http_customer_pg_query_t  *q;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer notes add");

    rc = ngx_http_customer_validate(ctx, NULL, ctx->body,
                                    ngx_http_customer_note_fields, 1);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    invalid = (rc != NGX_OK);

    switch (ngx_http_customer_id(ctx)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    if (invalid) {
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                             "Validation failed");
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* ngx_http_customer_id() made the id NUL-terminated */
    q->values[0] = (char *) ctx->params[0].data;
    q->values[1] = ngx_http_customer_notes_member(ctx, "content", &invalid);
    q->values[2] = ngx_http_customer_notes_member(ctx, "noteType", &invalid);
    q->values[3] = ngx_http_customer_notes_member(ctx, "isPrivate",
                                                  &invalid);
    q->values[4] = ngx_http_customer_notes_member(ctx, "isImportant",
                                                  &invalid);
    q->values[5] = ctx->who.sub.len ? (char *) ctx->who.sub.data : NULL;

    if (invalid) {
        /* out of memory */
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_note_add_sql,
                                       ngx_http_customer_notes_added);
}


/*
 * A validated member of the body as a NUL-terminated parameter: a
 * string's (trimmed) text, "true"/"false", or NULL when it is absent.
 * Sets *failed when out of memory.
 */

static char *
ngx_http_customer_notes_member(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_uint_t *failed)
{
    u_char                    *p;
    ngx_http_customer_json_t  *v;

    v = ngx_http_customer_json_member(ctx->body, name);

    if (v == NULL) {
        return NULL;
    }

    if (v->type == NGX_HTTP_CUSTOMER_JSON_BOOL) {
        return v->boolean ? "true" : "false";
    }

    p = ngx_pnalloc(ctx->request->pool, v->str.len + 1);
    if (p == NULL) {
        *failed = 1;
        return NULL;
    }

    *ngx_cpymem(p, v->str.data, v->str.len) = '\0';

    return (char *) p;
}


static ngx_int_t
ngx_http_customer_notes_added(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_not_found(ctx);
    }

    return ngx_http_customer_send_row(ctx, NGX_HTTP_CREATED,
                                      "Note added successfully", res,
                                      ngx_http_customer_note_columns,
                                      NGX_HTTP_CUSTOMER_NOTE_NCOLUMNS);
}


static ngx_int_t
ngx_http_customer_notes_list(ngx_http_customer_ctx_t *ctx)
{
    ngx_str_t                        type;
    ngx_uint_t                       invalid, admin;
    const char                      *important;
    ngx_http_customer_pg_query_t    *q;
    ngx_http_customer_notes_page_t  *pg;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "customer notes list");

    pg = ngx_pcalloc(ctx->request->pool,
                     sizeof(ngx_http_customer_notes_page_t));
    if (pg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->data = pg;
    invalid = 0;

    switch (ngx_http_customer_id(ctx)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    switch (ngx_http_customer_page_args(ctx, &pg->page, &pg->limit)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    switch (ngx_http_customer_arg_enum(ctx, "noteType",
                                       ngx_http_customer_note_types, &type))
    {
    case NGX_OK:
    case NGX_DECLINED:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    switch (ngx_http_customer_notes_flag(ctx, "isImportant", &important)) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    if (invalid) {
        return ngx_http_customer_send_errors(ctx, NGX_HTTP_BAD_REQUEST,
                                             "Validation failed");
    }

    q = ngx_http_customer_query_create(ctx);
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    admin = (ctx->who.roles & NGX_HTTP_CUSTOMER_ROLE_ADMIN) ? 1 : 0;

    q->values[0] = (char *) ctx->params[0].data;

    q->values[1] = ngx_http_customer_own_sub(ctx);
    q->values[2] = admin ? "true" : "false";
    q->values[3] = type.len ? (char *) type.data : NULL;
    q->values[4] = important;

    if (ngx_http_customer_page_values(ctx, q, 5, pg->page, pg->limit)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_note_list_sql,
                                       ngx_http_customer_notes_listed);
}


/* a true|false query argument: "true", "false", or NULL when absent */

static ngx_int_t
ngx_http_customer_notes_flag(ngx_http_customer_ctx_t *ctx, const char *name,
    const char **value)
{
    ngx_str_t  s;

    *value = NULL;

    switch (ngx_http_customer_arg_str(ctx, name, &s)) {
    case NGX_DECLINED:
        return NGX_OK;
    case NGX_ERROR:
        return NGX_ERROR;
    }

    if (s.len == 4 && ngx_strncmp(s.data, "true", 4) == 0) {
        *value = "true";
        return NGX_OK;
    }

    if (s.len == 5 && ngx_strncmp(s.data, "false", 5) == 0) {
        *value = "false";
        return NGX_OK;
    }

    if (ngx_http_customer_add_error(ctx, (u_char *) name, ngx_strlen(name),
                                    "Must be true or false")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_customer_notes_listed(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res)
{
    ngx_http_customer_notes_page_t  *pg;

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_not_found(ctx);
    }

    pg = ctx->data;

    return ngx_http_customer_send_page(ctx, res,
                                       "Notes retrieved successfully",
                                       "notes",
                                       ngx_http_customer_note_columns,
                                       NGX_HTTP_CUSTOMER_NOTE_NCOLUMNS,
                                       pg->page, pg->limit);
}

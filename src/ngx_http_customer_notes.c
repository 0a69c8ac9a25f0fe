
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_router.h"


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


#define NGX_HTTP_CUSTOMER_NOTE_ID                                            \
    { NGX_HTTP_CUSTOMER_FROM_ID, "customerId", NULL, NULL }

#define NGX_HTTP_CUSTOMER_NOTE_BODY(name)                                    \
    { NGX_HTTP_CUSTOMER_FROM_BODY, name, NULL, NULL }


ngx_http_customer_route_t  ngx_http_customer_notes_routes[] = {

    { NGX_HTTP_GET, "/api/customers/{}/notes", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_note_list_sql,
      .params = {
          NGX_HTTP_CUSTOMER_NOTE_ID,
          { NGX_HTTP_CUSTOMER_FROM_OWN, NULL, NULL, NULL },
          { NGX_HTTP_CUSTOMER_FROM_ADMIN, NULL, NULL, NULL },
          { NGX_HTTP_CUSTOMER_FROM_ENUM, "noteType",
            ngx_http_customer_note_types, NULL },
          { NGX_HTTP_CUSTOMER_FROM_FLAG, "isImportant", NULL, NULL },
          { NGX_HTTP_CUSTOMER_FROM_PAGE, NULL, NULL, NULL } },
      .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,
      .message = "Notes retrieved successfully", .list = "notes",
      .columns = ngx_http_customer_note_columns,
      .ncolumns = NGX_HTTP_CUSTOMER_NOTE_NCOLUMNS },

    { NGX_HTTP_POST, "/api/customers/{}/notes", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      .fields = ngx_http_customer_note_fields,
      .stmt = &ngx_http_customer_note_add_sql,
      .params = {
          NGX_HTTP_CUSTOMER_NOTE_ID,
          NGX_HTTP_CUSTOMER_NOTE_BODY("content"),
          NGX_HTTP_CUSTOMER_NOTE_BODY("noteType"),
          NGX_HTTP_CUSTOMER_NOTE_BODY("isPrivate"),
          NGX_HTTP_CUSTOMER_NOTE_BODY("isImportant"),
          { NGX_HTTP_CUSTOMER_FROM_SUB, NULL, NULL, NULL } },
      .status = NGX_HTTP_CREATED, .message = "Note added successfully",
      .columns = ngx_http_customer_note_columns,
      .ncolumns = NGX_HTTP_CUSTOMER_NOTE_NCOLUMNS },

    NGX_HTTP_CUSTOMER_ROUTES_END
};

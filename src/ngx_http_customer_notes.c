
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * Notes on a customer.  An Administrator adds them; one statement inserts
 * the note and, unless it is private, copies its content to
 * customers.notes, bumping the record's version.  The list is an
 * Administrator's, or a Customer's own: for a Customer the statement
 * matches the record only when its user_id is the token's sub (any other
 * id is "not found") and leaves private notes out.
 *
 * Administrators also reach notes across customers (/api/notes, with
 * filters), and edit or delete one (/api/notes/{noteId}): the editor and
 * the time are kept (updatedBy, updatedAt), and customers.notes goes on
 * following the newest public note: an edit or a delete of the note it
 * mirrors, or an edit that makes a note the newest public one, moves it
 * in the same statement.
 */


#define NGX_HTTP_CUSTOMER_NOTE_COLUMNS                                       \
    "n.id, n.customer_id, n.content, n.note_type, n.is_private, "            \
    "n.is_important, n.author_id, api_ts(n.created_at), "                    \
    "api_ts(n.updated_at) AS updated, n.updated_by, n.version"

/* the administrators' filters: $1 customer, $2 type, $3 importance, $4
   privacy, $5 author, each NULL for any */
#define NGX_HTTP_CUSTOMER_NOTE_ALL                                           \
    " ($1::uuid IS NULL OR n.customer_id = $1::uuid)"                       \
    " AND ($2::text IS NULL OR n.note_type = $2::text)"                     \
    " AND ($3::boolean IS NULL OR n.is_important = $3::boolean)"            \
    " AND ($4::boolean IS NULL OR n.is_private = $4::boolean)"              \
    " AND ($5::text IS NULL OR n.author_id = $5::text)"

/*
 * For an edit or a delete of the note $1 ("o": its customer and old
 * content): "c" the customer's record, locked, as the note's insert
 * locks it; "p" the newest public note once the note has changed (the
 * others, and the changed one where "changed" adds it), whose content
 * the record's notes must then hold (none: NULL).
 */
#define NGX_HTTP_CUSTOMER_NOTE_LOCK                                          \
    " c AS (SELECT cu.id, cu.notes FROM customers cu JOIN o"                 \
    " ON cu.id = o.customer_id FOR UPDATE OF cu)"

#define NGX_HTTP_CUSTOMER_NOTE_NEWEST(changed)                               \
    " p AS (SELECT y.id, left(y.content, 1000) AS content FROM"              \
    " (SELECT id, content, created_at, is_private FROM customer_notes"       \
    " WHERE customer_id = (SELECT customer_id FROM o) AND id <> $1"          \
    changed ") y WHERE NOT y.is_private"                                     \
    " ORDER BY y.created_at DESC, y.id DESC LIMIT 1)"

/* $3 private ones too, $4 note type or NULL, $5 importance or NULL */
#define NGX_HTTP_CUSTOMER_NOTE_FILTER                                        \
    " (NOT is_private OR $3::boolean)"                                       \
    " AND ($4::text IS NULL OR note_type = $4::text)"                        \
    " AND ($5::boolean IS NULL OR is_important = $5::boolean)"


static const char  *ngx_http_customer_note_types[] = {
    "general", "service", "billing", "complaint", "other", NULL
};


/* a note's columns and members (see router.h) */
#define NGX_HTTP_CUSTOMER_NOTE(column, field)                                \
    column("noteId", STRING)                                                 \
    column("customerId", STRING)                                             \
    field("content", STRING, REQUIRED, text, 1, 1000, NULL)                  \
    field("noteType", STRING, OPTIONAL, enum, 0, 0,                          \
          ngx_http_customer_note_types)                                      \
    field("isPrivate", BOOL, OPTIONAL, bool, 0, 0, NULL)                     \
    field("isImportant", BOOL, OPTIONAL, bool, 0, 0, NULL)                   \
    column("authorId", STRING)                                               \
    column("createdAt", STRING)                                              \
    column("updatedAt", STRING)                                              \
    column("updatedBy", STRING)                                              \
    column("version", NUMBER)

/* a PATCH takes those given, at least one */
static ngx_http_customer_field_t  ngx_http_customer_note_fields[] = {
    NGX_HTTP_CUSTOMER_FIELDS_OF(NGX_HTTP_CUSTOMER_NOTE)
};


/* POST /api/notes: the customer in the body */
static ngx_http_customer_field_t  ngx_http_customer_note_new_fields[] = {
    NGX_HTTP_CUSTOMER_REQUIRED("customerId", uuid, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_OF(NGX_HTTP_CUSTOMER_NOTE)
};


static ngx_http_customer_column_t  ngx_http_customer_note_columns[] = {
    NGX_HTTP_CUSTOMER_COLUMNS_OF(NGX_HTTP_CUSTOMER_NOTE)
};


static ngx_http_customer_missing_t  ngx_http_customer_note_missing = {
    "Note not found", "noteId", "No such note", 0
};

static ngx_http_customer_refusal_t  ngx_http_customer_note_stale =
    NGX_HTTP_CUSTOMER_STALE_OF("note");


/*
 * $1 customer id, $2 content, $3 type, $4 private, $5 important, $6 who.
 * The customer row is locked first, so created_at (the clock, not the
 * transaction's start) orders the notes of one customer as they were
 * written, and customers.notes always holds the newest public one's
 * content.  A private note leaves the record alone (content, version and
 * updatedAt): the Customer reads its record, and must learn nothing of a
 * private note from it.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_add_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(6,
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
    " SELECT " NGX_HTTP_CUSTOMER_NOTE_COLUMNS " FROM n");


/*
 * $1 customer id, $2 the Customer's sub (NULL for an Administrator),
 * $3..$5 the filter, $6 limit, $7 offset.  No row: no such customer, or
 * not the caller's.  Otherwise the total in each row, and one row with
 * NULL columns for an empty page.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_list_sql = {
    NGX_HTTP_CUSTOMER_PAGE_SQL("customer_notes"
        " WHERE customer_id = c.id AND" NGX_HTTP_CUSTOMER_NOTE_FILTER,
        "SELECT " NGX_HTTP_CUSTOMER_NOTE_COLUMNS
        " FROM customer_notes n WHERE n.customer_id = c.id AND"
        NGX_HTTP_CUSTOMER_NOTE_FILTER
        " ORDER BY n.created_at DESC, n.id DESC LIMIT $6 OFFSET $7"),
    7, 1, 0, "", 0, 0, 0, 1, 0, NULL
};


/* $1..$5 the filters, $6 limit, $7 offset; newest first */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_all_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(7,
    "SELECT t.total, n.* FROM (SELECT count(*) AS total"
    " FROM customer_notes n WHERE" NGX_HTTP_CUSTOMER_NOTE_ALL ") t"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_NOTE_COLUMNS
    " FROM customer_notes n WHERE" NGX_HTTP_CUSTOMER_NOTE_ALL
    " ORDER BY n.created_at DESC, n.id DESC LIMIT $6 OFFSET $7) n ON true");

/* $1 the note, $2 a Customer's sub: its own record's public notes */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_get_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(2,
    "SELECT " NGX_HTTP_CUSTOMER_NOTE_COLUMNS " FROM customer_notes n"
    " JOIN customers c ON c.id = n.customer_id WHERE n.id = $1"
    " AND ($2::text IS NULL OR (c.user_id = $2::text AND NOT n.is_private))");

/*
 * $1 the note, $2 the members to change (jsonb), $3 who, $4 the If-Match
 * version or NULL.  The record's notes moves when it mirrored this note's
 * old content, or when this note is now the newest public one.  No row:
 * no such note; NULL columns: a stale version.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_edit_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "WITH o AS (SELECT id, customer_id, left(content, 1000) AS old"
    " FROM customer_notes WHERE id = $1)," NGX_HTTP_CUSTOMER_NOTE_LOCK ","
    " u AS (UPDATE customer_notes n SET"
    " content = coalesce(b->>'content', n.content),"
    " note_type = coalesce(b->>'noteType', n.note_type),"
    " is_private = coalesce((b->>'isPrivate')::boolean, n.is_private),"
    " is_important = coalesce((b->>'isImportant')::boolean,"
    " n.is_important),"
    " updated_at = now(), updated_by = $3::text,"
    " version = n.version + 1"
    " FROM (SELECT $2::jsonb AS b) j, c WHERE n.id = $1"
    " AND ($4::integer IS NULL OR n.version = $4::integer) RETURNING n.*),"
    NGX_HTTP_CUSTOMER_NOTE_NEWEST(" UNION ALL SELECT id, content,"
                                  " created_at, is_private FROM u") ","
    " s AS (UPDATE customers cu SET notes = (SELECT content FROM p),"
    " updated_at = now(), updated_by = $3::text, version = cu.version + 1"
    " FROM c, o WHERE cu.id = c.id"
    " AND c.notes IS DISTINCT FROM (SELECT content FROM p)"
    " AND EXISTS (SELECT 1 FROM u) AND (c.notes IS NOT DISTINCT FROM o.old"
    " OR (SELECT id FROM p) = $1) RETURNING cu.id)"
    " SELECT " NGX_HTTP_CUSTOMER_NOTE_COLUMNS " FROM o LEFT JOIN u n ON true");

/* $1 the note, $2 who; the record's notes as on an edit */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_note_delete_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "WITH o AS (SELECT id, customer_id, left(content, 1000) AS old"
    " FROM customer_notes WHERE id = $1)," NGX_HTTP_CUSTOMER_NOTE_LOCK ","
    " d AS (DELETE FROM customer_notes n USING c WHERE n.id = $1"
    " RETURNING n.id)," NGX_HTTP_CUSTOMER_NOTE_NEWEST("") ","
    " s AS (UPDATE customers cu SET notes = (SELECT content FROM p),"
    " updated_at = now(), updated_by = $2::text, version = cu.version + 1"
    " FROM c, o, d WHERE cu.id = c.id"
    " AND c.notes IS DISTINCT FROM (SELECT content FROM p)"
    " AND c.notes IS NOT DISTINCT FROM o.old RETURNING cu.id)"
    " SELECT d.id, api_ts(now()) FROM d");


#define NGX_HTTP_CUSTOMER_NOTE_BODY(name)  NGX_HTTP_CUSTOMER_NAMED(BODY, name)

/* a new note of the customer $1, from the path or the body */
#define NGX_HTTP_CUSTOMER_NOTE_ADD(customer)                                 \
    .stmt = &ngx_http_customer_note_add_sql,                                \
    .params = { customer, NGX_HTTP_CUSTOMER_NOTE_BODY("content"),           \
                NGX_HTTP_CUSTOMER_NOTE_BODY("noteType"),                    \
                NGX_HTTP_CUSTOMER_NOTE_BODY("isPrivate"),                   \
                NGX_HTTP_CUSTOMER_NOTE_BODY("isImportant"),                 \
                NGX_HTTP_CUSTOMER_PARAM(SUB) },                             \
    .status = NGX_HTTP_CREATED, .message = "Note added successfully",       \
    NGX_HTTP_CUSTOMER_NOTE_ROW

#define NGX_HTTP_CUSTOMER_NOTE_ROW                                           \
    NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_note_columns)

/* a page of notes, newest first */
#define NGX_HTTP_CUSTOMER_NOTE_PAGE                                          \
    .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,                                \
    .message = "Notes retrieved successfully", .list = "notes",             \
    NGX_HTTP_CUSTOMER_NOTE_ROW

/* a statement on one note by its id, or 404 "Note not found" */
#define NGX_HTTP_CUSTOMER_NOTE_BY_ID(sql, who)                               \
    .stmt = sql,                                                             \
    .params = { NGX_HTTP_CUSTOMER_NAMED(ID, "noteId"),                       \
                NGX_HTTP_CUSTOMER_PARAM(who) },                              \
    .missing = &ngx_http_customer_note_missing


ngx_http_customer_route_t  ngx_http_customer_notes_routes[] = {

    { NGX_HTTP_GET, "/api/customers/{}/notes", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_note_list_sql,
      .params = {
          NGX_HTTP_CUSTOMER_OWN_ID("customerId"),
          NGX_HTTP_CUSTOMER_PARAM(ADMIN),
          NGX_HTTP_CUSTOMER_ENUM("noteType", ngx_http_customer_note_types),
          NGX_HTTP_CUSTOMER_NAMED(FLAG, "isImportant"),
          NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      NGX_HTTP_CUSTOMER_NOTE_PAGE },

    { NGX_HTTP_POST, "/api/customers/{}/notes", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      .fields = ngx_http_customer_note_fields,
      NGX_HTTP_CUSTOMER_NOTE_ADD(NGX_HTTP_CUSTOMER_CUSTOMER_ID) },

    /* the administrators' notes across customers */
    { NGX_HTTP_GET, "/api/notes", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .stmt = &ngx_http_customer_note_all_sql,
      .params = {
          NGX_HTTP_CUSTOMER_CHECKED("customerId",
                                    ngx_http_customer_check_uuid, 0, 0),
          NGX_HTTP_CUSTOMER_ENUM("noteType", ngx_http_customer_note_types),
          NGX_HTTP_CUSTOMER_NAMED(FLAG, "isImportant"),
          NGX_HTTP_CUSTOMER_NAMED(FLAG, "isPrivate"),
          /* what a token's sub may be */
          NGX_HTTP_CUSTOMER_CHECKED("authorId", ngx_http_customer_check_line,
                                    1, 128),
          NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      NGX_HTTP_CUSTOMER_NOTE_PAGE },

    { NGX_HTTP_POST, "/api/notes", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      .fields = ngx_http_customer_note_new_fields,
      NGX_HTTP_CUSTOMER_NOTE_ADD(NGX_HTTP_CUSTOMER_NOTE_BODY("customerId")),
      .missing = &ngx_http_customer_no_customer },

    /* a Customer reads its own record's public notes only */
    { NGX_HTTP_GET, "/api/notes/{}", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_NOTE_BY_ID(&ngx_http_customer_note_get_sql, OWN),
      .message = "Note retrieved successfully",
      NGX_HTTP_CUSTOMER_NOTE_ROW, .etag = 1 },

    { NGX_HTTP_PATCH, "/api/notes/{}", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_EDIT(ngx_http_customer_note_fields, "noteId"),
      .stmt = &ngx_http_customer_note_edit_sql,
      .message = "Note updated successfully",
      NGX_HTTP_CUSTOMER_NOTE_ROW,
      .missing = &ngx_http_customer_note_missing, .etag = 1,
      .refused = &ngx_http_customer_note_stale },

    { NGX_HTTP_DELETE, "/api/notes/{}", ngx_http_customer_endpoint,
      NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      NGX_HTTP_CUSTOMER_NOTE_BY_ID(&ngx_http_customer_note_delete_sql, SUB),
      .message = "Note deleted successfully",
      NGX_HTTP_CUSTOMER_DELETED("noteId") },

    NGX_HTTP_CUSTOMER_ROUTES_END
};

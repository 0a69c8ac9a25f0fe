
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_access.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_query.h"
#include "ngx_http_customer_router.h"


/*
 * Documents: the request body is the file, of any
 * type and perhaps empty, its metadata in the query.  The bytes go to
 * PostgreSQL as a binary parameter, into document_contents, in the same
 * statement as the metadata row with the size and SHA-256 computed there:
 * a document is stored whole or not at all, and survives restarts.  The
 * body must fit in memory (client_body_buffer_size) and within
 * client_max_body_size; the handler answers 413 otherwise, before any
 * query.  The content comes back as binary results, byte for byte, in
 * chunks (below).  A Customer reaches only its own record's documents and
 * never an identity document's content.
 *
 * A download holds at most two chunks of the document whatever its size:
 * the first query returns the metadata and the first chunk; each further
 * chunk is asked for (substring() of the bytea, one cheap query, the
 * connection free in between) only when one of the two buffers has gone
 * out to the client, so a slow reader costs its two buffers and no
 * PostgreSQL connection while it reads.  The content column is stored
 * uncompressed (STORAGE EXTERNAL) so that a substring reads only its own
 * TOAST chunks.  The document is immutable; one deleted mid-download
 * ends the connection short of its Content-Length, which the client sees
 * as a truncated transfer.
 */


#define NGX_HTTP_CUSTOMER_DOCUMENT_COLUMNS                                   \
    "d.id, d.customer_id, d.vehicle_id, d.type, d.title, d.filename,"       \
    " d.content_type, d.size, d.sha256, d.expires_at,"                      \
    " api_ts(d.created_at) AS created, d.created_by,"                       \
    " api_ts(d.updated_at) AS updated, d.updated_by, d.version"

#define NGX_HTTP_CUSTOMER_DOCUMENT_NCOLUMNS  15    /* the last: version */

/*
 * after the columns on upload: the customer's id, NULL when not found;
 * on an edit: whether the vehicle given was the customer's
 */
#define NGX_HTTP_CUSTOMER_DOCUMENT_CUSTOMER  15

/*
 * The administrators' list: $1 a Customer's sub (its own record's
 * documents only), $2 type, $3 customer, $4 vehicle, each NULL for any
 */
#define NGX_HTTP_CUSTOMER_DOCUMENT_ALL                                       \
    " ($1::text IS NULL OR d.customer_id ="                                  \
    " (SELECT id FROM customers WHERE user_id = $1::text))"                  \
    " AND ($2::text IS NULL OR d.type = $2::text)"                           \
    " AND ($3::uuid IS NULL OR d.customer_id = $3::uuid)"                    \
    " AND ($4::uuid IS NULL OR d.vehicle_id = $4::uuid)"

/* the document $1, when the caller ($2: a Customer's sub) may reach it */
#define NGX_HTTP_CUSTOMER_DOCUMENT_OWN                                       \
    " JOIN customers c ON c.id = d.customer_id"                             \
    " WHERE d.id = $1 AND ($2::text IS NULL OR c.user_id = $2::text)"

#define NGX_HTTP_CUSTOMER_DOCUMENT_EXPIRING                                  \
    " expires_at BETWEEN api_today() AND api_today() + $1::integer"

/* the content's columns, in binary */
#define NGX_HTTP_CUSTOMER_CONTENT_TYPE      0
#define NGX_HTTP_CUSTOMER_CONTENT_MIME      1
#define NGX_HTTP_CUSTOMER_CONTENT_FILENAME  2
#define NGX_HTTP_CUSTOMER_CONTENT_SHA256    3
#define NGX_HTTP_CUSTOMER_CONTENT_SIZE      4
#define NGX_HTTP_CUSTOMER_CONTENT_BYTES     5

/* bytes of a document per query and per buffer; two buffers a download */
#define NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK    131072


/* a download under way */
typedef struct {
    ngx_http_customer_pg_query_t  *query;      /* reused for every chunk */
    ngx_chain_t                   *next;       /* the buffer it fills */
    ngx_chain_t                   *free;       /* buffers sent out */
    ngx_chain_t                   *busy;       /* buffers being sent */
    ngx_uint_t                     nbufs;      /* allocated, at most 2 */
    off_t                          size;       /* of the document */
    off_t                          offset;     /* bytes asked for so far */
    char                           from[NGX_OFF_T_LEN + 1];   /* $2 */
} ngx_http_customer_download_t;


static ngx_int_t ngx_http_customer_documents_upload(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_documents_meta(
    ngx_http_customer_ctx_t *ctx, ngx_uint_t n, ngx_str_t *value);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_documents_send_content);
static ngx_int_t ngx_http_customer_download_start(
    ngx_http_customer_ctx_t *ctx, PGresult *res, off_t size);
static ngx_chain_t *ngx_http_customer_download_buf(
    ngx_http_customer_ctx_t *ctx);
static ngx_int_t ngx_http_customer_download_next(
    ngx_http_customer_ctx_t *ctx);
static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_download_chunk);
static ngx_int_t ngx_http_customer_download_out(
    ngx_http_customer_ctx_t *ctx, ngx_chain_t *in);
static void ngx_http_customer_download_writer(ngx_http_request_t *r);
static u_char *ngx_http_customer_documents_disposition(ngx_pool_t *pool,
    u_char *name, size_t len, size_t *size);
static NGX_HTTP_CUSTOMER_CHECK(filename);


static const char  *ngx_http_customer_document_types[] = {
    "insurance", "registration", "service", "identity", "other", NULL
};


/*
 * An upload's metadata: each from the query or its header, in this
 * order (the filename defaults to the title).  A PATCH takes those
 * given, at least one, as JSON members: it may set the last two null.
 */
#define NGX_HTTP_CUSTOMER_DOCUMENT_TYPE      0
#define NGX_HTTP_CUSTOMER_DOCUMENT_TITLE     1
#define NGX_HTTP_CUSTOMER_DOCUMENT_FILENAME  2
#define NGX_HTTP_CUSTOMER_DOCUMENT_EXPIRES   3
#define NGX_HTTP_CUSTOMER_DOCUMENT_VEHICLE   4
#define NGX_HTTP_CUSTOMER_DOCUMENT_NMETA     5
/* POST /api/documents only: the customer, not in the path */
#define NGX_HTTP_CUSTOMER_DOCUMENT_OWNER     5

static ngx_http_customer_field_t  ngx_http_customer_document_meta[] = {
    NGX_HTTP_CUSTOMER_ONE_OF("type", REQUIRED,
                             ngx_http_customer_document_types),
    NGX_HTTP_CUSTOMER_REQUIRED("title", line, 1, 200),
    NGX_HTTP_CUSTOMER_OPTIONAL("filename", filename, 1, 255),
    NGX_HTTP_CUSTOMER_NULLABLE("expiresAt", date, 0, 0),
    NGX_HTTP_CUSTOMER_NULLABLE("vehicleId", uuid, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_END
};

static ngx_http_customer_field_t  ngx_http_customer_document_owner =
    NGX_HTTP_CUSTOMER_REQUIRED("customerId", uuid, 0, 0);

static const char  *ngx_http_customer_document_headers[] = {
    "X-Document-Type", "X-Document-Title", "X-Document-Filename",
    "X-Document-Expires-At", "X-Document-Vehicle-Id",
    "X-Document-Customer-Id"
};


/* the expiring-soon list adds daysRemaining */
static ngx_http_customer_column_t  ngx_http_customer_document_columns[] = {
    { "documentId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "vehicleId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "type", NGX_HTTP_CUSTOMER_COL_STRING },
    { "title", NGX_HTTP_CUSTOMER_COL_STRING },
    { "filename", NGX_HTTP_CUSTOMER_COL_STRING },
    { "contentType", NGX_HTTP_CUSTOMER_COL_STRING },
    { "size", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "sha256", NGX_HTTP_CUSTOMER_COL_STRING },
    { "expiresAt", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdAt", NGX_HTTP_CUSTOMER_COL_STRING },
    { "createdBy", NGX_HTTP_CUSTOMER_COL_STRING },
    { "updatedAt", NGX_HTTP_CUSTOMER_COL_STRING },
    { "updatedBy", NGX_HTTP_CUSTOMER_COL_STRING },
    { "version", NGX_HTTP_CUSTOMER_COL_NUMBER },
    { "daysRemaining", NGX_HTTP_CUSTOMER_COL_NUMBER }
};


static ngx_http_customer_missing_t  ngx_http_customer_document_missing = {
    "Document not found", "documentId", "No such document", 0
};


static ngx_http_customer_refusal_t  ngx_http_customer_document_stale =
    NGX_HTTP_CUSTOMER_STALE_OF("document");


/* a vehicleId that is not one of the document's customer's vehicles */
static ngx_http_customer_refusal_t  ngx_http_customer_document_vehicle = {
    NGX_HTTP_UNPROCESSABLE_ENTITY, "Vehicle not found", "vehicleId",
    "The customer has no such vehicle", NULL
};


/*
 * $1 the customer, $2 the caller's sub or NULL, $3 type, $4 title,
 * $5 filename, $6 vehicle or NULL, $7 content type, $8 expiry or NULL,
 * $9 the bytes (binary), $10 who.  Always one row: NULL columns when
 * nothing was stored, then the customer's id (NULL: no such customer,
 * otherwise the vehicle is not the customer's).
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_upload_sql = {
    "WITH c AS (SELECT id FROM customers WHERE id = $1"
    " AND ($2::text IS NULL OR user_id = $2::text)),"
    " d AS (INSERT INTO documents AS d (customer_id, vehicle_id, type,"
    " title, filename, content_type, size, sha256, expires_at, created_by)"
    " SELECT c.id, $6::uuid, $3::text, $4::text, $5::text, $7::text,"
    " octet_length($9::bytea), encode(sha256($9::bytea), 'hex'), $8::date,"
    " $10::text FROM c"
    " WHERE $6::uuid IS NULL OR EXISTS (SELECT 1 FROM vehicles"
    " WHERE id = $6::uuid AND customer_id = c.id)"
    " RETURNING d.*),"
    " x AS (INSERT INTO document_contents (document_id, content)"
    " SELECT d.id, $9::bytea FROM d)"
    " SELECT " NGX_HTTP_CUSTOMER_DOCUMENT_COLUMNS ", (SELECT id FROM c)"
    " FROM (SELECT 1) s LEFT JOIN d ON true",
    10, 0, 0, "", 1 << 8, 0, 0, 0, 0, NULL
};

static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_get_sql =
    NGX_HTTP_CUSTOMER_PG_SHARED(2,
    "SELECT " NGX_HTTP_CUSTOMER_DOCUMENT_COLUMNS " FROM documents d"
    NGX_HTTP_CUSTOMER_DOCUMENT_OWN);

static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_delete_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(2,
    "DELETE FROM documents d USING customers c"
    " WHERE d.id = $1 AND c.id = d.customer_id"
    " AND ($2::text IS NULL OR c.user_id = $2::text)"
    " RETURNING d.id, api_ts(now())");

/*
 * Text columns in binary are their bytes: only the content is bytea.  The
 * metadata and the first chunk.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_content_sql = {
    "SELECT d.type, d.content_type, d.filename, d.sha256, d.size::text,"
    " substring(x.content FROM 1 FOR "
    ngx_value(NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK) ")"
    " FROM documents d JOIN document_contents x ON x.document_id = d.id"
    NGX_HTTP_CUSTOMER_DOCUMENT_OWN,
    2, 0, 0, "", 0, 1, 1, 0, 0, NULL
};

/* the chunk of document $1 from byte $2 (1-based) */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_chunk_sql = {
    "SELECT substring(content FROM $2::integer FOR "
    ngx_value(NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK) ")"
    " FROM document_contents WHERE document_id = $1",
    2, 1, 0, "", 0, 1, 0, 0, 0, NULL
};

/* $1 the customer, $2 sub, $3 type or NULL, $4 limit, $5 offset */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_list_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(5,
    NGX_HTTP_CUSTOMER_PAGE_SQL("documents WHERE customer_id = c.id"
        " AND ($3::text IS NULL OR type = $3::text)",
        "SELECT " NGX_HTTP_CUSTOMER_DOCUMENT_COLUMNS
        " FROM documents d WHERE d.customer_id = c.id"
        " AND ($3::text IS NULL OR d.type = $3::text)"
        " ORDER BY d.created_at DESC, d.id DESC LIMIT $4 OFFSET $5"));

/* $1..$4 the filters, $5 limit, $6 offset; newest first */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_all_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(6,
    "SELECT n.total, d.* FROM (SELECT count(*) AS total FROM documents d"
    " WHERE" NGX_HTTP_CUSTOMER_DOCUMENT_ALL ") n"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_DOCUMENT_COLUMNS
    " FROM documents d WHERE" NGX_HTTP_CUSTOMER_DOCUMENT_ALL
    " ORDER BY d.created_at DESC, d.id DESC LIMIT $5 OFFSET $6) d ON true");

/*
 * $1 the document, $2 the members to change (jsonb), $3 who, $4 the
 * If-Match version or NULL.  No row: no such document; NULL columns: the
 * vehicle named is not its customer's (the last column false), or a
 * stale version.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_edit_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(4,
    "WITH o AS (SELECT id, customer_id FROM documents WHERE id = $1"
    " FOR UPDATE), j AS (SELECT $2::jsonb AS b),"
    " ok AS (SELECT o.id FROM o, j WHERE b->>'vehicleId' IS NULL"
    " OR EXISTS (SELECT 1 FROM vehicles v"
    " WHERE v.id = (b->>'vehicleId')::uuid"
    " AND v.customer_id = o.customer_id)),"
    " u AS (UPDATE documents d SET title = coalesce(b->>'title', d.title),"
    " type = coalesce(b->>'type', d.type),"
    " filename = coalesce(b->>'filename', d.filename),"
    " expires_at = CASE WHEN b ? 'expiresAt'"
    " THEN (b->>'expiresAt')::date ELSE d.expires_at END,"
    " vehicle_id = CASE WHEN b ? 'vehicleId'"
    " THEN (b->>'vehicleId')::uuid ELSE d.vehicle_id END,"
    " updated_at = now(), updated_by = $3::text, version = d.version + 1"
    " FROM ok, j WHERE d.id = ok.id"
    " AND ($4::integer IS NULL OR d.version = $4::integer) RETURNING d.*)"
    " SELECT " NGX_HTTP_CUSTOMER_DOCUMENT_COLUMNS ","
    " EXISTS (SELECT 1 FROM ok) FROM o LEFT JOIN u d ON true");

/* $1 days, $2 limit, $3 offset; soonest first */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_documents_expiring_sql =
    NGX_HTTP_CUSTOMER_PG_LIST(3,
    "SELECT n.total, d.* FROM (SELECT count(*) AS total FROM documents"
    " WHERE" NGX_HTTP_CUSTOMER_DOCUMENT_EXPIRING ") n"
    " LEFT JOIN LATERAL (SELECT " NGX_HTTP_CUSTOMER_DOCUMENT_COLUMNS ","
    " d.expires_at - api_today() AS days FROM documents d"
    " WHERE d." NGX_HTTP_CUSTOMER_DOCUMENT_EXPIRING
    " ORDER BY d.expires_at, d.created_at, d.id LIMIT $2 OFFSET $3) d"
    " ON true");


/* a page of documents; "more" columns after a document's */
#define NGX_HTTP_CUSTOMER_DOCUMENT_LIST(more)                                \
    .answer = NGX_HTTP_CUSTOMER_ANSWER_PAGE,                                \
    .message = "Documents retrieved successfully", .list = "documents",     \
    .columns = ngx_http_customer_document_columns,                          \
    .ncolumns = NGX_HTTP_CUSTOMER_DOCUMENT_NCOLUMNS + more

/*
 * An upload, answered by ngx_http_customer_endpoint_done(): no document
 * stored is no customer (404, or the row's missing), else the vehicle
 */
#define NGX_HTTP_CUSTOMER_DOCUMENT_UPLOAD                                    \
    NGX_HTTP_CUSTOMER_HOOK, .status = NGX_HTTP_CREATED,                      \
    .message = "Document uploaded successfully",                             \
    .columns = ngx_http_customer_document_columns,                          \
    .ncolumns = NGX_HTTP_CUSTOMER_DOCUMENT_NCOLUMNS, .etag = 1,             \
    .refused = &ngx_http_customer_document_vehicle,                         \
    .exists = NGX_HTTP_CUSTOMER_DOCUMENT_CUSTOMER

/* one document, its version the ETag; none is 404 "Document not found" */
#define NGX_HTTP_CUSTOMER_DOCUMENT_ROW                                       \
    .columns = ngx_http_customer_document_columns,                          \
    .ncolumns = NGX_HTTP_CUSTOMER_DOCUMENT_NCOLUMNS,                        \
    .missing = &ngx_http_customer_document_missing, .etag = 1

/*
 * expiring-soon before the "{}" pattern that would also match it; the
 * uploads and the content are hooks: their body and answer are bytes
 */
ngx_http_customer_route_t  ngx_http_customer_documents_routes[] = {
    { NGX_HTTP_POST, "/api/customers/{}/documents",
      ngx_http_customer_documents_upload, NGX_HTTP_CUSTOMER_SELF, 3, 0,
      NGX_HTTP_CUSTOMER_DOCUMENT_UPLOAD },
    { NGX_HTTP_GET, "/api/customers/{}/documents",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_documents_list_sql,
      .params = {
          NGX_HTTP_CUSTOMER_OWN_ID("customerId"),
          NGX_HTTP_CUSTOMER_ENUM("type", ngx_http_customer_document_types),
          NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      NGX_HTTP_CUSTOMER_DOCUMENT_LIST(0) },
    /* an administrator's across customers, a Customer's its own */
    { NGX_HTTP_GET, "/api/documents",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_documents_all_sql,
      .params = {
          NGX_HTTP_CUSTOMER_PARAM(OWN),
          NGX_HTTP_CUSTOMER_ENUM("type", ngx_http_customer_document_types),
          NGX_HTTP_CUSTOMER_CHECKED("customerId",
                                    ngx_http_customer_check_uuid, 0, 0),
          NGX_HTTP_CUSTOMER_CHECKED("vehicleId",
                                    ngx_http_customer_check_uuid, 0, 0),
          NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      NGX_HTTP_CUSTOMER_DOCUMENT_LIST(0) },
    /* the upload with its customerId in the query or a header */
    { NGX_HTTP_POST, "/api/documents", ngx_http_customer_documents_upload,
      NGX_HTTP_CUSTOMER_SELF, 3, 0, NGX_HTTP_CUSTOMER_DOCUMENT_UPLOAD,
      .missing = &ngx_http_customer_no_customer },
    /* its 400 names "days" before the page */
    { NGX_HTTP_GET, "/api/documents/expiring-soon",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .stmt = &ngx_http_customer_documents_expiring_sql,
      .params = { NGX_HTTP_CUSTOMER_UINT("days", 1, 365, 30),
                  NGX_HTTP_CUSTOMER_PARAM(PAGE) },
      .args_first = 1, NGX_HTTP_CUSTOMER_DOCUMENT_LIST(1) },
    { NGX_HTTP_GET, "/api/documents/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_documents_get_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("documentId") },
      .message = "Document retrieved successfully",
      NGX_HTTP_CUSTOMER_DOCUMENT_ROW },
    { NGX_HTTP_DELETE, "/api/documents/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_documents_delete_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("documentId") },
      .message = "Document deleted successfully",
      NGX_HTTP_CUSTOMER_DELETED("documentId"),
      .missing = &ngx_http_customer_document_missing },
    /* a stale version, else a vehicle that is not its customer's */
    { NGX_HTTP_PATCH, "/api/documents/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_EDIT(ngx_http_customer_document_meta, "documentId"),
      .stmt = &ngx_http_customer_documents_edit_sql,
      .message = "Document updated successfully",
      NGX_HTTP_CUSTOMER_DOCUMENT_ROW,
      .refused = &ngx_http_customer_document_stale,
      .otherwise = &ngx_http_customer_document_vehicle,
      .because = NGX_HTTP_CUSTOMER_DOCUMENT_CUSTOMER },
    { NGX_HTTP_GET, "/api/documents/{}/content",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_documents_content_sql,
      .params = { NGX_HTTP_CUSTOMER_OWN_ID("documentId") },
      .done = ngx_http_customer_documents_send_content },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


static ngx_int_t
ngx_http_customer_documents_upload(ngx_http_customer_ctx_t *ctx)
{
    ngx_str_t                      meta[NGX_HTTP_CUSTOMER_DOCUMENT_NMETA + 1];
    ngx_str_t                      mime;
    ngx_uint_t                     i, n, invalid;
    ngx_http_request_t            *r;
    ngx_http_customer_pg_query_t  *q;

    r = ctx->request;
    invalid = 0;

    /* POST /api/documents has no customer in its path: it is metadata */

    n = NGX_HTTP_CUSTOMER_DOCUMENT_NMETA + (ctx->nparams == 0);

    for (i = 0; i < n; i++) {
        switch (ngx_http_customer_documents_meta(ctx, i, &meta[i])) {
        case NGX_OK:
        case NGX_DECLINED:
            break;
        case NGX_ERROR:
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        default:
            invalid = 1;
        }
    }

    if (meta[NGX_HTTP_CUSTOMER_DOCUMENT_FILENAME].data == NULL) {
        meta[NGX_HTTP_CUSTOMER_DOCUMENT_FILENAME] =
                                      meta[NGX_HTTP_CUSTOMER_DOCUMENT_TITLE];
    }

    /* the Content-Type as sent: printable ASCII, at most 255 */

    ngx_str_set(&mime, "application/octet-stream");

    if (r->headers_in.content_type) {
        mime = r->headers_in.content_type->value;

        for (i = 0; i < mime.len; i++) {
            if (mime.data[i] < 0x20 || mime.data[i] > 0x7e) {
                break;
            }
        }

        if (mime.len == 0 || mime.len > 255 || i < mime.len) {
            ngx_http_customer_add_error(ctx, (u_char *) "Content-Type", 12,
                                        "Must be 1 to 255 printable ASCII "
                                        "characters");
            invalid = 1;
        }
    }

    switch (ctx->nparams ? ngx_http_customer_id(ctx) : NGX_OK) {
    case NGX_OK:
        break;
    case NGX_ERROR:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    default:
        invalid = 1;
    }

    if (invalid) {
        return ngx_http_customer_invalid(ctx);
    }

    /* a NUL-terminated copy: the header's value is not */

    q = ngx_http_customer_query_create(ctx);
    mime.data = (u_char *) ngx_http_customer_cstr(r->pool, mime.data,
                                                  mime.len);
    if (q == NULL || mime.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q->values[0] = ctx->nparams
                   ? (char *) ctx->params[0].data
                   : (char *) meta[NGX_HTTP_CUSTOMER_DOCUMENT_OWNER].data;
    q->values[1] = ngx_http_customer_own_sub(ctx);
    q->values[2] = (char *) meta[NGX_HTTP_CUSTOMER_DOCUMENT_TYPE].data;
    q->values[3] = (char *) meta[NGX_HTTP_CUSTOMER_DOCUMENT_TITLE].data;
    q->values[4] = (char *) meta[NGX_HTTP_CUSTOMER_DOCUMENT_FILENAME].data;
    q->values[5] = (char *) meta[NGX_HTTP_CUSTOMER_DOCUMENT_VEHICLE].data;
    q->values[6] = (char *) mime.data;
    q->values[7] = (char *) meta[NGX_HTTP_CUSTOMER_DOCUMENT_EXPIRES].data;
    q->values[8] = (char *) ctx->raw.data;
    q->lengths[8] = (int) ctx->raw.len;
    q->values[9] = ctx->who.sub.len ? (char *) ctx->who.sub.data : NULL;

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_documents_upload_sql,
                                       ngx_http_customer_endpoint_done);
}


/*
 * The n-th upload parameter from the query or, when it is not there,
 * from its X-Document-* header (given once): as
 * ngx_http_customer_arg_field(), and a required one that is absent is
 * recorded as such.  Absent: value's data is NULL.
 */

static ngx_int_t
ngx_http_customer_documents_meta(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t n, ngx_str_t *value)
{
    ngx_int_t                   rc;
    const char                 *header;
    ngx_table_elt_t            *h;
    ngx_http_customer_field_t  *f;

    f = (n == NGX_HTTP_CUSTOMER_DOCUMENT_OWNER)
        ? &ngx_http_customer_document_owner
        : &ngx_http_customer_document_meta[n];
    header = ngx_http_customer_document_headers[n];

    rc = ngx_http_customer_arg_field(ctx, f, value);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    h = ngx_http_customer_header(ctx->request, header, ngx_strlen(header),
                                 0);

    if (h == NULL) {
        if (f->flags & NGX_HTTP_CUSTOMER_F_REQUIRED) {
            ngx_http_customer_add_error(ctx, (u_char *) f->name,
                                        ngx_strlen(f->name),
                                        "Field is required");
            return NGX_ABORT;
        }

        return NGX_DECLINED;
    }

    if (ngx_http_customer_header(ctx->request, header, ngx_strlen(header),
                                 1))
    {
        ngx_http_customer_add_error(ctx, (u_char *) header,
                                    ngx_strlen(header), "Given twice");
        return NGX_ABORT;
    }

    /* a NUL-terminated copy for libpq */

    value->data = (u_char *) ngx_http_customer_cstr(ctx->request->pool,
                                                    h->value.data,
                                                    h->value.len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = h->value.len;

    return ngx_http_customer_check_param(ctx, f, value);
}


/* the stored bytes with the stored type, as an attachment */

static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_documents_send_content)
{
    off_t                size;
    u_char              *data, *p;
    size_t               len, n;
    ngx_int_t            rc;
    ngx_str_t            mime, disposition;
    ngx_http_request_t  *r;

    static ngx_str_t     nosniff = ngx_string("nosniff");

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        return ngx_http_customer_db_error(ctx, q, res);
    }

    if (PQntuples(res) == 0) {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_NOT_FOUND,
                   ngx_http_customer_document_missing.message,
                   ngx_http_customer_document_missing.field,
                   ngx_http_customer_document_missing.detail);
    }

    r = ctx->request;

    if (ngx_http_customer_own_sub(ctx) != NULL
        && ngx_strcmp(PQgetvalue(res, 0, NGX_HTTP_CUSTOMER_CONTENT_TYPE),
                      "identity") == 0)
    {
        return ngx_http_customer_send_error(ctx, NGX_HTTP_FORBIDDEN,
                                            "Access denied", "documentId",
                                            "Identity documents are read "
                                            "back by administrators only");
    }

    size = ngx_atoof((u_char *) PQgetvalue(res, 0,
                                           NGX_HTTP_CUSTOMER_CONTENT_SIZE),
                     PQgetlength(res, 0, NGX_HTTP_CUSTOMER_CONTENT_SIZE));
    len = PQgetlength(res, 0, NGX_HTTP_CUSTOMER_CONTENT_BYTES);

    if (size < (off_t) len || (size > (off_t) len
                               && len != NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "customer: document of %O bytes came back with a "
                      "first chunk of %uz", size, len);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mime.len = PQgetlength(res, 0, NGX_HTTP_CUSTOMER_CONTENT_MIME);
    mime.data = (u_char *) ngx_http_customer_value(r->pool, res, 0,
                                          NGX_HTTP_CUSTOMER_CONTENT_MIME);
    if (mime.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = PQgetlength(res, 0, NGX_HTTP_CUSTOMER_CONTENT_SHA256);
    p = ngx_pnalloc(r->pool, n + 2);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->etag.data = p;
    ctx->etag.len = ngx_sprintf(p, "\"%*s\"", n,
                        PQgetvalue(res, 0, NGX_HTTP_CUSTOMER_CONTENT_SHA256))
                    - p;

    disposition.data = ngx_http_customer_documents_disposition(r->pool,
            (u_char *) PQgetvalue(res, 0, NGX_HTTP_CUSTOMER_CONTENT_FILENAME),
            PQgetlength(res, 0, NGX_HTTP_CUSTOMER_CONTENT_FILENAME),
            &disposition.len);

    if (disposition.data == NULL
        || ngx_http_customer_push_header(&r->headers_out.headers,
                                         "Content-Disposition", &disposition)
           == NULL
        || ngx_http_customer_push_header(&r->headers_out.headers,
                                         "X-Content-Type-Options", &nosniff)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (size > (off_t) len) {
        rc = ngx_http_customer_send_header(ctx, NGX_HTTP_OK, &mime, size);

        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            return rc;
        }

        return ngx_http_customer_download_start(ctx, res, size);
    }

    /* the whole document: copied out of the result, cleared on return */

    data = ngx_pnalloc(r->pool, len ? len : 1);
    if (data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(data, PQgetvalue(res, 0, NGX_HTTP_CUSTOMER_CONTENT_BYTES),
               len);

    return ngx_http_customer_send_bytes(ctx, NGX_HTTP_OK, &mime, data, len);
}


/* headers are out: the first chunk goes after them, then the others */

static ngx_int_t
ngx_http_customer_download_start(ngx_http_customer_ctx_t *ctx,
    PGresult *res, off_t size)
{
    ngx_chain_t                   *cl;
    ngx_http_request_t            *r;
    ngx_http_customer_download_t  *dl;

    r = ctx->request;

    dl = ngx_pcalloc(r->pool, sizeof(ngx_http_customer_download_t));
    if (dl == NULL) {
        return NGX_ERROR;
    }

    dl->size = size;
    ctx->data = dl;

    dl->query = ngx_http_customer_query_create(ctx);
    if (dl->query == NULL) {
        return NGX_ERROR;
    }

    cl = ngx_http_customer_download_buf(ctx);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf->last = ngx_cpymem(cl->buf->pos,
                               PQgetvalue(res, 0,
                                          NGX_HTTP_CUSTOMER_CONTENT_BYTES),
                               NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK);
    dl->offset = NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK;

    r->write_event_handler = ngx_http_customer_download_writer;

    return ngx_http_customer_download_out(ctx, cl);
}


/* a free buffer: one sent out, or a new one (the callers keep to two) */

static ngx_chain_t *
ngx_http_customer_download_buf(ngx_http_customer_ctx_t *ctx)
{
    ngx_chain_t                   *cl;
    ngx_http_request_t            *r;
    ngx_http_customer_download_t  *dl;

    dl = ctx->data;

    if (dl->free) {
        cl = dl->free;
        dl->free = cl->next;
        cl->next = NULL;
        return cl;
    }

    r = ctx->request;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NULL;
    }

    cl->buf = ngx_create_temp_buf(r->pool, NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK);
    if (cl->buf == NULL) {
        return NULL;
    }

    cl->buf->tag = (ngx_buf_tag_t) &ngx_http_customer_module;
    cl->next = NULL;
    dl->nbufs++;

    return cl;
}


/*
 * Asks for the next chunk when one is left to ask for, none is being
 * asked for and a buffer is free; NGX_DONE while the download goes on.
 */

static ngx_int_t
ngx_http_customer_download_next(ngx_http_customer_ctx_t *ctx)
{
    ngx_http_customer_pg_query_t  *q;
    ngx_http_customer_download_t  *dl;

    dl = ctx->data;

    if (dl->next || dl->offset >= dl->size) {
        return NGX_DONE;
    }

    if (dl->free == NULL && dl->nbufs == 2) {
        /* both are on their way to the client: the writer calls again */
        return NGX_DONE;
    }

    dl->next = ngx_http_customer_download_buf(ctx);
    if (dl->next == NULL) {
        return NGX_ERROR;
    }

    *ngx_sprintf((u_char *) dl->from, "%O", dl->offset + 1) = '\0';

    q = dl->query;
    q->values[0] = (char *) ctx->params[0].data;
    q->values[1] = dl->from;

    return ngx_http_customer_query_run(ctx, q,
                                       &ngx_http_customer_documents_chunk_sql,
                                       ngx_http_customer_download_chunk);
}


static NGX_HTTP_CUSTOMER_DONE(ngx_http_customer_download_chunk)
{
    size_t                         len, want;
    ngx_chain_t                   *cl;
    ngx_http_customer_download_t  *dl;

    dl = ctx->data;
    cl = dl->next;
    dl->next = NULL;

    want = ngx_min(dl->size - dl->offset, NGX_HTTP_CUSTOMER_DOCUMENT_CHUNK);

    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK
        || PQntuples(res) != 1
        || (len = PQgetlength(res, 0, 0)) != want)
    {
        /* the headers are out: all that is left is to end short */
        ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                      "customer: document download ended at byte %O of "
                      "%O: %s", dl->offset, dl->size,
                      res == NULL ? "no answer from PostgreSQL"
                      : PQresultStatus(res) != PGRES_TUPLES_OK
                        ? PQresultErrorMessage(res)
                        : "the document is gone or changed");
        return NGX_ERROR;
    }

    cl->buf->last = ngx_cpymem(cl->buf->pos, PQgetvalue(res, 0, 0), len);
    dl->offset += len;

    if (dl->offset == dl->size) {
        cl->buf->last_buf = 1;
        cl->buf->last_in_chain = 1;

        /* the rest is nginx's: ngx_http_writer sends what is left */
        ctx->request->write_event_handler = ngx_http_request_empty_handler;

        return ngx_http_output_filter(ctx->request, cl);
    }

    return ngx_http_customer_download_out(ctx, cl);
}


/*
 * Hands in (or, with NULL, what is still buffered) to the output filters,
 * takes back the buffers that went out and waits for the socket, within
 * send_timeout, when some did not; then asks for the next chunk, as
 * ngx_http_customer_download_next() does.
 */

static ngx_int_t
ngx_http_customer_download_out(ngx_http_customer_ctx_t *ctx,
    ngx_chain_t *in)
{
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_customer_download_t  *dl;

    r = ctx->request;
    c = r->connection;

    if (ngx_http_output_filter(r, in) == NGX_ERROR) {
        return NGX_ERROR;
    }

    dl = ctx->data;

    ngx_chain_update_chains(r->pool, &dl->free, &dl->busy, &in,
                            (ngx_buf_tag_t) &ngx_http_customer_module);

    if (!r->buffered && !c->buffered) {
        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

    } else {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (!c->write->delayed) {
            ngx_add_timer(c->write, clcf->send_timeout);
        }

        if (ngx_handle_write_event(c->write, clcf->send_lowat) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_customer_download_next(ctx);
}


static void
ngx_http_customer_download_writer(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_connection_t         *c;
    ngx_http_customer_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_customer_module);

    if (c->write->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    rc = ngx_http_customer_download_out(ctx, NULL);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/*
 * attachment; filename="<ASCII>"; filename*=UTF-8''<percent-encoded>
 * (RFC 6266): the quoted name with each non-ASCII character, quote,
 * backslash or control as '_', the encoded one exact.
 */

static u_char *
ngx_http_customer_documents_disposition(ngx_pool_t *pool, u_char *name,
    size_t len, size_t *size)
{
    u_char  *buf, *p, c;
    size_t   i;

    static u_char  hex[] = "0123456789ABCDEF";

    buf = ngx_pnalloc(pool, sizeof("attachment; filename=\"\"; "
                                   "filename*=UTF-8''") + 4 * len);
    if (buf == NULL) {
        return NULL;
    }

    p = ngx_cpymem(buf, "attachment; filename=\"",
                   sizeof("attachment; filename=\"") - 1);

    for (i = 0; i < len; i++) {
        c = name[i];

        if (c >= 0x80 && c < 0xc0) {
            /* a UTF-8 continuation byte: one '_' per character */
            continue;
        }

        *p++ = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '_' : c;
    }

    p = ngx_cpymem(p, "\"; filename*=UTF-8''",
                   sizeof("\"; filename*=UTF-8''") - 1);

    for (i = 0; i < len; i++) {
        c = name[i];

        /* RFC 5987 attr-char */

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || (c && ngx_strchr("!#$&+-.^_`|~", c)))
        {
            *p++ = c;
            continue;
        }

        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    *size = p - buf;

    return buf;
}


/* one line that names a file, not a path */

static NGX_HTTP_CUSTOMER_CHECK(filename)
{
    ngx_int_t  rc;

    rc = ngx_http_customer_check_line(ctx, path, v, f);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_strlchr(v->str.data, v->str.data + v->str.len, '/')
        || ngx_strlchr(v->str.data, v->str.data + v->str.len, '\\'))
    {
        return ngx_http_customer_fail(ctx, path,
                                      "Must be a file name without '/' or "
                                      "'\\'");
    }

    return NGX_OK;
}

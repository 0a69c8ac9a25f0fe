
/*
 * Copyright (C) the customer platform authors
 */


/*
 * Query arguments and the request headers the module reads itself.  The
 * input is the query string (r->args, as nginx hands it over: still
 * percent-encoded), then, one a line, "Name: value" headers.  It goes
 * through the argument helpers of handler.c and validate.c (page and
 * limit, enums, UUIDs, dates, timestamps, lines with their UTF-8 and
 * NUL checks), the customer list's filters and cursor
 * (ngx_http_customer_list_extra() in customers.c), a document upload's
 * metadata from arguments or X-Document-* headers
 * (ngx_http_customer_documents_meta() in documents.c) and If-Match.
 * Every value an argument helper accepts must be NUL-terminated at its
 * length, as libpq will read it.
 */


#include "harness.h"

#include "ngx_http_customer_validate.h"

#include "ngx_http_customer_customers.c"
#include "ngx_http_customer_documents.c"


static void ngx_http_customer_fuzz_headers(ngx_http_request_t *r, u_char *p,
    u_char *last);
static void ngx_http_customer_fuzz_value(ngx_int_t rc, ngx_str_t *v);


NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        *p, *last, *nl;
    ngx_int_t                      rc;
    ngx_str_t                      v;
    ngx_uint_t                     i, page, limit;
    const char                    *version;
    ngx_http_request_t            *r;
    ngx_http_customer_ctx_t       *ctx;
    ngx_http_customer_list_t      *l;
    ngx_http_customer_pg_query_t  *q;

    ctx = ngx_http_customer_fuzz_ctx();
    r = ctx->request;

    p = ngx_http_customer_fuzz_copy(r->pool, data, size, 0);
    last = p + size;

    nl = ngx_strlchr(p, last, '\n');

    r->args.data = p;
    r->args.len = (nl ? nl : last) - p;

    ngx_http_customer_fuzz_headers(r, nl ? nl + 1 : last, last);

    /* handler.c */

    rc = ngx_http_customer_page_args(ctx, &page, &limit);

    if (rc == NGX_OK
        && (page < 1 || page > 1000000 || limit < 1 || limit > 100))
    {
        ngx_http_customer_fuzz_fail("page or limit out of range");
    }

    ngx_http_customer_fuzz_value(ngx_http_customer_arg_str(ctx, "q", &v),
                                 &v);

    (void) ngx_http_customer_arg_uint(ctx, "days", 30, 1, 365, &page);

    /* validate.c */

    rc = ngx_http_customer_arg_enum(ctx, "status",
                                    ngx_http_customer_statuses, &v);
    ngx_http_customer_fuzz_value(rc, &v);

    rc = ngx_http_customer_arg_check(ctx, "customerId",
                                     ngx_http_customer_check_uuid, 0, 0, &v);
    ngx_http_customer_fuzz_value(rc, &v);

    rc = ngx_http_customer_arg_check(ctx, "from",
                                     ngx_http_customer_check_date, 0, 0, &v);
    ngx_http_customer_fuzz_value(rc, &v);

    rc = ngx_http_customer_arg_check(ctx, "since",
                                     ngx_http_customer_check_timestamp, 0, 0,
                                     &v);
    ngx_http_customer_fuzz_value(rc, &v);

    rc = ngx_http_customer_arg_check(ctx, "type",
                                     ngx_http_customer_check_line, 1, 100,
                                     &v);
    ngx_http_customer_fuzz_value(rc, &v);

    rc = ngx_http_customer_arg_check(ctx, "vin", ngx_http_customer_check_vin,
                                     0, 0, &v);
    ngx_http_customer_fuzz_value(rc, &v);

    /* customers.c: GET /api/customers, newest first */

    l = ngx_pcalloc(r->pool, sizeof(ngx_http_customer_list_t));
    q = ngx_http_customer_query_create(ctx);
    if (l == NULL || q == NULL) {
        ngx_http_customer_fuzz_fail("out of memory");
    }

    l->page = 1;
    l->limit = 20;
    l->dir = 1;

    if (ngx_http_customer_list_extra(ctx, q, l) == NGX_ERROR) {
        ngx_http_customer_fuzz_fail("list_extra() failed");
    }

    for (i = 0; i < NGX_HTTP_CUSTOMER_PG_MAX_PARAMS; i++) {
        if (q->values[i]) {
            (void) ngx_strlen(q->values[i]);
        }
    }

    /* documents.c: POST .../documents */

    for (i = 0; i < NGX_HTTP_CUSTOMER_DOCUMENT_NMETA; i++) {
        rc = ngx_http_customer_documents_meta(ctx, i, &v);

        if (rc == NGX_OK) {
            ngx_http_customer_fuzz_value(rc, &v);
        }
    }

    /* handler.c: If-Match on PUT and PATCH */

    if (ngx_http_customer_if_match(ctx, &version) != NGX_OK) {
        ngx_http_customer_fuzz_fail("if_match() failed");
    }

    if (version) {
        (void) ngx_strlen(version);
    }

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}


/* "Name: value" lines into r->headers_in, as nginx would have them */

static void
ngx_http_customer_fuzz_headers(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    u_char           *eol, *colon;
    ngx_table_elt_t  *h;

    if (ngx_list_init(&r->headers_in.headers, r->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        ngx_http_customer_fuzz_fail("out of memory");
    }

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        colon = ngx_strlchr(p, eol, ':');

        if (colon != NULL && colon > p) {
            h = ngx_list_push(&r->headers_in.headers);
            if (h == NULL) {
                ngx_http_customer_fuzz_fail("out of memory");
            }

            h->key.data = p;
            h->key.len = colon - p;

            for (p = colon + 1; p < eol && *p == ' '; p++) {
                /* void */
            }

            h->value.data = p;
            h->value.len = eol - p;
            h->lowcase_key = h->key.data;
            h->hash = 1;

            if (r->headers_in.if_match == NULL
                && h->key.len == sizeof("If-Match") - 1
                && ngx_strncasecmp(h->key.data, (u_char *) "If-Match",
                                   h->key.len) == 0)
            {
                r->headers_in.if_match = h;
            }
        }

        p = eol + 1;
    }
}


/* an accepted value: NUL-terminated where its length says */

static void
ngx_http_customer_fuzz_value(ngx_int_t rc, ngx_str_t *v)
{
    if (rc == NGX_OK && (v->data == NULL || v->data[v->len] != '\0')) {
        ngx_http_customer_fuzz_fail("a value is not NUL-terminated");
    }
}

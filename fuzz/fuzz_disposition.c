
/*
 * Copyright (C) the customer platform authors
 */


/*
 * A document's Content-Disposition, built from its stored file name by
 * ngx_http_customer_documents_disposition() (documents.c), on any bytes;
 * and the check a file name passes on upload (check_filename, through
 * the "filename" argument of ngx_http_customer_check_param()).  The
 * header value must be printable ASCII (nothing that could end the
 * header), its quoted name free of '"' and '\', and its filename*= part
 * must percent-decode to the name exactly.
 */


#include "harness.h"

#include "ngx_http_customer_validate.h"

#include "ngx_http_customer_documents.c"


#define NGX_HTTP_CUSTOMER_FUZZ_PREFIX  "attachment; filename=\""
#define NGX_HTTP_CUSTOMER_FUZZ_MIDDLE  "\"; filename*=UTF-8''"


static void ngx_http_customer_fuzz_check(u_char *name, size_t len,
    u_char *h, size_t size);


NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                   *name, *h;
    size_t                    len;
    ngx_str_t                 v;
    ngx_pool_t               *pool;
    ngx_http_customer_ctx_t  *ctx;

    ctx = ngx_http_customer_fuzz_ctx();
    pool = ctx->request->pool;

    name = ngx_http_customer_fuzz_copy(pool, data, size, 0);

    h = ngx_http_customer_documents_disposition(pool, name, size, &len);
    if (h == NULL) {
        ngx_http_customer_fuzz_fail("out of memory");
    }

    ngx_http_customer_fuzz_check(name, size, h, len);

    /* the upload's check of a name, NUL-terminated as an argument is */

    v.data = ngx_http_customer_fuzz_copy(pool, data, size, 1);
    v.len = size;

    (void) ngx_http_customer_check_param(ctx,
              &ngx_http_customer_document_meta[
                                        NGX_HTTP_CUSTOMER_DOCUMENT_FILENAME],
              &v);

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}


static void
ngx_http_customer_fuzz_check(u_char *name, size_t len, u_char *h,
    size_t size)
{
    u_char  *p, *last, *mid, c;
    size_t   i;

    last = h + size;

    for (p = h; p < last; p++) {
        if (*p < 0x20 || *p > 0x7e) {
            ngx_http_customer_fuzz_fail("a byte a header must not have");
        }
    }

    if (size < sizeof(NGX_HTTP_CUSTOMER_FUZZ_PREFIX) - 1
        || ngx_memcmp(h, NGX_HTTP_CUSTOMER_FUZZ_PREFIX,
                      sizeof(NGX_HTTP_CUSTOMER_FUZZ_PREFIX) - 1)
           != 0)
    {
        ngx_http_customer_fuzz_fail("no attachment; filename=\"");
    }

    p = h + sizeof(NGX_HTTP_CUSTOMER_FUZZ_PREFIX) - 1;

    /* the quoted name ends at the first '"' */

    mid = ngx_strlchr(p, last, '"');

    if (mid == NULL
        || (size_t) (last - mid) < sizeof(NGX_HTTP_CUSTOMER_FUZZ_MIDDLE) - 1
        || ngx_memcmp(mid, NGX_HTTP_CUSTOMER_FUZZ_MIDDLE,
                      sizeof(NGX_HTTP_CUSTOMER_FUZZ_MIDDLE) - 1)
           != 0
        || ngx_strlchr(p, mid, '\\') != NULL)
    {
        ngx_http_customer_fuzz_fail("the quoted name is not closed right");
    }

    /* filename*= decodes to the name */

    p = mid + sizeof(NGX_HTTP_CUSTOMER_FUZZ_MIDDLE) - 1;

    for (i = 0; p < last; i++) {
        if (*p == '%') {
            if (last - p < 3 || !isxdigit(p[1]) || !isxdigit(p[2])) {
                ngx_http_customer_fuzz_fail("a broken percent-escape");
            }

            c = (u_char) ((ngx_hextoi(p + 1, 2)) & 0xff);
            p += 3;

        } else {
            c = *p++;
        }

        if (i >= len || c != name[i]) {
            ngx_http_customer_fuzz_fail("filename*= is not the name");
        }
    }

    if (i != len) {
        ngx_http_customer_fuzz_fail("filename*= is short of the name");
    }
}


/*
 * Copyright (C) the customer platform authors
 */


/*
 * The keyset cursor of GET /api/customers, decoded by
 * ngx_http_customer_list_extra() in customers.c.  The first byte picks
 * the list's sort (bits 0-2, 0-4) and direction (bit 3), and how the
 * rest arrives (bit 7): as the cursor's plain text, which the target
 * encodes in base64url as the module's own nextCursor is, or as the raw
 * value of the cursor argument.  A cursor accepted must leave the sort
 * value ($12, or NULL for "in the NULLs") and the UUID ($13)
 * NUL-terminated, and the page offset ($4) at zero.
 */


#include "harness.h"

#include "ngx_http_customer_validate.h"

#include "ngx_http_customer_customers.c"


NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      plain, enc;
    ngx_http_request_t            *r;
    ngx_http_customer_ctx_t       *ctx;
    ngx_http_customer_list_t      *l;
    ngx_http_customer_pg_query_t  *q;

    if (size == 0) {
        return 0;
    }

    ctx = ngx_http_customer_fuzz_ctx();
    r = ctx->request;

    l = ngx_pcalloc(r->pool, sizeof(ngx_http_customer_list_t));
    q = ngx_http_customer_query_create(ctx);
    if (l == NULL || q == NULL) {
        ngx_http_customer_fuzz_fail("out of memory");
    }

    l->sort = (data[0] & 7) % NGX_HTTP_CUSTOMER_NSORTS;
    l->dir = (data[0] >> 3) & 1;
    l->page = 1;
    l->limit = 20;

    plain.data = ngx_http_customer_fuzz_copy(r->pool, data + 1, size - 1, 0);
    plain.len = size - 1;

    if (data[0] & 0x80) {
        enc = plain;

    } else {
        enc.data = ngx_pnalloc(r->pool, ngx_base64_encoded_length(plain.len));
        if (enc.data == NULL) {
            ngx_http_customer_fuzz_fail("out of memory");
        }

        ngx_encode_base64url(&enc, &plain);
    }

    r->args.len = sizeof("cursor=") - 1 + enc.len;
    r->args.data = ngx_pnalloc(r->pool, r->args.len);
    if (r->args.data == NULL) {
        ngx_http_customer_fuzz_fail("out of memory");
    }

    p = ngx_cpymem(r->args.data, "cursor=", sizeof("cursor=") - 1);
    ngx_memcpy(p, enc.data, enc.len);

    rc = ngx_http_customer_list_extra(ctx, q, l);

    if (rc == NGX_ERROR) {
        ngx_http_customer_fuzz_fail("list_extra() failed");
    }

    if (l->cursor) {
        if (rc != NGX_AGAIN || q->values[12] == NULL
            || ngx_strlen(q->values[12]) != 36
            || q->values[3] == NULL || q->values[3][0] != '0')
        {
            ngx_http_customer_fuzz_fail("an accepted cursor's parameters");
        }

        if (q->values[11]) {
            (void) ngx_strlen(q->values[11]);
        }
    }

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}

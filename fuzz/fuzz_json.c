
/*
 * Copyright (C) the customer platform authors
 */


/*
 * The JSON parser as the body handler and the peer calls use it: the
 * strict UTF-8 check, then ngx_http_customer_json_parse() on a
 * NUL-terminated copy.  A tree it accepts is generated again with
 * ngx_http_customer_json_copy() (as the relations routes re-emit a
 * service's items) and parsed once more: the second tree must equal the
 * first.
 */


#include "harness.h"

#include <yajl/yajl_gen.h>


static void ngx_http_customer_fuzz_same(ngx_http_customer_json_t *a,
    ngx_http_customer_json_t *b);


NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                   *p, *out;
    size_t                    len;
    yajl_gen                  g;
    ngx_int_t                 rc;
    ngx_str_t                 err;
    ngx_pool_t               *pool;
    ngx_http_customer_ctx_t  *ctx;
    ngx_http_customer_json_t *root, *again;

    ctx = ngx_http_customer_fuzz_ctx();
    pool = ctx->request->pool;

    p = ngx_http_customer_fuzz_copy(pool, data, size, 1);

    if (ngx_http_customer_utf8(p, size) != NGX_OK) {
        goto done;
    }

    root = NULL;
    rc = ngx_http_customer_json_parse(pool, p, size, &root, &err);

    if (rc == NGX_DECLINED) {
        if (err.len == 0) {
            ngx_http_customer_fuzz_fail("a refusal without a message");
        }

        /* the message goes into the 400's errors */
        ngx_http_customer_fuzz_sink += ngx_hash_key(err.data, err.len);

        goto done;
    }

    if (rc != NGX_OK || root == NULL) {
        goto done;
    }

    (void) ngx_http_customer_json_member(root, "data");
    (void) ngx_http_customer_json_member(root, "");

    g = ngx_http_customer_json_gen(pool);
    if (g == NULL) {
        goto done;
    }

    if (ngx_http_customer_json_copy(g, root) != NGX_OK
        || ngx_http_customer_json_result(g, &out, &len) != NGX_OK)
    {
        ngx_http_customer_fuzz_fail("a parsed tree was not generated");
    }

    out = ngx_http_customer_fuzz_copy(pool, out, len, 1);
    yajl_gen_free(g);

    again = NULL;

    if (ngx_http_customer_json_parse(pool, out, len, &again, &err) != NGX_OK
        || again == NULL)
    {
        ngx_http_customer_fuzz_fail("generated JSON did not parse again");
    }

    ngx_http_customer_fuzz_same(root, again);

done:

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}


static void
ngx_http_customer_fuzz_same(ngx_http_customer_json_t *a,
    ngx_http_customer_json_t *b)
{
    if (a->type != b->type || a->n != b->n || a->key.len != b->key.len
        || (a->key.len
            && ngx_memcmp(a->key.data, b->key.data, a->key.len) != 0))
    {
        ngx_http_customer_fuzz_fail("the trees differ");
    }

    switch (a->type) {

    case NGX_HTTP_CUSTOMER_JSON_BOOL:
        if (a->boolean != b->boolean) {
            ngx_http_customer_fuzz_fail("the trees differ in a boolean");
        }

        return;

    case NGX_HTTP_CUSTOMER_JSON_NUMBER:
    case NGX_HTTP_CUSTOMER_JSON_STRING:
        if (a->str.len != b->str.len
            || (a->str.len
                && ngx_memcmp(a->str.data, b->str.data, a->str.len) != 0))
        {
            ngx_http_customer_fuzz_fail("the trees differ in a value");
        }

        return;

    case NGX_HTTP_CUSTOMER_JSON_ARRAY:
    case NGX_HTTP_CUSTOMER_JSON_OBJECT:
        for (a = a->child, b = b->child; a && b; a = a->next, b = b->next) {
            ngx_http_customer_fuzz_same(a, b);
        }

        if (a || b) {
            ngx_http_customer_fuzz_fail("the trees differ in length");
        }

        return;

    default:
        return;
    }
}

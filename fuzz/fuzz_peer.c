
/*
 * Copyright (C) the customer platform authors
 */


/*
 * What the Order and Complaint services answer: the body of a 2xx answer
 * goes through ngx_http_customer_peer_parse() (strict UTF-8, the JSON
 * parser) and ngx_http_customer_peer_list() for "orders" and
 * "complaints" in each of the shapes it knows, then through what the
 * callers do with a list: the items generated again into our answer
 * (ngx_http_customer_json_copy(), as the relations routes do) and the
 * pagination's numbers read (currentPage, totalPages, totalItems, as
 * the history and the DELETE guard do).
 */


#include "harness.h"

#include "ngx_http_customer_peer.h"

#include <yajl/yajl_gen.h>


static const char  *ngx_http_customer_fuzz_lists[] = { "orders",
                                                        "complaints" };

static const char  *ngx_http_customer_fuzz_counts[] = { "currentPage",
                                                        "totalPages",
                                                        "totalItems" };


NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *out;
    size_t                     len;
    yajl_gen                   g;
    ngx_str_t                  body;
    ngx_uint_t                 i, n;
    ngx_http_customer_ctx_t   *ctx;
    ngx_http_customer_json_t  *items, *pg, *e, *v;

    ctx = ngx_http_customer_fuzz_ctx();

    /* the subrequest's in-memory buffer: exactly the answer's bytes */

    body.len = size;
    body.data = ngx_http_customer_fuzz_copy(ctx->request->pool, data, size,
                                            0);

    ctx->peer.rc = NGX_OK;
    ctx->peer.status = NGX_HTTP_OK;
    ctx->peer.body = body;

    if (ngx_http_customer_peer_parse(ctx->request->pool, &body,
                                     &ctx->peer.json)
        != NGX_OK)
    {
        ngx_http_customer_fuzz_fail("peer_parse() failed");
    }

    for (i = 0; i < 2; i++) {
        if (ngx_http_customer_peer_list(ctx, ngx_http_customer_fuzz_lists[i],
                                        &items, &pg)
            != NGX_OK)
        {
            continue;
        }

        if (items == NULL || items->type != NGX_HTTP_CUSTOMER_JSON_ARRAY) {
            ngx_http_customer_fuzz_fail("peer_list() gave no array");
        }

        g = ngx_http_customer_json_gen(ctx->request->pool);
        if (g == NULL) {
            ngx_http_customer_fuzz_fail("out of memory");
        }

        yajl_gen_array_open(g);

        for (e = items->child, n = 0; e; e = e->next, n++) {
            ngx_http_customer_json_copy(g, e);
        }

        yajl_gen_array_close(g);

        if (n != items->n
            || ngx_http_customer_json_result(g, &out, &len) != NGX_OK)
        {
            ngx_http_customer_fuzz_fail("the items were not generated");
        }

        yajl_gen_free(g);

        for (n = 0; n < 3; n++) {
            v = ngx_http_customer_json_member(pg,
                                              ngx_http_customer_fuzz_counts[n]);

            if (v && v->type == NGX_HTTP_CUSTOMER_JSON_NUMBER) {
                (void) ngx_atoi(v->str.data, v->str.len);
            }
        }
    }

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}

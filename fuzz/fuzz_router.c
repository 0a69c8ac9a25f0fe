
/*
 * Copyright (C) the customer platform authors
 */


/*
 * The router: the first byte picks the method, the rest is the decoded
 * path nginx hands the module (r->uri).  A route found has its "{}"
 * parameters checked as the handlers do (ngx_http_customer_uuid_param());
 * a path found under other methods only gets the Allow header built.
 * Every parameter must lie inside the path, be non-empty and hold no '/'.
 */


#include "harness.h"

#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_router.h"


static ngx_uint_t  ngx_http_customer_fuzz_methods[] = {
    NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_POST, NGX_HTTP_PUT,
    NGX_HTTP_PATCH, NGX_HTTP_DELETE, NGX_HTTP_OPTIONS, NGX_HTTP_TRACE
};


NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_uint_t                  i, allowed;
    ngx_str_t                  *s, value;
    ngx_http_request_t         *r;
    ngx_http_customer_ctx_t    *ctx;
    ngx_http_customer_route_t  *rt;

    if (size == 0) {
        return 0;
    }

    ctx = ngx_http_customer_fuzz_ctx();
    r = ctx->request;

    r->method = ngx_http_customer_fuzz_methods[data[0] % 8];
    r->uri.len = size - 1;
    r->uri.data = ngx_http_customer_fuzz_copy(r->pool, data + 1, size - 1,
                                              0);

    rt = ngx_http_customer_route(r, ctx, &allowed);

    if (rt == NULL) {
        if (allowed
            && (ngx_http_customer_allow_header(r, allowed, &value)
                != NGX_OK
                || value.len == 0))
        {
            ngx_http_customer_fuzz_fail("no Allow header");
        }

        goto done;
    }

    if (!(rt->methods
          & (r->method == NGX_HTTP_HEAD ? NGX_HTTP_GET : r->method)))
    {
        ngx_http_customer_fuzz_fail("a route for another method");
    }

    if (ctx->nparams > NGX_HTTP_CUSTOMER_MAX_PARAMS) {
        ngx_http_customer_fuzz_fail("too many parameters");
    }

    for (i = 0; i < ctx->nparams; i++) {
        s = &ctx->params[i];

        if (s->len == 0 || s->data < r->uri.data
            || s->data + s->len > r->uri.data + r->uri.len
            || ngx_strlchr(s->data, s->data + s->len, '/') != NULL)
        {
            ngx_http_customer_fuzz_fail("a parameter outside its segment");
        }
    }

    for (i = 0; i < ctx->nparams; i++) {
        if (ngx_http_customer_uuid_param(ctx, i, "id") == NGX_ERROR) {
            ngx_http_customer_fuzz_fail("uuid_param() failed");
        }
    }

done:

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}


/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "harness.h"


#ifndef NGX_HTTP_CUSTOMER_FUZZ_DIR
#define NGX_HTTP_CUSTOMER_FUZZ_DIR  "fuzz"
#endif


static ngx_open_file_t  ngx_http_customer_fuzz_stderr;
static ngx_log_t        ngx_http_customer_fuzz_log;
static ngx_cycle_t      ngx_http_customer_fuzz_cycle;

/* bytes read only to be read: a global, so the reads stay */
ngx_uint_t              ngx_http_customer_fuzz_sink;


void
ngx_http_customer_fuzz_init(void)
{
    ngx_uint_t  n;

    if (ngx_cycle != NULL) {
        return;
    }

    /* what ngx_os_init() would find, without its setproctitle() */

    ngx_pagesize = getpagesize();
    ngx_cacheline_size = NGX_CPU_CACHE_LINE;

    for (n = ngx_pagesize; n >>= 1; ngx_pagesize_shift++) {
        /* void */
    }

    if (ngx_strerror_init() != NGX_OK) {
        ngx_http_customer_fuzz_fail("ngx_strerror_init() failed");
    }

    ngx_time_init();

    /* the targets' inputs are not worth a line each: only [crit] and up */

    ngx_http_customer_fuzz_stderr.fd = ngx_stderr;
    ngx_http_customer_fuzz_log.file = &ngx_http_customer_fuzz_stderr;
    ngx_http_customer_fuzz_log.log_level = NGX_LOG_CRIT;

    ngx_http_customer_fuzz_cycle.log = &ngx_http_customer_fuzz_log;
    ngx_http_customer_fuzz_cycle.pool = ngx_create_pool(NGX_CYCLE_POOL_SIZE,
                                                 &ngx_http_customer_fuzz_log);
    if (ngx_http_customer_fuzz_cycle.pool == NULL) {
        ngx_http_customer_fuzz_fail("no cycle pool");
    }

    ngx_cycle = &ngx_http_customer_fuzz_cycle;
}


ngx_http_customer_ctx_t *
ngx_http_customer_fuzz_ctx(void)
{
    ngx_pool_t               *pool;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_customer_ctx_t  *ctx;

    pool = ngx_create_pool(1024, &ngx_http_customer_fuzz_log);
    if (pool == NULL) {
        ngx_http_customer_fuzz_fail("no pool");
    }

    c = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    ctx = ngx_pcalloc(pool, sizeof(ngx_http_customer_ctx_t));

    if (c == NULL || r == NULL || ctx == NULL
        || ngx_list_init(&r->headers_out.headers, pool, 4,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        ngx_http_customer_fuzz_fail("out of memory");
    }

    c->log = &ngx_http_customer_fuzz_log;
    c->pool = pool;
    c->fd = (ngx_socket_t) -1;

    r->connection = c;
    r->pool = pool;
    r->main = r;
    r->method = NGX_HTTP_GET;

    ctx->request = r;

    return ctx;
}


/*
 * The errors a 400 would list are read before the pool goes, as
 * ngx_http_customer_send_errors() would: a field or message left
 * pointing at a stack buffer or freed memory shows up here.
 */

void
ngx_http_customer_fuzz_done(ngx_http_customer_ctx_t *ctx)
{
    ngx_uint_t                  i;
    ngx_http_customer_error_t  *e;

    if (ctx->errors) {
        e = ctx->errors->elts;

        for (i = 0; i < ctx->errors->nelts; i++) {
            ngx_http_customer_fuzz_sink += ngx_hash_key(e[i].field.data,
                                                        e[i].field.len);

            if (e[i].message.len == 0
                || ngx_strlen(e[i].message.data) != e[i].message.len)
            {
                ngx_http_customer_fuzz_fail("an error without a message");
            }
        }
    }

    ngx_destroy_pool(ctx->request->pool);
}


u_char *
ngx_http_customer_fuzz_copy(ngx_pool_t *pool, const uint8_t *data,
    size_t len, ngx_uint_t nul)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len + (nul ? 1 : 0));
    if (p == NULL) {
        ngx_http_customer_fuzz_fail("out of memory");
    }

    if (len) {
        ngx_memcpy(p, data, len);
    }

    if (nul) {
        p[len] = '\0';
    }

    return p;
}


ngx_str_t
ngx_http_customer_fuzz_file(const char *name)
{
    FILE       *f;
    long        len;
    ngx_str_t   s;
    char        path[1024];

    ngx_snprintf((u_char *) path, sizeof(path) - 1, "%s/%s%Z",
                 NGX_HTTP_CUSTOMER_FUZZ_DIR, name);

    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "fuzz: cannot read %s\n", path);
        exit(2);
    }

    /* the cycle pool lives as long as the process */

    s.len = len;
    s.data = ngx_pnalloc(ngx_http_customer_fuzz_cycle.pool, len + 1);

    if (s.data == NULL || fread(s.data, 1, len, f) != (size_t) len) {
        fprintf(stderr, "fuzz: cannot read %s\n", path);
        exit(2);
    }

    s.data[len] = '\0';
    fclose(f);

    return s;
}


void
ngx_http_customer_fuzz_fail(const char *what)
{
    fprintf(stderr, "fuzz: %s\n", what);
    abort();
}

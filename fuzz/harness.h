
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_FUZZ_HARNESS_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_FUZZ_HARNESS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <stdint.h>

#include "ngx_http_customer_module.h"


/*
 * What the fuzz targets share: nginx's globals set up once (page size,
 * cached time, a cycle with a log on stderr), and for each input a pool
 * of its own with a request and a module context on it, all freed when
 * the input is done.  NGX_DEBUG_PALLOC makes each pool allocation a
 * malloc of its own, so ASan sees the bounds of every one of them.
 */


/* what a target reads only to have it read (by ASan) */
extern ngx_uint_t  ngx_http_customer_fuzz_sink;


void ngx_http_customer_fuzz_init(void);

/* a target's LLVMFuzzerInitialize when the harness is all it sets up */
#define NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE                                    \
    int                                                                      \
    LLVMFuzzerInitialize(int *argc, char ***argv)                            \
    {                                                                        \
        ngx_http_customer_fuzz_init();                                       \
        return 0;                                                            \
    }
ngx_http_customer_ctx_t *ngx_http_customer_fuzz_ctx(void);
void ngx_http_customer_fuzz_done(ngx_http_customer_ctx_t *ctx);

/* len bytes copied into a pool block of exactly len (+1 with nul) bytes */
u_char *ngx_http_customer_fuzz_copy(ngx_pool_t *pool, const uint8_t *data,
    size_t len, ngx_uint_t nul);

/* the contents of a file under fuzz/, read once at start; exits if not */
ngx_str_t ngx_http_customer_fuzz_file(const char *name);

/* abort() with a message: a property of the code under test was broken */
void ngx_http_customer_fuzz_fail(const char *what) __attribute__((noreturn));


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);


#endif /* _NGX_HTTP_CUSTOMER_FUZZ_HARNESS_H_INCLUDED_ */

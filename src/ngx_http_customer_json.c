
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_customer_json.h"


/*
 * yajl allocates from the request pool: a size word before each block
 * lets realloc() copy; blocks above the pool's small-size limit are given
 * back at once with ngx_pfree(), small ones go with the pool.
 */

typedef struct {
    ngx_pool_t                  *pool;
    ngx_http_customer_json_t    *root;
    ngx_http_customer_json_t    *cur;       /* open array or object */
    ngx_str_t                    key;       /* key waiting for its value */
    ngx_uint_t                   depth;
    ngx_uint_t                   nodes;
    /* scratch for the duplicate check, reused by every object */
    ngx_http_customer_json_t   **sorted;
    ngx_uint_t                   nsorted;
    const char                  *error;
} ngx_http_customer_json_parse_t;


static void *ngx_http_customer_yajl_malloc(void *ctx, size_t size);
static void *ngx_http_customer_yajl_realloc(void *ctx, void *p, size_t size);
static void ngx_http_customer_yajl_free(void *ctx, void *p);

static ngx_http_customer_json_t *ngx_http_customer_json_add(void *ctx,
    ngx_uint_t type);
static int ngx_http_customer_json_on_null(void *ctx);
static int ngx_http_customer_json_on_bool(void *ctx, int b);
static int ngx_http_customer_json_on_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_customer_json_on_string(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_customer_json_scalar(void *ctx, ngx_uint_t type,
    const unsigned char *s, size_t len);
static int ngx_http_customer_json_on_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_http_customer_json_dup(ngx_http_customer_json_parse_t *pc,
    ngx_str_t *to, const unsigned char *s, size_t len);
static int ngx_http_customer_json_on_start_map(void *ctx);
static int ngx_http_customer_json_on_start_array(void *ctx);
static int ngx_http_customer_json_open(void *ctx, ngx_uint_t type);
static int ngx_http_customer_json_on_end(void *ctx);
static int ngx_http_customer_json_on_end_map(void *ctx);
static int ngx_http_customer_json_key_cmp(const void *a, const void *b);

static void ngx_http_customer_json_masked(ngx_pool_t *pool, yajl_gen g,
    u_char *v, size_t len);


static yajl_callbacks  ngx_http_customer_json_tree_cb = {
    ngx_http_customer_json_on_null,
    ngx_http_customer_json_on_bool,
    NULL,
    NULL,
    ngx_http_customer_json_on_number,
    ngx_http_customer_json_on_string,
    ngx_http_customer_json_on_start_map,
    ngx_http_customer_json_on_key,
    ngx_http_customer_json_on_end_map,
    ngx_http_customer_json_on_start_array,
    ngx_http_customer_json_on_end
};

static yajl_alloc_funcs  ngx_http_customer_yajl_funcs = {
    ngx_http_customer_yajl_malloc,
    ngx_http_customer_yajl_realloc,
    ngx_http_customer_yajl_free,
    NULL                                   /* the pool, for each use */
};


static void *
ngx_http_customer_yajl_malloc(void *ctx, size_t size)
{
    size_t  *p;

    p = ngx_palloc(ctx, size + sizeof(size_t));
    if (p == NULL) {
        return NULL;
    }

    *p = size;

    return p + 1;
}


static void *
ngx_http_customer_yajl_realloc(void *ctx, void *p, size_t size)
{
    size_t  old;
    void   *n;

    if (p == NULL) {
        return ngx_http_customer_yajl_malloc(ctx, size);
    }

    old = ((size_t *) p)[-1];

    if (size <= old) {
        return p;
    }

    n = ngx_http_customer_yajl_malloc(ctx, size);
    if (n == NULL) {
        return NULL;
    }

    ngx_memcpy(n, p, old);
    ngx_http_customer_yajl_free(ctx, p);

    return n;
}


static void
ngx_http_customer_yajl_free(void *ctx, void *p)
{
    if (p != NULL) {
        (void) ngx_pfree(ctx, (size_t *) p - 1);
    }
}


yajl_gen
ngx_http_customer_json_gen(ngx_pool_t *pool)
{
    yajl_alloc_funcs  af = ngx_http_customer_yajl_funcs;

    af.ctx = pool;

    return yajl_gen_alloc(&af);
}


ngx_int_t
ngx_http_customer_json_result(yajl_gen g, u_char **buf, size_t *len)
{
    return yajl_gen_get_buf(g, (const unsigned char **) buf, len)
           == yajl_gen_status_ok ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_customer_json_parse(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_http_customer_json_t **root, ngx_str_t *err)
{
    u_char                          *msg;
    yajl_handle                      h;
    yajl_status                      st;
    yajl_alloc_funcs                 af = ngx_http_customer_yajl_funcs;
    ngx_http_customer_json_parse_t   ctx;

    ngx_memzero(&ctx, sizeof(ngx_http_customer_json_parse_t));
    ctx.pool = pool;
    af.ctx = pool;

    h = yajl_alloc(&ngx_http_customer_json_tree_cb, &af, &ctx);
    if (h == NULL) {
        return NGX_ERROR;
    }

    st = yajl_parse(h, data, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    if (ctx.sorted) {
        (void) ngx_pfree(pool, ctx.sorted);
    }

    if (st == yajl_status_ok) {
        yajl_free(h);
        *root = ctx.root;
        return NGX_OK;
    }

    msg = ctx.error ? (u_char *) ctx.error : yajl_get_error(h, 0, data, len);
    if (msg == NULL) {
        yajl_free(h);
        return NGX_ERROR;
    }

    /* ours, or yajl's "parse error: ...\n" or "lexical error: ...\n" */
    err->data = msg;
    err->len = ngx_strlen(msg);

    while (err->len && (msg[err->len - 1] == '\n' || msg[err->len - 1] == ' '))
    {
        err->len--;
    }

    yajl_free(h);

    return NGX_DECLINED;
}


static ngx_http_customer_json_t *
ngx_http_customer_json_add(void *ctx, ngx_uint_t type)
{
    ngx_http_customer_json_parse_t  *pc = ctx;
    ngx_http_customer_json_t        *v, *cur;

    if (++pc->nodes > NGX_HTTP_CUSTOMER_JSON_NODES) {
        pc->error = "JSON has more than 20000 values";
        return NULL;
    }

    cur = pc->cur;

    if (cur && cur->type == NGX_HTTP_CUSTOMER_JSON_OBJECT
        && cur->n >= NGX_HTTP_CUSTOMER_JSON_MEMBERS)
    {
        pc->error = "JSON object has more than 1000 members";
        return NULL;
    }

    v = ngx_pcalloc(pc->pool, sizeof(ngx_http_customer_json_t));
    if (v == NULL) {
        pc->error = "out of memory";
        return NULL;
    }

    v->type = type;

    if (cur == NULL) {
        pc->root = v;
        return v;
    }

    if (cur->type == NGX_HTTP_CUSTOMER_JSON_OBJECT) {
        v->key = pc->key;
    }

    v->parent = cur;

    if (cur->last) {
        cur->last->next = v;

    } else {
        cur->child = v;
    }

    cur->last = v;
    cur->n++;

    return v;
}


static int
ngx_http_customer_json_on_null(void *ctx)
{
    return ngx_http_customer_json_add(ctx, NGX_HTTP_CUSTOMER_JSON_NULL)
           != NULL;
}


static int
ngx_http_customer_json_on_bool(void *ctx, int b)
{
    ngx_http_customer_json_t  *v;

    v = ngx_http_customer_json_add(ctx, NGX_HTTP_CUSTOMER_JSON_BOOL);
    if (v == NULL) {
        return 0;
    }

    v->boolean = b ? 1 : 0;

    return 1;
}


static int
ngx_http_customer_json_on_number(void *ctx, const char *s, size_t len)
{
    return ngx_http_customer_json_scalar(ctx, NGX_HTTP_CUSTOMER_JSON_NUMBER,
                                         (const unsigned char *) s, len);
}


static int
ngx_http_customer_json_on_string(void *ctx, const unsigned char *s,
    size_t len)
{
    return ngx_http_customer_json_scalar(ctx, NGX_HTTP_CUSTOMER_JSON_STRING,
                                         s, len);
}


static int
ngx_http_customer_json_scalar(void *ctx, ngx_uint_t type,
    const unsigned char *s, size_t len)
{
    ngx_http_customer_json_t  *v;

    v = ngx_http_customer_json_add(ctx, type);

    return v && ngx_http_customer_json_dup(ctx, &v->str, s, len);
}


static int
ngx_http_customer_json_on_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_http_customer_json_parse_t  *pc = ctx;

    /* duplicates are found when the object ends, in O(n log n) */

    return ngx_http_customer_json_dup(pc, &pc->key, s, len);
}


/* a NUL-terminated copy of s, in the pool */

static int
ngx_http_customer_json_dup(ngx_http_customer_json_parse_t *pc, ngx_str_t *to,
    const unsigned char *s, size_t len)
{
    to->data = ngx_pnalloc(pc->pool, len + 1);
    if (to->data == NULL) {
        pc->error = "out of memory";
        return 0;
    }

    *ngx_cpymem(to->data, s, len) = '\0';
    to->len = len;

    return 1;
}


static int
ngx_http_customer_json_on_start_map(void *ctx)
{
    return ngx_http_customer_json_open(ctx, NGX_HTTP_CUSTOMER_JSON_OBJECT);
}


static int
ngx_http_customer_json_on_start_array(void *ctx)
{
    return ngx_http_customer_json_open(ctx, NGX_HTTP_CUSTOMER_JSON_ARRAY);
}


/* an object or an array begins: it holds the values until its end */

static int
ngx_http_customer_json_open(void *ctx, ngx_uint_t type)
{
    ngx_http_customer_json_parse_t  *pc = ctx;
    ngx_http_customer_json_t        *v;

    if (++pc->depth > NGX_HTTP_CUSTOMER_JSON_DEPTH) {
        pc->error = "JSON nested too deeply";
        return 0;
    }

    v = ngx_http_customer_json_add(ctx, type);
    if (v == NULL) {
        return 0;
    }

    pc->cur = v;

    return 1;
}


/*
 * An object is complete: sort pointers to its members by name and look
 * for equal neighbours.  Members are capped, so the scratch array is too.
 */

static int
ngx_http_customer_json_on_end_map(void *ctx)
{
    ngx_http_customer_json_parse_t  *pc = ctx;
    ngx_uint_t                       i, n;
    ngx_http_customer_json_t        *m, **a;

    n = pc->cur->n;

    if (n > 1) {
        if (n > pc->nsorted) {
            if (pc->sorted) {
                (void) ngx_pfree(pc->pool, pc->sorted);
            }

            pc->nsorted = ngx_max(n, 16);
            pc->sorted = ngx_palloc(pc->pool,
                                    pc->nsorted * sizeof(void *));
            if (pc->sorted == NULL) {
                pc->nsorted = 0;
                pc->error = "out of memory";
                return 0;
            }
        }

        a = pc->sorted;
        i = 0;

        for (m = pc->cur->child; m; m = m->next) {
            a[i++] = m;
        }

        qsort(a, n, sizeof(void *), ngx_http_customer_json_key_cmp);

        for (i = 1; i < n; i++) {
            if (ngx_http_customer_json_key_cmp(&a[i - 1], &a[i]) == 0) {
                pc->error = "duplicate member name in an object";
                return 0;
            }
        }
    }

    return ngx_http_customer_json_on_end(ctx);
}


static int
ngx_http_customer_json_key_cmp(const void *a, const void *b)
{
    const ngx_http_customer_json_t  *x, *y;

    x = *(ngx_http_customer_json_t * const *) a;
    y = *(ngx_http_customer_json_t * const *) b;

    if (x->key.len != y->key.len) {
        return x->key.len < y->key.len ? -1 : 1;
    }

    return ngx_memcmp(x->key.data, y->key.data, x->key.len);
}


static int
ngx_http_customer_json_on_end(void *ctx)
{
    ngx_http_customer_json_parse_t  *pc = ctx;

    pc->depth--;
    pc->cur = pc->cur->parent;

    return 1;
}


ngx_int_t
ngx_http_customer_json_copy(yajl_gen g, ngx_http_customer_json_t *v)
{
    ngx_http_customer_json_t  *m;

    switch (v->type) {

    case NGX_HTTP_CUSTOMER_JSON_NULL:
        yajl_gen_null(g);
        break;

    case NGX_HTTP_CUSTOMER_JSON_BOOL:
        yajl_gen_bool(g, (int) v->boolean);
        break;

    case NGX_HTTP_CUSTOMER_JSON_NUMBER:
        yajl_gen_number(g, (const char *) v->str.data, v->str.len);
        break;

    case NGX_HTTP_CUSTOMER_JSON_STRING:
        ngx_http_customer_gen_str(g, &v->str);
        break;

    case NGX_HTTP_CUSTOMER_JSON_ARRAY:
        yajl_gen_array_open(g);

        for (m = v->child; m; m = m->next) {
            ngx_http_customer_json_copy(g, m);
        }

        yajl_gen_array_close(g);
        break;

    default: /* NGX_HTTP_CUSTOMER_JSON_OBJECT */
        yajl_gen_map_open(g);

        for (m = v->child; m; m = m->next) {
            ngx_http_customer_gen_str(g, &m->key);
            ngx_http_customer_json_copy(g, m);
        }

        yajl_gen_map_close(g);
        break;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_customer_json_text(yajl_gen g, u_char *text, size_t len)
{
    /*
     * yajl_gen_number() appends its argument verbatim: PostgreSQL's
     * json/jsonb text is valid JSON, so it is not parsed and generated
     * again
     */

    return yajl_gen_number(g, (const char *) text, len) == yajl_gen_status_ok
           ? NGX_OK : NGX_ERROR;
}


/* "*****1234": the last four characters shown, the rest starred */

static void
ngx_http_customer_json_masked(ngx_pool_t *pool, yajl_gen g, u_char *v,
    size_t len)
{
    u_char  *p;
    size_t   n, keep;

    n = ngx_utf8_length(v, len);
    keep = (n > 4 && len >= 4 && v[len - 1] < 0x80 && v[len - 2] < 0x80
            && v[len - 3] < 0x80 && v[len - 4] < 0x80) ? 4 : 0;

    p = ngx_pnalloc(pool, n + 4);
    if (p == NULL) {
        yajl_gen_null(g);
        return;
    }

    ngx_memset(p, '*', n - keep);

    /* a tail that is not plain ASCII is starred too */
    ngx_memcpy(p + n - keep, v + len - keep, keep);

    yajl_gen_string(g, p, n);
}


ngx_int_t
ngx_http_customer_json_row(ngx_pool_t *pool, yajl_gen g, PGresult *res,
    int row, int first, ngx_http_customer_column_t *cols, int ncols)
{
    int      i;
    char    *v;
    size_t   len;

    for (i = 0; i < ncols; i++) {
        ngx_http_customer_gen_cstr(g, cols[i].name);

        if (PQgetisnull(res, row, first + i)) {
            yajl_gen_null(g);
            continue;
        }

        v = PQgetvalue(res, row, first + i);
        len = PQgetlength(res, row, first + i);

        switch (cols[i].type) {

        case NGX_HTTP_CUSTOMER_COL_NUMBER:
            yajl_gen_number(g, v, len);
            break;

        case NGX_HTTP_CUSTOMER_COL_BOOL:
            yajl_gen_bool(g, v[0] == 't');
            break;

        case NGX_HTTP_CUSTOMER_COL_JSON:
            if (ngx_http_customer_json_text(g, (u_char *) v, len) != NGX_OK) {
                return NGX_ERROR;
            }

            break;

        case NGX_HTTP_CUSTOMER_COL_MASKED:
            ngx_http_customer_json_masked(pool, g, (u_char *) v, len);
            break;

        default: /* NGX_HTTP_CUSTOMER_COL_STRING */
            yajl_gen_string(g, (const unsigned char *) v, len);
            break;
        }
    }

    return NGX_OK;
}


/*
 * Strict UTF-8 (RFC 3629): every continuation byte is 10xxxxxx, no
 * overlong form ("\xc0\xaf", "\xe0\x80\xaf"), no surrogate
 * ("\xed\xa0\x80") and nothing above U+10FFFF ("\xf4\x90\x80\x80").
 * ngx_utf8_decode() is no check: it takes any byte >= 0x80 as a
 * continuation, so "\xc3\xc3" would pass.
 */

ngx_int_t
ngx_http_customer_utf8(u_char *p, size_t len)
{
    u_char      *last;
    uint32_t     u, min;
    ngx_uint_t   n;

    last = p + len;

    while (p < last) {

        if (*p < 0x80) {
            p++;
            continue;
        }

        if (*p >= 0xc2 && *p <= 0xdf) {
            u = *p & 0x1f;
            n = 1;
            min = 0x80;

        } else if (*p >= 0xe0 && *p <= 0xef) {
            u = *p & 0x0f;
            n = 2;
            min = 0x800;

        } else if (*p >= 0xf0 && *p <= 0xf4) {
            u = *p & 0x07;
            n = 3;
            min = 0x10000;

        } else {
            /* a continuation byte first, 0xc0, 0xc1, 0xf5 and above */
            return NGX_ERROR;
        }

        if ((size_t) (last - p) <= n) {
            return NGX_ERROR;
        }

        for (p++; n; n--, p++) {
            if ((*p & 0xc0) != 0x80) {
                return NGX_ERROR;
            }

            u = (u << 6) | (*p & 0x3f);
        }

        if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the member of an object by name, or NULL */

ngx_http_customer_json_t *
ngx_http_customer_json_member(ngx_http_customer_json_t *obj, const char *name)
{
    size_t                     len;
    ngx_http_customer_json_t  *m;

    len = ngx_strlen(name);

    if (obj == NULL || obj->type != NGX_HTTP_CUSTOMER_JSON_OBJECT) {
        return NULL;
    }

    for (m = obj->child; m; m = m->next) {
        if (m->key.len == len && ngx_strncmp(m->key.data, name, len) == 0) {
            return m;
        }
    }

    return NULL;
}


/*
 * "pagination": {currentPage, totalPages, totalItems, itemsPerPage,
 * hasNextPage, hasPreviousPage}, left open: the caller may add members
 * (a list's nextCursor) and closes it.
 */

void
ngx_http_customer_gen_pagination(yajl_gen g, ngx_uint_t page,
    ngx_uint_t limit, ngx_int_t total, ngx_flag_t previous)
{
    ngx_uint_t  pages;

    pages = ((ngx_uint_t) total + limit - 1) / limit;

    ngx_http_customer_gen_lit(g, "pagination");
    yajl_gen_map_open(g);
    ngx_http_customer_gen_lit(g, "currentPage");
    yajl_gen_integer(g, page);
    ngx_http_customer_gen_lit(g, "totalPages");
    yajl_gen_integer(g, pages);
    ngx_http_customer_gen_lit(g, "totalItems");
    yajl_gen_integer(g, total);
    ngx_http_customer_gen_lit(g, "itemsPerPage");
    yajl_gen_integer(g, limit);
    ngx_http_customer_gen_lit(g, "hasNextPage");
    yajl_gen_bool(g, page < pages);
    ngx_http_customer_gen_lit(g, "hasPreviousPage");
    yajl_gen_bool(g, previous != 0);
}


/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_JSON_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <yajl/yajl_gen.h>
#include <libpq-fe.h>


#define NGX_HTTP_CUSTOMER_JSON_NULL     0
#define NGX_HTTP_CUSTOMER_JSON_BOOL     1
#define NGX_HTTP_CUSTOMER_JSON_NUMBER   2
#define NGX_HTTP_CUSTOMER_JSON_STRING   3
#define NGX_HTTP_CUSTOMER_JSON_ARRAY    4
#define NGX_HTTP_CUSTOMER_JSON_OBJECT   5

#define NGX_HTTP_CUSTOMER_JSON_DEPTH    16    /* deepest body accepted */
/*
 * Fixed limits of every JSON text the module parses (bodies, JWT headers
 * and claims, peer answers), so that the work and memory of one parse
 * stay proportional to its size and small.
 */
#define NGX_HTTP_CUSTOMER_JSON_MEMBERS  1000  /* members of one object */
#define NGX_HTTP_CUSTOMER_JSON_NODES    20000 /* values in one text */

/* how a result column is written */
#define NGX_HTTP_CUSTOMER_COL_STRING    0
#define NGX_HTTP_CUSTOMER_COL_NUMBER    1     /* integer or money text */
#define NGX_HTTP_CUSTOMER_COL_BOOL      2
#define NGX_HTTP_CUSTOMER_COL_JSON      3     /* json/jsonb text */
#define NGX_HTTP_CUSTOMER_COL_MASKED    4     /* string, all but 4 hidden */


typedef struct ngx_http_customer_json_s  ngx_http_customer_json_t;

/* a parsed request body: a tree in the request pool */
struct ngx_http_customer_json_s {
    ngx_uint_t                   type;
    ngx_str_t                    key;      /* member name inside an object */
    ngx_str_t                    str;      /* string, or a number's text */
    ngx_uint_t                   boolean;
    ngx_uint_t                   n;        /* members or elements */
    ngx_http_customer_json_t    *child;    /* first member or element */
    ngx_http_customer_json_t    *last;
    ngx_http_customer_json_t    *next;     /* next sibling */
    ngx_http_customer_json_t    *parent;
};


typedef struct {
    ngx_str_t                    field;
    ngx_str_t                    message;
} ngx_http_customer_error_t;


typedef struct {
    const char                  *name;     /* JSON member name */
    ngx_uint_t                   type;     /* NGX_HTTP_CUSTOMER_COL_* */
} ngx_http_customer_column_t;


ngx_int_t ngx_http_customer_json_parse(ngx_pool_t *pool, u_char *data,
    size_t len, ngx_http_customer_json_t **root, ngx_str_t *err);
yajl_gen ngx_http_customer_json_gen(ngx_pool_t *pool);
ngx_int_t ngx_http_customer_json_copy(yajl_gen g,
    ngx_http_customer_json_t *v);
ngx_int_t ngx_http_customer_json_text(yajl_gen g, u_char *text, size_t len);
ngx_int_t ngx_http_customer_json_row(ngx_pool_t *pool, yajl_gen g,
    PGresult *res, int row, int first, ngx_http_customer_column_t *cols,
    int ncols);
ngx_int_t ngx_http_customer_json_result(yajl_gen g, u_char **buf,
    size_t *len);
ngx_int_t ngx_http_customer_utf8(u_char *p, size_t len);
ngx_http_customer_json_t *ngx_http_customer_json_member(
    ngx_http_customer_json_t *obj, const char *name);
void ngx_http_customer_gen_pagination(yajl_gen g, ngx_uint_t page,
    ngx_uint_t limit, ngx_int_t total, ngx_flag_t previous);

#define ngx_http_customer_gen_lit(g, s)                                      \
    yajl_gen_string(g, (const unsigned char *) s, sizeof(s) - 1)
#define ngx_http_customer_gen_cstr(g, s)                                     \
    yajl_gen_string(g, (const unsigned char *) s, ngx_strlen(s))
#define ngx_http_customer_gen_str(g, s)                                      \
    yajl_gen_string(g, (s)->data, (s)->len)


#endif /* _NGX_HTTP_CUSTOMER_JSON_H_INCLUDED_ */

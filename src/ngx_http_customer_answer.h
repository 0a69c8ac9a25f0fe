
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_ANSWER_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_ANSWER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"


yajl_gen ngx_http_customer_envelope(ngx_http_customer_ctx_t *ctx,
    const char *message);
ngx_int_t ngx_http_customer_send(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, yajl_gen g);
ngx_int_t ngx_http_customer_send_json(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message, PGresult *res, int column);
ngx_int_t ngx_http_customer_send_bytes(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *type, u_char *data, size_t len);
ngx_int_t ngx_http_customer_send_header(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, ngx_str_t *type, off_t len);
ngx_int_t ngx_http_customer_request_id_of(ngx_http_request_t *r,
    ngx_str_t *id);
ngx_table_elt_t *ngx_http_customer_push_header(ngx_list_t *headers,
    const char *key, ngx_str_t *value);
ngx_int_t ngx_http_customer_add_error(ngx_http_customer_ctx_t *ctx,
    u_char *field, size_t len, const char *message);
ngx_int_t ngx_http_customer_send_errors(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message);
ngx_int_t ngx_http_customer_send_error(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message, const char *field,
    const char *detail);
ngx_int_t ngx_http_customer_db_error(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res);
ngx_int_t ngx_http_customer_not_found(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_invalid(ngx_http_customer_ctx_t *ctx);
ngx_int_t ngx_http_customer_rows(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_pg_query_t *q, PGresult *res, ngx_int_t *rc);
ngx_int_t ngx_http_customer_send_row(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, const char *message, PGresult *res,
    ngx_http_customer_column_t *cols, int ncols);
ngx_int_t ngx_http_customer_set_etag(ngx_http_customer_ctx_t *ctx,
    PGresult *res, ngx_uint_t column);
ngx_int_t ngx_http_customer_gen_rows(ngx_http_customer_ctx_t *ctx,
    yajl_gen g, PGresult *res, const char *name, int first,
    ngx_http_customer_column_t *cols, int ncols);
ngx_int_t ngx_http_customer_send_page(ngx_http_customer_ctx_t *ctx,
    PGresult *res, const char *message, const char *name,
    ngx_http_customer_column_t *cols, int ncols, ngx_uint_t page,
    ngx_uint_t limit);
ngx_int_t ngx_http_customer_send_data(ngx_http_customer_ctx_t *ctx,
    ngx_uint_t status, yajl_gen g);


#endif /* _NGX_HTTP_CUSTOMER_ANSWER_H_INCLUDED_ */


/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_VALIDATE_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_VALIDATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_customer_module.h"


/* field flags */
#define NGX_HTTP_CUSTOMER_F_REQUIRED   0x01   /* on create */
#define NGX_HTTP_CUSTOMER_F_NULLABLE   0x02   /* null clears it */
#define NGX_HTTP_CUSTOMER_F_CREATE     0x04   /* settable on create only */
#define NGX_HTTP_CUSTOMER_F_READONLY   0x08   /* never settable */


typedef struct ngx_http_customer_field_s  ngx_http_customer_field_t;

/*
 * Checks one value; may normalize it in place (trimming).  On failure it
 * records the error under the field's path and returns NGX_DECLINED.
 */
typedef ngx_int_t (*ngx_http_customer_check_pt)(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, ngx_http_customer_json_t *v,
    ngx_http_customer_field_t *f);

/* declares or defines ngx_http_customer_check_<name>, a check as above */
#define NGX_HTTP_CUSTOMER_CHECK(name)                                        \
    ngx_int_t ngx_http_customer_check_##name(ngx_http_customer_ctx_t *ctx,    \
        ngx_str_t *path, ngx_http_customer_json_t *v,                         \
        ngx_http_customer_field_t *f)


struct ngx_http_customer_field_s {
    const char                   *name;
    ngx_http_customer_check_pt    check;
    ngx_uint_t                    flags;
    ngx_uint_t                    min;     /* length, count or value */
    ngx_uint_t                    max;
    const char                  **values;  /* enums; sub-fields in data */
    ngx_http_customer_field_t    *fields;  /* members of an object */
};


extern ngx_http_customer_field_t  ngx_http_customer_preference_fields[];


ngx_int_t ngx_http_customer_validate(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *prefix, ngx_http_customer_json_t *obj,
    ngx_http_customer_field_t *fields, ngx_uint_t create);
ngx_int_t ngx_http_customer_fail(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, const char *message);

NGX_HTTP_CUSTOMER_CHECK(text);
NGX_HTTP_CUSTOMER_CHECK(line);
NGX_HTTP_CUSTOMER_CHECK(user_id);
NGX_HTTP_CUSTOMER_CHECK(email);
NGX_HTTP_CUSTOMER_CHECK(phone);
NGX_HTTP_CUSTOMER_CHECK(enum);
ngx_int_t ngx_http_customer_arg_enum(ngx_http_customer_ctx_t *ctx,
    const char *name, const char **values, ngx_str_t *value);
ngx_int_t ngx_http_customer_arg_field(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_field_t *f, ngx_str_t *value);
ngx_int_t ngx_http_customer_check_param(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_field_t *f, ngx_str_t *value);
ngx_int_t ngx_http_customer_arg_check(ngx_http_customer_ctx_t *ctx,
    const char *name, ngx_http_customer_check_pt check, ngx_uint_t min,
    ngx_uint_t max, ngx_str_t *value);
NGX_HTTP_CUSTOMER_CHECK(uuid);
NGX_HTTP_CUSTOMER_CHECK(bool);
NGX_HTTP_CUSTOMER_CHECK(count);
NGX_HTTP_CUSTOMER_CHECK(money);
NGX_HTTP_CUSTOMER_CHECK(delta);
NGX_HTTP_CUSTOMER_CHECK(money_delta);
NGX_HTTP_CUSTOMER_CHECK(birth_date);
NGX_HTTP_CUSTOMER_CHECK(date);
NGX_HTTP_CUSTOMER_CHECK(year);
NGX_HTTP_CUSTOMER_CHECK(vin);
NGX_HTTP_CUSTOMER_CHECK(timestamp);
NGX_HTTP_CUSTOMER_CHECK(language);
NGX_HTTP_CUSTOMER_CHECK(country);
NGX_HTTP_CUSTOMER_CHECK(currency);
NGX_HTTP_CUSTOMER_CHECK(tags);
NGX_HTTP_CUSTOMER_CHECK(clock);
NGX_HTTP_CUSTOMER_CHECK(set);
NGX_HTTP_CUSTOMER_CHECK(object);
NGX_HTTP_CUSTOMER_CHECK(objects);


/*
 * A field table's member whose checker is ngx_http_customer_check_<check>,
 * with its bounds: required on create, optional, or optional and nullable;
 * one whose value is among values (how: REQUIRED or OPTIONAL); and the
 * table's end.
 */
#define NGX_HTTP_CUSTOMER_REQUIRED(name, check, min, max)                    \
    { name, ngx_http_customer_check_##check, NGX_HTTP_CUSTOMER_F_REQUIRED,   \
      min, max, NULL, NULL }
#define NGX_HTTP_CUSTOMER_OPTIONAL(name, check, min, max)                    \
    { name, ngx_http_customer_check_##check, 0, min, max, NULL, NULL }
#define NGX_HTTP_CUSTOMER_NULLABLE(name, check, min, max)                    \
    { name, ngx_http_customer_check_##check, NGX_HTTP_CUSTOMER_F_NULLABLE,   \
      min, max, NULL, NULL }
#define NGX_HTTP_CUSTOMER_ONE_OF(name, how, values)                          \
    { name, ngx_http_customer_check_enum, NGX_HTTP_CUSTOMER_F_##how, 0, 0,   \
      values, NULL }
#define NGX_HTTP_CUSTOMER_FIELDS_END  { NULL, NULL, 0, 0, 0, NULL, NULL }

#define NGX_HTTP_CUSTOMER_F_OPTIONAL   0      /* none of the flags */


#endif /* _NGX_HTTP_CUSTOMER_VALIDATE_H_INCLUDED_ */

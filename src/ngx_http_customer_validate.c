
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_answer.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_json.h"


static ngx_str_t *ngx_http_customer_path(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *prefix, ngx_str_t *key, ngx_int_t index);
static ngx_int_t ngx_http_customer_failf(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, const char *fmt, ngx_uint_t a, ngx_uint_t b);
static ngx_int_t ngx_http_customer_string(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, ngx_http_customer_json_t *v,
    ngx_http_customer_field_t *f, ngx_uint_t line);
static ngx_int_t ngx_http_customer_items(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, ngx_http_customer_json_t *v,
    ngx_http_customer_field_t *f, ngx_http_customer_field_t *item,
    const char *duplicate, ngx_uint_t typed);
static ngx_int_t ngx_http_customer_digits(u_char *p, ngx_uint_t n);
static ngx_int_t ngx_http_customer_capitals(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, ngx_http_customer_json_t *v, size_t n,
    const char *message);
static ngx_int_t ngx_http_customer_date(u_char *p, ngx_uint_t *y,
    ngx_uint_t *m, ngx_uint_t *d);
static ngx_int_t ngx_http_customer_day(ngx_http_customer_ctx_t *ctx,
    ngx_str_t *path, ngx_http_customer_json_t *v, ngx_uint_t past,
    ngx_uint_t *date, ngx_uint_t *today);


ngx_int_t
ngx_http_customer_validate(ngx_http_customer_ctx_t *ctx, ngx_str_t *prefix,
    ngx_http_customer_json_t *obj, ngx_http_customer_field_t *fields,
    ngx_uint_t create)
{
    ngx_int_t                   rc;
    ngx_str_t                   key, *path;
    ngx_http_customer_json_t   *m;
    ngx_http_customer_field_t  *f;

    rc = NGX_OK;

    for (m = obj->child; m; m = m->next) {

        path = ngx_http_customer_path(ctx, prefix, &m->key, -1);
        if (path == NULL) {
            return NGX_ERROR;
        }

        for (f = fields; f->name; f++) {
            if (ngx_strlen(f->name) == m->key.len
                && ngx_strncmp(f->name, m->key.data, m->key.len) == 0)
            {
                break;
            }
        }

        if (f->name == NULL) {
            rc = ngx_http_customer_fail(ctx, path, "Unknown field");
            continue;
        }

        if (f->flags & NGX_HTTP_CUSTOMER_F_READONLY) {
            rc = ngx_http_customer_fail(ctx, path, "Field is read-only");
            continue;
        }

        if (!create && (f->flags & NGX_HTTP_CUSTOMER_F_CREATE)) {
            rc = ngx_http_customer_fail(ctx, path,
                                        "Field cannot be changed here");
            continue;
        }

        if (m->type == NGX_HTTP_CUSTOMER_JSON_NULL) {
            if (!(f->flags & NGX_HTTP_CUSTOMER_F_NULLABLE)
                || (create && (f->flags & NGX_HTTP_CUSTOMER_F_REQUIRED)))
            {
                rc = ngx_http_customer_fail(ctx, path, "Must not be null");
            }

            continue;
        }

        if (f->check(ctx, path, m, f) != NGX_OK) {
            rc = NGX_DECLINED;
        }
    }

    if (!create) {
        return rc;
    }

    for (f = fields; f->name; f++) {

        if ((f->flags & NGX_HTTP_CUSTOMER_F_REQUIRED)
            && ngx_http_customer_json_member(obj, f->name) == NULL)
        {
            key.data = (u_char *) f->name;
            key.len = ngx_strlen(f->name);

            path = ngx_http_customer_path(ctx, prefix, &key, -1);
            if (path == NULL) {
                return NGX_ERROR;
            }

            rc = ngx_http_customer_fail(ctx, path, "Field is required");
        }
    }

    return rc;
}


static ngx_str_t *
ngx_http_customer_path(ngx_http_customer_ctx_t *ctx, ngx_str_t *prefix,
    ngx_str_t *key, ngx_int_t index)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *path;

    len = (prefix ? prefix->len + 1 : 0) + (key ? key->len : 0)
          + NGX_INT_T_LEN + 2;

    /* the text right after its ngx_str_t */

    path = ngx_palloc(ctx->request->pool, sizeof(ngx_str_t) + len);
    if (path == NULL) {
        return NULL;
    }

    p = (u_char *) (path + 1);
    path->data = p;

    if (prefix && prefix->len) {
        p = ngx_cpymem(p, prefix->data, prefix->len);
    }

    if (index >= 0) {
        p = ngx_sprintf(p, "[%i]", index);

    } else {
        if (prefix && prefix->len) {
            *p++ = '.';
        }

        p = ngx_cpymem(p, key->data, key->len);
    }

    path->len = p - path->data;

    return path;
}


ngx_int_t
ngx_http_customer_fail(ngx_http_customer_ctx_t *ctx, ngx_str_t *path,
    const char *message)
{
    return ngx_http_customer_add_error(ctx, path->data, path->len, message)
           == NGX_OK ? NGX_DECLINED : NGX_ERROR;
}


static ngx_int_t
ngx_http_customer_failf(ngx_http_customer_ctx_t *ctx, ngx_str_t *path,
    const char *fmt, ngx_uint_t a, ngx_uint_t b)
{
    u_char  *msg;

    msg = ngx_pnalloc(ctx->request->pool, 128);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    ngx_snprintf(msg, 127, fmt, a, b)[0] = '\0';

    return ngx_http_customer_fail(ctx, path, (char *) msg);
}


static ngx_int_t
ngx_http_customer_string(ngx_http_customer_ctx_t *ctx, ngx_str_t *path,
    ngx_http_customer_json_t *v, ngx_http_customer_field_t *f,
    ngx_uint_t line)
{
    u_char  *p, *last;
    size_t   n;

    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING) {
        return ngx_http_customer_fail(ctx, path, "Must be a string");
    }

    /* trim white space at both ends */

    p = v->str.data;
    last = p + v->str.len;

    while (p < last && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t'
                        || last[-1] == '\r' || last[-1] == '\n'))
    {
        last--;
    }

    v->str.data = p;
    v->str.len = last - p;

    /*
     * Whoever hands the value on as a C string (a libpq parameter) gets
     * the trimmed one: every string checked here has a NUL after its end
     * (the JSON tree's and the query argument's copies), and last is at
     * most there.
     */

    *last = '\0';

    for ( /* void */ ; p < last; p++) {
        if (*p == 0x7f
            || (*p < 0x20
                && (line || (*p != '\n' && *p != '\t' && *p != '\r'))))
        {
            return ngx_http_customer_fail(ctx, path,
                                          "Must not contain control "
                                          "characters");
        }
    }

    n = ngx_utf8_length(v->str.data, v->str.len);

    if (n < f->min || n > f->max) {
        if (f->min == 0) {
            return ngx_http_customer_failf(ctx, path,
                                           "Must be at most %ui characters",
                                           f->max, 0);
        }

        return ngx_http_customer_failf(ctx, path,
                                       "Must be %ui to %ui characters",
                                       f->min, f->max);
    }

    return NGX_OK;
}


NGX_HTTP_CUSTOMER_CHECK(text)
{
    return ngx_http_customer_string(ctx, path, v, f, 0);
}


NGX_HTTP_CUSTOMER_CHECK(line)
{
    return ngx_http_customer_string(ctx, path, v, f, 1);
}


/* one line, and one path segment: no '/' */

NGX_HTTP_CUSTOMER_CHECK(user_id)
{
    ngx_int_t  rc;

    rc = ngx_http_customer_string(ctx, path, v, f, 1);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_strlchr(v->str.data, v->str.data + v->str.len, '/')) {
        return ngx_http_customer_fail(ctx, path, "Must not contain '/'");
    }

    /* "." and ".." would be resolved away in /api/auth/user/{userId}/.. */

    if ((v->str.len == 1 && v->str.data[0] == '.')
        || (v->str.len == 2 && v->str.data[0] == '.'
            && v->str.data[1] == '.'))
    {
        return ngx_http_customer_fail(ctx, path, "Must not be '.' or '..'");
    }

    return NGX_OK;
}


NGX_HTTP_CUSTOMER_CHECK(email)
{
    u_char      *p, *last, *at, *dot;
    ngx_int_t    rc;
    ngx_uint_t   label;

    rc = ngx_http_customer_string(ctx, path, v, f, 1);
    if (rc != NGX_OK) {
        return rc;
    }

    p = v->str.data;
    last = p + v->str.len;

    at = ngx_strlchr(p, last, '@');

    if (at == NULL || at == p || at - p > 64 || last - at < 4) {
        goto invalid;
    }

    for ( /* void */ ; p < at; p++) {
        if (!(isalnum(*p) || ngx_strchr("!#$%&'*+/=?^_`{|}~.-", *p))) {
            goto invalid;
        }
    }

    if (at[1] == '.' || at[-1] == '.' || last[-1] == '.') {
        goto invalid;
    }

    dot = NULL;
    label = 0;

    for (p = at + 1; p < last; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-') {
                goto invalid;
            }

            dot = p;
            label = 0;
            continue;
        }

        if (!(isalnum(*p) || (*p == '-' && label > 0)) || ++label > 63) {
            goto invalid;
        }
    }

    if (dot == NULL || last - dot < 3) {
        goto invalid;
    }

    for (p = dot + 1; p < last; p++) {
        if (!isalpha(*p)) {
            goto invalid;
        }
    }

    return NGX_OK;

invalid:

    return ngx_http_customer_fail(ctx, path, "Must be a valid email address");
}


NGX_HTTP_CUSTOMER_CHECK(phone)
{
    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING
        || v->str.len < 3 || v->str.len > 16
        || v->str.data[0] != '+' || v->str.data[1] < '1'
        || v->str.data[1] > '9'
        || !ngx_http_customer_digits(v->str.data + 1, v->str.len - 1))
    {
        return ngx_http_customer_fail(ctx, path,
                                      "Must be an E.164 phone number such "
                                      "as +919876543210");
    }

    return NGX_OK;
}


NGX_HTTP_CUSTOMER_CHECK(enum)
{
    u_char       *msg, *p;
    ngx_uint_t    i;

    if (v->type == NGX_HTTP_CUSTOMER_JSON_STRING) {
        for (i = 0; f->values[i]; i++) {
            if (ngx_strlen(f->values[i]) == v->str.len
                && ngx_strncmp(f->values[i], v->str.data, v->str.len) == 0)
            {
                return NGX_OK;
            }
        }
    }

    msg = ngx_pnalloc(ctx->request->pool, 256);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(msg, "Must be one of: ");

    for (i = 0; f->values[i]; i++) {
        p = ngx_snprintf(p, 256 - 8 - (p - msg), "%s%s",
                         i ? ", " : "", f->values[i]);
    }

    *p = '\0';

    return ngx_http_customer_fail(ctx, path, (char *) msg);
}


/*
 * A query argument (or a header's value: ngx_http_customer_check_param)
 * checked as a body member by f would be: NGX_OK with the (perhaps
 * trimmed) value NUL-terminated, NGX_DECLINED when absent, NGX_ABORT
 * when invalid (the error recorded under f->name), or NGX_ERROR.
 */

ngx_int_t
ngx_http_customer_arg_field(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_field_t *f, ngx_str_t *value)
{
    ngx_int_t  rc;

    ngx_str_null(value);

    rc = ngx_http_customer_arg_str(ctx, f->name, value);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_customer_check_param(ctx, f, value);
}


/* value: NUL-terminated in the request pool */

ngx_int_t
ngx_http_customer_check_param(ngx_http_customer_ctx_t *ctx,
    ngx_http_customer_field_t *f, ngx_str_t *value)
{
    ngx_int_t                  rc;
    ngx_str_t                  path;
    ngx_http_customer_json_t   v;

    ngx_memzero(&v, sizeof(ngx_http_customer_json_t));

    v.type = NGX_HTTP_CUSTOMER_JSON_STRING;
    v.str = *value;
    path.data = (u_char *) f->name;
    path.len = ngx_strlen(f->name);

    /* a JSON body is checked as a whole; an argument or a header is not */

    rc = (ngx_http_customer_utf8(value->data, value->len) == NGX_OK)
         ? f->check(ctx, &path, &v, f)
         : ngx_http_customer_fail(ctx, &path, "Must be valid UTF-8");

    if (rc == NGX_OK) {
        /* trimming only moves the ends inside the NUL-terminated copy */
        *value = v.str;
        value->data[value->len] = '\0';
    }

    return (rc == NGX_OK || rc == NGX_ERROR) ? rc : NGX_ABORT;
}


/* as ngx_http_customer_arg_field(), for a checker with bounds */

ngx_int_t
ngx_http_customer_arg_check(ngx_http_customer_ctx_t *ctx, const char *name,
    ngx_http_customer_check_pt check, ngx_uint_t min, ngx_uint_t max,
    ngx_str_t *value)
{
    ngx_http_customer_field_t  f = { name, check, 0, min, max, NULL, NULL };

    return ngx_http_customer_arg_field(ctx, &f, value);
}


/* a UUID, as a query argument */

NGX_HTTP_CUSTOMER_CHECK(uuid)
{
    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING
        || !ngx_http_customer_is_uuid(&v->str))
    {
        return ngx_http_customer_fail(ctx, path, "Must be a UUID");
    }

    return NGX_OK;
}


/*
 * A query argument that must be one of values: NGX_OK with it in value,
 * NGX_DECLINED when it is absent, NGX_ABORT when it is none of them (the
 * error is recorded for the 400), NGX_ERROR.
 */

ngx_int_t
ngx_http_customer_arg_enum(ngx_http_customer_ctx_t *ctx, const char *name,
    const char **values, ngx_str_t *value)
{
    ngx_http_customer_field_t  f = {
        name, ngx_http_customer_check_enum, 0, 0, 0, values, NULL
    };

    return ngx_http_customer_arg_field(ctx, &f, value);
}


NGX_HTTP_CUSTOMER_CHECK(bool)
{
    if (v->type != NGX_HTTP_CUSTOMER_JSON_BOOL) {
        return ngx_http_customer_fail(ctx, path, "Must be true or false");
    }

    return NGX_OK;
}


NGX_HTTP_CUSTOMER_CHECK(count)
{
    ngx_int_t  n;

    n = NGX_ERROR;

    if (v->type == NGX_HTTP_CUSTOMER_JSON_NUMBER && v->str.len <= 10) {
        n = ngx_atoi(v->str.data, v->str.len);
    }

    if (n == NGX_ERROR || (ngx_uint_t) n < f->min || (ngx_uint_t) n > f->max)
    {
        return ngx_http_customer_failf(ctx, path,
                                       "Must be a whole number from %ui "
                                       "to %ui", f->min, f->max);
    }

    return NGX_OK;
}


NGX_HTTP_CUSTOMER_CHECK(money)
{
    u_char  *p, *last, *dot;

    if (v->type != NGX_HTTP_CUSTOMER_JSON_NUMBER) {
        goto invalid;
    }

    p = v->str.data;
    last = p + v->str.len;
    dot = ngx_strlchr(p, last, '.');

    if (dot == NULL) {
        dot = last;
    }

    if (dot == p || dot - p > 12 || !ngx_http_customer_digits(p, dot - p)) {
        goto invalid;
    }

    if (dot < last
        && (last - dot < 2 || last - dot > 3
            || !ngx_http_customer_digits(dot + 1, last - dot - 1)))
    {
        goto invalid;
    }

    return NGX_OK;

invalid:

    return ngx_http_customer_fail(ctx, path,
                                  "Must be a non-negative amount below "
                                  "10^12 with at most two decimals");
}


/* a signed whole number within -max..max */

NGX_HTTP_CUSTOMER_CHECK(delta)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   n;

    n = NGX_ERROR;

    if (v->type == NGX_HTTP_CUSTOMER_JSON_NUMBER && v->str.len <= 11) {
        p = v->str.data;
        len = v->str.len;

        if (len > 1 && *p == '-') {
            p++;
            len--;
        }

        n = ngx_atoi(p, len);
    }

    if (n == NGX_ERROR || (ngx_uint_t) n > f->max) {
        return ngx_http_customer_failf(ctx, path,
                                       "Must be a whole number from -%ui "
                                       "to %ui", f->max, f->max);
    }

    return NGX_OK;
}


/* a signed amount: a minus sign, then what check_money accepts */

NGX_HTTP_CUSTOMER_CHECK(money_delta)
{
    ngx_http_customer_json_t  abs;

    abs = *v;

    if (abs.type == NGX_HTTP_CUSTOMER_JSON_NUMBER && abs.str.len > 1
        && abs.str.data[0] == '-')
    {
        abs.str.data++;
        abs.str.len--;
    }

    return ngx_http_customer_check_money(ctx, path, &abs, f);
}


static ngx_int_t
ngx_http_customer_digits(u_char *p, ngx_uint_t n)
{
    while (n--) {
        if (*p < '0' || *p > '9') {
            return 0;
        }

        p++;
    }

    return 1;
}


static ngx_int_t
ngx_http_customer_date(u_char *p, ngx_uint_t *y, ngx_uint_t *m,
    ngx_uint_t *d)
{
    ngx_uint_t  days;

    static ngx_uint_t  mdays[] = { 31, 29, 31, 30, 31, 30,
                                   31, 31, 30, 31, 30, 31 };

    if (!ngx_http_customer_digits(p, 4) || p[4] != '-'
        || !ngx_http_customer_digits(p + 5, 2) || p[7] != '-'
        || !ngx_http_customer_digits(p + 8, 2))
    {
        return 0;
    }

    *y = ngx_atoi(p, 4);
    *m = ngx_atoi(p + 5, 2);
    *d = ngx_atoi(p + 8, 2);

    if (*y < 1 || *m < 1 || *m > 12 || *d < 1) {
        return 0;
    }

    days = mdays[*m - 1];

    if (*m == 2 && !((*y % 4 == 0 && *y % 100 != 0) || *y % 400 == 0)) {
        days = 28;
    }

    return *d <= days;
}


NGX_HTTP_CUSTOMER_CHECK(birth_date)
{
    ngx_int_t   rc;
    ngx_uint_t  date, today;

    rc = ngx_http_customer_day(ctx, path, v, 1, &date, &today);

    if (rc == NGX_OK && today - date > f->max * 10000) {
        return ngx_http_customer_failf(ctx, path,
                                       "Must be within the last %ui years",
                                       f->max, 0);
    }

    return rc;
}


/* a calendar date as YYYY-MM-DD; f->max 1: not after today (UTC) */

NGX_HTTP_CUSTOMER_CHECK(date)
{
    ngx_uint_t  date, today;

    return ngx_http_customer_day(ctx, path, v, f->max == 1, &date, &today);
}


/*
 * A calendar date as YYYY-MM-DD, with past not after today (UTC): it and
 * today as YYYYMMDD numbers
 */

static ngx_int_t
ngx_http_customer_day(ngx_http_customer_ctx_t *ctx, ngx_str_t *path,
    ngx_http_customer_json_t *v, ngx_uint_t past, ngx_uint_t *date,
    ngx_uint_t *today)
{
    ngx_tm_t    tm;
    ngx_uint_t  y, m, d;

    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING || v->str.len != 10
        || !ngx_http_customer_date(v->str.data, &y, &m, &d))
    {
        return ngx_http_customer_fail(ctx, path,
                                      "Must be a date as YYYY-MM-DD");
    }

    ngx_gmtime(ngx_time(), &tm);

    *date = y * 10000 + m * 100 + d;
    *today = tm.ngx_tm_year * 10000 + tm.ngx_tm_mon * 100 + tm.ngx_tm_mday;

    if (past && *date > *today) {
        return ngx_http_customer_fail(ctx, path,
                                      "Must not be in the future");
    }

    return NGX_OK;
}


/* a model year: from the first car (1886) to next year */

NGX_HTTP_CUSTOMER_CHECK(year)
{
    ngx_int_t  n;
    ngx_tm_t   tm;

    ngx_gmtime(ngx_time(), &tm);

    n = NGX_ERROR;

    if (v->type == NGX_HTTP_CUSTOMER_JSON_NUMBER && v->str.len == 4) {
        n = ngx_atoi(v->str.data, v->str.len);
    }

    if (n < 1886 || n > tm.ngx_tm_year + 1) {
        return ngx_http_customer_failf(ctx, path,
                                       "Must be a year from 1886 to %ui",
                                       (ngx_uint_t) tm.ngx_tm_year + 1, 0);
    }

    return NGX_OK;
}


/*
 * A VIN (ISO 3779): 17 of the digits and capitals but I, O and Q.  The
 * check digit in position 9 (letters transliterated to numbers, weighted
 * by position, the sum modulo 11, 10 written X) is mandatory only where
 * the country of the manufacturer's WMI requires it: North America (a
 * first character 1 to 5, FMVSS 115) and China (L, GB 16735).  Elsewhere,
 * Europe's W, V, Z, S and India's M among them, position 9 may hold any
 * VIN character; the vehicle's vinCheckDigitValid says whether it is a
 * right check digit anyway.  Lower case is accepted and made upper case
 * in place.
 */

NGX_HTTP_CUSTOMER_CHECK(vin)
{
    u_char      c, *p;
    ngx_uint_t  i, sum, n;

    static ngx_uint_t  weights[] = { 8, 7, 6, 5, 4, 3, 2, 10, 0,
                                     9, 8, 7, 6, 5, 4, 3, 2 };

    /* A..Z; 0 for I, O, Q, which a VIN never contains */
    static ngx_uint_t  values[] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4,
                                    5, 0, 7, 0, 9, 2, 3, 4, 5, 6, 7, 8, 9 };

    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING || v->str.len != 17) {
        return ngx_http_customer_fail(ctx, path,
                                      "Must be a VIN of 17 characters");
    }

    p = v->str.data;
    sum = 0;

    for (i = 0; i < 17; i++) {
        c = ngx_toupper(p[i]);
        p[i] = c;

        if (c >= '0' && c <= '9') {
            n = c - '0';

        } else if (c >= 'A' && c <= 'Z' && values[c - 'A']) {
            n = values[c - 'A'];

        } else {
            return ngx_http_customer_fail(ctx, path,
                                          "Must contain only digits and "
                                          "letters other than I, O and Q");
        }

        sum += n * weights[i];
    }

    sum %= 11;

    if (((p[0] >= '1' && p[0] <= '5') || p[0] == 'L')
        && p[8] != (sum == 10 ? 'X' : '0' + sum))
    {
        return ngx_http_customer_fail(ctx, path,
                                      "The check digit (position 9) does "
                                      "not match: not a valid VIN for a "
                                      "North American or Chinese "
                                      "manufacturer");
    }

    return NGX_OK;
}


NGX_HTTP_CUSTOMER_CHECK(timestamp)
{
    u_char      *p, *last;
    ngx_uint_t   y, m, d;

    /* RFC 3339: 2026-01-20T14:30:00(.000)?(Z|+05:30) */

    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING || v->str.len < 20
        || v->str.len > 35)
    {
        goto invalid;
    }

    p = v->str.data;
    last = p + v->str.len;

    if (!ngx_http_customer_date(p, &y, &m, &d) || y < 1900 || y > 9999
        || (p[10] != 'T' && p[10] != 't')
        || !ngx_http_customer_digits(p + 11, 2) || p[13] != ':'
        || !ngx_http_customer_digits(p + 14, 2) || p[16] != ':'
        || !ngx_http_customer_digits(p + 17, 2)
        || ngx_atoi(p + 11, 2) > 23 || ngx_atoi(p + 14, 2) > 59
        || ngx_atoi(p + 17, 2) > 59)
    {
        goto invalid;
    }

    p += 19;

    if (*p == '.') {
        p++;

        if (p == last || *p < '0' || *p > '9') {
            goto invalid;
        }

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (last - p == 1 && (*p == 'Z' || *p == 'z')) {
        return NGX_OK;
    }

    if (last - p == 6 && (*p == '+' || *p == '-')
        && ngx_http_customer_digits(p + 1, 2) && p[3] == ':'
        && ngx_http_customer_digits(p + 4, 2)
        && ngx_atoi(p + 1, 2) <= 23 && ngx_atoi(p + 4, 2) <= 59)
    {
        return NGX_OK;
    }

invalid:

    return ngx_http_customer_fail(ctx, path,
                                  "Must be an RFC 3339 timestamp such as "
                                  "2026-01-20T14:30:00.000Z");
}


NGX_HTTP_CUSTOMER_CHECK(language)
{
    u_char      *p, *last;
    ngx_uint_t   n, first;

    /* BCP 47 shape: a 2-3 letter language, then 1-8 alphanumeric subtags */

    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING || v->str.len > 35) {
        goto invalid;
    }

    p = v->str.data;
    last = p + v->str.len;
    n = 0;
    first = 1;

    for ( /* void */ ; p <= last; p++) {

        if (p == last || *p == '-') {
            if (first ? (n < 2 || n > 3) : (n < 1 || n > 8)) {
                goto invalid;
            }

            first = 0;
            n = 0;
            continue;
        }

        if (first ? !isalpha(*p) : !isalnum(*p)) {
            goto invalid;
        }

        n++;
    }

    return NGX_OK;

invalid:

    return ngx_http_customer_fail(ctx, path,
                                  "Must be a BCP 47 language tag such as "
                                  "en or en-IN");
}


NGX_HTTP_CUSTOMER_CHECK(country)
{
    return ngx_http_customer_capitals(ctx, path, v, 2, "Must be an ISO "
                                      "3166-1 alpha-2 country code such as IN");
}


/* ISO 4217: exactly three upper-case letters */

NGX_HTTP_CUSTOMER_CHECK(currency)
{
    return ngx_http_customer_capitals(ctx, path, v, 3, "Must be an ISO "
                                      "4217 currency code: three upper-case "
                                      "letters");
}


/* a string of exactly n upper-case ASCII letters, or the message */

static ngx_int_t
ngx_http_customer_capitals(ngx_http_customer_ctx_t *ctx, ngx_str_t *path,
    ngx_http_customer_json_t *v, size_t n, const char *message)
{
    size_t  i;

    i = 0;

    if (v->type == NGX_HTTP_CUSTOMER_JSON_STRING && v->str.len == n) {
        while (i < n && v->str.data[i] >= 'A' && v->str.data[i] <= 'Z') {
            i++;
        }
    }

    return i == n ? NGX_OK : ngx_http_customer_fail(ctx, path, message);
}


NGX_HTTP_CUSTOMER_CHECK(tags)
{
    static ngx_http_customer_field_t  tag = {
        "tag", ngx_http_customer_check_line, 0, 1, 50, NULL, NULL
    };

    return ngx_http_customer_items(ctx, path, v, f, &tag, "Duplicate tag",
                                   0);
}


/*
 * An array of at most f->max items, each checked as the field item says
 * and, with a duplicate message, unique (among strings only when typed)
 */

static ngx_int_t
ngx_http_customer_items(ngx_http_customer_ctx_t *ctx, ngx_str_t *path,
    ngx_http_customer_json_t *v, ngx_http_customer_field_t *f,
    ngx_http_customer_field_t *item, const char *duplicate, ngx_uint_t typed)
{
    ngx_int_t                  rc, i;
    ngx_str_t                 *p;
    ngx_http_customer_json_t  *t, *u;

    if (v->type != NGX_HTTP_CUSTOMER_JSON_ARRAY) {
        return ngx_http_customer_fail(ctx, path, "Must be an array");
    }

    if (v->n > f->max) {
        return ngx_http_customer_failf(ctx, path,
                                       "Must have at most %ui items",
                                       f->max, 0);
    }

    rc = NGX_OK;
    i = 0;

    for (t = v->child; t; t = t->next, i++) {
        p = ngx_http_customer_path(ctx, path, NULL, i);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (item->check(ctx, p, t, item) != NGX_OK) {
            rc = NGX_DECLINED;
            continue;
        }

        for (u = v->child; duplicate && u != t; u = u->next) {
            if ((!typed || u->type == NGX_HTTP_CUSTOMER_JSON_STRING)
                && u->str.len == t->str.len
                && ngx_strncmp(u->str.data, t->str.data, t->str.len) == 0)
            {
                rc = ngx_http_customer_fail(ctx, p, duplicate);
                break;
            }
        }
    }

    return rc;
}


NGX_HTTP_CUSTOMER_CHECK(object)
{
    if (v->type != NGX_HTTP_CUSTOMER_JSON_OBJECT) {
        return ngx_http_customer_fail(ctx, path, "Must be an object");
    }

    return ngx_http_customer_validate(ctx, path, v, f->fields, 1);
}


NGX_HTTP_CUSTOMER_CHECK(objects)
{
    ngx_http_customer_field_t  item;

    item = *f;
    item.check = ngx_http_customer_check_object;

    return ngx_http_customer_items(ctx, path, v, f, &item, NULL, 0);
}


/* a time of day as HH:MM, 00:00 to 23:59 */

NGX_HTTP_CUSTOMER_CHECK(clock)
{
    u_char  *p;

    p = v->str.data;

    if (v->type != NGX_HTTP_CUSTOMER_JSON_STRING || v->str.len != 5
        || !ngx_http_customer_digits(p, 2) || p[2] != ':'
        || !ngx_http_customer_digits(p + 3, 2)
        || ngx_atoi(p, 2) > 23 || ngx_atoi(p + 3, 2) > 59)
    {
        return ngx_http_customer_fail(ctx, path,
                                      "Must be a time of day as HH:MM "
                                      "from 00:00 to 23:59");
    }

    return NGX_OK;
}


/*
 * An array of at most f->max unique strings, each checked as the field
 * f->fields points to (its check, lengths and enum values).
 */

NGX_HTTP_CUSTOMER_CHECK(set)
{
    return ngx_http_customer_items(ctx, path, v, f, f->fields,
                                   "Duplicate item", 1);
}

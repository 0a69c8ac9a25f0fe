
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_validate.h"
#include "ngx_http_customer_router.h"


/*
 * Preferences (communication channels, privacy, language, theme, service
 * days and times, marketing consent: the defaults below), validated here
 * for the customer record's "preferences" member and for the preferences
 * routes.
 * The customer row keeps what was given; reads fill in the defaults in
 * SQL (nested groups member by member), so the C side only passes the
 * jsonb on.  PUT replaces the stored object in one UPDATE that checks
 * If-Match against the row's version.
 */


/* every group with its default; a read merges the stored object over it */
#define NGX_HTTP_CUSTOMER_PREFERENCE_DEFAULTS                                \
    "'{\"communication\": {\"email\": true, \"sms\": false,"                \
    " \"push\": false}, \"newsletter\": false, \"notifications\": true,"    \
    " \"language\": \"en\", \"theme\": \"system\","                         \
    " \"preferredServiceDays\": [], \"preferredServiceTimes\": [],"         \
    " \"dietaryRestrictions\": [], \"marketingOptIn\": false,"              \
    " \"privacy\": {\"dataSharing\": false,"                                \
    " \"analyticsConsent\": false}}'::jsonb"

/* the stored object p over the defaults d, the two nested groups merged */
#define NGX_HTTP_CUSTOMER_PREFERENCES_OF(p)                                  \
    "d || " p " || jsonb_build_object("                                     \
    "'communication', (d->'communication')"                                 \
    " || coalesce(" p "->'communication', '{}'),"                           \
    " 'privacy', (d->'privacy') || coalesce(" p "->'privacy', '{}'))"

#define NGX_HTTP_CUSTOMER_PREFERENCES_GET_SQL(key)                           \
    NGX_HTTP_CUSTOMER_PG_SHARED(1,                                          \
    "SELECT c.id, " NGX_HTTP_CUSTOMER_PREFERENCES_OF("c.preferences")       \
    ", c.version FROM customers c,"                                         \
    " (SELECT " NGX_HTTP_CUSTOMER_PREFERENCE_DEFAULTS " AS d) s"            \
    " WHERE c." key " = $1")

/*
 * $1 id (or userId), $2 the preferences, $3 If-Match version or NULL,
 * $4 who.  The last column tells a missing row (NULL) from a stale
 * version when no row was updated.
 */
#define NGX_HTTP_CUSTOMER_PREFERENCES_PUT_SQL(key)                           \
    NGX_HTTP_CUSTOMER_PG_WRITE(4,                                           \
    "WITH cur AS (SELECT version FROM customers WHERE " key " = $1),"       \
    " u AS (UPDATE customers SET preferences = $2::jsonb,"                  \
    " updated_at = now(), updated_by = $4, version = version + 1"           \
    " WHERE " key " = $1"                                                   \
    " AND ($3::integer IS NULL OR version = $3::integer)"                   \
    " RETURNING id, preferences, version)"                                  \
    " SELECT u.id, " NGX_HTTP_CUSTOMER_PREFERENCES_OF("u.preferences")      \
    ", u.version, (SELECT version FROM cur)"                                \
    " FROM (SELECT " NGX_HTTP_CUSTOMER_PREFERENCE_DEFAULTS " AS d) s"       \
    " LEFT JOIN u ON true")

#define NGX_HTTP_CUSTOMER_PREFERENCES_NCOLUMNS  3   /* the last: version */


static NGX_HTTP_CUSTOMER_CHECK(windows);
static ngx_int_t ngx_http_customer_minutes(ngx_http_customer_json_t *v);


static const char  *ngx_http_customer_themes[] = {
    "light", "dark", "system", NULL
};

static const char  *ngx_http_customer_weekdays[] = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday", NULL
};


static ngx_http_customer_field_t  ngx_http_customer_communication_fields[] = {
    NGX_HTTP_CUSTOMER_OPTIONAL("email", bool, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("sms", bool, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("push", bool, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_END
};

static ngx_http_customer_field_t  ngx_http_customer_privacy_fields[] = {
    NGX_HTTP_CUSTOMER_OPTIONAL("dataSharing", bool, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("analyticsConsent", bool, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_END
};

/* one of preferredServiceTimes: start before end, both HH:MM */
static ngx_http_customer_field_t  ngx_http_customer_window_fields[] = {
    NGX_HTTP_CUSTOMER_REQUIRED("start", clock, 0, 0),
    NGX_HTTP_CUSTOMER_REQUIRED("end", clock, 0, 0),
    NGX_HTTP_CUSTOMER_FIELDS_END
};

/* the items of the two sets */
static ngx_http_customer_field_t  ngx_http_customer_weekday =
    NGX_HTTP_CUSTOMER_ONE_OF("day", OPTIONAL, ngx_http_customer_weekdays);

static ngx_http_customer_field_t  ngx_http_customer_restriction = {
    "restriction", ngx_http_customer_check_line, 0, 1, 50, NULL, NULL
};


/* the members of "preferences" (customers.c validates the record with it) */
ngx_http_customer_field_t  ngx_http_customer_preference_fields[] = {
    { "communication", ngx_http_customer_check_object, 0, 0, 0, NULL,
      ngx_http_customer_communication_fields },
    NGX_HTTP_CUSTOMER_OPTIONAL("newsletter", bool, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("notifications", bool, 0, 0),
    NGX_HTTP_CUSTOMER_OPTIONAL("language", language, 0, 0),
    NGX_HTTP_CUSTOMER_ONE_OF("theme", OPTIONAL, ngx_http_customer_themes),
    { "preferredServiceDays", ngx_http_customer_check_set, 0, 0, 7, NULL,
      &ngx_http_customer_weekday },
    { "preferredServiceTimes", ngx_http_customer_check_windows, 0, 0, 7,
      NULL, ngx_http_customer_window_fields },
    { "dietaryRestrictions", ngx_http_customer_check_set, 0, 0, 20, NULL,
      &ngx_http_customer_restriction },
    NGX_HTTP_CUSTOMER_OPTIONAL("marketingOptIn", bool, 0, 0),
    { "privacy", ngx_http_customer_check_object, 0, 0, 0, NULL,
      ngx_http_customer_privacy_fields },
    NGX_HTTP_CUSTOMER_FIELDS_END
};


static ngx_http_customer_column_t  ngx_http_customer_preferences_columns[] = {
    { "customerId", NGX_HTTP_CUSTOMER_COL_STRING },
    { "preferences", NGX_HTTP_CUSTOMER_COL_JSON }
};


static ngx_http_customer_pg_stmt_t  ngx_http_customer_preferences_get_sql =
    NGX_HTTP_CUSTOMER_PREFERENCES_GET_SQL("id");

static ngx_http_customer_pg_stmt_t  ngx_http_customer_preferences_me_sql =
    NGX_HTTP_CUSTOMER_PREFERENCES_GET_SQL("user_id");

static ngx_http_customer_pg_stmt_t  ngx_http_customer_preferences_put_sql =
    NGX_HTTP_CUSTOMER_PREFERENCES_PUT_SQL("id");

static ngx_http_customer_pg_stmt_t  ngx_http_customer_preferences_me_put_sql =
    NGX_HTTP_CUSTOMER_PREFERENCES_PUT_SQL("user_id");


static ngx_http_customer_refusal_t  ngx_http_customer_preferences_stale =
    NGX_HTTP_CUSTOMER_STALE_OF("customer");


/* {customerId, preferences} with the customer's version as the ETag */
#define NGX_HTTP_CUSTOMER_PREFERENCES_ANSWER                                 \
    .columns = ngx_http_customer_preferences_columns,                        \
    .ncolumns = NGX_HTTP_CUSTOMER_PREFERENCES_NCOLUMNS - 1, .etag = 1,       \
    .version = NGX_HTTP_CUSTOMER_PREFERENCES_NCOLUMNS - 1

/* the preferences of the customer that key names */
#define NGX_HTTP_CUSTOMER_PREFERENCES_GET(sql, key)                          \
    .stmt = sql, .params = { key },                                          \
    .message = "Preferences retrieved successfully",                         \
    NGX_HTTP_CUSTOMER_PREFERENCES_ANSWER

/* the body is the preferences object; a bad id is listed before it */
#define NGX_HTTP_CUSTOMER_PREFERENCES_PUT(sql, key)                          \
    .stmt = sql,                                                             \
    .fields = ngx_http_customer_preference_fields, .partial = 1,             \
    .ids_first = 1,                                                          \
    .params = { key, NGX_HTTP_CUSTOMER_PARAM(JSON),                          \
                NGX_HTTP_CUSTOMER_PARAM(IF_MATCH),                           \
                NGX_HTTP_CUSTOMER_PARAM(SUB) },                              \
    .message = "Preferences updated successfully",                           \
    NGX_HTTP_CUSTOMER_PREFERENCES_ANSWER,                                    \
    .refused = &ngx_http_customer_preferences_stale,                         \
    .exists = NGX_HTTP_CUSTOMER_PREFERENCES_NCOLUMNS


/* literal paths before the "{}" patterns that would also match them */
ngx_http_customer_route_t  ngx_http_customer_preferences_routes[] = {
    { NGX_HTTP_GET, "/api/customers/me/preferences",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_PREFERENCES_GET(&ngx_http_customer_preferences_me_sql,
                                        NGX_HTTP_CUSTOMER_PARAM(ME)) },
    { NGX_HTTP_PUT, "/api/customers/me/preferences",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 1, 0,
      NGX_HTTP_CUSTOMER_PREFERENCES_PUT(
          &ngx_http_customer_preferences_me_put_sql,
          NGX_HTTP_CUSTOMER_PARAM(ME)) },
    { NGX_HTTP_GET, "/api/customers/{}/preferences",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      NGX_HTTP_CUSTOMER_PREFERENCES_GET(&ngx_http_customer_preferences_get_sql,
                                        NGX_HTTP_CUSTOMER_CUSTOMER_ID) },
    { NGX_HTTP_PUT, "/api/customers/{}/preferences",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_PREFERENCES_PUT(&ngx_http_customer_preferences_put_sql,
                                        NGX_HTTP_CUSTOMER_CUSTOMER_ID) },
    NGX_HTTP_CUSTOMER_ROUTES_END
};


/* preferredServiceTimes: up to f->max {start, end}, start before end */

static NGX_HTTP_CUSTOMER_CHECK(windows)
{
    ngx_int_t                  rc, start, end;
    ngx_str_t                  item;
    ngx_uint_t                 i;
    ngx_http_customer_json_t  *w;

    rc = ngx_http_customer_check_objects(ctx, path, v, f);

    if (v->type != NGX_HTTP_CUSTOMER_JSON_ARRAY || v->n > f->max
        || rc == NGX_ERROR)
    {
        return rc;
    }

    for (w = v->child, i = 0; w; w = w->next, i++) {

        if (w->type != NGX_HTTP_CUSTOMER_JSON_OBJECT) {
            continue;
        }

        start = ngx_http_customer_minutes(
                    ngx_http_customer_json_member(w, "start"));
        end = ngx_http_customer_minutes(
                    ngx_http_customer_json_member(w, "end"));

        /* a missing or malformed time has its own error already */

        if (start < 0 || end < 0 || start < end) {
            continue;
        }

        item.data = ngx_pnalloc(ctx->request->pool,
                                path->len + NGX_INT_T_LEN + sizeof("[].end"));
        if (item.data == NULL) {
            return NGX_ERROR;
        }

        item.len = ngx_sprintf(item.data, "%V[%ui].end", path, i)
                   - item.data;

        if (ngx_http_customer_fail(ctx, &item, "Must be later than start")
            == NGX_ERROR)
        {
            return NGX_ERROR;
        }

        rc = NGX_DECLINED;
    }

    return rc;
}


/* HH:MM as minutes after midnight; -1 for anything else */

static ngx_int_t
ngx_http_customer_minutes(ngx_http_customer_json_t *v)
{
    ngx_int_t  h, m;

    if (v == NULL || v->type != NGX_HTTP_CUSTOMER_JSON_STRING
        || v->str.len != 5 || v->str.data[2] != ':')
    {
        return -1;
    }

    h = ngx_atoi(v->str.data, 2);
    m = ngx_atoi(v->str.data + 3, 2);

    if (h == NGX_ERROR || m == NGX_ERROR || h > 23 || m > 59) {
        return -1;
    }

    return h * 60 + m;
}

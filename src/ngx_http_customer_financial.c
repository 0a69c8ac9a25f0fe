
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
 * The financial profile of a customer: at most one per
 * customer, in financial_profiles.  An Administrator creates it (POST) or
 * creates or replaces it (PUT, If-Match against the profile's version);
 * each is one statement that also tells a missing customer, an existing
 * profile or a stale version from success.  The debt-to-income ratio and
 * the net worth are computed in SQL on every answer, never stored.  A
 * Customer reads its own through /me.
 */


/* the profile f as the answer's columns, in the order of the table below */
#define NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS                                  \
    "f.customer_id, f.annual_income, f.monthly_debts, f.total_assets,"      \
    " f.total_liabilities, f.employment_status, f.employer, f.currency,"    \
    " round(f.monthly_debts * 12 / nullif(f.annual_income, 0), 4),"         \
    " f.total_assets - f.total_liabilities, api_ts(f.created_at),"          \
    " api_ts(f.updated_at), f.version"

/* after the 13 columns: the customer's id, NULL when there is none */
#define NGX_HTTP_CUSTOMER_FINANCIAL_CUSTOMER  13

/* no row: no such customer; NULL columns: the customer has no profile */
#define NGX_HTTP_CUSTOMER_FINANCIAL_GET(key)                                 \
    NGX_HTTP_CUSTOMER_PG_SHARED(1,                                          \
    "SELECT " NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS                           \
    " FROM customers c"                                                     \
    " LEFT JOIN financial_profiles f ON f.customer_id = c.id"              \
    " WHERE c." key " = $1")

/* $2..$8 the fields, $9 who */
#define NGX_HTTP_CUSTOMER_FINANCIAL_INSERT                                   \
    " INSERT INTO financial_profiles AS p (customer_id, annual_income,"     \
    " monthly_debts, total_assets, total_liabilities, employment_status,"   \
    " employer, currency, updated_by)"                                      \
    " SELECT c.id, $2::numeric, $3::numeric, $4::numeric, $5::numeric,"     \
    " $6::text, nullif($7::text, ''), $8::text, $9::text FROM c"


static const char  *ngx_http_customer_employment_statuses[] = {
    "employed", "self-employed", "unemployed", "retired", "student", NULL
};


/* the profile's columns and members (see router.h) */
#define NGX_HTTP_CUSTOMER_FINANCIAL(column, field)                           \
    column("customerId", STRING)                                             \
    field("annualIncome", NUMBER, REQUIRED, money, 0, 0, NULL)               \
    field("monthlyDebts", NUMBER, REQUIRED, money, 0, 0, NULL)               \
    field("totalAssets", NUMBER, REQUIRED, money, 0, 0, NULL)                \
    field("totalLiabilities", NUMBER, REQUIRED, money, 0, 0, NULL)           \
    field("employmentStatus", STRING, REQUIRED, enum, 0, 0,                  \
          ngx_http_customer_employment_statuses)                             \
    field("employer", STRING, NULLABLE, line, 0, 200, NULL)                 \
    field("currency", STRING, REQUIRED, currency, 0, 0, NULL)                \
    column("debtToIncomeRatio", NUMBER)                                      \
    column("netWorth", NUMBER)                                               \
    column("createdAt", STRING)                                              \
    column("updatedAt", STRING)                                              \
    column("version", NUMBER)

/* both POST and PUT take the whole profile */
static ngx_http_customer_field_t  ngx_http_customer_financial_fields[] = {
    NGX_HTTP_CUSTOMER_FIELDS_OF(NGX_HTTP_CUSTOMER_FINANCIAL)
};


static ngx_http_customer_column_t  ngx_http_customer_financial_columns[] = {
    NGX_HTTP_CUSTOMER_COLUMNS_OF(NGX_HTTP_CUSTOMER_FINANCIAL)
};


static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_get_sql =
    NGX_HTTP_CUSTOMER_FINANCIAL_GET("id");

static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_me_sql =
    NGX_HTTP_CUSTOMER_FINANCIAL_GET("user_id");

/*
 * $1 customer id, $2..$8 the fields, $9 who.  Always one row: NULL
 * columns when nothing was inserted, then the customer's id (NULL: no
 * such customer, otherwise the profile existed).
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_create_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(9,
    "WITH c AS (SELECT id FROM customers WHERE id = $1),"
    " f AS (" NGX_HTTP_CUSTOMER_FINANCIAL_INSERT
    " ON CONFLICT (customer_id) DO NOTHING RETURNING p.*)"
    " SELECT " NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS ", (SELECT id FROM c)"
    " FROM (SELECT 1) s LEFT JOIN f ON true");

/*
 * As create, $10 the If-Match version or NULL.  A version given for a
 * profile that does not exist inserts nothing: NULL columns with the
 * customer's id are a stale version either way.  The last column tells
 * an insert (xmax 0) from a replacement.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_financial_put_sql =
    NGX_HTTP_CUSTOMER_PG_WRITE(10,
    "WITH c AS (SELECT id FROM customers WHERE id = $1),"
    " f AS (" NGX_HTTP_CUSTOMER_FINANCIAL_INSERT
    " WHERE $10::integer IS NULL OR EXISTS (SELECT 1 FROM financial_profiles"
    " WHERE customer_id = c.id)"
    " ON CONFLICT (customer_id) DO UPDATE SET"
    " annual_income = excluded.annual_income,"
    " monthly_debts = excluded.monthly_debts,"
    " total_assets = excluded.total_assets,"
    " total_liabilities = excluded.total_liabilities,"
    " employment_status = excluded.employment_status,"
    " employer = excluded.employer, currency = excluded.currency,"
    " updated_at = now(), updated_by = excluded.updated_by,"
    " version = p.version + 1"
    " WHERE $10::integer IS NULL OR p.version = $10::integer"
    " RETURNING p.*, (p.xmax = 0) AS created)"
    " SELECT " NGX_HTTP_CUSTOMER_FINANCIAL_COLUMNS ", (SELECT id FROM c),"
    " f.created FROM (SELECT 1) s LEFT JOIN f ON true");


#define NGX_HTTP_CUSTOMER_FINANCIAL_PARAMS                                   \
    NGX_HTTP_CUSTOMER_CUSTOMER_ID,                                           \
    NGX_HTTP_CUSTOMER_NAMED(BODY, "annualIncome"),                           \
    NGX_HTTP_CUSTOMER_NAMED(BODY, "monthlyDebts"),                           \
    NGX_HTTP_CUSTOMER_NAMED(BODY, "totalAssets"),                            \
    NGX_HTTP_CUSTOMER_NAMED(BODY, "totalLiabilities"),                       \
    NGX_HTTP_CUSTOMER_NAMED(BODY, "employmentStatus"),                       \
    NGX_HTTP_CUSTOMER_NAMED(BODY, "employer"),                               \
    NGX_HTTP_CUSTOMER_NAMED(BODY, "currency"),                               \
    NGX_HTTP_CUSTOMER_PARAM(SUB)

/* NULL columns: the customer has no profile, or one already */
static ngx_http_customer_refusal_t  ngx_http_customer_financial_none = {
    NGX_HTTP_NOT_FOUND, "Financial profile not found", "financialProfile",
    "The customer has no financial profile", NULL
};

static ngx_http_customer_refusal_t  ngx_http_customer_financial_exists = {
    NGX_HTTP_CONFLICT, "Financial profile already exists",
    "financialProfile",
    "The customer has a financial profile; replace it with PUT", NULL
};

static ngx_http_customer_refusal_t  ngx_http_customer_financial_stale =
    NGX_HTTP_CUSTOMER_STALE_OF("financial profile");


/* the profile with its version as the ETag */
#define NGX_HTTP_CUSTOMER_FINANCIAL_PROFILE                                  \
    NGX_HTTP_CUSTOMER_ROW_OF(ngx_http_customer_financial_columns), .etag = 1

/* the whole profile written; no customer is 404 */
#define NGX_HTTP_CUSTOMER_FINANCIAL_WRITE(sql)                               \
    .fields = ngx_http_customer_financial_fields, .stmt = &sql,              \
    NGX_HTTP_CUSTOMER_FINANCIAL_PROFILE,                                     \
    .exists = NGX_HTTP_CUSTOMER_FINANCIAL_CUSTOMER

#define NGX_HTTP_CUSTOMER_FINANCIAL_READ                                     \
    .message = "Financial profile retrieved successfully",                   \
    NGX_HTTP_CUSTOMER_FINANCIAL_PROFILE,                                     \
    .refused = &ngx_http_customer_financial_none


/* the literal /me path before the "{}" pattern that would also match it */
ngx_http_customer_route_t  ngx_http_customer_financial_routes[] = {
    { NGX_HTTP_GET, "/api/customers/me/financial-profile",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      .stmt = &ngx_http_customer_financial_me_sql,
      .params = { NGX_HTTP_CUSTOMER_PARAM(ME) },
      NGX_HTTP_CUSTOMER_FINANCIAL_READ },
    { NGX_HTTP_GET, "/api/customers/{}/financial-profile",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 0, 0,
      .stmt = &ngx_http_customer_financial_get_sql,
      .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID },
      NGX_HTTP_CUSTOMER_FINANCIAL_READ },
    { NGX_HTTP_POST, "/api/customers/{}/financial-profile",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_FINANCIAL_WRITE(ngx_http_customer_financial_create_sql),
      .params = { NGX_HTTP_CUSTOMER_FINANCIAL_PARAMS },
      .status = NGX_HTTP_CREATED,
      .message = "Financial profile created successfully",
      .refused = &ngx_http_customer_financial_exists },
    { NGX_HTTP_PUT, "/api/customers/{}/financial-profile",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_ADMIN, 1, 0,
      NGX_HTTP_CUSTOMER_FINANCIAL_WRITE(ngx_http_customer_financial_put_sql),
      .params = { NGX_HTTP_CUSTOMER_FINANCIAL_PARAMS,
                  NGX_HTTP_CUSTOMER_PARAM(IF_MATCH) },
      .message = "Financial profile updated successfully",
      .created = "Financial profile created successfully",
      .refused = &ngx_http_customer_financial_stale },
    NGX_HTTP_CUSTOMER_ROUTES_END
};

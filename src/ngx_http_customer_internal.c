
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_router.h"


/*
 * The reads of the partner services, on a service key: the Loan
 * Application service reads a customer with its financial profile, its
 * credit status and its recent credit history in one answer; the Risk
 * Assessment service reads the same without the personal data (no
 * email, phone, addresses or national id); the Credit Score service
 * reads the credit status alone.  Each is one statement.
 */


/* credit history entries a partner read includes, newest first */
#define NGX_HTTP_CUSTOMER_INTERNAL_HISTORY  "10"


/* the customer record c, as GET /api/customers/{id} answers a service */
#define NGX_HTTP_CUSTOMER_INTERNAL_RECORD                                    \
    "json_build_object('customerId', c.id, 'userId', c.user_id,"            \
    " 'email', c.email, 'fullName', c.full_name,"                           \
    " 'contactNumber', c.contact_number,"                                   \
    " 'dateOfBirth', c.date_of_birth::text, 'nationalId', c.national_id,"   \
    " 'addresses', c.addresses, 'emergencyContact', c.emergency_contact,"   \
    " 'business', c.business, 'customerStatus', c.customer_status,"        \
    " 'customerType', c.customer_type, 'isVerified', c.is_verified,"        \
    " 'totalOrders', c.total_orders,"                                       \
    " 'totalOrderValue', c.total_order_value,"                              \
    " 'totalComplaints', c.total_complaints,"                               \
    " 'openComplaints', c.open_complaints,"                                 \
    " 'lastOrderDate', api_ts(c.last_order_date),"                          \
    " 'lastComplaintDate', api_ts(c.last_complaint_date),"                  \
    " 'customerSince', api_ts(c.customer_since), 'notes', c.notes,"         \
    " 'tags', to_json(c.tags), 'preferences', c.preferences,"               \
    " 'metadata', c.metadata, 'createdAt', api_ts(c.created_at),"           \
    " 'updatedAt', api_ts(c.updated_at), 'createdBy', c.created_by,"        \
    " 'updatedBy', c.updated_by, 'verifiedAt', api_ts(c.verified_at),"      \
    " 'verifiedBy', c.verified_by,"                                         \
    " 'emergencyContacts', c.emergency_contacts,"                           \
    " 'isBusiness', c.business IS NOT NULL, 'version', c.version)"

/*
 * The financial profile f with its derived values, as GET
 * .../financial-profile answers it, or null without one.
 */
#define NGX_HTTP_CUSTOMER_INTERNAL_FINANCIAL                                 \
    "CASE WHEN f.customer_id IS NOT NULL THEN json_build_object("           \
    "'customerId', f.customer_id, 'annualIncome', f.annual_income,"         \
    " 'monthlyDebts', f.monthly_debts, 'totalAssets', f.total_assets,"      \
    " 'totalLiabilities', f.total_liabilities,"                             \
    " 'employmentStatus', f.employment_status, 'employer', f.employer,"     \
    " 'currency', f.currency, 'debtToIncomeRatio',"                         \
    " round(f.monthly_debts * 12 / nullif(f.annual_income, 0), 4),"         \
    " 'netWorth', f.total_assets - f.total_liabilities,"                    \
    " 'createdAt', api_ts(f.created_at),"                                   \
    " 'updatedAt', api_ts(f.updated_at), 'version', f.version) END"

/* the credit status s, or null before any score */
#define NGX_HTTP_CUSTOMER_INTERNAL_CREDIT                                    \
    "CASE WHEN s.customer_id IS NOT NULL THEN json_build_object("           \
    "'creditScore', s.credit_score, 'band', s.band, 'source', s.source,"    \
    " 'lastUpdated', api_ts(s.last_updated)) END"

/* the latest history rows of the customer c, newest first */
#define NGX_HTTP_CUSTOMER_INTERNAL_HISTORY_JSON                              \
    "(SELECT coalesce(json_agg(json_build_object('historyId', h.id,"        \
    " 'creditScore', h.credit_score, 'previousScore', h.previous_score,"    \
    " 'band', h.band, 'previousBand', h.previous_band, 'source', h.source," \
    " 'changedBy', h.changed_by, 'changedAt', api_ts(h.changed_at))"        \
    " ORDER BY h.changed_at DESC, h.id DESC), '[]')"                        \
    " FROM (SELECT * FROM credit_history WHERE customer_id = c.id"          \
    " ORDER BY changed_at DESC, id DESC"                                    \
    " LIMIT " NGX_HTTP_CUSTOMER_INTERNAL_HISTORY ") h)"

#define NGX_HTTP_CUSTOMER_INTERNAL_FROM                                      \
    " FROM customers c"                                                     \
    " LEFT JOIN financial_profiles f ON f.customer_id = c.id"              \
    " LEFT JOIN credit_status s ON s.customer_id = c.id"                    \
    " WHERE c.id = $1"


/* $1 customer id.  No row: no such customer. */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_internal_get_sql =
    NGX_HTTP_CUSTOMER_PG_READ(1,
    "SELECT json_build_object('customer', "
    NGX_HTTP_CUSTOMER_INTERNAL_RECORD ","
    " 'financialProfile', " NGX_HTTP_CUSTOMER_INTERNAL_FINANCIAL ","
    " 'creditStatus', " NGX_HTTP_CUSTOMER_INTERNAL_CREDIT ","
    " 'creditHistory', " NGX_HTTP_CUSTOMER_INTERNAL_HISTORY_JSON ")"
    NGX_HTTP_CUSTOMER_INTERNAL_FROM);


/*
 * $1 customer id.  The standing of the customer without its personal
 * data, the age in whole years from the date of birth (null without
 * one), and the score's change over the last 90 days (null without a
 * score that old).
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_internal_risk_sql =
    NGX_HTTP_CUSTOMER_PG_READ(1,
    "SELECT json_build_object('customerId', c.id, 'userId', c.user_id,"
    " 'customerStatus', c.customer_status,"
    " 'customerType', c.customer_type, 'isVerified', c.is_verified,"
    " 'customerSince', api_ts(c.customer_since),"
    " 'ageYears', extract(year FROM age(current_date, c.date_of_birth))"
    "::integer,"
    " 'totalOrders', c.total_orders,"
    " 'totalOrderValue', c.total_order_value,"
    " 'totalComplaints', c.total_complaints,"
    " 'openComplaints', c.open_complaints,"
    " 'financialProfile', " NGX_HTTP_CUSTOMER_INTERNAL_FINANCIAL ","
    " 'creditStatus', " NGX_HTTP_CUSTOMER_INTERNAL_CREDIT ","
    " 'scoreChange90Days', s.credit_score - (SELECT p.credit_score"
    " FROM credit_history p WHERE p.customer_id = c.id"
    " AND p.changed_at <= now() - interval '90 days'"
    " ORDER BY p.changed_at DESC, p.id DESC LIMIT 1),"
    " 'creditHistory', " NGX_HTTP_CUSTOMER_INTERNAL_HISTORY_JSON ")"
    NGX_HTTP_CUSTOMER_INTERNAL_FROM);


/* a statement's JSON for the customer of the path's id */
#define NGX_HTTP_CUSTOMER_INTERNAL(sql, text)                                \
    .params = { NGX_HTTP_CUSTOMER_CUSTOMER_ID },                             \
    NGX_HTTP_CUSTOMER_AS_JSON(sql, text)

/*
 * after the customers' and status tables: "/api/customers/internal/{}"
 * would take their literal "internal/create" and "internal/outbox"
 */
ngx_http_customer_route_t  ngx_http_customer_internal_routes[] = {
    { NGX_HTTP_GET, "/api/customers/internal/{}",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 0, 0,
      NGX_HTTP_CUSTOMER_INTERNAL(&ngx_http_customer_internal_get_sql,
                                 "Customer retrieved successfully") },
    { NGX_HTTP_GET, "/api/customers/internal/{}/risk-profile",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SERVICE, 0, 0,
      NGX_HTTP_CUSTOMER_INTERNAL(&ngx_http_customer_internal_risk_sql,
                                 "Risk profile retrieved successfully") },
    /* GET .../internal/{}/credit-status is a row of credit.c's */
    NGX_HTTP_CUSTOMER_ROUTES_END
};

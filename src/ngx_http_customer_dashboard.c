
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_router.h"


/*
 * The customer dashboard: the profile summary, the vehicles with their
 * service status, the documents expiring within 30 days and the five
 * uploaded last, the latest important notes, the loyalty account and the
 * credit status, in one answer built by one statement: each part is a
 * jsonb sub-select, so the number of queries does not grow with the
 * number of vehicles, documents or notes.  PostgreSQL writes the whole
 * data object as JSON, which goes into the envelope as it is.  A
 * Customer reads only its own, and never private notes.
 */


#define NGX_HTTP_CUSTOMER_DASHBOARD_SQL(key)                                 \
    "SELECT json_build_object('customer',"                                   \
    " jsonb_build_object('customerId', c.id, 'userId', c.user_id,"           \
    " 'fullName', c.full_name, 'email', c.email,"                            \
    " 'contactNumber', c.contact_number,"                                    \
    " 'customerStatus', c.customer_status,"                                  \
    " 'customerType', c.customer_type, 'isVerified', c.is_verified,"         \
    " 'customerSince', api_ts(c.customer_since),"                            \
    " 'totalOrders', c.total_orders,"                                        \
    " 'totalOrderValue', c.total_order_value),"                              \
    " 'vehicles', (SELECT coalesce(jsonb_agg(jsonb_build_object("            \
    " 'vehicleId', v.id, 'make', v.make, 'model', v.model,"                 \
    " 'year', v.year,"                                                       \
    " 'vin', v.vin, 'licensePlate', v.license_plate,"                        \
    " 'mileage', v.mileage, 'serviceStatus', service_status(v))"             \
    " ORDER BY v.created_at, v.id), '[]')"                                   \
    " FROM vehicles v WHERE v.customer_id = c.id),"                          \
    " 'expiringDocuments', (SELECT coalesce(jsonb_agg(jsonb_build_object("   \
    " 'documentId', d.id, 'type', d.type, 'title', d.title,"                 \
    " 'vehicleId', d.vehicle_id, 'expiresAt', d.expires_at,"                 \
    " 'daysRemaining', d.expires_at - api_today())"                          \
    " ORDER BY d.expires_at, d.id), '[]') FROM documents d"                  \
    " WHERE d.customer_id = c.id"                                            \
    " AND d.expires_at BETWEEN api_today() AND api_today() + 30),"           \
    " 'recentDocuments', (SELECT coalesce(jsonb_agg(jsonb_build_object("     \
    " 'documentId', d.id, 'type', d.type, 'title', d.title,"                 \
    " 'vehicleId', d.vehicle_id, 'expiresAt', d.expires_at,"                 \
    " 'createdAt', api_ts(d.created_at))"                                    \
    " ORDER BY d.created_at DESC, d.id DESC), '[]')"                         \
    " FROM (SELECT * FROM documents WHERE customer_id = c.id"                \
    " ORDER BY created_at DESC, id DESC LIMIT 5) d),"                        \
    " 'importantNotes', (SELECT coalesce(jsonb_agg(jsonb_build_object("      \
    " 'noteId', n.id, 'content', n.content, 'noteType', n.note_type,"        \
    " 'isPrivate', n.is_private, 'createdAt', api_ts(n.created_at))"         \
    " ORDER BY n.created_at DESC, n.id DESC), '[]')"                         \
    " FROM (SELECT * FROM customer_notes WHERE customer_id = c.id"           \
    " AND is_important AND ($2::text IS NULL OR NOT is_private)"             \
    " ORDER BY created_at DESC, id DESC LIMIT 5) n),"                        \
    " 'loyalty', (SELECT jsonb_build_object('balance', a.balance,"           \
    " 'lifetimePoints', a.lifetime_points,"                                  \
    " 'tier', loyalty_tier(a.lifetime_points))"                              \
    " FROM loyalty_accounts a WHERE a.customer_id = c.id),"                  \
    " 'creditStatus', (SELECT jsonb_build_object("                           \
    " 'creditScore', s.credit_score, 'band', s.band,"                        \
    " 'lastUpdated', api_ts(s.last_updated))"                                \
    " FROM credit_status s WHERE s.customer_id = c.id))"                     \
    " FROM customers c WHERE c." key " = $1"                                 \
    " AND ($2::text IS NULL OR c.user_id = $2::text)"


/*
 * $1 the customer's id (or userId for /me), $2 a Customer's sub or NULL.
 * Index lookups only, taking no locks: a shared read, pipelined.
 */
static ngx_http_customer_pg_stmt_t  ngx_http_customer_dashboard_sql = {
    NGX_HTTP_CUSTOMER_DASHBOARD_SQL("id"), 2, 1, 0, "", 0, 0, 0, 1, 0, NULL
};

static ngx_http_customer_pg_stmt_t  ngx_http_customer_dashboard_me_sql = {
    NGX_HTTP_CUSTOMER_DASHBOARD_SQL("user_id"), 2, 1, 0, "", 0, 0, 0, 1, 0, NULL
};


/* the customer by its id (ID) or the caller's sub (ME), if it may see it */
#define NGX_HTTP_CUSTOMER_DASHBOARD(sql, from)                               \
    .params = { NGX_HTTP_CUSTOMER_NAMED(from, "customerId"),                 \
                NGX_HTTP_CUSTOMER_PARAM(OWN) },                              \
    NGX_HTTP_CUSTOMER_AS_JSON(sql, "Dashboard retrieved successfully")


/* the literal /me path before the "{}" pattern that would also match it */
ngx_http_customer_route_t  ngx_http_customer_dashboard_routes[] = {
    { NGX_HTTP_GET, "/api/customers/me/dashboard",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_DASHBOARD(&ngx_http_customer_dashboard_me_sql, ME) },
    { NGX_HTTP_GET, "/api/customers/{}/dashboard",
      ngx_http_customer_endpoint, NGX_HTTP_CUSTOMER_SELF, 0, 0,
      NGX_HTTP_CUSTOMER_DASHBOARD(&ngx_http_customer_dashboard_sql, ID) },
    NGX_HTTP_CUSTOMER_ROUTES_END
};

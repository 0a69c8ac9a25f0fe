
/*
 * Copyright (C) the customer platform authors
 */


/*
 * Every resource's request body, as its handler takes it: the first byte
 * picks the route (the field table and whether it creates), the rest is
 * the body.  It goes through what ngx_http_customer_body_handler() does
 * (strict UTF-8, the JSON parser, an object or nothing), then
 * ngx_http_customer_validate() with the route's own table, and when that
 * accepts it, what the handler makes of a valid body before its query:
 * the body as the $1 text (ngx_http_customer_body_param(), which must
 * parse again) or each member as a parameter.
 *
 * The resource files are included for their static field tables and
 * member helpers; status.c and customers.c each name a list of statuses
 * ngx_http_customer_statuses, so status.c's is renamed here.
 */


#include "harness.h"

#include "ngx_http_customer_validate.h"

#include "ngx_http_customer_credit.c"
#include "ngx_http_customer_customers.c"
#include "ngx_http_customer_documents.c"
#include "ngx_http_customer_financial.c"
#include "ngx_http_customer_loyalty.c"
#include "ngx_http_customer_notes.c"
#include "ngx_http_customer_preferences.c"
#include "ngx_http_customer_vehicles.c"

#define ngx_http_customer_statuses  ngx_http_customer_fuzz_statuses
#include "ngx_http_customer_status.c"
#undef ngx_http_customer_statuses


/* what a handler does with a body its table accepted */
#define NGX_HTTP_CUSTOMER_FUZZ_PARAM      0   /* body_param() */
#define NGX_HTTP_CUSTOMER_FUZZ_FINANCIAL  1   /* member_param() each */
#define NGX_HTTP_CUSTOMER_FUZZ_LOYALTY    2
#define NGX_HTTP_CUSTOMER_FUZZ_NOTES      3
#define NGX_HTTP_CUSTOMER_FUZZ_NONE       4


typedef struct {
    ngx_http_customer_field_t   *fields;
    ngx_uint_t                   create;
    ngx_uint_t                   after;     /* NGX_HTTP_CUSTOMER_FUZZ_* */
} ngx_http_customer_fuzz_route_t;


static ngx_http_customer_fuzz_route_t  ngx_http_customer_fuzz_routes[] = {
    /* POST /api/customers; PUT and PATCH of one */
    { ngx_http_customer_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    { ngx_http_customer_fields, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* PATCH /api/customers/me */
    { ngx_http_customer_me_fields, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* POST /api/internal/customers, from the Auth Service */
    { ngx_http_customer_internal_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* PATCH /api/customers/{id}/statistics */
    { ngx_http_customer_stats_fields, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* PATCH /api/customers/{id}/type */
    { ngx_http_customer_type_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* PUT .../credit-score, PATCH .../credit-alerts/{id} */
    { ngx_http_customer_credit_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_NONE },
    { ngx_http_customer_credit_read_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_NONE },
    /* POST and PUT .../financial-profile */
    { ngx_http_customer_financial_fields, 1,
      NGX_HTTP_CUSTOMER_FUZZ_FINANCIAL },
    /* POST .../loyalty/earn and /redeem */
    { ngx_http_customer_loyalty_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_LOYALTY },
    /* POST .../notes */
    { ngx_http_customer_note_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_NOTES },
    /* PUT .../preferences */
    { ngx_http_customer_preference_fields, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* PATCH .../status, POST .../deactivate */
    { ngx_http_customer_status_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_NONE },
    { ngx_http_customer_reason_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_NONE },
    /* POST .../vehicles, PUT and PATCH of one, its mileage, a record */
    { ngx_http_customer_vehicle_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    { ngx_http_customer_vehicle_fields, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    { ngx_http_customer_mileage_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    { ngx_http_customer_record_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* POST /api/vehicles, PATCH of a service record */
    { ngx_http_customer_vehicle_new_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    { ngx_http_customer_record_fields, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    /* POST /api/notes, PATCH of a note, PATCH of a document */
    { ngx_http_customer_note_new_fields, 1, NGX_HTTP_CUSTOMER_FUZZ_NOTES },
    { ngx_http_customer_note_fields, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
    { ngx_http_customer_document_meta, 0, NGX_HTTP_CUSTOMER_FUZZ_PARAM },
};


static ngx_uint_t  ngx_http_customer_fuzz_nroutes =
    sizeof(ngx_http_customer_fuzz_routes)
    / sizeof(ngx_http_customer_fuzz_route_t);


static const char  *ngx_http_customer_fuzz_financial[] = {
    "annualIncome", "monthlyDebts", "totalAssets", "totalLiabilities",
    "employmentStatus", "employer", "currency", NULL
};

static const char  *ngx_http_customer_fuzz_loyalty[] = {
    "points", "reason", "reference", NULL
};


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_http_customer_fuzz_init();

    /* makes the PATCH /me table out of the customer's */

    if (ngx_http_customer_customers_init((ngx_cycle_t *) ngx_cycle)
        != NGX_OK)
    {
        ngx_http_customer_fuzz_fail("customers_init() failed");
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          *p;
    char                            *text;
    ngx_int_t                        rc;
    ngx_str_t                        err;
    ngx_uint_t                       i, failed;
    const char                     **names;
    const char                      *value;
    ngx_http_customer_ctx_t         *ctx;
    ngx_http_customer_json_t        *again;
    ngx_http_customer_fuzz_route_t  *rt;

    if (size == 0) {
        return 0;
    }

    rt = &ngx_http_customer_fuzz_routes[data[0]
                                        % ngx_http_customer_fuzz_nroutes];
    data++;
    size--;

    ctx = ngx_http_customer_fuzz_ctx();

    p = ngx_http_customer_fuzz_copy(ctx->request->pool, data, size, 1);

    if (ngx_http_customer_utf8(p, size) != NGX_OK
        || ngx_http_customer_json_parse(ctx->request->pool, p, size,
                                        &ctx->body, &err)
           != NGX_OK
        || ctx->body == NULL
        || ctx->body->type != NGX_HTTP_CUSTOMER_JSON_OBJECT)
    {
        goto done;
    }

    rc = ngx_http_customer_validate(ctx, NULL, ctx->body, rt->fields,
                                    rt->create);

    if (rc == NGX_DECLINED && ctx->errors == NULL) {
        ngx_http_customer_fuzz_fail("a body refused without an error");
    }

    if (rc != NGX_OK) {
        goto done;
    }

    names = NULL;
    failed = 0;

    switch (rt->after) {

    case NGX_HTTP_CUSTOMER_FUZZ_PARAM:
        text = ngx_http_customer_body_param(ctx);

        if (text == NULL
            || ngx_http_customer_json_parse(ctx->request->pool,
                                            (u_char *) text, ngx_strlen(text),
                                            &again, &err)
               != NGX_OK)
        {
            ngx_http_customer_fuzz_fail("a valid body's text does not parse");
        }

        break;

    case NGX_HTTP_CUSTOMER_FUZZ_FINANCIAL:
    case NGX_HTTP_CUSTOMER_FUZZ_LOYALTY:
        names = (rt->after == NGX_HTTP_CUSTOMER_FUZZ_FINANCIAL)
                ? ngx_http_customer_fuzz_financial
                : ngx_http_customer_fuzz_loyalty;

        for (i = 0; names[i]; i++) {
            failed |= (ngx_http_customer_member_param(ctx, names[i], &value)
                       != NGX_OK);
        }

        break;

    case NGX_HTTP_CUSTOMER_FUZZ_NOTES:
        /* a note's members go to its statement through the route's row */
        break;

    default:
        break;
    }

    if (failed) {
        ngx_http_customer_fuzz_fail("a member helper failed");
    }

done:

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}


/*
 * Copyright (C) the customer platform authors
 */


/*
 * The VIN check of vehicles (ngx_http_customer_check_vin(), the "vin"
 * member of a vehicle's body), on a JSON string of any bytes.  An
 * accepted VIN is checked again here, independently: 17 characters,
 * digits and capitals but I, O and Q (lower case made upper in place),
 * and, for a WMI of North America (1 to 5) or China (L), the check digit
 * of ISO 3779 in position 9.
 */


#include "harness.h"

#include "ngx_http_customer_validate.h"


static ngx_int_t ngx_http_customer_fuzz_vin(u_char *vin);


NGX_HTTP_CUSTOMER_FUZZ_INITIALIZE


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_int_t                   rc;
    ngx_str_t                   path;
    ngx_uint_t                  valid;
    ngx_http_customer_ctx_t    *ctx;
    ngx_http_customer_json_t    v;
    ngx_http_customer_field_t   f;

    ctx = ngx_http_customer_fuzz_ctx();

    ngx_memzero(&v, sizeof(ngx_http_customer_json_t));
    ngx_memzero(&f, sizeof(ngx_http_customer_field_t));

    v.type = NGX_HTTP_CUSTOMER_JSON_STRING;
    v.str.len = size;
    v.str.data = ngx_http_customer_fuzz_copy(ctx->request->pool, data, size,
                                             1);
    f.name = "vin";
    ngx_str_set(&path, "vin");

    rc = ngx_http_customer_check_vin(ctx, &path, &v, &f);

    if (rc == NGX_DECLINED && ctx->errors == NULL) {
        ngx_http_customer_fuzz_fail("a VIN refused without an error");
    }

    valid = (size == 17 && ngx_http_customer_fuzz_vin(v.str.data) == NGX_OK);

    if ((rc == NGX_OK) != valid) {
        ngx_http_customer_fuzz_fail("the VIN check disagrees");
    }

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}


static ngx_int_t
ngx_http_customer_fuzz_vin(u_char *vin)
{
    u_char      *p;
    ngx_uint_t   i, sum, value;

    static u_char      letters[] = "ABCDEFGHJKLMNPRSTUVWXYZ";
    static ngx_uint_t  values[] = { 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5,
                                    7, 9, 2, 3, 4, 5, 6, 7, 8, 9 };
    static ngx_uint_t  weights[] = { 8, 7, 6, 5, 4, 3, 2, 10, 0,
                                     9, 8, 7, 6, 5, 4, 3, 2 };

    sum = 0;

    for (i = 0; i < 17; i++) {
        if (vin[i] >= '0' && vin[i] <= '9') {
            value = vin[i] - '0';

        } else if (vin[i] != '\0'
                   && (p = (u_char *) ngx_strchr(letters, vin[i])) != NULL)
        {
            value = values[p - letters];

        } else {
            return NGX_DECLINED;
        }

        sum += value * weights[i];
    }

    /* the check digit is mandatory for North America and China only */

    if (ngx_strchr("12345L", vin[0]) == NULL) {
        return NGX_OK;
    }

    return vin[8] == "0123456789X"[sum % 11] ? NGX_OK : NGX_DECLINED;
}


/*
 * Copyright (C) the customer platform authors
 */


/*
 * JWT parsing and verification, ngx_http_customer_verify_jwt(), with the
 * fixed test keys in fuzz/keys.  The first byte picks the configured
 * algorithm (bits 0-1: HS256, RS256, ES256), whether iss and aud are
 * configured (bit 3), and how the rest is used (bit 2):
 *
 *   0  the token itself, as it follows "Bearer ";
 *   1  "<header JSON>\0<claims JSON>", which the target encodes and signs
 *      with the algorithm's key (HS256 and ES256; RS256 signing is too
 *      slow to do per input, its seeds carry valid signatures instead),
 *      so that the claims are reached behind a valid signature.
 *
 * Every token is verified twice: the second time it comes from the
 * worker's cache of verified tokens and must give the same answer.  An
 * accepted token must name a subject of 1 to 128 bytes, NUL-terminated
 * for libpq, and at least one role.
 */


#include "harness.h"

#include <openssl/ecdsa.h>
#include <openssl/pem.h>


#define NGX_HTTP_CUSTOMER_FUZZ_ISSUER    "https://auth.example.com"
#define NGX_HTTP_CUSTOMER_FUZZ_AUDIENCE  "customer-service"


static EVP_PKEY *ngx_http_customer_fuzz_pem(const char *name,
    ngx_uint_t private);
static ngx_int_t ngx_http_customer_fuzz_sign(ngx_pool_t *pool,
    ngx_uint_t alg, u_char *data, size_t size, ngx_str_t *token);
static ngx_int_t ngx_http_customer_fuzz_es256(u_char *input, size_t len,
    u_char *sig);


/* HS256, RS256, ES256; each with and without iss and aud */
static ngx_http_customer_auth_conf_t  ngx_http_customer_fuzz_conf[6];
static EVP_PKEY                      *ngx_http_customer_fuzz_es_key;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_str_t                       secret;
    ngx_uint_t                      i;
    ngx_http_customer_auth_conf_t  *acf;

    ngx_http_customer_fuzz_init();

    secret = ngx_http_customer_fuzz_file("keys/hs256.secret");

    while (secret.len && (secret.data[secret.len - 1] == '\n'
                          || secret.data[secret.len - 1] == '\r'))
    {
        secret.len--;
    }

    for (i = 0; i < 6; i++) {
        acf = &ngx_http_customer_fuzz_conf[i];
        acf->leeway = 30;

        switch (i % 3) {
        case 0:
            acf->alg = NGX_HTTP_CUSTOMER_JWT_HS256;
            ngx_str_set(&acf->alg_name, "HS256");
            acf->secret = secret;
            break;
        case 1:
            acf->alg = NGX_HTTP_CUSTOMER_JWT_RS256;
            ngx_str_set(&acf->alg_name, "RS256");
            acf->key = ngx_http_customer_fuzz_pem("keys/rs256.pub.pem", 0);
            break;
        default:
            acf->alg = NGX_HTTP_CUSTOMER_JWT_ES256;
            ngx_str_set(&acf->alg_name, "ES256");
            acf->key = ngx_http_customer_fuzz_pem("keys/es256.pub.pem", 0);
            break;
        }

        if (i >= 3) {
            ngx_str_set(&acf->issuer, NGX_HTTP_CUSTOMER_FUZZ_ISSUER);
            ngx_str_set(&acf->audience, NGX_HTTP_CUSTOMER_FUZZ_AUDIENCE);
        }
    }

    ngx_http_customer_fuzz_es_key =
                         ngx_http_customer_fuzz_pem("keys/es256.key.pem", 1);

    if (ngx_http_customer_jwt_cache_init((ngx_cycle_t *) ngx_cycle)
        != NGX_OK)
    {
        ngx_http_customer_fuzz_fail("jwt_cache_init() failed");
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_int_t                       rc, rc2;
    ngx_str_t                       token;
    ngx_uint_t                      alg;
    const char                     *reason, *reason2;
    ngx_http_request_t             *r;
    ngx_http_customer_ctx_t        *ctx;
    ngx_http_customer_auth_conf_t  *acf;
    ngx_http_customer_principal_t   who, who2;

    if (size == 0) {
        return 0;
    }

    alg = (data[0] & 3) % 3;
    acf = &ngx_http_customer_fuzz_conf[alg + ((data[0] & 8) ? 3 : 0)];

    ctx = ngx_http_customer_fuzz_ctx();
    r = ctx->request;

    if ((data[0] & 4) && acf->alg != NGX_HTTP_CUSTOMER_JWT_RS256) {
        if (ngx_http_customer_fuzz_sign(r->pool, acf->alg,
                                        (u_char *) data + 1, size - 1,
                                        &token)
            != NGX_OK)
        {
            goto done;
        }

    } else {
        token.len = size - 1;
        token.data = ngx_http_customer_fuzz_copy(r->pool, data + 1, size - 1,
                                                 0);
    }

    ngx_memzero(&who, sizeof(ngx_http_customer_principal_t));
    ngx_memzero(&who2, sizeof(ngx_http_customer_principal_t));
    reason = NULL;
    reason2 = NULL;

    rc = ngx_http_customer_verify_jwt(r, acf, &token, &who, &reason);
    rc2 = ngx_http_customer_verify_jwt(r, acf, &token, &who2, &reason2);

    if (rc != rc2) {
        ngx_http_customer_fuzz_fail("the cache answered otherwise");
    }

    if (rc != NGX_OK) {
        if (reason == NULL) {
            ngx_http_customer_fuzz_fail("a token refused without reason");
        }

        goto done;
    }

    if (who.sub.len == 0 || who.sub.len > 128
        || who.sub.data[who.sub.len] != '\0'
        || ngx_strlen(who.sub.data) != who.sub.len || who.roles == 0)
    {
        ngx_http_customer_fuzz_fail("an accepted token's principal");
    }

    if (who.sub.len != who2.sub.len || who.roles != who2.roles
        || ngx_memcmp(who.sub.data, who2.sub.data, who.sub.len + 1) != 0)
    {
        ngx_http_customer_fuzz_fail("the cache gave another principal");
    }

done:

    ngx_http_customer_fuzz_done(ctx);

    return 0;
}


static EVP_PKEY *
ngx_http_customer_fuzz_pem(const char *name, ngx_uint_t private)
{
    BIO        *bio;
    EVP_PKEY   *key;
    ngx_str_t   pem;

    pem = ngx_http_customer_fuzz_file(name);

    bio = BIO_new_mem_buf(pem.data, (int) pem.len);
    if (bio == NULL) {
        ngx_http_customer_fuzz_fail("BIO_new_mem_buf() failed");
    }

    key = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                  : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (key == NULL) {
        ngx_http_customer_fuzz_fail("a key in fuzz/keys does not load");
    }

    return key;
}


/* "<header>\0<claims>" as a token signed with the configured key */

static ngx_int_t
ngx_http_customer_fuzz_sign(ngx_pool_t *pool, ngx_uint_t alg, u_char *data,
    size_t size, ngx_str_t *token)
{
    u_char        *nul, *p, sig[64];
    size_t         siglen;
    ngx_str_t      src, dst;
    unsigned int   maclen;

    nul = ngx_strlchr(data, data + size, '\0');
    if (nul == NULL) {
        nul = data + size;
    }

    token->data = ngx_pnalloc(pool, ngx_base64_encoded_length(size)
                                    + ngx_base64_encoded_length(64) + 4);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    src.data = data;
    src.len = nul - data;
    dst.data = token->data;
    ngx_encode_base64url(&dst, &src);
    p = token->data + dst.len;
    *p++ = '.';

    src.data = (nul < data + size) ? nul + 1 : nul;
    src.len = data + size - src.data;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    if (alg == NGX_HTTP_CUSTOMER_JWT_HS256) {
        if (HMAC(EVP_sha256(), ngx_http_customer_fuzz_conf[0].secret.data,
                 (int) ngx_http_customer_fuzz_conf[0].secret.len,
                 token->data, p - token->data, sig, &maclen)
            == NULL)
        {
            return NGX_ERROR;
        }

        siglen = maclen;

    } else {
        if (ngx_http_customer_fuzz_es256(token->data, p - token->data, sig)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        siglen = 64;
    }

    *p++ = '.';

    src.data = sig;
    src.len = siglen;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    token->len = p - token->data;

    return NGX_OK;
}


/* an ES256 signature as JWS has it: r || s, 32 bytes each */

static ngx_int_t
ngx_http_customer_fuzz_es256(u_char *input, size_t len, u_char *sig)
{
    int             ok;
    size_t          dlen;
    u_char          der[128];
    ECDSA_SIG      *es;
    EVP_MD_CTX     *md;
    const u_char   *p;
    const BIGNUM   *br, *bs;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    dlen = sizeof(der);
    ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
                            ngx_http_customer_fuzz_es_key) == 1
         && EVP_DigestSign(md, der, &dlen, input, len) == 1;

    EVP_MD_CTX_free(md);

    if (!ok) {
        return NGX_ERROR;
    }

    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long) dlen);
    if (es == NULL) {
        return NGX_ERROR;
    }

    ECDSA_SIG_get0(es, &br, &bs);

    ok = BN_bn2binpad(br, sig, 32) == 32 && BN_bn2binpad(bs, sig + 32, 32)
                                            == 32;
    ECDSA_SIG_free(es);

    return ok ? NGX_OK : NGX_ERROR;
}

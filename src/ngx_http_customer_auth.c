
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "ngx_http_customer_module.h"


/*
 * JWTs are checked in the worker: the header's alg must be the configured
 * one (so "none" and HS256-signed-with-the-public-key are refused before
 * any key is used), the signature is verified before a claim is read, and
 * every OpenSSL object lives only inside one call.  Keys and secrets are
 * read at configuration time and freed with the configuration's pool.
 *
 * A client sends the same token with every request until it expires, so
 * each worker keeps the tokens it verified (a slot per token hash, up to
 * NGX_HTTP_CUSTOMER_JWT_CACHED bytes each) with the claims it used; a
 * hit compares the whole token in constant time and checks exp and nbf
 * again, and skips the signature and the JSON.
 */


typedef struct {
    size_t              len;          /* 0: empty slot */
    double              exp;
    double              nbf;
    ngx_uint_t          roles;
    size_t              sub_len;
    u_char              sub[129];
    u_char              token[NGX_HTTP_CUSTOMER_JWT_CACHED];
} ngx_http_customer_jwt_slot_t;


static ngx_int_t ngx_http_customer_read_conf_file(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *out);
static void ngx_http_customer_pkey_cleanup(void *data);
static ngx_int_t ngx_http_customer_b64(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_str_t *out);
static ngx_int_t ngx_http_customer_verify_sig(
    ngx_http_customer_auth_conf_t *acf, u_char *input, size_t len,
    ngx_str_t *sig);
static ngx_int_t ngx_http_customer_str_is(ngx_http_customer_json_t *v,
    ngx_str_t *s);
static ngx_int_t ngx_http_customer_role(ngx_http_customer_json_t *v,
    ngx_uint_t *roles);
static ngx_int_t ngx_http_customer_verify_claims(ngx_http_request_t *r,
    ngx_http_customer_auth_conf_t *acf, ngx_str_t *token,
    ngx_http_customer_principal_t *who, const char **reason,
    double *exp, double *nbf);


static ngx_http_customer_jwt_slot_t  *ngx_http_customer_jwt_cache;

/* the route classes of service keys, in the order of their bits */
static ngx_str_t  ngx_http_customer_scope_names[] = {
    ngx_string("internal:read"),
    ngx_string("internal:write"),
    ngx_string("loyalty"),
    ngx_string("credit"),
    ngx_null_string
};


char *
ngx_http_customer_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_customer_main_conf_t  *cmcf = conf;

    int                             type;
    BIO                            *bio;
    EVP_PKEY                       *key;
    ngx_str_t                      *value, data;
    ngx_pool_cleanup_t             *cln;
    ngx_http_customer_auth_conf_t  *acf;

    acf = &cmcf->auth;

    if (acf->alg) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "HS256") == 0) {
        acf->alg = NGX_HTTP_CUSTOMER_JWT_HS256;
        type = EVP_PKEY_HMAC;

    } else if (ngx_strcmp(value[1].data, "RS256") == 0) {
        acf->alg = NGX_HTTP_CUSTOMER_JWT_RS256;
        type = EVP_PKEY_RSA;

    } else if (ngx_strcmp(value[1].data, "ES256") == 0) {
        acf->alg = NGX_HTTP_CUSTOMER_JWT_ES256;
        type = EVP_PKEY_EC;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_jwt\" algorithm must be HS256, RS256 "
                           "or ES256, not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    acf->alg_name = value[1];

    if (ngx_http_customer_read_conf_file(cf, &value[2], &data) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (type == EVP_PKEY_HMAC) {

        while (data.len && (data.data[data.len - 1] == '\n'
                            || data.data[data.len - 1] == '\r'))
        {
            data.len--;
        }

        if (data.len < 32) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"customer_jwt\" HS256 secret in \"%V\" is "
                               "shorter than 32 bytes", &value[2]);
            return NGX_CONF_ERROR;
        }

        acf->secret = data;
        return NGX_CONF_OK;
    }

    bio = BIO_new_mem_buf(data.data, (int) data.len);
    if (bio == NULL) {
        return NGX_CONF_ERROR;
    }

    key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_jwt\" cannot read a PEM public key "
                           "from \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(key);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_customer_pkey_cleanup;
    cln->data = key;

    if (EVP_PKEY_base_id(key) != type
        || (type == EVP_PKEY_EC
            && (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_jwt\" key in \"%V\" is not a%s key",
                           &value[2],
                           type == EVP_PKEY_RSA ? "n RSA" : " P-256 EC");
        return NGX_CONF_ERROR;
    }

    acf->key = key;

    return NGX_CONF_OK;
}


/*
 * The service keys file: one key a line, and after it, optionally, the
 * route classes the key may use and a name for the log:
 *
 *     # key                         classes                  name
 *     3b9c...f1d2                   internal:read credit     name=risk
 *
 * A line without classes may use every internal route.  Words are
 * separated by spaces or tabs; "#" starts a comment, on a line of its own
 * or after the key.  A key is at least 16 characters.
 */

char *
ngx_http_customer_service_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_customer_main_conf_t  *cmcf = conf;

    u_char                           *p, *last, *start, *end, *w;
    size_t                            len;
    ngx_str_t                        *value, data;
    ngx_uint_t                        line, i;
    ngx_http_customer_service_key_t  *key, *k;

    if (cmcf->auth.service_keys) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_customer_read_conf_file(cf, &value[1], &data) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cmcf->auth.service_keys = ngx_array_create(cf->pool, 2,
                                     sizeof(ngx_http_customer_service_key_t));
    if (cmcf->auth.service_keys == NULL) {
        return NGX_CONF_ERROR;
    }

    p = data.data;
    last = p + data.len;
    line = 0;

    while (p < last) {
        start = p;
        line++;

        while (p < last && *p != '\n') {
            p++;
        }

        end = p++;
        key = NULL;

        /* the words of the line, up to a comment */

        for ( ;; ) {
            while (start < end && (*start == ' ' || *start == '\t'
                                   || *start == '\r'))
            {
                start++;
            }

            if (start == end || *start == '#') {
                break;
            }

            w = start;

            while (start < end && *start != ' ' && *start != '\t'
                   && *start != '\r')
            {
                start++;
            }

            len = start - w;

            if (key == NULL) {
                if (len < 16) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"customer_service_keys\": a key in "
                                       "\"%V\" is shorter than 16 "
                                       "characters (line %ui)", &value[1],
                                       line);
                    return NGX_CONF_ERROR;
                }

                key = ngx_array_push(cmcf->auth.service_keys);
                if (key == NULL) {
                    return NGX_CONF_ERROR;
                }

                ngx_memzero(key, sizeof(ngx_http_customer_service_key_t));
                key->key.data = w;
                key->key.len = len;

                continue;
            }

            if (len > 5 && ngx_strncmp(w, "name=", 5) == 0) {
                key->name.data = w + 5;
                key->name.len = len - 5;
                continue;
            }

            for (i = 0; ngx_http_customer_scope_names[i].len; i++) {
                if (len == ngx_http_customer_scope_names[i].len
                    && ngx_strncmp(w, ngx_http_customer_scope_names[i].data,
                                   len) == 0)
                {
                    break;
                }
            }

            if (ngx_http_customer_scope_names[i].len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"customer_service_keys\": unknown "
                                   "route class \"%*s\" on line %ui of "
                                   "\"%V\" (internal:read, internal:write, "
                                   "loyalty, credit, or name=...)",
                                   len, w, line, &value[1]);
                return NGX_CONF_ERROR;
            }

            key->scopes |= (ngx_uint_t) 1 << i;
        }

        if (key == NULL) {
            continue;
        }

        if (key->scopes == 0) {
            key->scopes = NGX_HTTP_CUSTOMER_SCOPE_ALL;
        }

        if (key->name.len == 0) {
            key->name.data = ngx_pnalloc(cf->pool, sizeof("line ") - 1
                                                   + NGX_INT_T_LEN);
            if (key->name.data == NULL) {
                return NGX_CONF_ERROR;
            }

            key->name.len = ngx_sprintf(key->name.data, "line %ui", line)
                            - key->name.data;
        }

        /* the same key twice: which classes would count? */

        k = cmcf->auth.service_keys->elts;

        for (i = 0; i + 1 < cmcf->auth.service_keys->nelts; i++) {
            if (k[i].key.len == key->key.len
                && ngx_strncmp(k[i].key.data, key->key.data, key->key.len)
                   == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"customer_service_keys\": the key on "
                                   "line %ui of \"%V\" is there twice (%V)",
                                   line, &value[1], &k[i].name);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (cmcf->auth.service_keys->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_service_keys\": no key in \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the file the directive names (made a full path in place), read whole */

static ngx_int_t
ngx_http_customer_read_conf_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out)
{
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value;
    ngx_file_info_t   fi;

    value = cf->args->elts;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    /* configuration time: blocking reads are fine here */

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot open \"%V\"", &value[0], name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 65536)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot use \"%V\" (not a file, or over "
                           "64 KB)", &value[0], name);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    out->len = ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, out->data, out->len);
    ngx_close_file(fd);

    if (n != (ssize_t) out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot read \"%V\"", &value[0], name);
        return NGX_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}


static void
ngx_http_customer_pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
}


static ngx_int_t
ngx_http_customer_b64(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    ngx_str_t  src;

    src.data = p;
    src.len = len;

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(len) + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(out, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}


ngx_int_t
ngx_http_customer_jwt_cache_init(ngx_cycle_t *cycle)
{
    ngx_http_customer_jwt_cache = ngx_pcalloc(cycle->pool,
                                     NGX_HTTP_CUSTOMER_JWT_CACHE
                                     * sizeof(ngx_http_customer_jwt_slot_t));

    return ngx_http_customer_jwt_cache ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_customer_verify_jwt(ngx_http_request_t *r,
    ngx_http_customer_auth_conf_t *acf, ngx_str_t *token,
    ngx_http_customer_principal_t *who, const char **reason)
{
    u_char                        *sub;
    double                         exp, nbf, now;
    ngx_int_t                      rc;
    ngx_http_customer_jwt_slot_t  *slot;

    slot = NULL;

    if (ngx_http_customer_jwt_cache
        && token->len <= NGX_HTTP_CUSTOMER_JWT_CACHED)
    {
        slot = &ngx_http_customer_jwt_cache[ngx_hash_key(token->data,
                                                         token->len)
                                            % NGX_HTTP_CUSTOMER_JWT_CACHE];

        if (slot->len == token->len
            && CRYPTO_memcmp(slot->token, token->data, token->len) == 0)
        {
            now = (double) ngx_time();

            if (now > slot->exp + acf->leeway) {
                *reason = "token expired";
                return NGX_DECLINED;
            }

            if (now + acf->leeway < slot->nbf) {
                *reason = "token not yet valid";
                return NGX_DECLINED;
            }

            sub = ngx_pnalloc(r->pool, slot->sub_len + 1);
            if (sub == NULL) {
                *reason = "out of memory";
                return NGX_ERROR;
            }

            ngx_memcpy(sub, slot->sub, slot->sub_len + 1);

            who->sub.data = sub;
            who->sub.len = slot->sub_len;
            who->roles = slot->roles;

            return NGX_OK;
        }
    }

    rc = ngx_http_customer_verify_claims(r, acf, token, who, reason, &exp,
                                         &nbf);

    if (rc == NGX_OK && slot) {
        slot->len = token->len;
        ngx_memcpy(slot->token, token->data, token->len);
        slot->exp = exp;
        slot->nbf = nbf;
        slot->roles = who->roles;
        slot->sub_len = who->sub.len;
        ngx_memcpy(slot->sub, who->sub.data, who->sub.len);
        slot->sub[who->sub.len] = '\0';
    }

    return rc;
}


static ngx_int_t
ngx_http_customer_verify_claims(ngx_http_request_t *r,
    ngx_http_customer_auth_conf_t *acf, ngx_str_t *token,
    ngx_http_customer_principal_t *who, const char **reason, double *expp,
    double *nbfp)
{
    u_char                    *p, *last, *dot1, *dot2;
    double                     exp, nbf, now;
    ngx_str_t                  header, payload, sig, err;
    ngx_http_customer_json_t  *h, *c, *v, *a;

    p = token->data;
    last = p + token->len;

    if (token->len == 0 || token->len > NGX_HTTP_CUSTOMER_JWT_MAX) {
        *reason = "token is empty or too long";
        return NGX_DECLINED;
    }

    dot1 = NULL;
    dot2 = NULL;

    for ( /* void */ ; p < last; p++) {
        if (*p == '.') {
            if (dot1 == NULL) {
                dot1 = p;

            } else if (dot2 == NULL) {
                dot2 = p;

            } else {
                *reason = "token has more than three parts";
                return NGX_DECLINED;
            }

            continue;
        }

        if (!(isalnum(*p) || *p == '-' || *p == '_')) {
            *reason = "token has a character outside base64url";
            return NGX_DECLINED;
        }
    }

    if (dot2 == NULL) {
        *reason = "token does not have three parts";
        return NGX_DECLINED;
    }

    if (ngx_http_customer_b64(r->pool, token->data, dot1 - token->data,
                              &header) != NGX_OK
        || ngx_http_customer_b64(r->pool, dot1 + 1, dot2 - dot1 - 1,
                                 &payload) != NGX_OK
        || ngx_http_customer_b64(r->pool, dot2 + 1, last - dot2 - 1, &sig)
           != NGX_OK)
    {
        *reason = "token part is not base64url";
        return NGX_DECLINED;
    }

    if (ngx_http_customer_utf8(header.data, header.len) != NGX_OK
        || ngx_http_customer_utf8(payload.data, payload.len) != NGX_OK)
    {
        *reason = "token part is not valid UTF-8";
        return NGX_DECLINED;
    }

    if (ngx_http_customer_json_parse(r->pool, header.data, header.len, &h,
                                     &err) != NGX_OK
        || h->type != NGX_HTTP_CUSTOMER_JSON_OBJECT)
    {
        *reason = "token header is not a JSON object";
        return NGX_DECLINED;
    }

    v = ngx_http_customer_json_member(h, "alg");

    if (v == NULL || !ngx_http_customer_str_is(v, &acf->alg_name)) {
        *reason = "token alg is not the configured one";
        return NGX_DECLINED;
    }

    if (ngx_http_customer_json_member(h, "crit")) {
        *reason = "token has critical header extensions";
        return NGX_DECLINED;
    }

    if (ngx_http_customer_verify_sig(acf, token->data, dot2 - token->data,
                                     &sig) != NGX_OK)
    {
        *reason = "token signature does not verify";
        return NGX_DECLINED;
    }

    /* the claims can be trusted from here on */

    if (ngx_http_customer_json_parse(r->pool, payload.data, payload.len, &c,
                                     &err) != NGX_OK
        || c->type != NGX_HTTP_CUSTOMER_JSON_OBJECT)
    {
        *reason = "token claims are not a JSON object";
        return NGX_DECLINED;
    }

    now = (double) ngx_time();

    v = ngx_http_customer_json_member(c, "exp");
    if (v == NULL || v->type != NGX_HTTP_CUSTOMER_JSON_NUMBER) {
        *reason = "token has no numeric exp";
        return NGX_DECLINED;
    }

    exp = strtod((char *) v->str.data, NULL);
    *expp = exp;
    *nbfp = 0;

    if (!(exp < 1e15) || now > exp + acf->leeway) {
        /* 1e400 is infinity: no token lives forever */
        *reason = "token expired";
        return NGX_DECLINED;
    }

    v = ngx_http_customer_json_member(c, "nbf");
    if (v) {
        if (v->type != NGX_HTTP_CUSTOMER_JSON_NUMBER) {
            *reason = "token nbf is not a number";
            return NGX_DECLINED;
        }

        nbf = strtod((char *) v->str.data, NULL);
        *nbfp = nbf;

        if (now + acf->leeway < nbf) {
            *reason = "token not yet valid";
            return NGX_DECLINED;
        }
    }

    if (acf->issuer.len) {
        v = ngx_http_customer_json_member(c, "iss");

        if (v == NULL || !ngx_http_customer_str_is(v, &acf->issuer)) {
            *reason = "token iss is not the configured issuer";
            return NGX_DECLINED;
        }
    }

    if (acf->audience.len) {
        v = ngx_http_customer_json_member(c, "aud");

        if (v && v->type == NGX_HTTP_CUSTOMER_JSON_ARRAY) {
            for (a = v->child; a; a = a->next) {
                if (ngx_http_customer_str_is(a, &acf->audience)) {
                    break;
                }
            }

            v = a;

        } else if (v && !ngx_http_customer_str_is(v, &acf->audience)) {
            v = NULL;
        }

        if (v == NULL) {
            *reason = "token aud does not name the configured audience";
            return NGX_DECLINED;
        }
    }

    v = ngx_http_customer_json_member(c, "sub");

    if (v == NULL || v->type != NGX_HTTP_CUSTOMER_JSON_STRING
        || v->str.len == 0 || v->str.len > 128
        || ngx_strlen(v->str.data) != v->str.len)
    {
        *reason = "token sub is missing or not a plain string";
        return NGX_DECLINED;
    }

    who->sub = v->str;
    who->roles = 0;

    v = ngx_http_customer_json_member(c, "role");
    a = ngx_http_customer_json_member(c, "roles");

    if ((v == NULL && a == NULL)
        || (v && ngx_http_customer_role(v, &who->roles) != NGX_OK)
        || (a && ngx_http_customer_role(a, &who->roles) != NGX_OK))
    {
        *reason = "token role is missing or unknown";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_customer_verify_sig(ngx_http_customer_auth_conf_t *acf,
    u_char *input, size_t len, ngx_str_t *sig)
{
    int             ok, dlen;
    u_char          mac[EVP_MAX_MD_SIZE], *der, *pd;
    BIGNUM         *br, *bs;
    ECDSA_SIG      *es;
    EVP_MD_CTX     *md;
    unsigned int    maclen;

    if (acf->alg == NGX_HTTP_CUSTOMER_JWT_HS256) {
        if (HMAC(EVP_sha256(), acf->secret.data, (int) acf->secret.len,
                 input, len, mac, &maclen) == NULL)
        {
            return NGX_ERROR;
        }

        if (sig->len != maclen || CRYPTO_memcmp(mac, sig->data, maclen) != 0)
        {
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    der = NULL;
    dlen = 0;

    if (acf->alg == NGX_HTTP_CUSTOMER_JWT_ES256) {

        /* JWS carries r || s; OpenSSL wants DER */

        if (sig->len != 64) {
            return NGX_DECLINED;
        }

        es = ECDSA_SIG_new();
        br = BN_bin2bn(sig->data, 32, NULL);
        bs = BN_bin2bn(sig->data + 32, 32, NULL);

        if (es == NULL || br == NULL || bs == NULL
            || ECDSA_SIG_set0(es, br, bs) != 1)
        {
            ECDSA_SIG_free(es);
            BN_free(br);
            BN_free(bs);
            return NGX_ERROR;
        }

        dlen = i2d_ECDSA_SIG(es, NULL);
        der = OPENSSL_malloc(dlen > 0 ? dlen : 1);

        if (dlen <= 0 || der == NULL) {
            ECDSA_SIG_free(es);
            OPENSSL_free(der);
            return NGX_ERROR;
        }

        pd = der;
        dlen = i2d_ECDSA_SIG(es, &pd);
        ECDSA_SIG_free(es);
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        OPENSSL_free(der);
        return NGX_ERROR;
    }

    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, acf->key) == 1
         && EVP_DigestVerify(md, der ? der : sig->data,
                             der ? (size_t) dlen : sig->len, input, len)
            == 1;

    EVP_MD_CTX_free(md);
    OPENSSL_free(der);

    return ok ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_customer_str_is(ngx_http_customer_json_t *v, ngx_str_t *s)
{
    return v->type == NGX_HTTP_CUSTOMER_JSON_STRING && v->str.len == s->len
           && ngx_strncmp(v->str.data, s->data, s->len) == 0;
}


static ngx_int_t
ngx_http_customer_role(ngx_http_customer_json_t *v, ngx_uint_t *roles)
{
    ngx_http_customer_json_t  *e;

    static ngx_str_t  customer = ngx_string("Customer");
    static ngx_str_t  admin = ngx_string("Administrator");

    if (v->type == NGX_HTTP_CUSTOMER_JSON_ARRAY) {
        if (v->n == 0) {
            return NGX_DECLINED;
        }

        for (e = v->child; e; e = e->next) {
            if (ngx_http_customer_role(e, roles) != NGX_OK) {
                return NGX_DECLINED;
            }
        }

        return NGX_OK;
    }

    if (ngx_http_customer_str_is(v, &customer)) {
        *roles |= NGX_HTTP_CUSTOMER_ROLE_CUSTOMER;
        return NGX_OK;
    }

    if (ngx_http_customer_str_is(v, &admin)) {
        *roles |= NGX_HTTP_CUSTOMER_ROLE_ADMIN;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* the line of the key given, or NULL */

ngx_http_customer_service_key_t *
ngx_http_customer_find_service_key(ngx_http_customer_auth_conf_t *acf,
    ngx_str_t *key)
{
    ngx_uint_t                        i;
    ngx_http_customer_service_key_t  *k, *found;

    if (acf->service_keys == NULL) {
        return NULL;
    }

    /* every key is compared, each in constant time */

    found = NULL;
    k = acf->service_keys->elts;

    for (i = 0; i < acf->service_keys->nelts; i++) {
        if (k[i].key.len == key->len
            && CRYPTO_memcmp(k[i].key.data, key->data, key->len) == 0)
        {
            found = &k[i];
        }
    }

    return found;
}


/* "internal:read" for NGX_HTTP_CUSTOMER_SCOPE_READ, ... */

const char *
ngx_http_customer_scope_name(ngx_uint_t scope)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_customer_scope_names[i].len; i++) {
        if (scope == ((ngx_uint_t) 1 << i)) {
            return (const char *) ngx_http_customer_scope_names[i].data;
        }
    }

    return "unknown";
}

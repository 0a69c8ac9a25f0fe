
/*
 * Copyright (C) the customer platform authors
 */


#ifndef _NGX_HTTP_CUSTOMER_AUTH_H_INCLUDED_
#define _NGX_HTTP_CUSTOMER_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>


/* who may call a route */
#define NGX_HTTP_CUSTOMER_PUBLIC       0
#define NGX_HTTP_CUSTOMER_ADMIN        1    /* Administrator token */
#define NGX_HTTP_CUSTOMER_SELF         2    /* Customer or Administrator */
#define NGX_HTTP_CUSTOMER_SERVICE      3    /* X-Service-API-Key */

/*
 * Route classes a service key may be limited to, a bit each: a line of
 * the service keys file names some, or none for every internal route.
 * A service-key route says its class in its row (scope); 0 there means
 * by method: internal:read for GET, internal:write for the others.
 */
#define NGX_HTTP_CUSTOMER_SCOPE_READ     0x01   /* internal:read */
#define NGX_HTTP_CUSTOMER_SCOPE_WRITE    0x02   /* internal:write */
#define NGX_HTTP_CUSTOMER_SCOPE_LOYALTY  0x04   /* loyalty */
#define NGX_HTTP_CUSTOMER_SCOPE_CREDIT   0x08   /* credit */
#define NGX_HTTP_CUSTOMER_SCOPE_ALL      0x0f

/* customer_auth */
#define NGX_HTTP_CUSTOMER_AUTH_OFF     0    /* a trusted caller */
#define NGX_HTTP_CUSTOMER_AUTH_JWT     1    /* bearer tokens, service keys */
#define NGX_HTTP_CUSTOMER_AUTH_HEADER  2    /* a gateway's header names the
                                               Customer */

/* roles, a bit each */
#define NGX_HTTP_CUSTOMER_ROLE_CUSTOMER  0x01
#define NGX_HTTP_CUSTOMER_ROLE_ADMIN     0x02

#define NGX_HTTP_CUSTOMER_JWT_HS256    1
#define NGX_HTTP_CUSTOMER_JWT_RS256    2
#define NGX_HTTP_CUSTOMER_JWT_ES256    3

#define NGX_HTTP_CUSTOMER_JWT_MAX      8192  /* longest token accepted */

/* per-worker cache of verified tokens: slots, and the longest kept */
#define NGX_HTTP_CUSTOMER_JWT_CACHE    1024
#define NGX_HTTP_CUSTOMER_JWT_CACHED   1024


typedef struct {
    ngx_uint_t          alg;          /* NGX_HTTP_CUSTOMER_JWT_* */
    ngx_str_t           alg_name;     /* "HS256", as tokens must say */
    ngx_str_t           secret;       /* HS256 */
    EVP_PKEY           *key;          /* RS256, ES256 public key */
    time_t              leeway;       /* seconds, for exp and nbf */
    ngx_str_t           issuer;       /* empty: not checked */
    ngx_str_t           audience;     /* empty: not checked */
    ngx_array_t        *service_keys; /* of ..._service_key_t */
} ngx_http_customer_auth_conf_t;


/* a line of the service keys file */
typedef struct {
    ngx_str_t           key;          /* first: the outbox trigger reads
                                         the first element as its key */
    ngx_uint_t          scopes;       /* NGX_HTTP_CUSTOMER_SCOPE_* */
    ngx_str_t           name;         /* for the log: name=, or "line N" */
} ngx_http_customer_service_key_t;


/* the caller, once authenticated */
typedef struct {
    ngx_str_t           sub;          /* token subject: Auth user id */
    ngx_uint_t          roles;        /* NGX_HTTP_CUSTOMER_ROLE_* */
    unsigned            service:1;    /* came with a service key */
} ngx_http_customer_principal_t;


char *ngx_http_customer_jwt(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_customer_service_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_customer_verify_jwt(ngx_http_request_t *r,
    ngx_http_customer_auth_conf_t *acf, ngx_str_t *token,
    ngx_http_customer_principal_t *who, const char **reason);
ngx_int_t ngx_http_customer_jwt_cache_init(ngx_cycle_t *cycle);
ngx_http_customer_service_key_t *ngx_http_customer_find_service_key(
    ngx_http_customer_auth_conf_t *acf, ngx_str_t *key);
const char *ngx_http_customer_scope_name(ngx_uint_t scope);


#endif /* _NGX_HTTP_CUSTOMER_AUTH_H_INCLUDED_ */

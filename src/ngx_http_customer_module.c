
/*
 * Copyright (C) the customer platform authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_customer_module.h"
#include "ngx_http_customer_customers.h"
#include "ngx_http_customer_events.h"
#include "ngx_http_customer_intake.h"
#include "ngx_http_customer_metrics.h"
#include "ngx_http_customer_replica.h"
#include "ngx_http_customer_router.h"
#include "ngx_http_customer_status.h"


/* the first members of the access module's location configuration */
typedef struct {
    ngx_array_t                    *rules;
#if (NGX_HAVE_INET6)
    ngx_array_t                    *rules6;
#endif
#if (NGX_HAVE_UNIX_DOMAIN)
    ngx_array_t                    *rules_un;
#endif
} ngx_http_customer_access_rules_t;


static void *ngx_http_customer_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_customer_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_customer_conf_rules(ngx_conf_t *cf,
    ngx_http_customer_main_conf_t *cmcf);
static void *ngx_http_customer_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_customer_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_customer_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_customer_shm_init(ngx_shm_zone_t *zone,
    void *data);
static char *ngx_http_customer_bounds(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_customer_db(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_customer_db_replica(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_customer_conninfo(ngx_conf_t *cf, ngx_str_t *conninfo,
    ngx_str_t *hostaddr, ngx_str_t *name);
static char *ngx_http_customer_db_hosts(ngx_conf_t *cf, const char *host,
    ngx_str_t *hostaddr);
static ngx_int_t ngx_http_customer_db_name(ngx_conf_t *cf, const char *host,
    const char *port, ngx_str_t *name);
static char *ngx_http_customer_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_customer_outbox_trigger(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_customer_auth_mode(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_customer_guarded(ngx_conf_t *cf,
    ngx_http_customer_loc_conf_t *conf);
static char *ngx_http_customer_cors_origins(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_customer_init_process(ngx_cycle_t *cycle);
static void ngx_http_customer_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_customer_pool_bounds = {
    ngx_http_customer_bounds, 1, 1024
};

static ngx_conf_num_bounds_t  ngx_http_customer_pipeline_bounds = {
    ngx_http_customer_bounds, 1, NGX_HTTP_CUSTOMER_PG_MAX_DEPTH
};

static ngx_conf_num_bounds_t  ngx_http_customer_queue_bounds = {
    ngx_http_customer_bounds, 0, 65536
};


static ngx_command_t  ngx_http_customer_commands[] = {

    { ngx_string("customer_db"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_customer_db,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_db_replica"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_customer_db_replica,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_db_replica_max_lag"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, replica_max_lag),
      NULL },

    { ngx_string("customer_db_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, pool_size),
      &ngx_http_customer_pool_bounds },

    { ngx_string("customer_db_pipeline"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, pipeline),
      &ngx_http_customer_pipeline_bounds },

    { ngx_string("customer_db_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, timeout),
      NULL },

    { ngx_string("customer_db_queue"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, queue_size),
      &ngx_http_customer_queue_bounds },

    { ngx_string("customer_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_customer_jwt,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, auth.leeway),
      NULL },

    { ngx_string("customer_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, auth.issuer),
      NULL },

    { ngx_string("customer_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, auth.audience),
      NULL },

    { ngx_string("customer_service_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_customer_service_keys,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_customer_auth_mode,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_cors_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_customer_cors_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_cors_credentials"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, cors_credentials),
      NULL },

    { ngx_string("customer_cors_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, cors_max_age),
      NULL },

    { ngx_string("customer_peer_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, peer_key),
      NULL },

    { ngx_string("customer_outbox_trigger"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_customer_outbox_trigger,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_outbox_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, outbox_interval),
      NULL },

    { ngx_string("customer_auth_service"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, auth_service),
      NULL },

    { ngx_string("customer_auth_user_check"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, user_check),
      NULL },

    { ngx_string("customer_activity_interval"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, activity_interval),
      NULL },

    { ngx_string("customer_order_service"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, order_service),
      NULL },

    { ngx_string("customer_complaint_service"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, complaint_service),
      NULL },

    { ngx_string("customer_notification_service"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_customer_loc_conf_t, notification_service),
      NULL },

    { ngx_string("customer_notification_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_customer_notification_secret,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("customer_event_scan_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_customer_main_conf_t, event_scan_interval),
      NULL },

    { ngx_string("customer_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_customer_metrics,
      0,
      0,
      NULL },

    { ngx_string("customer_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_customer_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_customer_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_customer_postconfiguration,   /* postconfiguration */

    ngx_http_customer_create_main_conf,    /* create main configuration */
    ngx_http_customer_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_customer_create_loc_conf,     /* create location configuration */
    ngx_http_customer_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_customer_module = {
    NGX_MODULE_V1,
    &ngx_http_customer_module_ctx,         /* module context */
    ngx_http_customer_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_customer_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_customer_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* set by customer_api: the module has work to do in this configuration */
static ngx_uint_t  ngx_http_customer_used;


static void *
ngx_http_customer_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_customer_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_customer_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->conninfo = { 0, NULL };
     *     cmcf->pool = NULL;
     *     cmcf->replicas = NULL;
     *     cmcf->writers_zone = NULL;
     */

    cmcf->pool_size = NGX_CONF_UNSET_UINT;
    cmcf->pipeline = NGX_CONF_UNSET_UINT;
    cmcf->timeout = NGX_CONF_UNSET_MSEC;
    cmcf->queue_size = NGX_CONF_UNSET_UINT;
    cmcf->request_id_index = NGX_ERROR;
    cmcf->auth.leeway = NGX_CONF_UNSET;
    cmcf->outbox_interval = NGX_CONF_UNSET_MSEC;
    cmcf->event_scan_interval = NGX_CONF_UNSET_MSEC;
    cmcf->replica_max_lag = NGX_CONF_UNSET_MSEC;

    ngx_http_customer_used = 0;

    return cmcf;
}


static void *
ngx_http_customer_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_customer_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_customer_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     clcf->auth_header = { 0, NULL };
     */

    clcf->api = NGX_CONF_UNSET;
    clcf->auth = NGX_CONF_UNSET;
    clcf->user_check = NGX_CONF_UNSET;
    clcf->activity_interval = NGX_CONF_UNSET_MSEC;
    clcf->cors_origins = NGX_CONF_UNSET_PTR;
    clcf->cors_any = NGX_CONF_UNSET;
    clcf->cors_credentials = NGX_CONF_UNSET;
    clcf->cors_max_age = NGX_CONF_UNSET;

    /*
     * A server's or location's is made while cf->ctx is still the
     * enclosing block's (http{}'s own, before http{} has a context).
     */
    if (cf->cmd_type
        & (NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF))
    {
        clcf->parent = ((ngx_http_conf_ctx_t *) cf->ctx)->loc_conf;
    }

    return clcf;
}


static char *
ngx_http_customer_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_customer_loc_conf_t  *prev = parent;
    ngx_http_customer_loc_conf_t  *conf = child;

    ngx_http_core_loc_conf_t  *core;

    if (conf->auth == NGX_CONF_UNSET) {
        conf->auth = (prev->auth == NGX_CONF_UNSET)
                     ? NGX_HTTP_CUSTOMER_AUTH_JWT : prev->auth;
        conf->auth_header = prev->auth_header;
    }

    ngx_conf_merge_ptr_value(conf->cors_origins, prev->cors_origins, NULL);
    ngx_conf_merge_value(conf->cors_any, prev->cors_any, 0);
    ngx_conf_merge_value(conf->cors_credentials, prev->cors_credentials, 0);
    ngx_conf_merge_sec_value(conf->cors_max_age, prev->cors_max_age, 3600);

    if (conf->cors_any && conf->cors_credentials) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_cors_origins *\" cannot go with "
                           "\"customer_cors_credentials on\": browsers "
                           "refuse credentials for any origin; list the "
                           "origins");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_str_value(conf->auth_service, prev->auth_service, "");
    ngx_conf_merge_value(conf->user_check, prev->user_check, 1);
    ngx_conf_merge_msec_value(conf->activity_interval,
                              prev->activity_interval, 15 * 60 * 1000);
    ngx_conf_merge_str_value(conf->order_service, prev->order_service, "");
    ngx_conf_merge_str_value(conf->complaint_service,
                             prev->complaint_service, "");
    ngx_conf_merge_str_value(conf->notification_service,
                             prev->notification_service, "");

    /* not inherited: each location says customer_api itself */

    if (conf->api != 1) {
        return NGX_CONF_OK;
    }

    core = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (core->handler != ngx_http_customer_handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_api\" conflicts with another content "
                           "handler (proxy_pass, ...) in location \"%V\"",
                           &core->name);
        return NGX_CONF_ERROR;
    }

    if (conf->auth == NGX_HTTP_CUSTOMER_AUTH_HEADER
        && !core->internal
        && ngx_http_customer_guarded(cf, conf) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_auth header %V\" in location \"%V\" "
                           "trusts whoever can reach it: the location "
                           "itself needs \"allow\"/\"deny\" rules that let "
                           "only the gateway in, or \"internal\"",
                           &conf->auth_header, &core->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Whether the location has allow/deny rules of its own, not inherited:
 * the access module's configuration of the location holds rules, and
 * they are not the enclosing block's (merging copies the pointers).  The
 * module keeps its configuration type to itself; its first members, the
 * rule arrays, have been these since nginx 1.9, and only they are read,
 * compared as a whole: pointers only, no padding.
 */

static ngx_int_t
ngx_http_customer_guarded(ngx_conf_t *cf, ngx_http_customer_loc_conf_t *conf)
{
    ngx_uint_t                         i;
    ngx_module_t                      *m;
    ngx_http_customer_access_rules_t  *here, *parent, none;

    m = NULL;
    ngx_memzero(&none, sizeof(ngx_http_customer_access_rules_t));

    for (i = 0; cf->cycle->modules[i]; i++) {
        if (ngx_strcmp(cf->cycle->modules[i]->name,
                       "ngx_http_access_module") == 0)
        {
            m = cf->cycle->modules[i];
            break;
        }
    }

    if (m == NULL || conf->parent == NULL) {
        return NGX_DECLINED;
    }

    here = ngx_http_conf_get_module_loc_conf(cf, (*m));
    parent = conf->parent[m->ctx_index];

    if (here == NULL
        || ngx_memcmp(here, &none, sizeof(none)) == 0
        || (parent && ngx_memcmp(here, parent, sizeof(none)) == 0))
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static char *
ngx_http_customer_bounds(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t  *bounds = post;
    ngx_uint_t             *np = data;
    ngx_str_t              *value = cf->args->elts;

    if ((ngx_int_t) *np >= bounds->low && (ngx_int_t) *np <= bounds->high) {
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" must be between %i and %i, not \"%V\"",
                       &value[0], bounds->low, bounds->high, &value[1]);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_customer_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_customer_main_conf_t  *cmcf = conf;

    ngx_conf_init_uint_value(cmcf->pool_size, 16);
    ngx_conf_init_uint_value(cmcf->pipeline, 8);
    ngx_conf_init_msec_value(cmcf->timeout, 5000);
    ngx_conf_init_uint_value(cmcf->queue_size, 1024);

    ngx_conf_init_msec_value(cmcf->outbox_interval, 5000);
    ngx_conf_init_msec_value(cmcf->event_scan_interval, 60000);
    ngx_conf_init_msec_value(cmcf->replica_max_lag, 1000);
    ngx_conf_init_value(cmcf->auth.leeway, 30);

    return ngx_http_customer_conf_rules(cf, cmcf);
}


/* what the directives may not say together; the first rule broken fails */

static char *
ngx_http_customer_conf_rules(ngx_conf_t *cf,
    ngx_http_customer_main_conf_t *cmcf)
{
    ngx_uint_t                        i;
    ngx_http_customer_service_key_t  *key = cmcf->auth.service_keys
                                            ? cmcf->auth.service_keys->elts
                                            : NULL;

    struct {
        ngx_uint_t     broken;
        const char    *message;      /* %V: the first service key's name */
    } rules[] = {

        { cmcf->replica_max_lag == 0,
          "\"customer_db_replica_max_lag\" must be more than 0" },

        { cmcf->replicas && cmcf->conninfo.len == 0,
          "\"customer_db_replica\" needs \"customer_db\" in the http "
          "block: the primary serves writes and whatever no replica can" },

        { cmcf->outbox_interval == 0,
          "\"customer_outbox_interval\" must be more than 0" },

        { cmcf->trigger.naddrs && key == NULL,
          "\"customer_outbox_trigger\" needs \"customer_service_keys\": it "
          "calls an internal route" },

        { cmcf->trigger.naddrs && key
          && !(key->scopes & NGX_HTTP_CUSTOMER_SCOPE_WRITE),
          "\"customer_outbox_trigger\" calls an internal:write route with "
          "the first key of \"customer_service_keys\", and that key (%V) "
          "may not use internal:write" },

        { cmcf->timeout == 0,
          "\"customer_db_timeout\" must be more than 0" },

        { ngx_http_customer_used && cmcf->conninfo.len == 0,
          "\"customer_api\" is used but \"customer_db\" is not set in the "
          "http block" },

        { ngx_http_customer_used && cmcf->auth.alg == 0,
          "\"customer_api\" is used but \"customer_jwt\" is not set in the "
          "http block" }
    };

    for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (rules[i].broken) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, rules[i].message,
                               key ? &key->name : NULL);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_customer_postconfiguration(ngx_conf_t *cf)
{
    ngx_str_t                       name = ngx_string("request_id");
    ngx_http_customer_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_customer_module);

    cmcf->request_id_index = ngx_http_get_variable_index(cf, &name);
    if (cmcf->request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_http_customer_metrics_conf(cf, ngx_http_customer_route_tables)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_customer_replica_conf(cf, cmcf);
}


/*
 * A shared memory zone of this module holding one zeroed object of size
 * bytes, a slab allocation in it: a few pages more for the slab pool's
 * header and page descriptors.  A reload keeps the zone and the object.
 */

ngx_shm_zone_t *
ngx_http_customer_shm_zone(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t  *zone;

    zone = ngx_shared_memory_add(cf, name,
                                 ngx_align(size, ngx_pagesize)
                                 + 8 * ngx_pagesize,
                                 &ngx_http_customer_module);
    if (zone == NULL) {
        return NULL;
    }

    /* the object's size until the zone's init replaces it by the object */
    zone->data = (void *) (uintptr_t) size;
    zone->init = ngx_http_customer_shm_init;

    return zone;
}


/* a new element of *a, the array made with room for n on first use */

void *
ngx_http_customer_array_push(ngx_pool_t *pool, ngx_array_t **a, ngx_uint_t n,
    size_t size)
{
    if (*a == NULL) {
        *a = ngx_array_create(pool, n, size);
        if (*a == NULL) {
            return NULL;
        }
    }

    return ngx_array_push(*a);
}


static ngx_int_t
ngx_http_customer_shm_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    if (data) {
        /* a reload: go on where the old cycle left off */
        zone->data = data;
        return NGX_OK;
    }

    /*
     * nginx has put a slab pool at the start of the zone: the object is
     * allocated from it, not laid over its header
     */
    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    zone->data = ngx_slab_calloc(shpool, (uintptr_t) zone->data);
    if (zone->data == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static char *
ngx_http_customer_db(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_customer_main_conf_t  *cmcf = conf;

    if (cmcf->conninfo.data) {
        return "is duplicate";
    }

    return ngx_http_customer_conninfo(cf, &cmcf->conninfo, &cmcf->hostaddr,
                                      NULL);
}


/* customer_db_replica "<conninfo>"; several, each a streaming standby */

static char *
ngx_http_customer_db_replica(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_customer_main_conf_t  *cmcf = conf;

    ngx_str_t                    *value;
    ngx_uint_t                    i, n;
    ngx_http_customer_replica_t  *rp;

    value = cf->args->elts;
    rp = cmcf->replicas ? cmcf->replicas->elts : NULL;
    n = cmcf->replicas ? cmcf->replicas->nelts : 0;

    if (n == NGX_HTTP_CUSTOMER_REPLICAS_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many \"customer_db_replica\" (at most %d)",
                           NGX_HTTP_CUSTOMER_REPLICAS_MAX);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (rp[i].conninfo.len == value[1].len
            && ngx_strncmp(rp[i].conninfo.data, value[1].data,
                           value[1].len) == 0)
        {
            return "is duplicate";
        }
    }

    rp = ngx_http_customer_array_push(cf->pool, &cmcf->replicas, 2,
                                      sizeof(ngx_http_customer_replica_t));
    if (rp == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rp, sizeof(ngx_http_customer_replica_t));

    rp->index = n;

    return ngx_http_customer_conninfo(cf, &rp->conninfo, &rp->hostaddr,
                                      &rp->name);
}


/*
 * The directive's connection string as nginx -t checks it: parsed by
 * libpq, host names resolved (below), and, unless name is NULL, a short
 * name for logs and metrics, one that never shows a password.
 */

static char *
ngx_http_customer_conninfo(ngx_conf_t *cf, ngx_str_t *conninfo,
    ngx_str_t *hostaddr, ngx_str_t *name)
{
    char               *err, *rv, *host, *addr, *port;
    ngx_str_t          *value;
    PQconninfoOption   *opts, *o;

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" needs a libpq connection string",
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    /* ngx_str_t values from the parser are NUL-terminated */

    err = NULL;
    opts = PQconninfoParse((char *) value[1].data, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"%V\" connection string "
                           "\"%V\": %s", &value[0], &value[1],
                           err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }

        return NGX_CONF_ERROR;
    }

    host = NULL;
    addr = NULL;
    port = NULL;

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL || o->val[0] == '\0') {
            continue;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = o->val;

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            addr = o->val;

        } else if (ngx_strcmp(o->keyword, "port") == 0) {
            port = o->val;
        }
    }

    /* with hostaddr, libpq resolves nothing */
    rv = (addr || host == NULL)
         ? NGX_CONF_OK : ngx_http_customer_db_hosts(cf, host, hostaddr);

    if (rv == NGX_CONF_OK && name
        && ngx_http_customer_db_name(cf, host ? host : addr, port, name)
           != NGX_OK)
    {
        rv = NGX_CONF_ERROR;
    }

    PQconninfoFree(opts);

    *conninfo = value[1];

    return rv;
}


/* "host:port" as written (the first of several), "local" for a socket */

static ngx_int_t
ngx_http_customer_db_name(ngx_conf_t *cf, const char *host, const char *port,
    ngx_str_t *name)
{
    u_char  *p;
    size_t   hlen, plen;

    if (host == NULL || host[0] == '/' || host[0] == '@') {
        host = "local";
    }

    if (port == NULL) {
        port = "5432";
    }

    hlen = strcspn(host, ",\"\\");
    plen = strcspn(port, ",\"\\");

    p = ngx_pnalloc(cf->pool, hlen + 1 + plen + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    name->data = p;
    p = ngx_cpymem(p, host, hlen);
    *p++ = ':';
    p = ngx_cpymem(p, port, plen);
    *p = '\0';
    name->len = p - name->data;

    return NGX_OK;
}


/*
 * libpq would resolve a host name inside a worker at every connect, with
 * a blocking getaddrinfo().  Without hostaddr, each name in host is
 * resolved here, once, and the addresses are given to libpq as hostaddr
 * (an empty entry for a host that is already an address or a socket
 * directory); host stays as written for SSL and .pgpass.  A name that
 * does not resolve fails the configuration.  Reload to pick up a moved
 * server.
 */

static char *
ngx_http_customer_db_hosts(ngx_conf_t *cf, const char *host,
    ngx_str_t *hostaddr)
{
    u_char           *p, *end, *s, *out, *last;
    ngx_str_t        *value;
    ngx_url_t         u;
    ngx_uint_t        names;
    struct in6_addr   a6;

    value = cf->args->elts;

    p = (u_char *) host;
    end = p + ngx_strlen(host);

    /* an address is at most NGX_SOCKADDR_STRLEN, a separator each */
    out = ngx_pnalloc(cf->pool,
                      (ngx_strlen(host) + 1) * (NGX_SOCKADDR_STRLEN + 1));
    if (out == NULL) {
        return NGX_CONF_ERROR;
    }

    last = out;
    names = 0;

    for ( ;; ) {
        s = ngx_strlchr(p, end, ',');
        if (s == NULL) {
            s = end;
        }

        if (s > p && p[0] != '/' && p[0] != '@'
            && ngx_inet_addr(p, s - p) == INADDR_NONE
            && ngx_inet6_addr(p, s - p, a6.s6_addr) != NGX_OK)
        {
            ngx_memzero(&u, sizeof(ngx_url_t));
            u.url.data = p;
            u.url.len = s - p;
            u.default_port = 5432;

            if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" host \"%*s\" cannot be "
                                   "resolved%s%s: give an address, or "
                                   "hostaddr=", &value[0], s - p, p,
                                   u.err ? ": " : "", u.err ? u.err : "");
                return NGX_CONF_ERROR;
            }

            last += ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                  last, NGX_SOCKADDR_STRLEN, 0);
            names++;
        }

        if (s == end) {
            break;
        }

        *last++ = ',';
        p = s + 1;
    }

    if (names) {
        *last = '\0';
        hostaddr->data = out;
        hostaddr->len = last - out;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_customer_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_customer_loc_conf_t  *llcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (llcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    if (clcf->handler != NULL) {
        return "conflicts with another content handler in this location";
    }

    clcf->handler = ngx_http_customer_handler;
    llcf->api = 1;
    ngx_http_customer_used = 1;

    return NGX_CONF_OK;
}


/* customer_outbox_trigger 127.0.0.1:8001; this nginx, as seen from here */

static char *
ngx_http_customer_outbox_trigger(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_customer_main_conf_t  *cmcf = conf;

    ngx_str_t  *value;

    if (cmcf->trigger.naddrs) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cmcf->trigger.url = value[1];
    cmcf->trigger.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &cmcf->trigger) != NGX_OK
        || cmcf->trigger.naddrs == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"customer_outbox_trigger\" needs an address "
                           "and port such as 127.0.0.1:8001, not \"%V\"%s%s",
                           &value[1],
                           cmcf->trigger.err ? ": " : "",
                           cmcf->trigger.err ? cmcf->trigger.err : "");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * customer_auth on | off | header <name>: "header" trusts a request
 * header, set by a gateway that authenticated the caller, as the sub of
 * a Customer; only in a location, and merge_loc_conf refuses it there
 * unless the location is guarded (allow/deny or internal).
 */

static char *
ngx_http_customer_auth_mode(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_customer_loc_conf_t  *llcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (llcf->auth != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2) {

        if (ngx_strcasecmp(value[1].data, (u_char *) "on") == 0) {
            llcf->auth = NGX_HTTP_CUSTOMER_AUTH_JWT;
            return NGX_CONF_OK;
        }

        if (ngx_strcasecmp(value[1].data, (u_char *) "off") == 0) {
            llcf->auth = NGX_HTTP_CUSTOMER_AUTH_OFF;
            return NGX_CONF_OK;
        }

    } else if (ngx_strcmp(value[1].data, "header") == 0) {

        if (cf->cmd_type != NGX_HTTP_LOC_CONF) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"customer_auth header\" is allowed only "
                               "in a location, next to the allow/deny rules "
                               "that guard it");
            return NGX_CONF_ERROR;
        }

        for (p = value[2].data; p < value[2].data + value[2].len; p++) {
            if (*p <= 0x20 || *p >= 0x7f || *p == ':') {
                break;
            }
        }

        if (value[2].len == 0 || p < value[2].data + value[2].len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"customer_auth header\" needs a header "
                               "name, not \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        llcf->auth = NGX_HTTP_CUSTOMER_AUTH_HEADER;
        llcf->auth_header = value[2];

        return NGX_CONF_OK;
    }

    if (cf->args->nelts == 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V %V\" in \"customer_auth\": "
                           "on, off or header <name>", &value[1], &value[2]);
        return NGX_CONF_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"customer_auth\": on, off "
                       "or header <name>", &value[1]);
    return NGX_CONF_ERROR;
}


/*
 * customer_cors_origins <origin>...: the origins browsers may call the
 * API from, each as a browser sends it (scheme://host[:port], no path),
 * or "*" for any origin.
 */

static char *
ngx_http_customer_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_customer_loc_conf_t  *llcf = conf;

    u_char      *p, *last;
    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (llcf->cors_origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    llcf->cors_origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          sizeof(ngx_str_t));
    if (llcf->cors_origins == NULL) {
        return NGX_CONF_ERROR;
    }

    llcf->cors_any = 0;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 1 && value[i].data[0] == '*') {
            llcf->cors_any = 1;
            continue;
        }

        p = value[i].data;
        last = p + value[i].len;

        /* scheme */

        while (p < last && ((*p >= 'a' && *p <= 'z')
                            || (*p >= 'A' && *p <= 'Z')
                            || (p > value[i].data
                                && ((*p >= '0' && *p <= '9')
                                    || *p == '+' || *p == '-' || *p == '.'))))
        {
            p++;
        }

        if (p == value[i].data || last - p < 4
            || ngx_strncmp(p, "://", 3) != 0)
        {
            goto invalid;
        }

        /* host and port: no path, query, user or space */

        for (p += 3; p < last; p++) {
            if (*p <= 0x20 || *p >= 0x7f || *p == '/' || *p == '?'
                || *p == '#' || *p == '@' || *p == '\\' || *p == ',')
            {
                goto invalid;
            }
        }

        o = ngx_array_push(llcf->cors_origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"customer_cors_origins\": \"%V\" is not an "
                       "origin such as https://app.example.com or "
                       "http://localhost:3000 (scheme, host, port; no "
                       "path), nor \"*\"", &value[i]);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_customer_init_process(ngx_cycle_t *cycle)
{
    ngx_http_customer_main_conf_t  *cmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_customer_module);

    if (cmcf == NULL || cmcf->conninfo.len == 0) {
        return NGX_OK;
    }

    cmcf->pool = ngx_http_customer_pg_pool_create(cycle, &cmcf->conninfo,
                                                  cmcf->pool_size,
                                                  cmcf->pipeline,
                                                  cmcf->timeout,
                                                  cmcf->queue_size);
    if (cmcf->pool == NULL) {
        return NGX_ERROR;
    }

    ngx_http_customer_pg_pool_hostaddr(cmcf->pool, &cmcf->hostaddr);

    if (ngx_http_customer_replica_init(cycle, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_customer_jwt_cache_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_customer_trigger_init(cycle, cmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_customer_customers_init(cycle);
}


static void
ngx_http_customer_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_customer_main_conf_t  *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_customer_module);

    if (cmcf && cmcf->pool) {
        ngx_http_customer_replica_exit(cmcf);
        ngx_http_customer_pg_pool_destroy(cmcf->pool);
        cmcf->pool = NULL;
    }
}

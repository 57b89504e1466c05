/* mod_ocsp_guard_private.h: declarations shared by the glue files (hooks,
 * directives, cache, refresher, status handler). Never included by the core
 * (og_*.c), which must build without httpd headers. */
#ifndef MOD_OCSP_GUARD_PRIVATE_H
#define MOD_OCSP_GUARD_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_socache.h>
#include <apr_global_mutex.h>
#include <apr_hash.h>

#include "og_cert.h"
#include "og_ocsp.h"
#include "og_fetch.h"
#include "og_record.h"
#include "og_sched.h"

APLOG_USE_MODULE(ocsp_guard);
extern module AP_MODULE_DECLARE_DATA ocsp_guard_module;

/* One tag per call site, never reused: "OG00042: ". The next free number is
 * kept in tags.next; tests/integration/test_001_tags.py checks uniqueness. */
#define OGLOGNO(n) "OG" #n ": "

#define OG_UNSET (-1)
#define OG_MUTEX_TYPE "ocsp-guard-cache"

/* Where a directive was written, for messages. */
typedef struct og_where_t {
    const char *file;
    int line;
} og_where_t;

/* Per-server configuration. The global fields are only read from the main
 * server (their directives are refused inside <VirtualHost>). */
typedef struct og_sconf_t {
    int enabled;                    /* OCSPGuard */
    og_where_t enabled_at;
    int responder_timeout;          /* OCSPGuardResponderTimeout, seconds */
    const char *override_url;       /* OCSPGuardResponderOverride */
    og_where_t override_at;

    /* global */
    const char *cache_spec;         /* OCSPGuardCache as written */
    og_where_t cache_at;
    const ap_socache_provider_t *cache_provider;
    ap_socache_instance_t *cache_inst;
    const char *fleet_spec;         /* OCSPGuardFleetCache */
    og_where_t fleet_at;
    const ap_socache_provider_t *fleet_provider;
    ap_socache_instance_t *fleet_inst;
    const char *store_dir;          /* OCSPGuardStore */
    int prefetch_timeout;           /* OCSPGuardPrefetchTimeout, seconds */
    int renew_window;               /* OCSPGuardRenewWindow, percent */
    const char *proxy;              /* OCSPGuardProxy */
    int enforce_strict;             /* OCSPGuardEnforce */
    int retry_delay;                /* OCSPGuardRetryDelay, seconds */
} og_sconf_t;

#define OG_DEFAULT_RESPONDER_TIMEOUT 5
#define OG_DEFAULT_PREFETCH_TIMEOUT  10
#define OG_DEFAULT_RENEW_WINDOW      50
#define OG_DEFAULT_RETRY_DELAY       60
#define OG_DEFAULT_STORE_DIR         "ocsp_guard"   /* under ServerRoot */
#define OG_DEFAULT_CACHE_NAME        "ocsp_guard"   /* under DefaultRuntimeDir */

/* One certificate under our care: shared by every virtual host using it. */
typedef struct og_entry_t {
    int idx;
    og_cert_t *cert;
    apr_array_header_t *vhosts;     /* server_rec * using this certificate */
    const char *url;                /* effective responder URL, or NULL */
    const char *url_origin;         /* "AIA" or the override directive's place */
    int timeout_s;
    unsigned char *req_der;
    apr_size_t req_len;
    /* the latest outcome known to this process */
    og_fetch_res_t fetch;
    og_ocsp_result_t result;
    int fetched;                    /* an exchange was attempted */
    int failures;                   /* consecutive */
    char outcome[200];              /* of the last attempt, for the status page */
    char state_key[32];             /* kind of the last outcome: log on change */
    apr_time_t last_attempt;
    apr_time_t last_success;
    apr_time_t next_attempt;
    int expired_logged;
    og_record_t rec;                /* current verified response, der NULL if none */
    apr_pool_t *der_pool;           /* refresher only: owns rec.der */
    int batch_state;                /* og_batch_fetch: OG_BATCH_* */
} og_entry_t;

#define OG_BATCH_NOT_ASKED 0        /* the batch deadline came first */
#define OG_BATCH_ASKED     1        /* fetch and result are set */

/* The per-certificate row the status handler reads from the shared cache
 * (written by whichever process fetched last). Plain bytes: every process
 * runs the same binary. */
typedef struct og_status_t {
    apr_uint32_t magic;
    apr_int32_t failures;
    apr_int32_t last_cert_status;   /* og_cert_status_e the responder last said */
    apr_int32_t pad;
    apr_time_t last_attempt;
    apr_time_t last_success;
    apr_time_t next_attempt;
    apr_int64_t last_ms;
    char outcome[200];
} og_status_t;

/* Everything of one configuration generation (lives in pconf). */
typedef struct og_global_t {
    apr_pool_t *pool;
    server_rec *s;                  /* main server */
    apr_hash_t *by_id;              /* cert id (20 bytes) -> og_entry_t * */
    apr_array_header_t *entries;    /* og_entry_t *, in priming order */
    const ap_socache_provider_t *cache;
    ap_socache_instance_t *cache_inst;
    const char *cache_desc;
    apr_global_mutex_t *mutex;      /* when the provider is not MT/MP safe */
    const char *store_dir;          /* NULL: no persistence */
    int store_warned;
    const char *proxy;
    og_sched_policy_t policy;
    apr_pool_t *wd_pool;            /* refresher only */
    apr_array_header_t *findings;   /* og_finding_t of og_check, from check_config */
} og_global_t;

extern og_global_t *og_g;

/* config */
extern const command_rec og_cmds[];
void *og_create_sconf(apr_pool_t *p, server_rec *s);
void *og_merge_sconf(apr_pool_t *p, void *basev, void *addv);
og_sconf_t *og_sconf(server_rec *s);
int og_sconf_enabled(const og_sconf_t *sc);
int og_sconf_timeout(const og_sconf_t *sc);

/* cache */
apr_status_t og_cache_post_config(og_global_t *g, server_rec *s, apr_pool_t *pconf,
                                  apr_pool_t *ptemp);
void og_cache_child_init(og_global_t *g, apr_pool_t *p, server_rec *s);
apr_status_t og_cache_put(og_global_t *g, server_rec *s, const og_entry_t *e,
                          apr_pool_t *p);
/* Copy the record of `id` into buf; *plen in: capacity, out: length. */
apr_status_t og_cache_get(og_global_t *g, server_rec *s, const unsigned char *id,
                          unsigned char *buf, unsigned int *plen, apr_pool_t *p);
apr_status_t og_cache_put_status(og_global_t *g, server_rec *s, const og_entry_t *e,
                                 const og_status_t *st, apr_pool_t *p);
apr_status_t og_cache_get_status(og_global_t *g, server_rec *s, const og_entry_t *e,
                                 og_status_t *st, apr_pool_t *p);

/* entry: one certificate's response life (mod_ocsp_guard_entry.c) */
void og_entry_exchange(og_entry_t *e, apr_pool_t *p, const char *proxy, int timeout_s);
void og_entry_apply(og_global_t *g, og_entry_t *e, server_rec *s, og_source_e src,
                    int quiet_repeats, apr_pool_t *p);
void og_entry_schedule(og_global_t *g, og_entry_t *e, apr_time_t now);
void og_entry_publish(og_global_t *g, og_entry_t *e, server_rec *s, apr_pool_t *p);
int og_entry_stapleable(const og_entry_t *e, apr_time_t now);
int og_entry_load_store(og_global_t *g, og_entry_t *e, server_rec *s, apr_pool_t *p);
void og_entry_check_expiry(og_global_t *g, og_entry_t *e, server_rec *s, apr_time_t now,
                           apr_pool_t *p);
apr_status_t og_store_prepare(og_global_t *g, server_rec *s, apr_pool_t *p);
int og_status_valid(const og_status_t *st);
const char *og_iso_time(apr_pool_t *p, apr_time_t t);

/* concurrent fetching (mod_ocsp_guard_batch.c): fetch every entry of `due`
 * (og_entry_t *) within the deadline; sets each entry's batch_state, fetch
 * and result; returns how many requests were sent. Bodies live until p is
 * cleared. */
int og_batch_fetch(og_global_t *g, apr_array_header_t *due, apr_time_t deadline,
                   apr_pool_t *p);

/* refresher (mod_ocsp_guard_watchdog.c) */
void og_watchdog_post_config(og_global_t *g, server_rec *s, apr_pool_t *pconf);

/* configuration diagnostics (mod_ocsp_guard_check.c): collect the findings
 * of this generation into g->findings; log them, returning how many are fatal */
void og_check_collect(og_global_t *g);
int og_check_log(og_global_t *g, server_rec *s, int log_all, apr_pool_t *ptemp);

/* status handler and mod_status section (mod_ocsp_guard_status.c) */
void og_status_register_hooks(void);

/* ssl hooks */
void og_ssl_register_hooks(void);

/* log helpers */
const char *og_entry_desc(apr_pool_t *p, const og_entry_t *e);
const char *og_server_desc(apr_pool_t *p, const server_rec *s);

#endif /* MOD_OCSP_GUARD_PRIVATE_H */

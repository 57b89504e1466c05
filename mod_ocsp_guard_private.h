/* mod_ocsp_guard_private.h: declarations shared by the glue files (hooks,
 * directives, cache, refresher, status handler). Never included by the core
 * (og_*.c), which must build without httpd headers. */
#ifndef MOD_OCSP_GUARD_PRIVATE_H
#define MOD_OCSP_GUARD_PRIVATE_H

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <ap_socache.h>
#include <apr_global_mutex.h>
#include <apr_hash.h>
#include <apr_thread_mutex.h>

#include "og_cert.h"
#include "og_ocsp.h"
#include "og_fetch.h"
#include "og_record.h"
#include "og_sched.h"
#include "og_admit.h"
#include "og_attempt.h"
#include "og_store.h"
#include "og_table.h"
#include "og_fleet.h"

APLOG_USE_MODULE(ocsp_guard);
extern module AP_MODULE_DECLARE_DATA ocsp_guard_module;

/* One tag per call site, never reused: "OG00042: " (og_fmt.h's OG_TAG). */
#define OGLOGNO(n) OG_TAG(n) ": "

#define GUARD_UNSET (-1)
#define GUARD_MUTEX_TYPE "ocsp-guard-cache"

/* A mod_socache directive: as written, where, and the instance created. */
typedef struct guard_socache_conf_t {
    const char *spec;               /* NULL: not set */
    og_loc_t at;
    const ap_socache_provider_t *provider;
    ap_socache_instance_t *inst;
} guard_socache_conf_t;

/* Per-server configuration. The global fields are only read from the main
 * server (their directives are refused inside <VirtualHost>). */
typedef struct guard_sconf_t {
    int enabled;                    /* OCSPGuard */
    int responder_timeout;          /* OCSPGuardResponderTimeout, seconds */
    const char *override_url;       /* OCSPGuardResponderOverride */
    og_loc_t override_at;

    /* global */
    guard_socache_conf_t cache;     /* OCSPGuardCache */
    guard_socache_conf_t fleet;     /* OCSPGuardFleetCache */
    const char *store_dir;          /* OCSPGuardStore */
    og_loc_t store_at;
    int prefetch_timeout;           /* OCSPGuardPrefetchTimeout, seconds */
    int renew_window;               /* OCSPGuardRenewWindow, percent */
    const char *proxy;              /* OCSPGuardProxy */
    int enforce_strict;             /* OCSPGuardEnforce */
    int retry_delay;                /* OCSPGuardRetryDelay, seconds */
    apr_interval_time_t max_validity; /* OCSPGuardMaxValidity; GUARD_UNSET */
} guard_sconf_t;

#define GUARD_DEFAULT_RESPONDER_TIMEOUT 5
#define GUARD_DEFAULT_PREFETCH_TIMEOUT  10
#define GUARD_DEFAULT_MAX_VALIDITY      apr_time_from_sec(10 * 86400) /* BR 4.9.10 */
#define GUARD_DEFAULT_STORE_DIR         "ocsp_guard"   /* under ServerRoot */
#define GUARD_DEFAULT_CACHE_NAME        "ocsp_guard"   /* under DefaultRuntimeDir */

/* One responder (one URL), shared by the certificates it answers for: while
 * it fails, one of them probes it and the others are held back
 * (mod_ocsp_guard_fetch.c). */
typedef struct guard_responder_t {
    const char *url;
    int key;                        /* its og_workq key */
    int nentries;
    apr_uint32_t fails;             /* consecutive failed exchanges, as the
                                     * worker threads see it (atomic) */
    int failing;                    /* 0: up; 1: down; then 1 + failed probes */
    apr_time_t down_since;
    apr_time_t probe_at;            /* while failing: when it may be asked again */
    int probing;                    /* a probe is queued or running */
    int said;                       /* the outage is logged (OG00064) */
    char last_error[160];
    /* HTTP/1.1 keep-alive: connections the responder left open, reused by the
     * next exchanges (worker threads, under idle_lock) */
    apr_thread_mutex_t *idle_lock;
    int idle[8];
    int nidle;
} guard_responder_t;

/* One certificate under our care: shared by every virtual host using it. */
typedef enum {
    GUARD_URL_NONE = 0,             /* no responder: not stapled */
    GUARD_URL_AIA,                  /* the certificate's own OCSP URL */
    GUARD_URL_OVERRIDE              /* OCSPGuardResponderOverride, at override_at */
} guard_url_from_e;

/* exchanges in flight at once, and for one responder: 10,000 certificates of
 * one CA whose responder takes 50 ms are asked within the 10 s prefetch with
 * 128 (bench/scale.py --prebuilt: all 10,000 in 9.5 s; a front without
 * keep-alive: 9,543 of them, and 8,092 with 64 in flight); the
 * threads start as jobs come, each with a 512 KB stack of its own */
#define GUARD_FETCH_THREADS        160
#define GUARD_FETCH_PER_RESPONDER  128
/* consecutive failed exchanges after which queued jobs of a responder are
 * held back instead of asked (the probe is asked regardless) */
#define GUARD_FETCH_HOLD_AFTER     3

/* exchanges started at a certificate's prime (mod_ocsp_guard_early.c) */
typedef struct guard_early_set_t guard_early_set_t;
typedef struct guard_early_t guard_early_t;

typedef struct guard_entry_t {
    og_cert_t *cert;
    apr_array_header_t *vhosts;     /* server_rec * using this certificate */
    const char *url;                /* effective responder URL, or NULL */
    guard_url_from_e url_from;
    og_loc_t override_at;           /* where the override is written */
    int timeout_s;
    unsigned char *req_der;
    apr_size_t req_len;
    /* the latest outcome known to this process */
    og_fetch_res_t fetch;
    og_ocsp_result_t result;
    og_attempt_t last;              /* what the last attempt came to (kind NONE: none) */
    int failures;                   /* consecutive */
    char outcome[OG_REPORT_OUTCOME_MAX + 1]; /* of the last attempt, for the status page */
    apr_time_t last_attempt;
    apr_time_t last_success;
    apr_time_t next_attempt;
    int expired_logged;
    og_record_t rec;                /* current verified response, der NULL if none */
    apr_time_t revoked_at;          /* its revocationTime, when revoked */
    og_floor_t floor;               /* what was ever accepted: the monotonic rule */
    int dirty;                      /* accepted, not yet in the store */
    int capped_logged;              /* OG00056 said once */
    unsigned char *der_malloced;    /* refresher only: rec.der, malloc'ed */
    unsigned int slot;              /* its slot in g->table (priming order) */
    apr_uint32_t spread;            /* with a fleet cache: this server's place in
                                     * the renew window (og_fleet_spread), else 0 */
    int fleet_published;            /* its last answer is in the fleet cache already */
    apr_time_t fleet_defer_end;     /* a fleet claim defers this renewal until
                                     * then, at most (0: none seen) */
    char fleet_said[OG_REPORT_OUTCOME_MAX + 1]; /* why the fleet's record was last
                                     * not used, as logged (once per change) */
    guard_responder_t *resp;        /* NULL without a URL or request */
    const char *req_key;            /* URL and request: same key, same answer */
    int inflight;                   /* a job of the fetcher has it */
    guard_early_t *early;           /* its exchange started at its prime, until
                                     * the prefetch takes it (parent only) */
} guard_entry_t;


/* Everything of one configuration generation (lives in pconf). */
typedef struct guard_t {
    apr_pool_t *pool;
    server_rec *s;                  /* main server */
    apr_hash_t *by_id;              /* cert id (20 bytes) -> guard_entry_t * */
    og_issuers_t *issuers;          /* parsed chains, shared by their certificates */
    apr_array_header_t *entries;    /* guard_entry_t *, in priming order */
    guard_early_set_t *early;       /* exchanges started at the primes, until
                                     * post-config's prefetch ends */
    const ap_socache_provider_t *cache;
    ap_socache_instance_t *cache_inst;
    const char *cache_desc;
    apr_global_mutex_t *mutex;      /* when the provider is not MT/MP safe */
    og_table_t *table;              /* the handshake's lock-free copy, one slot per
                                     * entry, in shared memory inherited by children */
    int table_pending;              /* the cache exists, the table not yet */
    const char *store_dir;          /* for messages; NULL: no persistence */
    og_store_t *store;              /* the open store directory, NULL: none */
    const char *store_problem;      /* why check_config refused the store */
    int store_warned;
    apr_hash_t *floors;             /* id -> og_floor_t, in the process pool: what
                                     * this parent accepted, across generations */
    const char *proxy;
    /* the effective policy (guard_config_resolve) */
    og_sched_policy_t policy;
    apr_interval_time_t max_validity;
    int prefetch_timeout;           /* seconds; 0: fetch in the background */
    int strict;                     /* OCSPGuardEnforce strict */
    apr_pool_t *wd_pool;            /* refresher only */
    apr_array_header_t *responders; /* guard_responder_t *, by key */
    struct og_workq_t *workq;       /* refresher only: exchanges in flight */
    apr_thread_mutex_t *fetch_lock; /* refresher only: its tick against the child's exit */
    int workq_busy;                 /* refresher only: answers came since it was idle */
    apr_array_header_t *findings;   /* og_finding_t of og_check, from check_config */
    struct guard_fleet_t *fleet;    /* OCSPGuardFleetCache, open in this process
                                     * (the parent during the prefetch, the
                                     * refresher), else NULL */
    apr_uint64_t fleet_self;        /* this server in the fleet (og_fleet_server_id) */
    apr_uint32_t fleet_gen;         /* refresher: the fleet state last published */
    apr_time_t fleet_reported;      /* refresher: when it was last published */
    struct guard_shared_t *shared;  /* counters, refresh requests (metrics) */
} guard_t;

guard_t *guard_registry(void);

/* config */
extern const command_rec guard_cmds[];
void *guard_create_sconf(apr_pool_t *p, server_rec *s);
void *guard_merge_sconf(apr_pool_t *p, void *basev, void *addv);
guard_sconf_t *guard_sconf(server_rec *s);
int guard_sconf_enabled(const guard_sconf_t *sc);
int guard_sconf_timeout(const guard_sconf_t *sc);
int guard_sconf_strict(const guard_sconf_t *sc);
const char *guard_sconf_store_dir(apr_pool_t *p, const guard_sconf_t *sc);
void guard_config_resolve(guard_t *g, server_rec *s, apr_pool_t *pconf);

/* cache */
apr_status_t guard_cache_post_config(guard_t *g, server_rec *s, apr_pool_t *pconf,
                                  apr_pool_t *ptemp);
void guard_cache_child_init(guard_t *g, apr_pool_t *p, server_rec *s);
/* After the store and the prefetch: the handshake table, every response in it. */
void guard_cache_table(guard_t *g, server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp);
apr_status_t guard_cache_put(guard_t *g, server_rec *s, const guard_entry_t *e,
                          apr_pool_t *p);
/* The handshake's read: copy the record of `e` into buf (OG_RECORD_MAX
 * bytes), from the lock-free table; *plen out: its length. */
apr_status_t guard_cache_get(guard_t *g, server_rec *s, const guard_entry_t *e,
                          unsigned char *buf, apr_size_t *plen, apr_pool_t *p);
apr_status_t guard_cache_put_report(guard_t *g, server_rec *s, const guard_entry_t *e,
                                 const og_report_t *rp, apr_pool_t *p);
apr_status_t guard_cache_get_report(guard_t *g, server_rec *s, const guard_entry_t *e,
                                 og_report_t *rp, apr_pool_t *p);
/* The fleet cache's state, for the status page: one row, outcome text
 * "<state>; since <time>; ..." (guard_fleet_report). */
apr_status_t guard_cache_put_fleet_report(guard_t *g, server_rec *s, const og_report_t *rp,
                                       apr_pool_t *p);
apr_status_t guard_cache_get_fleet_report(guard_t *g, server_rec *s, og_report_t *rp,
                                       apr_pool_t *p);

/* entry: one certificate's response life (mod_ocsp_guard_entry.c) */
void guard_entry_verify(guard_entry_t *e, apr_interval_time_t max_validity);
const char *guard_entry_url_origin(apr_pool_t *p, const guard_entry_t *e);
/* quiet_repeats 0: failures at warning; 1: a failure like the last one at
 * debug; 2: failures at debug (their responder's outage is said, OG00064) */
void guard_entry_apply(guard_t *g, guard_entry_t *e, server_rec *s, og_source_e src,
                    int quiet_repeats, apr_pool_t *p);
void guard_entry_schedule(guard_t *g, guard_entry_t *e, apr_time_t now);
void guard_entry_publish(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p);
int guard_entry_stapleable(const guard_entry_t *e, apr_time_t now);

/* The dry run of the first start (its configuration is read, checked and
 * thrown away; the real pass follows): nothing is fetched, parsed or created. */
static APR_INLINE int guard_dry_run(void)
{
    return ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG;
}
void guard_entry_check_expiry(guard_t *g, guard_entry_t *e, server_rec *s, apr_time_t now,
                           apr_pool_t *p);
void guard_entry_install(guard_t *g, guard_entry_t *e, const og_record_t *rec,
                      apr_time_t revoked_at, apr_pool_t *pool);

/* the store glue (mod_ocsp_guard_store.c): the directory checked and opened
 * by the parent, read by it safely; written only by the refresher (User) */
const char *guard_store_check(apr_pool_t *p, const char *dir);
void guard_store_open(guard_t *g, server_rec *s, apr_pool_t *pconf);
int guard_store_load(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p);
void guard_store_persist(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p);
/* the store, if this process may write it itself (never root for another
 * User, whose writes go through guard_store_flush's writer); NULL otherwise */
og_store_t *guard_store_direct(guard_t *g);
void guard_store_flush(guard_t *g, server_rec *s, apr_pool_t *p);
void guard_store_remember(guard_t *g, server_rec *s, apr_pool_t *p);

/* the one fetch path (mod_ocsp_guard_fetch.c). post_config: the responders
 * and the request keys, once the requests exist. prefetch: everything due,
 * concurrently, until `deadline`; returns the entries the deadline left
 * without an answer (*pcut of them were asked, the others not yet; *pheld:
 * how many were held back because their responder is not answering). start/tick/stop: the refresher's persistent set of exchanges
 * (each tick applies what finished and queues what came due). */
void guard_fetch_post_config(guard_t *g, apr_pool_t *pconf);
apr_array_header_t *guard_fetch_prefetch(guard_t *g, apr_time_t deadline, int *pheld,
                                         int *pcut, apr_pool_t *ptemp);
void guard_fetch_start(guard_t *g);
void guard_fetch_tick(guard_t *g, apr_pool_t *ptemp);
void guard_fetch_stop(guard_t *g);

/* the prefetch's exchanges started at the primes (mod_ocsp_guard_early.c):
 * one for a new entry, if it can only be the prefetch's; the prefetch's job
 * takes its answer (1: res filled, body in p; 0: nothing, ask yourself; -1:
 * still asking at `until`); none starts once the prefetch does (drain); all
 * of it ends after the prefetch */
void guard_early_prime(guard_t *g, guard_entry_t *e);
int guard_early_take(guard_entry_t *e, og_fetch_res_t *res, apr_pool_t *p, apr_time_t until);
void guard_early_drain(guard_t *g);
void guard_early_end(guard_t *g);

/* the fleet cache (mod_ocsp_guard_fleet.c): untrusted storage shared by
 * servers, never read by handshakes. open/close: by the thread that pushes
 * fetch jobs (NULL: not configured or not usable); lookup: from the fetch
 * workers, waits at most until `until` (and never for a cache that stopped
 * answering); publish and claim: queued, never wait. */
typedef struct guard_fleet_t guard_fleet_t;
typedef struct guard_fleet_look_t {
    int unavailable;                /* not asked, or no answer in time */
    unsigned char *value;           /* the response's value, NULL: none */
    apr_size_t len;
    int claimed;                    /* a well-formed claim was read */
    og_fleet_claim_t claim;
} guard_fleet_look_t;
typedef struct guard_fleet_state_t {
    apr_uint32_t gen;
    const char *state;              /* reachable, failing, not answering */
    apr_time_t since;
    char last_error[160];
    apr_uint64_t lookups, hits, published, errors, dropped;
} guard_fleet_state_t;
guard_fleet_t *guard_fleet_open(guard_t *g, server_rec *s);
void guard_fleet_close(guard_fleet_t *f);
void guard_fleet_lookup(guard_fleet_t *f, const unsigned char *id, apr_time_t until,
                        guard_fleet_look_t *out, apr_pool_t *p);
void guard_fleet_publish(guard_fleet_t *f, const unsigned char *id, const unsigned char *der,
                         apr_size_t len, apr_time_t next_update);
void guard_fleet_claim(guard_fleet_t *f, const unsigned char *id, apr_uint64_t self,
                       apr_time_t until);
void guard_fleet_state(guard_fleet_t *f, guard_fleet_state_t *st);
const char *guard_fleet_desc(const guard_fleet_t *f);
/* Publish the fleet cache's state row when it changed (or `force`). */
void guard_fleet_report(guard_t *g, int force, apr_pool_t *p);

/* refresher (mod_ocsp_guard_watchdog.c) */
void guard_watchdog_post_config(guard_t *g, server_rec *s, apr_pool_t *pconf);

/* configuration diagnostics (mod_ocsp_guard_check.c): collect the findings
 * of this generation into g->findings (certificate files read only with
 * read_certs or OCSPGuardEnforce strict); log them, returning how many are fatal */
void guard_check_collect(guard_t *g, server_rec *s, int read_certs);
int guard_check_log(guard_t *g, server_rec *s, int log_all, apr_pool_t *ptemp);

/* status handler and mod_status section (mod_ocsp_guard_status.c): one
 * row per certificate, built from what a handshake would read and the
 * report rows; the fleet cache's state (NULL: none configured) */
typedef struct guard_status_row_t {
    const guard_entry_t *e;
    og_record_t rec;
    int have_rec;
    og_report_t st;
    int have_st;
    int stapled;
    og_cert_status_e status;        /* NONE: no answer yet */
    apr_time_t renew_at;
} guard_status_row_t;
void guard_status_register_hooks(void);
apr_array_header_t *guard_status_rows(request_rec *r, guard_t *g);
const char *guard_status_fleet(request_rec *r, guard_t *g, const char **state);

/* metrics (mod_ocsp_guard_metrics.c): counters and refresh requests in
 * shared memory of this generation; Prometheus' text format */
typedef struct guard_shared_t guard_shared_t;
void guard_metrics_post_config(guard_t *g, server_rec *s, apr_pool_t *pconf);
void guard_metrics_handshake(guard_t *g, int stapled);
void guard_metrics_attempt(guard_t *g, og_attempt_e kind, og_source_e src);
int guard_metrics_request_refresh(guard_t *g, const guard_entry_t *e);
int guard_metrics_take_refresh(guard_t *g, const guard_entry_t *e);
void guard_metrics_render(request_rec *r, guard_t *g, apr_array_header_t *rows);

/* ssl hooks */
void guard_ssl_register_hooks(void);

/* log helpers (mod_ocsp_guard_log.c). GUARD_ELOG logs a message about one
 * certificate: fmt begins with OGLOGNO(nnnnn), the certificate's context is
 * put right after the tag; file:line are the caller's (APLOG_MARK). */
#define GUARD_TAG_LEN 9 /* "OG00042: " */
#define GUARD_ELOG(level, rv, s, e, p, ...)                                          \
    do {                                                                             \
        if (APLOG_IS_LEVEL(s, level)) {                                              \
            guard_elog_(APLOG_MARK, level, rv, s, e, p, __VA_ARGS__);                \
        }                                                                            \
    } while (0)
void guard_elog_(const char *file, int line, int module_index, int level, apr_status_t rv,
                 server_rec *s,
                 const guard_entry_t *e, apr_pool_t *p, const char *fmt, ...)
    __attribute__((format(printf, 9, 10)));
const char *guard_entry_desc(apr_pool_t *p, const guard_entry_t *e);
const char *guard_server_desc(apr_pool_t *p, const server_rec *s);

#endif /* MOD_OCSP_GUARD_PRIVATE_H */

/* mod_ocsp_guard.c: the module record, hook registration and the post-config
 * plan: take the certificates mod_ssl primed, fetch a verified response for
 * each before the first handshake, publish them to the shared cache and log
 * what every certificate will get. Each step of the plan is a function below;
 * OCSP semantics live in the core (og_*.c), the work of each step in its own
 * glue file. The registry of one configuration generation (guard_t) is
 * reached only through guard_registry() and passed down from there. */
#include <apr_strings.h>
#include <ap_mmn.h>
#include <http_core.h>
#include <http_main.h>
#include <util_mutex.h>

#include "mod_ocsp_guard.h"
#include "mod_ocsp_guard_private.h"

#if !AP_MODULE_MAGIC_AT_LEAST(20120211, 105)
#error "mod_ocsp_guard needs httpd 2.4.48 or later (the ssl_ocsp_prime/get_resp hooks of http_ssl.h)"
#endif

/* this generation's registry: made in pre_config, gone with pconf */
static guard_t *registry;

static int og_hook_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
static int og_hook_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                server_rec *s);
static int og_hook_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s);
static void og_hook_child_init(apr_pool_t *p, server_rec *s);
static apr_status_t registry_cleanup(void *data);
static int step_requests(guard_t *g, server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp);
static int step_store(guard_t *g, server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp);
static void step_prefetch(guard_t *g, server_rec *s, apr_pool_t *ptemp);
static int step_summary(guard_t *g, server_rec *s, int no_url, int stored, apr_time_t start);

guard_t *guard_registry(void)
{
    return registry;
}

static apr_status_t registry_cleanup(void *data)
{
    if (registry == data) {
        registry = NULL;
    }
    return APR_SUCCESS;
}

/* A start that fails after mod_ssl primed some certificates (a key that does
 * not match, in a later virtual host) destroys pconf with early exchanges in
 * flight: they end (bounded by their deadlines) before its memory goes. */
static apr_status_t early_cleanup(void *data)
{
    guard_early_end(data);
    return APR_SUCCESS;
}

/* A fresh registry per configuration generation. */
static int og_hook_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    guard_t *g = apr_pcalloc(pconf, sizeof(*g));

    (void)plog;
    (void)ptemp;
    g->pool = pconf;
    g->by_id = apr_hash_make(pconf);
    g->issuers = og_issuers_make(pconf);
    g->entries = apr_array_make(pconf, 16, sizeof(guard_entry_t *));
    registry = g;
    apr_pool_cleanup_register(pconf, g, registry_cleanup, apr_pool_cleanup_null);
    apr_pool_pre_cleanup_register(pconf, g, early_cleanup);
    return ap_mutex_register(pconf, GUARD_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

/* Step 2: a request for every certificate with a responder; the others are
 * told once, at info level (many CAs stopped publishing OCSP in 2025).
 * Returns how many have no URL. */
static int step_requests(guard_t *g, server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    int i, no_url = 0;

    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (!e->url) {
            no_url++;
            apr_cpystrn(e->outcome, "no OCSP URL: not stapled", sizeof(e->outcome));
            if (e->cert->must_staple) {
                GUARD_ELOG(APLOG_ERR, 0, s, e, ptemp, OGLOGNO(00036)
                           "the certificate requires stapling (Must-Staple) but has no OCSP "
                           "URL and no OCSPGuardResponderOverride: clients such as Firefox "
                           "will refuse to connect. Set OCSPGuardResponderOverride to the "
                           "CA's responder, or get a certificate without Must-Staple");
                continue;
            }
            GUARD_ELOG(APLOG_INFO, 0, s, e, ptemp, OGLOGNO(00018)
                       "no OCSP URL in the certificate and no OCSPGuardResponderOverride; it "
                       "is served without a staple (nothing to fix unless you want stapling: "
                       "many CAs no longer run OCSP)");
            continue;
        }
        if (!e->req_der /* built at its prime for an early exchange */
            && og_ocsp_request_der(&e->req_der, &e->req_len, pconf, e->cert) != APR_SUCCESS) {
            GUARD_ELOG(APLOG_ERR, 0, s, e, ptemp, OGLOGNO(00019)
                       "cannot build an OCSP request; it is served without a staple");
        }
    }
    return no_url;
}

/* Step 4: the store: what a previous run fetched and is still valid is
 * verified again and used; only what is missing or due gets fetched.
 * Returns how many came from the store. */
static int step_store(guard_t *g, server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    apr_time_t now;
    apr_pool_t *scratch;
    int i, stored = 0;

    guard_store_open(g, s, pconf);
    now = apr_time_now();
    /* what one file needs lives until the next one: thousands of files do
     * not pile up in ptemp (whose memory the children would inherit) */
    apr_pool_create(&scratch, ptemp);
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        apr_pool_clear(scratch);
        if (e->url && e->req_der) {
            stored += guard_store_load(g, e, s, scratch);
            guard_entry_schedule(g, e, now);
        }
        guard_entry_publish(g, e, s, scratch);
    }
    apr_pool_destroy(scratch);
    return stored;
}

/* Step 5: fetch every certificate the store could not provide (or that is
 * due anyway), concurrently, Must-Staple first, within
 * OCSPGuardPrefetchTimeout; the first handshake after this start is stapled.
 * What the deadline leaves is the refresher's at once, and said in one line. */
static void step_prefetch(guard_t *g, server_rec *s, apr_pool_t *ptemp)
{
    apr_time_t now = apr_time_now();
    apr_array_header_t *left;
    apr_hash_t *by_url;
    apr_hash_index_t *hi;
    const char *urls = "";
    int i, held, cut;

    if (g->prefetch_timeout <= 0) {
        return;
    }
    /* held back (a responder not answering) is said once per responder,
     * OG00064; not counted here */
    (void)held;
    guard_early_drain(g); /* from here on, the prefetch's own limits */
    left = guard_fetch_prefetch(g, now + apr_time_from_sec(g->prefetch_timeout), &held, &cut,
                                ptemp);
    if (!left->nelts) {
        return;
    }
    by_url = apr_hash_make(ptemp);
    for (i = 0; i < left->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(left, i, guard_entry_t *);
        int *n = apr_hash_get(by_url, e->url, APR_HASH_KEY_STRING);

        if (!n) {
            n = apr_pcalloc(ptemp, sizeof(*n));
            apr_hash_set(by_url, e->url, APR_HASH_KEY_STRING, n);
        }
        (*n)++;
        GUARD_ELOG(APLOG_DEBUG, 0, s, e, ptemp, OGLOGNO(00062)
                   "no answer before OCSPGuardPrefetchTimeout ran out: %s is asked by the "
                   "background refresh", e->url);
        apr_cpystrn(e->outcome, "no answer yet: OCSPGuardPrefetchTimeout ran out",
                    sizeof(e->outcome));
        guard_entry_publish(g, e, s, ptemp);
    }
    for (hi = apr_hash_first(ptemp, by_url); hi; hi = apr_hash_next(hi)) {
        const void *url;
        void *n;

        apr_hash_this(hi, &url, NULL, &n);
        urls = apr_psprintf(ptemp, "%s%s%s (%d)", urls, *urls ? ", " : "", (const char *)url,
                            *(int *)n);
    }
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00017)
                 "OCSPGuardPrefetchTimeout (%d s) ran out before %d of %d certificate(s) were "
                 "asked (responders: %s; %d of them were asked and had no answer yet); their "
                 "first handshakes get no staple, and the background refresh asks them now. "
                 "Raise OCSPGuardPrefetchTimeout if the responders are slow (LogLevel "
                 "ocsp_guard:debug names each certificate)",
                 g->prefetch_timeout, left->nelts, g->entries->nelts, urls, cut);
}

/* Step 6: certificates that expire soon, or did: a "browser warning" is as
 * often an expired certificate as a missing staple. */
#define GUARD_CERT_EXPIRY_WARN apr_time_from_sec(14 * 86400)
static void step_cert_expiry(guard_t *g, server_rec *s, apr_pool_t *ptemp)
{
    apr_time_t now = apr_time_now();
    int i;

    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);
        apr_time_t na = e->cert->not_after;

        if (!na || na - now > GUARD_CERT_EXPIRY_WARN) {
            continue;
        }
        if (na <= now) {
            GUARD_ELOG(APLOG_ERR, 0, s, e, ptemp, OGLOGNO(00078)
                       "the certificate itself EXPIRED at %s: every client refuses it, "
                       "stapled or not. Renew it and reload", og_iso_time(ptemp, na));
        }
        else {
            GUARD_ELOG(APLOG_WARNING, 0, s, e, ptemp, OGLOGNO(00079)
                       "the certificate itself expires at %s (in %" APR_TIME_T_FMT " day(s)): "
                       "renew it before then (clients refuse an expired certificate, stapled "
                       "or not)", og_iso_time(ptemp, na), apr_time_sec(na - now) / 86400);
        }
    }
}

/* Step 7: one line on what every certificate gets; with OCSPGuardEnforce
 * strict, revoked or unstapled Must-Staple certificates stop the start. */
static int step_summary(guard_t *g, server_rec *s, int no_url, int stored, apr_time_t start)
{
    apr_time_t now = apr_time_now();
    int i, stapled = 0, revoked = 0, failed = 0, errors = 0, fleet = 0;

    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (guard_entry_stapleable(e, now)) {
            stapled++;
            revoked += e->rec.cert_status == OG_STATUS_REVOKED;
            fleet += e->rec.source == OG_SOURCE_FLEET;
        }
        else {
            failed += e->url != NULL;
            errors += e->cert->must_staple; /* logged as OG00016 or OG00036 */
        }
    }
    errors += revoked; /* logged as OG00014 / OG00028 */
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, OGLOGNO(00020)
                 "mod_ocsp_guard %s: %d certificate(s), %d stapled (%d revoked, %d from "
                 "the store, %d from the fleet cache), %d without OCSP URL, %d without a "
                 "response yet; prefetch took %" APR_TIME_T_FMT " ms; cache %s; store %s; "
                 "fleet cache %s", MOD_OCSP_GUARD_VERSION,
                 g->entries->nelts, stapled, revoked, stored, fleet, no_url, failed,
                 apr_time_as_msec(now - start), g->cache_desc,
                 g->store_dir ? g->store_dir : "(none)",
                 guard_sconf(s)->fleet.spec ? guard_sconf(s)->fleet.spec : "(none)");
    if (errors && g->strict) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, OGLOGNO(00035)
                     "OCSPGuardEnforce strict: %d certificate(s) are revoked or Must-Staple "
                     "without a valid response (see the error lines above); refusing to "
                     "start. Fix them, or set 'OCSPGuardEnforce warn' to start anyway",
                     errors);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

/* Runs after mod_ssl's post-config, which primed every certificate. */
static int og_hook_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    guard_t *g = guard_registry();
    apr_time_t start = apr_time_now();
    int no_url, stored;

    (void)plog;
    /* 1. The dry run of the first start: nothing is fetched or created. The
     *    policy, and check_config's findings, into the error log this time. */
    if (guard_dry_run() || !g) {
        return OK;
    }
    g->s = s;
    guard_config_resolve(g, s, pconf);
    guard_check_log(g, s, 1, ptemp);
    /* 2. Requests. */
    no_url = step_requests(g, s, pconf, ptemp);
    guard_fetch_post_config(g, pconf);
    /* Nothing to staple (no SSL certificate, or OCSPGuard Off everywhere): no
     * cache, no store directory, no refresher. */
    if (g->entries->nelts == 0) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OGLOGNO(00048)
                     "mod_ocsp_guard %s: no certificate to staple (no SSL virtual host "
                     "with OCSPGuard On has a CA-issued certificate with its issuer; a "
                     "self-signed one has nothing to staple); nothing to do",
                     MOD_OCSP_GUARD_VERSION);
        return OK;
    }
    /* 3. The shared cache the children read, and the counters. */
    guard_metrics_post_config(g, s, pconf);
    if (guard_cache_post_config(g, s, pconf, ptemp) != APR_SUCCESS) {
        guard_early_end(g);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* 4. The store. */
    stored = step_store(g, s, pconf, ptemp);
    /* 5. The prefetch; then the handshake table, sized from the responses. */
    step_prefetch(g, s, ptemp);
    guard_early_end(g); /* no thread of it crosses the fork */
    step_cert_expiry(g, s, ptemp);
    guard_cache_table(g, s, pconf, ptemp);
    /* 6. The store gets what was fetched (written as the User, never by
     *    root); this parent remembers what it accepted, for its next
     *    generation; the background refresher, in one child. */
    guard_store_flush(g, s, ptemp);
    guard_store_remember(g, s, ptemp);
    guard_watchdog_post_config(g, s, pconf);
    /* 7. Summary. */
    return step_summary(g, s, no_url, stored, start);
}

/* apachectl -t and every (re)start: the stapling diagnostics. Outside of -t
 * only what stops the server is logged here (the error log is not open yet);
 * post-config logs the rest into the error log. */
static int og_hook_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                server_rec *s)
{
    guard_t *g = guard_registry();
    int test = ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;

    (void)pconf;
    (void)plog;
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_DUMP || !g) {
        return OK;
    }
    /* the dry run of a start reads no certificate file unless it could stop
     * the server; -t and the real pass read them all */
    guard_check_collect(g, s, test || !guard_dry_run());
    return guard_check_log(g, s, test, ptemp) ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

static apr_status_t og_child_exit(void *data)
{
    guard_fetch_stop(data);
    return APR_SUCCESS;
}

static void og_hook_child_init(apr_pool_t *p, server_rec *s)
{
    guard_cache_child_init(guard_registry(), p, s);
    /* mod_watchdog does not say STOPPING when a child exits: the refresher's
     * exchanges in flight get their moment here (mod_ocsp_guard_fetch.c) */
    apr_pool_cleanup_register(p, guard_registry(), og_child_exit, apr_pool_cleanup_null);
}

static void og_register_hooks(apr_pool_t *p)
{
    static const char *const after_ssl[] = { "mod_ssl.c", NULL };
    /* modules that fork in their post-config: after ours, whose threads
     * (mod_ocsp_guard_early.c, the prefetch) have ended by then */
    static const char *const before_forks[] = { "mod_cgid.c", "mod_fcgid.c", "mod_wsgi.c",
                                                NULL };

    (void)p;
    /* a fresh registry per configuration generation */
    ap_hook_pre_config(og_hook_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* the stapling diagnostics, for apachectl -t and every start */
    ap_hook_check_config(og_hook_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* after mod_ssl primed the certificates: cache, prefetch */
    ap_hook_post_config(og_hook_post_config, after_ssl, before_forks, APR_HOOK_MIDDLE);
    /* attach the cache mutex in every child */
    ap_hook_child_init(og_hook_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* mod_ssl's prime and get-resp hooks */
    guard_ssl_register_hooks();
    /* the ocsp-guard-status handler and the mod_status section */
    guard_status_register_hooks();
}

module AP_MODULE_DECLARE_DATA ocsp_guard_module = {
    STANDARD20_MODULE_STUFF,
    NULL,                 /* per-directory config */
    NULL,                 /* merge per-directory */
    guard_create_sconf,   /* per-server config */
    guard_merge_sconf,    /* merge per-server */
    guard_cmds,           /* directives */
    og_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};

/* mod_ocsp_guard.c: the module record, hook registration and the post-config
 * plan: take the certificates mod_ssl primed, fetch a verified response for
 * each before the first handshake (a bounded pool of threads, one deadline),
 * publish them to the shared cache and log what every certificate will get.
 * OCSP semantics live in the core (og_*.c); this file only orchestrates. */
#include <signal.h>
#include <pthread.h>

#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_thread_mutex.h>
#include <ap_mmn.h>
#include <http_core.h>
#include <http_main.h>
#include <util_mutex.h>
#include <openssl/ocsp.h>

#include "mod_ocsp_guard.h"
#include "mod_ocsp_guard_private.h"

#if !AP_MODULE_MAGIC_AT_LEAST(20120211, 105)
#error "mod_ocsp_guard needs httpd 2.4.48 or later (the ssl_ocsp_prime/get_resp hooks of http_ssl.h)"
#endif

#define OG_PREFETCH_THREADS 8

og_global_t *og_g;

typedef struct og_job_t {
    og_entry_t *e;                /* the entry whose request is sent */
    apr_pool_t *pool;             /* for the response body */
    int done;
    int skipped;                  /* the prefetch deadline came first */
} og_job_t;

typedef struct og_prefetch_t {
    apr_array_header_t *jobs;     /* og_job_t */
    apr_thread_mutex_t *lock;
    int next;
    apr_time_t deadline;
    const char *proxy;
} og_prefetch_t;

static int og_hook_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
static int og_hook_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s);
static void og_hook_child_init(apr_pool_t *p, server_rec *s);
static apr_status_t og_global_cleanup(void *data);
static void prefetch(og_global_t *g, server_rec *s, apr_pool_t *ptemp, int timeout_s);
static void *APR_THREAD_FUNC prefetch_worker(apr_thread_t *t, void *data);
static void entry_apply(og_global_t *g, og_entry_t *e, server_rec *s, og_source_e src,
                        apr_pool_t *p);
static const char *iso_time(apr_pool_t *p, apr_time_t t);
static const char *fetch_hint(const og_entry_t *e);

const char *og_server_desc(apr_pool_t *p, const server_rec *s)
{
    return apr_psprintf(p, "vhost %s:%d (%s:%d)", s->server_hostname ? s->server_hostname : "?",
                        s->addrs ? s->addrs->host_port : s->port,
                        s->defn_name ? s->defn_name : "?", s->defn_line_number);
}

const char *og_entry_desc(apr_pool_t *p, const og_entry_t *e)
{
    const char *vh = e->vhosts->nelts
        ? og_server_desc(p, APR_ARRAY_IDX(e->vhosts, 0, server_rec *)) : "no vhost";

    return apr_psprintf(p, "certificate '%s' (serial %s) of %s%s", e->cert->subject,
                        e->cert->serial_hex, vh,
                        e->vhosts->nelts > 1
                        ? apr_psprintf(p, " and %d more", e->vhosts->nelts - 1) : "");
}

static const char *iso_time(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;
    char buf[32];
    apr_size_t len;

    if (!t || apr_time_exp_gmt(&x, t) != APR_SUCCESS
        || apr_strftime(buf, &len, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &x) != APR_SUCCESS) {
        return "-";
    }
    return apr_pstrdup(p, buf);
}

static const char *fetch_hint(const og_entry_t *e)
{
    switch (e->fetch.err) {
    case OG_FETCH_DNS:
        return "check the responder's host name and this server's DNS resolver; "
               "if the server may only reach the web through a proxy, set OCSPGuardProxy";
    case OG_FETCH_REFUSED:
        return "check that the responder is reachable from this server: firewall rules "
               "must allow outgoing HTTP to it, or set OCSPGuardProxy";
    case OG_FETCH_TIMEOUT:
        return "a firewall that drops outgoing HTTP looks like this: allow it, or set "
               "OCSPGuardProxy; OCSPGuardResponderTimeout bounds each exchange";
    case OG_FETCH_BAD_URL:
        return "fix the URL with OCSPGuardResponderOverride";
    default:
        return "the responder misbehaves; mod_ocsp_guard retries in the background";
    }
}

/* Use the result of an exchange (e->fetch, e->result): keep a verified
 * response, log what happened and what it means for this certificate. */
static void entry_apply(og_global_t *g, og_entry_t *e, server_rec *s, og_source_e src,
                        apr_pool_t *p)
{
    const char *desc = og_entry_desc(p, e);
    apr_time_t now = apr_time_now();
    const char *keep = (e->rec.der && og_record_stapleable(&e->rec, now))
        ? apr_psprintf(p, "the current response (valid until %s) stays stapled",
                       iso_time(p, e->rec.next_update))
        : "handshakes get no staple until a fetch succeeds";

    if (e->fetch.err != OG_FETCH_OK) {
        e->failures++;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00010)
                     "%s: OCSP responder %s (%s) failed: %s: %s (after %" APR_TIME_T_FMT
                     " ms); %s. %s", desc, e->url, e->url_origin,
                     og_fetch_err_str(e->fetch.err), e->fetch.detail,
                     apr_time_as_msec(e->fetch.elapsed), keep, fetch_hint(e));
    }
    else if (e->result.verdict != OG_VERDICT_OK) {
        e->failures++;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00011)
                     "%s: response from %s rejected (%s: %s); it is not stored and "
                     "never stapled; %s", desc, e->url,
                     og_ocsp_verdict_str(e->result.verdict), e->result.detail, keep);
    }
    else if (e->result.cert_status == OG_STATUS_UNKNOWN) {
        e->failures++;
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00012)
                     "%s: responder %s answers 'unknown' for this certificate; an unknown "
                     "status is not stapled; %s. Check that %s is the responder of the "
                     "issuing CA ('%s'), or set OCSPGuardResponderOverride", desc, e->url,
                     keep, e->url, e->cert->issuer_name);
    }
    else {
        unsigned char *der = apr_pmemdup(g->pool, e->fetch.body, e->fetch.len);

        e->failures = 0;
        e->rec.der = der;
        e->rec.der_len = e->fetch.len;
        e->rec.this_update = e->result.this_update;
        e->rec.next_update = e->result.next_update;
        e->rec.fetched_at = now;
        e->rec.cert_status = e->result.cert_status;
        e->rec.source = src;
        if (og_cache_put(g, s, e, p) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00013)
                         "%s: the verified response (%" APR_SIZE_T_FMT " bytes) does not "
                         "fit OCSPGuardCache %s; it cannot be stapled: make the cache larger",
                         desc, e->rec.der_len, g->cache_desc);
        }
        else if (e->result.cert_status == OG_STATUS_REVOKED) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00014)
                         "%s: the responder %s says this certificate is REVOKED (since %s, "
                         "reason %s); the revocation is stapled and clients will refuse "
                         "the connection: replace the certificate now", desc, e->url,
                         iso_time(p, e->result.revoked_at),
                         e->result.revocation_reason >= 0
                         ? OCSP_crl_reason_str(e->result.revocation_reason) : "none given");
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OGLOGNO(00015)
                         "%s: good response from %s in %" APR_TIME_T_FMT " ms "
                         "(thisUpdate %s, nextUpdate %s), stapled", desc, e->url,
                         apr_time_as_msec(e->fetch.elapsed),
                         iso_time(p, e->result.this_update), iso_time(p, e->result.next_update));
        }
    }
    if (e->cert->must_staple && !(e->rec.der && og_record_stapleable(&e->rec, now))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00016)
                     "%s: the certificate requires stapling (Must-Staple) and has no valid "
                     "response: clients such as Firefox will refuse to connect until a "
                     "fetch from %s succeeds", desc, e->url);
    }
}

static void *APR_THREAD_FUNC prefetch_worker(apr_thread_t *t, void *data)
{
    og_prefetch_t *pf = data;
    sigset_t set;

    /* A responder closing early must not kill the parent with SIGPIPE: the
     * MPM ignores it only later. Blocked here, the write fails with EPIPE. */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (;;) {
        og_job_t *job;
        og_fetch_req_t req;
        apr_time_t now, left;
        int i;

        apr_thread_mutex_lock(pf->lock);
        i = pf->next++;
        apr_thread_mutex_unlock(pf->lock);
        if (i >= pf->jobs->nelts) {
            break;
        }
        job = &APR_ARRAY_IDX(pf->jobs, i, og_job_t);
        now = apr_time_now();
        left = pf->deadline - now;
        if (left < apr_time_from_msec(500)) {
            job->skipped = 1;
            continue;
        }
        memset(&req, 0, sizeof(req));
        req.url = job->e->url;
        req.proxy = pf->proxy;
        req.der = job->e->req_der;
        req.der_len = job->e->req_len;
        req.timeout_s = job->e->timeout_s;
        if (apr_time_from_sec(req.timeout_s) > left) {
            req.timeout_s = (int)apr_time_sec(left + apr_time_from_msec(999));
        }
        og_fetch_http(&job->e->fetch, job->pool, &req);
        if (job->e->fetch.err == OG_FETCH_OK) {
            og_ocsp_verify(&job->e->result, job->e->cert, job->e->fetch.body,
                           job->e->fetch.len, apr_time_now());
        }
        job->done = 1;
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Fetch every certificate that has a responder, concurrently, within one
 * deadline; requests for the same CertID and responder are sent once. */
static void prefetch(og_global_t *g, server_rec *s, apr_pool_t *ptemp, int timeout_s)
{
    og_prefetch_t pf;
    apr_thread_t *threads[OG_PREFETCH_THREADS];
    apr_hash_t *seen = apr_hash_make(ptemp);
    og_entry_t **dup_of = apr_pcalloc(ptemp, sizeof(og_entry_t *) * (apr_size_t)(g->entries->nelts + 1));
    int i, n, started = 0;
    apr_status_t rv;

    memset(&pf, 0, sizeof(pf));
    pf.jobs = apr_array_make(ptemp, g->entries->nelts, sizeof(og_job_t));
    pf.deadline = apr_time_now() + apr_time_from_sec(timeout_s);
    pf.proxy = og_sconf(s)->proxy;
    for (i = 0; i < g->entries->nelts; i++) {
        og_entry_t *e = APR_ARRAY_IDX(g->entries, i, og_entry_t *);
        const char *key;
        og_job_t *job;

        if (!e->url || !e->req_der) {
            continue;
        }
        key = apr_pstrcat(ptemp, e->url, " ", og_hex(ptemp, e->req_der, e->req_len), NULL);
        if ((dup_of[i] = apr_hash_get(seen, key, APR_HASH_KEY_STRING))) {
            continue;
        }
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, e);
        job = apr_array_push(pf.jobs);
        memset(job, 0, sizeof(*job));
        job->e = e;
        apr_pool_create(&job->pool, ptemp);
    }
    if (pf.jobs->nelts == 0) {
        return;
    }
    apr_thread_mutex_create(&pf.lock, APR_THREAD_MUTEX_DEFAULT, ptemp);
    n = pf.jobs->nelts < OG_PREFETCH_THREADS ? pf.jobs->nelts : OG_PREFETCH_THREADS;
    for (i = 0; i < n; i++) {
        rv = apr_thread_create(&threads[started], NULL, prefetch_worker, &pf, ptemp);
        if (rv == APR_SUCCESS) {
            started++;
        }
    }
    if (!started) {
        prefetch_worker(NULL, &pf); /* cannot happen in practice; still fetch */
    }
    for (i = 0; i < started; i++) {
        apr_thread_join(&rv, threads[i]);
    }

    for (i = 0; i < g->entries->nelts; i++) {
        og_entry_t *e = APR_ARRAY_IDX(g->entries, i, og_entry_t *);

        if (dup_of[i]) {
            /* same request, same answer: verify it for this certificate */
            e->fetch = dup_of[i]->fetch;
            if (e->fetch.err == OG_FETCH_OK) {
                og_ocsp_verify(&e->result, e->cert, e->fetch.body, e->fetch.len,
                               apr_time_now());
            }
        }
    }
    for (i = 0; i < pf.jobs->nelts; i++) {
        og_job_t *job = &APR_ARRAY_IDX(pf.jobs, i, og_job_t);
        if (job->skipped) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00017)
                         "%s: OCSPGuardPrefetchTimeout (%d s) ran out before %s was asked; "
                         "the first handshakes get no staple and the background refresh "
                         "fetches it. Raise OCSPGuardPrefetchTimeout if responders are slow",
                         og_entry_desc(ptemp, job->e), timeout_s, job->e->url);
        }
    }
    for (i = 0; i < g->entries->nelts; i++) {
        og_entry_t *e = APR_ARRAY_IDX(g->entries, i, og_entry_t *);
        og_entry_t *src = dup_of[i] ? dup_of[i] : e;
        int j, asked = 0;

        for (j = 0; j < pf.jobs->nelts; j++) {
            og_job_t *job = &APR_ARRAY_IDX(pf.jobs, j, og_job_t);
            if (job->e == src && job->done) {
                asked = 1;
            }
        }
        if (asked) {
            e->fetched = 1;
            entry_apply(g, e, s, OG_SOURCE_PREFETCH, ptemp);
        }
    }
}

static apr_status_t og_global_cleanup(void *data)
{
    if (og_g == data) {
        og_g = NULL;
    }
    return APR_SUCCESS;
}

static int og_hook_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    og_global_t *g = apr_pcalloc(pconf, sizeof(*g));

    (void)plog;
    (void)ptemp;
    g->pool = pconf;
    g->by_id = apr_hash_make(pconf);
    g->entries = apr_array_make(pconf, 16, sizeof(og_entry_t *));
    og_g = g;
    apr_pool_cleanup_register(pconf, g, og_global_cleanup, apr_pool_cleanup_null);
    return ap_mutex_register(pconf, OG_MUTEX_TYPE, NULL, APR_LOCK_DEFAULT, 0);
}

/* Runs after mod_ssl's post-config, which primed every certificate. */
static int og_hook_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    og_global_t *g = og_g;
    og_sconf_t *sc = og_sconf(s);
    int prefetch_timeout = sc->prefetch_timeout != OG_UNSET
        ? sc->prefetch_timeout : OG_DEFAULT_PREFETCH_TIMEOUT;
    apr_time_t start = apr_time_now(), now;
    int i, stapled = 0, revoked = 0, no_url = 0, failed = 0;

    (void)plog;
    /* 1. The dry run of the first start: nothing is fetched or created. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG || !g) {
        return OK;
    }
    g->s = s;

    /* 2. Requests for every certificate with a responder; the others are told
     *    once, at info level: many CAs stopped publishing OCSP in 2025. */
    for (i = 0; i < g->entries->nelts; i++) {
        og_entry_t *e = APR_ARRAY_IDX(g->entries, i, og_entry_t *);

        if (!e->url) {
            no_url++;
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OGLOGNO(00018)
                         "%s: no OCSP URL in the certificate and no "
                         "OCSPGuardResponderOverride; it is served without a staple "
                         "(nothing to fix unless you want stapling: many CAs no longer "
                         "run OCSP)", og_entry_desc(ptemp, e));
            continue;
        }
        if (og_ocsp_request_der(&e->req_der, &e->req_len, pconf, e->cert) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00019)
                         "%s: cannot build an OCSP request; it is served without a staple",
                         og_entry_desc(ptemp, e));
        }
    }

    /* 3. The shared cache the children read. */
    if (og_cache_post_config(g, s, pconf, ptemp) != APR_SUCCESS) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }

    /* 4. Prefetch: the first handshake after this start is stapled. */
    if (prefetch_timeout > 0) {
        prefetch(g, s, ptemp, prefetch_timeout);
    }

    /* 5. Summary. */
    now = apr_time_now();
    for (i = 0; i < g->entries->nelts; i++) {
        og_entry_t *e = APR_ARRAY_IDX(g->entries, i, og_entry_t *);
        if (e->rec.der && og_record_stapleable(&e->rec, now)) {
            stapled++;
            revoked += e->rec.cert_status == OG_STATUS_REVOKED;
        }
        else if (e->url) {
            failed++;
        }
    }
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, OGLOGNO(00020)
                 "mod_ocsp_guard %s: %d certificate(s), %d stapled (%d revoked), "
                 "%d without OCSP URL, %d without a response yet; prefetch took %"
                 APR_TIME_T_FMT " ms; cache %s", MOD_OCSP_GUARD_VERSION, g->entries->nelts,
                 stapled, revoked, no_url, failed, apr_time_as_msec(now - start),
                 g->cache_desc);
    return OK;
}

static void og_hook_child_init(apr_pool_t *p, server_rec *s)
{
    og_cache_child_init(og_g, p, s);
}

static void og_register_hooks(apr_pool_t *p)
{
    static const char *const after_ssl[] = { "mod_ssl.c", NULL };

    (void)p;
    /* a fresh registry per configuration generation */
    ap_hook_pre_config(og_hook_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* after mod_ssl primed the certificates: cache, prefetch */
    ap_hook_post_config(og_hook_post_config, after_ssl, NULL, APR_HOOK_MIDDLE);
    /* attach the cache mutex in every child */
    ap_hook_child_init(og_hook_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    /* mod_ssl's prime and get-resp hooks */
    og_ssl_register_hooks();
}

module AP_MODULE_DECLARE_DATA ocsp_guard_module = {
    STANDARD20_MODULE_STUFF,
    NULL,                 /* per-directory config */
    NULL,                 /* merge per-directory */
    og_create_sconf,      /* per-server config */
    og_merge_sconf,       /* merge per-server */
    og_cmds,              /* directives */
    og_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};

/* mod_ocsp_guard_early.c: the prefetch's exchanges, started while mod_ssl is
 * still loading certificates. mod_ssl primes every certificate in its own
 * post-config, one after the other: with thousands of them, most of the
 * start. An exchange that can only be the prefetch's (no fleet cache, no
 * proxy, nothing in OCSPGuardStore for the certificate, the responder named
 * by the certificate itself) starts at the certificate's prime, on threads
 * of its own. The prefetch's job for the certificate then takes that answer
 * instead of asking again (guard_early_take) and verifies and applies it as
 * its own: one request per certificate, as without this. A responder that
 * fails GUARD_FETCH_HOLD_AFTER times in a row gets no more early exchanges
 * (the prefetch holds and probes it). Workers touch no APR pool but their
 * own, and everything ends before post-config returns: threads must not
 * cross the MPM's fork. */
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <http_main.h>

#include "mod_ocsp_guard_private.h"
#include "og_workq.h"

#define GUARD_EARLY_KEYS  32 /* responders with early exchanges; more wait for the prefetch */
#define GUARD_EARLY_IDLE  16 /* kept-alive connections per responder */
#define GUARD_EARLY_GRACE apr_time_from_sec(1)

enum { EARLY_QUEUED, EARLY_RUNNING, EARLY_DONE, EARLY_DECLINED, EARLY_CANCELLED };

typedef struct early_resp_t {
    int idle[GUARD_EARLY_IDLE];
    int nidle;
    int fails; /* consecutive failures: atomic */
} early_resp_t;

struct guard_early_set_t {
    apr_pool_t *pool;               /* unmanaged; the main thread's only */
    og_workq_t *q;
    int off;                        /* no early exchange in this start */
    int dfd;                        /* OCSPGuardStore (read-only), -1: none */
    apr_hash_t *keys;               /* URL -> int key */
    int nkeys;
    int started;
    apr_interval_time_t budget;     /* OCSPGuardPrefetchTimeout: an exchange started
                                     * at t ends by t + budget, before the prefetch's
                                     * deadline (post-config's start + budget) */
    apr_thread_mutex_t *lock;       /* idle connections, the condition */
    apr_thread_cond_t *done;        /* an exchange ended */
    early_resp_t resp[GUARD_EARLY_KEYS];
};

struct guard_early_t {
    int state;                      /* EARLY_*: atomic */
    int key;
    const char *url;                /* what it asks */
    const unsigned char *der;       /* the request (the entry's) */
    apr_size_t der_len;
    int timeout_s;
    guard_early_set_t *set;
    og_fetch_res_t fetch;           /* body malloc'ed (the exchange's pool is gone) */
    int cut;                        /* it timed out at the budget, not at its own
                                     * timeout: no answer yet, not a failure */
};

static void early_run(void *data, void *baton);
static guard_early_set_t *set_make(guard_t *g);

static void early_run(void *data, void *baton)
{
    guard_early_t *x = data;
    guard_early_set_t *set = x->set;
    early_resp_t *r = &set->resp[x->key];
    og_fetch_req_t req;
    apr_pool_t *pool = NULL;
    int expect = EARLY_QUEUED, fd = -1, state = EARLY_DONE;

    (void)baton;
    if (!__atomic_compare_exchange_n(&x->state, &expect, EARLY_RUNNING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        return; /* the prefetch asked itself */
    }
    if (__atomic_load_n(&r->fails, __ATOMIC_RELAXED) >= GUARD_FETCH_HOLD_AFTER
        || apr_pool_create_unmanaged_ex(&pool, NULL, NULL) != APR_SUCCESS) {
        state = EARLY_DECLINED; /* the prefetch holds and probes a failing responder */
    }
    else {
        apr_time_t now = apr_time_now(), own = now + apr_time_from_sec(x->timeout_s);

        memset(&req, 0, sizeof(req));
        req.deadline = now + set->budget < own ? now + set->budget : own;
        apr_thread_mutex_lock(set->lock);
        fd = r->nidle ? r->idle[--r->nidle] : -1;
        apr_thread_mutex_unlock(set->lock);
        req.keep_fd = &fd;
        req.url = x->url;
        req.der = x->der;
        req.der_len = x->der_len;
        req.timeout_s = x->timeout_s;
        og_fetch_http(&x->fetch, pool, &req);
        if (x->fetch.err == OG_FETCH_TIMEOUT && req.deadline < own) {
            x->cut = 1;
        }
        else if (og_attempt_responder_failed(&x->fetch)) {
            __atomic_add_fetch(&r->fails, 1, __ATOMIC_RELAXED);
        }
        else {
            __atomic_store_n(&r->fails, 0, __ATOMIC_RELAXED);
            og_workq_key_max(set->q, x->key, GUARD_FETCH_PER_RESPONDER); /* it answers */
        }
        /* the answer alone is kept, not the exchange's pool (thousands wait
         * for the prefetch) */
        if (x->fetch.err == OG_FETCH_OK) {
            unsigned char *body = malloc(x->fetch.len ? x->fetch.len : 1);

            if (body) {
                memcpy(body, x->fetch.body, x->fetch.len);
                x->fetch.body = body;
            }
            else {
                x->fetch.body = NULL;
                x->fetch.err = OG_FETCH_OTHER;
                apr_cpystrn(x->fetch.detail, "out of memory", sizeof(x->fetch.detail));
            }
        }
        else {
            x->fetch.body = NULL;
        }
        apr_pool_destroy(pool);
    }
    apr_thread_mutex_lock(set->lock);
    if (fd >= 0 && r->nidle < GUARD_EARLY_IDLE) {
        r->idle[r->nidle++] = fd;
        fd = -1;
    }
    __atomic_store_n(&x->state, state, __ATOMIC_RELEASE);
    apr_thread_cond_broadcast(set->done);
    apr_thread_mutex_unlock(set->lock);
    if (fd >= 0) {
        close(fd);
    }
}

/* At the first prime of the real start: is this start one for early
 * exchanges at all? The policy is the main server's, as post-config will
 * resolve it. */
static guard_early_set_t *set_make(guard_t *g)
{
    guard_early_set_t *set = calloc(1, sizeof(*set));
    server_rec *main_s = ap_server_conf;
    const guard_sconf_t *sc;
    const char *dir;

    if (!set) {
        return NULL;
    }
    set->dfd = -1;
    set->off = 1;
    if (!main_s || apr_pool_create_unmanaged_ex(&set->pool, NULL, NULL) != APR_SUCCESS) {
        set->pool = NULL;
        return set;
    }
    sc = guard_sconf(main_s);
    guard_config_resolve(g, main_s, g->pool);
    if (g->prefetch_timeout <= 0 || g->proxy || sc->fleet.spec) {
        return set; /* no prefetch; or a proxy or fleet cache decides first */
    }
    set->budget = apr_time_from_sec(g->prefetch_timeout);
    if (!g->store_problem) {
        /* only "is there a file": metadata, no link followed, nothing opened
         * inside the directory (post-config reads the store, safely) */
        dir = guard_sconf_store_dir(set->pool, sc);
        set->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (set->dfd < 0 && errno != ENOENT) {
            return set;
        }
    }
    set->keys = apr_hash_make(set->pool);
    if (apr_thread_mutex_create(&set->lock, APR_THREAD_MUTEX_DEFAULT, set->pool) != APR_SUCCESS
        || apr_thread_cond_create(&set->done, set->pool) != APR_SUCCESS
        || og_workq_create(&set->q, GUARD_FETCH_THREADS, GUARD_EARLY_KEYS,
                           GUARD_FETCH_PER_RESPONDER, early_run, NULL, NULL) != APR_SUCCESS) {
        set->q = NULL;
        return set;
    }
    /* one exchange per responder until it has answered once (a responder
     * down at the start gets a few requests, not its 128 at once) */
    og_workq_key_max(set->q, -1, 1);
    set->off = 0;
    return set;
}

void guard_early_prime(guard_t *g, guard_entry_t *e)
{
    guard_early_set_t *set;
    guard_early_t *x;
    struct stat st;
    char name[OG_CERT_ID_LEN * 2 + sizeof(OG_STORE_SUFFIX)];
    void *jobs[64];
    int ran[64], *key;

    if (!g->early && !(g->early = set_make(g))) {
        return;
    }
    set = g->early;
    if (set->off || !e->url || e->url_from != GUARD_URL_AIA || !e->cert->issuer) {
        return;
    }
    while (og_workq_take(set->q, jobs, ran, 64) > 0) {
        /* finished: the entries keep them */
    }
    apr_snprintf(name, sizeof(name), "%s%s", e->cert->id_hex, OG_STORE_SUFFIX);
    if (set->dfd >= 0 && (fstatat(set->dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)) {
        return; /* the store has something: post-config judges it first */
    }
    if (!(key = apr_hash_get(set->keys, e->url, APR_HASH_KEY_STRING))) {
        if (set->nkeys == GUARD_EARLY_KEYS) {
            return;
        }
        key = apr_palloc(set->pool, sizeof(*key));
        *key = set->nkeys++;
        apr_hash_set(set->keys, apr_pstrdup(set->pool, e->url), APR_HASH_KEY_STRING, key);
    }
    if (og_ocsp_request_der(&e->req_der, &e->req_len, g->pool, e->cert) != APR_SUCCESS) {
        e->req_der = NULL; /* post-config tries again, and says so */
        return;
    }
    x = apr_pcalloc(g->pool, sizeof(*x));
    x->state = EARLY_QUEUED;
    x->key = *key;
    x->url = e->url;
    x->der = e->req_der;
    x->der_len = e->req_len;
    x->timeout_s = e->timeout_s;
    x->set = set;
    if (og_workq_push(set->q, x, x->key, e->cert->must_staple, 0) == APR_SUCCESS) {
        e->early = x;
        set->started++;
    }
}

int guard_early_take(guard_entry_t *e, og_fetch_res_t *res, apr_pool_t *p, apr_time_t until)
{
    guard_early_t *x = e->early;
    guard_early_set_t *set;
    int expect = EARLY_QUEUED, state;

    if (!x) {
        return 0;
    }
    set = x->set;
    /* never started: ask yourself; nor when another virtual host of the
     * certificate overrides the responder it asks */
    if (__atomic_compare_exchange_n(&x->state, &expect, EARLY_CANCELLED, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)
        || strcmp(x->url, e->url) != 0) {
        return 0;
    }
    /* it ends by its own deadline, which is never later than the job's
     * (`until`): started sooner, with the same timeout and budget; the
     * grace only covers the moment it takes to return */
    until += GUARD_EARLY_GRACE;
    apr_thread_mutex_lock(set->lock);
    while ((state = __atomic_load_n(&x->state, __ATOMIC_ACQUIRE)) == EARLY_RUNNING) {
        apr_time_t now = apr_time_now();

        if (now >= until) {
            break;
        }
        apr_thread_cond_timedwait(set->done, set->lock, until - now);
    }
    apr_thread_mutex_unlock(set->lock);
    if (state == EARLY_RUNNING) {
        return -1; /* still asking at the deadline */
    }
    if (state != EARLY_DONE) {
        return 0;
    }
    if (x->cut) {
        return -1; /* it ran out of the prefetch's time */
    }
    *res = x->fetch;
    if (x->fetch.body) {
        res->body = apr_pmemdup(p, x->fetch.body, x->fetch.len);
        free(x->fetch.body);
        x->fetch.body = NULL;
    }
    e->early = NULL;
    return 1;
}

void guard_early_drain(guard_t *g)
{
    if (g->early && g->early->q) {
        /* not started yet: their prefetch jobs ask (under its limits) */
        og_workq_drop_queued(g->early->q);
    }
}

void guard_early_end(guard_t *g)
{
    guard_early_set_t *set = g->early;
    int i, j;

    if (!set) {
        return;
    }
    g->early = NULL;
    if (set->q) {
        /* running exchanges end by their own timeout (OCSPGuardResponderTimeout) */
        og_workq_destroy(set->q);
    }
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (e->early) {
            free(e->early->fetch.body); /* answered, never taken */
        }
        e->early = NULL;
    }
    for (i = 0; i < GUARD_EARLY_KEYS; i++) {
        for (j = 0; j < set->resp[i].nidle; j++) {
            close(set->resp[i].idle[j]);
        }
    }
    if (set->dfd >= 0) {
        close(set->dfd);
    }
    if (set->started && g->s) {
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, g->s, OGLOGNO(00083)
                     "%d exchange(s) of the prefetch started while mod_ssl loaded the "
                     "certificates", set->started);
    }
    if (set->pool) {
        apr_pool_destroy(set->pool);
    }
    free(set);
#ifdef __GLIBC__
    malloc_trim(0); /* the workers' arenas: not carried into every child */
#endif
}

/* mod_ocsp_guard_fleet.c: the fleet cache (OCSPGuardFleetCache), through
 * httpd's own mod_socache_redis or mod_socache_memcache. Untrusted shared
 * storage: the handshake path never reads it; the one fetch path
 * (mod_ocsp_guard_fetch.c) looks there before asking a responder, verifies
 * what it finds like a responder's answer, and publishes what it fetched.
 *
 * Neither provider bounds a read from a server that accepted the connection
 * and then stopped answering (apr_memcache reads without a timeout, and
 * RedisTimeout reaches apr_redis in the wrong unit), so no exchange calls
 * them directly: a few threads of this file do, and a lookup waits for them
 * at most until its own deadline. A lookup left unanswered marks the cache
 * as stalled: nothing more is asked of it until that call returns, and the
 * responders are asked instead. Publishing is queued and never waits.
 *
 * The providers log an error for every failed call; this file says one line
 * per change of the cache's state instead (their own lines come back with
 * LogLevel socache_redis:debug or socache_memcache:debug). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <http_core.h>

#include "mod_ocsp_guard_private.h"
#include "og_fleet.h"

#define FLEET_THREADS     4
#define FLEET_QUEUE_MAX   4096    /* publications waiting; more are dropped */
#define FLEET_KEY_LEN     (OG_CERT_ID_LEN + 1)
/* how long a lookup may wait, at most (a network cache answers in ms) */
#define FLEET_WAIT_MAX    apr_time_from_msec(1000)
#define FLEET_CLOSE_WAIT  apr_time_from_sec(2)

typedef enum { OP_LOOK, OP_STORE } op_kind_e;

typedef struct fleet_op_t {
    struct fleet_op_t *next;
    op_kind_e kind;
    unsigned char key[FLEET_KEY_LEN];
    /* store */
    apr_time_t expiry;
    unsigned char *data;            /* malloc'ed */
    unsigned int len;
    /* lookup: the response and the claim, read by a thread */
    unsigned char *val;             /* malloc'ed, OG_FLEET_VALUE_MAX */
    unsigned int vlen;
    int found;
    unsigned char claim[OG_FLEET_CLAIM_LEN];
    int claim_found;
    int done;
    int abandoned;                  /* its caller gave up: the thread frees it */
} fleet_op_t;

typedef enum { STATE_UP = 0, STATE_DOWN, STATE_STALLED } state_e;

struct guard_fleet_t {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    fleet_op_t *head, *tail;
    int nstores;
    int stop, live, orphaned;
    apr_time_t busy_since[FLEET_THREADS];
    apr_pool_t *pool;               /* the instance's; unmanaged */
    const ap_socache_provider_t *prov;
    ap_socache_instance_t *inst;
    server_rec quiet;               /* the main server, the provider's own lines quieted */
    server_rec *s;
    const char *desc;               /* "redis:127.0.0.1:6379 (httpd.conf:12)" */
    /* under lock */
    state_e state;
    apr_time_t state_since;
    char last_error[160];
    apr_uint32_t gen;               /* bumped at each change of state */
    apr_uint64_t lookups, hits, published, errors, dropped;
};

static void *fleet_thread(void *arg);
static void op_free(fleet_op_t *op);
static void push(guard_fleet_t *f, fleet_op_t *op, int front);
static int stalled(guard_fleet_t *f, apr_time_t now);
static void note(guard_fleet_t *f, apr_status_t rv, int worked, const char *what);
static void fleet_free(guard_fleet_t *f);
static void quiet_provider(guard_fleet_t *f, const char *name);

static void op_free(fleet_op_t *op)
{
    free(op->data);
    free(op->val);
    free(op);
}

static void fleet_free(guard_fleet_t *f)
{
    fleet_op_t *op;

    while ((op = f->head)) {
        f->head = op->next;
        op_free(op);
    }
    if (f->inst && f->prov) {
        f->prov->destroy(f->inst, &f->quiet);
    }
    if (f->pool) {
        apr_pool_destroy(f->pool);
    }
    pthread_cond_destroy(&f->work);
    pthread_cond_destroy(&f->done);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* The providers' failures are ours to say, once per change (see above). */
static void quiet_provider(guard_fleet_t *f, const char *name)
{
    module *m = ap_find_linked_module(apr_pstrcat(f->pool, "mod_socache_", name, ".c", NULL));

    f->quiet = *f->s;
    if (!m || APLOG_MODULE_IS_LEVEL(f->s, m->module_index, APLOG_DEBUG)) {
        return;
    }
    f->quiet.log = *ap_new_log_config(f->pool, &f->s->log);
    ap_set_module_loglevel(f->pool, &f->quiet.log, m->module_index, APLOG_EMERG);
}

/* The instance's pool: the providers make a bucket allocator and sub-pools
 * from it for every call, from every thread that calls: its allocator
 * needs a mutex of its own (an unmanaged pool's has none). */
static apr_pool_t *threads_pool(void)
{
    apr_allocator_t *alloc = NULL;
    apr_thread_mutex_t *mutex = NULL;
    apr_pool_t *pool = NULL;

    if (apr_allocator_create(&alloc) != APR_SUCCESS) {
        return NULL;
    }
    if (apr_pool_create_unmanaged_ex(&pool, NULL, alloc) != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return NULL;
    }
    apr_allocator_owner_set(alloc, pool);
    if (apr_thread_mutex_create(&mutex, APR_THREAD_MUTEX_DEFAULT, pool) != APR_SUCCESS) {
        apr_pool_destroy(pool);
        return NULL;
    }
    apr_allocator_mutex_set(alloc, mutex);
    return pool;
}

guard_fleet_t *guard_fleet_open(guard_t *g, server_rec *s)
{
    guard_sconf_t *sc = guard_sconf(s);
    const char *spec = sc->fleet.spec, *sep, *name;
    struct ap_socache_hints hints;
    guard_fleet_t *f;
    const char *err;
    apr_status_t rv;
    int i;

    if (!spec || !sc->fleet.provider || !(f = calloc(1, sizeof(*f)))) {
        return NULL;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->work, NULL);
    pthread_cond_init(&f->done, NULL);
    f->s = s;
    f->prov = sc->fleet.provider;
    f->state_since = apr_time_now();
    if (!(f->pool = threads_pool())) {
        fleet_free(f);
        return NULL;
    }
    f->desc = apr_psprintf(f->pool, "%s (%s:%d)", spec, sc->fleet.at.file, sc->fleet.at.line);
    sep = ap_strchr_c(spec, ':');
    name = apr_pstrmemdup(f->pool, spec, (apr_size_t)(sep - spec));
    quiet_provider(f, name);
    /* an instance of this process' own: connections are not shared with
     * the processes forked from it */
    err = f->prov->create(&f->inst, sep + 1, f->pool, f->pool);
    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = FLEET_KEY_LEN;
    hints.avg_obj_size = 2048;
    hints.expiry_interval = 60;
    if (err || (rv = f->prov->init(f->inst, "ocsp_guard", &hints, &f->quiet, f->pool))
               != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, err ? 0 : rv, s, OGLOGNO(00068)
                     "OCSPGuardFleetCache %s cannot be used: %s; responses are fetched from "
                     "the responders only (handshakes are not affected). Check the "
                     "directive's host:port", f->desc, err ? err : "its initialisation failed");
        f->inst = NULL;
        fleet_free(f);
        return NULL;
    }
    for (i = 0; i < FLEET_THREADS; i++) {
        pthread_t t;
        pthread_attr_t a;

        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        pthread_mutex_lock(&f->lock);
        if (pthread_create(&t, &a, fleet_thread, f) == 0) {
            f->live++;
        }
        pthread_mutex_unlock(&f->lock);
        pthread_attr_destroy(&a);
    }
    if (!f->live) {
        fleet_free(f);
        return NULL;
    }
    (void)g;
    return f;
}

/* Stop the threads; one still inside a call to a cache that stopped
 * answering is left to finish on its own, and frees what is left. */
void guard_fleet_close(guard_fleet_t *f)
{
    struct timespec ts;
    apr_time_t until = apr_time_now() + FLEET_CLOSE_WAIT;
    fleet_op_t *op, **pp;

    if (!f) {
        return;
    }
    ts.tv_sec = (time_t)apr_time_sec(until);
    ts.tv_nsec = (long)apr_time_usec(until) * 1000;
    pthread_mutex_lock(&f->lock);
    f->stop = 1;
    /* queued publications are dropped; lookups have callers waiting */
    for (pp = &f->head; (op = *pp);) {
        if (op->kind == OP_STORE) {
            *pp = op->next;
            op_free(op);
        }
        else {
            pp = &op->next;
        }
    }
    f->tail = NULL;
    for (op = f->head; op; op = op->next) {
        f->tail = op;
    }
    pthread_cond_broadcast(&f->work);
    while (f->live > 0 && pthread_cond_timedwait(&f->done, &f->lock, &ts) != ETIMEDOUT) {
    }
    if (f->live > 0) {
        f->orphaned = 1;
        pthread_mutex_unlock(&f->lock);
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, f->s, OGLOGNO(00069)
                     "OCSPGuardFleetCache %s: a call to it has not returned for more than %"
                     APR_TIME_T_FMT " s; it is abandoned (the cache accepts connections but "
                     "does not answer: check it)", f->desc, apr_time_sec(FLEET_CLOSE_WAIT));
        return;
    }
    pthread_mutex_unlock(&f->lock);
    fleet_free(f);
}

static void push(guard_fleet_t *f, fleet_op_t *op, int front)
{
    op->next = NULL;
    if (front) {
        op->next = f->head;
        f->head = op;
        if (!f->tail) {
            f->tail = op;
        }
    }
    else {
        if (f->tail) {
            f->tail->next = op;
        }
        else {
            f->head = op;
        }
        f->tail = op;
    }
    pthread_cond_signal(&f->work);
}

/* Is a thread inside a call that has taken longer than any lookup waits? */
static int stalled(guard_fleet_t *f, apr_time_t now)
{
    int i;

    for (i = 0; i < FLEET_THREADS; i++) {
        if (f->busy_since[i] && now - f->busy_since[i] > FLEET_WAIT_MAX) {
            return 1;
        }
    }
    return 0;
}

/* After a call, under the lock: the cache's state, and its line when it
 * changes. `worked`: the call proves the cache answers (a value read, a
 * value stored); a miss proves nothing (both providers also answer "not
 * found" while they hold the server for dead). */
static void note(guard_fleet_t *f, apr_status_t rv, int worked, const char *what)
{
    apr_time_t now = apr_time_now();
    char buf[120];

    if (worked) {
        if (f->state != STATE_UP) {
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, f->s, OGLOGNO(00070)
                         "OCSPGuardFleetCache %s works again after %" APR_TIME_T_FMT " s "
                         "(last error: %s); responses are taken from it and published to it "
                         "again", f->desc, apr_time_sec(now - f->state_since), f->last_error);
            f->state = STATE_UP;
            f->state_since = now;
            f->gen++;
        }
        return;
    }
    if (rv == APR_SUCCESS || (rv == APR_NOTFOUND && strcmp(what, "store"))) {
        return;
    }
    f->errors++;
    apr_snprintf(f->last_error, sizeof(f->last_error), "%s failed: %s", what,
                 rv == APR_NOTFOUND ? "server unreachable (marked dead by the provider)"
                 : apr_strerror(rv, buf, sizeof(buf)));
    if (f->state == STATE_UP) {
        f->state = STATE_DOWN;
        f->state_since = now;
        f->gen++;
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, f->s, OGLOGNO(00071)
                     "OCSPGuardFleetCache %s fails (%s); handshakes are not affected (they "
                     "never read it): responses are fetched from the responders until it "
                     "works again", f->desc, f->last_error);
    }
}

static void *fleet_thread(void *arg)
{
    guard_fleet_t *f = arg;
    apr_pool_t *p = NULL;
    int me, last;

    pthread_mutex_lock(&f->lock);
    me = f->live - 1; /* its slot in busy_since: the order of creation */
    pthread_mutex_unlock(&f->lock);
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    pthread_mutex_lock(&f->lock);
    for (;;) {
        fleet_op_t *op;
        apr_status_t rv, crv = APR_NOTFOUND;
        unsigned int n;

        while (!f->stop && !f->head) {
            pthread_cond_wait(&f->work, &f->lock);
        }
        if (!(op = f->head) || !p) {
            break;
        }
        f->head = op->next;
        if (!f->head) {
            f->tail = NULL;
        }
        f->nstores -= op->kind == OP_STORE;
        f->busy_since[me] = apr_time_now();
        pthread_mutex_unlock(&f->lock);

        apr_pool_clear(p);
        if (op->kind == OP_STORE) {
            rv = f->prov->store(f->inst, &f->quiet, op->key, FLEET_KEY_LEN, op->expiry,
                                op->data, op->len, p);
        }
        else {
            n = OG_FLEET_VALUE_MAX;
            rv = f->prov->retrieve(f->inst, &f->quiet, op->key, FLEET_KEY_LEN, op->val, &n, p);
            op->found = rv == APR_SUCCESS;
            op->vlen = op->found ? n : 0;
            if (rv == APR_SUCCESS || rv == APR_NOTFOUND) {
                unsigned char ckey[FLEET_KEY_LEN];

                memcpy(ckey, op->key, OG_CERT_ID_LEN);
                ckey[OG_CERT_ID_LEN] = OG_FLEET_KEY_CLAIM;
                n = sizeof(op->claim);
                crv = f->prov->retrieve(f->inst, &f->quiet, ckey, FLEET_KEY_LEN, op->claim, &n,
                                        p);
                op->claim_found = crv == APR_SUCCESS && n == sizeof(op->claim);
            }
        }

        pthread_mutex_lock(&f->lock);
        f->busy_since[me] = 0;
        if (op->kind == OP_STORE) {
            f->published += rv == APR_SUCCESS;
            note(f, rv, rv == APR_SUCCESS, "store");
            op_free(op);
            continue;
        }
        f->lookups++;
        f->hits += op->found;
        note(f, rv, op->found || op->claim_found, "lookup");
        if (op->abandoned) {
            op_free(op);
        }
        else {
            op->done = 1;
            pthread_cond_broadcast(&f->done);
        }
    }
    last = --f->live == 0;
    pthread_cond_broadcast(&f->done);
    if (last && f->orphaned) {
        pthread_mutex_unlock(&f->lock);
        fleet_free(f);
    }
    else {
        pthread_mutex_unlock(&f->lock);
    }
    if (p) {
        apr_pool_destroy(p);
    }
    return NULL;
}

void guard_fleet_lookup(guard_fleet_t *f, const unsigned char *id, apr_time_t until,
                        guard_fleet_look_t *out, apr_pool_t *p)
{
    apr_time_t now = apr_time_now();
    struct timespec ts;
    fleet_op_t *op;
    int said = 0;

    memset(out, 0, sizeof(*out));
    out->unavailable = 1;
    if (!f || !(op = calloc(1, sizeof(*op))) || !(op->val = malloc(OG_FLEET_VALUE_MAX))) {
        if (f && op) {
            op_free(op);
        }
        return;
    }
    if (until > now + FLEET_WAIT_MAX) {
        until = now + FLEET_WAIT_MAX;
    }
    ts.tv_sec = (time_t)apr_time_sec(until);
    ts.tv_nsec = (long)apr_time_usec(until) * 1000;
    op->kind = OP_LOOK;
    memcpy(op->key, id, OG_CERT_ID_LEN);
    op->key[OG_CERT_ID_LEN] = OG_FLEET_KEY_RESPONSE;
    pthread_mutex_lock(&f->lock);
    if (f->stop || stalled(f, now)) {
        pthread_mutex_unlock(&f->lock);
        op_free(op);
        return;
    }
    push(f, op, 1); /* before the publications: an exchange waits for it */
    while (!op->done && pthread_cond_timedwait(&f->done, &f->lock, &ts) != ETIMEDOUT) {
    }
    if (!op->done) {
        op->abandoned = 1;
        if (f->state != STATE_STALLED) {
            f->state = STATE_STALLED;
            f->state_since = apr_time_now();
            apr_snprintf(f->last_error, sizeof(f->last_error), "no answer within %"
                         APR_TIME_T_FMT " ms", apr_time_as_msec(until - now));
            f->gen++;
            said = 1;
        }
        pthread_mutex_unlock(&f->lock);
        if (said) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, f->s, OGLOGNO(00072)
                         "OCSPGuardFleetCache %s did not answer a lookup within %"
                         APR_TIME_T_FMT " ms; it is not asked again until that call returns, "
                         "and the responders are asked instead (handshakes are not affected)",
                         f->desc, apr_time_as_msec(until - now));
        }
        return;
    }
    pthread_mutex_unlock(&f->lock);
    out->unavailable = 0;
    if (op->found) {
        out->value = apr_pmemdup(p, op->val, op->vlen);
        out->len = op->vlen;
    }
    out->claimed = op->claim_found
                   && og_fleet_claim_decode(&out->claim, op->claim, sizeof(op->claim)) == 0;
    op_free(op);
}

static void enqueue_store(guard_fleet_t *f, unsigned char kind, const unsigned char *id,
                          const unsigned char *data, apr_size_t len, apr_time_t expiry)
{
    fleet_op_t *op;

    if (!f || !len || !(op = calloc(1, sizeof(*op))) || !(op->data = malloc(len))) {
        if (f && len && op) {
            op_free(op);
        }
        return;
    }
    op->kind = OP_STORE;
    memcpy(op->key, id, OG_CERT_ID_LEN);
    op->key[OG_CERT_ID_LEN] = kind;
    memcpy(op->data, data, len);
    op->len = (unsigned int)len;
    op->expiry = expiry;
    pthread_mutex_lock(&f->lock);
    if (f->stop || f->nstores >= FLEET_QUEUE_MAX) {
        f->dropped++;
        pthread_mutex_unlock(&f->lock);
        op_free(op);
        return;
    }
    f->nstores++;
    push(f, op, 0);
    pthread_mutex_unlock(&f->lock);
}

void guard_fleet_publish(guard_fleet_t *f, const unsigned char *id, const unsigned char *der,
                         apr_size_t len, apr_time_t next_update)
{
    unsigned char *buf;
    apr_size_t n;

    if (!f || next_update <= apr_time_now() + apr_time_from_sec(1)
        || !(buf = malloc(OG_FLEET_VALUE_MAX))) {
        return;
    }
    if ((n = og_fleet_value_encode(buf, OG_FLEET_VALUE_MAX, der, len))) {
        enqueue_store(f, OG_FLEET_KEY_RESPONSE, id, buf, n, next_update);
    }
    free(buf);
}

void guard_fleet_claim(guard_fleet_t *f, const unsigned char *id, apr_uint64_t self,
                       apr_time_t until)
{
    unsigned char buf[OG_FLEET_CLAIM_LEN];
    og_fleet_claim_t c;

    c.server = self;
    c.until = until;
    og_fleet_claim_encode(buf, &c);
    /* the providers keep whole seconds: a second more than the claim */
    enqueue_store(f, OG_FLEET_KEY_CLAIM, id, buf, sizeof(buf), until + apr_time_from_sec(1));
}

void guard_fleet_state(guard_fleet_t *f, guard_fleet_state_t *st)
{
    memset(st, 0, sizeof(*st));
    if (!f) {
        return;
    }
    pthread_mutex_lock(&f->lock);
    st->gen = f->gen;
    st->state = f->state == STATE_UP ? "reachable" : f->state == STATE_DOWN ? "failing"
                                                                         : "not answering";
    st->since = f->state_since;
    apr_cpystrn(st->last_error, f->last_error, sizeof(st->last_error));
    st->lookups = f->lookups;
    st->hits = f->hits;
    st->published = f->published;
    st->errors = f->errors;
    st->dropped = f->dropped;
    pthread_mutex_unlock(&f->lock);
}

const char *guard_fleet_desc(const guard_fleet_t *f)
{
    return f ? f->desc : "(none)";
}

void guard_fleet_report(guard_t *g, int force, apr_pool_t *p)
{
    guard_fleet_state_t st;
    og_report_t rp;

    if (!g->fleet) {
        return;
    }
    guard_fleet_state(g->fleet, &st);
    if (!force && st.gen == g->fleet_gen) {
        return;
    }
    g->fleet_gen = st.gen;
    g->fleet_reported = apr_time_now();
    memset(&rp, 0, sizeof(rp));
    rp.last_attempt = apr_time_now();
    rp.failures = (int)(st.errors > 1000000000 ? 1000000000 : st.errors);
    apr_snprintf(rp.outcome, sizeof(rp.outcome), "%s; since %s; %" APR_UINT64_T_FMT " lookups, %"
                 APR_UINT64_T_FMT " found, %" APR_UINT64_T_FMT " published%s%s", st.state,
                 st.since ? og_iso_time(p, st.since) : "start", st.lookups, st.hits,
                 st.published, st.last_error[0] ? "; last error: " : "", st.last_error);
    if (guard_cache_put_fleet_report(g, g->s, &rp, p) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, g->s, "fleet row not published");
    }
}

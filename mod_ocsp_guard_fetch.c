/* mod_ocsp_guard_fetch.c: the one fetch path, for the startup prefetch and
 * the background refresher alike. Exchanges run as og_workq jobs: many at
 * once, at most GUARD_FETCH_PER_RESPONDER per responder, certificates with
 * no valid response (Must-Staple first) ahead of the rest; a request shared
 * by several certificates (same URL and CertID) is sent once and the answer
 * verified for each. Responders have a state of their own: when one stops
 * answering, one certificate probes it at a short, growing interval and the
 * others are held back; when it answers, they are all released at once.
 * Connections a responder keeps open (HTTP/1.1 keep-alive) are reused by
 * its next exchanges. With a fleet cache (mod_ocsp_guard_fleet.c), a job
 * looks there first: a verified response newer than the one held is taken
 * and nobody is asked; while another server's claim runs, a renewal looks
 * again a second later; what a responder gives is published there by the
 * worker as soon as it is verified and newer than what was held, not a tick
 * later, so that the next server to come due finds it.
 * Applying an outcome (mod_ocsp_guard_entry.c) happens in the one thread
 * that pushes jobs: the parent's during the prefetch, the watchdog's in the
 * refresher child, which never waits for its slowest exchange. */
#include <stdlib.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <apr_strings.h>
#include <http_main.h>
#include <ap_listen.h>

#include "mod_ocsp_guard_private.h"
#include "og_workq.h"

/* how long a fleet claim lasts: about the longest a normal exchange takes */
#define GUARD_FETCH_CLAIM          apr_time_from_sec(2)
/* how long a refresher that ends waits for its exchanges in flight */
#define GUARD_FETCH_EXIT_WAIT      apr_time_from_sec(2)
/* not worth starting an exchange with less than this left */
#define GUARD_FETCH_MIN_LEFT       apr_time_from_msec(500)

typedef struct guard_job_t {
    guard_entry_t *leader;
    og_workq_t *q;                  /* the queue it runs on: its responder's
                                     * limit is raised when it answers */
    guard_entry_t **followers;      /* same request, verified for each */
    int nfollowers;
    const char *proxy;
    apr_interval_time_t max_validity;
    apr_time_t deadline;            /* the prefetch's, 0: the entry's own timeout */
    int probe;                      /* asked even though the responder fails */
    /* the fleet cache: looked at first (NULL: none); what the entry held
     * when the job was made, for the monotonic rule */
    guard_fleet_t *fleet;
    apr_uint64_t self;
    const og_sched_policy_t *policy;
    apr_uint32_t spread;            /* the entry's place in the renew window */
    /* the store: looked at first for a renewal (NULL: none); written by the
     * worker as soon as an answer is verified (NULL: not by this process) */
    const og_store_t *store;
    const og_store_t *store_write;
    int may_defer;                  /* a claim of another server may defer it */
    apr_time_t defer_end;           /* the first claim seen for this renewal ends */
    og_floor_t floor;
    og_record_t held_rec;
    int held_ok;                    /* the held response can be stapled */
    /* written by the worker, read after og_workq_take */
    apr_pool_t *pool;               /* the exchange's own, created by the worker */
    int held;                       /* not asked: the responder was failing */
    int cut;                        /* timed out at the prefetch's deadline, before its
                                     * own: not the responder's failure, not asked */
    og_fetch_res_t fetch;
    og_ocsp_result_t result;
    int from_fleet;                 /* fetch/result: the fleet's, not asked */
    int from_store;                 /* fetch/result: the store's, not asked */
    int published;                  /* the worker published the leader's answer */
    apr_time_t deferred;            /* not asked: another server fetches it; look
                                     * again then */
    apr_time_t claim_end;           /* until when its claim says so */
    const char *fleet_note;         /* why the fleet's record was not used */
    int fleet_note_level;
    const unsigned char *fallback;  /* the fleet's valid but due record: used if
                                     * the responder gives nothing better */
    apr_size_t fallback_len;
    og_ocsp_result_t fallback_res;
} guard_job_t;

static void job_run(void *data, void *baton);
static int fleet_first(guard_job_t *j, guard_entry_t *e, apr_time_t own);
static int store_first(guard_job_t *j, guard_entry_t *e);
static void store_at_once(guard_job_t *j, guard_entry_t *e);
static void fleet_noted(guard_t *g, guard_entry_t *e, guard_job_t *j, apr_pool_t *p);
static guard_job_t *job_make(guard_t *g, guard_entry_t *e, apr_time_t deadline, int probe);
static void job_free(guard_job_t *j);
static int urgency(const guard_entry_t *e, apr_time_t now);
static apr_array_header_t *by_urgency(apr_array_header_t *in, apr_time_t now, apr_pool_t *p);
static void push_jobs(guard_t *g, og_workq_t *q, apr_array_header_t *due, apr_time_t deadline,
                      apr_time_t start_by, apr_pool_t *p);
static int apply_job(guard_t *g, guard_job_t *j, int ran, og_source_e src, int quiet,
                     apr_pool_t *p);
static void apply_one(guard_t *g, guard_entry_t *e, guard_job_t *j, og_source_e src,
                      int quiet, apr_pool_t *p);
static void responder_noted(guard_t *g, guard_responder_t *r, guard_job_t *j, apr_pool_t *p);
static void responder_released(guard_t *g, guard_responder_t *r, apr_time_t now,
                               apr_pool_t *p);
static void prefetch_take(guard_t *g, og_workq_t *q, apr_array_header_t *left, int *pheld,
                          int *pcut, apr_pool_t *ptemp);
static void give_back_memory(void);
static void close_idle(guard_t *g);
static int renewal_can_wait(guard_t *g, guard_entry_t *e, apr_time_t now);
static void tick(guard_t *g, apr_pool_t *ptemp);

/* The connections responders left open: closed when no exchange may follow
 * (the prefetch's end, before the children fork; the refresher's stop). */
static void close_idle(guard_t *g)
{
    int i;

    for (i = 0; g->responders && i < g->responders->nelts; i++) {
        guard_responder_t *r = APR_ARRAY_IDX(g->responders, i, guard_responder_t *);

        if (!r->idle_lock) {
            continue;
        }
        apr_thread_mutex_lock(r->idle_lock);
        while (r->nidle > 0) {
            close(r->idle[--r->nidle]);
        }
        apr_thread_mutex_unlock(r->idle_lock);
    }
}

/* The worker threads leave glibc's per-thread arenas full of freed memory
 * (their exchanges, OpenSSL's parsing); after a burst, hand it back to the
 * system instead of carrying it into every child. */
static void give_back_memory(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* On a worker thread: reads only what post-config set (URL, request,
 * certificate) and the responder's atomic failure count; writes only the
 * job. */
static void job_run(void *data, void *baton)
{
    guard_job_t *j = data;
    guard_entry_t *e = j->leader;
    og_fetch_req_t req;
    apr_time_t own = apr_time_now() + apr_time_from_sec(e->timeout_s);
    int fd = -1, early;

    (void)baton;
    if (apr_pool_create_unmanaged_ex(&j->pool, NULL, NULL) != APR_SUCCESS) {
        j->pool = NULL;
        j->fetch.err = OG_FETCH_OTHER;
        apr_cpystrn(j->fetch.detail, "out of memory", sizeof(j->fetch.detail));
        return;
    }
    if (j->store && j->held_rec.der && store_first(j, e)) {
        return; /* a newer response another generation wrote: nobody is asked */
    }
    if (j->fleet && fleet_first(j, e, own)) {
        return; /* taken from the fleet, or another server fetches it */
    }
    /* the exchange this start began at the certificate's prime, if any:
     * its answer is this job's, judged below as any other */
    early = guard_early_take(e, &j->fetch, j->pool,
                             j->deadline && j->deadline < own ? j->deadline : own);
    if (early < 0) {
        j->cut = 1;
        return;
    }
    if (early) {
        goto answered;
    }
    if (!j->probe && __atomic_load_n(&e->resp->fails, __ATOMIC_RELAXED)
                     >= GUARD_FETCH_HOLD_AFTER) {
        j->held = 1;
        return;
    }
    if (j->fleet) {
        /* others wait for it: while the exchange usually lasts, not its whole
         * deadline (a slow exchange only costs a second request) */
        apr_time_t now = apr_time_now();

        guard_fleet_claim(j->fleet, e->cert->id, j->self,
                          own - now > GUARD_FETCH_CLAIM ? now + GUARD_FETCH_CLAIM : own);
    }
    memset(&req, 0, sizeof(req));
    if (!j->proxy && e->resp->idle_lock) {
        /* keep-alive: a connection the responder left open, if any */
        apr_thread_mutex_lock(e->resp->idle_lock);
        fd = e->resp->nidle ? e->resp->idle[--e->resp->nidle] : -1;
        apr_thread_mutex_unlock(e->resp->idle_lock);
        req.keep_fd = &fd;
    }
    req.url = e->url;
    req.proxy = j->proxy;
    req.der = e->req_der;
    req.der_len = e->req_len;
    req.timeout_s = e->timeout_s;
    req.deadline = j->deadline && j->deadline < own ? j->deadline : own;
    og_fetch_http(&j->fetch, j->pool, &req);
    if (fd >= 0) {
        apr_thread_mutex_lock(e->resp->idle_lock);
        if (e->resp->nidle < (int)(sizeof(e->resp->idle) / sizeof(e->resp->idle[0]))) {
            e->resp->idle[e->resp->nidle++] = fd;
            fd = -1;
        }
        apr_thread_mutex_unlock(e->resp->idle_lock);
        if (fd >= 0) {
            close(fd);
        }
    }
    if (j->fetch.err == OG_FETCH_TIMEOUT && req.deadline < own) {
        j->cut = 1;
        return;
    }
answered:
    if (og_attempt_responder_failed(&j->fetch)) {
        __atomic_add_fetch(&e->resp->fails, 1, __ATOMIC_RELAXED);
    }
    else {
        __atomic_store_n(&e->resp->fails, 0, __ATOMIC_RELAXED);
        /* it answers: all of its share in flight from now on */
        og_workq_key_max(j->q, e->resp->key, GUARD_FETCH_PER_RESPONDER);
    }
    memset(&j->result, 0, sizeof(j->result));
    if (j->fetch.err == OG_FETCH_OK) {
        og_ocsp_verify(&j->result, e->cert, j->fetch.body, j->fetch.len, apr_time_now(),
                       j->max_validity);
    }
    if (j->fetch.err == OG_FETCH_OK && j->result.verdict == OG_VERDICT_OK
        && j->result.cert_status != OG_STATUS_UNKNOWN
        && og_admit_installs(og_admit(&j->floor, &j->held_rec, &j->result, j->fetch.body,
                                      j->fetch.len))) {
        /* what the entry will install (guard_entry_apply judges the same way) */
        if (j->store_write) {
            store_at_once(j, e);
        }
        if (j->fleet
            && !(j->result.cert_status == OG_STATUS_GOOD && j->floor.revoked_this_update)) {
            guard_fleet_publish(j->fleet, e->cert->id, j->fetch.body, j->fetch.len,
                                j->result.next_update);
            j->published = 1;
        }
    }
    if (j->fallback && !j->held_ok
        && (j->fetch.err != OG_FETCH_OK || j->result.verdict != OG_VERDICT_OK
            || j->result.cert_status == OG_STATUS_UNKNOWN)) {
        /* the responder gave nothing: the fleet's record beats no staple */
        j->fetch.err = OG_FETCH_OK;
        j->fetch.body = (unsigned char *)j->fallback;
        j->fetch.len = j->fallback_len;
        j->result = j->fallback_res;
        j->from_fleet = 1;
    }
}

/* On a worker thread, before anything else, for a renewal: the store may
 * hold a newer response than the entry, written by the refresher of another
 * generation of this server (a graceful restart that came while its exchange
 * was in flight; the new generation loaded the response before). Verified
 * and judged as one loaded at startup; taken when newer and not yet due for
 * renewal, and then nobody is asked. Returns 1 when taken. */
static int store_first(guard_job_t *j, guard_entry_t *e)
{
    apr_time_t now = apr_time_now();
    og_ocsp_result_t res;
    og_floor_t file_floor;
    og_record_t rec;
    const char *err;

    if (og_store_load(&rec, &file_floor, &err, j->pool, (og_store_t *)j->store, e->cert->id)
            != APR_SUCCESS
        || rec.this_update <= j->held_rec.this_update) {
        return 0; /* none, unusable (said at startup), or nothing newer: the file's own
                   * claim, verified below when it says newer */
    }
    memset(&res, 0, sizeof(res));
    og_ocsp_verify(&res, e->cert, rec.der, rec.der_len, now, j->max_validity);
    if (og_fleet_judge(&res, og_admit(&j->floor, &j->held_rec, &res, rec.der, rec.der_len),
                       now, og_sched_renew_spread(j->policy, res.this_update, res.next_update,
                                                  j->spread)) != OG_FLEET_TAKE) {
        return 0;
    }
    j->fetch.err = OG_FETCH_OK;
    j->fetch.body = (unsigned char *)rec.der;
    j->fetch.len = rec.der_len;
    j->fetch.elapsed = apr_time_now() - now;
    j->result = res;
    j->from_store = 1;
    return 1;
}

/* On a worker thread: the answer the entry will install, written into the
 * store now rather than at the refresher's next tick, so that a generation
 * starting meanwhile (a graceful restart) finds it instead of asking again.
 * Not synced: the tick's own write, batched, makes it durable. */
static void store_at_once(guard_job_t *j, guard_entry_t *e)
{
    og_floor_t floor = j->floor;
    og_record_t rec;
    const char *err;

    memset(&rec, 0, sizeof(rec));
    rec.der = j->fetch.body;
    rec.der_len = j->fetch.len;
    rec.this_update = j->result.this_update;
    rec.next_update = j->result.next_update;
    rec.fetched_at = apr_time_now();
    rec.cert_status = j->result.cert_status;
    rec.source = OG_SOURCE_REFRESH;
    og_floor_raise(&floor, &rec,
                   rec.cert_status == OG_STATUS_REVOKED ? j->result.revoked_at : 0);
    (void)og_store_save_unsynced(&err, j->pool, j->store_write, e->cert->id, &rec, &floor);
    /* a failure is the tick's to say: it writes the same file */
}

/* On a worker thread, before the exchange: what the fleet cache holds for
 * this certificate, verified like a responder's answer and judged against
 * what the entry held when the job was made. Returns 1 when the job is
 * done without asking the responder: a newer response was taken, or a
 * claim of another server defers it. */
static int fleet_first(guard_job_t *j, guard_entry_t *e, apr_time_t own)
{
    apr_time_t now = apr_time_now(), until, t;
    guard_fleet_look_t look;
    const unsigned char *der;
    og_ocsp_result_t res;
    apr_size_t len;

    /* at most half of what the exchange has left */
    if (j->deadline && j->deadline < own) {
        own = j->deadline;
    }
    until = now + (own - now) / 2;
    guard_fleet_lookup(j->fleet, e->cert->id, until, &look, j->pool);
    if (look.unavailable) {
        return 0;
    }
    j->fleet_note_level = APLOG_WARNING;
    if (look.value && og_fleet_value_decode(look.value, look.len, &der, &len) != 0) {
        j->fleet_note = apr_psprintf(j->pool, "not a mod_ocsp_guard record (%" APR_SIZE_T_FMT
                                     " bytes)", look.len);
    }
    else if (look.value) {
        memset(&res, 0, sizeof(res));
        og_ocsp_verify(&res, e->cert, der, len, apr_time_now(), j->max_validity);
        switch (og_fleet_judge(&res, og_admit(&j->floor, &j->held_rec, &res, der, len), now,
                               og_sched_renew_at(j->policy, res.this_update,
                                                 res.next_update))) {
        case OG_FLEET_TAKE:
            j->fetch.err = OG_FETCH_OK;
            j->fetch.body = (unsigned char *)der;
            j->fetch.len = len;
            j->fetch.elapsed = apr_time_now() - now;
            j->result = res;
            j->from_fleet = 1;
            return 1;
        case OG_FLEET_FALLBACK:
            /* valid, but as due as ours: nobody renewed it */
            j->fleet_note = apr_psprintf(j->pool, "it is valid but already due for renewal "
                                         "(thisUpdate %s, nextUpdate %s)",
                                         og_iso_time(j->pool, res.this_update),
                                         og_iso_time(j->pool, res.next_update));
            j->fleet_note_level = APLOG_INFO;
            j->fallback = der;
            j->fallback_len = len;
            j->fallback_res = res;
            break;
        case OG_FLEET_INVALID:
            j->fleet_note = apr_psprintf(j->pool, "rejected: %s: %s",
                                         og_ocsp_verdict_str(res.verdict), res.detail);
            break;
        case OG_FLEET_UNKNOWN:
            j->fleet_note = "it says 'unknown', which is never stapled";
            break;
        case OG_FLEET_UNREVOKES:
            j->fleet_note = apr_psprintf(j->pool, "it says 'good' (thisUpdate %s) but a "
                                         "response of %s said REVOKED: only the responder "
                                         "itself may say otherwise",
                                         og_iso_time(j->pool, res.this_update),
                                         og_iso_time(j->pool, j->floor.revoked_this_update));
            break;
        case OG_FLEET_OLDER:
            j->fleet_note = apr_psprintf(j->pool, "its thisUpdate %s is older than the newest "
                                         "accepted (%s): a stale or replayed record",
                                         og_iso_time(j->pool, res.this_update),
                                         og_iso_time(j->pool, j->floor.newest_this_update));
            break;
        case OG_FLEET_NOTHING_NEWER:
            break; /* the response held, or one of the same age */
        }
    }
    /* another server fetches it: look again in a second, while its claim
     * lasts, if what is held outlives the claim */
    if (look.claimed && j->may_defer
        && (t = og_fleet_claim_defers(&look.claim, j->self, now, own - now))
        && j->held_ok && j->held_rec.next_update > t + apr_time_from_sec(2)
        && (!j->defer_end || now < j->defer_end)) {
        j->claim_end = j->defer_end ? j->defer_end : t;
        j->deferred = now + apr_time_from_sec(1) < j->claim_end ? now + apr_time_from_sec(1)
                                                                : j->claim_end;
        return 1;
    }
    return 0;
}

/* The fleet's record was not used: said once per change of reason (by its
 * text without the times, which change with every record). */
static void fleet_noted(guard_t *g, guard_entry_t *e, guard_job_t *j, apr_pool_t *p)
{
    const char *note = j->fleet_note;
    apr_size_t n = note ? strcspn(note, "(") : 0;

    if (!note || (strlen(e->fleet_said) == n && !strncmp(e->fleet_said, note, n))) {
        return;
    }
    apr_cpystrn(e->fleet_said, note, n + 1 < sizeof(e->fleet_said) ? n + 1
                                                                   : sizeof(e->fleet_said));
    GUARD_ELOG(j->fleet_note_level, 0, g->s, e, p, OGLOGNO(00073)
               "the fleet cache %s holds a response for this certificate that is not used: "
               "%s; the responder %s is asked instead%s", guard_fleet_desc(g->fleet), note,
               e->url, j->fleet_note_level == APLOG_WARNING
               ? ". Anyone who can write to the fleet cache can only make servers ask their "
                 "responders: keep it unreachable from outside" : "");
}

static guard_job_t *job_make(guard_t *g, guard_entry_t *e, apr_time_t deadline, int probe)
{
    guard_job_t *j = calloc(1, sizeof(*j));

    if (!j) {
        return NULL;
    }
    j->leader = e;
    j->proxy = g->proxy;
    j->max_validity = g->max_validity;
    j->deadline = deadline;
    j->probe = probe;
    j->policy = &g->policy;
    j->spread = e->spread;
    j->floor = e->floor;
    j->held_rec = e->rec; /* not replaced while the job runs: the entry is in flight */
    j->held_ok = guard_entry_stapleable(e, apr_time_now());
    j->store = g->store;
    j->store_write = g->wd_pool ? guard_store_direct(g) : NULL; /* the refresher's */
    if ((j->fleet = g->fleet)) {
        j->self = g->fleet_self;
        j->may_defer = !deadline && !probe;
        j->defer_end = e->fleet_defer_end;
    }
    e->inflight = 1;
    return j;
}

static void job_free(guard_job_t *j)
{
    if (j->pool) {
        apr_pool_destroy(j->pool);
    }
    free(j->followers);
    free(j);
}

/* 0: Must-Staple without a valid response, 1: no valid response, 2:
 * Must-Staple, 3: the rest. */
static int urgency(const guard_entry_t *e, apr_time_t now)
{
    int has = guard_entry_stapleable(e, now);

    return (has ? 2 : 0) + (e->cert->must_staple ? 0 : 1);
}

static apr_array_header_t *by_urgency(apr_array_header_t *in, apr_time_t now, apr_pool_t *p)
{
    apr_array_header_t *out = apr_array_make(p, in->nelts ? in->nelts : 1,
                                             sizeof(guard_entry_t *));
    int rank, i;

    for (rank = 0; rank < 4; rank++) {
        for (i = 0; i < in->nelts; i++) {
            guard_entry_t *e = APR_ARRAY_IDX(in, i, guard_entry_t *);

            if (urgency(e, now) == rank) {
                APR_ARRAY_PUSH(out, guard_entry_t *) = e;
            }
        }
    }
    return out;
}

/* Queue one job per distinct request of `due` (in its order), the others
 * as its followers. */
static void push_jobs(guard_t *g, og_workq_t *q, apr_array_header_t *due, apr_time_t deadline,
                      apr_time_t start_by, apr_pool_t *p)
{
    apr_hash_t *seen = apr_hash_make(p);
    apr_time_t now = apr_time_now();
    guard_job_t **jobs = apr_pcalloc(p, sizeof(*jobs) * (apr_size_t)(due->nelts + 1));
    int i, n = 0;

    for (i = 0; i < due->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(due, i, guard_entry_t *);
        guard_job_t *lead = apr_hash_get(seen, e->req_key, APR_HASH_KEY_STRING);
        guard_entry_t **grown;

        if (!lead) {
            if ((jobs[n] = job_make(g, e, deadline, 0))) {
                apr_hash_set(seen, e->req_key, APR_HASH_KEY_STRING, jobs[n++]);
            }
            continue;
        }
        grown = realloc(lead->followers, sizeof(*grown) * (apr_size_t)(lead->nfollowers + 1));
        if (grown) {
            lead->followers = grown;
            lead->followers[lead->nfollowers++] = e;
            e->inflight = 1;
        }
    }
    for (i = 0; i < n; i++) {
        jobs[i]->q = q;
        if (og_workq_push(q, jobs[i], jobs[i]->leader->resp->key,
                          urgency(jobs[i]->leader, now) < 2, start_by) != APR_SUCCESS) {
            jobs[i]->leader->inflight = 0;
            job_free(jobs[i]);
        }
    }
}

/* The responder's state after one of its exchanges: an outage begins, goes
 * on (the next probe later), or ends (everything held is released). */
static void responder_noted(guard_t *g, guard_responder_t *r, guard_job_t *j, apr_pool_t *p)
{
    apr_time_t now = apr_time_now();

    if (j->probe) {
        r->probing = 0;
    }
    if (j->held || j->cut) {
        return;
    }
    if (og_attempt_responder_failed(&j->fetch)) {
        /* the exchanges in flight when it went down fail together: one
         * failure; after that, each failed probe doubles the interval */
        if (!r->failing) {
            r->failing = 1;
            r->down_since = now;
        }
        else if (j->probe) {
            r->failing++;
        }
        apr_snprintf(r->last_error, sizeof(r->last_error), "%s: %s",
                     og_fetch_err_str(j->fetch.err), j->fetch.detail);
        r->probe_at = now + og_sched_probe_delay(&g->policy, r->failing,
                                                 !guard_entry_stapleable(j->leader, now));
        if (!r->said) {
            r->said = 1;
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, g->s, OGLOGNO(00064)
                         "OCSP responder %s is not answering (%s): its %d certificate(s) "
                         "are held back and one of them asks it again every few seconds "
                         "(from %" APR_TIME_T_FMT " s, growing to %" APR_TIME_T_FMT
                         " s while one has no valid response, to OCSPGuardRetryDelay, %"
                         APR_TIME_T_FMT " s, once all have one); held responses stay "
                         "stapled until their nextUpdate. The lines for each certificate "
                         "follow at debug level",
                         r->url, r->last_error, r->nentries,
                         apr_time_sec(og_sched_probe_delay(&g->policy, 1, 1)),
                         apr_time_sec(og_sched_probe_cap(&g->policy, 1)),
                         apr_time_sec(g->policy.retry_min));
        }
        return;
    }
    if (r->failing) {
        responder_released(g, r, now, p);
    }
    r->failing = 0;
}

/* The responder answers again: every certificate of it that failed or was
 * held back is due now, not at its own backoff. */
static void responder_released(guard_t *g, guard_responder_t *r, apr_time_t now, apr_pool_t *p)
{
    int i, released = 0;

    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (e->resp == r && !e->inflight && (e->failures > 0 || !guard_entry_stapleable(e, now))) {
            e->next_attempt = now;
            released++;
        }
    }
    if (r->said) {
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, g->s, OGLOGNO(00065)
                     "OCSP responder %s answers again after %" APR_TIME_T_FMT " s without "
                     "(last error: %s); %d certificate(s) it holds are asked now", r->url,
                     apr_time_sec(now - r->down_since), r->last_error, released);
    }
    r->said = 0;
    (void)p;
}

/* One certificate's outcome of a job. */
static void apply_one(guard_t *g, guard_entry_t *e, guard_job_t *j, og_source_e src, int quiet,
                      apr_pool_t *p)
{
    e->fleet_published = e == j->leader && j->published;
    e->fetch = j->fetch;
    if (e == j->leader) {
        e->result = j->result;
    }
    else {
        guard_entry_verify(e, g->max_validity);
    }
    guard_entry_apply(g, e, g->s, src, quiet, p);
    e->fetch.body = NULL; /* the body goes with the job */
    e->fetch.len = 0;
}

/* A job taken back. Returns 1 if its certificates were asked, 0 if not
 * (not started or cut short by the prefetch's deadline, or held back: they
 * stay due). */
static int apply_job(guard_t *g, guard_job_t *j, int ran, og_source_e src, int quiet,
                     apr_pool_t *p)
{
    guard_responder_t *r = j->leader->resp;
    int asked = ran && !j->held && !j->cut && !j->deferred, k;

    if (ran && j->fleet_note) {
        fleet_noted(g, j->leader, j, p);
    }
    if (ran && (j->from_fleet || j->from_store || j->deferred)) {
        /* the responder was not asked (or gave nothing better): its state
         * stays as it was */
        r->probing = j->probe ? 0 : r->probing;
        src = j->from_fleet ? OG_SOURCE_FLEET : j->from_store ? OG_SOURCE_STORE : src;
    }
    else if (ran) {
        int was_said = r->said;

        responder_noted(g, r, j, p);
        /* one warning for a responder's outage (OG00064): the certificates'
         * own lines at debug, after the first */
        if (was_said && og_attempt_responder_failed(&j->fetch)) {
            quiet = 2;
        }
    }
    if (asked) {
        apply_one(g, j->leader, j, src, quiet, p);
        for (k = 0; k < j->nfollowers; k++) {
            apply_one(g, j->followers[k], j, src, quiet, p);
        }
    }
    j->leader->inflight = 0;
    for (k = 0; k < j->nfollowers; k++) {
        j->followers[k]->inflight = 0;
    }
    if (ran && j->deferred) {
        /* another server of the fleet fetches it: look again when its claim
         * ends, once per renewal */
        for (k = -1; k < j->nfollowers; k++) {
            guard_entry_t *e = k < 0 ? j->leader : j->followers[k];

            e->next_attempt = j->deferred;
            e->fleet_defer_end = j->claim_end;
            apr_snprintf(e->outcome, sizeof(e->outcome), "waiting: another server of the "
                         "fleet is fetching it (until %s at most)", og_iso_time(p, j->claim_end));
        }
        GUARD_ELOG(APLOG_DEBUG, 0, g->s, j->leader, p, OGLOGNO(00074)
                   "another server of the fleet claims the renewal (until %s): looking in %s "
                   "again in a second, asking %s only if nothing newer came", og_iso_time(p, j->claim_end),
                   guard_fleet_desc(g->fleet), j->leader->url);
    }
    if (j->held) {
        apr_snprintf(j->leader->outcome, sizeof(j->leader->outcome),
                     "held back: the responder is not answering (%s)", r->last_error);
    }
    return asked;
}

/* The prefetch's jobs taken back and applied; the entries without an answer
 * go to `left` (held ones stay due, said by OG00064). */
static void prefetch_take(guard_t *g, og_workq_t *q, apr_array_header_t *left, int *pheld,
                          int *pcut, apr_pool_t *ptemp)
{
    void *jobs[64];
    int ran[64], n, k, f;
    apr_pool_t *scratch;

    /* each answer's messages live until the next one, not in ptemp */
    apr_pool_create(&scratch, ptemp);
    while ((n = og_workq_take(q, jobs, ran, 64)) > 0) {
        for (k = 0; k < n; k++) {
            guard_job_t *j = jobs[k];

            apr_pool_clear(scratch);
            if (!apply_job(g, j, ran[k], OG_SOURCE_PREFETCH, 0, scratch)) {
                *pheld += j->held;
                *pcut += j->cut * (1 + j->nfollowers);
                if (!j->held) {
                    APR_ARRAY_PUSH(left, guard_entry_t *) = j->leader;
                    for (f = 0; f < j->nfollowers; f++) {
                        APR_ARRAY_PUSH(left, guard_entry_t *) = j->followers[f];
                    }
                }
            }
            job_free(j);
        }
    }
    apr_pool_destroy(scratch);
}

void guard_fetch_post_config(guard_t *g, apr_pool_t *pconf)
{
    apr_hash_t *by_url = apr_hash_make(pconf);
    int i;

    if (guard_sconf(g->s)->fleet.spec) {
        char host[APRMAXHOSTLEN + 1] = "";

        /* host name, ServerRoot and first listening port: machines of a fleet
         * differ by the first, servers on one machine by the others */
        if (apr_gethostname(host, sizeof(host), pconf) != APR_SUCCESS) {
            host[0] = '\0';
        }
        g->fleet_self = og_fleet_server_id(host, apr_psprintf(pconf, "%s|%d", ap_server_root,
                                                              ap_listeners && ap_listeners->bind_addr
                                                              ? ap_listeners->bind_addr->port : 0));
    }

    g->responders = apr_array_make(pconf, 4, sizeof(guard_responder_t *));
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);
        guard_responder_t *r;

        if (!e->url || !e->req_der) {
            continue;
        }
        if (!(r = apr_hash_get(by_url, e->url, APR_HASH_KEY_STRING))) {
            r = apr_pcalloc(pconf, sizeof(*r));
            r->url = e->url;
            if (apr_thread_mutex_create(&r->idle_lock, APR_THREAD_MUTEX_DEFAULT, pconf)
                != APR_SUCCESS) {
                r->idle_lock = NULL; /* no keep-alive for it */
            }
            r->key = g->responders->nelts;
            APR_ARRAY_PUSH(g->responders, guard_responder_t *) = r;
            apr_hash_set(by_url, e->url, APR_HASH_KEY_STRING, r);
        }
        r->nentries++;
        e->resp = r;
        e->spread = g->fleet_self ? og_fleet_spread(g->fleet_self, e->cert->id,
                                                    OG_CERT_ID_LEN) : 0;
        e->req_key = apr_pstrcat(pconf, e->url, " ", og_hex(pconf, e->req_der, e->req_len),
                                 NULL);
    }
}

/* A renewal the prefetch leaves to the refresher: the response held (from
 * the store) stays valid well past the refresher's first tick, so the start
 * need not wait for it, and the refresher, which looks in the store first,
 * takes what the previous generation was still fetching when it stopped (a
 * graceful restart right after a renewal) instead of asking again. What is
 * in the second half of its renew window is renewed here. */
static int renewal_can_wait(guard_t *g, guard_entry_t *e, apr_time_t now)
{
    apr_time_t renew_at;

    if (!guard_entry_stapleable(e, now) || e->failures) {
        return 0;
    }
    renew_at = og_sched_renew_spread(&g->policy, e->rec.this_update, e->rec.next_update,
                                     e->spread);
    return now < renew_at + (e->rec.next_update - renew_at) / 2;
}

apr_array_header_t *guard_fetch_prefetch(guard_t *g, apr_time_t deadline, int *pheld,
                                         int *pcut, apr_pool_t *ptemp)
{
    apr_array_header_t *due = apr_array_make(ptemp, 8, sizeof(guard_entry_t *));
    apr_array_header_t *left = apr_array_make(ptemp, 1, sizeof(guard_entry_t *));
    apr_time_t now = apr_time_now();
    og_workq_t *q;
    int i, held = 0, cut = 0;

    *pheld = *pcut = 0;
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (e->resp && e->next_attempt <= now && !renewal_can_wait(g, e, now)) {
            APR_ARRAY_PUSH(due, guard_entry_t *) = e;
        }
    }
    if (!due->nelts || !g->responders->nelts) {
        return left;
    }
    if (og_workq_create(&q, GUARD_FETCH_THREADS, g->responders->nelts,
                        GUARD_FETCH_PER_RESPONDER, job_run, NULL, ptemp) != APR_SUCCESS) {
        return due; /* nothing could be asked: the refresher's */
    }
    /* one exchange per responder until it has answered once: a responder
     * that is down at the start gets a few requests, not its 128 at once */
    og_workq_key_max(q, -1, 1);
    g->fleet = guard_fleet_open(g, g->s); /* the parent's own, closed before the fork */
    push_jobs(g, q, by_urgency(due, now, ptemp), deadline, deadline - GUARD_FETCH_MIN_LEFT,
              ptemp);
    /* apply as answers come; every exchange ends by the deadline */
    for (;;) {
        int queued, running, last;

        og_workq_counts(q, -1, &queued, &running);
        last = !queued && !running; /* what is left to take is all there is */
        if (!last) {
            og_workq_wait(q, deadline + apr_time_from_sec(1), 0);
        }
        prefetch_take(g, q, left, &held, &cut, ptemp);
        if (last || apr_time_now() > deadline + apr_time_from_sec(2)) {
            break;
        }
    }
    /* cannot happen (exchanges are bounded by the deadline), but nothing is
     * left inside the queue: its entries would never be fetched again */
    og_workq_drop_queued(q);
    og_workq_wait(q, apr_time_now() + apr_time_from_sec(60), 1);
    prefetch_take(g, q, left, &held, &cut, ptemp);
    og_workq_destroy(q);
    guard_fleet_report(g, 1, ptemp);
    guard_fleet_close(g->fleet);
    g->fleet = NULL;
    close_idle(g);
    give_back_memory();
    *pheld = held;
    *pcut = cut;
    return left;
}

void guard_fetch_start(guard_t *g)
{
    if (apr_thread_mutex_create(&g->fetch_lock, APR_THREAD_MUTEX_DEFAULT, g->wd_pool)
        != APR_SUCCESS) {
        g->fetch_lock = NULL;
        return; /* no refresher: said by the watchdog's caller as for a failed start */
    }
    if (g->responders && g->responders->nelts
        && og_workq_create(&g->workq, GUARD_FETCH_THREADS, g->responders->nelts,
                           GUARD_FETCH_PER_RESPONDER, job_run, NULL, NULL) != APR_SUCCESS) {
        g->workq = NULL;
    }
    if (g->workq) {
        g->fleet = guard_fleet_open(g, g->s); /* the refresher's own connections */
    }
}

/* One refresher tick: apply what finished, then queue what came due; a
 * failing responder gets one probe when its time comes, its most urgent
 * certificate, and nothing else. */
void guard_fetch_tick(guard_t *g, apr_pool_t *ptemp)
{
    if (!g->fetch_lock) {
        return;
    }
    apr_thread_mutex_lock(g->fetch_lock);
    if (g->workq) {
        tick(g, ptemp);
    }
    apr_thread_mutex_unlock(g->fetch_lock);
}

static void tick(guard_t *g, apr_pool_t *ptemp)
{
    apr_array_header_t *due;
    guard_entry_t **probe;
    apr_pool_t *scratch;
    apr_time_t now;
    void *jobs[64];
    int ran[64], n, i;

    apr_pool_create(&scratch, ptemp); /* one answer's messages at a time */
    while ((n = og_workq_take(g->workq, jobs, ran, 64)) > 0) {
        for (i = 0; i < n; i++) {
            apr_pool_clear(scratch);
            apply_job(g, jobs[i], ran[i], OG_SOURCE_REFRESH, 1, scratch);
            job_free(jobs[i]);
        }
        g->workq_busy = 1;
    }
    apr_pool_destroy(scratch);
    if (g->workq_busy) {
        int queued, running;

        og_workq_counts(g->workq, -1, &queued, &running);
        if (!queued && !running) {
            g->workq_busy = 0; /* a burst is over */
            give_back_memory();
        }
    }
    now = apr_time_now();
    due = apr_array_make(ptemp, 8, sizeof(guard_entry_t *));
    probe = apr_pcalloc(ptemp, sizeof(*probe) * (apr_size_t)g->responders->nelts);
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);
        guard_responder_t *r = e->resp;

        if (r && guard_metrics_take_refresh(g, e)) {
            /* asked for through the status handler (POST ?refresh=): now, but
             * never sooner than OCSPGuardRetryDelay after the last attempt */
            apr_time_t from = e->last_attempt ? e->last_attempt + g->policy.retry_min : now;

            e->next_attempt = from > now ? from : now;
            e->fleet_defer_end = 0;
            GUARD_ELOG(APLOG_DEBUG, 0, g->s, e, ptemp, OGLOGNO(00081)
                       "refresh asked for through the status handler: %s is asked %s",
                       e->url, from > now ? apr_psprintf(ptemp, "at %s (OCSPGuardRetryDelay "
                       "after the last attempt)", og_iso_time(ptemp, from)) : "now");
        }
        if (!r || e->inflight) {
            continue;
        }
        if (!r->failing) {
            if (e->next_attempt <= now) {
                APR_ARRAY_PUSH(due, guard_entry_t *) = e;
            }
        }
        else if (!r->probing && now >= r->probe_at
                 && (e->next_attempt <= now || e->failures > 0)
                 && (!probe[r->key] || urgency(e, now) < urgency(probe[r->key], now))) {
            probe[r->key] = e;
        }
    }
    for (i = 0; i < g->responders->nelts; i++) {
        guard_job_t *j;

        if (probe[i] && (j = job_make(g, probe[i], 0, 1))) {
            if (og_workq_push(g->workq, j, i, 1, 0) == APR_SUCCESS) {
                APR_ARRAY_IDX(g->responders, i, guard_responder_t *)->probing = 1;
            }
            else {
                probe[i]->inflight = 0;
                job_free(j);
            }
        }
    }
    if (due->nelts) {
        push_jobs(g, g->workq, by_urgency(due, now, ptemp), 0, 0, ptemp);
    }
    /* the fleet cache's row: at each change of state, its counters every 10 s */
    guard_fleet_report(g, now - g->fleet_reported > apr_time_from_sec(10), ptemp);
}

/* The refresher's end (its child exits, or mod_watchdog says STOPPING):
 * nothing new is asked; exchanges in flight get GUARD_FETCH_EXIT_WAIT to
 * finish, because a worker writes a verified answer into the store itself
 * and the next generation (a graceful restart) then takes it from there
 * instead of asking again. What is still running after that is left to the
 * process' exit. */
void guard_fetch_stop(guard_t *g)
{
    void *jobs[64];
    int ran[64], n, i, queued, running;

    if (!g->fetch_lock) {
        return;
    }
    apr_thread_mutex_lock(g->fetch_lock);
    if (g->workq) {
        og_workq_drop_queued(g->workq);
        og_workq_wait(g->workq, apr_time_now() + GUARD_FETCH_EXIT_WAIT, 1);
        while ((n = og_workq_take(g->workq, jobs, ran, 64)) > 0) {
            for (i = 0; i < n; i++) {
                job_free(jobs[i]);
            }
        }
        og_workq_counts(g->workq, -1, &queued, &running);
        if (!running) {
            og_workq_destroy(g->workq);
            guard_fleet_close(g->fleet);
            close_idle(g);
        }
        g->workq = NULL;
        g->fleet = NULL;
    }
    apr_thread_mutex_unlock(g->fetch_lock);
}

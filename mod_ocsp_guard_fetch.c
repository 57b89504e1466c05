/* mod_ocsp_guard_fetch.c: the one fetch path, for the startup prefetch and
 * the background refresher alike: pick what is due, exchange concurrently
 * within one deadline on og_batch's bounded thread pool (requests with the
 * same CertID and responder are sent once, the answer verified for each
 * certificate), then apply every answer (mod_ocsp_guard_entry.c). What the
 * deadline left unasked goes back to the caller. */
#include <apr_strings.h>

#include "mod_ocsp_guard_private.h"
#include "og_batch.h"

#define GUARD_FETCH_THREADS 8
/* not worth starting an exchange with less than this left */
#define GUARD_FETCH_MIN_LEFT apr_time_from_msec(500)

typedef struct guard_xbaton_t {
    const char *proxy;
    apr_interval_time_t max_validity;
} guard_xbaton_t;

static void exchange_one(void *item, apr_pool_t *p, apr_time_t deadline, void *baton);
static void exchange_batch(guard_t *g, apr_array_header_t *due, apr_time_t deadline,
                           apr_pool_t *p);

/* One exchange, bounded by the entry's own timeout and the batch deadline. */
static void exchange_one(void *item, apr_pool_t *p, apr_time_t deadline, void *baton)
{
    guard_entry_t *e = item;
    const guard_xbaton_t *xb = baton;
    apr_time_t own = apr_time_now() + apr_time_from_sec(e->timeout_s);

    guard_entry_exchange(e, p, xb->proxy, own < deadline ? own : deadline, xb->max_validity);
}

/* Exchange for every entry of `due`; sets each one's batch_state, fetch and
 * result. Bodies live until p is cleared. */
static void exchange_batch(guard_t *g, apr_array_header_t *due, apr_time_t deadline,
                           apr_pool_t *p)
{
    apr_hash_t *seen = apr_hash_make(p);
    guard_entry_t **leader = apr_pcalloc(p, sizeof(guard_entry_t *) * (apr_size_t)(due->nelts + 1));
    void **jobs = apr_pcalloc(p, sizeof(void *) * (apr_size_t)(due->nelts + 1));
    int *ran = apr_pcalloc(p, sizeof(int) * (apr_size_t)(due->nelts + 1));
    guard_xbaton_t xb;
    int i, n = 0;

    for (i = 0; i < due->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(due, i, guard_entry_t *);
        const char *key = apr_pstrcat(p, e->url, " ", og_hex(p, e->req_der, e->req_len), NULL);

        e->batch_state = GUARD_BATCH_NOT_ASKED;
        if ((leader[i] = apr_hash_get(seen, key, APR_HASH_KEY_STRING))) {
            continue;
        }
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, e);
        jobs[n++] = e;
    }
    xb.proxy = g->proxy;
    xb.max_validity = g->max_validity;
    /* how many ran is in ran[], per job */
    (void)og_batch_run(ran, jobs, n, GUARD_FETCH_THREADS, deadline, GUARD_FETCH_MIN_LEFT,
                       exchange_one, &xb, p);
    for (i = 0; i < n; i++) {
        if (ran[i]) {
            ((guard_entry_t *)jobs[i])->batch_state = GUARD_BATCH_ASKED;
        }
    }
    /* the same request for another certificate: same answer, verified for it */
    for (i = 0; i < due->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(due, i, guard_entry_t *);

        if (leader[i] && leader[i]->batch_state == GUARD_BATCH_ASKED) {
            e->fetch = leader[i]->fetch;
            guard_entry_verify(e, g->max_validity);
            e->batch_state = GUARD_BATCH_ASKED;
        }
    }
}

apr_array_header_t *guard_fetch_due(guard_t *g, apr_time_t now, int *plongest, apr_pool_t *p)
{
    apr_array_header_t *due = apr_array_make(p, 8, sizeof(guard_entry_t *));
    int i, longest = 1;

    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (e->url && e->req_der && e->next_attempt <= now) {
            APR_ARRAY_PUSH(due, guard_entry_t *) = e;
            longest = e->timeout_s > longest ? e->timeout_s : longest;
        }
    }
    if (plongest) {
        *plongest = longest;
    }
    return due;
}

apr_array_header_t *guard_fetch_run(guard_t *g, apr_array_header_t *due, apr_time_t deadline,
                                    og_source_e src, int quiet_repeats, apr_pool_t *p)
{
    apr_array_header_t *left = apr_array_make(p, 1, sizeof(guard_entry_t *));
    int i;

    if (!due->nelts) {
        return left;
    }
    exchange_batch(g, due, deadline, p);
    for (i = 0; i < due->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(due, i, guard_entry_t *);

        if (e->batch_state == GUARD_BATCH_ASKED) {
            guard_entry_apply(g, e, g->s, src, quiet_repeats, p);
        }
        else {
            APR_ARRAY_PUSH(left, guard_entry_t *) = e;
        }
    }
    return left;
}

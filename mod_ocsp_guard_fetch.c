/* mod_ocsp_guard_batch.c: fetch a set of certificates' responses
 * concurrently within one deadline, for the startup prefetch and for the
 * background refresher alike, on og_batch's bounded thread pool; requests
 * with the same CertID and responder are sent once and the answer verified
 * for each certificate. Results land in each entry (fetch, result); applying
 * them is the caller's. */
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

/* One exchange, bounded by the entry's own timeout and the batch deadline. */
static void exchange_one(void *item, apr_pool_t *p, apr_time_t deadline, void *baton)
{
    guard_entry_t *e = item;
    const guard_xbaton_t *xb = baton;
    apr_time_t own = apr_time_now() + apr_time_from_sec(e->timeout_s);

    guard_entry_exchange(e, p, xb->proxy, own < deadline ? own : deadline, xb->max_validity);
}

int guard_fetch_batch(guard_t *g, apr_array_header_t *due, apr_time_t deadline,
                   apr_pool_t *p)
{
    apr_hash_t *seen = apr_hash_make(p);
    guard_entry_t **leader = apr_pcalloc(p, sizeof(guard_entry_t *) * (apr_size_t)(due->nelts + 1));
    void **jobs = apr_pcalloc(p, sizeof(void *) * (apr_size_t)(due->nelts + 1));
    int *ran = apr_pcalloc(p, sizeof(int) * (apr_size_t)(due->nelts + 1));
    guard_xbaton_t xb;
    int i, n = 0, asked;

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
    asked = og_batch_run(ran, jobs, n, GUARD_FETCH_THREADS, deadline, GUARD_FETCH_MIN_LEFT,
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
            memset(&e->result, 0, sizeof(e->result));
            if (e->fetch.err == OG_FETCH_OK) {
                og_ocsp_verify(&e->result, e->cert, e->fetch.body, e->fetch.len,
                               apr_time_now(), g->max_validity);
            }
            e->batch_state = GUARD_BATCH_ASKED;
        }
    }
    return asked;
}

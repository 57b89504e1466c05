/* mod_ocsp_guard_batch.c: fetch a set of certificates' responses
 * concurrently within one deadline, for the startup prefetch and for the
 * background refresher alike: a bounded pool of threads, joined before
 * returning; requests with the same CertID and responder are sent once.
 * Results land in each entry (fetch, result); applying them is the caller's. */
#include <signal.h>
#include <pthread.h>

#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_thread_mutex.h>

#include "mod_ocsp_guard_private.h"

#define OG_BATCH_THREADS 8

typedef struct og_job_t {
    og_entry_t *e;                /* the entry whose request is sent */
    apr_pool_t *pool;             /* the response body; own allocator, own thread */
    int done;
} og_job_t;

typedef struct og_batch_t {
    apr_array_header_t *jobs;     /* og_job_t */
    apr_thread_mutex_t *lock;
    int next;
    apr_time_t deadline;
    const char *proxy;
} og_batch_t;

static void *APR_THREAD_FUNC batch_worker(apr_thread_t *t, void *data);

static void *APR_THREAD_FUNC batch_worker(apr_thread_t *t, void *data)
{
    og_batch_t *b = data;
    sigset_t set;

    /* A responder closing early must not kill the process with SIGPIPE (the
     * parent ignores it only later): blocked here, the write fails with EPIPE. */
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    for (;;) {
        og_job_t *job;
        apr_interval_time_t left;
        int i, timeout;

        apr_thread_mutex_lock(b->lock);
        i = b->next++;
        apr_thread_mutex_unlock(b->lock);
        if (i >= b->jobs->nelts) {
            break;
        }
        job = &APR_ARRAY_IDX(b->jobs, i, og_job_t);
        left = b->deadline - apr_time_now();
        if (left < apr_time_from_msec(500)) {
            continue; /* not asked: the deadline came first */
        }
        timeout = job->e->timeout_s;
        if (apr_time_from_sec(timeout) > left) {
            timeout = (int)apr_time_sec(left + apr_time_from_msec(999));
        }
        og_entry_exchange(job->e, job->pool, b->proxy, timeout);
        job->done = 1;
    }
    if (t) {
        apr_thread_exit(t, APR_SUCCESS);
    }
    return NULL;
}

static apr_status_t job_pool_cleanup(void *data)
{
    apr_pool_destroy((apr_pool_t *)data);
    return APR_SUCCESS;
}

int og_batch_fetch(og_global_t *g, apr_array_header_t *due, apr_time_t deadline,
                   apr_pool_t *p)
{
    og_batch_t b;
    apr_thread_t *threads[OG_BATCH_THREADS];
    apr_hash_t *seen = apr_hash_make(p);
    og_entry_t **leader = apr_pcalloc(p, sizeof(og_entry_t *) * (apr_size_t)(due->nelts + 1));
    int i, j, n, started = 0, asked = 0;
    apr_status_t rv;

    memset(&b, 0, sizeof(b));
    b.jobs = apr_array_make(p, due->nelts, sizeof(og_job_t));
    b.deadline = deadline;
    b.proxy = g->proxy;
    for (i = 0; i < due->nelts; i++) {
        og_entry_t *e = APR_ARRAY_IDX(due, i, og_entry_t *);
        const char *key = apr_pstrcat(p, e->url, " ", og_hex(p, e->req_der, e->req_len), NULL);
        og_job_t *job;

        e->batch_state = OG_BATCH_NOT_ASKED;
        if ((leader[i] = apr_hash_get(seen, key, APR_HASH_KEY_STRING))) {
            continue;
        }
        apr_hash_set(seen, key, APR_HASH_KEY_STRING, e);
        job = apr_array_push(b.jobs);
        memset(job, 0, sizeof(*job));
        job->e = e;
        apr_pool_create_unmanaged_ex(&job->pool, NULL, NULL);
        apr_pool_cleanup_register(p, job->pool, job_pool_cleanup, apr_pool_cleanup_null);
    }
    if (b.jobs->nelts == 0) {
        return 0;
    }
    apr_thread_mutex_create(&b.lock, APR_THREAD_MUTEX_DEFAULT, p);
    n = b.jobs->nelts < OG_BATCH_THREADS ? b.jobs->nelts : OG_BATCH_THREADS;
    for (i = 0; i < n; i++) {
        if (apr_thread_create(&threads[started], NULL, batch_worker, &b, p) == APR_SUCCESS) {
            started++;
        }
    }
    if (!started) {
        batch_worker(NULL, &b); /* no thread to be had: fetch in this one */
    }
    for (i = 0; i < started; i++) {
        apr_thread_join(&rv, threads[i]);
    }
    for (j = 0; j < b.jobs->nelts; j++) {
        og_job_t *job = &APR_ARRAY_IDX(b.jobs, j, og_job_t);
        if (job->done) {
            job->e->batch_state = OG_BATCH_ASKED;
            asked++;
        }
    }
    /* the same request for another certificate: same answer, verified for it */
    for (i = 0; i < due->nelts; i++) {
        og_entry_t *e = APR_ARRAY_IDX(due, i, og_entry_t *);

        if (leader[i] && leader[i]->batch_state == OG_BATCH_ASKED) {
            e->fetch = leader[i]->fetch;
            memset(&e->result, 0, sizeof(e->result));
            if (e->fetch.err == OG_FETCH_OK) {
                og_ocsp_verify(&e->result, e->cert, e->fetch.body, e->fetch.len,
                               apr_time_now());
            }
            e->batch_state = OG_BATCH_ASKED;
        }
    }
    return asked;
}

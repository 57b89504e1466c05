/* og_batch.c: the bounded thread pool of og_batch.h. The work queue is an
 * index under a mutex; results are written by each worker into its own slot
 * (ran[i], the item itself) and read by the caller only after the joins.
 * Core file: APR and POSIX only. */
#include <signal.h>
#include <pthread.h>
#include <string.h>

#include <apr_thread_proc.h>
#include <apr_thread_mutex.h>
#include <apr_allocator.h>

#include "og_batch.h"

#define OG_BATCH_MAX_THREADS 64

typedef struct og_batch_t {
    void *const *items;
    int n;
    int *ran;
    apr_pool_t **pools;         /* one per item, created before any thread starts */
    apr_thread_mutex_t *lock;   /* guards next */
    int next;
    apr_time_t deadline;
    apr_interval_time_t min_left;
    og_batch_fn *fn;
    void *baton;
} og_batch_t;

static void *APR_THREAD_FUNC batch_worker(apr_thread_t *t, void *data);
static void drain(og_batch_t *b);
static apr_status_t pool_cleanup(void *data);

static apr_status_t pool_cleanup(void *data)
{
    apr_pool_destroy((apr_pool_t *)data);
    return APR_SUCCESS;
}

/* Take items until none is left; SIGPIPE blocked meanwhile, and a pending
 * one consumed before the old mask comes back. */
static void drain(og_batch_t *b)
{
    sigset_t block, old, pending;

    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    for (;;) {
        int i;

        if (b->lock) {
            apr_thread_mutex_lock(b->lock);
        }
        i = b->next++;
        if (b->lock) {
            apr_thread_mutex_unlock(b->lock);
        }
        if (i >= b->n) {
            break;
        }
        if (b->deadline - apr_time_now() < b->min_left) {
            continue; /* not asked: the deadline came first */
        }
        b->fn(b->items[i], b->pools[i], b->deadline, b->baton);
        b->ran[i] = 1;
    }
    /* a thread-directed and a process-directed one may both be pending */
    for (int k = 0; k < 2 && !sigismember(&old, SIGPIPE) && sigpending(&pending) == 0
                    && sigismember(&pending, SIGPIPE); k++) {
        struct timespec zero = { 0, 0 };

        sigtimedwait(&block, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void *APR_THREAD_FUNC batch_worker(apr_thread_t *t, void *data)
{
    (void)t;
    drain(data);
    return NULL; /* no apr_thread_exit: it would destroy a pool others share */
}

int og_batch_run(int *ran, void *const *items, int n, int threads, apr_time_t deadline,
                 apr_interval_time_t min_left, og_batch_fn *fn, void *baton, apr_pool_t *p)
{
    og_batch_t b;
    apr_thread_t *tids[OG_BATCH_MAX_THREADS];
    apr_allocator_t *alloc = NULL;
    apr_thread_mutex_t *amutex = NULL;
    apr_pool_t *tpool = NULL;
    apr_status_t rv;
    int i, started = 0, count = 0;

    memset(&b, 0, sizeof(b));
    memset(ran, 0, sizeof(*ran) * (apr_size_t)(n > 0 ? n : 0));
    if (n <= 0) {
        return 0;
    }
    b.items = items;
    b.n = n;
    b.ran = ran;
    b.deadline = deadline;
    b.min_left = min_left;
    b.fn = fn;
    b.baton = baton;
    b.pools = apr_pcalloc(p, sizeof(apr_pool_t *) * (apr_size_t)n);
    for (i = 0; i < n; i++) {
        /* unmanaged, own allocator: only the one worker that runs item i uses it */
        if (apr_pool_create_unmanaged_ex(&b.pools[i], NULL, NULL) != APR_SUCCESS) {
            return 0;
        }
        apr_pool_cleanup_register(p, b.pools[i], pool_cleanup, apr_pool_cleanup_null);
    }
    if (threads > OG_BATCH_MAX_THREADS) {
        threads = OG_BATCH_MAX_THREADS;
    }
    if (threads > n) {
        threads = n;
    }
    /* the threads' own pools are children of tpool, created here and freed
     * after the joins: its allocator is locked for both */
    if (threads > 1
        && apr_allocator_create(&alloc) == APR_SUCCESS
        && apr_pool_create_unmanaged_ex(&tpool, NULL, alloc) == APR_SUCCESS) {
        apr_allocator_owner_set(alloc, tpool);
        if (apr_thread_mutex_create(&amutex, APR_THREAD_MUTEX_DEFAULT, tpool) == APR_SUCCESS
            && apr_thread_mutex_create(&b.lock, APR_THREAD_MUTEX_DEFAULT, tpool)
               == APR_SUCCESS) {
            apr_allocator_mutex_set(alloc, amutex);
            for (i = 0; i < threads; i++) {
                if (apr_thread_create(&tids[started], NULL, batch_worker, &b, tpool)
                    == APR_SUCCESS) {
                    started++;
                }
            }
        }
    }
    else if (alloc) {
        apr_allocator_destroy(alloc);
    }
    if (!started) {
        b.lock = NULL;
        drain(&b); /* no thread to be had: in this one */
    }
    for (i = 0; i < started; i++) {
        apr_thread_join(&rv, tids[i]);
    }
    if (tpool) {
        apr_pool_destroy(tpool);
    }
    for (i = 0; i < n; i++) {
        count += ran[i];
    }
    return count;
}

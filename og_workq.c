/* og_workq.c: the worker threads and queue of og_workq.h. One mutex guards
 * the queue (two FIFOs per key: urgent, normal), the per-key running counts,
 * the list of jobs to take back and the node pool; `work` wakes a worker,
 * `done` wakes the caller. A worker picks, among keys below their cap, the
 * head with the best (urgency, push order), runs it unlocked, and files it
 * as done. Core file: APR and POSIX only. */
#include <signal.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <apr_allocator.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "og_workq.h"

#define OG_WORKQ_STACK (512 * 1024)

typedef struct og_wnode_t og_wnode_t;
struct og_wnode_t {
    og_wnode_t *next;
    void *job;
    int key;
    int ran;
    apr_uint64_t seq;
    apr_time_t start_by;
};

typedef struct og_wfifo_t {
    og_wnode_t *head, *tail;
} og_wfifo_t;

struct og_workq_t {
    apr_pool_t *pool;               /* own allocator, with a mutex */
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *work, *done_cv;
    og_workq_fn *fn;
    void *baton;
    int nkeys, per_key_max;
    og_wfifo_t *fifo;               /* 2 per key: [2k] urgent, [2k+1] normal */
    int *running_key;
    int *key_max;                   /* og_workq_key_max: 1..per_key_max */
    int queued, running, stop;
    apr_uint64_t seq;
    og_wnode_t *done, *free_nodes;
    int ndone;
    pthread_t tids[OG_WORKQ_MAX_THREADS];
    void *stacks[OG_WORKQ_MAX_THREADS]; /* our own: unmapped after the join, not
                                         * kept resident in glibc's stack cache */
    int nthreads;                   /* started so far, on demand */
    int max_threads;                /* 0: jobs run in og_workq_wait's caller */
    int idle;                       /* workers waiting for a job */
    apr_pool_t *parent;             /* whose cleanup destroys the queue */
};

static void *worker(void *data);
static void spawn_locked(og_workq_t *q);
static og_wnode_t *pick(og_workq_t *q, apr_time_t now);
static void file_done(og_workq_t *q, og_wnode_t *n, int ran);
static void run_inline(og_workq_t *q, og_wnode_t *n);
static apr_status_t workq_cleanup(void *data);

static void file_done(og_workq_t *q, og_wnode_t *n, int ran)
{
    n->ran = ran;
    n->next = q->done;
    q->done = n;
    q->ndone++;
    apr_thread_cond_broadcast(q->done_cv);
}

/* Under the lock: the next job to run, or NULL. Heads whose start_by passed
 * are filed as dropped on the way. */
static og_wnode_t *pick(og_workq_t *q, apr_time_t now)
{
    og_wfifo_t *best = NULL;
    int k, u, best_u = 2;

    for (k = 0; k < q->nkeys; k++) {
        for (u = 0; u < 2; u++) {
            og_wfifo_t *f = &q->fifo[2 * k + u];

            while (f->head && f->head->start_by && f->head->start_by < now) {
                og_wnode_t *n = f->head;

                f->head = n->next;
                if (!f->head) {
                    f->tail = NULL;
                }
                q->queued--;
                file_done(q, n, 0);
            }
        }
        if (q->running_key[k] >= q->key_max[k]) {
            continue;
        }
        /* this key's candidate: its urgent head, else its normal one */
        u = q->fifo[2 * k].head ? 0 : 1;
        if (!q->fifo[2 * k + u].head) {
            continue;
        }
        /* urgent before normal, then push order */
        if (!best || u < best_u || (u == best_u && q->fifo[2 * k + u].head->seq < best->head->seq)) {
            best = &q->fifo[2 * k + u];
            best_u = u;
        }
    }
    if (best) {
        og_wnode_t *n = best->head;

        best->head = n->next;
        if (!best->head) {
            best->tail = NULL;
        }
        q->queued--;
        q->running++;
        q->running_key[n->key]++;
        return n;
    }
    return NULL;
}

/* Under the lock: one more worker, on a stack of our own (with a guard
 * page). Without any worker at all, the queue falls back to running jobs
 * in og_workq_wait's caller. */
static void spawn_locked(og_workq_t *q)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    pthread_attr_t attr;
    void *stack;
    int ok = 0;

    stack = mmap(NULL, OG_WORKQ_STACK, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack != MAP_FAILED && mprotect(stack, page, PROT_NONE) == 0
        && pthread_attr_init(&attr) == 0) {
        ok = pthread_attr_setstack(&attr, stack, OG_WORKQ_STACK) == 0
             && pthread_create(&q->tids[q->nthreads], &attr, worker, q) == 0;
        pthread_attr_destroy(&attr);
    }
    if (ok) {
        q->stacks[q->nthreads++] = stack;
        return;
    }
    if (stack != MAP_FAILED) {
        munmap(stack, OG_WORKQ_STACK);
    }
    if (!q->nthreads) {
        q->max_threads = 0; /* no thread to be had: in the caller's */
    }
}

static void *worker(void *data)
{
    og_workq_t *q = data;
    sigset_t block;

    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, NULL); /* for this thread's whole life */
    apr_thread_mutex_lock(q->lock);
    while (!q->stop) {
        og_wnode_t *n = pick(q, apr_time_now());

        if (!n) {
            q->idle++;
            if (q->queued) {
                /* capped keys or future work: look again soon */
                apr_thread_cond_timedwait(q->work, q->lock, apr_time_from_msec(100));
            }
            else {
                apr_thread_cond_wait(q->work, q->lock);
            }
            q->idle--;
            continue;
        }
        apr_thread_mutex_unlock(q->lock);
        q->fn(n->job, q->baton);
        apr_thread_mutex_lock(q->lock);
        q->running--;
        q->running_key[n->key]--;
        file_done(q, n, 1);
        apr_thread_cond_signal(q->work); /* a key below its cap again */
    }
    apr_thread_mutex_unlock(q->lock);
    return NULL; /* no apr_thread_exit: it would destroy a pool others share */
}

/* Without threads: the caller runs the job, SIGPIPE blocked meanwhile and a
 * pending one consumed before the old mask comes back. Lock held on entry
 * and exit. */
static void run_inline(og_workq_t *q, og_wnode_t *n)
{
    sigset_t block, old, pending;
    int k;

    apr_thread_mutex_unlock(q->lock);
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    q->fn(n->job, q->baton);
    /* a thread-directed and a process-directed one may both be pending */
    for (k = 0; k < 2 && !sigismember(&old, SIGPIPE) && sigpending(&pending) == 0
                && sigismember(&pending, SIGPIPE); k++) {
        struct timespec zero = { 0, 0 };

        sigtimedwait(&block, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    apr_thread_mutex_lock(q->lock);
    q->running--;
    q->running_key[n->key]--;
    file_done(q, n, 1);
}

static apr_status_t workq_cleanup(void *data)
{
    og_workq_destroy(data);
    return APR_SUCCESS;
}

apr_status_t og_workq_create(og_workq_t **pq, int threads, int nkeys, int per_key_max,
                             og_workq_fn *fn, void *baton, apr_pool_t *p)
{
    apr_allocator_t *alloc = NULL;
    apr_thread_mutex_t *amutex;
    apr_pool_t *qp;
    og_workq_t *q;
    apr_status_t rv;

    *pq = NULL;
    if (nkeys < 1 || per_key_max < 1) {
        return APR_EINVAL;
    }
    if ((rv = apr_allocator_create(&alloc)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_pool_create_unmanaged_ex(&qp, NULL, alloc)) != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return rv;
    }
    apr_allocator_owner_set(alloc, qp);
    if ((rv = apr_thread_mutex_create(&amutex, APR_THREAD_MUTEX_DEFAULT, qp)) != APR_SUCCESS) {
        apr_pool_destroy(qp);
        return rv;
    }
    /* the threads' own pools are children of qp: its allocator is locked */
    apr_allocator_mutex_set(alloc, amutex);
    q = apr_pcalloc(qp, sizeof(*q));
    q->pool = qp;
    q->fn = fn;
    q->baton = baton;
    q->nkeys = nkeys;
    q->per_key_max = per_key_max;
    q->fifo = apr_pcalloc(qp, sizeof(og_wfifo_t) * 2 * (apr_size_t)nkeys);
    q->running_key = apr_pcalloc(qp, sizeof(int) * (apr_size_t)nkeys);
    q->key_max = apr_palloc(qp, sizeof(int) * (apr_size_t)nkeys);
    for (int k = 0; k < nkeys; k++) {
        q->key_max[k] = per_key_max;
    }
    if ((rv = apr_thread_mutex_create(&q->lock, APR_THREAD_MUTEX_DEFAULT, qp)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&q->work, qp)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&q->done_cv, qp)) != APR_SUCCESS) {
        apr_pool_destroy(qp);
        return rv;
    }
    if (threads > OG_WORKQ_MAX_THREADS) {
        threads = OG_WORKQ_MAX_THREADS;
    }
    q->max_threads = threads > 0 ? threads : 0; /* started as jobs come */
    if ((q->parent = p)) {
        apr_pool_cleanup_register(p, q, workq_cleanup, apr_pool_cleanup_null);
    }
    *pq = q;
    return APR_SUCCESS;
}

apr_status_t og_workq_push(og_workq_t *q, void *job, int key, int urgent, apr_time_t start_by)
{
    og_wnode_t *n;
    og_wfifo_t *f;

    if (!q || key < 0 || key >= q->nkeys) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(q->lock);
    if ((n = q->free_nodes)) {
        q->free_nodes = n->next;
    }
    else {
        n = apr_palloc(q->pool, sizeof(*n));
    }
    memset(n, 0, sizeof(*n));
    n->job = job;
    n->key = key;
    n->seq = q->seq++;
    n->start_by = start_by;
    f = &q->fifo[2 * key + (urgent ? 0 : 1)];
    if (f->tail) {
        f->tail->next = n;
    }
    else {
        f->head = n;
    }
    f->tail = n;
    q->queued++;
    if (q->max_threads && q->queued > q->idle && q->nthreads < q->max_threads) {
        spawn_locked(q);
    }
    apr_thread_cond_signal(q->work);
    apr_thread_mutex_unlock(q->lock);
    return APR_SUCCESS;
}

void og_workq_key_max(og_workq_t *q, int key, int max)
{
    int k, changed = 0;

    if (!q || key < -1 || key >= q->nkeys) {
        return;
    }
    max = max < 1 ? 1 : max > q->per_key_max ? q->per_key_max : max;
    apr_thread_mutex_lock(q->lock);
    for (k = key < 0 ? 0 : key; k < (key < 0 ? q->nkeys : key + 1); k++) {
        changed |= q->key_max[k] != max;
        q->key_max[k] = max;
    }
    if (changed) {
        apr_thread_cond_broadcast(q->work); /* more may start now */
    }
    apr_thread_mutex_unlock(q->lock);
}

int og_workq_wait(og_workq_t *q, apr_time_t until, int all)
{
    int n;

    apr_thread_mutex_lock(q->lock);
    for (;;) {
        apr_time_t now = apr_time_now();

        if (!q->max_threads) {
            og_wnode_t *j = pick(q, now);

            if (j) {
                run_inline(q, j);
                continue;
            }
        }
        if (all ? (!q->queued && !q->running) : q->ndone > 0) {
            break;
        }
        if (now >= until || (!q->max_threads && !q->running && !q->queued)) {
            break;
        }
        if (!q->max_threads && !q->running) {
            /* inline, and only capped or future work: nothing will change */
            break;
        }
        apr_thread_cond_timedwait(q->done_cv, q->lock, until - now);
    }
    n = q->ndone;
    apr_thread_mutex_unlock(q->lock);
    return n;
}

int og_workq_take(og_workq_t *q, void **jobs, int *ran, int max)
{
    int i = 0;

    apr_thread_mutex_lock(q->lock);
    while (q->done && i < max) {
        og_wnode_t *n = q->done;

        q->done = n->next;
        q->ndone--;
        jobs[i] = n->job;
        ran[i] = n->ran;
        i++;
        n->next = q->free_nodes;
        q->free_nodes = n;
    }
    apr_thread_mutex_unlock(q->lock);
    return i;
}

void og_workq_drop_queued(og_workq_t *q)
{
    int k;

    apr_thread_mutex_lock(q->lock);
    for (k = 0; k < 2 * q->nkeys; k++) {
        og_wfifo_t *f = &q->fifo[k];

        while (f->head) {
            og_wnode_t *n = f->head;

            f->head = n->next;
            q->queued--;
            file_done(q, n, 0);
        }
        f->tail = NULL;
    }
    apr_thread_mutex_unlock(q->lock);
}

void og_workq_counts(og_workq_t *q, int key, int *pqueued, int *prunning)
{
    apr_thread_mutex_lock(q->lock);
    if (pqueued) {
        *pqueued = q->queued;
    }
    if (prunning) {
        *prunning = key >= 0 && key < q->nkeys ? q->running_key[key] : q->running;
    }
    apr_thread_mutex_unlock(q->lock);
}

void og_workq_destroy(og_workq_t *q)
{
    int i;

    if (!q) {
        return;
    }
    if (q->parent) {
        /* called from the cleanup itself, this finds nothing to kill */
        apr_pool_cleanup_kill(q->parent, q, workq_cleanup);
        q->parent = NULL;
    }
    og_workq_drop_queued(q);
    apr_thread_mutex_lock(q->lock);
    q->stop = 1;
    apr_thread_cond_broadcast(q->work);
    apr_thread_mutex_unlock(q->lock);
    for (i = 0; i < q->nthreads; i++) {
        pthread_join(q->tids[i], NULL);
        munmap(q->stacks[i], OG_WORKQ_STACK);
    }
    apr_pool_destroy(q->pool);
}

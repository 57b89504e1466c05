/* og_batch.h: run one function over many items concurrently, within one
 * deadline, on a bounded set of threads joined before returning. Each call
 * gets a pool of its own (with its own allocator, used by that thread only)
 * that lives until the caller's pool is cleared; the threads themselves come
 * from a pool whose allocator has a mutex, and end by returning (never
 * apr_thread_exit), so no pool is touched by two threads at once. SIGPIPE is
 * blocked around every call (a responder closing early makes a write fail
 * with EPIPE instead of killing the process), and a SIGPIPE left pending is
 * consumed before the mask is restored. Core (APR and POSIX only). */
#ifndef OG_BATCH_H
#define OG_BATCH_H

#include <apr_pools.h>
#include <apr_time.h>

/* One item's work; `p` is the item's own pool. */
typedef void og_batch_fn(void *item, apr_pool_t *p, apr_time_t deadline, void *baton);

/* Call fn for each of items[0..n-1] with at most `threads` threads (0 or 1:
 * in this thread), skipping the items left when less than `min_left` remains
 * before the deadline. ran[i] is set to 1 for each item fn ran for. Returns
 * how many ran. */
int og_batch_run(int *ran, void *const *items, int n, int threads, apr_time_t deadline,
                 apr_interval_time_t min_left, og_batch_fn *fn, void *baton, apr_pool_t *p);

#endif /* OG_BATCH_H */

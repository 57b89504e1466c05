/* og_workq.h: a persistent set of worker threads running jobs from a queue,
 * for the fetches of the prefetch and the refresher alike. Each job has a
 * key (its responder) and at most `per_key_max` jobs of one key run at
 * once, so one slow responder cannot take every thread; urgent jobs go
 * before the others; a job may carry a time after which it is not started
 * any more. Finished jobs (and jobs dropped unstarted) are taken back by the
 * one caller thread that pushes, in any order, whenever it likes: nothing
 * waits for the slowest job unless asked to. Threads are started as jobs
 * come (never more than needed at once, up to the maximum), on stacks of the
 * queue's own that are unmapped when it is destroyed. Threads block SIGPIPE (a
 * responder closing early makes a write fail with EPIPE); the queue's pool
 * has an allocator with a mutex, and is only touched under the queue lock.
 * Core (APR and POSIX only). */
#ifndef OG_WORKQ_H
#define OG_WORKQ_H

#include <apr_pools.h>
#include <apr_time.h>

#define OG_WORKQ_MAX_THREADS 256

typedef struct og_workq_t og_workq_t;

/* A job's work, on one of the threads (or in the caller's, without threads). */
typedef void og_workq_fn(void *job, void *baton);

/* Up to `threads` workers (0: none, jobs then run in og_workq_wait's caller);
 * keys are 0..nkeys-1. The queue lives until og_workq_destroy (or p's
 * cleanup). */
apr_status_t og_workq_create(og_workq_t **pq, int threads, int nkeys, int per_key_max,
                             og_workq_fn *fn, void *baton, apr_pool_t *p);

/* Queue a job. start_by 0: whenever a thread is free; else dropped unstarted
 * (taken back with ran 0) once start_by has passed. */
apr_status_t og_workq_push(og_workq_t *q, void *job, int key, int urgent, apr_time_t start_by);

/* From now on at most `max` jobs of `key` (-1: of every key) run at once
 * (1..per_key_max; a new queue allows per_key_max for every key). Safe from
 * any thread, jobs included. */
void og_workq_key_max(og_workq_t *q, int key, int max);

/* Wait until at least one job can be taken back (all 0) or until no job is
 * queued or running (all 1), or until `until`. Returns how many can be
 * taken back. */
int og_workq_wait(og_workq_t *q, apr_time_t until, int all);

/* Take back up to `max` finished or dropped jobs: jobs[i], ran[i] (1: the
 * function ran, 0: dropped unstarted). Returns how many. */
int og_workq_take(og_workq_t *q, void **jobs, int *ran, int max);

/* Drop every queued job not yet started (taken back with ran 0). */
void og_workq_drop_queued(og_workq_t *q);

/* How many jobs are queued, running, and running for `key` (-1: any). */
void og_workq_counts(og_workq_t *q, int key, int *pqueued, int *prunning);

/* Drop what is queued, wait for the running jobs, join the threads. Jobs
 * not taken back are forgotten (the caller owns them). */
void og_workq_destroy(og_workq_t *q);

#endif /* OG_WORKQ_H */

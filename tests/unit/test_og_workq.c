/* test_og_workq.c: the fetchers' worker threads with an injected job
 * function. Every job runs exactly once whatever the thread count (none:
 * in the caller's thread); no more than per_key_max jobs of one key run at
 * once while other keys still get threads; urgent jobs start first; a job
 * not started by its start_by is handed back unrun; the caller takes back a
 * fast job without waiting for a slow one and can push while others run;
 * SIGPIPE inside a job neither kills the process nor outlives the call in
 * the caller's thread. `make threadcheck` runs this under helgrind: the
 * jobs' state is touched without locks on purpose, so a job run on two
 * threads, or handed back before it ended, is reported as a race. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "og_workq.h"

#define MAX_JOBS 300

typedef struct job_t {
    int index;
    int key;
    int calls;                  /* written only by the thread running the job */
    pthread_t thread;
    apr_interval_time_t sleep;
    int raise_sigpipe;
    int wfd;                    /* >= 0: write here (the peer is closed) */
    int write_errno;
    int order;                  /* when it started, among all */
    apr_pool_t *pool;           /* its own, used by the running thread only */
    const char *text;
} job_t;

static apr_pool_t *pool;
static job_t jobs[MAX_JOBS];
static pthread_mutex_t stat_lock = PTHREAD_MUTEX_INITIALIZER;
static int running_per_key[8], max_per_key[8], running_all, max_all, started;

static void run_job(void *data, void *baton)
{
    job_t *j = data;
    char *scratch;

    (void)baton;
    pthread_mutex_lock(&stat_lock);
    j->order = started++;
    running_all++;
    if (running_all > max_all) {
        max_all = running_all;
    }
    running_per_key[j->key]++;
    if (running_per_key[j->key] > max_per_key[j->key]) {
        max_per_key[j->key] = running_per_key[j->key];
    }
    pthread_mutex_unlock(&stat_lock);
    j->calls++;
    j->thread = pthread_self();
    scratch = apr_palloc(j->pool, 256);
    memset(scratch, j->index & 0x7f, 256);
    j->text = apr_psprintf(j->pool, "job %d, scratch %d", j->index, scratch[255]);
    if (j->sleep) {
        apr_sleep(j->sleep);
    }
    if (j->raise_sigpipe) {
        raise(SIGPIPE);
    }
    if (j->wfd >= 0) {
        ssize_t n = write(j->wfd, "x", 1);

        j->write_errno = n < 0 ? errno : 0;
    }
    pthread_mutex_lock(&stat_lock);
    running_all--;
    running_per_key[j->key]--;
    pthread_mutex_unlock(&stat_lock);
}

static void reset_jobs(void)
{
    int i;

    for (i = 0; i < MAX_JOBS; i++) {
        if (jobs[i].pool) {
            apr_pool_destroy(jobs[i].pool);
        }
    }
    memset(jobs, 0, sizeof(jobs));
    for (i = 0; i < MAX_JOBS; i++) {
        jobs[i].index = i;
        jobs[i].wfd = -1;
        apr_pool_create_unmanaged_ex(&jobs[i].pool, NULL, NULL);
    }
    memset(running_per_key, 0, sizeof(running_per_key));
    memset(max_per_key, 0, sizeof(max_per_key));
    running_all = max_all = started = 0;
}

/* Take back everything, checking each job came back once. */
static int take_all(og_workq_t *q, int *pran_count)
{
    void *got[MAX_JOBS];
    int ran[MAX_JOBS], n, i, total = 0, ran_count = 0;

    while ((n = og_workq_take(q, got, ran, MAX_JOBS)) > 0) {
        for (i = 0; i < n; i++) {
            job_t *j = got[i];

            assert_int_equal(j->calls, ran[i]);
            ran_count += ran[i];
        }
        total += n;
    }
    if (pran_count) {
        *pran_count = ran_count;
    }
    return total;
}

static int setup(void **state)
{
    (void)state;
    apr_initialize();
    return apr_pool_create(&pool, NULL) == APR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < MAX_JOBS; i++) {
        if (jobs[i].pool) {
            apr_pool_destroy(jobs[i].pool);
            jobs[i].pool = NULL;
        }
    }
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

static void test_every_job_runs_exactly_once_with_any_thread_count(void **state)
{
    static const int threads[] = { 0, 1, 2, 8, 64 };
    static const int sizes[] = { 0, 1, 2, 7, 64, 65, MAX_JOBS };
    size_t t, s;

    (void)state;
    for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            og_workq_t *q;
            int n = sizes[s], i, ran_count, taken;
            pthread_t seen[64];
            int nseen = 0;

            reset_jobs();
            assert_int_equal(og_workq_create(&q, threads[t], 1, 1000, run_job, NULL, pool),
                             APR_SUCCESS);
            for (i = 0; i < n; i++) {
                assert_int_equal(og_workq_push(q, &jobs[i], 0, 0, 0), APR_SUCCESS);
            }
            og_workq_wait(q, apr_time_now() + apr_time_from_sec(60), 1);
            taken = take_all(q, &ran_count);
            if (taken != n || ran_count != n) {
                fail_msg("threads %d, %d jobs: %d taken back, %d ran", threads[t], n, taken,
                         ran_count);
            }
            for (i = 0; i < n; i++) {
                char want[64];
                int k;

                snprintf(want, sizeof(want), "job %d, scratch %d", i, i & 0x7f);
                assert_int_equal(jobs[i].calls, 1);
                assert_string_equal(jobs[i].text, want);
                for (k = 0; k < nseen && !pthread_equal(seen[k], jobs[i].thread); k++) {
                }
                if (k == nseen && nseen < 64) {
                    seen[nseen++] = jobs[i].thread;
                }
            }
            if (threads[t] == 0 && n > 0) {
                assert_int_equal(nseen, 1);
                assert_true(pthread_equal(seen[0], pthread_self()));
            }
            else {
                assert_true(nseen <= threads[t]);
            }
            og_workq_destroy(q);
        }
    }
}

static void test_per_key_cap_holds_while_other_keys_run(void **state)
{
    og_workq_t *q;
    int i;

    (void)state;
    reset_jobs();
    /* key 0 has 40 slow jobs, keys 1 and 2 ten each, pushed after them */
    assert_int_equal(og_workq_create(&q, 16, 3, 4, run_job, NULL, pool), APR_SUCCESS);
    for (i = 0; i < 60; i++) {
        jobs[i].key = i < 40 ? 0 : (i < 50 ? 1 : 2);
        jobs[i].sleep = apr_time_from_msec(30);
        assert_int_equal(og_workq_push(q, &jobs[i], jobs[i].key, 0, 0), APR_SUCCESS);
    }
    og_workq_wait(q, apr_time_now() + apr_time_from_sec(60), 1);
    assert_int_equal(take_all(q, NULL), 60);
    printf("# most at once: key0 %d, key1 %d, key2 %d, all %d\n", max_per_key[0],
           max_per_key[1], max_per_key[2], max_all);
    assert_true(max_per_key[0] <= 4 && max_per_key[1] <= 4 && max_per_key[2] <= 4);
    assert_true(max_all > 4); /* the other keys were not held behind key 0 */
    /* key 1's first job started before key 0's last ones: not queued behind */
    assert_true(jobs[40].order < jobs[39].order);
    og_workq_destroy(q);
}

/* A key held to one job at a time (a responder not known to answer yet)
 * runs its jobs one by one; raised from inside one of its jobs (the first
 * answer came), the rest run side by side. */
static og_workq_t *raise_q;
static int max_before_raise;

static void run_job_then_raise(void *data, void *baton)
{
    run_job(data, baton);
    if (((job_t *)data)->index == 2) {
        pthread_mutex_lock(&stat_lock);
        max_before_raise = max_per_key[0];
        pthread_mutex_unlock(&stat_lock);
        og_workq_key_max(raise_q, 0, 4);
    }
}

static void test_key_max_holds_a_key_to_one_until_raised(void **state)
{
    og_workq_t *q;
    int i;

    (void)state;
    reset_jobs();
    assert_int_equal(og_workq_create(&q, 8, 1, 4, run_job_then_raise, NULL, pool), APR_SUCCESS);
    raise_q = q;
    og_workq_key_max(q, -1, 1); /* every key (the one) */
    for (i = 0; i < 20; i++) {
        jobs[i].sleep = apr_time_from_msec(20);
        assert_int_equal(og_workq_push(q, &jobs[i], 0, 0, 0), APR_SUCCESS);
    }
    og_workq_wait(q, apr_time_now() + apr_time_from_sec(60), 1);
    assert_int_equal(take_all(q, NULL), 20);
    /* jobs 0, 1, 2 ran alone, one after the other; then up to 4 at once */
    assert_int_equal(max_before_raise, 1);
    printf("# most at once: %d\n", max_per_key[0]);
    assert_true(max_per_key[0] > 1 && max_per_key[0] <= 4);
    og_workq_destroy(q);
}

static void test_urgent_jobs_start_first(void **state)
{
    og_workq_t *q;

    (void)state;
    reset_jobs();
    assert_int_equal(og_workq_create(&q, 1, 2, 10, run_job, NULL, pool), APR_SUCCESS);
    jobs[0].sleep = apr_time_from_msec(200); /* holds the one thread */
    assert_int_equal(og_workq_push(q, &jobs[0], 0, 0, 0), APR_SUCCESS);
    apr_sleep(apr_time_from_msec(50));
    assert_int_equal(og_workq_push(q, &jobs[1], 0, 0, 0), APR_SUCCESS);
    assert_int_equal(og_workq_push(q, &jobs[2], 1, 0, 0), APR_SUCCESS);
    assert_int_equal(og_workq_push(q, &jobs[3], 1, 1, 0), APR_SUCCESS);
    assert_int_equal(og_workq_push(q, &jobs[4], 0, 1, 0), APR_SUCCESS);
    og_workq_wait(q, apr_time_now() + apr_time_from_sec(30), 1);
    assert_int_equal(take_all(q, NULL), 5);
    assert_int_equal(jobs[0].order, 0);
    assert_int_equal(jobs[3].order, 1); /* urgent, in push order */
    assert_int_equal(jobs[4].order, 2);
    assert_int_equal(jobs[1].order, 3); /* then the others, in push order */
    assert_int_equal(jobs[2].order, 4);
    og_workq_destroy(q);
}

static void test_jobs_not_started_by_their_time_come_back_unrun(void **state)
{
    static const int threads[] = { 0, 2 };
    size_t t;

    (void)state;
    for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        og_workq_t *q;
        int ran_count, i;
        apr_time_t soon = apr_time_now() + apr_time_from_msec(300);

        reset_jobs();
        assert_int_equal(og_workq_create(&q, threads[t], 1, 10, run_job, NULL, pool),
                         APR_SUCCESS);
        /* already past: never runs */
        assert_int_equal(og_workq_push(q, &jobs[0], 0, 0, apr_time_now() - 1), APR_SUCCESS);
        /* 1 s each, with 300 ms to start: the first `threads` (or one) start */
        for (i = 1; i <= 4; i++) {
            jobs[i].sleep = apr_time_from_sec(1);
            assert_int_equal(og_workq_push(q, &jobs[i], 0, 0, soon), APR_SUCCESS);
        }
        og_workq_wait(q, apr_time_now() + apr_time_from_sec(30), 1);
        assert_int_equal(take_all(q, &ran_count), 5);
        assert_int_equal(jobs[0].calls, 0);
        assert_int_equal(ran_count, threads[t] ? threads[t] : 1);
        og_workq_destroy(q);
    }
}

static void test_fast_jobs_come_back_while_a_slow_one_runs(void **state)
{
    og_workq_t *q;
    void *got[4];
    int ran[4], n;
    apr_time_t t0;

    (void)state;
    reset_jobs();
    assert_int_equal(og_workq_create(&q, 4, 1, 4, run_job, NULL, pool), APR_SUCCESS);
    jobs[0].sleep = apr_time_from_sec(2);
    assert_int_equal(og_workq_push(q, &jobs[0], 0, 0, 0), APR_SUCCESS);
    assert_int_equal(og_workq_push(q, &jobs[1], 0, 0, 0), APR_SUCCESS);
    t0 = apr_time_now();
    assert_true(og_workq_wait(q, t0 + apr_time_from_sec(10), 0) >= 1);
    n = og_workq_take(q, got, ran, 4);
    assert_int_equal(n, 1);
    assert_ptr_equal(got[0], &jobs[1]);
    assert_true(apr_time_now() - t0 < apr_time_from_sec(1));
    /* pushed later, while the slow one still runs */
    assert_int_equal(og_workq_push(q, &jobs[2], 0, 0, 0), APR_SUCCESS);
    assert_true(og_workq_wait(q, apr_time_now() + apr_time_from_sec(10), 0) >= 1);
    n = og_workq_take(q, got, ran, 4);
    assert_int_equal(n, 1);
    assert_ptr_equal(got[0], &jobs[2]);
    assert_true(apr_time_now() - t0 < apr_time_from_sec(1));
    /* the slow one, finally */
    og_workq_wait(q, apr_time_now() + apr_time_from_sec(10), 1);
    assert_int_equal(og_workq_take(q, got, ran, 4), 1);
    assert_ptr_equal(got[0], &jobs[0]);
    og_workq_destroy(q);
}

static void test_destroy_drops_queued_and_waits_for_running(void **state)
{
    og_workq_t *q;
    int i;

    (void)state;
    reset_jobs();
    assert_int_equal(og_workq_create(&q, 2, 1, 2, run_job, NULL, NULL), APR_SUCCESS);
    for (i = 0; i < 10; i++) {
        jobs[i].sleep = apr_time_from_msec(200);
        assert_int_equal(og_workq_push(q, &jobs[i], 0, 0, 0), APR_SUCCESS);
    }
    apr_sleep(apr_time_from_msec(50));
    og_workq_destroy(q);
    /* the two that had started ended before destroy returned; none other ran */
    for (i = 0; i < 10; i++) {
        assert_true(jobs[i].calls <= 1);
    }
    assert_int_equal(running_all, 0);
    assert_int_equal(started, 2);
}

static void test_sigpipe_inside_jobs_is_harmless(void **state)
{
    static const int threads[] = { 0, 3 };
    struct sigaction dfl, old;
    size_t t;

    (void)state;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL; /* an unblocked SIGPIPE would end this process */
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        og_workq_t *q;
        sigset_t before, after, pending;
        int sv[2], i;

        reset_jobs();
        pthread_sigmask(SIG_SETMASK, NULL, &before);
        assert_false(sigismember(&before, SIGPIPE));
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(close(sv[1]), 0);
        assert_int_equal(og_workq_create(&q, threads[t], 1, 10, run_job, NULL, pool),
                         APR_SUCCESS);
        jobs[0].raise_sigpipe = 1;
        jobs[1].wfd = sv[0];
        jobs[2].raise_sigpipe = 1;
        for (i = 0; i < 3; i++) {
            assert_int_equal(og_workq_push(q, &jobs[i], 0, 0, 0), APR_SUCCESS);
        }
        og_workq_wait(q, apr_time_now() + apr_time_from_sec(30), 1);
        assert_int_equal(take_all(q, NULL), 3);
        assert_int_equal(jobs[1].write_errno, EPIPE);
        pthread_sigmask(SIG_SETMASK, NULL, &after);
        assert_false(sigismember(&after, SIGPIPE)); /* the caller's mask is back */
        sigemptyset(&pending);
        sigpending(&pending);
        assert_false(sigismember(&pending, SIGPIPE));
        og_workq_destroy(q);
        close(sv[0]);
    }
    sigaction(SIGPIPE, &old, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_job_runs_exactly_once_with_any_thread_count),
        cmocka_unit_test(test_per_key_cap_holds_while_other_keys_run),
        cmocka_unit_test(test_key_max_holds_a_key_to_one_until_raised),
        cmocka_unit_test(test_urgent_jobs_start_first),
        cmocka_unit_test(test_jobs_not_started_by_their_time_come_back_unrun),
        cmocka_unit_test(test_fast_jobs_come_back_while_a_slow_one_runs),
        cmocka_unit_test(test_destroy_drops_queued_and_waits_for_running),
        cmocka_unit_test(test_sigpipe_inside_jobs_is_harmless),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

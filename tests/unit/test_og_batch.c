/* test_og_batch.c: og_batch_run with an injected function: every item runs
 * exactly once whatever the thread count, items the deadline leaves no room
 * for are skipped and reported, each call has a pool of its own that lives
 * until the caller's pool is cleared, and SIGPIPE raised inside a call
 * neither kills the process nor outlives the batch. `make threadcheck` runs
 * this file under helgrind: the items' state is touched without locks on
 * purpose, so a second thread on the same item, or a pool shared between
 * threads, is reported as a race. */
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

#include "og_batch.h"

#define MAX_ITEMS 200

typedef struct item_t {
    int index;
    int calls;                  /* written only by the thread running the item */
    apr_pool_t *pool;           /* the pool it was given */
    const char *text;           /* allocated from that pool */
    int cleaned;                /* set by a cleanup on that pool */
    pthread_t thread;
    apr_time_t deadline;        /* as passed to fn */
    void *baton;                /* as passed to fn */
    apr_interval_time_t sleep;  /* before returning */
    int raise_sigpipe;
    int wfd;                    /* >= 0: write here (the peer is closed) */
    int write_errno;
} item_t;

static apr_pool_t *pool;                /* the caller's: one subpool per batch */
static item_t items[MAX_ITEMS];
static void *ptrs[MAX_ITEMS];
static int ran[MAX_ITEMS];
static int baton;

static apr_status_t mark_cleaned(void *data)
{
    ((item_t *)data)->cleaned = 1;
    return APR_SUCCESS;
}

static void run_item(void *data, apr_pool_t *p, apr_time_t deadline, void *b)
{
    item_t *it = data;
    char *scratch;

    it->calls++;
    it->pool = p;
    it->thread = pthread_self();
    it->deadline = deadline;
    it->baton = b;
    /* use the pool: allocate, write, register a cleanup */
    scratch = apr_palloc(p, 256);
    memset(scratch, it->index & 0xff, 256);
    it->text = apr_psprintf(p, "item %d, scratch %d", it->index, scratch[255]);
    apr_pool_cleanup_register(p, it, mark_cleaned, apr_pool_cleanup_null);
    if (it->sleep) {
        apr_sleep(it->sleep);
    }
    if (it->raise_sigpipe) {
        raise(SIGPIPE);
    }
    if (it->wfd >= 0) {
        ssize_t n = write(it->wfd, "x", 1);

        it->write_errno = n < 0 ? errno : 0;
    }
}

static void reset_items(int n)
{
    int i;

    memset(items, 0, sizeof(items));
    for (i = 0; i < MAX_ITEMS; i++) {
        items[i].index = i;
        items[i].wfd = -1;
        ptrs[i] = &items[i];
        ran[i] = i < n ? 7 : 0; /* garbage og_batch_run must overwrite */
    }
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

    return x < y ? -1 : x > y;
}

/* How many of items[0..n-1] share a pool with another one. */
static int shared_pools(int n)
{
    void *sorted[MAX_ITEMS];
    int i, dup = 0;

    for (i = 0; i < n; i++) {
        sorted[i] = items[i].pool;
    }
    qsort(sorted, (size_t)n, sizeof(sorted[0]), cmp_ptr);
    for (i = 1; i < n; i++) {
        dup += sorted[i] == sorted[i - 1];
    }
    return dup;
}

/* How many distinct threads ran items[0..n-1] (only those that ran). */
static int distinct_threads(int n)
{
    pthread_t seen[MAX_ITEMS];
    int i, j, k = 0;

    for (i = 0; i < n; i++) {
        if (!items[i].calls) {
            continue;
        }
        for (j = 0; j < k && !pthread_equal(seen[j], items[i].thread); j++) {
        }
        if (j == k) {
            seen[k++] = items[i].thread;
        }
    }
    return k;
}

/* On how many signals the calling thread's mask differs from `before`. */
static int mask_differences(const sigset_t *before)
{
    sigset_t now;
    int s, diff = 0;

    pthread_sigmask(SIG_SETMASK, NULL, &now);
    for (s = 1; s < NSIG; s++) {
        diff += sigismember(before, s) != sigismember(&now, s);
    }
    return diff;
}

static int sigpipe_pending(void)
{
    sigset_t pending;

    sigemptyset(&pending);
    sigpending(&pending);
    return sigismember(&pending, SIGPIPE);
}

static int setup(void **state)
{
    (void)state;
    return apr_pool_create(&pool, NULL) == APR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    apr_pool_destroy(pool);
    return 0;
}

/* Every size 0..MAX_ITEMS; under `make threadcheck` (OG_THREADCHECK=1) the
 * sizes around the thread counts and the ends only, as helgrind makes each
 * of the ~13,000 thread starts of the full sweep costly (minutes). */
static int size_wanted(int n)
{
    static const int edges[] = { 0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 127, 199, 200 };
    const char *quick = getenv("OG_THREADCHECK");
    size_t i;

    if (!quick || strcmp(quick, "1") != 0) {
        return 1;
    }
    for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        if (edges[i] == n) {
            return 1;
        }
    }
    return 0;
}

static void test_batch_runs_every_item_exactly_once_with_any_thread_count(void **state)
{
    static const int threads[] = { 1, 2, 8, 64 };
    apr_time_t far = apr_time_now() + apr_time_from_sec(3600);
    size_t t;
    int n, i;

    (void)state;
    for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        for (n = 0; n <= MAX_ITEMS; n++) {
            apr_pool_t *sub;
            int count, wrong = 0, unrun = 0, unusable = 0;

            if (!size_wanted(n)) {
                continue;
            }
            assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
            reset_items(n);
            count = og_batch_run(ran, ptrs, n, threads[t], far, 0, run_item, &baton, sub);
            for (i = 0; i < n; i++) {
                char want[64];

                snprintf(want, sizeof(want), "item %d, scratch %d", i, (signed char)(i & 0xff));
                wrong += items[i].calls != 1;
                unrun += ran[i] != 1;
                unusable += !items[i].text || strcmp(items[i].text, want) != 0
                            || items[i].deadline != far || items[i].baton != &baton
                            || items[i].cleaned;
            }
            for (i = n; i < MAX_ITEMS; i++) {
                wrong += items[i].calls != 0; /* nothing beyond n */
            }
            if (count != n || wrong || unrun || unusable) {
                fail_msg("threads %d, %d items: returned %d, %d called other than once, "
                         "%d not reported as run, %d with an unusable pool",
                         threads[t], n, count, wrong, unrun, unusable);
            }
            assert_int_equal(shared_pools(n), 0);
            assert_true(distinct_threads(n) <= threads[t]);
            if (threads[t] == 1 && n > 0) {
                /* one thread: the caller's own */
                assert_int_equal(distinct_threads(n), 1);
                assert_true(pthread_equal(items[0].thread, pthread_self()));
            }
            apr_pool_destroy(sub);
            for (i = 0; i < n; i++) {
                unusable += !items[i].cleaned;
            }
            if (unusable) {
                fail_msg("threads %d, %d items: %d pools not destroyed with the caller's",
                         threads[t], n, unusable);
            }
        }
    }
}

static void test_batch_pools_live_until_the_callers_pool_is_cleared(void **state)
{
    apr_pool_t *sub;
    apr_time_t far = apr_time_now() + apr_time_from_sec(3600);
    int i;

    (void)state;
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    reset_items(16);
    assert_int_equal(og_batch_run(ran, ptrs, 16, 4, far, 0, run_item, NULL, sub), 16);
    for (i = 0; i < 16; i++) {
        assert_int_equal(items[i].cleaned, 0);
        assert_non_null(items[i].text);
        assert_int_equal(strncmp(items[i].text, "item ", 5), 0);
        /* still usable after the batch, from this thread */
        assert_non_null(apr_pstrdup(items[i].pool, "more"));
    }
    assert_int_equal(shared_pools(16), 0);
    apr_pool_clear(sub);
    for (i = 0; i < 16; i++) {
        assert_int_equal(items[i].cleaned, 1);
    }
    apr_pool_destroy(sub);
}

static void test_batch_skips_items_when_less_than_min_left_remains(void **state)
{
    apr_pool_t *sub;
    apr_time_t deadline;
    int i;

    (void)state;
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    /* in the caller's thread: item 0 takes 2 s of the 3, then 1.5 s would be
     * needed and at most 1 s is left */
    reset_items(3);
    items[0].sleep = apr_time_from_sec(2);
    deadline = apr_time_now() + apr_time_from_sec(3);
    assert_int_equal(og_batch_run(ran, ptrs, 3, 0, deadline, apr_time_from_msec(1500),
                                  run_item, NULL, sub), 1);
    assert_int_equal(ran[0], 1);
    assert_int_equal(items[0].calls, 1);
    for (i = 1; i < 3; i++) {
        assert_int_equal(ran[i], 0);
        assert_int_equal(items[i].calls, 0);
    }
    /* two threads, four items of 2 s each: the first two start at once, the
     * other two only when at most 1 s is left */
    reset_items(4);
    for (i = 0; i < 4; i++) {
        items[i].sleep = apr_time_from_sec(2);
    }
    deadline = apr_time_now() + apr_time_from_sec(3);
    assert_int_equal(og_batch_run(ran, ptrs, 4, 2, deadline, apr_time_from_msec(1500),
                                  run_item, NULL, sub), 2);
    for (i = 0; i < 4; i++) {
        assert_int_equal(ran[i], items[i].calls);
    }
    assert_int_equal(ran[0] + ran[1] + ran[2] + ran[3], 2);
    apr_pool_destroy(sub);
}

static void test_batch_past_deadline_runs_nothing(void **state)
{
    static const int threads[] = { 0, 1, 8 };
    apr_pool_t *sub;
    size_t t;
    int i;

    (void)state;
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    for (t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        reset_items(10);
        assert_int_equal(og_batch_run(ran, ptrs, 10, threads[t],
                                      apr_time_now() - apr_time_from_sec(1), 0,
                                      run_item, NULL, sub), 0);
        for (i = 0; i < 10; i++) {
            assert_int_equal(ran[i], 0);
            assert_int_equal(items[i].calls, 0);
        }
    }
    apr_pool_destroy(sub);
}

static void test_batch_in_callers_thread_keeps_its_mask_and_swallows_raised_sigpipe(void **state)
{
    struct sigaction dfl, old;
    sigset_t before;
    apr_pool_t *sub;

    (void)state;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL; /* an unblocked SIGPIPE would end this process */
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    assert_false(sigismember(&before, SIGPIPE));
    reset_items(3);
    items[1].raise_sigpipe = 1;
    assert_int_equal(og_batch_run(ran, ptrs, 3, 0, apr_time_now() + apr_time_from_sec(60),
                                  0, run_item, NULL, sub), 3);
    assert_true(pthread_equal(items[1].thread, pthread_self()));
    assert_int_equal(mask_differences(&before), 0);
    assert_false(sigpipe_pending());
    apr_pool_destroy(sub);
    sigaction(SIGPIPE, &old, NULL);
}

static void test_batch_in_callers_thread_survives_write_to_closed_socket(void **state)
{
    struct sigaction dfl, old;
    sigset_t before;
    apr_pool_t *sub;
    int sv[2];

    (void)state;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(close(sv[1]), 0);
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    reset_items(1);
    items[0].wfd = sv[0];
    assert_int_equal(og_batch_run(ran, ptrs, 1, 0, apr_time_now() + apr_time_from_sec(60),
                                  0, run_item, NULL, sub), 1);
    assert_int_equal(items[0].write_errno, EPIPE);
    assert_int_equal(mask_differences(&before), 0);
    assert_false(sigpipe_pending());
    close(sv[0]);
    apr_pool_destroy(sub);
    sigaction(SIGPIPE, &old, NULL);
}

static void test_batch_threads_survive_sigpipe_and_leave_the_callers_mask(void **state)
{
    struct sigaction dfl, old;
    sigset_t before;
    apr_pool_t *sub;
    int sv[2], i;

    (void)state;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &dfl, &old), 0);
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(close(sv[1]), 0);
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    reset_items(8);
    for (i = 0; i < 8; i++) {
        if (i % 2) {
            items[i].raise_sigpipe = 1;
        }
        else {
            items[i].wfd = sv[0];
        }
    }
    assert_int_equal(og_batch_run(ran, ptrs, 8, 4, apr_time_now() + apr_time_from_sec(60),
                                  0, run_item, NULL, sub), 8);
    for (i = 0; i < 8; i += 2) {
        assert_int_equal(items[i].write_errno, EPIPE);
    }
    assert_int_equal(mask_differences(&before), 0);
    assert_false(sigpipe_pending());
    close(sv[0]);
    apr_pool_destroy(sub);
    sigaction(SIGPIPE, &old, NULL);
}

static void test_batch_caller_that_blocks_sigpipe_keeps_it_blocked(void **state)
{
    sigset_t block, before;
    struct timespec zero = { 0, 0 };
    apr_pool_t *sub;

    (void)state;
    assert_int_equal(apr_pool_create(&sub, pool), APR_SUCCESS);
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, NULL);
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    assert_true(sigismember(&before, SIGPIPE));
    reset_items(2);
    items[0].raise_sigpipe = 1;
    assert_int_equal(og_batch_run(ran, ptrs, 2, 0, apr_time_now() + apr_time_from_sec(60),
                                  0, run_item, NULL, sub), 2);
    assert_int_equal(mask_differences(&before), 0);
    /* a SIGPIPE still pending is the caller's to take, as it blocked it */
    if (sigpipe_pending()) {
        assert_int_equal(sigtimedwait(&block, NULL, &zero), SIGPIPE);
    }
    assert_false(sigpipe_pending());
    pthread_sigmask(SIG_UNBLOCK, &block, NULL);
    apr_pool_destroy(sub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_runs_every_item_exactly_once_with_any_thread_count),
        cmocka_unit_test(test_batch_pools_live_until_the_callers_pool_is_cleared),
        cmocka_unit_test(test_batch_skips_items_when_less_than_min_left_remains),
        cmocka_unit_test(test_batch_past_deadline_runs_nothing),
        cmocka_unit_test(test_batch_in_callers_thread_keeps_its_mask_and_swallows_raised_sigpipe),
        cmocka_unit_test(test_batch_in_callers_thread_survives_write_to_closed_socket),
        cmocka_unit_test(test_batch_threads_survive_sigpipe_and_leave_the_callers_mask),
        cmocka_unit_test(test_batch_caller_that_blocks_sigpipe_keeps_it_blocked),
    };
    int rv;

    apr_initialize();
    rv = cmocka_run_group_tests_name("og_batch", tests, setup, teardown);
    apr_terminate();
    return rv;
}

/* test_og_sched.c: renewal inside the window (without overflow over any
 * 4-digit-year validity), backoff doubling and caps, tighter retries near
 * expiry, and no hammering after a stale answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "og_sched.h"

#define S(x) apr_time_from_sec(x)

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the ends of what a 4-digit
 * ASN.1 year can say: about -6.2e16 and 2.5e17 us */
#define YEAR_0000 S(-APR_INT64_C(62167219200))
#define YEAR_9999 S(APR_INT64_C(253402300799))

static void test_sched_renews_when_window_share_remains(void **state)
{
    og_sched_policy_t pol;

    (void)state;
    og_sched_defaults(&pol);
    /* 7 days of validity, 50%: renew after 3.5 days */
    assert_true(og_sched_renew_at(&pol, S(0), S(7 * 86400)) == S(7 * 86400 / 2));
    pol.renew_window = 25;
    assert_true(og_sched_renew_at(&pol, S(1000), S(1100)) == S(1075));
}

static void test_sched_backoff_doubles_and_caps(void **state)
{
    og_sched_policy_t pol;

    (void)state;
    og_sched_defaults(&pol);
    assert_true(og_sched_backoff(&pol, 1, S(0), 0) == S(60));
    assert_true(og_sched_backoff(&pol, 2, S(0), 0) == S(120));
    assert_true(og_sched_backoff(&pol, 3, S(0), 0) == S(240));
    assert_true(og_sched_backoff(&pol, 30, S(0), 0) == S(3600));
}

static void test_sched_backoff_tightens_near_expiry(void **state)
{
    og_sched_policy_t pol;

    (void)state;
    og_sched_defaults(&pol);
    /* 40 minutes left: at most 5 minutes between tries */
    assert_true(og_sched_backoff(&pol, 10, S(0), S(2400)) == S(300));
    /* 2 hours left: at most a quarter of it */
    assert_true(og_sched_backoff(&pol, 10, S(0), S(7200)) == S(1800));
    /* never below the minimum */
    assert_true(og_sched_backoff(&pol, 10, S(0), S(100)) == S(60));
}

static void test_sched_next_first_attempt_is_now(void **state)
{
    og_sched_policy_t pol;
    og_sched_state_t st = { 0, 0, 0, 0, 0, 0 };

    (void)state;
    og_sched_defaults(&pol);
    assert_true(og_sched_next(&pol, &st, S(500)) == S(500));
}

static void test_sched_next_after_success_is_renewal(void **state)
{
    og_sched_policy_t pol;
    og_sched_state_t st = { 1, S(0), S(86400), 0, S(10), 0 };

    (void)state;
    og_sched_defaults(&pol);
    assert_true(og_sched_next(&pol, &st, S(20)) == S(43200));
}

static void test_sched_next_never_hammers_stale_responder(void **state)
{
    og_sched_policy_t pol;
    /* the responder handed out a response already inside its renew window */
    og_sched_state_t st = { 1, S(0), S(1000), 0, S(900), 0 };

    (void)state;
    og_sched_defaults(&pol);
    assert_true(og_sched_next(&pol, &st, S(900)) == S(960));
}

static void test_sched_next_after_failures_backs_off(void **state)
{
    og_sched_policy_t pol;
    og_sched_state_t st = { 1, S(0), S(7 * 86400), 3, S(5000), 0 };

    (void)state;
    og_sched_defaults(&pol);
    assert_true(og_sched_next(&pol, &st, S(5000)) == S(5000 + 240));
}

static void test_sched_stored_response_waits_for_renewal(void **state)
{
    og_sched_policy_t pol;
    /* loaded from the store at startup: never attempted in this run */
    og_sched_state_t st = { 1, S(0), S(86400), 0, 0, 0 };

    (void)state;
    og_sched_defaults(&pol);
    assert_true(og_sched_next(&pol, &st, S(100)) == S(43200));
}

static void test_sched_renew_at_spans_year_0000_to_9999_without_overflow(void **state)
{
    static const int windows[] = { 1, 50, 99 };
    og_sched_policy_t pol;
    size_t i;

    (void)state;
    og_sched_defaults(&pol);
    assert_true(YEAR_0000 < -APR_INT64_C(62000000000000000));
    assert_true(YEAR_9999 > APR_INT64_C(250000000000000000));
    for (i = 0; i < sizeof(windows) / sizeof(windows[0]); i++) {
        /* the exact answer, in 128 bits: validity * window overflows 64 */
        __int128 validity = (__int128)YEAR_9999 - YEAR_0000;
        __int128 expect = (__int128)YEAR_9999 - validity * windows[i] / 100;
        apr_time_t at;

        pol.renew_window = windows[i];
        at = og_sched_renew_at(&pol, YEAR_0000, YEAR_9999);
        assert_true(at > YEAR_0000);
        assert_true(at < YEAR_9999);
        assert_true((__int128)at == expect);
    }
}

/* A responder that fails is probed at 2 s, 4 s, 8 s ... never above
 * OCSPGuardRetryDelay, and never more often than every 2 s. */
static void test_sched_probe_delay_grows_to_the_retry_delay(void **state)
{
    og_sched_policy_t pol;

    (void)state;
    og_sched_defaults(&pol);
    assert_int_equal(og_sched_probe_delay(&pol, 1, 0), apr_time_from_sec(2));
    assert_int_equal(og_sched_probe_delay(&pol, 2, 0), apr_time_from_sec(4));
    assert_int_equal(og_sched_probe_delay(&pol, 3, 0), apr_time_from_sec(8));
    assert_int_equal(og_sched_probe_delay(&pol, 5, 0), apr_time_from_sec(32));
    assert_int_equal(og_sched_probe_delay(&pol, 6, 0), pol.retry_min);
    assert_int_equal(og_sched_probe_delay(&pol, 1000000, 0), pol.retry_min);
    pol.retry_min = apr_time_from_sec(1); /* a tiny OCSPGuardRetryDelay: still 2 s */
    assert_int_equal(og_sched_probe_delay(&pol, 1, 0), apr_time_from_sec(2));
    assert_int_equal(og_sched_probe_delay(&pol, 9, 0), apr_time_from_sec(2));
    assert_int_equal(og_sched_probe_delay(&pol, 9, 1), apr_time_from_sec(2));
}

/* While the probing certificate has nothing to staple, the probes stay at
 * most 5 s apart however long the outage lasts (a responder back is
 * stapling again within seconds); a smaller OCSPGuardRetryDelay still rules. */
static void test_sched_probe_delay_stays_short_while_nothing_is_stapled(void **state)
{
    og_sched_policy_t pol;

    (void)state;
    og_sched_defaults(&pol);
    assert_int_equal(og_sched_probe_delay(&pol, 1, 1), apr_time_from_sec(2));
    assert_int_equal(og_sched_probe_delay(&pol, 2, 1), apr_time_from_sec(4));
    assert_int_equal(og_sched_probe_delay(&pol, 3, 1), OG_SCHED_PROBE_UNSTAPLED);
    assert_int_equal(og_sched_probe_delay(&pol, 1000000, 1), OG_SCHED_PROBE_UNSTAPLED);
    assert_int_equal(og_sched_probe_cap(&pol, 1), OG_SCHED_PROBE_UNSTAPLED);
    assert_int_equal(og_sched_probe_cap(&pol, 0), pol.retry_min);
    pol.retry_min = apr_time_from_sec(3);
    assert_int_equal(og_sched_probe_delay(&pol, 9, 1), apr_time_from_sec(3));
    assert_int_equal(og_sched_probe_cap(&pol, 1), apr_time_from_sec(3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sched_renews_when_window_share_remains),
        cmocka_unit_test(test_sched_backoff_doubles_and_caps),
        cmocka_unit_test(test_sched_backoff_tightens_near_expiry),
        cmocka_unit_test(test_sched_next_first_attempt_is_now),
        cmocka_unit_test(test_sched_next_after_success_is_renewal),
        cmocka_unit_test(test_sched_next_never_hammers_stale_responder),
        cmocka_unit_test(test_sched_next_after_failures_backs_off),
        cmocka_unit_test(test_sched_stored_response_waits_for_renewal),
        cmocka_unit_test(test_sched_renew_at_spans_year_0000_to_9999_without_overflow),
        cmocka_unit_test(test_sched_probe_delay_grows_to_the_retry_delay),
        cmocka_unit_test(test_sched_probe_delay_stays_short_while_nothing_is_stapled),
    };
    return cmocka_run_group_tests_name("og_sched", tests, NULL, NULL);
}

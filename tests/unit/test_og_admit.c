/* test_og_admit.c: the monotonic rule over plain structs: a newer response
 * replaces the held one; the same bytes, the same thisUpdate, anything older
 * than the floor or the held response (a replay) and a good answer from
 * before a seen revocation are kept out; the floor only rises, except
 * that a time no verified response could have set is dropped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "og_admit.h"

#define S(x) apr_time_from_sec(x)
#define T0   S(1700000000)   /* the held response's thisUpdate */
#define HOUR S(3600)

static const unsigned char held_der[] = { 0x30, 0x03, 0x0a, 0x01, 0x00, 0x01 };
static const unsigned char new_der[]  = { 0x30, 0x03, 0x0a, 0x01, 0x00, 0x02 };

static og_record_t held_record(og_cert_status_e status, apr_time_t this_update)
{
    og_record_t r;

    memset(&r, 0, sizeof(r));
    r.this_update = this_update;
    r.next_update = this_update + 24 * HOUR;
    r.cert_status = status;
    r.source = OG_SOURCE_REFRESH;
    r.der = held_der;
    r.der_len = sizeof(held_der);
    return r;
}

/* A verified response as og_ocsp_verify would leave it. */
static og_ocsp_result_t verified(og_cert_status_e status, apr_time_t this_update)
{
    og_ocsp_result_t res;

    memset(&res, 0, sizeof(res));
    res.verdict = OG_VERDICT_OK;
    res.cert_status = status;
    res.revocation_reason = -1;
    res.this_update = this_update;
    res.next_update = this_update + 24 * HOUR;
    res.next_update_claimed = res.next_update;
    res.has_next_update = 1;
    return res;
}

static void test_admit_newer_response_replaces_the_held_one(void **state)
{
    og_floor_t floor = { T0, 0, 0 };
    og_record_t held = held_record(OG_STATUS_GOOD, T0);
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, T0 + HOUR);
    og_admit_e a;

    (void)state;
    a = og_admit(&floor, &held, &res, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_NEWER);
    assert_true(og_admit_installs(a));
}

static void test_admit_first_response_with_nothing_held_is_newer(void **state)
{
    og_floor_t floor = { 0, 0, 0 };
    og_record_t empty;
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, T0);

    (void)state;
    memset(&empty, 0, sizeof(empty));
    assert_int_equal(og_admit(&floor, NULL, &res, new_der, sizeof(new_der)), OG_ADMIT_NEWER);
    assert_int_equal(og_admit(&floor, &empty, &res, new_der, sizeof(new_der)),
                     OG_ADMIT_NEWER);
    /* what the floor remembers, re-fetched after a restart with nothing held */
    floor.newest_this_update = T0;
    assert_int_equal(og_admit(&floor, NULL, &res, new_der, sizeof(new_der)), OG_ADMIT_NEWER);
}

static void test_admit_same_bytes_are_same_and_not_installed(void **state)
{
    og_floor_t floor = { T0, 0, 0 };
    og_record_t held = held_record(OG_STATUS_GOOD, T0);
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, T0);
    og_admit_e a;

    (void)state;
    a = og_admit(&floor, &held, &res, held_der, sizeof(held_der));
    assert_int_equal(a, OG_ADMIT_SAME);
    assert_false(og_admit_installs(a));
}

static void test_admit_same_this_update_other_bytes_is_equal_time(void **state)
{
    og_floor_t floor = { T0, 0, 0 };
    og_record_t held = held_record(OG_STATUS_GOOD, T0);
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, T0);
    og_admit_e a;

    (void)state;
    a = og_admit(&floor, &held, &res, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_EQUAL_TIME);
    assert_false(og_admit_installs(a));
    /* a prefix of the held bytes is other bytes too */
    a = og_admit(&floor, &held, &res, held_der, sizeof(held_der) - 1);
    assert_int_equal(a, OG_ADMIT_EQUAL_TIME);
}

static void test_admit_older_than_the_held_response_is_a_replay(void **state)
{
    og_floor_t floor = { 0, 0, 0 };  /* the floor alone would let it in */
    og_record_t held = held_record(OG_STATUS_GOOD, T0);
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, T0 - HOUR);
    og_admit_e a;

    (void)state;
    a = og_admit(&floor, &held, &res, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_OLDER);
    assert_false(og_admit_installs(a));
}

static void test_admit_older_than_the_floor_is_a_replay_even_with_nothing_held(void **state)
{
    og_floor_t floor = { T0, 0, 0 };
    og_record_t held = held_record(OG_STATUS_GOOD, T0 - 2 * HOUR);
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, T0 - HOUR);
    og_ocsp_result_t revoked = verified(OG_STATUS_REVOKED, T0 - HOUR);

    (void)state;
    assert_int_equal(og_admit(&floor, NULL, &res, new_der, sizeof(new_der)), OG_ADMIT_OLDER);
    /* newer than what is held, older than what was once accepted */
    assert_int_equal(og_admit(&floor, &held, &res, new_der, sizeof(new_der)), OG_ADMIT_OLDER);
    /* the rule is about time, whatever the status */
    assert_int_equal(og_admit(&floor, NULL, &revoked, new_der, sizeof(new_der)),
                     OG_ADMIT_OLDER);
}

static void test_admit_good_not_newer_than_a_seen_revocation_is_pre_revocation(void **state)
{
    og_floor_t floor = { T0, T0, T0 - 10 * HOUR };
    og_record_t held = held_record(OG_STATUS_REVOKED, T0);
    og_ocsp_result_t at = verified(OG_STATUS_GOOD, T0);
    og_ocsp_result_t before = verified(OG_STATUS_GOOD, T0 - HOUR);
    og_admit_e a;

    (void)state;
    a = og_admit(&floor, &held, &at, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_PRE_REVOCATION);
    assert_false(og_admit_installs(a));
    a = og_admit(&floor, &held, &before, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_PRE_REVOCATION);
    /* nothing held (a restart, the cache lost): the floor alone decides */
    a = og_admit(&floor, NULL, &before, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_PRE_REVOCATION);
}

static void test_admit_good_newer_than_the_revocation_is_unrevoked_and_installs(void **state)
{
    og_floor_t floor = { T0, T0, T0 - 10 * HOUR };
    og_record_t held = held_record(OG_STATUS_REVOKED, T0);
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, T0 + HOUR);
    og_admit_e a;

    (void)state;
    a = og_admit(&floor, &held, &res, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_UNREVOKED);
    assert_true(og_admit_installs(a));
    a = og_admit(&floor, NULL, &res, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_UNREVOKED);
}

static void test_admit_newer_revoked_response_replaces_a_good_one(void **state)
{
    og_floor_t floor = { T0, 0, 0 };
    og_record_t held = held_record(OG_STATUS_GOOD, T0);
    og_ocsp_result_t res = verified(OG_STATUS_REVOKED, T0 + HOUR);
    og_admit_e a;

    (void)state;
    a = og_admit(&floor, &held, &res, new_der, sizeof(new_der));
    assert_int_equal(a, OG_ADMIT_NEWER);
    assert_true(og_admit_installs(a));
}

static void test_admit_installs_only_newer_and_unrevoked(void **state)
{
    (void)state;
    assert_true(og_admit_installs(OG_ADMIT_NEWER));
    assert_true(og_admit_installs(OG_ADMIT_UNREVOKED));
    assert_false(og_admit_installs(OG_ADMIT_SAME));
    assert_false(og_admit_installs(OG_ADMIT_EQUAL_TIME));
    assert_false(og_admit_installs(OG_ADMIT_OLDER));
    assert_false(og_admit_installs(OG_ADMIT_PRE_REVOCATION));
}

static void test_admit_verdicts_have_distinct_names(void **state)
{
    static const og_admit_e all[] = {
        OG_ADMIT_NEWER, OG_ADMIT_UNREVOKED, OG_ADMIT_SAME, OG_ADMIT_EQUAL_TIME,
        OG_ADMIT_OLDER, OG_ADMIT_PRE_REVOCATION,
    };
    size_t i, j, n = sizeof(all) / sizeof(all[0]);

    (void)state;
    for (i = 0; i < n; i++) {
        assert_string_not_equal(og_admit_str(all[i]), "?");
        for (j = i + 1; j < n; j++) {
            assert_string_not_equal(og_admit_str(all[i]), og_admit_str(all[j]));
        }
    }
}

static void test_floor_raise_keeps_the_newest_per_field(void **state)
{
    og_floor_t floor = { 0, 0, 0 };
    og_record_t good = held_record(OG_STATUS_GOOD, T0);
    og_record_t revoked = held_record(OG_STATUS_REVOKED, T0 + HOUR);
    og_record_t old_revoked = held_record(OG_STATUS_REVOKED, T0 - HOUR);
    og_record_t later_good = held_record(OG_STATUS_GOOD, T0 + 2 * HOUR);
    og_record_t old_good = held_record(OG_STATUS_GOOD, T0 - 2 * HOUR);

    (void)state;
    og_floor_raise(&floor, &good, 0);
    assert_true(floor.newest_this_update == T0);
    assert_true(floor.revoked_this_update == 0);
    assert_true(floor.revoked_at == 0);
    og_floor_raise(&floor, &revoked, T0 - 5 * HOUR);
    assert_true(floor.newest_this_update == T0 + HOUR);
    assert_true(floor.revoked_this_update == T0 + HOUR);
    assert_true(floor.revoked_at == T0 - 5 * HOUR);
    /* an older revoked record lowers nothing */
    og_floor_raise(&floor, &old_revoked, T0 - 9 * HOUR);
    assert_true(floor.newest_this_update == T0 + HOUR);
    assert_true(floor.revoked_this_update == T0 + HOUR);
    assert_true(floor.revoked_at == T0 - 5 * HOUR);
    /* a later good record raises the newest and keeps the revocation seen */
    og_floor_raise(&floor, &later_good, 0);
    assert_true(floor.newest_this_update == T0 + 2 * HOUR);
    assert_true(floor.revoked_this_update == T0 + HOUR);
    assert_true(floor.revoked_at == T0 - 5 * HOUR);
    /* an older good record lowers nothing */
    og_floor_raise(&floor, &old_good, 0);
    assert_true(floor.newest_this_update == T0 + 2 * HOUR);
    assert_true(floor.revoked_this_update == T0 + HOUR);
}

static void test_floor_merge_keeps_the_newest_per_field(void **state)
{
    og_floor_t mem = { T0 + 2 * HOUR, T0, T0 - 5 * HOUR };
    og_floor_t disk = { T0 + HOUR, T0 + HOUR, T0 - 7 * HOUR };
    og_floor_t none = { 0, 0, 0 };

    (void)state;
    og_floor_merge(&mem, &disk);
    assert_true(mem.newest_this_update == T0 + 2 * HOUR);   /* mem's */
    assert_true(mem.revoked_this_update == T0 + HOUR);      /* disk's, */
    assert_true(mem.revoked_at == T0 - 7 * HOUR);           /* with its time */
    og_floor_merge(&mem, &none);
    assert_true(mem.newest_this_update == T0 + 2 * HOUR);
    assert_true(mem.revoked_this_update == T0 + HOUR);
    assert_true(mem.revoked_at == T0 - 7 * HOUR);
    og_floor_merge(&none, &mem);
    assert_true(none.newest_this_update == T0 + 2 * HOUR);
    assert_true(none.revoked_this_update == T0 + HOUR);
    assert_true(none.revoked_at == T0 - 7 * HOUR);
}

static void test_floor_clamp_drops_times_no_verified_response_could_have_set(void **state)
{
    apr_time_t now = T0;
    og_floor_t future = { now + OG_OCSP_SKEW + 1, now + OG_OCSP_SKEW + 1, now - HOUR };
    og_floor_t edge = { now + OG_OCSP_SKEW, now + OG_OCSP_SKEW, now - HOUR };
    og_floor_t mixed = { now + 365 * 24 * HOUR, now - HOUR, now - 2 * HOUR };
    og_ocsp_result_t res = verified(OG_STATUS_GOOD, now);

    (void)state;
    /* a poisoned floor from the store or a fleet cache: a year ahead would
     * lock every response out as "older" for a year */
    og_floor_clamp(&future, now);
    assert_true(future.newest_this_update == 0);
    assert_true(future.revoked_this_update == 0);
    assert_true(future.revoked_at == 0);
    assert_int_equal(og_admit(&future, NULL, &res, new_der, sizeof(new_der)), OG_ADMIT_NEWER);
    /* within the clock skew a verified response could have set it: kept */
    og_floor_clamp(&edge, now);
    assert_true(edge.newest_this_update == now + OG_OCSP_SKEW);
    assert_true(edge.revoked_this_update == now + OG_OCSP_SKEW);
    assert_true(edge.revoked_at == now - HOUR);
    /* each field on its own */
    og_floor_clamp(&mixed, now);
    assert_true(mixed.newest_this_update == 0);
    assert_true(mixed.revoked_this_update == now - HOUR);
    assert_true(mixed.revoked_at == now - 2 * HOUR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_admit_newer_response_replaces_the_held_one),
        cmocka_unit_test(test_admit_first_response_with_nothing_held_is_newer),
        cmocka_unit_test(test_admit_same_bytes_are_same_and_not_installed),
        cmocka_unit_test(test_admit_same_this_update_other_bytes_is_equal_time),
        cmocka_unit_test(test_admit_older_than_the_held_response_is_a_replay),
        cmocka_unit_test(test_admit_older_than_the_floor_is_a_replay_even_with_nothing_held),
        cmocka_unit_test(test_admit_good_not_newer_than_a_seen_revocation_is_pre_revocation),
        cmocka_unit_test(test_admit_good_newer_than_the_revocation_is_unrevoked_and_installs),
        cmocka_unit_test(test_admit_newer_revoked_response_replaces_a_good_one),
        cmocka_unit_test(test_admit_installs_only_newer_and_unrevoked),
        cmocka_unit_test(test_admit_verdicts_have_distinct_names),
        cmocka_unit_test(test_floor_raise_keeps_the_newest_per_field),
        cmocka_unit_test(test_floor_merge_keeps_the_newest_per_field),
        cmocka_unit_test(test_floor_clamp_drops_times_no_verified_response_could_have_set),
    };
    return cmocka_run_group_tests_name("og_admit", tests, NULL, NULL);
}

/* test_og_fleet.c: the fleet cache's pure parts. The renew offset is
 * deterministic (same server and certificate, same place), differs between
 * servers, and spreads evenly over the first half of the renew window; the
 * value frame and the claim decode only what their encoders write; a claim
 * defers only another server's fetch, only while it runs and only within
 * the bound; a record read from the fleet is taken only when verified,
 * not 'unknown', newer than what is held, not undoing a revocation and not
 * yet due (a due one is only a fallback). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "og_fleet.h"
#include "og_sched.h"

#define S(x) apr_time_from_sec(x)

static void test_fleet_server_id_tells_servers_apart(void **state)
{
    apr_uint64_t a = og_fleet_server_id("web1.example.org", "/etc/apache2");

    (void)state;
    assert_true(a != 0);
    assert_true(a == og_fleet_server_id("web1.example.org", "/etc/apache2"));
    assert_true(a != og_fleet_server_id("web2.example.org", "/etc/apache2"));
    /* two servers on one machine */
    assert_true(a != og_fleet_server_id("web1.example.org", "/srv/httpd2"));
    /* the separator: "ab" + "c" is not "a" + "bc" */
    assert_true(og_fleet_server_id("ab", "c") != og_fleet_server_id("a", "bc"));
    assert_true(og_fleet_server_id(NULL, NULL) != 0);
}

static void test_fleet_spread_is_deterministic_and_even(void **state)
{
    og_sched_policy_t pol;
    unsigned char id[20];
    int buckets[10] = { 0 }, i, differ = 0;

    (void)state;
    og_sched_defaults(&pol);
    memset(id, 0x5a, sizeof(id));
    assert_true(og_fleet_spread(1, id, sizeof(id)) == og_fleet_spread(1, id, sizeof(id)));
    assert_true(og_fleet_spread(1, id, sizeof(id)) != 0);
    /* 2,000 servers for one certificate, 7 days of validity, 50%: renewals
     * between 3.5 and 5.25 days, about a tenth in each tenth of that */
    for (i = 0; i < 2000; i++) {
        char host[32];
        apr_uint64_t srv;
        apr_time_t at;

        snprintf(host, sizeof(host), "web%d.example.org", i);
        srv = og_fleet_server_id(host, "/etc/apache2");
        at = og_sched_renew_spread(&pol, S(0), S(7 * 86400), og_fleet_spread(srv, id, 20));
        assert_true(at >= S(7 * 86400 / 2));
        assert_true(at < S(7 * 86400 / 2 + 7 * 86400 / 4));
        buckets[(at - S(7 * 86400 / 2)) * 10 / S(7 * 86400 / 4)]++;
        differ += og_fleet_spread(srv, id, 20) != og_fleet_spread(srv + 1, id, 20);
    }
    for (i = 0; i < 10; i++) {
        assert_in_range(buckets[i], 140, 260);
    }
    assert_true(differ >= 1990);
    /* one server, its certificates spread too */
    memset(buckets, 0, sizeof(buckets));
    for (i = 0; i < 2000; i++) {
        apr_uint32_t v;

        memcpy(id, &i, sizeof(i));
        v = og_fleet_spread(42, id, sizeof(id));
        buckets[v / 429496730u]++;
    }
    for (i = 0; i < 10; i++) {
        assert_in_range(buckets[i], 140, 260);
    }
}

static void test_sched_spread_zero_is_the_plain_renewal(void **state)
{
    og_sched_policy_t pol;
    og_sched_state_t st = { 1, S(0), S(1000), 0, 0, 0 };

    (void)state;
    og_sched_defaults(&pol);
    assert_true(og_sched_renew_spread(&pol, S(0), S(1000), 0) == S(500));
    assert_true(og_sched_next(&pol, &st, S(1)) == S(500));
    st.spread = 0xffffffffu; /* the latest place: just before 3/4 of the validity */
    assert_true(og_sched_next(&pol, &st, S(1)) > S(749));
    assert_true(og_sched_next(&pol, &st, S(1)) <= S(750));
    /* windows from anywhere in shared memory: no overflow */
    assert_true(og_sched_renew_spread(&pol, -APR_INT64_C(4000000000000000000),
                                      APR_INT64_C(4000000000000000000), 0xffffffffu)
                <= APR_INT64_C(4000000000000000000));
    assert_true(og_sched_renew_spread(&pol, S(10), S(5), 12345) == S(5));
}

static void test_fleet_value_frame_round_trip_and_refusals(void **state)
{
    static unsigned char buf[OG_FLEET_VALUE_MAX + 16], big[OG_FLEET_VALUE_MAX];
    const unsigned char der[] = { 0x30, 0x03, 0x0a, 0x01, 0x00 }, *out = NULL;
    apr_size_t n, len = 0;

    (void)state;
    n = og_fleet_value_encode(buf, sizeof(buf), der, sizeof(der));
    assert_int_equal(n, 4 + sizeof(der));
    assert_int_equal(og_fleet_value_decode(buf, n, &out, &len), 0);
    assert_int_equal(len, sizeof(der));
    assert_memory_equal(out, der, sizeof(der));
    assert_ptr_equal(out, buf + 4);
    /* wrong magic, only the magic, nothing, too long */
    buf[0] = 'X';
    assert_int_equal(og_fleet_value_decode(buf, n, &out, &len), -1);
    buf[0] = 'O';
    assert_int_equal(og_fleet_value_decode(buf, 4, &out, &len), -1);
    assert_int_equal(og_fleet_value_decode(NULL, 0, &out, &len), -1);
    assert_int_equal(og_fleet_value_decode(buf, OG_FLEET_VALUE_MAX + 1, &out, &len), -1);
    /* the encoder refuses what the decoder would */
    assert_int_equal(og_fleet_value_encode(buf, sizeof(buf), der, 0), 0);
    assert_int_equal(og_fleet_value_encode(buf, sizeof(buf), big, sizeof(big)), 0);
    assert_int_equal(og_fleet_value_encode(buf, 6, der, sizeof(der)), 0);
}

static void test_fleet_claim_round_trip_and_bounds(void **state)
{
    unsigned char buf[OG_FLEET_CLAIM_LEN];
    og_fleet_claim_t c = { 77, S(1000) }, d;

    (void)state;
    og_fleet_claim_encode(buf, &c);
    assert_int_equal(og_fleet_claim_decode(&d, buf, sizeof(buf)), 0);
    assert_true(d.server == 77 && d.until == S(1000));
    assert_int_equal(og_fleet_claim_decode(&d, buf, sizeof(buf) - 1), -1);
    buf[3] = '2';
    assert_int_equal(og_fleet_claim_decode(&d, buf, sizeof(buf)), -1);
    /* a time past what apr_time_t holds, a server id 0: not a claim */
    c.until = -1;
    og_fleet_claim_encode(buf, &c);
    assert_int_equal(og_fleet_claim_decode(&d, buf, sizeof(buf)), -1);
    c.server = 0;
    c.until = S(5);
    og_fleet_claim_encode(buf, &c);
    assert_int_equal(og_fleet_claim_decode(&d, buf, sizeof(buf)), -1);
    /* defers: another server's, still running, within the bound */
    c.server = 77;
    c.until = S(1003);
    assert_true(og_fleet_claim_defers(&c, 78, S(1000), S(5)) == S(1003));
    assert_true(og_fleet_claim_defers(&c, 77, S(1000), S(5)) == 0);  /* our own */
    assert_true(og_fleet_claim_defers(&c, 78, S(1003), S(5)) == 0);  /* over */
    assert_true(og_fleet_claim_defers(&c, 78, S(990), S(5)) == 0);   /* a forged, far end */
    assert_true(og_fleet_claim_defers(&c, 78, S(1000), 0) == 0);
}

static og_ocsp_result_t verified(og_cert_status_e status)
{
    og_ocsp_result_t res;

    memset(&res, 0, sizeof(res));
    res.verdict = OG_VERDICT_OK;
    res.cert_status = status;
    res.this_update = S(1000);
    res.next_update = S(2000);
    return res;
}

static void test_fleet_judge_takes_only_what_is_verified_newer_and_not_due(void **state)
{
    og_ocsp_result_t good = verified(OG_STATUS_GOOD), bad = good, unknown = verified(OG_STATUS_UNKNOWN);
    og_ocsp_result_t revoked = verified(OG_STATUS_REVOKED);

    (void)state;
    bad.verdict = OG_VERDICT_MALFORMED;
    /* renewal time 1500: before it, a newer response is taken; from it, a fallback */
    assert_int_equal(og_fleet_judge(&good, OG_ADMIT_NEWER, S(1200), S(1500)), OG_FLEET_TAKE);
    assert_int_equal(og_fleet_judge(&revoked, OG_ADMIT_NEWER, S(1200), S(1500)), OG_FLEET_TAKE);
    assert_int_equal(og_fleet_judge(&good, OG_ADMIT_NEWER, S(1500), S(1500)), OG_FLEET_FALLBACK);
    /* verification first, whatever the rule would say */
    assert_int_equal(og_fleet_judge(&bad, OG_ADMIT_NEWER, S(1200), S(1500)), OG_FLEET_INVALID);
    assert_int_equal(og_fleet_judge(&unknown, OG_ADMIT_NEWER, S(1200), S(1500)), OG_FLEET_UNKNOWN);
    /* a revocation is never lifted by the fleet, not even by a newer 'good' */
    assert_int_equal(og_fleet_judge(&good, OG_ADMIT_UNREVOKED, S(1200), S(1500)),
                     OG_FLEET_UNREVOKES);
    assert_int_equal(og_fleet_judge(&good, OG_ADMIT_PRE_REVOCATION, S(1200), S(1500)),
                     OG_FLEET_UNREVOKES);
    assert_int_equal(og_fleet_judge(&good, OG_ADMIT_OLDER, S(1200), S(1500)), OG_FLEET_OLDER);
    assert_int_equal(og_fleet_judge(&good, OG_ADMIT_SAME, S(1200), S(1500)),
                     OG_FLEET_NOTHING_NEWER);
    assert_int_equal(og_fleet_judge(&good, OG_ADMIT_EQUAL_TIME, S(1200), S(1500)),
                     OG_FLEET_NOTHING_NEWER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fleet_server_id_tells_servers_apart),
        cmocka_unit_test(test_fleet_spread_is_deterministic_and_even),
        cmocka_unit_test(test_sched_spread_zero_is_the_plain_renewal),
        cmocka_unit_test(test_fleet_value_frame_round_trip_and_refusals),
        cmocka_unit_test(test_fleet_claim_round_trip_and_bounds),
        cmocka_unit_test(test_fleet_judge_takes_only_what_is_verified_newer_and_not_due),
    };
    return cmocka_run_group_tests_name("og_fleet", tests, NULL, NULL);
}

/* test_og_record.c: the cache record round-trips, rejects foreign or
 * truncated bytes, and is stapleable only when good/revoked and unexpired. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "og_record.h"

static og_record_t sample(const unsigned char *der, apr_size_t len)
{
    og_record_t r;

    memset(&r, 0, sizeof(r));
    r.this_update = apr_time_from_sec(1700000000);
    r.next_update = apr_time_from_sec(1700086400);
    r.fetched_at = apr_time_from_sec(1700000100);
    r.cert_status = OG_STATUS_GOOD;
    r.source = OG_SOURCE_PREFETCH;
    r.der = der;
    r.der_len = len;
    return r;
}

static void test_record_round_trips(void **state)
{
    static const unsigned char der[] = { 0x30, 0x03, 0x0a, 0x01, 0x00 };
    unsigned char buf[OG_RECORD_MAX];
    og_record_t in = sample(der, sizeof(der)), out;
    apr_size_t len;

    (void)state;
    len = og_record_encode(buf, sizeof(buf), &in);
    assert_int_equal(len, OG_RECORD_HDR_LEN + sizeof(der));
    assert_int_equal(og_record_decode(&out, buf, len), 0);
    assert_true(out.this_update == in.this_update);
    assert_true(out.next_update == in.next_update);
    assert_true(out.fetched_at == in.fetched_at);
    assert_int_equal(out.cert_status, OG_STATUS_GOOD);
    assert_int_equal(out.source, OG_SOURCE_PREFETCH);
    assert_int_equal(out.der_len, sizeof(der));
    assert_memory_equal(out.der, der, sizeof(der));
}

static void test_record_rejects_foreign_and_truncated(void **state)
{
    static const unsigned char der[] = { 1, 2, 3, 4 };
    unsigned char buf[OG_RECORD_MAX];
    og_record_t in = sample(der, sizeof(der)), out;
    apr_size_t len = og_record_encode(buf, sizeof(buf), &in);

    (void)state;
    assert_int_equal(og_record_decode(&out, buf, len - 1), -1);
    assert_int_equal(og_record_decode(&out, buf, 10), -1);
    buf[0] ^= 0xff;
    assert_int_equal(og_record_decode(&out, buf, len), -1);
}

static void test_record_refuses_oversize_der(void **state)
{
    static unsigned char big[OG_OCSP_MAX_STAPLE + 1];
    unsigned char buf[OG_RECORD_MAX + 16];
    og_record_t in = sample(big, sizeof(big));

    (void)state;
    assert_int_equal(og_record_encode(buf, sizeof(buf), &in), 0);
    in.der_len = 100;
    assert_int_equal(og_record_encode(buf, 50, &in), 0);
}

static void test_record_stapleable_rules(void **state)
{
    static const unsigned char der[] = { 1 };
    og_record_t r = sample(der, 1);
    apr_time_t before = r.next_update - 1, after = r.next_update;

    (void)state;
    assert_true(og_record_stapleable(&r, before));
    assert_false(og_record_stapleable(&r, after));
    r.cert_status = OG_STATUS_REVOKED;
    assert_true(og_record_stapleable(&r, before));
    r.cert_status = OG_STATUS_UNKNOWN;
    assert_false(og_record_stapleable(&r, before));
    r.cert_status = OG_STATUS_GOOD;
    r.der_len = 0;
    assert_false(og_record_stapleable(&r, before));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trips),
        cmocka_unit_test(test_record_rejects_foreign_and_truncated),
        cmocka_unit_test(test_record_refuses_oversize_der),
        cmocka_unit_test(test_record_stapleable_rules),
    };
    return cmocka_run_group_tests_name("og_record", tests, NULL, NULL);
}

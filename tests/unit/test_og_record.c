/* test_og_record.c: the cache record round-trips, rejects foreign or
 * truncated bytes, and is stapleable only when good/revoked and unexpired;
 * the report row round-trips, is written as printable ASCII only, and its
 * decoder refuses anything else (the status page prints what it decodes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
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

static og_report_t sample_report(const char *outcome)
{
    og_report_t r;

    memset(&r, 0, sizeof(r));
    r.failures = 3;
    r.last_cert_status = OG_STATUS_REVOKED;
    r.last_attempt = apr_time_from_sec(1700000000) + 123456;
    r.last_success = -1;                  /* sign survives */
    r.next_attempt = INT64_MAX;           /* all 64 bits survive */
    r.last_ms = 4321;
    snprintf(r.outcome, sizeof(r.outcome), "%s", outcome);
    return r;
}

static void test_report_round_trips(void **state)
{
    unsigned char buf[OG_REPORT_MAX];
    og_report_t in = sample_report("timeout after 10 s (http://127.0.0.1:9/)"), out;
    apr_size_t len;

    (void)state;
    len = og_report_encode(buf, &in);
    assert_int_equal(len, OG_REPORT_HDR_LEN + strlen(in.outcome));
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(og_report_decode(&out, buf, len), 0);
    assert_int_equal(out.failures, 3);
    assert_int_equal(out.last_cert_status, OG_STATUS_REVOKED);
    assert_true(out.last_attempt == in.last_attempt);
    assert_true(out.last_success == -1);
    assert_true(out.next_attempt == INT64_MAX);
    assert_true(out.last_ms == 4321);
    assert_string_equal(out.outcome, in.outcome);
}

static void test_report_encode_writes_non_printable_outcome_bytes_as_question_marks(void **state)
{
    unsigned char buf[OG_REPORT_MAX];
    og_report_t in = sample_report("a\x1b[31mb\x7f" "c\x80\xff\td\n"), out;
    apr_size_t len, i;

    (void)state;
    len = og_report_encode(buf, &in);
    assert_int_equal(len, OG_REPORT_HDR_LEN + 14);
    for (i = OG_REPORT_HDR_LEN; i < len; i++) {
        assert_true(buf[i] >= 0x20 && buf[i] < 0x7f);
    }
    assert_memory_equal(buf + OG_REPORT_HDR_LEN, "a?[31mb?c???d?", 14);
    assert_int_equal(og_report_decode(&out, buf, len), 0);
    assert_string_equal(out.outcome, "a?[31mb?c???d?");
}

static void test_report_decode_refuses_outcome_bytes_outside_printable_ascii(void **state)
{
    static const unsigned char bad[] = { 0x80, 0xc3, 0xff, 0x1b, 0x00, 0x7f, 0x0a, 0x1f };
    unsigned char buf[OG_REPORT_MAX];
    og_report_t in = sample_report("fine so far"), out;
    apr_size_t len, i;

    (void)state;
    len = og_report_encode(buf, &in);
    assert_int_equal(og_report_decode(&out, buf, len), 0);
    for (i = 0; i < sizeof(bad); i++) {
        buf[OG_REPORT_HDR_LEN + 4] = bad[i];
        assert_int_equal(og_report_decode(&out, buf, len), -1);
    }
    /* the last byte is checked too */
    buf[OG_REPORT_HDR_LEN + 4] = 'x';
    buf[len - 1] = 0x1b;
    assert_int_equal(og_report_decode(&out, buf, len), -1);
}

static void test_report_decode_refuses_bad_magic(void **state)
{
    unsigned char buf[OG_REPORT_MAX];
    og_report_t in = sample_report("ok"), out;
    apr_size_t len;

    (void)state;
    len = og_report_encode(buf, &in);
    buf[3] ^= 0x01;
    assert_int_equal(og_report_decode(&out, buf, len), -1);
    /* a cache record is not a report row */
    buf[0] = 'O'; buf[1] = 'G'; buf[2] = 'R'; buf[3] = '1';
    assert_int_equal(og_report_decode(&out, buf, len), -1);
}

static void test_report_decode_refuses_length_mismatch(void **state)
{
    unsigned char buf[OG_REPORT_MAX + 2];
    og_report_t in = sample_report("twelve bytes"), out;
    apr_size_t len;

    (void)state;
    len = og_report_encode(buf, &in);
    assert_int_equal(len, OG_REPORT_HDR_LEN + 12);
    buf[len] = 'x';
    assert_int_equal(og_report_decode(&out, buf, len - 1), -1);
    assert_int_equal(og_report_decode(&out, buf, len + 1), -1);
    assert_int_equal(og_report_decode(&out, buf, OG_REPORT_HDR_LEN - 1), -1);
    assert_int_equal(og_report_decode(&out, buf, 0), -1);
    /* a length field that disagrees with the bytes */
    buf[13] = 11;
    assert_int_equal(og_report_decode(&out, buf, len), -1);
    /* a length above the maximum, with that many bytes present */
    memset(buf + OG_REPORT_HDR_LEN, 'x', OG_REPORT_OUTCOME_MAX + 1);
    buf[12] = 0;
    buf[13] = OG_REPORT_OUTCOME_MAX + 1;
    assert_int_equal(og_report_decode(&out, buf, OG_REPORT_HDR_LEN + OG_REPORT_OUTCOME_MAX + 1),
                     -1);
    buf[12] = 0xff;
    buf[13] = 0xff;
    assert_int_equal(og_report_decode(&out, buf, OG_REPORT_HDR_LEN + OG_REPORT_OUTCOME_MAX + 1),
                     -1);
}

static void test_report_decode_refuses_status_out_of_range(void **state)
{
    unsigned char buf[OG_REPORT_MAX];
    og_report_t in = sample_report("ok"), out;
    apr_size_t len;

    (void)state;
    len = og_report_encode(buf, &in);
    buf[8] = OG_STATUS_UNKNOWN;
    assert_int_equal(og_report_decode(&out, buf, len), 0);
    buf[8] = OG_STATUS_UNKNOWN + 1;
    assert_int_equal(og_report_decode(&out, buf, len), -1);
    buf[8] = 0xff;
    assert_int_equal(og_report_decode(&out, buf, len), -1);
}

static void test_report_decoded_outcome_is_always_nul_terminated(void **state)
{
    unsigned char buf[OG_REPORT_MAX];
    char longest[OG_REPORT_OUTCOME_MAX + 1];
    og_report_t in, out;
    apr_size_t len;

    (void)state;
    /* short over a buffer full of garbage */
    in = sample_report("short");
    len = og_report_encode(buf, &in);
    memset(&out, 'X', sizeof(out));
    assert_int_equal(og_report_decode(&out, buf, len), 0);
    assert_int_equal(out.outcome[5], '\0');
    assert_string_equal(out.outcome, "short");
    /* empty */
    in = sample_report("");
    len = og_report_encode(buf, &in);
    assert_int_equal(len, OG_REPORT_HDR_LEN);
    memset(&out, 'X', sizeof(out));
    assert_int_equal(og_report_decode(&out, buf, len), 0);
    assert_int_equal(out.outcome[0], '\0');
    /* the longest outcome fills the array up to its last byte, the NUL */
    memset(longest, 'y', OG_REPORT_OUTCOME_MAX);
    longest[OG_REPORT_OUTCOME_MAX] = '\0';
    in = sample_report(longest);
    len = og_report_encode(buf, &in);
    assert_int_equal(len, OG_REPORT_MAX);
    memset(&out, 'X', sizeof(out));
    assert_int_equal(og_report_decode(&out, buf, len), 0);
    assert_int_equal(out.outcome[OG_REPORT_OUTCOME_MAX], '\0');
    assert_int_equal(strlen(out.outcome), OG_REPORT_OUTCOME_MAX);
}

static void test_report_decode_refuses_reserved_bytes_set(void **state)
{
    static const int reserved[] = { 9, 10, 11, 14, 15 };
    unsigned char buf[OG_REPORT_MAX];
    og_report_t in = sample_report("ok"), out;
    apr_size_t len, i;

    (void)state;
    len = og_report_encode(buf, &in);
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        assert_int_equal(buf[reserved[i]], 0);
        buf[reserved[i]] = 1;
        assert_int_equal(og_report_decode(&out, buf, len), -1);
        buf[reserved[i]] = 0;
    }
    assert_int_equal(og_report_decode(&out, buf, len), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trips),
        cmocka_unit_test(test_record_rejects_foreign_and_truncated),
        cmocka_unit_test(test_record_refuses_oversize_der),
        cmocka_unit_test(test_record_stapleable_rules),
        cmocka_unit_test(test_report_round_trips),
        cmocka_unit_test(test_report_encode_writes_non_printable_outcome_bytes_as_question_marks),
        cmocka_unit_test(test_report_decode_refuses_outcome_bytes_outside_printable_ascii),
        cmocka_unit_test(test_report_decode_refuses_bad_magic),
        cmocka_unit_test(test_report_decode_refuses_length_mismatch),
        cmocka_unit_test(test_report_decode_refuses_status_out_of_range),
        cmocka_unit_test(test_report_decoded_outcome_is_always_nul_terminated),
        cmocka_unit_test(test_report_decode_refuses_reserved_bytes_set),
    };
    return cmocka_run_group_tests_name("og_record", tests, NULL, NULL);
}

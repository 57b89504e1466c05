/* test_og_prom.c: Prometheus text format helpers: label values escaped as
 * the format requires (backslash, quote, line feed), control bytes and
 * invalid UTF-8 replaced, valid UTF-8 kept; names checked; times in
 * seconds with milliseconds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "og_prom.h"

static apr_pool_t *pool;

static void test_prom_label_value_escapes(void **state)
{
    (void)state;
    assert_string_equal(og_prom_label_value(pool, "CN=a,O=b"), "CN=a,O=b");
    assert_string_equal(og_prom_label_value(pool, "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    assert_string_equal(og_prom_label_value(pool, "tab\there\x7f"), "tab?here?");
    assert_string_equal(og_prom_label_value(pool, "caf\xc3\xa9"), "caf\xc3\xa9");
    assert_string_equal(og_prom_label_value(pool, "bad\xc3(\xff"), "bad?(?");
    assert_string_equal(og_prom_label_value(pool, "\xed\xa0\x80"), "???"); /* a surrogate */
    assert_string_equal(og_prom_label_value(pool, "\xe0\x80\xaf"), "???"); /* overlong */
    assert_string_equal(og_prom_label_value(pool, NULL), "");
}

static void test_prom_names(void **state)
{
    (void)state;
    assert_true(og_prom_valid_name("ocsp_guard_stapled", 0));
    assert_true(og_prom_valid_name("a:b", 0));
    assert_false(og_prom_valid_name("a:b", 1));
    assert_false(og_prom_valid_name("9a", 0));
    assert_false(og_prom_valid_name("a-b", 0));
    assert_false(og_prom_valid_name("", 1));
}

static void test_prom_seconds(void **state)
{
    (void)state;
    assert_string_equal(og_prom_seconds(pool, 0), "0");
    assert_string_equal(og_prom_seconds(pool, apr_time_from_sec(1796181252)), "1796181252");
    assert_string_equal(og_prom_seconds(pool, apr_time_from_sec(5) + 250000), "5.250");
    assert_string_equal(og_prom_seconds(pool, -1500000), "-1.500");
    assert_string_equal(og_prom_seconds(pool, 999), "0"); /* under a millisecond */
    assert_non_null(og_prom_seconds(pool, APR_INT64_MIN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_label_value_escapes),
        cmocka_unit_test(test_prom_names),
        cmocka_unit_test(test_prom_seconds),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests_name("og_prom", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}

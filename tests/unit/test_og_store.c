/* test_og_store.c: the store file round-trips, is written atomically with
 * mode 0600, and every kind of damage is reported, never trusted. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include "og_store.h"

static apr_pool_t *pool;
static char dir[] = "/tmp/og_store_test_XXXXXX";
static const unsigned char id[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                      11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
static const unsigned char der[] = { 0x30, 0x03, 0x0a, 0x01, 0x00, 0x42 };

static og_record_t sample(void)
{
    og_record_t r;

    memset(&r, 0, sizeof(r));
    r.this_update = apr_time_from_sec(1700000000);
    r.next_update = apr_time_from_sec(1700600000);
    r.fetched_at = apr_time_from_sec(1700000005);
    r.cert_status = OG_STATUS_GOOD;
    r.source = OG_SOURCE_REFRESH;
    r.der = der;
    r.der_len = sizeof(der);
    return r;
}

static void save_sample(void)
{
    og_record_t r = sample();
    const char *err;

    assert_int_equal(og_store_save(&err, pool, dir, id, &r), APR_SUCCESS);
}

static unsigned char *read_file(apr_size_t *plen)
{
    apr_file_t *f;
    static unsigned char buf[70000];

    assert_int_equal(apr_file_open(&f, og_store_path(pool, dir, id), APR_FOPEN_READ, 0, pool),
                     APR_SUCCESS);
    apr_file_read_full(f, buf, sizeof(buf), plen);
    apr_file_close(f);
    return buf;
}

static void write_file(const unsigned char *d, apr_size_t len)
{
    apr_file_t *f;

    assert_int_equal(apr_file_open(&f, og_store_path(pool, dir, id), APR_FOPEN_WRITE
                                   | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                                   APR_FPROT_OS_DEFAULT, pool), APR_SUCCESS);
    apr_file_write_full(f, d, len, NULL);
    apr_file_close(f);
}

static void test_store_round_trips(void **state)
{
    og_record_t in = sample(), out;
    const char *err;
    struct stat st;

    (void)state;
    save_sample();
    assert_int_equal(og_store_load(&out, &err, pool, dir, id), APR_SUCCESS);
    assert_true(out.next_update == in.next_update);
    assert_int_equal(out.source, OG_SOURCE_REFRESH);
    assert_memory_equal(out.der, der, sizeof(der));
    assert_int_equal(stat(og_store_path(pool, dir, id), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_store_missing_file_is_enoent(void **state)
{
    og_record_t out;
    const char *err;
    unsigned char other[20] = { 0 };

    (void)state;
    assert_int_equal(og_store_load(&out, &err, pool, dir, other), APR_ENOENT);
}

static void test_store_detects_flipped_byte(void **state)
{
    og_record_t out;
    const char *err;
    apr_size_t len;
    unsigned char *d;

    (void)state;
    save_sample();
    d = read_file(&len);
    d[len - 40] ^= 0x01;
    write_file(d, len);
    assert_int_equal(og_store_load(&out, &err, pool, dir, id), APR_EINVAL);
    assert_non_null(strstr(err, "checksum"));
}

static void test_store_detects_truncation_and_garbage(void **state)
{
    og_record_t out;
    const char *err;
    apr_size_t len;
    unsigned char *d;

    (void)state;
    save_sample();
    d = read_file(&len);
    write_file(d, len - 1);
    assert_int_equal(og_store_load(&out, &err, pool, dir, id), APR_EINVAL);
    write_file((const unsigned char *)"hello world, not a store file at all", 36);
    assert_int_equal(og_store_load(&out, &err, pool, dir, id), APR_EINVAL);
    write_file((const unsigned char *)"", 0);
    assert_int_equal(og_store_load(&out, &err, pool, dir, id), APR_EINVAL);
}

static void test_store_rejects_file_of_other_cert(void **state)
{
    og_record_t out;
    const char *err;
    apr_size_t len;
    unsigned char *d;
    unsigned char other[20];

    (void)state;
    save_sample();
    d = read_file(&len);
    memcpy(other, id, 20);
    other[0] = 0xee;
    assert_int_equal(og_store_parse(&out, &err, pool, d, len, other), APR_EINVAL);
    assert_non_null(strstr(err, "another certificate"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_round_trips),
        cmocka_unit_test(test_store_missing_file_is_enoent),
        cmocka_unit_test(test_store_detects_flipped_byte),
        cmocka_unit_test(test_store_detects_truncation_and_garbage),
        cmocka_unit_test(test_store_rejects_file_of_other_cert),
    };
    int rv;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    assert_non_null(mkdtemp(dir));
    rv = cmocka_run_group_tests_name("og_store", tests, NULL, NULL);
    apr_file_remove(og_store_path(pool, dir, id), pool);
    apr_dir_remove(dir, pool);
    apr_pool_destroy(pool);
    apr_terminate();
    return rv;
}

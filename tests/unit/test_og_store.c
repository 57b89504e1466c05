/* test_og_store.c: the store file round-trips with its floor, version 1
 * files still load, files are written atomically with mode 0600, every kind
 * of damage is reported (never trusted), and a name planted in the store (a
 * link, a FIFO, a directory, an oversize file, another owner's file) is
 * refused without being followed or read. og_store_open refuses directories
 * the server's User could subvert; root's floors file beside the store
 * round-trips, merges and refuses damage. Everything lives under one mkdtemp in
 * /tmp, removed at the end; the tests that need root skip without it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <dirent.h>
#include <signal.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <openssl/evp.h>

#include "og_store.h"

#define NOBODY 65534   /* the server's User in the root-only tests */
#define OTHER  65533   /* someone else again */

static apr_pool_t *pool;        /* cleared after each test */
static char base[] = "/tmp/og_store_test_XXXXXX";
static int seq;
static og_store_t *st;          /* a fresh store (0700, ours) per test */
static const unsigned char id[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                      11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
static const unsigned char der[] = { 0x30, 0x03, 0x0a, 0x01, 0x00, 0x42 };
static const char precious[] = "not yours to overwrite\n";

static og_record_t sample_record(void)
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

static og_floor_t sample_floor(void)
{
    og_floor_t f;

    f.newest_this_update = apr_time_from_sec(1700000000);
    f.revoked_this_update = apr_time_from_sec(1690000000);
    f.revoked_at = apr_time_from_sec(1689990000);
    return f;
}

/* A path under base that does not exist yet. */
static const char *fresh_path(void)
{
    return apr_psprintf(pool, "%s/t%d", base, ++seq);
}

static const char *store_file(void)
{
    return og_store_path(st, pool, id);
}

/* Whole file into buf (cap bytes); its length, or -1. */
static long slurp(const char *path, unsigned char *buf, apr_size_t cap)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    apr_size_t len = 0;

    if (fd < 0) {
        return -1;
    }
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);

        if (n <= 0) {
            break;
        }
        len += (apr_size_t)n;
    }
    close(fd);
    return (long)len;
}

/* Replace path with a regular file holding d; 0 or -1. */
static int spit(const char *path, const void *d, apr_size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
    int ok;

    if (fd < 0) {
        return -1;
    }
    ok = write(fd, d, len) == (ssize_t)len;
    return close(fd) == 0 && ok ? 0 : -1;
}

/* Entries in dir other than "." and ".."; *ptmp: how many are ".*.tmp". */
static int count_entries(const char *path, int *ptmp)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    *ptmp = 0;
    if (!d) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);

        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        n++;
        if (e->d_name[0] == '.' && len > 4 && !strcmp(e->d_name + len - 4, ".tmp")) {
            (*ptmp)++;
        }
    }
    closedir(d);
    return n;
}

static void put32(unsigned char *b, apr_uint32_t v)
{
    b[0] = (unsigned char)(v >> 24); b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);  b[3] = (unsigned char)v;
}

/* A version 1 (0.1.0) store file, built by hand from the layout at the top
 * of og_store.c: "OGST", 1, 3 zero bytes, id at 8, u32 L at 28, the record
 * at 32, then SHA-256 of everything before. Its length, 0 on failure. */
static apr_size_t build_v1(unsigned char *buf, const og_record_t *rec)
{
    apr_size_t rlen;
    unsigned int hlen = 0;

    memset(buf, 0, 32);
    memcpy(buf, "OGST", 4);
    buf[4] = 1;
    memcpy(buf + 8, id, sizeof(id));
    rlen = og_record_encode(buf + 32, OG_RECORD_MAX, rec);
    if (!rlen) {
        return 0;
    }
    put32(buf + 28, (apr_uint32_t)rlen);
    if (EVP_Digest(buf, 32 + rlen, buf + 32 + rlen, &hlen, EVP_sha256(), NULL) != 1
        || hlen != 32) {
        return 0;
    }
    return 32 + rlen + 32;
}

/* Recompute the SHA-256 that ends a store or floors file of len bytes, so
 * that only the check under test can refuse it. */
static int rehash(unsigned char *d, apr_size_t len)
{
    unsigned int hlen = 0;

    return EVP_Digest(d, len - 32, d + len - 32, &hlen, EVP_sha256(), NULL) == 1
           && hlen == 32 ? 0 : -1;
}

static void put64(unsigned char *b, apr_int64_t v)
{
    put32(b, (apr_uint32_t)((apr_uint64_t)v >> 32));
    put32(b + 4, (apr_uint32_t)((apr_uint64_t)v & 0xffffffffu));
}

/* A floors file by hand, from the layout at the top of og_store.c: "OGFL",
 * 1, 3 zero bytes, u32 N, N entries (id, 3 x i64), SHA-256. */
static apr_size_t build_floors(unsigned char *buf, const unsigned char (*ids)[20],
                               const og_floor_t *floors, int n)
{
    int i;

    memset(buf, 0, 12);
    memcpy(buf, "OGFL", 4);
    buf[4] = 1;
    put32(buf + 8, (apr_uint32_t)n);
    for (i = 0; i < n; i++) {
        unsigned char *e = buf + 12 + 44 * i;

        memcpy(e, ids[i], 20);
        put64(e + 20, floors[i].newest_this_update);
        put64(e + 28, floors[i].revoked_this_update);
        put64(e + 36, floors[i].revoked_at);
    }
    return rehash(buf, 12 + 44 * (apr_size_t)n + 32) == 0 ? 12 + 44 * (apr_size_t)n + 32 : 0;
}

static void on_alarm(int sig)
{
    static const char msg[] = "test_og_store: og_store_load blocked on a FIFO\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing more to say */
    }
    _exit(1);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS || !mkdtemp(base)) {
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    apr_pool_destroy(pool);
    return nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh store directory of ours, mode 0700, opened for this process. */
static int setup(void **state)
{
    const char *dir = fresh_path(), *err;

    (void)state;
    if (mkdir(dir, 0700) != 0
        || og_store_open(&st, &err, pool, dir, geteuid(), getegid(), 0) != APR_SUCCESS) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    apr_pool_clear(pool); /* closes the store's descriptor */
    st = NULL;
    return 0;
}

/* --- the file format --- */

static void test_store_round_trips_record_in_a_0600_file(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;
    struct stat sb;

    (void)state;
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_SUCCESS);
    assert_true(out.this_update == in.this_update);
    assert_true(out.next_update == in.next_update);
    assert_true(out.fetched_at == in.fetched_at);
    assert_int_equal(out.cert_status, OG_STATUS_GOOD);
    assert_int_equal(out.source, OG_SOURCE_REFRESH);
    assert_int_equal(out.der_len, sizeof(der));
    assert_memory_equal(out.der, der, sizeof(der));
    assert_int_equal(lstat(store_file(), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(sb.st_uid, geteuid());
}

/* A batch of saves (no fsync each) leaves every file complete and loadable,
 * and the next save outside a batch is back to its own fsyncs. */
static void test_store_batch_saves_are_all_there_after_it_ends(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    unsigned char ids[5][OG_CERT_ID_LEN];
    const char *err;
    int i;

    (void)state;
    og_store_batch(st, 1);
    for (i = 0; i < 5; i++) {
        memcpy(ids[i], id, OG_CERT_ID_LEN);
        ids[i][0] ^= (unsigned char)(i + 1);
        assert_int_equal(og_store_save(&err, pool, st, ids[i], &in, &fl), APR_SUCCESS);
    }
    og_store_batch(st, 0);
    og_store_batch(NULL, 0); /* no store: nothing to do */
    for (i = 0; i < 5; i++) {
        assert_int_equal(og_store_load(&out, &fout, &err, pool, st, ids[i]), APR_SUCCESS);
        assert_memory_equal(out.der, der, sizeof(der));
    }
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_SUCCESS);
}

static void test_store_missing_file_is_enoent(void **state)
{
    og_record_t out;
    og_floor_t fout;
    const char *err;
    unsigned char other[20] = { 0 };

    (void)state;
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, other), APR_ENOENT);
}

static void test_store_flipped_byte_is_a_checksum_mismatch(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;
    static unsigned char d[OG_STORE_MAX];
    long len;

    (void)state;
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    len = slurp(store_file(), d, sizeof(d));
    assert_true(len > OG_STORE_HDR + OG_STORE_HASH);
    d[len - OG_STORE_HASH - 2] ^= 0x01;        /* in the DER */
    assert_int_equal(spit(store_file(), d, (apr_size_t)len), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "checksum"));
    d[len - OG_STORE_HASH - 2] ^= 0x01;
    d[36] ^= 0x80;                             /* in the floor */
    assert_int_equal(spit(store_file(), d, (apr_size_t)len), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "checksum"));
    d[36] ^= 0x80;
    d[len - 1] ^= 0x01;                        /* in the hash itself */
    assert_int_equal(spit(store_file(), d, (apr_size_t)len), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "checksum"));
}

static void test_store_truncated_or_padded_file_is_refused(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;
    static unsigned char d[OG_STORE_MAX + 1];
    long len;

    (void)state;
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    len = slurp(store_file(), d, sizeof(d));
    assert_true(len > OG_STORE_HDR + OG_STORE_HASH);
    assert_int_equal(spit(store_file(), d, (apr_size_t)len - 1), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "truncated or padded"));
    d[len] = 0;
    assert_int_equal(spit(store_file(), d, (apr_size_t)len + 1), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "truncated or padded"));
    /* the header and a hash, the record missing */
    assert_int_equal(spit(store_file(), d, OG_STORE_HDR + OG_STORE_HASH), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "truncated or padded"));
}

static void test_store_foreign_file_is_refused(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;
    static unsigned char d[OG_STORE_MAX];
    long len;

    (void)state;
    assert_int_equal(spit(store_file(), "hello world, not a store file at all", 36), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "not a mod_ocsp_guard store file"));
    assert_int_equal(spit(store_file(), "", 0), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "not a mod_ocsp_guard store file"));
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    len = slurp(store_file(), d, sizeof(d));
    assert_true(len > OG_STORE_HDR + OG_STORE_HASH);
    d[0] = 'X';                                /* other magic */
    assert_int_equal(spit(store_file(), d, (apr_size_t)len), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "not a mod_ocsp_guard store file"));
    d[0] = 'O';
    d[4] = 3;                                  /* a version from the future */
    assert_int_equal(spit(store_file(), d, (apr_size_t)len), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
    assert_non_null(strstr(err, "version 3"));
}

static void test_store_reserved_bytes_or_flags_set_are_refused(void **state)
{
    static const int reserved[] = { 5, 6, 7, 28, 31 };  /* 3 zero bytes, u32 flags */
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;
    static unsigned char d[OG_STORE_MAX];
    apr_size_t len, i;

    (void)state;
    len = og_store_encode(d, id, &in, &fl);
    assert_true(len > 0);
    for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        assert_int_equal(d[reserved[i]], 0);
        d[reserved[i]] = 1;
        assert_int_equal(rehash(d, len), 0); /* a valid checksum: the check is the field's */
        assert_int_equal(og_store_parse(&out, &fout, &err, pool, d, len, id), APR_EINVAL);
        d[reserved[i]] = 0;
    }
    assert_int_equal(rehash(d, len), 0);
    assert_int_equal(og_store_parse(&out, &fout, &err, pool, d, len, id), APR_SUCCESS);
}

static void test_store_file_of_another_certificate_is_refused(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;
    static unsigned char d[OG_STORE_MAX];
    unsigned char other[20];
    long len;

    (void)state;
    memcpy(other, id, sizeof(other));
    other[0] = 0xee;
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    len = slurp(store_file(), d, sizeof(d));
    assert_true(len > 0);
    assert_int_equal(og_store_parse(&out, &fout, &err, pool, d, (apr_size_t)len, other),
                     APR_EINVAL);
    assert_non_null(strstr(err, "another certificate"));
    /* the same file renamed to the other certificate's name */
    assert_int_equal(rename(store_file(), og_store_path(st, pool, other)), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, other), APR_EINVAL);
    assert_non_null(strstr(err, "another certificate"));
}

static void test_store_floor_round_trips_with_the_record(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;
    static unsigned char buf[OG_STORE_MAX];
    apr_size_t len;

    (void)state;
    /* three distinct values, so a swapped field shows */
    fl.newest_this_update = apr_time_from_sec(1700003600);
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    memset(&fout, 0x5a, sizeof(fout));
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_SUCCESS);
    assert_true(fout.newest_this_update == apr_time_from_sec(1700003600));
    assert_true(fout.revoked_this_update == apr_time_from_sec(1690000000));
    assert_true(fout.revoked_at == apr_time_from_sec(1689990000));
    /* a floor that never saw a revocation keeps its zeros */
    memset(&fl, 0, sizeof(fl));
    fl.newest_this_update = in.this_update;
    len = og_store_encode(buf, id, &in, &fl);
    assert_int_equal(len, OG_STORE_HDR + OG_RECORD_HDR_LEN + sizeof(der) + OG_STORE_HASH);
    memset(&fout, 0x5a, sizeof(fout));
    assert_int_equal(og_store_parse(&out, &fout, &err, pool, buf, len, id), APR_SUCCESS);
    assert_true(fout.newest_this_update == in.this_update);
    assert_true(fout.revoked_this_update == 0);
    assert_true(fout.revoked_at == 0);
}

static void test_store_version_1_file_loads_with_floor_from_its_record(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fout;
    const char *err;
    static unsigned char v1[OG_STORE_MAX];
    apr_size_t len;

    (void)state;
    len = build_v1(v1, &in);
    assert_int_equal(len, 32 + OG_RECORD_HDR_LEN + sizeof(der) + 32);
    assert_int_equal(spit(store_file(), v1, len), 0);
    memset(&fout, 0x5a, sizeof(fout));
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_SUCCESS);
    assert_true(out.this_update == in.this_update);
    assert_true(out.next_update == in.next_update);
    assert_int_equal(out.cert_status, OG_STATUS_GOOD);
    assert_int_equal(out.der_len, sizeof(der));
    assert_memory_equal(out.der, der, sizeof(der));
    assert_true(fout.newest_this_update == in.this_update);
    assert_true(fout.revoked_this_update == 0);
    assert_true(fout.revoked_at == 0);
}

static void test_store_version_1_revoked_record_gives_a_revoked_floor(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fout;
    const char *err;
    static unsigned char v1[OG_STORE_MAX];
    apr_size_t len;

    (void)state;
    in.cert_status = OG_STATUS_REVOKED;
    len = build_v1(v1, &in);
    assert_true(len > 0);
    assert_int_equal(og_store_parse(&out, &fout, &err, pool, v1, len, id), APR_SUCCESS);
    assert_int_equal(out.cert_status, OG_STATUS_REVOKED);
    assert_true(fout.newest_this_update == in.this_update);
    assert_true(fout.revoked_this_update == in.this_update);
}

static void test_store_version_1_file_with_bad_checksum_is_refused(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fout;
    const char *err;
    static unsigned char v1[OG_STORE_MAX];
    apr_size_t len;

    (void)state;
    len = build_v1(v1, &in);
    assert_true(len > 0);
    v1[40] ^= 0x01;
    assert_int_equal(og_store_parse(&out, &fout, &err, pool, v1, len, id), APR_EINVAL);
    assert_non_null(strstr(err, "checksum"));
}

/* --- names planted in the store --- */

static void test_store_load_refuses_symlink_to_a_file_outside_the_store(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err, *target = fresh_path();
    static unsigned char valid[OG_STORE_MAX], after[OG_STORE_MAX];
    apr_size_t len;
    struct stat sb;

    (void)state;
    /* the target is a valid store file for id: following the link would load it */
    len = og_store_encode(valid, id, &in, &fl);
    assert_true(len > 0);
    assert_int_equal(spit(target, valid, len), 0);
    assert_int_equal(symlink(target, store_file()), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), OG_STORE_UNSAFE);
    assert_non_null(strstr(err, "symbolic link"));
    assert_int_equal(slurp(target, after, sizeof(after)), (long)len);
    assert_memory_equal(after, valid, len);
    assert_int_equal(lstat(store_file(), &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
}

static void test_store_load_refuses_fifo_at_once(void **state)
{
    og_record_t out;
    og_floor_t fout;
    const char *err;
    struct sigaction sa, old;
    apr_status_t rv;

    (void)state;
    assert_int_equal(mkfifo(store_file(), 0600), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
    alarm(5); /* a blocking open or read ends the run instead of hanging it */
    rv = og_store_load(&out, &fout, &err, pool, st, id);
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    assert_int_equal(rv, OG_STORE_UNSAFE);
    assert_non_null(strstr(err, "FIFO"));
}

static void test_store_load_refuses_directory(void **state)
{
    og_record_t out;
    og_floor_t fout;
    const char *err;

    (void)state;
    assert_int_equal(mkdir(store_file(), 0700), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), OG_STORE_UNSAFE);
    assert_non_null(strstr(err, "directory"));
}

static void test_store_load_refuses_file_larger_than_store_max(void **state)
{
    og_record_t out;
    og_floor_t fout;
    const char *err;

    (void)state;
    assert_int_equal(spit(store_file(), "", 0), 0);
    assert_int_equal(truncate(store_file(), (off_t)OG_STORE_MAX + 1), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), OG_STORE_UNSAFE);
    assert_non_null(strstr(err, "larger than any store file"));
    /* exactly OG_STORE_MAX is read, and found not to be a store file */
    assert_int_equal(truncate(store_file(), (off_t)OG_STORE_MAX), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_EINVAL);
}

static void test_store_load_as_root_refuses_file_of_another_owner(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err;

    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_SUCCESS);
    assert_int_equal(chown(store_file(), NOBODY, NOBODY), 0);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), OG_STORE_UNSAFE);
    assert_non_null(strstr(err, "owned by uid 65534"));
}

static void test_store_save_replaces_planted_symlink_and_spares_its_target(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *err, *target = fresh_path();
    unsigned char after[sizeof(precious) + 16];
    struct stat sb;

    (void)state;
    assert_int_equal(spit(target, precious, sizeof(precious)), 0);
    assert_int_equal(symlink(target, store_file()), 0);
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    assert_int_equal(lstat(store_file(), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(slurp(target, after, sizeof(after)), (long)sizeof(precious));
    assert_memory_equal(after, precious, sizeof(precious));
    assert_int_equal(og_store_load(&out, &fout, &err, pool, st, id), APR_SUCCESS);
    assert_memory_equal(out.der, der, sizeof(der));
}

static void test_store_save_leaves_no_temp_file(void **state)
{
    og_record_t in = sample_record();
    og_floor_t fl = sample_floor();
    const char *err;
    int i, tmp = -1;

    (void)state;
    for (i = 0; i < 3; i++) {
        in.this_update += apr_time_from_sec(60);
        assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    }
    assert_int_equal(count_entries(og_store_dir(st), &tmp), 1); /* <id>.ocsp only */
    assert_int_equal(tmp, 0);
}

static void test_store_failed_save_leaves_no_temp_file(void **state)
{
    static unsigned char big[OG_OCSP_MAX_STAPLE + 1];
    og_record_t in = sample_record();
    og_floor_t fl = sample_floor();
    const char *err, *inner;
    int tmp = -1;

    (void)state;
    /* a directory in the way: the rename fails after the temp file was written */
    assert_int_equal(mkdir(store_file(), 0700), 0);
    inner = apr_pstrcat(pool, store_file(), "/x", NULL);
    assert_int_equal(spit(inner, "x", 1), 0);
    assert_int_not_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_SUCCESS);
    assert_non_null(strstr(err, "cannot rename"));
    assert_int_equal(count_entries(og_store_dir(st), &tmp), 1);
    assert_int_equal(tmp, 0);
    assert_int_equal(unlink(inner), 0);
    assert_int_equal(rmdir(store_file()), 0);
    /* a response too large for a record: nothing written at all */
    in.der = big;
    in.der_len = sizeof(big);
    assert_int_equal(og_store_save(&err, pool, st, id, &in, &fl), APR_EINVAL);
    assert_non_null(strstr(err, "too large"));
    assert_int_equal(count_entries(og_store_dir(st), &tmp), 0);
    assert_int_equal(tmp, 0);
}

/* --- og_store_open --- */

static void test_store_open_refuses_symlink_to_a_directory(void **state)
{
    const char *parent = fresh_path(), *err;
    const char *real = apr_pstrcat(pool, parent, "/real", NULL);
    const char *link = apr_pstrcat(pool, parent, "/link", NULL);
    og_store_t *s;
    int prepare;

    (void)state;
    assert_int_equal(mkdir(parent, 0700), 0);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, link), 0);
    for (prepare = 0; prepare <= 1; prepare++) {
        memset(&s, 0xa5, sizeof(s));
        assert_int_not_equal(og_store_open(&s, &err, pool, link, geteuid(), getegid(),
                                           prepare), APR_SUCCESS);
        assert_null(s);
        assert_non_null(strstr(err, "symbolic link"));
    }
}

static void test_store_open_refuses_group_or_world_writable_directory(void **state)
{
    static const mode_t modes[] = { 0770, 0777, 0720, 0702 };
    const char *err;
    og_store_t *s;
    struct stat sb;
    size_t i;
    int prepare;

    (void)state;
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        const char *dir = fresh_path();

        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(chmod(dir, modes[i]), 0);
        for (prepare = 0; prepare <= 1; prepare++) {
            memset(&s, 0xa5, sizeof(s));
            assert_int_equal(og_store_open(&s, &err, pool, dir, geteuid(), getegid(),
                                           prepare), APR_EINVAL);
            assert_null(s);
            assert_non_null(strstr(err, "writable by others"));
        }
        /* refused, not repaired */
        assert_int_equal(stat(dir, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, modes[i]);
    }
}

static void test_store_open_as_root_refuses_parent_writable_by_the_user(void **state)
{
    /* parent owned by the User; world-writable; group-writable for its gid */
    static const struct { uid_t uid; gid_t gid; mode_t mode; } parents[] = {
        { NOBODY, 0, 0755 }, { 0, 0, 0777 }, { 0, NOBODY, 0770 },
    };
    const char *err;
    og_store_t *s;
    struct stat sb;
    size_t i;
    int prepare;

    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    for (i = 0; i < sizeof(parents) / sizeof(parents[0]); i++) {
        const char *parent = fresh_path();
        const char *dir = apr_pstrcat(pool, parent, "/store", NULL);
        const char *missing = apr_pstrcat(pool, parent, "/missing", NULL);

        assert_int_equal(mkdir(parent, 0700), 0);
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(chown(parent, parents[i].uid, parents[i].gid), 0);
        assert_int_equal(chmod(parent, parents[i].mode), 0);
        for (prepare = 0; prepare <= 1; prepare++) {
            memset(&s, 0xa5, sizeof(s));
            assert_int_equal(og_store_open(&s, &err, pool, dir, NOBODY, NOBODY, prepare),
                             APR_EINVAL);
            assert_null(s);
            assert_non_null(strstr(err, "parent"));
            assert_int_equal(og_store_open(&s, &err, pool, missing, NOBODY, NOBODY,
                                           prepare), APR_EINVAL);
        }
        /* nothing handed over, nothing created */
        assert_int_equal(stat(dir, &sb), 0);
        assert_int_equal(sb.st_uid, 0);
        assert_int_equal(lstat(missing, &sb), -1);
        assert_int_equal(errno, ENOENT);
    }
}

static void test_store_open_refuses_directory_of_a_third_owner(void **state)
{
    const char *dir = fresh_path(), *err;
    og_store_t *s;
    struct stat sb;
    int prepare;

    (void)state;
    if (geteuid() != 0) {
        skip(); /* only root can make a directory someone else's */
    }
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(chown(dir, OTHER, OTHER), 0);
    for (prepare = 0; prepare <= 1; prepare++) {
        memset(&s, 0xa5, sizeof(s));
        assert_int_equal(og_store_open(&s, &err, pool, dir, NOBODY, NOBODY, prepare),
                         APR_EINVAL);
        assert_null(s);
        assert_non_null(strstr(err, "belongs to neither"));
    }
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_uid, OTHER);
    /* the same directory is fine for its owner */
    assert_int_equal(og_store_open(&s, &err, pool, dir, OTHER, OTHER, 0), APR_SUCCESS);
    assert_non_null(s);
}

static void test_store_open_without_prepare_leaves_missing_directory_missing(void **state)
{
    const char *dir = fresh_path(), *err;
    og_store_t *s;
    struct stat sb;

    (void)state;
    memset(&s, 0xa5, sizeof(s));
    assert_int_equal(og_store_open(&s, &err, pool, dir, geteuid(), getegid(), 0),
                     APR_ENOENT);
    assert_null(s);
    assert_int_equal(lstat(dir, &sb), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_store_open_with_prepare_creates_directory_0700_for_the_user(void **state)
{
    const char *parent = fresh_path(), *err;
    const char *dir = apr_pstrcat(pool, parent, "/store", NULL);
    int root = geteuid() == 0;
    uid_t uid = root ? NOBODY : geteuid();
    gid_t gid = root ? NOBODY : getegid();
    og_store_t *s = NULL;
    struct stat sb;

    (void)state;
    assert_int_equal(mkdir(parent, 0700), 0);
    assert_int_equal(og_store_open(&s, &err, pool, dir, uid, gid, 1), APR_SUCCESS);
    assert_non_null(s);
    assert_string_equal(og_store_dir(s), dir);
    assert_int_equal(lstat(dir, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0700);
    assert_int_equal(sb.st_uid, uid);
    assert_int_equal(sb.st_gid, gid);
}

static void test_store_as_root_saves_files_owned_by_the_user(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    const char *parent = fresh_path(), *err;
    const char *dir = apr_pstrcat(pool, parent, "/store", NULL);
    og_store_t *s = NULL;
    struct stat sb;

    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    assert_int_equal(mkdir(parent, 0700), 0);
    assert_int_equal(og_store_open(&s, &err, pool, dir, NOBODY, NOBODY, 1), APR_SUCCESS);
    assert_int_equal(og_store_save(&err, pool, s, id, &in, &fl), APR_SUCCESS);
    assert_int_equal(lstat(og_store_path(s, pool, id), &sb), 0);
    assert_int_equal(sb.st_uid, NOBODY);
    assert_int_equal(sb.st_gid, NOBODY);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(og_store_load(&out, &fout, &err, pool, s, id), APR_SUCCESS);
}

/* --- the floors file (root's, beside the store) --- */

static void test_store_floors_are_kept_only_by_root_for_another_user(void **state)
{
    apr_hash_t *floors = apr_hash_make(pool);
    const char *err;

    (void)state;
    /* the fixture's store is this process' own (uid 0 as root): no floors file */
    assert_int_equal(og_store_floors_save(st, floors, &err, pool), APR_ENOTIMPL);
    assert_int_equal(og_store_floors_load(st, floors, &err, pool), APR_ENOTIMPL);
}

static void test_store_floors_round_trip_as_root(void **state)
{
    static const unsigned char id2[20] = { 0xaa, 0xbb };
    og_floor_t f1 = sample_floor(), f2 = { apr_time_from_sec(1600000000), 0, 0 };
    const char *parent = fresh_path(), *err, *path;
    const char *dir = apr_pstrcat(pool, parent, "/store", NULL);
    apr_hash_t *out = apr_hash_make(pool), *in = apr_hash_make(pool);
    const og_floor_t *g1, *g2;
    og_store_t *s = NULL;
    struct stat sb;
    int tmp = -1;

    (void)state;
    if (geteuid() != 0) {
        skip();
    }
    assert_int_equal(mkdir(parent, 0700), 0);
    assert_int_equal(og_store_open(&s, &err, pool, dir, NOBODY, NOBODY, 1), APR_SUCCESS);
    assert_int_equal(og_store_floors_load(s, out, &err, pool), APR_ENOENT);
    apr_hash_set(in, id, sizeof(id), &f1);
    apr_hash_set(in, id2, sizeof(id2), &f2);
    assert_int_equal(og_store_floors_save(s, in, &err, pool), APR_SUCCESS);
    path = og_store_floors_path(s, pool);
    assert_string_equal(path, apr_pstrcat(pool, dir, ".floors", NULL));
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_uid, 0);              /* root's, not the User's */
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(count_entries(parent, &tmp), 2); /* store/ and store.floors */
    assert_int_equal(tmp, 0);
    assert_int_equal(og_store_floors_load(s, out, &err, pool), APR_SUCCESS);
    assert_int_equal(apr_hash_count(out), 2);
    g1 = apr_hash_get(out, id, sizeof(id));
    g2 = apr_hash_get(out, id2, sizeof(id2));
    assert_non_null(g1);
    assert_non_null(g2);
    assert_true(g1->newest_this_update == f1.newest_this_update);
    assert_true(g1->revoked_this_update == f1.revoked_this_update);
    assert_true(g1->revoked_at == f1.revoked_at);
    assert_true(g2->newest_this_update == f2.newest_this_update);
    assert_true(g2->revoked_this_update == 0);
    /* one the User could have written is not believed */
    assert_int_equal(chown(path, NOBODY, NOBODY), 0);
    assert_int_equal(og_store_floors_load(s, apr_hash_make(pool), &err, pool), APR_EINVAL);
}

static void test_store_floors_parse_merges_the_newest_per_field(void **state)
{
    static const unsigned char ids[2][20] = { { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                                15, 16, 17, 18, 19, 20 }, { 0xcc } };
    og_floor_t f[2] = { { apr_time_from_sec(1700000000), apr_time_from_sec(1690000000),
                          apr_time_from_sec(1689990000) },
                        { apr_time_from_sec(1600000000), 0, 0 } };
    og_floor_t held = { apr_time_from_sec(1700003600), apr_time_from_sec(1680000000),
                        apr_time_from_sec(1679990000) };
    static unsigned char buf[12 + 2 * 44 + 32];
    apr_hash_t *floors = apr_hash_make(pool);
    const og_floor_t *g;
    const char *err;
    apr_size_t len;

    (void)state;
    apr_hash_set(floors, id, sizeof(id), &held);
    len = build_floors(buf, ids, f, 2);
    assert_int_equal(len, sizeof(buf));
    assert_int_equal(og_store_floors_parse(floors, &err, buf, len), APR_SUCCESS);
    assert_int_equal(apr_hash_count(floors), 2);
    g = apr_hash_get(floors, id, sizeof(id));
    assert_true(g->newest_this_update == apr_time_from_sec(1700003600));  /* held's */
    assert_true(g->revoked_this_update == apr_time_from_sec(1690000000)); /* the file's, */
    assert_true(g->revoked_at == apr_time_from_sec(1689990000));          /* with its time */
    g = apr_hash_get(floors, ids[1], sizeof(ids[1]));
    assert_non_null(g);
    assert_true(g->newest_this_update == apr_time_from_sec(1600000000));
}

static void test_store_floors_damage_is_refused(void **state)
{
    static const unsigned char ids[1][20] = { { 7 } };
    og_floor_t f[1] = { { apr_time_from_sec(1700000000), 0, 0 } };
    static unsigned char buf[12 + 44 + 32 + 1];
    const char *err;
    apr_size_t len;

    (void)state;
    len = build_floors(buf, ids, f, 1);
    assert_true(len > 0);
    assert_int_equal(og_store_floors_parse(apr_hash_make(pool), &err, buf, len), APR_SUCCESS);
    buf[30] ^= 0x01;
    assert_int_equal(og_store_floors_parse(apr_hash_make(pool), &err, buf, len), APR_EINVAL);
    assert_non_null(strstr(err, "checksum"));
    buf[30] ^= 0x01;
    assert_int_equal(og_store_floors_parse(apr_hash_make(pool), &err, buf, len - 1), APR_EINVAL);
    assert_non_null(strstr(err, "truncated or padded"));
    buf[len] = 0;
    assert_int_equal(og_store_floors_parse(apr_hash_make(pool), &err, buf, len + 1), APR_EINVAL);
    assert_non_null(strstr(err, "truncated or padded"));
    put32(buf + 8, OG_FLOORS_MAX_ENTRIES + 1);
    assert_int_equal(rehash(buf, len), 0);
    assert_int_equal(og_store_floors_parse(apr_hash_make(pool), &err, buf, len), APR_EINVAL);
    put32(buf + 8, 1);
    buf[0] = 'X';
    assert_int_equal(rehash(buf, len), 0);
    assert_int_equal(og_store_floors_parse(apr_hash_make(pool), &err, buf, len), APR_EINVAL);
    assert_non_null(strstr(err, "not a mod_ocsp_guard floors file"));
}

/* Workers write answers at once (og_store_save_unsynced) while the
 * refresher's thread saves in a batch: every file is complete, and the
 * unsynced saves leave the batch's own state alone. */
typedef struct {
    int n;
    apr_status_t rv;
} unsynced_arg_t;

static void *APR_THREAD_FUNC save_unsynced_thread(apr_thread_t *t, void *data)
{
    unsynced_arg_t *a = data;
    og_record_t in = sample_record();
    og_floor_t fl = sample_floor();
    unsigned char tid[OG_CERT_ID_LEN];
    apr_pool_t *p;
    const char *err;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    a->rv = APR_SUCCESS;
    for (i = 0; i < 20 && a->rv == APR_SUCCESS; i++) {
        memcpy(tid, id, OG_CERT_ID_LEN);
        tid[1] = (unsigned char)(0x80 + a->n);
        tid[2] = (unsigned char)i;
        a->rv = og_store_save_unsynced(&err, p, st, tid, &in, &fl);
    }
    apr_pool_destroy(p);
    (void)t; /* no apr_thread_exit: its pthread_exit trips ASan's sigaltstack check */
    return NULL;
}

static void test_store_unsynced_saves_from_threads_beside_a_batch(void **state)
{
    og_record_t in = sample_record(), out;
    og_floor_t fl = sample_floor(), fout;
    unsynced_arg_t args[4];
    apr_thread_t *th[4];
    unsigned char tid[OG_CERT_ID_LEN];
    apr_status_t trv;
    const char *err;
    int i, k;

    (void)state;
    og_store_batch(st, 1);
    for (i = 0; i < 4; i++) {
        args[i].n = i;
        assert_int_equal(apr_thread_create(&th[i], NULL, save_unsynced_thread, &args[i], pool),
                         APR_SUCCESS);
    }
    for (i = 0; i < 10; i++) {
        memcpy(tid, id, OG_CERT_ID_LEN);
        tid[1] = (unsigned char)i;
        assert_int_equal(og_store_save(&err, pool, st, tid, &in, &fl), APR_SUCCESS);
    }
    for (i = 0; i < 4; i++) {
        apr_thread_join(&trv, th[i]);
        assert_int_equal(args[i].rv, APR_SUCCESS);
    }
    og_store_batch(st, 0);
    for (i = 0; i < 4; i++) {
        for (k = 0; k < 20; k++) {
            memcpy(tid, id, OG_CERT_ID_LEN);
            tid[1] = (unsigned char)(0x80 + i);
            tid[2] = (unsigned char)k;
            assert_int_equal(og_store_load(&out, &fout, &err, pool, st, tid), APR_SUCCESS);
            assert_memory_equal(out.der, der, sizeof(der));
            assert_true(fout.newest_this_update == fl.newest_this_update);
        }
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_round_trips_record_in_a_0600_file),
        T(test_store_batch_saves_are_all_there_after_it_ends),
        T(test_store_unsynced_saves_from_threads_beside_a_batch),
        T(test_store_missing_file_is_enoent),
        T(test_store_flipped_byte_is_a_checksum_mismatch),
        T(test_store_truncated_or_padded_file_is_refused),
        T(test_store_foreign_file_is_refused),
        T(test_store_reserved_bytes_or_flags_set_are_refused),
        T(test_store_file_of_another_certificate_is_refused),
        T(test_store_floor_round_trips_with_the_record),
        T(test_store_version_1_file_loads_with_floor_from_its_record),
        T(test_store_version_1_revoked_record_gives_a_revoked_floor),
        T(test_store_version_1_file_with_bad_checksum_is_refused),
        T(test_store_load_refuses_symlink_to_a_file_outside_the_store),
        T(test_store_load_refuses_fifo_at_once),
        T(test_store_load_refuses_directory),
        T(test_store_load_refuses_file_larger_than_store_max),
        T(test_store_load_as_root_refuses_file_of_another_owner),
        T(test_store_save_replaces_planted_symlink_and_spares_its_target),
        T(test_store_save_leaves_no_temp_file),
        T(test_store_failed_save_leaves_no_temp_file),
        T(test_store_open_refuses_symlink_to_a_directory),
        T(test_store_open_refuses_group_or_world_writable_directory),
        T(test_store_open_as_root_refuses_parent_writable_by_the_user),
        T(test_store_open_refuses_directory_of_a_third_owner),
        T(test_store_open_without_prepare_leaves_missing_directory_missing),
        T(test_store_open_with_prepare_creates_directory_0700_for_the_user),
        T(test_store_as_root_saves_files_owned_by_the_user),
        T(test_store_floors_are_kept_only_by_root_for_another_user),
        T(test_store_floors_round_trip_as_root),
        T(test_store_floors_parse_merges_the_newest_per_field),
        T(test_store_floors_damage_is_refused),
    };
    int rv;

    apr_initialize();
    rv = cmocka_run_group_tests_name("og_store", tests, group_setup, group_teardown);
    apr_terminate();
    return rv;
}

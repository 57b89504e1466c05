/* test_og_cert.c: og_cert_from_pem and og_cert_read: id, issuer from the
 * chain (by name and key identifier) or a chain file, AIA URL, Must-Staple,
 * names and serial, self-signed leaves; bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>

#include "og_cert.h"
#include "og_test_pki.h"

static apr_pool_t *pool;
static tp_ident_t ca, leaf, nourl, muststaple;

static int setup(void **state)
{
    (void)state;
    apr_pool_create(&pool, NULL);
    ca = tp_make("Test CA", NULL, 1, (tp_opts_t){ .is_ca = 1 });
    leaf = tp_make("good.localhost", &ca, 0x1234, (tp_opts_t){ .ocsp_url = "http://127.0.0.1:8888/ocsp" });
    nourl = tp_make("nourl.localhost", &ca, 0x1235, (tp_opts_t){ 0 });
    muststaple = tp_make("ms.localhost", &ca, 0x1236, (tp_opts_t){ .ocsp_url = "http://127.0.0.1:8888/", .must_staple = 1 });
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tp_free(&ca); tp_free(&leaf); tp_free(&nourl); tp_free(&muststaple);
    apr_pool_destroy(pool);
    return 0;
}

/* og_cert_from_pem over the PEM chain of x and issuer: the test asserts on it. */
static apr_status_t parse(og_cert_t **pc, X509 *x, X509 *issuer)
{
    size_t len;
    char *pem = tp_pem_chain(x, issuer, &len);
    const char *err;
    apr_status_t rv;

    *pc = NULL;
    rv = og_cert_from_pem(pc, &err, pool, pem, len, NULL);
    free(pem);
    return rv;
}

static void test_cert_id_is_sha1_of_der(void **state)
{
    og_cert_t *c;
    unsigned char md[20];
    unsigned int n;

    (void)state;
    assert_int_equal(parse(&c, leaf.cert, ca.cert), APR_SUCCESS);
    X509_digest(leaf.cert, EVP_sha1(), md, &n);
    assert_memory_equal(c->id, md, 20);
    assert_int_equal(strlen(c->id_hex), 40);
}

static void test_cert_reads_issuer_url_serial_subject(void **state)
{
    og_cert_t *c;

    (void)state;
    assert_int_equal(parse(&c, leaf.cert, ca.cert), APR_SUCCESS);
    assert_non_null(c->issuer);
    assert_string_equal(c->ocsp_url, "http://127.0.0.1:8888/ocsp");
    assert_string_equal(c->serial_hex, "1234");
    assert_string_equal(c->subject, "CN=good.localhost");
    assert_false(c->must_staple);
    assert_true(c->not_after > apr_time_now());
}

static void test_cert_without_aia_has_no_url(void **state)
{
    og_cert_t *c;

    (void)state;
    assert_int_equal(parse(&c, nourl.cert, ca.cert), APR_SUCCESS);
    assert_null(c->ocsp_url);
}

static void test_cert_must_staple_is_detected(void **state)
{
    og_cert_t *c;

    (void)state;
    assert_int_equal(parse(&c, muststaple.cert, ca.cert), APR_SUCCESS);
    assert_true(c->must_staple);
}

static void test_cert_without_issuer_in_chain(void **state)
{
    og_cert_t *c;

    (void)state;
    assert_int_equal(parse(&c, leaf.cert, NULL), APR_SUCCESS);
    assert_null(c->issuer);
}

static void test_cert_garbage_is_an_error(void **state)
{
    og_cert_t *c;
    const char *err = NULL;

    (void)state;
    assert_int_not_equal(og_cert_from_pem(&c, &err, pool, "not a pem", 9, NULL), APR_SUCCESS);
    assert_non_null(err);
    assert_null(c);
}

/* Two certificates of one CA primed with the same chain text share one
 * parsed issuer; a different chain text is parsed on its own; a chain
 * without the issuer gives none, shared or not. */
static void test_cert_chains_are_parsed_once_and_shared(void **state)
{
    og_issuers_t *shared = og_issuers_make(pool);
    size_t l1, l2, l3;
    char *p1 = tp_pem_chain(leaf.cert, ca.cert, &l1);
    char *p2 = tp_pem_chain(nourl.cert, ca.cert, &l2);
    char *p3 = tp_pem_chain(muststaple.cert, NULL, &l3);
    og_cert_t *a, *b, *c, *plain;
    const char *err;

    (void)state;
    assert_int_equal(og_cert_from_pem(&a, &err, pool, p1, l1, shared), APR_SUCCESS);
    assert_int_equal(og_cert_from_pem(&b, &err, pool, p2, l2, shared), APR_SUCCESS);
    assert_int_equal(og_cert_from_pem(&c, &err, pool, p3, l3, shared), APR_SUCCESS);
    assert_int_equal(og_cert_from_pem(&plain, &err, pool, p1, l1, NULL), APR_SUCCESS);
    assert_non_null(a->issuer);
    assert_ptr_equal(a->issuer, b->issuer);          /* one object for both */
    assert_ptr_not_equal(a->issuer, plain->issuer);  /* unshared: a copy of its own */
    assert_int_equal(X509_cmp(a->issuer, plain->issuer), 0);
    assert_null(c->issuer);
    assert_memory_not_equal(a->id, b->id, OG_CERT_ID_LEN);
    free(p1);
    free(p2);
    free(p3);
}

/* Two CAs of one name (a re-keyed intermediate): the issuer is the one whose
 * key identifier the leaf names, wherever it is in the chain. */
static void test_cert_issuer_is_chosen_by_key_identifier(void **state)
{
    tp_ident_t rekeyed = tp_make("Test CA", NULL, 2, (tp_opts_t){ .is_ca = 1 });
    size_t l1, l2;
    char *p1 = tp_pem_chain(leaf.cert, rekeyed.cert, &l1);
    char *p2 = tp_pem_chain(ca.cert, NULL, &l2);
    char *pem = malloc(l1 + l2 + 1);
    og_cert_t *c, *only;
    const char *err;

    (void)state;
    memcpy(pem, p1, l1);
    memcpy(pem + l1, p2, l2 + 1);
    assert_int_equal(og_cert_from_pem(&c, &err, pool, pem, l1 + l2, NULL), APR_SUCCESS);
    assert_non_null(c->issuer);
    assert_int_equal(X509_cmp(c->issuer, ca.cert), 0);
    /* the re-keyed CA alone: same name, other key: not the issuer */
    assert_int_equal(og_cert_from_pem(&only, &err, pool, p1, l1, NULL), APR_SUCCESS);
    assert_null(only->issuer);
    free(p1);
    free(p2);
    free(pem);
    tp_free(&rekeyed);
}

/* og_cert_read (the -t check's reader): the issuer from a chain file when the
 * certificate file has none; self-signed said only of a self-signed leaf. */
static void test_cert_read_chain_file_and_self_signed(void **state)
{
    tp_ident_t self = tp_make("self.localhost", NULL, 7, (tp_opts_t){ 0 });
    char path[] = "/tmp/test_og_cert_chain_XXXXXX";
    int fd = mkstemp(path);
    size_t lc, ll, ls;
    char *chain = tp_pem_chain(ca.cert, NULL, &lc);
    char *alone = tp_pem_chain(leaf.cert, NULL, &ll);
    char *selfpem = tp_pem_chain(self.cert, NULL, &ls);
    og_cert_t *c;
    const char *err;
    int is_self = -1;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, chain, lc), (ssize_t)lc);
    close(fd);
    assert_int_equal(og_cert_read(&c, &is_self, &err, pool, alone, ll, NULL, NULL, NULL),
                     APR_SUCCESS);
    assert_null(c->issuer);
    assert_int_equal(is_self, 0);
    assert_int_equal(og_cert_read(&c, &is_self, &err, pool, alone, ll, NULL, "/nonexistent",
                                  path), APR_SUCCESS);
    assert_non_null(c->issuer);
    assert_int_equal(X509_cmp(c->issuer, ca.cert), 0);
    assert_int_equal(og_cert_read(&c, &is_self, &err, pool, selfpem, ls, NULL, NULL, NULL),
                     APR_SUCCESS);
    assert_int_equal(is_self, 1);
    assert_string_equal(c->subject, "CN=self.localhost");
    unlink(path);
    free(chain);
    free(alone);
    free(selfpem);
    tp_free(&self);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_id_is_sha1_of_der),
        cmocka_unit_test(test_cert_reads_issuer_url_serial_subject),
        cmocka_unit_test(test_cert_without_aia_has_no_url),
        cmocka_unit_test(test_cert_must_staple_is_detected),
        cmocka_unit_test(test_cert_without_issuer_in_chain),
        cmocka_unit_test(test_cert_garbage_is_an_error),
        cmocka_unit_test(test_cert_chains_are_parsed_once_and_shared),
        cmocka_unit_test(test_cert_issuer_is_chosen_by_key_identifier),
        cmocka_unit_test(test_cert_read_chain_file_and_self_signed),
    };
    int rv;

    apr_initialize();
    rv = cmocka_run_group_tests_name("og_cert", tests, setup, teardown);
    apr_terminate();
    return rv;
}

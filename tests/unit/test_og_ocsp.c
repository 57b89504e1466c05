/* test_og_ocsp.c: request building and every verification outcome of
 * og_ocsp_verify: good, revoked, unknown, delegated signer, wrong CertID,
 * wrong signers (plain leaf, self-signed look-alike, other CA), times,
 * non-successful status, garbage, oversize, padding, SHA-256 CertIDs, and
 * the max_validity bound on how long a response counts as valid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>

#include "og_ocsp.h"
#include "og_test_pki.h"

static apr_pool_t *pool;
static tp_ident_t ca, otherca, responder, plainleaf, lookalike, leaf, leaf2;
static og_cert_t *cert;

static int setup(void **state)
{
    size_t len;
    char *pem;
    const char *err;

    (void)state;
    apr_pool_create(&pool, NULL);
    ca = tp_make("Test CA", NULL, 1, (tp_opts_t){ .is_ca = 1 });
    otherca = tp_make("Other CA", NULL, 2, (tp_opts_t){ .is_ca = 1 });
    responder = tp_make("Test OCSP Responder", &ca, 3, (tp_opts_t){ .ocsp_signing = 1 });
    plainleaf = tp_make("plain.localhost", &ca, 4, (tp_opts_t){ 0 });
    lookalike = tp_make("Test OCSP Responder", NULL, 3, (tp_opts_t){ .ocsp_signing = 1 });
    leaf = tp_make("good.localhost", &ca, 10, (tp_opts_t){ .ocsp_url = "http://127.0.0.1:9/" });
    leaf2 = tp_make("other.localhost", &ca, 11, (tp_opts_t){ .ocsp_url = "http://127.0.0.1:9/" });
    pem = tp_pem_chain(leaf.cert, ca.cert, &len);
    assert_int_equal(og_cert_from_pem(&cert, &err, pool, pem, len, NULL), APR_SUCCESS);
    free(pem);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tp_free(&ca); tp_free(&otherca); tp_free(&responder); tp_free(&plainleaf);
    tp_free(&lookalike); tp_free(&leaf); tp_free(&leaf2);
    apr_pool_destroy(pool);
    return 0;
}

static og_verdict_e verify_with(X509 *for_cert, const tp_ident_t *signer,
                                tp_resp_opts_t o, og_ocsp_result_t *res)
{
    int len;
    unsigned char *der = tp_response(for_cert, ca.cert, signer, &o, &len);

    assert_non_null(der); /* the test PKI made its response */
    og_ocsp_verify(res, cert, der, (apr_size_t)len, apr_time_now(), 0);
    OPENSSL_free(der);
    return res->verdict;
}

static const tp_resp_opts_t good_opts = { V_OCSP_CERTSTATUS_GOOD, -60, 3600, 0, 0, NULL };

static void test_request_is_der_with_our_certid(void **state)
{
    unsigned char *der;
    apr_size_t len;
    const unsigned char *q;
    OCSP_REQUEST *req;
    OCSP_CERTID *ours = OCSP_cert_to_id(EVP_sha1(), leaf.cert, ca.cert);

    (void)state;
    assert_int_equal(og_ocsp_request_der(&der, &len, pool, cert), APR_SUCCESS);
    q = der;
    req = d2i_OCSP_REQUEST(NULL, &q, (long)len);
    assert_non_null(req);
    assert_int_equal(OCSP_request_onereq_count(req), 1);
    assert_int_equal(OCSP_id_cmp(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0)), ours), 0);
    /* RFC 5019: no nonce, so a request fits a GET and caches */
    assert_int_equal(OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1), -1);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(ours);
}

static void test_good_response_signed_by_issuer_verifies(void **state)
{
    og_ocsp_result_t res;

    (void)state;
    assert_int_equal(verify_with(leaf.cert, &ca, good_opts, &res), OG_VERDICT_OK);
    assert_int_equal(res.cert_status, OG_STATUS_GOOD);
    assert_true(res.has_next_update);
    assert_true(res.next_update > res.this_update);
}

static void test_good_response_signed_by_delegate_verifies(void **state)
{
    og_ocsp_result_t res;

    (void)state;
    assert_int_equal(verify_with(leaf.cert, &responder, good_opts, &res), OG_VERDICT_OK);
    assert_int_equal(res.cert_status, OG_STATUS_GOOD);
}

static void test_revoked_response_verifies_as_revoked(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.status = V_OCSP_CERTSTATUS_REVOKED;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
    assert_int_equal(res.cert_status, OG_STATUS_REVOKED);
    assert_int_equal(res.revocation_reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    assert_true(res.revoked_at > 0);
}

static void test_unknown_response_verifies_as_unknown(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.status = V_OCSP_CERTSTATUS_UNKNOWN;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
    assert_int_equal(res.cert_status, OG_STATUS_UNKNOWN);
}

static void test_response_for_other_cert_is_rejected(void **state)
{
    og_ocsp_result_t res;

    (void)state;
    assert_int_equal(verify_with(leaf2.cert, &responder, good_opts, &res), OG_VERDICT_WRONG_CERT);
}

static void test_plain_leaf_signer_is_rejected(void **state)
{
    og_ocsp_result_t res;

    (void)state;
    assert_int_equal(verify_with(leaf.cert, &plainleaf, good_opts, &res), OG_VERDICT_BAD_SIGNER);
    assert_non_null(strstr(res.detail, "OCSPSigning"));
}

static void test_selfsigned_lookalike_signer_is_rejected(void **state)
{
    og_ocsp_result_t res;

    (void)state;
    assert_int_equal(verify_with(leaf.cert, &lookalike, good_opts, &res), OG_VERDICT_BAD_SIGNER);
}

static void test_other_ca_signer_is_rejected(void **state)
{
    og_ocsp_result_t res;

    (void)state;
    assert_int_not_equal(verify_with(leaf.cert, &otherca, good_opts, &res), OG_VERDICT_OK);
}

static void test_expired_response_is_rejected(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.this_off = -2 * 86400;
    o.next_off = -86400;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_EXPIRED);
}

static void test_future_this_update_is_rejected(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.this_off = 86400;
    o.next_off = 2 * 86400;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_FUTURE);
}

static void test_small_clock_skew_is_accepted(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.this_off = 120; /* two minutes ahead: within the 5 minute skew */
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
}

static void test_short_validity_is_accepted(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.this_off = 0;
    o.next_off = 120;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
}

static void test_next_update_past_not_after_is_accepted(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.next_off = 200L * 86400; /* the leaf expires in 90 days */
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
}

static void test_no_next_update_counts_twelve_hours(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.no_next = 1;
    o.this_off = -3600;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
    assert_false(res.has_next_update);
    assert_true(res.next_update == res.this_update + apr_time_from_sec(12 * 3600));
    o.this_off = -13 * 3600;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_EXPIRED);
}

static void test_sha256_certid_matches(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.id_md = EVP_sha256();
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
}

static void test_padded_response_finds_ours_or_hits_size_cap(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;

    (void)state;
    o.padding = 5;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_OK);
    o.padding = 2000;
    assert_int_equal(verify_with(leaf.cert, &responder, o, &res), OG_VERDICT_TOO_LARGE);
}

static void test_non_successful_statuses_are_rejected(void **state)
{
    static const int statuses[] = { 1, 2, 3, 5, 6 };
    og_ocsp_result_t res;
    unsigned char der[5] = { 0x30, 0x03, 0x0a, 0x01, 0x00 };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        der[4] = (unsigned char)statuses[i];
        og_ocsp_verify(&res, cert, der, sizeof(der), apr_time_now(), 0);
        assert_int_equal(res.verdict, OG_VERDICT_NOT_SUCCESSFUL);
        assert_int_equal(res.response_status, statuses[i]);
    }
}

static void test_garbage_and_trailing_bytes_are_malformed(void **state)
{
    og_ocsp_result_t res;
    unsigned char junk[64];
    int len;
    unsigned char *der, *padded;
    tp_resp_opts_t o = good_opts;

    (void)state;
    memset(junk, 0x5a, sizeof(junk));
    og_ocsp_verify(&res, cert, junk, sizeof(junk), apr_time_now(), 0);
    assert_int_equal(res.verdict, OG_VERDICT_MALFORMED);
    der = tp_response(leaf.cert, ca.cert, &responder, &o, &len);
    assert_non_null(der);
    padded = malloc((size_t)len + 1);
    memcpy(padded, der, (size_t)len);
    padded[len] = 0;
    og_ocsp_verify(&res, cert, padded, (apr_size_t)len + 1, apr_time_now(), 0);
    assert_int_equal(res.verdict, OG_VERDICT_MALFORMED);
    free(padded);
    OPENSSL_free(der);
}

#define DAYS(n) apr_time_from_sec((n) * 86400L)

static void test_max_validity_caps_next_update_and_keeps_the_claimed_one(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;
    unsigned char *der;
    int len;

    (void)state;
    o.this_off = 0;
    o.next_off = 20L * 86400;
    der = tp_response(leaf.cert, ca.cert, &responder, &o, &len);
    assert_non_null(der);
    assert_int_equal(og_ocsp_verify(&res, cert, der, (apr_size_t)len, apr_time_now(),
                                    DAYS(10)), APR_SUCCESS);
    OPENSSL_free(der);
    assert_int_equal(res.verdict, OG_VERDICT_OK);
    assert_true(res.validity_capped);
    assert_true(res.next_update == res.this_update + DAYS(10));
    assert_true(res.has_next_update);
    /* the claim as the responder made it (thisUpdate and nextUpdate are
     * stamped one after the other, so a second may tick in between) */
    assert_true(res.next_update_claimed >= res.this_update + DAYS(20));
    assert_true(res.next_update_claimed <= res.this_update + DAYS(20) + apr_time_from_sec(1));
}

static void test_max_validity_zero_means_no_cap(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;
    unsigned char *der;
    int len;

    (void)state;
    o.this_off = 0;
    o.next_off = 20L * 86400;
    der = tp_response(leaf.cert, ca.cert, &responder, &o, &len);
    assert_non_null(der);
    assert_int_equal(og_ocsp_verify(&res, cert, der, (apr_size_t)len, apr_time_now(), 0),
                     APR_SUCCESS);
    assert_false(res.validity_capped);
    assert_true(res.next_update == res.next_update_claimed);
    assert_true(res.next_update >= res.this_update + DAYS(20));
    /* a bound longer than the response's own validity changes nothing */
    assert_int_equal(og_ocsp_verify(&res, cert, der, (apr_size_t)len, apr_time_now(),
                                    DAYS(30)), APR_SUCCESS);
    OPENSSL_free(der);
    assert_false(res.validity_capped);
    assert_true(res.next_update == res.next_update_claimed);
}

static void test_response_older_than_max_validity_is_expired(void **state)
{
    og_ocsp_result_t res;
    tp_resp_opts_t o = good_opts;
    unsigned char *der;
    int len;

    (void)state;
    o.this_off = -11L * 86400;
    o.next_off = 5L * 86400;
    der = tp_response(leaf.cert, ca.cert, &responder, &o, &len);
    assert_non_null(der);
    /* valid by its own nextUpdate... */
    assert_int_equal(og_ocsp_verify(&res, cert, der, (apr_size_t)len, apr_time_now(), 0),
                     APR_SUCCESS);
    /* ...but past thisUpdate + 10 days */
    assert_int_not_equal(og_ocsp_verify(&res, cert, der, (apr_size_t)len, apr_time_now(),
                                        DAYS(10)), APR_SUCCESS);
    OPENSSL_free(der);
    assert_int_equal(res.verdict, OG_VERDICT_EXPIRED);
    assert_true(res.validity_capped);
    assert_true(res.next_update == res.this_update + DAYS(10));
    assert_non_null(strstr(res.detail, "OCSPGuardMaxValidity"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_is_der_with_our_certid),
        cmocka_unit_test(test_good_response_signed_by_issuer_verifies),
        cmocka_unit_test(test_good_response_signed_by_delegate_verifies),
        cmocka_unit_test(test_revoked_response_verifies_as_revoked),
        cmocka_unit_test(test_unknown_response_verifies_as_unknown),
        cmocka_unit_test(test_response_for_other_cert_is_rejected),
        cmocka_unit_test(test_plain_leaf_signer_is_rejected),
        cmocka_unit_test(test_selfsigned_lookalike_signer_is_rejected),
        cmocka_unit_test(test_other_ca_signer_is_rejected),
        cmocka_unit_test(test_expired_response_is_rejected),
        cmocka_unit_test(test_future_this_update_is_rejected),
        cmocka_unit_test(test_small_clock_skew_is_accepted),
        cmocka_unit_test(test_short_validity_is_accepted),
        cmocka_unit_test(test_next_update_past_not_after_is_accepted),
        cmocka_unit_test(test_no_next_update_counts_twelve_hours),
        cmocka_unit_test(test_sha256_certid_matches),
        cmocka_unit_test(test_padded_response_finds_ours_or_hits_size_cap),
        cmocka_unit_test(test_non_successful_statuses_are_rejected),
        cmocka_unit_test(test_garbage_and_trailing_bytes_are_malformed),
        cmocka_unit_test(test_max_validity_caps_next_update_and_keeps_the_claimed_one),
        cmocka_unit_test(test_max_validity_zero_means_no_cap),
        cmocka_unit_test(test_response_older_than_max_validity_is_expired),
    };
    int rv;

    apr_initialize();
    rv = cmocka_run_group_tests_name("og_ocsp", tests, setup, teardown);
    apr_terminate();
    return rv;
}

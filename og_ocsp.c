/* og_ocsp.c: build OCSP requests and verify responses against our certificate
 * and its issuer: status, signer (issuer or delegated OCSPSigning certificate
 * issued by it), signature, CertID with each SingleResponse's own hash, times.
 * Core file: APR and OpenSSL only, never an httpd header. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdarg.h>

#include <apr_strings.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>

#include "og_ocsp.h"

static og_verdict_e fail(og_ocsp_result_t *res, og_verdict_e v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static og_verdict_e check_signer(og_ocsp_result_t *res, OCSP_BASICRESP *bs,
                                 const og_cert_t *cert, apr_time_t now);
static og_verdict_e find_single(og_ocsp_result_t *res, OCSP_BASICRESP *bs,
                                const og_cert_t *cert, OCSP_SINGLERESP **psingle);
static og_verdict_e check_times(og_ocsp_result_t *res, OCSP_SINGLERESP *single,
                                apr_time_t now, apr_interval_time_t max_validity);

const char *og_ocsp_verdict_str(og_verdict_e v)
{
    static const char *const text[] = {
        [OG_VERDICT_OK] = "ok", [OG_VERDICT_MALFORMED] = "malformed",
        [OG_VERDICT_TOO_LARGE] = "too large", [OG_VERDICT_NOT_SUCCESSFUL] = "not successful",
        [OG_VERDICT_NOT_BASIC] = "not a basic response",
        [OG_VERDICT_NO_SIGNER] = "signer not found",
        [OG_VERDICT_BAD_SIGNER] = "signer not authorized",
        [OG_VERDICT_BAD_SIGNATURE] = "bad signature",
        [OG_VERDICT_WRONG_CERT] = "response for another certificate",
        [OG_VERDICT_FUTURE] = "thisUpdate in the future", [OG_VERDICT_EXPIRED] = "expired",
    };

    return (unsigned)v < sizeof(text) / sizeof(text[0]) ? text[v] : "?";
}

const char *og_ocsp_status_str(og_cert_status_e s)
{
    static const char *const text[] = {
        [OG_STATUS_NONE] = "none", [OG_STATUS_GOOD] = "good",
        [OG_STATUS_REVOKED] = "revoked", [OG_STATUS_UNKNOWN] = "unknown",
    };

    return (unsigned)s < sizeof(text) / sizeof(text[0]) ? text[s] : "?";
}

static og_verdict_e fail(og_ocsp_result_t *res, og_verdict_e v, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    res->verdict = v;
    ERR_clear_error();
    return v;
}

apr_status_t og_ocsp_request_der(unsigned char **pder, apr_size_t *plen,
                                 apr_pool_t *p, const og_cert_t *cert)
{
    OCSP_REQUEST *req = NULL;
    OCSP_CERTID *id = NULL;
    unsigned char *der = NULL, *out;
    int len;
    apr_status_t rv = APR_EGENERAL;

    *pder = NULL;
    *plen = 0;
    if (!cert->issuer) {
        return APR_EINVAL;
    }
    if (!(req = OCSP_REQUEST_new())
        || !(id = og_cert_id(cert, EVP_sha1()))
        || !OCSP_request_add0_id(req, id)) {
        OCSP_CERTID_free(id);
        goto cleanup;
    }
    /* id now owned by req */
    len = i2d_OCSP_REQUEST(req, &der);
    if (len <= 0) {
        goto cleanup;
    }
    out = apr_pmemdup(p, der, (apr_size_t)len);
    *pder = out;
    *plen = (apr_size_t)len;
    rv = APR_SUCCESS;

cleanup:
    OPENSSL_free(der);
    OCSP_REQUEST_free(req);
    ERR_clear_error();
    return rv;
}

/* The signer must be the issuer itself, or a certificate issued (and signed)
 * by the issuer that carries id-kp-OCSPSigning and is currently valid. */
static og_verdict_e check_signer(og_ocsp_result_t *res, OCSP_BASICRESP *bs,
                                 const og_cert_t *cert, apr_time_t now)
{
    time_t tnow = (time_t)apr_time_sec(now);
    STACK_OF(X509) *extra = sk_X509_new_null();
    X509 *signer = NULL;
    EVP_PKEY *ikey = X509_get0_pubkey(cert->issuer);
    og_verdict_e v = OG_VERDICT_OK;
    const char *what = "issuer";

    if (!extra || !sk_X509_push(extra, cert->issuer)) {
        v = fail(res, OG_VERDICT_NO_SIGNER, "out of memory");
        goto cleanup;
    }
    if (OCSP_resp_get0_signer(bs, &signer, extra) != 1 || !signer) {
        v = fail(res, OG_VERDICT_NO_SIGNER,
                 "the responder ID matches neither the issuer nor an embedded certificate");
        goto cleanup;
    }
    if (X509_cmp(signer, cert->issuer) != 0) {
        what = "delegated responder";
        if (X509_check_issued(cert->issuer, signer) != X509_V_OK
            || !ikey || X509_verify(signer, ikey) != 1) {
            v = fail(res, OG_VERDICT_BAD_SIGNER,
                     "the signing certificate was not issued by the certificate's issuer");
            goto cleanup;
        }
        if (!(X509_get_extension_flags(signer) & EXFLAG_XKUSAGE)
            || !(X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN)) {
            v = fail(res, OG_VERDICT_BAD_SIGNER,
                     "the signing certificate lacks extended key usage OCSPSigning");
            goto cleanup;
        }
        /* X509_cmp_time: -1 before, 1 after, 0 when the time is unreadable */
        if (X509_cmp_time(X509_get0_notBefore(signer), &tnow) != -1
            || X509_cmp_time(X509_get0_notAfter(signer), &tnow) != 1) {
            v = fail(res, OG_VERDICT_BAD_SIGNER,
                     "the delegated responder certificate is not valid now");
            goto cleanup;
        }
    }
    /* Signature with the signer's key only: the chain was checked above. */
    sk_X509_zero(extra);
    if (!sk_X509_push(extra, signer)
        || OCSP_basic_verify(bs, extra, NULL,
                             OCSP_NOVERIFY | OCSP_NOCHECKS | OCSP_NOEXPLICIT
                             | OCSP_NOINTERN) != 1) {
        v = fail(res, OG_VERDICT_BAD_SIGNATURE,
                 "the signature does not verify with the %s's key", what);
        goto cleanup;
    }

cleanup:
    sk_X509_free(extra);
    return v;
}

/* Compare our CertID, rebuilt with each SingleResponse's own hash algorithm. */
static og_verdict_e find_single(og_ocsp_result_t *res, OCSP_BASICRESP *bs,
                                const og_cert_t *cert, OCSP_SINGLERESP **psingle)
{
    int i, n = OCSP_resp_count(bs);

    *psingle = NULL;
    for (i = 0; i < n; i++) {
        OCSP_SINGLERESP *single = OCSP_resp_get0(bs, i);
        const OCSP_CERTID *theirs = OCSP_SINGLERESP_get0_id(single);
        ASN1_OBJECT *md_oid = NULL;
        const EVP_MD *md;
        OCSP_CERTID *ours;
        int same;

        if (!theirs
            || !OCSP_id_get0_info(NULL, &md_oid, NULL, NULL, (OCSP_CERTID *)theirs)
            || !(md = EVP_get_digestbyobj(md_oid))) {
            continue;
        }
        ours = og_cert_id(cert, md);
        same = ours && OCSP_id_cmp(ours, theirs) == 0;
        OCSP_CERTID_free(ours);
        if (same) {
            *psingle = single;
            return OG_VERDICT_OK;
        }
    }
    return fail(res, OG_VERDICT_WRONG_CERT,
                "none of its %d SingleResponse(s) is for serial %s", n,
                cert->serial_hex);
}

static og_verdict_e check_times(og_ocsp_result_t *res, OCSP_SINGLERESP *single,
                                apr_time_t now, apr_interval_time_t max_validity)
{
    int status, reason = -1;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;

    status = OCSP_single_get0_status(single, &reason, &rev, &thisupd, &nextupd);
    switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:    res->cert_status = OG_STATUS_GOOD; break;
    case V_OCSP_CERTSTATUS_REVOKED: res->cert_status = OG_STATUS_REVOKED; break;
    default:                        res->cert_status = OG_STATUS_UNKNOWN; break;
    }
    res->revocation_reason = reason;
    res->revoked_at = rev ? og_asn1_time_to_apr(rev) : 0;
    res->this_update = og_asn1_time_to_apr(thisupd);
    if (!res->this_update) {
        return fail(res, OG_VERDICT_MALFORMED, "thisUpdate cannot be read");
    }
    res->has_next_update = nextupd != NULL;
    if (nextupd) {
        res->next_update = og_asn1_time_to_apr(nextupd);
        if (!res->next_update || res->next_update < res->this_update) {
            return fail(res, OG_VERDICT_MALFORMED, "nextUpdate is unreadable or before thisUpdate");
        }
    }
    else {
        res->next_update = res->this_update + OG_OCSP_NO_NEXT_VALIDITY;
    }
    res->next_update_claimed = nextupd ? res->next_update : 0;
    /* Both times come from 4-digit-year ASN.1 (|t| < 2^58 us): no overflow. */
    if (max_validity > 0 && res->next_update - res->this_update > max_validity) {
        res->next_update = res->this_update + max_validity;
        res->validity_capped = 1;
    }
    if (res->this_update > now + OG_OCSP_SKEW) {
        return fail(res, OG_VERDICT_FUTURE, "thisUpdate is %" APR_TIME_T_FMT
                    " s in the future", apr_time_sec(res->this_update - now));
    }
    if (res->next_update <= now) {
        return fail(res, OG_VERDICT_EXPIRED, "%s passed %" APR_TIME_T_FMT " s ago",
                    res->validity_capped ? "thisUpdate + OCSPGuardMaxValidity"
                    : nextupd ? "nextUpdate" : "thisUpdate + 12h (no nextUpdate)",
                    apr_time_sec(now - res->next_update));
    }
    return OG_VERDICT_OK;
}

apr_status_t og_ocsp_verify(og_ocsp_result_t *res, const og_cert_t *cert,
                            const unsigned char *der, apr_size_t len,
                            apr_time_t now, apr_interval_time_t max_validity)
{
    const unsigned char *q = der;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_SINGLERESP *single = NULL;

    memset(res, 0, sizeof(*res));
    res->revocation_reason = -1;
    res->response_status = -1;
    if (!cert->issuer) {
        fail(res, OG_VERDICT_NO_SIGNER, "no issuer certificate to verify against");
        goto cleanup;
    }
    if (len > OG_OCSP_MAX_STAPLE) {
        fail(res, OG_VERDICT_TOO_LARGE, "%" APR_SIZE_T_FMT " bytes, above the %d byte limit "
             "a TLS 1.2 client accepts", len, OG_OCSP_MAX_STAPLE);
        goto cleanup;
    }
    resp = d2i_OCSP_RESPONSE(NULL, &q, (long)len);
    if (!resp || q != der + len) {
        fail(res, OG_VERDICT_MALFORMED, "not a DER OCSPResponse (%" APR_SIZE_T_FMT " bytes)", len);
        goto cleanup;
    }
    res->response_status = OCSP_response_status(resp);
    if (res->response_status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        fail(res, OG_VERDICT_NOT_SUCCESSFUL, "responseStatus %s (%d)",
             OCSP_response_status_str(res->response_status), res->response_status);
        goto cleanup;
    }
    if (!(bs = OCSP_response_get1_basic(resp))) {
        fail(res, OG_VERDICT_NOT_BASIC, "no basic OCSP response inside");
        goto cleanup;
    }
    if (check_signer(res, bs, cert, now) != OG_VERDICT_OK
        || find_single(res, bs, cert, &single) != OG_VERDICT_OK
        || check_times(res, single, now, max_validity) != OG_VERDICT_OK) {
        goto cleanup;
    }
    res->verdict = OG_VERDICT_OK;

cleanup:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return res->verdict == OG_VERDICT_OK ? APR_SUCCESS : APR_EGENERAL;
}

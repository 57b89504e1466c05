/* og_ocsp.h: OCSP request building and response verification.
 * Core (APR and OpenSSL only). Verification is strict and step by step: one
 * verdict per failed step, with a short detail for the log. Nothing here
 * touches the network, the cache or httpd. */
#ifndef OG_OCSP_H
#define OG_OCSP_H

#include <apr_pools.h>
#include <apr_time.h>

#include "og_cert.h"

/* Never staple more than this (OpenSSL's TLS 1.2 client rejects a
 * CertificateStatus message above 16 KiB; keep room for its header). */
#define OG_OCSP_MAX_STAPLE   (16 * 1024 - 16)
/* Clock skew accepted on thisUpdate. */
#define OG_OCSP_SKEW         apr_time_from_sec(5 * 60)
/* Validity assumed for a response without nextUpdate. */
#define OG_OCSP_NO_NEXT_VALIDITY apr_time_from_sec(12 * 3600)

typedef enum {
    OG_VERDICT_OK = 0,
    OG_VERDICT_MALFORMED,       /* not a DER OCSPResponse */
    OG_VERDICT_TOO_LARGE,       /* above OG_OCSP_MAX_STAPLE */
    OG_VERDICT_NOT_SUCCESSFUL,  /* responseStatus != successful (tryLater...) */
    OG_VERDICT_NOT_BASIC,       /* no id-pkix-ocsp-basic response inside */
    OG_VERDICT_NO_SIGNER,       /* signer certificate not found */
    OG_VERDICT_BAD_SIGNER,      /* signer neither issuer nor its delegate */
    OG_VERDICT_BAD_SIGNATURE,   /* signature does not verify */
    OG_VERDICT_WRONG_CERT,      /* no SingleResponse for our CertID */
    OG_VERDICT_FUTURE,          /* thisUpdate in the future beyond skew */
    OG_VERDICT_EXPIRED          /* nextUpdate (or thisUpdate+12h) passed */
} og_verdict_e;

typedef enum {
    OG_STATUS_NONE = 0,         /* no response yet */
    OG_STATUS_GOOD,
    OG_STATUS_REVOKED,
    OG_STATUS_UNKNOWN
} og_cert_status_e;

typedef struct og_ocsp_result_t {
    og_verdict_e verdict;
    int response_status;        /* OCSPResponseStatus, when parsed */
    og_cert_status_e cert_status;
    int revocation_reason;      /* -1 when none */
    apr_time_t revoked_at;
    apr_time_t this_update;
    apr_time_t next_update;     /* effective: thisUpdate+12h when absent, and at
                                 * most thisUpdate + max_validity */
    apr_time_t next_update_claimed; /* as the response says (0: absent) */
    int has_next_update;
    int validity_capped;        /* next_update was cut to thisUpdate + max_validity */
    char detail[256];           /* why, for the log */
} og_ocsp_result_t;

/* Build the DER of an OCSPRequest for cert/issuer (SHA-1 CertID, no nonce:
 * RFC 5019). Allocated from p. */
apr_status_t og_ocsp_request_der(unsigned char **pder, apr_size_t *plen,
                                 apr_pool_t *p, const og_cert_t *cert);

/* Verify a DER response for `cert` at time `now`. A response counts as
 * valid for at most `max_validity` after its thisUpdate (0: no bound;
 * OCSPGuardMaxValidity, CA/B Forum BR 4.9.10). Fills *res; returns
 * APR_SUCCESS only when res->verdict is OG_VERDICT_OK. A verified response
 * may still report revoked or unknown in res->cert_status. */
apr_status_t og_ocsp_verify(og_ocsp_result_t *res, const og_cert_t *cert,
                            const unsigned char *der, apr_size_t len,
                            apr_time_t now, apr_interval_time_t max_validity);

const char *og_ocsp_verdict_str(og_verdict_e v);
const char *og_ocsp_status_str(og_cert_status_e s);

#endif /* OG_OCSP_H */

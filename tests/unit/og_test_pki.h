/* og_test_pki.h: a throwaway PKI built in memory with OpenSSL for the unit
 * tests: CA, delegated responder, hostile signers, leaves, and OCSP
 * responses with any status, times and signer. Test-only, header-only. */
#ifndef OG_TEST_PKI_H
#define OG_TEST_PKI_H

#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

typedef struct tp_ident_t {
    EVP_PKEY *key;
    X509 *cert;
} tp_ident_t;

static inline EVP_PKEY *tp_key(void)
{
    return EVP_EC_gen("P-256");
}

static inline void tp_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext) {
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
}

/* What a test certificate is, by name: tp_make(..., (tp_opts_t){ .is_ca = 1 }). */
typedef struct tp_opts_t {
    int is_ca;                /* basicConstraints CA:TRUE */
    int ocsp_signing;         /* extendedKeyUsage OCSPSigning (a delegated responder) */
    const char *ocsp_url;     /* AIA OCSP URL, or NULL */
    int must_staple;          /* TLS Feature status_request */
} tp_opts_t;

/* Make a certificate for `cn`, signed by `issuer` (NULL: self-signed); key
 * and cert NULL when OpenSSL fails. */
static inline tp_ident_t tp_make(const char *cn, const tp_ident_t *issuer, long serial,
                                 tp_opts_t o)
{
    tp_ident_t id;
    X509_NAME *name;

    id.key = tp_key();
    id.cert = X509_new();
    X509_set_version(id.cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(id.cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(id.cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(id.cert), 90L * 86400);
    name = X509_get_subject_name(id.cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(id.cert, issuer ? X509_get_subject_name(issuer->cert) : name);
    X509_set_pubkey(id.cert, id.key);
    tp_ext(id.cert, issuer ? issuer->cert : NULL, NID_basic_constraints,
           o.is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    tp_ext(id.cert, issuer ? issuer->cert : NULL, NID_subject_key_identifier, "hash");
    if (issuer) {
        tp_ext(id.cert, issuer->cert, NID_authority_key_identifier, "keyid");
    }
    if (o.ocsp_signing) {
        tp_ext(id.cert, issuer ? issuer->cert : NULL, NID_ext_key_usage, "OCSPSigning");
    }
    if (o.ocsp_url) {
        char buf[256];
        snprintf(buf, sizeof(buf), "OCSP;URI:%s", o.ocsp_url);
        tp_ext(id.cert, issuer ? issuer->cert : NULL, NID_info_access, buf);
    }
    if (o.must_staple) {
        tp_ext(id.cert, issuer ? issuer->cert : NULL, NID_tlsfeature, "status_request");
    }
    if (X509_sign(id.cert, issuer ? issuer->key : id.key, EVP_sha256()) <= 0) {
        X509_free(id.cert);
        EVP_PKEY_free(id.key);
        id.cert = NULL;
        id.key = NULL;
    }
    return id;
}

static inline void tp_free(tp_ident_t *id)
{
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
    id->cert = NULL;
    id->key = NULL;
}

/* PEM of cert followed by issuer, as mod_ssl primes it. Caller frees. */
static inline char *tp_pem_chain(X509 *cert, X509 *issuer, size_t *plen)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long len;

    PEM_write_bio_X509(b, cert);
    if (issuer) {
        PEM_write_bio_X509(b, issuer);
    }
    len = BIO_get_mem_data(b, &data);
    out = malloc((size_t)len + 1);
    memcpy(out, data, (size_t)len);
    out[len] = '\0';
    *plen = (size_t)len;
    BIO_free(b);
    return out;
}

typedef struct tp_resp_opts_t {
    int status;          /* V_OCSP_CERTSTATUS_* */
    long this_off;       /* seconds relative to now */
    long next_off;       /* seconds relative to now */
    int no_next;         /* omit nextUpdate */
    int padding;         /* extra SingleResponses for other serials */
    const EVP_MD *id_md; /* CertID hash; NULL: SHA-1 */
} tp_resp_opts_t;

/* A signed OCSP response DER for (cert, issuer), signed by signer; the
 * signer certificate is embedded unless it is the issuer. Caller frees with
 * OPENSSL_free. NULL (and *plen 0) when any OpenSSL step fails. */
static inline unsigned char *tp_response(X509 *cert, X509 *issuer, const tp_ident_t *signer,
                                         const tp_resp_opts_t *o, int *plen)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_RESPONSE *resp = NULL;
    OCSP_CERTID *id = OCSP_cert_to_id(o->id_md ? o->id_md : EVP_sha1(), cert, issuer);
    ASN1_TIME *thisupd = X509_gmtime_adj(NULL, o->this_off);
    ASN1_TIME *nextupd = o->no_next ? NULL : X509_gmtime_adj(NULL, o->next_off);
    ASN1_TIME *revtime = X509_gmtime_adj(NULL, -86400);
    unsigned char *der = NULL;
    STACK_OF(X509) *certs = sk_X509_new_null();
    int i, ok = bs && id && thisupd && revtime && certs && (o->no_next || nextupd);
    int delegated = X509_cmp(signer->cert, issuer) != 0;

    for (i = 0; ok && i < o->padding; i++) {
        ASN1_INTEGER *serial = ASN1_INTEGER_new();
        OCSP_CERTID *other = NULL;

        ok = serial && ASN1_INTEGER_set(serial, 100000 + i)
             && (other = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(issuer),
                                          X509_get0_pubkey_bitstr(issuer), serial))
             && OCSP_basic_add1_status(bs, other, V_OCSP_CERTSTATUS_GOOD, 0, NULL, thisupd,
                                       nextupd);
        OCSP_CERTID_free(other);
        ASN1_INTEGER_free(serial);
    }
    ok = ok && OCSP_basic_add1_status(bs, id, o->status,
                                      o->status == V_OCSP_CERTSTATUS_REVOKED
                                      ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : 0,
                                      o->status == V_OCSP_CERTSTATUS_REVOKED ? revtime : NULL,
                                      thisupd, nextupd);
    ok = ok && (!delegated || sk_X509_push(certs, signer->cert))
         && OCSP_basic_sign(bs, signer->cert, signer->key, EVP_sha256(), certs,
                            delegated ? 0 : OCSP_NOCERTS) == 1
         && (resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs))
         && (*plen = i2d_OCSP_RESPONSE(resp, &der)) > 0;
    if (!ok) {
        OPENSSL_free(der);
        der = NULL;
        *plen = 0;
    }
    OCSP_RESPONSE_free(resp);
    OCSP_BASICRESP_free(bs);
    OCSP_CERTID_free(id);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    ASN1_TIME_free(revtime);
    sk_X509_free(certs);
    return der;
}

#endif /* OG_TEST_PKI_H */

/* og_cert.h: what the module knows of one certificate and its issuer.
 * Core (APR and OpenSSL only): parses the PEM that mod_ssl primes us with
 * (certificate first, then its chain), computes the id mod_ssl uses (SHA-1 of
 * the certificate's DER), and reads the AIA OCSP URL and the Must-Staple flag. */
#ifndef OG_CERT_H
#define OG_CERT_H

#include <apr_pools.h>
#include <apr_time.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/ocsp.h>

#include "og_fmt.h"

#define OG_CERT_ID_LEN 20

typedef struct og_cert_t {
    /* the parsed certificate itself is not kept (mod_ssl holds its own): the
     * CertID needs only its issuer's name and its serial, with the issuer */
    X509_NAME *issuer_dn;       /* owned, freed by a pool cleanup */
    ASN1_INTEGER *serial;       /* owned, freed by a pool cleanup */
    X509 *issuer;               /* a reference (shared through og_issuers), NULL
                                 * when the chain has no issuer */
    unsigned char id[OG_CERT_ID_LEN];
    const char *id_hex;         /* 40 lowercase hex digits */
    const char *subject;        /* RFC 2253 one-line subject */
    const char *issuer_name;    /* subject of the issuer (from the certificate) */
    const char *serial_hex;     /* uppercase hex, as openssl prints it */
    const char *ocsp_url;       /* first AIA OCSP URL, or NULL */
    int must_staple;            /* TLS Feature status_request present */
    apr_time_t not_after;
} og_cert_t;

/* Chains already parsed, by their PEM text: thousands of certificates from
 * one CA share one parsed issuer (memory, and startup time). */
typedef struct og_issuers_t og_issuers_t;
og_issuers_t *og_issuers_make(apr_pool_t *p);

/* The issuer of a certificate with this issuer name and authority key
 * identifier (may be NULL) among the certificates of `pem` (PEM text, parsed
 * once per distinct text), or NULL; the reference stays the cache's. */
X509 *og_issuers_in_pem(og_issuers_t *is, const char *pem, apr_size_t len,
                        const X509_NAME *name, const AUTHORITY_KEYID *akid);

/* The same for the certificates of a file (a chain or CA bundle, at most
 * 1000 of them, read once per path); NULL when unreadable or not found. */
X509 *og_issuers_in_file(og_issuers_t *is, const char *path, const X509_NAME *name,
                         const AUTHORITY_KEYID *akid);

/* Parse `pem` (certificate, then chain). The issuer is the first chain
 * certificate that issued the leaf; with `shared` (may be NULL), a chain
 * seen before is not parsed again and its issuer is shared. On error
 * returns APR_EINVAL and a reason in *perr (allocated from p). */
apr_status_t og_cert_from_pem(og_cert_t **pcert, const char **perr,
                              apr_pool_t *p, const char *pem, apr_size_t len,
                              og_issuers_t *shared);

/* og_cert_from_pem for a certificate file's text: the issuer is looked for
 * after the leaf, then in chain_file, then in ca_file (either may be NULL);
 * with pself, *pself says whether the leaf is self-signed. */
apr_status_t og_cert_read(og_cert_t **pcert, int *pself, const char **perr, apr_pool_t *p,
                          const char *pem, apr_size_t len, og_issuers_t *shared,
                          const char *chain_file, const char *ca_file);

/* The CertID of the certificate for digest md (the caller frees it), or
 * NULL without an issuer. */
OCSP_CERTID *og_cert_id(const og_cert_t *c, const EVP_MD *md);

/* Convert an ASN.1 time to apr_time_t; 0 when unparsable. */
apr_time_t og_asn1_time_to_apr(const ASN1_TIME *t);

#endif /* OG_CERT_H */

/* og_cert.c: parse a primed certificate and its issuer; extract the facts
 * stapling depends on (id, AIA OCSP URL, Must-Staple, names, serial).
 * Core file: APR and OpenSSL only, never an httpd header. */
#include <string.h>
#include <time.h>

#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_strings.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>

#include "og_cert.h"

/* id-pe-tlsfeature (RFC 7633) */
#define OG_OID_TLSFEATURE "1.3.6.1.5.5.7.1.24"
/* TLS feature number of status_request */
#define OG_TLSFEATURE_STATUS_REQUEST 5

static apr_status_t x509_cleanup(void *data);
static apr_status_t name_cleanup(void *data);
static apr_status_t integer_cleanup(void *data);
static struct og_chain_t *chain_read(og_issuers_t *is, BIO *bio, int max);
static X509 *chain_issuer(const struct og_chain_t *ch, X509 *leaf);
static const char *name_str(apr_pool_t *p, const X509_NAME *n);
static const char *first_ocsp_url(apr_pool_t *p, X509 *x);
static int has_must_staple(X509 *x);

apr_time_t og_asn1_time_to_apr(const ASN1_TIME *t)
{
    struct tm tm;
    time_t secs;

    if (!t || !ASN1_TIME_to_tm(t, &tm)) {
        return 0;
    }
    secs = timegm(&tm);
    if (secs == (time_t)-1) {
        return 0;
    }
    return apr_time_from_sec(secs);
}

static apr_status_t name_cleanup(void *data)
{
    X509_NAME_free((X509_NAME *)data);
    return APR_SUCCESS;
}

static apr_status_t integer_cleanup(void *data)
{
    ASN1_INTEGER_free((ASN1_INTEGER *)data);
    return APR_SUCCESS;
}

OCSP_CERTID *og_cert_id(const og_cert_t *c, const EVP_MD *md)
{
    if (!c->issuer) {
        return NULL;
    }
    return OCSP_cert_id_new(md, c->issuer_dn, X509_get0_pubkey_bitstr(c->issuer), c->serial);
}

static apr_status_t x509_cleanup(void *data)
{
    X509_free((X509 *)data);
    return APR_SUCCESS;
}

static const char *name_str(apr_pool_t *p, const X509_NAME *n)
{
    BIO *bio = BIO_new(BIO_s_mem());
    const char *s = "";
    char *data;
    long len;

    if (!bio) {
        return s;
    }
    if (X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        len = BIO_get_mem_data(bio, &data);
        s = apr_pstrmemdup(p, data, (apr_size_t)len);
    }
    BIO_free(bio);
    return s;
}

static const char *first_ocsp_url(apr_pool_t *p, X509 *x)
{
    STACK_OF(OPENSSL_STRING) *urls = X509_get1_ocsp(x);
    const char *url = NULL;

    if (urls && sk_OPENSSL_STRING_num(urls) > 0) {
        url = apr_pstrdup(p, sk_OPENSSL_STRING_value(urls, 0));
    }
    X509_email_free(urls);
    return url;
}

/* The TLS Feature extension is a SEQUENCE OF INTEGER; look for 5. */
static int has_must_staple(X509 *x)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(OG_OID_TLSFEATURE, 1);
    int idx, i, found = 0;
    X509_EXTENSION *ext;
    ASN1_OCTET_STRING *val;
    const unsigned char *der;
    ASN1_SEQUENCE_ANY *features = NULL;

    if (!obj) {
        return 0;
    }
    idx = X509_get_ext_by_OBJ(x, obj, -1);
    ASN1_OBJECT_free(obj);
    if (idx < 0) {
        return 0;
    }
    ext = X509_get_ext(x, idx);
    val = X509_EXTENSION_get_data(ext);
    der = ASN1_STRING_get0_data(val);
    features = d2i_ASN1_SEQUENCE_ANY(NULL, &der, ASN1_STRING_length(val));
    if (!features) {
        return 0;
    }
    for (i = 0; i < sk_ASN1_TYPE_num(features); i++) {
        ASN1_TYPE *t = sk_ASN1_TYPE_value(features, i);
        if (t->type == V_ASN1_INTEGER
            && ASN1_INTEGER_get(t->value.integer) == OG_TLSFEATURE_STATUS_REQUEST) {
            found = 1;
        }
    }
    sk_ASN1_TYPE_pop_free(features, ASN1_TYPE_free);
    return found;
}

apr_status_t og_cert_from_x509(og_cert_t **pcert, const char **perr,
                               apr_pool_t *p, X509 *cert, X509 *issuer)
{
    og_cert_t *c = apr_pcalloc(p, sizeof(*c));
    unsigned int dlen = 0;
    const ASN1_INTEGER *serial;
    BIGNUM *bn;
    char *hex;

    *pcert = NULL;
    *perr = NULL;
    if (!(c->issuer_dn = X509_NAME_dup(X509_get_issuer_name(cert)))
        || !(c->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(cert)))) {
        X509_NAME_free(c->issuer_dn);
        *perr = "out of memory";
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, c->issuer_dn, name_cleanup, apr_pool_cleanup_null);
    apr_pool_cleanup_register(p, c->serial, integer_cleanup, apr_pool_cleanup_null);
    if (issuer) {
        X509_up_ref(issuer);
        c->issuer = issuer;
        apr_pool_cleanup_register(p, issuer, x509_cleanup, apr_pool_cleanup_null);
    }
    if (X509_digest(cert, EVP_sha1(), c->id, &dlen) != 1 || dlen != OG_CERT_ID_LEN) {
        *perr = "cannot compute the SHA-1 digest of the certificate";
        return APR_EINVAL;
    }
    c->id_hex = og_hex(p, c->id, OG_CERT_ID_LEN);
    c->subject = name_str(p, X509_get_subject_name(cert));
    c->issuer_name = name_str(p, X509_get_issuer_name(cert));
    serial = X509_get0_serialNumber(cert);
    bn = ASN1_INTEGER_to_BN(serial, NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    c->serial_hex = apr_pstrdup(p, hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    c->ocsp_url = first_ocsp_url(p, cert);
    c->must_staple = has_must_staple(cert);
    c->not_after = og_asn1_time_to_apr(X509_get0_notAfter(cert));
    *pcert = c;
    return APR_SUCCESS;
}

/* The parsed certificates of one PEM text or file. */
typedef struct og_chain_t {
    X509 **x;
    int n;
} og_chain_t;

struct og_issuers_t {
    apr_pool_t *pool;
    apr_hash_t *by_pem;             /* PEM text -> og_chain_t */
    apr_hash_t *by_path;            /* file path -> og_chain_t */
};

#define OG_CHAIN_MAX_TEXT 16        /* certificates after a leaf: a chain */
#define OG_CHAIN_MAX_FILE 1000      /* certificates of a bundle file */

og_issuers_t *og_issuers_make(apr_pool_t *p)
{
    og_issuers_t *is = apr_pcalloc(p, sizeof(*is));

    is->pool = p;
    is->by_pem = apr_hash_make(p);
    is->by_path = apr_hash_make(p);
    return is;
}

/* Every certificate of bio (at most max), owned by the cache's pool. */
static og_chain_t *chain_read(og_issuers_t *is, BIO *bio, int max)
{
    og_chain_t *ch = apr_pcalloc(is->pool, sizeof(*ch));
    apr_array_header_t *xs = apr_array_make(is->pool, 2, sizeof(X509 *));
    X509 *x;

    while (bio && xs->nelts < max && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        APR_ARRAY_PUSH(xs, X509 *) = x;
        apr_pool_cleanup_register(is->pool, x, x509_cleanup, apr_pool_cleanup_null);
    }
    ERR_clear_error(); /* the end of the PEM data leaves an error on the queue */
    ch->x = (X509 **)xs->elts;
    ch->n = xs->nelts;
    return ch;
}

static X509 *chain_issuer(const og_chain_t *ch, X509 *leaf)
{
    int i;

    for (i = 0; i < ch->n; i++) {
        if (X509_check_issued(ch->x[i], leaf) == X509_V_OK) {
            return ch->x[i];
        }
    }
    return NULL;
}

X509 *og_issuers_in_pem(og_issuers_t *is, const char *pem, apr_size_t len, X509 *leaf)
{
    og_chain_t *ch = apr_hash_get(is->by_pem, pem, (apr_ssize_t)len);

    if (!ch) {
        BIO *bio = BIO_new_mem_buf(pem, (int)len);

        ch = chain_read(is, bio, OG_CHAIN_MAX_TEXT);
        BIO_free(bio);
        apr_hash_set(is->by_pem, apr_pmemdup(is->pool, pem, len), (apr_ssize_t)len, ch);
    }
    return chain_issuer(ch, leaf);
}

X509 *og_issuers_in_file(og_issuers_t *is, const char *path, X509 *leaf)
{
    og_chain_t *ch;

    if (!path) {
        return NULL;
    }
    if (!(ch = apr_hash_get(is->by_path, path, APR_HASH_KEY_STRING))) {
        BIO *bio = BIO_new_file(path, "r");

        ch = chain_read(is, bio, OG_CHAIN_MAX_FILE);
        BIO_free(bio);
        apr_hash_set(is->by_path, apr_pstrdup(is->pool, path), APR_HASH_KEY_STRING, ch);
    }
    return chain_issuer(ch, leaf);
}

apr_status_t og_cert_from_pem(og_cert_t **pcert, const char **perr,
                              apr_pool_t *p, const char *pem, apr_size_t len,
                              og_issuers_t *shared)
{
    static const char end[] = "-----END CERTIFICATE-----";
    BIO *bio = NULL;
    X509 *leaf = NULL, *issuer = NULL;
    const char *rest = NULL;
    apr_status_t rv = APR_EINVAL;

    *pcert = NULL;
    *perr = NULL;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio || !(leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        *perr = "no certificate in the PEM data";
        goto cleanup;
    }
    if ((rest = memmem(pem, len, end, sizeof(end) - 1))) {
        /* without a shared cache, one of our own for this call */
        apr_pool_t *tmp = NULL;
        og_issuers_t *is = shared;

        if (!is && apr_pool_create(&tmp, p) == APR_SUCCESS) {
            is = og_issuers_make(tmp);
        }
        rest += sizeof(end) - 1;
        if (is && (issuer = og_issuers_in_pem(is, rest, len - (apr_size_t)(rest - pem), leaf))) {
            X509_up_ref(issuer);
        }
        if (tmp) {
            apr_pool_destroy(tmp);
        }
    }
    rv = og_cert_from_x509(pcert, perr, p, leaf, issuer);

cleanup:
    X509_free(leaf);
    X509_free(issuer);
    BIO_free(bio);
    return rv;
}

/* og_cert.c: parse a primed certificate and its issuer; extract the facts
 * stapling depends on (id, AIA OCSP URL, Must-Staple, names, serial).
 * Core file: APR and OpenSSL only, never an httpd header.
 *
 * A leaf is decoded by OpenSSL's ASN.1 decoder from a template of RFC 5280's
 * Certificate in which subjectPublicKeyInfo stays undecoded DER: OpenSSL 3's
 * d2i_X509 decodes every public key through its provider decoders (about
 * 150 us of locks and name lookups per certificate, two thirds of
 * `apachectl -t` with 10,000 of them), and stapling never uses a leaf's own
 * key, only its issuer's. Issuers (a few, shared) are X509 objects. */
#include <limits.h>
#include <string.h>
#include <time.h>

#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_strings.h>
#include <openssl/asn1t.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>

#include "og_cert.h"

/* TLS feature number of status_request (RFC 7633) */
#define OG_TLSFEATURE_STATUS_REQUEST 5

static apr_status_t x509_cleanup(void *data);
static apr_status_t name_cleanup(void *data);
static apr_status_t integer_cleanup(void *data);
static struct og_chain_t *chain_read(og_issuers_t *is, BIO *bio, int max);
static X509 *chain_issuer(const struct og_chain_t *ch, const X509_NAME *name,
                          const AUTHORITY_KEYID *akid);
static const char *name_str(apr_pool_t *p, const X509_NAME *n);

/* TBSCertificate, with subjectPublicKeyInfo kept as it came (ASN1_ANY) */
typedef struct og_tbs_st {
    ASN1_INTEGER *version;
    ASN1_INTEGER *serial;
    X509_ALGOR *signature;
    X509_NAME *issuer;
    X509_VAL *validity;
    X509_NAME *subject;
    ASN1_TYPE *spki;
    ASN1_BIT_STRING *issuer_uid;
    ASN1_BIT_STRING *subject_uid;
    STACK_OF(X509_EXTENSION) *extensions;
} OG_TBS;

ASN1_SEQUENCE(OG_TBS) = {
    ASN1_EXP_OPT(OG_TBS, version, ASN1_INTEGER, 0),
    ASN1_SIMPLE(OG_TBS, serial, ASN1_INTEGER),
    ASN1_SIMPLE(OG_TBS, signature, X509_ALGOR),
    ASN1_SIMPLE(OG_TBS, issuer, X509_NAME),
    ASN1_SIMPLE(OG_TBS, validity, X509_VAL),
    ASN1_SIMPLE(OG_TBS, subject, X509_NAME),
    ASN1_SIMPLE(OG_TBS, spki, ASN1_ANY),
    ASN1_IMP_OPT(OG_TBS, issuer_uid, ASN1_BIT_STRING, 1),
    ASN1_IMP_OPT(OG_TBS, subject_uid, ASN1_BIT_STRING, 2),
    ASN1_EXP_SEQUENCE_OF_OPT(OG_TBS, extensions, X509_EXTENSION, 3)
} static_ASN1_SEQUENCE_END(OG_TBS)

typedef struct og_leaf_st {
    OG_TBS *tbs;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *sig;
} OG_LEAF;

ASN1_SEQUENCE(OG_LEAF) = {
    ASN1_SIMPLE(OG_LEAF, tbs, OG_TBS),
    ASN1_SIMPLE(OG_LEAF, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(OG_LEAF, sig, ASN1_BIT_STRING)
} static_ASN1_SEQUENCE_END(OG_LEAF)

static const char *first_ocsp_url(apr_pool_t *p, const STACK_OF(X509_EXTENSION) *exts);
static int has_must_staple(const STACK_OF(X509_EXTENSION) *exts);

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

/* The decoded extension `nid`, as X509_get_ext_d2i gives it: NULL when it is
 * absent, repeated or undecodable. Free it with its type's free function. */
static void *ext_d2i(const STACK_OF(X509_EXTENSION) *exts, int nid)
{
    int idx = X509v3_get_ext_by_NID(exts, nid, -1);

    if (idx < 0 || X509v3_get_ext_by_NID(exts, nid, idx) >= 0) {
        return NULL;
    }
    return X509V3_EXT_d2i(X509v3_get_ext(exts, idx));
}

/* The first non-empty AIA OCSP URI, as X509_get1_ocsp lists them. */
static const char *first_ocsp_url(apr_pool_t *p, const STACK_OF(X509_EXTENSION) *exts)
{
    AUTHORITY_INFO_ACCESS *aia = ext_d2i(exts, NID_info_access);
    const char *url = NULL;
    int i;

    for (i = 0; aia && !url && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
        const ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
        const ASN1_IA5STRING *uri;

        if (OBJ_obj2nid(ad->method) != NID_ad_OCSP || ad->location->type != GEN_URI) {
            continue;
        }
        uri = ad->location->d.uniformResourceIdentifier;
        if (uri->type == V_ASN1_IA5STRING && uri->data && uri->length > 0) {
            url = apr_pstrndup(p, (const char *)uri->data, (apr_size_t)uri->length);
        }
    }
    AUTHORITY_INFO_ACCESS_free(aia);
    return url;
}

/* The TLS Feature extension is a SEQUENCE OF INTEGER; look for 5. */
static int has_must_staple(const STACK_OF(X509_EXTENSION) *exts)
{
    int idx = X509v3_get_ext_by_NID(exts, NID_tlsfeature, -1), i, found = 0;
    ASN1_OCTET_STRING *val;
    const unsigned char *der;
    ASN1_SEQUENCE_ANY *features = NULL;

    if (idx < 0) {
        return 0;
    }
    val = X509_EXTENSION_get_data(X509v3_get_ext(exts, idx));
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

/* What we keep of a decoded leaf (der, der_len: its exact encoding), with an
 * optional issuer (a reference is taken). */
static apr_status_t from_leaf(og_cert_t **pcert, const char **perr, apr_pool_t *p,
                              const OG_LEAF *leaf, const unsigned char *der, long der_len,
                              X509 *issuer)
{
    const OG_TBS *tbs = leaf->tbs;
    og_cert_t *c = apr_pcalloc(p, sizeof(*c));
    unsigned int dlen = 0;
    BIGNUM *bn;
    char *hex;

    *pcert = NULL;
    *perr = NULL;
    if (!(c->issuer_dn = X509_NAME_dup(tbs->issuer))
        || !(c->serial = ASN1_INTEGER_dup(tbs->serial))) {
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
    /* the id mod_ssl uses: SHA-1 of the certificate's DER (X509_digest) */
    if (EVP_Digest(der, (size_t)der_len, c->id, &dlen, EVP_sha1(), NULL) != 1
        || dlen != OG_CERT_ID_LEN) {
        ERR_clear_error();
        *perr = "cannot compute the SHA-1 digest of the certificate";
        return APR_EINVAL;
    }
    c->id_hex = og_hex(p, c->id, OG_CERT_ID_LEN);
    c->subject = name_str(p, tbs->subject);
    c->issuer_name = name_str(p, tbs->issuer);
    bn = ASN1_INTEGER_to_BN(tbs->serial, NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    c->serial_hex = apr_pstrdup(p, hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
    c->ocsp_url = first_ocsp_url(p, tbs->extensions);
    c->must_staple = has_must_staple(tbs->extensions);
    c->not_after = og_asn1_time_to_apr(tbs->validity->notAfter);
    ERR_clear_error();
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

/* The first certificate of ch that issued a certificate with this issuer
 * name and authority key identifier, as X509_check_issued judges it: the
 * subject is the name, the key identifiers (and AKID's issuer and serial)
 * agree, and a key usage, if any, allows certificate signing. */
static X509 *chain_issuer(const og_chain_t *ch, const X509_NAME *name,
                          const AUTHORITY_KEYID *akid)
{
    int i;

    for (i = 0; i < ch->n; i++) {
        X509 *x = ch->x[i];
        /* first: it fills in the extensions X509_check_akid reads */
        uint32_t flags = X509_get_extension_flags(x);

        if (X509_NAME_cmp(X509_get_subject_name(x), name) == 0
            && X509_check_akid(x, akid) == X509_V_OK
            && (!(flags & EXFLAG_KUSAGE) || (X509_get_key_usage(x) & KU_KEY_CERT_SIGN))) {
            return x;
        }
    }
    return NULL;
}

X509 *og_issuers_in_pem(og_issuers_t *is, const char *pem, apr_size_t len,
                        const X509_NAME *name, const AUTHORITY_KEYID *akid)
{
    og_chain_t *ch = apr_hash_get(is->by_pem, pem, (apr_ssize_t)len);

    if (!ch) {
        BIO *bio = BIO_new_mem_buf(pem, (int)len);

        ch = chain_read(is, bio, OG_CHAIN_MAX_TEXT);
        BIO_free(bio);
        apr_hash_set(is->by_pem, apr_pmemdup(is->pool, pem, len), (apr_ssize_t)len, ch);
    }
    return chain_issuer(ch, name, akid);
}

X509 *og_issuers_in_file(og_issuers_t *is, const char *path, const X509_NAME *name,
                         const AUTHORITY_KEYID *akid)
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
    return chain_issuer(ch, name, akid);
}

/* Issued by its own key: its own issuer by name and key identifiers, and its
 * signature verifies with its own key (the one case that decodes a leaf's
 * key; a CA's leaf never names itself as its issuer). */
static int self_signed(const unsigned char *der, long der_len)
{
    X509 *x = d2i_X509(NULL, &der, der_len);
    int yes = x && X509_check_issued(x, x) == X509_V_OK
              && X509_verify(x, X509_get0_pubkey(x)) == 1;

    X509_free(x);
    ERR_clear_error();
    return yes;
}

apr_status_t og_cert_read(og_cert_t **pcert, int *pself, const char **perr, apr_pool_t *p,
                          const char *pem, apr_size_t len, og_issuers_t *shared,
                          const char *chain_file, const char *ca_file)
{
    static const char end[] = "-----END CERTIFICATE-----";
    BIO *bio = NULL;
    OG_LEAF *leaf = NULL;
    AUTHORITY_KEYID *akid = NULL;
    X509 *issuer = NULL;
    unsigned char *der = NULL;
    char *name = NULL;
    const unsigned char *q;
    long der_len = 0;
    const char *rest = NULL;
    apr_pool_t *tmp = NULL;
    og_issuers_t *is = shared;
    apr_status_t rv = APR_EINVAL;

    *pcert = NULL;
    *perr = NULL;
    if (pself) {
        *pself = 0;
    }
    /* the first CERTIFICATE block, as PEM_read_bio_X509 picks it */
    bio = len <= INT_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    if (!bio || !PEM_bytes_read_bio(&der, &der_len, &name, PEM_STRING_X509, bio, NULL, NULL)
        || !(q = der, leaf = (OG_LEAF *)ASN1_item_d2i(NULL, &q, der_len,
                                                       ASN1_ITEM_rptr(OG_LEAF)))) {
        *perr = "no certificate in the PEM data";
        goto cleanup;
    }
    der_len = (long)(q - der); /* the certificate itself, not what may follow it */
    akid = ext_d2i(leaf->tbs->extensions, NID_authority_key_identifier);
    if (!is && apr_pool_create(&tmp, p) == APR_SUCCESS) {
        is = og_issuers_make(tmp); /* without a shared cache, one for this call */
    }
    if ((rest = memmem(pem, len, end, sizeof(end) - 1))) {
        rest += sizeof(end) - 1;
    }
    if (is) {
        issuer = rest ? og_issuers_in_pem(is, rest, len - (apr_size_t)(rest - pem),
                                          leaf->tbs->issuer, akid) : NULL;
        issuer = issuer ? issuer
                        : og_issuers_in_file(is, chain_file, leaf->tbs->issuer, akid);
        issuer = issuer ? issuer : og_issuers_in_file(is, ca_file, leaf->tbs->issuer, akid);
    }
    if (pself && X509_NAME_cmp(leaf->tbs->subject, leaf->tbs->issuer) == 0) {
        *pself = self_signed(der, der_len);
    }
    rv = from_leaf(pcert, perr, p, leaf, der, der_len, issuer);

cleanup:
    if (tmp) {
        apr_pool_destroy(tmp); /* after from_leaf took its reference to the issuer */
    }
    AUTHORITY_KEYID_free(akid);
    ASN1_item_free((ASN1_VALUE *)leaf, ASN1_ITEM_rptr(OG_LEAF));
    OPENSSL_free(der);
    OPENSSL_free(name);
    BIO_free(bio);
    ERR_clear_error();
    return rv;
}

apr_status_t og_cert_from_pem(og_cert_t **pcert, const char **perr,
                              apr_pool_t *p, const char *pem, apr_size_t len,
                              og_issuers_t *shared)
{
    return og_cert_read(pcert, NULL, perr, p, pem, len, shared, NULL, NULL);
}

/* fuzz_verify.c: libFuzzer target for og_ocsp_verify, the judge of every
 * response a responder, the store or a fleet cache hands us. The PKI of
 * fuzz_pki.h is built once; the first input byte picks the mode (low two
 * bits) and, for modes 0, 1 and 3, the max_validity (the next three bits):
 *   0  the rest is the DER response, verified as is
 *   1  re-sign: the rest is parsed, its tbsResponseData kept as it is
 *      (responderID, times, CertIDs), signed again by the CA if it names the
 *      CA, else by the delegated responder (certificate embedded)
 *   3  rebuild: every SingleResponse copied with OCSP_basic_add1_status, the
 *      first (and any with the leaf's serial) given the leaf's CertID under
 *      its own hash algorithm, then signed: the time checks are reached
 *   2  structured: the rest drives a generator (status, times over the whole
 *      int64 range and raw GeneralizedTime strings, CertID hash, issuer and
 *      serial, extra SingleResponses, signer, max_validity)
 * Verdicts are never judged here: crashes, leaks and UB are the findings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "fuzz_feature.h"
#include "fuzz_pki.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_in_t {
    const uint8_t *p;
    size_t n;
} fz_in_t;

typedef struct blob_t {         /* a malloc'ed piece of DER */
    unsigned char *p;
    size_t n;
} blob_t;

static fz_pki_t pki;
static int verbose;             /* FUZZ_VERBOSE=1: print each verdict (seed work) */

static uint8_t in_u8(fz_in_t *in);
static uint16_t in_u16(fz_in_t *in);
static uint64_t in_u64(fz_in_t *in);
static void verify(const unsigned char *der, size_t len, apr_interval_time_t max_validity);
static void verify_bs(OCSP_BASICRESP *bs, int status, apr_interval_time_t max_validity);
static int sign_as(OCSP_BASICRESP *bs, int who, int by_key, const EVP_MD *md, unsigned long flags);
static int blob_wrap(blob_t *out, unsigned char tag, const blob_t *parts, int nparts);
static int names_ca(OCSP_BASICRESP *bs);
static void set_produced_at(OCSP_BASICRESP *bs);
static void mode_resign(const uint8_t *d, size_t n, uint8_t opts, apr_interval_time_t maxv);
static void mode_rebuild(const uint8_t *d, size_t n, uint8_t opts, apr_interval_time_t maxv);
static void mode_structured(fz_in_t *in);
static ASN1_TIME *gen_time(fz_in_t *in);
static ASN1_INTEGER *gen_serial(fz_in_t *in, int ours);
static const EVP_MD *gen_md(fz_in_t *in);

/* max_validity for modes 0, 1, 3 (seconds), by bits 2..4 of the first byte */
static const long maxv_secs[8] = {
    0, 3600, 86400, 4 * 86400, 7 * 86400, 10 * 86400, 365 * 86400, 3650 * 86400
};

/* signers of the structured mode (who) */
enum {
    S_CA = 0, S_RESPONDER, S_RESPONDER_KEYID, S_RESPONDER_NOCERTS, S_NOSIGN,
    S_ROGUE, S_EXPIRED, S_LEAF, S_CA_WITH_CERTS, S_COUNT
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_pki_init(&pki);
    verbose = getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") == '1';
    return 0;
}

static uint8_t in_u8(fz_in_t *in)
{
    if (!in->n) {
        return 0;
    }
    in->n--;
    return *in->p++;
}

static uint16_t in_u16(fz_in_t *in)
{
    uint16_t hi = in_u8(in);

    return (uint16_t)((hi << 8) | in_u8(in));
}

static uint64_t in_u64(fz_in_t *in)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | in_u8(in);
    }
    return v;
}

static void verify(const unsigned char *der, size_t len, apr_interval_time_t max_validity)
{
    og_ocsp_result_t res;

    og_ocsp_verify(&res, pki.cert, der, len, FZ_NOW, max_validity);
    fz_feature((unsigned)res.verdict << 8 | (unsigned)res.cert_status << 4
               | (unsigned)res.has_next_update << 1 | (unsigned)res.validity_capped,
               res.detail);
    if (verbose) {
        fprintf(stderr, "verdict: %s, status %s, max_validity %" APR_TIME_T_FMT " s%s: %s\n",
                og_ocsp_verdict_str(res.verdict), og_ocsp_status_str(res.cert_status),
                apr_time_sec(max_validity), res.validity_capped ? " (capped)" : "",
                res.detail);
    }
}

static void verify_bs(OCSP_BASICRESP *bs, int status, apr_interval_time_t max_validity)
{
    OCSP_RESPONSE *resp = OCSP_response_create(status, bs);
    unsigned char *der = NULL;
    int len;

    if (!resp) {
        ERR_clear_error();
        return;
    }
    len = i2d_OCSP_RESPONSE(resp, &der);
    if (len > 0) {
        verify(der, (size_t)len, max_validity);
    }
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

static int sign_as(OCSP_BASICRESP *bs, int who, int by_key, const EVP_MD *md, unsigned long flags)
{
    const tp_ident_t *s;
    STACK_OF(X509) *extra = NULL;
    int ok;

    switch (who) {
    case S_CA:                s = &pki.ca; flags |= OCSP_NOCERTS; break;
    case S_CA_WITH_CERTS:     s = &pki.ca; break;
    case S_RESPONDER:         s = &pki.responder; break;
    case S_RESPONDER_KEYID:   s = &pki.responder; by_key = 1; break;
    case S_RESPONDER_NOCERTS: s = &pki.responder; flags |= OCSP_NOCERTS; break;
    case S_NOSIGN:            s = &pki.nosign; break;
    case S_ROGUE:             s = &pki.rogue; break;
    case S_EXPIRED:           s = &pki.expired; break;
    default:                  s = &pki.leaf; break;
    }
    if (who == S_CA_WITH_CERTS && (extra = sk_X509_new_null()) != NULL) {
        sk_X509_push(extra, pki.responder.cert);
        sk_X509_push(extra, pki.rogue.cert);
    }
    ok = OCSP_basic_sign(bs, s->cert, s->key, md, extra,
                         flags | (by_key ? OCSP_RESPID_KEY : 0)) == 1;
    sk_X509_free(extra);
    ERR_clear_error();
    return ok;
}

static void set_produced_at(OCSP_BASICRESP *bs)
{
    /* the getter is const, the object is ours: a fixed producedAt keeps runs
     * reproducible (og_ocsp_verify does not read it) */
    ASN1_GENERALIZEDTIME *t = (ASN1_GENERALIZEDTIME *)OCSP_resp_get0_produced_at(bs);

    if (t) {
        ASN1_GENERALIZEDTIME_set(t, (time_t)FZ_NOW_SEC);
    }
}

/* ---- mode 1: re-sign the parsed tbsResponseData --------------------------
 * OCSP_basic_sign cannot be used on a parsed response: it overwrites the
 * responderID union without freeing (byName -> byKey leaks the name) or frees
 * the wrong type (byKey -> byName: X509_NAME_free on an OCTET STRING). So the
 * BasicOCSPResponse is assembled here, around the re-encoded tbsResponseData,
 * responderID included: the signer is the CA when the responderID names it
 * (by name or by key hash) or opts bit 7 says so, the responder otherwise. */

/* out = tag, DER length, then the parts in order. 0 on failure. */
static int blob_wrap(blob_t *out, unsigned char tag, const blob_t *parts, int nparts)
{
    size_t len = 0, hdr, off;
    int i;

    for (i = 0; i < nparts; i++) {
        len += parts[i].n;
    }
    hdr = len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : 5;
    if (len >= 0x1000000 || !(out->p = malloc(hdr + len))) {
        out->p = NULL;
        return 0;
    }
    out->p[0] = tag;
    if (hdr == 2) {
        out->p[1] = (unsigned char)len;
    }
    else {
        out->p[1] = (unsigned char)(0x80 | (hdr - 2));
        for (i = 0; i < (int)hdr - 2; i++) {
            out->p[hdr - 1 - (size_t)i] = (unsigned char)(len >> (8 * i));
        }
    }
    off = hdr;
    for (i = 0; i < nparts; i++) {
        if (parts[i].n) {
            memcpy(out->p + off, parts[i].p, parts[i].n);
        }
        off += parts[i].n;
    }
    out->n = hdr + len;
    return 1;
}

static int names_ca(OCSP_BASICRESP *bs)
{
    const ASN1_OCTET_STRING *key = NULL;
    const X509_NAME *name = NULL;
    unsigned char md[SHA_DIGEST_LENGTH];
    unsigned int n = 0;

    if (!OCSP_resp_get0_id(bs, &key, &name)) {
        return 0;
    }
    if (name) {
        return X509_NAME_cmp(name, X509_get_subject_name(pki.ca.cert)) == 0;
    }
    return key && ASN1_STRING_length(key) == SHA_DIGEST_LENGTH
           && X509_pubkey_digest(pki.ca.cert, EVP_sha1(), md, &n) == 1
           && memcmp(ASN1_STRING_get0_data(key), md, SHA_DIGEST_LENGTH) == 0;
}

/* opts bit 5: SHA-384 instead of SHA-256; bit 6: keep the embedded
 * certificates (ours after them); bit 7: the CA signs. */
static void mode_resign(const uint8_t *d, size_t n, uint8_t opts, apr_interval_time_t maxv)
{
    static const unsigned char alg256[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                            0x3d, 0x04, 0x03, 0x02 };
    static const unsigned char alg384[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                            0x3d, 0x04, 0x03, 0x03 };
    static const unsigned char status_ok[] = { 0x0a, 0x01, 0x00 };
    static const unsigned char basic_oid[] = { 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05,
                                               0x07, 0x30, 0x01, 0x01 };
    const unsigned char *q = d;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &q, (long)n);
    OCSP_BASICRESP *bs = resp ? OCSP_response_get1_basic(resp) : NULL;
    const tp_ident_t *signer;
    const STACK_OF(X509) *theirs;
    const EVP_MD *md = (opts & 0x20) ? EVP_sha384() : EVP_sha256();
    EVP_MD_CTX *ctx = NULL;
    unsigned char *tbs = NULL, *sig = NULL, *certs_der = NULL;
    blob_t parts[4], bits = { NULL, 0 }, seq = { NULL, 0 }, certs = { NULL, 0 };
    blob_t basic = { NULL, 0 }, octets = { NULL, 0 }, rb = { NULL, 0 }, rbx = { NULL, 0 };
    blob_t out = { NULL, 0 };
    size_t siglen = 0, clen = 0;
    int tbslen, i, np;

    if (!bs || (tbslen = i2d_OCSP_RESPDATA((OCSP_RESPDATA *)OCSP_resp_get0_respdata(bs),
                                           &tbs)) <= 0) {
        goto cleanup;
    }
    signer = ((opts & 0x80) || names_ca(bs)) ? &pki.ca : &pki.responder;
    /* the signature over the tbsResponseData, as a BIT STRING */
    if (!(ctx = EVP_MD_CTX_new())
        || EVP_DigestSignInit(ctx, NULL, md, NULL, signer->key) != 1
        || EVP_DigestSign(ctx, NULL, &siglen, tbs, (size_t)tbslen) != 1
        || !(sig = malloc(siglen + 1))
        || EVP_DigestSign(ctx, sig + 1, &siglen, tbs, (size_t)tbslen) != 1) {
        goto cleanup;
    }
    sig[0] = 0; /* no unused bits */
    parts[0].p = sig;
    parts[0].n = siglen + 1;
    if (!blob_wrap(&bits, 0x03, parts, 1)) {
        goto cleanup;
    }
    /* certs [0] EXPLICIT SEQUENCE OF Certificate: theirs (bit 6), then ours */
    theirs = (opts & 0x40) ? OCSP_resp_get0_certs(bs) : NULL;
    for (i = 0; theirs && i < sk_X509_num(theirs); i++) {
        unsigned char *c = NULL, *grown;
        int l = i2d_X509(sk_X509_value(theirs, i), &c);

        if (l > 0 && (grown = realloc(certs_der, clen + (size_t)l)) != NULL) {
            certs_der = grown;
            memcpy(certs_der + clen, c, (size_t)l);
            clen += (size_t)l;
        }
        OPENSSL_free(c);
    }
    if (signer != &pki.ca) {
        unsigned char *c = NULL, *grown;
        int l = i2d_X509(signer->cert, &c);

        if (l > 0 && (grown = realloc(certs_der, clen + (size_t)l)) != NULL) {
            certs_der = grown;
            memcpy(certs_der + clen, c, (size_t)l);
            clen += (size_t)l;
        }
        OPENSSL_free(c);
    }
    parts[0].p = tbs;
    parts[0].n = (size_t)tbslen;
    parts[1].p = (unsigned char *)((opts & 0x20) ? alg384 : alg256);
    parts[1].n = sizeof(alg256);
    parts[2] = bits;
    np = 3;
    if (clen) {
        blob_t cl = { certs_der, clen };

        if (!blob_wrap(&seq, 0x30, &cl, 1) || !blob_wrap(&certs, 0xa0, &seq, 1)) {
            goto cleanup;
        }
        parts[np++] = certs;
    }
    /* BasicOCSPResponse, then OCSPResponse { successful, responseBytes } */
    if (!blob_wrap(&basic, 0x30, parts, np) || !blob_wrap(&octets, 0x04, &basic, 1)) {
        goto cleanup;
    }
    parts[0].p = (unsigned char *)basic_oid;
    parts[0].n = sizeof(basic_oid);
    parts[1] = octets;
    if (!blob_wrap(&rb, 0x30, parts, 2) || !blob_wrap(&rbx, 0xa0, &rb, 1)) {
        goto cleanup;
    }
    parts[0].p = (unsigned char *)status_ok;
    parts[0].n = sizeof(status_ok);
    parts[1] = rbx;
    if (blob_wrap(&out, 0x30, parts, 2)) {
        verify(out.p, out.n, maxv);
    }

cleanup:
    free(out.p); free(rbx.p); free(rb.p); free(octets.p); free(basic.p);
    free(certs.p); free(seq.p); free(certs_der); free(bits.p); free(sig);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(tbs);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

/* Mode 3: a new basic response with the parsed SingleResponses (at most 64),
 * the leaf's CertID put in where it would match, signed by the responder
 * (opts bit 5: responderID by key hash) or, with bit 7, by the CA. */
static void mode_rebuild(const uint8_t *d, size_t n, uint8_t opts, apr_interval_time_t maxv)
{
    const unsigned char *q = d;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &q, (long)n);
    OCSP_BASICRESP *bs = resp ? OCSP_response_get1_basic(resp) : NULL;
    OCSP_BASICRESP *nbs = NULL;
    const ASN1_INTEGER *leaf_serial = X509_get0_serialNumber(pki.leaf.cert);
    int i, count;

    if (!bs || !(nbs = OCSP_BASICRESP_new())) {
        goto cleanup;
    }
    count = OCSP_resp_count(bs);
    for (i = 0; i < count && i < 64; i++) {
        OCSP_SINGLERESP *single = OCSP_resp_get0(bs, i);
        const OCSP_CERTID *theirs = single ? OCSP_SINGLERESP_get0_id(single) : NULL;
        ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
        ASN1_OBJECT *md_oid = NULL;
        ASN1_INTEGER *serial = NULL;
        const EVP_MD *md = NULL;
        OCSP_CERTID *cid;
        int status, reason = -1;

        if (!theirs) {
            continue;
        }
        status = OCSP_single_get0_status(single, &reason, &rev, &thisupd, &nextupd);
        if (status < 0) {
            continue;
        }
        OCSP_id_get0_info(NULL, &md_oid, NULL, &serial, (OCSP_CERTID *)theirs);
        if (i == 0 || (serial && ASN1_INTEGER_cmp(serial, leaf_serial) == 0)) {
            md = md_oid ? EVP_get_digestbyobj(md_oid) : NULL;
            cid = OCSP_cert_to_id(md ? md : EVP_sha1(), pki.leaf.cert, pki.ca.cert);
        }
        else {
            cid = OCSP_CERTID_dup((OCSP_CERTID *)theirs);
        }
        if (cid) {
            OCSP_basic_add1_status(nbs, cid, status, reason,
                                   status == V_OCSP_CERTSTATUS_REVOKED && !rev ? thisupd : rev,
                                   thisupd, nextupd);
        }
        OCSP_CERTID_free(cid);
        ERR_clear_error();
    }
    set_produced_at(nbs);
    if (sign_as(nbs, (opts & 0x80) ? S_CA : S_RESPONDER, (opts & 0x20) != 0,
                EVP_sha256(), OCSP_NOTIME)) {
        verify_bs(nbs, OCSP_RESPONSE_STATUS_SUCCESSFUL, maxv);
    }

cleanup:
    OCSP_BASICRESP_free(nbs);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
}

/* A time: offsets in minutes, hours, days or seconds over the whole int64
 * range (clamped to years 0000..9999, all ASN1_TIME can say), absolute
 * seconds, the boundaries that matter, or four-digit-year fields. */
static ASN1_TIME *gen_time(fz_in_t *in)
{
    static const char *const special[] = {
        "99991231235959Z", "00000101000000Z", "19700101000000Z", "19691231235959Z",
        "19700101000001Z", "19500101000000Z", "20491231235959Z", "20500101000000Z",
        "20250101000000Z", "20250101000500Z", "20250101000501Z", "20241231120000Z",
        "20241231115959Z", "20380119031408Z", "21060207062816Z", "99991231235960Z"
    };
    const int64_t y0 = -62167219200LL, y9999 = 253402300799LL; /* 0000-01-01, 9999-12-31 */
    ASN1_TIME *t = NULL;
    int64_t secs = FZ_NOW_SEC, off;
    uint8_t kind = in_u8(in);

    switch (kind % 8) {
    case 0: secs += (int64_t)(int16_t)in_u16(in) * 60; break;
    case 1: secs += (int64_t)(int16_t)in_u16(in) * 3600; break;
    case 2: secs += (int64_t)(int16_t)in_u16(in) * 86400; break;
    case 3:
        off = (int64_t)in_u64(in);
        secs = (off > 0 && secs > INT64_MAX - off) ? INT64_MAX
               : (off < 0 && secs < INT64_MIN - off) ? INT64_MIN : secs + off;
        break;
    case 4: secs = (int64_t)in_u64(in); break;
    case 5:
        t = ASN1_GENERALIZEDTIME_new();
        if (t && !ASN1_GENERALIZEDTIME_set_string(t, special[in_u8(in) % 16])) {
            ASN1_GENERALIZEDTIME_free(t);
            t = NULL;
        }
        break;
    case 6: {
        char buf[32];
        unsigned f[6];
        int k;

        f[0] = in_u16(in) % 10000u;
        for (k = 1; k < 6; k++) {
            f[k] = in_u8(in) % (k == 1 ? 14u : k == 2 ? 33u : k == 3 ? 25u : k == 4 ? 61u : 62u);
        }
        snprintf(buf, sizeof(buf), "%04u%02u%02u%02u%02u%02uZ", f[0], f[1], f[2], f[3], f[4],
                 f[5]);
        t = ASN1_GENERALIZEDTIME_new();
        if (t && !ASN1_GENERALIZEDTIME_set_string(t, buf)) {
            ASN1_GENERALIZEDTIME_free(t); /* not a date: fall back to now */
            t = NULL;
        }
        break;
    }
    default: secs += 5 * 60 + (int8_t)in_u8(in); break; /* around the skew */
    }
    if (kind % 8 == 5 || kind % 8 == 6) {
        return t ? t : ASN1_TIME_set(NULL, (time_t)FZ_NOW_SEC);
    }
    if (secs < y0) {
        secs = y0;
    }
    if (secs > y9999) {
        secs = y9999;
    }
    t = ASN1_TIME_set(NULL, (time_t)secs);
    return t ? t : ASN1_TIME_set(NULL, (time_t)FZ_NOW_SEC);
}

static ASN1_INTEGER *gen_serial(fz_in_t *in, int ours)
{
    uint8_t kind = in_u8(in) % 8;
    ASN1_INTEGER *a = NULL;
    BIGNUM *bn;
    unsigned char b[20];
    int i;

    if (ours && kind < 5) {
        return ASN1_INTEGER_dup(X509_get0_serialNumber(pki.leaf.cert));
    }
    switch (kind) {
    case 0: case 1: return ASN1_INTEGER_dup(X509_get0_serialNumber(pki.leaf.cert));
    case 2: case 3: case 4: case 5: {
        long v = kind == 2 ? FZ_LEAF_SERIAL + 1 : kind == 3 ? 0 : kind == 4 ? -FZ_LEAF_SERIAL
                 : (long)in_u16(in) << 16;

        if (kind == 5) {
            v |= in_u16(in);
        }
        if ((a = ASN1_INTEGER_new()) != NULL) {
            ASN1_INTEGER_set(a, v);
        }
        return a;
    }
    default:
        for (i = 0; i < 20; i++) {
            b[i] = in_u8(in);
        }
        bn = BN_bin2bn(b, 20, NULL);
        if (bn && kind == 7) {
            BN_set_negative(bn, 1);
        }
        a = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
        BN_free(bn);
        return a;
    }
}

static const EVP_MD *gen_md(fz_in_t *in)
{
    switch (in_u8(in) % 10) {
    case 0: case 1: case 2: return EVP_sha1();
    case 3: case 4: return EVP_sha256();
    case 5: return EVP_sha384();
    case 6: return EVP_sha512();
    case 7: return EVP_sha224();
    case 8: return EVP_md5();
    default: return EVP_sha3_256();
    }
}

/* Mode 2 */
static void mode_structured(fz_in_t *in)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    uint8_t who = in_u8(in) % S_COUNT, flags = in_u8(in), vb = in_u8(in);
    apr_interval_time_t maxv = (vb & 1) ? apr_time_from_sec((apr_int64_t)(in_u16(in) % 3651) * 86400) : 0;
    int nsingle = 1 + in_u8(in) % 8, ours_at = in_u8(in) % nsingle, i;
    int status = (vb & 0xf0) == 0xf0 ? vb & 0x07 : OCSP_RESPONSE_STATUS_SUCCESSFUL;
    const EVP_MD *sign_md = (flags & 0x10) ? EVP_sha384() : (flags & 0x20) ? EVP_sha1()
                            : EVP_sha256();

    if (!bs) {
        return;
    }
    for (i = 0; i < nsingle; i++) {
        int ours = i == ours_at;
        uint8_t ib = in_u8(in), sb = in_u8(in), rb = in_u8(in);
        X509 *issuer = ib % 8 == 6 ? pki.rogue.cert : ib % 8 == 7 ? pki.leaf.cert : pki.ca.cert;
        const EVP_MD *md = gen_md(in);
        ASN1_INTEGER *serial = gen_serial(in, ours);
        int cst = sb % 3;
        int reason = rb == 0 ? -1 : (int)(int8_t)rb;
        ASN1_TIME *thisupd = gen_time(in);
        ASN1_TIME *nextupd = (sb & 0x80) ? NULL : gen_time(in);
        ASN1_TIME *rev = cst == V_OCSP_CERTSTATUS_REVOKED ? gen_time(in) : NULL;
        OCSP_CERTID *cid = serial ? OCSP_cert_id_new(md, X509_get_subject_name(issuer),
                                                     X509_get0_pubkey_bitstr(issuer), serial)
                                  : NULL;
        OCSP_SINGLERESP *single = NULL;

        if (cid && thisupd) {
            single = OCSP_basic_add1_status(bs, cid, cst,
                                            cst == V_OCSP_CERTSTATUS_REVOKED ? reason : 0,
                                            rev, thisupd, nextupd);
        }
        /* sb bits 4..6: overwrite thisUpdate / nextUpdate / revocationTime with
         * raw GeneralizedTime content from the input (up to 24 bytes) */
        if (single && (sb & 0x70)) {
            ASN1_GENERALIZEDTIME *r = NULL, *tu = NULL, *nu = NULL;
            ASN1_GENERALIZEDTIME *which;
            unsigned char raw[24];
            int len = in_u8(in) % 25, k;

            for (k = 0; k < len; k++) {
                raw[k] = in_u8(in);
            }
            OCSP_single_get0_status(single, NULL, &r, &tu, &nu);
            which = (sb & 0x10) ? tu : (sb & 0x20) ? nu : r;
            if (which) {
                ASN1_STRING_set(which, raw, len);
            }
        }
        ASN1_TIME_free(thisupd);
        ASN1_TIME_free(nextupd);
        ASN1_TIME_free(rev);
        ASN1_INTEGER_free(serial);
        OCSP_CERTID_free(cid);
        ERR_clear_error();
    }
    set_produced_at(bs);
    if (flags & 0x80) {
        /* no basic response at all, or one with a non-successful status */
        verify_bs(NULL, status, maxv);
    }
    else if (sign_as(bs, who, (flags & 0x01) != 0, sign_md, OCSP_NOTIME)) {
        if (flags & 0x02) {
            /* a signature over other bytes: the same thing, one SingleResponse later */
            OCSP_CERTID *cid = OCSP_cert_to_id(EVP_sha1(), pki.leaf.cert, pki.ca.cert);

            if (cid) {
                ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)FZ_NOW_SEC);
                OCSP_basic_add1_status(bs, cid, V_OCSP_CERTSTATUS_GOOD, 0, NULL, t, NULL);
                ASN1_TIME_free(t);
                OCSP_CERTID_free(cid);
            }
        }
        verify_bs(bs, status, maxv);
    }
    OCSP_BASICRESP_free(bs);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    apr_interval_time_t maxv;
    fz_in_t in;

    if (size < 1) {
        return 0;
    }
    fz_rand_seed("input"); /* every input signs with the same random stream */
    mode = data[0] & 3;
    maxv = apr_time_from_sec((apr_int64_t)maxv_secs[(data[0] >> 2) & 7]);
    switch (mode) {
    case 0:
        verify(data + 1, size - 1, maxv);
        break;
    case 1:
        mode_resign(data + 1, size - 1, data[0], maxv);
        break;
    case 3:
        mode_rebuild(data + 1, size - 1, data[0], maxv);
        break;
    default:
        in.p = data + 1;
        in.n = size - 1;
        mode_structured(&in);
        break;
    }
    ERR_clear_error();
    return 0;
}

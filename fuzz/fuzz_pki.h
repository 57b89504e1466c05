/* fuzz_pki.h: the fixed PKI the fuzzers and mkseeds share, built with
 * tests/unit/og_test_pki.h: a CA, a delegated responder (OCSPSigning), the
 * leaf, and hostile signers. Keys come from a deterministic RAND method and
 * validities are fixed dates, so a response mkseeds signs today still
 * verifies in a fuzzer process next year, and `now` is FZ_NOW, never the
 * clock. Fuzzing only: never link this into the module. Header-only. */
#ifndef FUZZ_PKI_H
#define FUZZ_PKI_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_allocator.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <openssl/rand.h>

#include "og_cert.h"
#include "og_ocsp.h"
#include "og_test_pki.h"

/* 2025-01-01T00:00:00Z: the fuzzers' clock */
#define FZ_NOW_SEC  1735689600LL
#define FZ_NOW      apr_time_from_sec(FZ_NOW_SEC)
#define FZ_LEAF_SERIAL 0x1000
#define FZ_URL      "http://127.0.0.1:8080/"
/* The certificate id of fuzz_store's seeds ("og-fuzz-store-id-001") */
#define FZ_STORE_ID_INIT { 0x6f, 0x67, 0x2d, 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x73, 0x74, \
                           0x6f, 0x72, 0x65, 0x2d, 0x69, 0x64, 0x2d, 0x30, 0x30, 0x31 }

typedef struct fz_pki_t {
    tp_ident_t ca;          /* issuer of the leaf */
    tp_ident_t responder;   /* delegated, OCSPSigning, issued by ca */
    tp_ident_t nosign;      /* issued by ca, no OCSPSigning */
    tp_ident_t rogue;       /* self-signed, the CA's name, OCSPSigning, another key */
    tp_ident_t expired;     /* delegated, OCSPSigning, expired in 2021 */
    tp_ident_t leaf;        /* the certificate responses are about */
    og_cert_t *cert;        /* leaf + ca, through og_cert_from_pem */
    void *cert_refs[3];     /* cert->issuer_dn, serial, issuer: pool memory is
                             * not scanned by LeakSanitizer, this global is */
    apr_pool_t *pool;
} fz_pki_t;

/* ---- deterministic RAND: SHA-256(label || counter) ------------------------ */

static char fz_rand_label[64];
static uint64_t fz_rand_ctr;

static inline void fz_rand_seed(const char *label)
{
    snprintf(fz_rand_label, sizeof(fz_rand_label), "%s", label);
    fz_rand_ctr = 0;
}

static int fz_rand_bytes(unsigned char *buf, int num)
{
    while (num > 0) {
        unsigned char in[sizeof(fz_rand_label) + 8], blk[32];
        unsigned int n = 0;
        size_t l = strlen(fz_rand_label);
        int i, k = num < 32 ? num : 32;

        memcpy(in, fz_rand_label, l);
        for (i = 0; i < 8; i++) {
            in[l + (size_t)i] = (unsigned char)(fz_rand_ctr >> (8 * i));
        }
        fz_rand_ctr++;
        if (EVP_Digest(in, l + 8, blk, &n, EVP_sha256(), NULL) != 1) {
            abort();
        }
        memcpy(buf, blk, (size_t)k);
        buf += k;
        num -= k;
    }
    return 1;
}

static int fz_rand_status(void)
{
    return 1;
}

static RAND_METHOD fz_rand_method = {
    NULL, fz_rand_bytes, NULL, NULL, fz_rand_bytes, fz_rand_status
};

/* ---- the PKI ---------------------------------------------------------------- */

static inline void fz_set_validity(tp_ident_t *id, const tp_ident_t *issuer,
                                   const char *not_before, const char *not_after)
{
    ASN1_TIME *t = ASN1_TIME_new();

    if (!t || !ASN1_TIME_set_string(t, not_before) || !X509_set1_notBefore(id->cert, t)
        || !ASN1_TIME_set_string(t, not_after) || !X509_set1_notAfter(id->cert, t)
        || !X509_sign(id->cert, issuer ? issuer->key : id->key, EVP_sha256())) {
        fprintf(stderr, "fuzz_pki: cannot fix a certificate's validity\n");
        abort();
    }
    ASN1_TIME_free(t);
}

static inline tp_ident_t fz_make(const char *label, const char *cn, const tp_ident_t *issuer,
                                 long serial, int is_ca, int ocsp_signing, const char *url,
                                 const char *not_before, const char *not_after)
{
    tp_ident_t id;

    fz_rand_seed(label);
    id = tp_make(cn, issuer, serial, (tp_opts_t){ .is_ca = is_ca, .ocsp_signing = ocsp_signing,
                                              .ocsp_url = url });
    if (!id.key || !id.cert) {
        fprintf(stderr, "fuzz_pki: cannot make %s\n", cn);
        abort();
    }
    fz_set_validity(&id, issuer, not_before, not_after);
    return id;
}

/* A pool with an allocator of its own that keeps nothing once freed: every
 * malloc of an input is freed by its end, so libFuzzer's leak heuristics
 * (more mallocs than frees: run again under LeakSanitizer) stay quiet. */
static inline apr_pool_t *fz_pool_create(void)
{
    apr_allocator_t *a = NULL;
    apr_pool_t *p = NULL;

    if (apr_allocator_create(&a) != APR_SUCCESS
        || apr_pool_create_ex(&p, NULL, NULL, a) != APR_SUCCESS) {
        abort();
    }
    apr_allocator_max_free_set(a, 1);
    apr_allocator_owner_set(a, p);
    return p;
}

static fz_pki_t *fz_pki_live;

/* At exit, before LeakSanitizer looks: the og_cert_t's X509s are referenced
 * only from pool memory, which it does not scan. */
static void fz_pki_free(void)
{
    fz_pki_t *k = fz_pki_live;

    if (!k) {
        return;
    }
    fz_pki_live = NULL;
    tp_free(&k->ca); tp_free(&k->responder); tp_free(&k->nosign);
    tp_free(&k->rogue); tp_free(&k->expired); tp_free(&k->leaf);
    apr_pool_destroy(k->pool);
    k->cert = NULL;
    apr_terminate();
}

/* Build everything; aborts on failure (nothing to fuzz without it). Installs
 * the deterministic RAND for the whole process; frees it all at exit. */
static inline void fz_pki_init(fz_pki_t *k)
{
    const char *err = NULL;
    size_t len = 0;
    char *pem;

    memset(k, 0, sizeof(*k));
    /* deprecated in 3.0, and still the one hook that reaches key generation */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    RAND_set_rand_method(&fz_rand_method);
#pragma GCC diagnostic pop
    apr_initialize();
    if (apr_pool_create(&k->pool, NULL) != APR_SUCCESS) {
        abort();
    }
    k->ca = fz_make("ca", "OG Fuzz CA", NULL, 1, 1, 0, NULL,
                    "20200101000000Z", "20400101000000Z");
    k->responder = fz_make("responder", "OG Fuzz Responder", &k->ca, 2, 0, 1, NULL,
                           "20200101000000Z", "20400101000000Z");
    k->nosign = fz_make("nosign", "OG Fuzz Not A Responder", &k->ca, 3, 0, 0, NULL,
                        "20200101000000Z", "20400101000000Z");
    k->rogue = fz_make("rogue", "OG Fuzz CA", NULL, 1, 1, 1, NULL,
                       "20200101000000Z", "20400101000000Z");
    k->expired = fz_make("expired", "OG Fuzz Old Responder", &k->ca, 4, 0, 1, NULL,
                         "20200101000000Z", "20210101000000Z");
    k->leaf = fz_make("leaf", "leaf.fuzz.example", &k->ca, FZ_LEAF_SERIAL, 0, 0, FZ_URL,
                      "20200101000000Z", "20400101000000Z");
    pem = tp_pem_chain(k->leaf.cert, k->ca.cert, &len);
    if (og_cert_from_pem(&k->cert, &err, k->pool, pem, len, NULL) != APR_SUCCESS
        || !k->cert->issuer) {
        fprintf(stderr, "fuzz_pki: og_cert_from_pem: %s\n", err ? err : "no issuer");
        abort();
    }
    free(pem);
    k->cert_refs[0] = k->cert->issuer_dn;
    k->cert_refs[1] = k->cert->serial;
    k->cert_refs[2] = k->cert->issuer;
    fz_pki_live = k;
    atexit(fz_pki_free);
    fz_rand_seed("run");
}

#endif /* FUZZ_PKI_H */

/* mkseeds.c: writes the seed corpora of the four fuzzers under the directory
 * given (fuzz/corpus: `make -C fuzz seeds`): records and report rows made
 * with og_record_encode, store files made with og_store_encode plus
 * version-1 and floors files laid out by hand (og_store.c's top comment), responses made
 * with tp_response on fuzz_pki.h's PKI (times relative to FZ_NOW), raw HTTP
 * replies. Each file is overwritten by name; nothing else in the directory
 * is touched. Small files only: a few dozen per target. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz_pki.h"
#include "og_fleet.h"
#include "og_record.h"
#include "og_store.h"

static fz_pki_t pki;
static const char *outdir;
static int nfiles;
static size_t nbytes;

static void put(const char *target, const char *name, const void *a, size_t alen,
                const void *b, size_t blen);
static unsigned char *response(const tp_ident_t *signer, X509 *for_cert, int status,
                               long this_off, long next_off, int no_next, int padding,
                               const EVP_MD *id_md, int *plen);
static void seeds_record(void);
static void seeds_store(void);
static void seeds_verify(void);
static void seeds_http(void);
static void put_be32(unsigned char *b, uint32_t v);

static void put(const char *target, const char *name, const void *a, size_t alen,
                const void *b, size_t blen)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    if (!(f = fopen(path, "wb"))
        || (alen && fwrite(a, 1, alen, f) != alen)
        || (blen && fwrite(b, 1, blen, f) != blen)
        || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    nfiles++;
    nbytes += alen + blen;
}

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24); b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);  b[3] = (unsigned char)v;
}

/* tp_response with offsets from FZ_NOW rather than from the clock */
static unsigned char *response(const tp_ident_t *signer, X509 *for_cert, int status,
                               long this_off, long next_off, int no_next, int padding,
                               const EVP_MD *id_md, int *plen)
{
    long shift = (long)(FZ_NOW_SEC - (long long)time(NULL));
    tp_resp_opts_t o;
    unsigned char *der;

    memset(&o, 0, sizeof(o));
    o.status = status;
    o.this_off = shift + this_off;
    o.next_off = shift + next_off;
    o.no_next = no_next;
    o.padding = padding;
    o.id_md = id_md;
    der = tp_response(for_cert, pki.ca.cert, signer, &o, plen);
    if (!der || *plen <= 0) {
        fprintf(stderr, "mkseeds: tp_response failed\n");
        exit(1);
    }
    return der;
}

/* ---- fuzz_record ------------------------------------------------------------ */

static void seeds_fleet(void);

static void seeds_record(void)
{
    static unsigned char buf[OG_RECORD_MAX], big[OG_OCSP_MAX_STAPLE];
    static const struct {
        const char *name;
        og_cert_status_e st;
        og_source_e src;
        long long this_s, next_s, fetched_s;
        int der;
    } recs[] = {
        { "record-good-refresh",   OG_STATUS_GOOD,    OG_SOURCE_REFRESH,  -3600, 7 * 86400, -60, 1 },
        { "record-revoked-store",  OG_STATUS_REVOKED, OG_SOURCE_STORE,    -3600, 86400, -60, 1 },
        { "record-unknown-fleet",  OG_STATUS_UNKNOWN, OG_SOURCE_FLEET,    0, 3600, 0, 1 },
        { "record-good-prefetch",  OG_STATUS_GOOD,    OG_SOURCE_PREFETCH, -1, 1, 0, 1 },
        { "record-none-empty",     OG_STATUS_NONE,    OG_SOURCE_NONE,     0, 0, 0, 0 },
    };
    og_record_t r;
    og_report_t rep;
    apr_size_t n;
    unsigned char *der;
    int len;
    size_t i;

    der = response(&pki.ca, pki.leaf.cert, V_OCSP_CERTSTATUS_GOOD, -3600, 7 * 86400, 0, 0,
                   NULL, &len);
    for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        memset(&r, 0, sizeof(r));
        r.this_update = FZ_NOW + apr_time_from_sec(recs[i].this_s);
        r.next_update = FZ_NOW + apr_time_from_sec(recs[i].next_s);
        r.fetched_at = FZ_NOW + apr_time_from_sec(recs[i].fetched_s);
        r.cert_status = recs[i].st;
        r.source = recs[i].src;
        /* never NULL: og_record_encode memcpy's from it even for 0 bytes */
        r.der = recs[i].der ? der : (const unsigned char *)"";
        r.der_len = recs[i].der ? (apr_size_t)len : 0;
        n = og_record_encode(buf, sizeof(buf), &r);
        put("fuzz_record", recs[i].name, buf, n, NULL, 0);
    }
    /* extreme times */
    memset(&r, 0, sizeof(r));
    r.this_update = INT64_MIN;
    r.next_update = INT64_MAX;
    r.fetched_at = -1;
    r.cert_status = OG_STATUS_GOOD;
    r.source = OG_SOURCE_REFRESH;
    r.der = (const unsigned char *)"\x30\x03\x0a\x01\x00";
    r.der_len = 5;
    n = og_record_encode(buf, sizeof(buf), &r);
    put("fuzz_record", "record-extreme-times", buf, n, NULL, 0);
    /* the largest record */
    memset(big, 0x30, sizeof(big));
    r.der = big;
    r.der_len = sizeof(big);
    n = og_record_encode(buf, sizeof(buf), &r);
    put("fuzz_record", "record-max-der", buf, n, NULL, 0);
    /* truncated: header one short, DER one short, DER length zeroed */
    memset(&r, 0, sizeof(r));
    r.this_update = FZ_NOW;
    r.next_update = FZ_NOW + apr_time_from_sec(3600);
    r.cert_status = OG_STATUS_GOOD;
    r.source = OG_SOURCE_REFRESH;
    r.der = der;
    r.der_len = (apr_size_t)len;
    n = og_record_encode(buf, sizeof(buf), &r);
    put("fuzz_record", "record-trunc-header", buf, OG_RECORD_HDR_LEN - 1, NULL, 0);
    put("fuzz_record", "record-trunc-der", buf, n - 1, NULL, 0);
    put_be32(buf + 4, 0);
    put("fuzz_record", "record-trunc-len0", buf, OG_RECORD_HDR_LEN + 8, NULL, 0);
    OPENSSL_free(der);

    /* report rows */
    memset(&rep, 0, sizeof(rep));
    n = og_report_encode(buf, &rep);
    put("fuzz_record", "report-empty", buf, n, NULL, 0);
    rep.failures = 3;
    rep.last_cert_status = OG_STATUS_GOOD;
    rep.last_attempt = FZ_NOW;
    rep.last_success = FZ_NOW - apr_time_from_sec(7200);
    rep.next_attempt = FZ_NOW + apr_time_from_sec(300);
    rep.last_ms = 1500;
    snprintf(rep.outcome, sizeof(rep.outcome), "timeout: no complete answer within the "
             "deadline (10001 ms)");
    n = og_report_encode(buf, &rep);
    put("fuzz_record", "report-timeout", buf, n, NULL, 0);
    put("fuzz_record", "report-trunc", buf, n - 1, NULL, 0);
    rep.failures = -1;
    rep.last_cert_status = OG_STATUS_UNKNOWN;
    rep.last_ms = INT64_MIN;
    memset(rep.outcome, 'x', OG_REPORT_OUTCOME_MAX);
    rep.outcome[OG_REPORT_OUTCOME_MAX] = '\0';
    n = og_report_encode(buf, &rep);
    put("fuzz_record", "report-max-outcome", buf, n, NULL, 0);
    rep.failures = 0;
    rep.last_cert_status = OG_STATUS_REVOKED;
    snprintf(rep.outcome, sizeof(rep.outcome), "ok: revoked (keyCompromise)");
    n = og_report_encode(buf, &rep);
    put("fuzz_record", "report-revoked", buf, n, NULL, 0);
    seeds_fleet();
}

/* what a fleet cache returns: a response's value and a claim (fuzz_record) */
static void seeds_fleet(void)
{
    static const unsigned char der[] = { 0x30, 0x03, 0x0a, 0x01, 0x06 };
    unsigned char buf[64], claim[OG_FLEET_CLAIM_LEN];
    og_fleet_claim_t c = { 0x1234567890abcdefULL, 1796181252000000LL };
    apr_size_t n = og_fleet_value_encode(buf, sizeof(buf), der, sizeof(der));

    put("fuzz_record", "fleet-value", buf, n, NULL, 0);
    og_fleet_claim_encode(claim, &c);
    put("fuzz_record", "fleet-claim", claim, sizeof(claim), NULL, 0);
}

/* ---- fuzz_store ------------------------------------------------------------- */

static void seeds_store(void)
{
    static unsigned char buf[OG_STORE_MAX + 64], rec[OG_RECORD_MAX];
    static const unsigned char id[OG_CERT_ID_LEN] = FZ_STORE_ID_INIT;
    unsigned char other[OG_CERT_ID_LEN];
    og_record_t r;
    og_floor_t f;
    apr_size_t n, rlen;
    unsigned int hl = 0;
    unsigned char *der;
    int len;

    der = response(&pki.responder, pki.leaf.cert, V_OCSP_CERTSTATUS_GOOD, -3600, 7 * 86400,
                   0, 0, NULL, &len);
    memset(&r, 0, sizeof(r));
    r.this_update = FZ_NOW - apr_time_from_sec(3600);
    r.next_update = FZ_NOW + apr_time_from_sec(7 * 86400);
    r.fetched_at = FZ_NOW;
    r.cert_status = OG_STATUS_GOOD;
    r.source = OG_SOURCE_REFRESH;
    r.der = der;
    r.der_len = (apr_size_t)len;
    memset(&f, 0, sizeof(f));
    f.newest_this_update = r.this_update;
    n = og_store_encode(buf, id, &r, &f);
    put("fuzz_store", "v2-good.ocsp", buf, n, NULL, 0);
    put("fuzz_store", "v2-trunc-hash.ocsp", buf, n - 1, NULL, 0);
    put("fuzz_store", "v2-trunc-record.ocsp", buf, OG_STORE_HDR + 20, NULL, 0);
    put("fuzz_store", "v2-trunc-header.ocsp", buf, OG_STORE_HDR - 1, NULL, 0);
    put("fuzz_store", "v2-padded.ocsp", buf, n, "\n", 1);
    buf[n - 1] ^= 0x01;
    put("fuzz_store", "v2-bad-checksum.ocsp", buf, n, NULL, 0);
    buf[n - 1] ^= 0x01;
    buf[4] = 3;
    put("fuzz_store", "v3-unknown-version.ocsp", buf, n, NULL, 0);

    /* revoked, with a floor older than the record; then for another id */
    r.cert_status = OG_STATUS_REVOKED;
    r.source = OG_SOURCE_STORE;
    f.newest_this_update = r.this_update + apr_time_from_sec(60);
    f.revoked_this_update = r.this_update;
    f.revoked_at = FZ_NOW - apr_time_from_sec(86400);
    n = og_store_encode(buf, id, &r, &f);
    put("fuzz_store", "v2-revoked-floor.ocsp", buf, n, NULL, 0);
    memcpy(other, id, sizeof(other));
    other[19] ^= 0xff;
    n = og_store_encode(buf, other, &r, &f);
    put("fuzz_store", "v2-other-id.ocsp", buf, n, NULL, 0);

    /* an empty record (no DER) and extreme floors */
    memset(&r, 0, sizeof(r));
    r.der = (const unsigned char *)""; /* see seeds_record */
    f.newest_this_update = INT64_MAX;
    f.revoked_this_update = INT64_MIN;
    f.revoked_at = -1;
    n = og_store_encode(buf, id, &r, &f);
    put("fuzz_store", "v2-empty-record.ocsp", buf, n, NULL, 0);

    /* version 1: "OGST", 1, 3 zero, id at 8, u32 L at 28, record at 32, SHA-256 */
    r.this_update = FZ_NOW - apr_time_from_sec(3600);
    r.next_update = FZ_NOW + apr_time_from_sec(7 * 86400);
    r.fetched_at = FZ_NOW;
    r.cert_status = OG_STATUS_GOOD;
    r.source = OG_SOURCE_REFRESH;
    r.der = der;
    r.der_len = (apr_size_t)len;
    for (int v1 = 0; v1 < 2; v1++) {
        if (v1 == 1) {
            r.cert_status = OG_STATUS_REVOKED;
        }
        rlen = og_record_encode(rec, sizeof(rec), &r);
        memset(buf, 0, 32);
        memcpy(buf, OG_STORE_MAGIC, 4);
        buf[4] = 1;
        memcpy(buf + 8, id, OG_CERT_ID_LEN);
        put_be32(buf + 28, (uint32_t)rlen);
        memcpy(buf + 32, rec, rlen);
        EVP_Digest(buf, 32 + rlen, buf + 32 + rlen, &hl, EVP_sha256(), NULL);
        put("fuzz_store", v1 ? "v1-revoked.ocsp" : "v1-good.ocsp", buf, 32 + rlen + 32,
            NULL, 0);
    }
    put("fuzz_store", "v1-trunc.ocsp", buf, 32 + 32, NULL, 0);
    OPENSSL_free(der);

    /* floors files: "OGFL", 1, 3 zero, u32 N, N x (id, i64 newest, i64 revoked
     * thisUpdate, i64 revocationTime), SHA-256 (og_store.c's top comment) */
    {
        static const struct {
            const char *name;
            int n, dup;
        } fl[] = {
            { "floors-empty", 0, 0 }, { "floors-two", 2, 0 }, { "floors-duplicate-id", 3, 1 },
        };
        size_t k, flen;
        int e;

        for (k = 0; k < sizeof(fl) / sizeof(fl[0]); k++) {
            memset(buf, 0, 12);
            memcpy(buf, "OGFL", 4);
            buf[4] = 1;
            put_be32(buf + 8, (uint32_t)fl[k].n);
            for (e = 0; e < fl[k].n; e++) {
                unsigned char *x = buf + 12 + 44 * e;
                apr_time_t t[3];
                int j, b;

                memcpy(x, id, OG_CERT_ID_LEN);
                x[19] = (unsigned char)(fl[k].dup ? (e > 0) : e);
                t[0] = FZ_NOW - apr_time_from_sec(3600L * (e + 1));
                t[1] = e == 1 ? FZ_NOW - apr_time_from_sec(86400) : 0;
                t[2] = e == 1 ? FZ_NOW - apr_time_from_sec(2 * 86400) : 0;
                for (j = 0; j < 3; j++) {
                    for (b = 0; b < 8; b++) {
                        x[20 + 8 * j + b] = (unsigned char)((apr_uint64_t)t[j] >> (56 - 8 * b));
                    }
                }
            }
            flen = 12 + 44 * (size_t)fl[k].n;
            EVP_Digest(buf, flen, buf + flen, &hl, EVP_sha256(), NULL);
            put("fuzz_store", fl[k].name, buf, flen + 32, NULL, 0);
            if (fl[k].n == 2) {
                put("fuzz_store", "floors-trunc", buf, flen + 31, NULL, 0);
                buf[flen] ^= 0x80;
                put("fuzz_store", "floors-bad-checksum", buf, flen + 32, NULL, 0);
            }
        }
    }
}

/* ---- fuzz_verify ------------------------------------------------------------ */

static void seeds_verify(void)
{
    /* mode byte: bits 0-1 mode (0 as is, 1 re-sign, 3 rebuild), bits 2-4
     * max_validity index (0: none, 5: 10 days, 7: 3650 days), bits 5-7 options */
    static const struct {
        const char *name;
        const tp_ident_t *signer;
        int status;
        long this_off, next_off;
        int no_next, padding, sha256, other_cert;
        unsigned char modes[3];    /* up to three mode bytes, 0xff: none */
    } shapes[] = {
        { "good-issuer",      &pki.ca,        V_OCSP_CERTSTATUS_GOOD,    -3600, 7 * 86400, 0, 0, 0, 0, { 0x00, 0x81, 0x83 } },
        { "good-delegated",   &pki.responder, V_OCSP_CERTSTATUS_GOOD,    -3600, 7 * 86400, 0, 0, 0, 0, { 0x00, 0x01, 0x03 } },
        { "revoked-issuer",   &pki.ca,        V_OCSP_CERTSTATUS_REVOKED, -3600, 86400,     0, 0, 0, 0, { 0x00, 0x01, 0xff } },
        { "unknown-delegated",&pki.responder, V_OCSP_CERTSTATUS_UNKNOWN, -3600, 86400,     0, 0, 0, 0, { 0x00, 0xff, 0xff } },
        { "sha256-certid",    &pki.responder, V_OCSP_CERTSTATUS_GOOD,    -3600, 7 * 86400, 0, 0, 1, 0, { 0x00, 0x21, 0x03 } },
        { "no-next-update",   &pki.ca,        V_OCSP_CERTSTATUS_GOOD,    -3600, 0,         1, 0, 0, 0, { 0x00, 0x41, 0xff } },
        { "padded",           &pki.responder, V_OCSP_CERTSTATUS_GOOD,    -3600, 7 * 86400, 0, 3, 0, 0, { 0x00, 0x01, 0x03 } },
        { "expired",          &pki.responder, V_OCSP_CERTSTATUS_GOOD,    -10 * 86400, -3 * 86400, 0, 0, 0, 0, { 0x00, 0x03, 0xff } },
        { "future",           &pki.ca,        V_OCSP_CERTSTATUS_GOOD,    3600, 7 * 86400,  0, 0, 0, 0, { 0x00, 0xff, 0xff } },
        { "long-validity",    &pki.responder, V_OCSP_CERTSTATUS_GOOD,    -3600, 3650L * 86400, 0, 0, 0, 0, { 0x14, 0x15, 0x17 } },
        { "signer-no-eku",    &pki.nosign,    V_OCSP_CERTSTATUS_GOOD,    -3600, 86400,     0, 0, 0, 0, { 0x00, 0xff, 0xff } },
        { "signer-lookalike", &pki.rogue,     V_OCSP_CERTSTATUS_GOOD,    -3600, 86400,     0, 0, 0, 0, { 0x00, 0xff, 0xff } },
        { "signer-expired",   &pki.expired,   V_OCSP_CERTSTATUS_GOOD,    -3600, 86400,     0, 0, 0, 0, { 0x00, 0xff, 0xff } },
        { "other-cert",       &pki.ca,        V_OCSP_CERTSTATUS_GOOD,    -3600, 86400,     0, 0, 0, 1, { 0x00, 0x03, 0xff } },
    };
    /* mode 2: the generator's bytes, in the order mode_structured reads them:
     * signer, flags, validity byte [u16 days], count, position of ours, then
     * per SingleResponse: issuer, status byte, reason, CertID hash, serial
     * kind, thisUpdate, nextUpdate (unless status byte bit 7), revocationTime
     * (revoked only), raw time (status byte bits 4-6); a time is a kind byte
     * and its payload (0 minutes, 1 hours, 2 days as i16; 3 offset and 4
     * absolute seconds as i64; 5 a special; 6 fields; 7 around the skew). */
    static const struct {
        const char *name;
        unsigned char b[64];
        size_t len;
    } gen[] = {
        { "gen-good-issuer",
          { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 2, 0, 7 }, 17 },
        { "gen-revoked-delegated-sha256-maxvalidity",
          { 2, 1, 0, 1, 0, 10, 0, 0, 0, 1, 1, 3, 0, 1, 0xff, 0xff, 2, 0, 1, 2, 0xff, 0xff },
          22 },
        { "gen-next-year-9999-capped",
          { 2, 0, 0, 1, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 5, 0 }, 18 },
        { "gen-int64-extremes",
          { 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            3, 0x80, 0, 0, 0, 0, 0, 0, 0, 3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
          29 },
        { "gen-future-beyond-skew",
          { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 0, 7 }, 16 },
        { "gen-five-singles-keyid",
          { 2, 2, 0, 0, 4, 2,
            0, 0, 0, 0, 2, 1, 0xff, 0xff, 2, 0, 7,
            0, 0, 0, 4, 3, 1, 0xff, 0xff, 2, 0, 7,
            0, 0, 0, 0, 0, 1, 0xff, 0xff, 2, 0, 7,
            6, 0, 0, 0, 0, 1, 0xff, 0xff, 2, 0, 7,
            0, 0, 0, 0, 4, 1, 0xff, 0xff, 2, 0, 7 }, 61 },
        { "gen-raw-fractional-time",
          { 2, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 1, 0xff, 0xff, 2, 0, 7, 19,
            '2', '0', '2', '4', '1', '2', '3', '1', '2', '3', '0', '0', '0', '0', '.', '1',
            '2', '3', 'Z' }, 37 },
        { "gen-successful-without-body", { 2, 0, 0x80, 0xf0 }, 4 },
    };
    unsigned char *der;
    tp_ident_t other;
    int len;
    size_t i, m;
    char name[128];

    other = fz_make("other", "other.fuzz.example", &pki.ca, FZ_LEAF_SERIAL + 1, 0, 0, NULL,
                    "20200101000000Z", "20400101000000Z");
    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        der = response(shapes[i].signer, shapes[i].other_cert ? other.cert : pki.leaf.cert,
                       shapes[i].status, shapes[i].this_off, shapes[i].next_off,
                       shapes[i].no_next, shapes[i].padding,
                       shapes[i].sha256 ? EVP_sha256() : NULL, &len);
        for (m = 0; m < 3; m++) {
            unsigned char mb = shapes[i].modes[m];
            static const char *const mode_name[4] = { "asis", "resign", "gen", "rebuild" };

            if (mb == 0xff) {
                continue;
            }
            snprintf(name, sizeof(name), "%s-%s%s", mode_name[mb & 3], shapes[i].name,
                     (mb & 0x1c) ? "-maxvalidity" : "");
            put("fuzz_verify", name, &mb, 1, der, (size_t)len);
        }
        OPENSSL_free(der);
    }
    {
        /* many SingleResponses: the largest that may be stapled, then one more
         * than fits (OG_OCSP_MAX_STAPLE) */
        unsigned char mb = 0, *prev = NULL;
        int pad, prev_len = 0;

        for (pad = 150; pad < 400; pad++) {
            der = response(&pki.ca, pki.leaf.cert, V_OCSP_CERTSTATUS_GOOD, -3600, 86400, 0,
                           pad, NULL, &len);
            if (len > OG_OCSP_MAX_STAPLE) {
                if (prev) {
                    put("fuzz_verify", "asis-padded-to-the-limit", &mb, 1, prev,
                        (size_t)prev_len);
                }
                put("fuzz_verify", "asis-too-large", &mb, 1, der, (size_t)len);
                OPENSSL_free(der);
                break;
            }
            OPENSSL_free(prev);
            prev = der;
            prev_len = len;
        }
        OPENSSL_free(prev);
    }
    {
        /* not successful, no responseBytes */
        OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
        unsigned char mb = 0, *d = NULL;

        len = i2d_OCSP_RESPONSE(resp, &d);
        put("fuzz_verify", "asis-trylater", &mb, 1, d, (size_t)len);
        OPENSSL_free(d);
        OCSP_RESPONSE_free(resp);
    }
    for (i = 0; i < sizeof(gen) / sizeof(gen[0]); i++) {
        put("fuzz_verify", gen[i].name, gen[i].b, gen[i].len, NULL, 0);
    }
    tp_free(&other);
}

/* ---- fuzz_http -------------------------------------------------------------- */

static void seeds_http(void)
{
    /* control byte: bits 0-1 URL (0 GET, 1 POST, 2 GET port 80, 3 GET [::1]),
     * bits 2-3 body cap (0 64 KiB, 1 16, 2 200, 3 1024 bytes) */
    static const char ok_hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n";
    char hdr[512], body[4096];
    unsigned char *der, c;
    int len, n;

    der = response(&pki.ca, pki.leaf.cert, V_OCSP_CERTSTATUS_GOOD, -3600, 7 * 86400, 0, 0,
                   NULL, &len);
    n = snprintf(hdr, sizeof(hdr), "%sContent-Length: %d\r\n\r\n", ok_hdr, len);
    memcpy(body, hdr, (size_t)n);
    memcpy(body + n, der, (size_t)len);
    c = 0x00; put("fuzz_http", "200-ocsp-get", &c, 1, body, (size_t)(n + len));
    c = 0x01; put("fuzz_http", "200-ocsp-post", &c, 1, body, (size_t)(n + len));
    c = 0x02; put("fuzz_http", "200-ocsp-port80", &c, 1, body, (size_t)(n + len));
    c = 0x03; put("fuzz_http", "200-ocsp-ipv6", &c, 1, body, (size_t)(n + len));
    c = 0x04; put("fuzz_http", "200-ocsp-cap16", &c, 1, body, (size_t)(n + len));
    c = 0x09; put("fuzz_http", "200-ocsp-post-cap200", &c, 1, body, (size_t)(n + len));
    /* Content-Length larger than the body, then a huge one */
    n = snprintf(hdr, sizeof(hdr), "%sContent-Length: %d\r\n\r\n", ok_hdr, len + 100);
    memcpy(body, hdr, (size_t)n);
    memcpy(body + n, der, (size_t)len);
    c = 0x00; put("fuzz_http", "200-length-too-long", &c, 1, body, (size_t)(n + len));
    n = snprintf(hdr, sizeof(hdr), "%sContent-Length: 99999999999999999999\r\n\r\n", ok_hdr);
    memcpy(body, hdr, (size_t)n);
    memcpy(body + n, der, (size_t)len);
    c = 0x01; put("fuzz_http", "200-length-huge", &c, 1, body, (size_t)(n + len));
    /* chunked, in two chunks */
    n = snprintf(hdr, sizeof(hdr), "%sTransfer-Encoding: chunked\r\n\r\n%x\r\n", ok_hdr, 10);
    memcpy(body, hdr, (size_t)n);
    memcpy(body + n, der, 10);
    n += 10;
    n += snprintf(body + n, sizeof(body) - (size_t)n, "\r\n%x\r\n", len - 10);
    memcpy(body + n, der + 10, (size_t)len - 10);
    n += len - 10;
    n += snprintf(body + n, sizeof(body) - (size_t)n, "\r\n0\r\n\r\n");
    c = 0x00; put("fuzz_http", "200-chunked", &c, 1, body, (size_t)n);
    /* HTTP/1.0, no length: the body ends at close */
    n = snprintf(body, sizeof(body), "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n\r\n");
    memcpy(body + n, der, (size_t)len);
    c = 0x00; put("fuzz_http", "200-http10-no-length", &c, 1, body, (size_t)(n + len));
    /* 100 Continue first */
    n = snprintf(body, sizeof(body), "HTTP/1.1 100 Continue\r\n\r\n%sContent-Length: %d\r\n\r\n",
                 ok_hdr, len);
    memcpy(body + n, der, (size_t)len);
    c = 0x01; put("fuzz_http", "100-then-200", &c, 1, body, (size_t)(n + len));
    /* wrong or missing content type, a body that is not DER */
    n = snprintf(body, sizeof(body), "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                 "Content-Length: 13\r\n\r\n<html></html>");
    c = 0x00; put("fuzz_http", "200-wrong-type", &c, 1, body, (size_t)n);
    n = snprintf(body, sizeof(body), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len);
    memcpy(body + n, der, (size_t)len);
    c = 0x00; put("fuzz_http", "200-no-type", &c, 1, body, (size_t)(n + len));
    n = snprintf(body, sizeof(body), "%sContent-Length: 5\r\n\r\nhello", ok_hdr);
    c = 0x00; put("fuzz_http", "200-not-der", &c, 1, body, (size_t)n);
    /* headers only, and a reply cut inside the headers */
    n = snprintf(body, sizeof(body), "%s\r\n", ok_hdr);
    c = 0x00; put("fuzz_http", "200-headers-only", &c, 1, body, (size_t)n);
    c = 0x01; put("fuzz_http", "200-cut-in-headers", &c, 1, ok_hdr, sizeof(ok_hdr) - 10);
    /* redirects and errors */
    n = snprintf(body, sizeof(body), "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:8081/\r\n"
                 "Content-Length: 0\r\n\r\n");
    c = 0x00; put("fuzz_http", "302-location-get", &c, 1, body, (size_t)n);
    c = 0x01; put("fuzz_http", "302-location-post", &c, 1, body, (size_t)n);
    n = snprintf(body, sizeof(body), "HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n");
    c = 0x00; put("fuzz_http", "301-no-location", &c, 1, body, (size_t)n);
    n = snprintf(body, sizeof(body), "HTTP/1.1 500 Internal Server Error\r\n"
                 "Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nboom\r\n");
    c = 0x00; put("fuzz_http", "500", &c, 1, body, (size_t)n);
    n = snprintf(body, sizeof(body), "HTTP/1.1 404 \x01\x1b[31mred\x7f\xff\r\n\r\n");
    c = 0x01; put("fuzz_http", "404-control-bytes-reason", &c, 1, body, (size_t)n);
    /* garbage and nothing */
    c = 0x00; put("fuzz_http", "garbage", &c, 1, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03"
                  "\x03GET / HTTP/1.1\r\n\r\n\x00\xff", 31);
    c = 0x00; put("fuzz_http", "empty", &c, 1, NULL, 0);
    OPENSSL_free(der);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    fz_pki_init(&pki);
    seeds_record();
    seeds_store();
    seeds_verify();
    seeds_http();
    printf("mkseeds: %d files, %zu bytes under %s\n", nfiles, nbytes, outdir);
    return 0; /* fz_pki_free runs at exit */
}

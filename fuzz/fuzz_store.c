/* fuzz_store.c: libFuzzer target for the readers of the store's files:
 * og_store_parse (store files, versions 1 and 2, which anyone owning the
 * store directory can write) and og_store_floors_parse (root's floors file).
 * A store file is parsed for a fixed id and for the id it carries at bytes
 * 8..27; a second pass repairs the SHA-256 trailer first, so that mutations
 * reach the decoders behind the checksum. A store file that parses is encoded
 * as version 2 and parsed again: record and floor must come back the same;
 * floors that parse must hold, per id, the newest of its entries.
 * Pure: no file is opened, nothing is kept between inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "og_store.h"
#include "fuzz_pki.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The id of the seeds (FZ_STORE_ID_INIT, which mkseeds.c writes). */
static const unsigned char fixed_id[OG_CERT_ID_LEN] = FZ_STORE_ID_INIT;

static void same_or_abort(const og_record_t *a, const og_floor_t *fa,
                          const og_record_t *b, const og_floor_t *fb);
static void parse_one(apr_pool_t *p, const unsigned char *data, size_t size,
                      const unsigned char *id);
static int repair_checksum(unsigned char *buf, size_t size);
static void floors_one(apr_pool_t *p, const unsigned char *data, size_t size);
static int repair_floors_checksum(unsigned char *buf, size_t size);
static int64_t be64(const unsigned char *b);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    apr_initialize();
    atexit(apr_terminate);
    return 0;
}

static void same_or_abort(const og_record_t *a, const og_floor_t *fa,
                          const og_record_t *b, const og_floor_t *fb)
{
    if (a->this_update != b->this_update || a->next_update != b->next_update
        || a->fetched_at != b->fetched_at || a->cert_status != b->cert_status
        || a->source != b->source || a->der_len != b->der_len
        || (a->der_len && memcmp(a->der, b->der, a->der_len) != 0)) {
        fprintf(stderr, "fuzz_store: the record changed through encode and parse\n");
        abort();
    }
    if (fa->newest_this_update != fb->newest_this_update
        || fa->revoked_this_update != fb->revoked_this_update
        || fa->revoked_at != fb->revoked_at) {
        fprintf(stderr, "fuzz_store: the floor changed through encode and parse\n");
        abort();
    }
}

static void parse_one(apr_pool_t *p, const unsigned char *data, size_t size,
                      const unsigned char *id)
{
    static unsigned char enc[OG_STORE_MAX];
    og_record_t rec, rec2;
    og_floor_t floor, floor2;
    const char *err = NULL;
    apr_size_t elen;

    memset(&rec, 0, sizeof(rec));
    memset(&floor, 0, sizeof(floor));
    if (og_store_parse(&rec, &floor, &err, p, data, size, id) != APR_SUCCESS) {
        if (!err) {
            fprintf(stderr, "fuzz_store: refused without a reason\n");
            abort();
        }
        return;
    }
    if (rec.der_len > OG_OCSP_MAX_STAPLE || (rec.der_len && !rec.der)) {
        fprintf(stderr, "fuzz_store: parsed a record with DER length %zu\n",
                (size_t)rec.der_len);
        abort();
    }
    elen = og_store_encode(enc, id, &rec, &floor);
    if (!elen || elen > OG_STORE_MAX) {
        fprintf(stderr, "fuzz_store: a parsed record does not encode (%zu)\n", (size_t)elen);
        abort();
    }
    memset(&rec2, 0, sizeof(rec2));
    memset(&floor2, 0, sizeof(floor2));
    if (og_store_parse(&rec2, &floor2, &err, p, enc, elen, id) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_store: own encoding refused: %s\n", err ? err : "?");
        abort();
    }
    same_or_abort(&rec, &floor, &rec2, &floor2);
}

/* Where og_store_parse expects the SHA-256, put the right one (bytes
 * past the trailer stay as they are). Returns 0 when the header does not
 * say where the trailer is. */
static int repair_checksum(unsigned char *buf, size_t size)
{
    size_t hdr, rlen;
    unsigned int n = 0;

    if (size < 64 || memcmp(buf, OG_STORE_MAGIC, 4) != 0) {
        return 0;
    }
    if (buf[4] == 1) {
        hdr = 32;
        rlen = ((size_t)buf[28] << 24) | ((size_t)buf[29] << 16)
               | ((size_t)buf[30] << 8) | buf[31];
    }
    else if (size >= OG_STORE_HDR + OG_STORE_HASH) {
        hdr = OG_STORE_HDR;
        rlen = ((size_t)buf[56] << 24) | ((size_t)buf[57] << 16)
               | ((size_t)buf[58] << 8) | buf[59];
    }
    else {
        return 0;
    }
    if (rlen > size || hdr + rlen + OG_STORE_HASH > size) {
        return 0;
    }
    return EVP_Digest(buf, hdr + rlen, buf + hdr + rlen, &n, EVP_sha256(), NULL) == 1;
}

static int64_t be64(const unsigned char *b)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | b[i];
    }
    return (int64_t)v;
}

/* floors file layout (og_store.c): "OGFL", 1, 3 zero, u32 N, N entries of
 * 44 bytes (id, i64 newest, i64 revoked thisUpdate, i64 revocationTime),
 * SHA-256 of all before it */
static void floors_one(apr_pool_t *p, const unsigned char *data, size_t size)
{
    apr_hash_t *floors = apr_hash_make(p);
    const char *err = NULL;
    size_t n, i;

    if (og_store_floors_parse(floors, &err, data, size) != APR_SUCCESS) {
        if (!err) {
            fprintf(stderr, "fuzz_store: floors refused without a reason\n");
            abort();
        }
        return;
    }
    n = ((size_t)data[8] << 24) | ((size_t)data[9] << 16) | ((size_t)data[10] << 8) | data[11];
    if ((size_t)apr_hash_count(floors) > n) {
        fprintf(stderr, "fuzz_store: %u floors from %zu entries\n", apr_hash_count(floors), n);
        abort();
    }
    for (i = 0; i < n; i++) {
        const unsigned char *e = data + 12 + i * 44;
        const og_floor_t *f = apr_hash_get(floors, e, OG_CERT_ID_LEN);

        if (!f || f->newest_this_update < be64(e + 20)
            || f->revoked_this_update < be64(e + 28)) {
            fprintf(stderr, "fuzz_store: floors entry %zu lost or rolled back\n", i);
            abort();
        }
    }
}

static int repair_floors_checksum(unsigned char *buf, size_t size)
{
    unsigned int n = 0;

    if (size < 12 + OG_STORE_HASH || memcmp(buf, "OGFL", 4) != 0) {
        return 0;
    }
    return EVP_Digest(buf, size - OG_STORE_HASH, buf + size - OG_STORE_HASH, &n,
                      EVP_sha256(), NULL) == 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_pool_create();
    unsigned char *copy;

    parse_one(p, data, size, fixed_id);
    if (size >= 8 + OG_CERT_ID_LEN) {
        parse_one(p, data, size, data + 8);
    }
    if (size >= 64 && size <= OG_STORE_MAX + 64) {
        copy = apr_pmemdup(p, data, size);
        if (repair_checksum(copy, size)) {
            parse_one(p, copy, size, fixed_id);
            parse_one(p, copy, size, copy + 8);
        }
    }
    floors_one(p, data, size);
    if (size >= 12 + OG_STORE_HASH) {
        copy = apr_pmemdup(p, data, size);
        if (repair_floors_checksum(copy, size)) {
            floors_one(p, copy, size);
        }
    }
    apr_pool_destroy(p);
    return 0;
}

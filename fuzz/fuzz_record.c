/* fuzz_record.c: libFuzzer target for the two shared-memory rows of
 * og_record.c and the two frames of og_fleet.c (what a fleet cache returns:
 * a response's value and a claim). The input is offered to og_record_decode,
 * og_report_decode, og_fleet_value_decode and og_fleet_claim_decode; whatever decodes is encoded again and must come back
 * byte for byte (one encoding per value: a decoder that accepts bytes the
 * encoder never writes is a finding). No I/O, no state between inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "og_fleet.h"
#include "og_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip_failed(const char *what, const uint8_t *data, size_t size,
                              const unsigned char *again, size_t alen);
static void fuzz_record(const uint8_t *data, size_t size);
static void fuzz_report(const uint8_t *data, size_t size);
static void fuzz_fleet(const uint8_t *data, size_t size);

static void round_trip_failed(const char *what, const uint8_t *data, size_t size,
                              const unsigned char *again, size_t alen)
{
    size_t i, n = size < alen ? size : alen;

    for (i = 0; i < n && data[i] == again[i]; i++) {
    }
    fprintf(stderr, "fuzz_record: %s round trip differs: %zu bytes in, %zu out, "
            "first difference at offset %zu (in 0x%02x, out 0x%02x)\n", what, size, alen,
            i, i < size ? data[i] : 0, i < alen ? again[i] : 0);
    abort();
}

static void fuzz_record(const uint8_t *data, size_t size)
{
    static unsigned char again[OG_RECORD_MAX];
    og_record_t r;
    apr_size_t alen;

    memset(&r, 0, sizeof(r));
    if (og_record_decode(&r, data, size) != 0) {
        return;
    }
    if (r.der != data + OG_RECORD_HDR_LEN || r.der_len != size - OG_RECORD_HDR_LEN) {
        fprintf(stderr, "fuzz_record: decoded DER does not point into the input\n");
        abort();
    }
    /* a decoded record always fits its own encoding */
    alen = og_record_encode(again, sizeof(again), &r);
    if (alen != size || memcmp(again, data, size) != 0) {
        round_trip_failed("record", data, size, again, alen);
    }
    /* and a buffer one byte short is refused, not overrun */
    if (og_record_encode(again, size - 1, &r) != 0) {
        fprintf(stderr, "fuzz_record: encode ignored its capacity\n");
        abort();
    }
    (void)og_record_stapleable(&r, r.this_update);
    (void)og_source_str(r.source);
}

static void fuzz_report(const uint8_t *data, size_t size)
{
    static unsigned char again[OG_REPORT_MAX];
    og_report_t r;
    apr_size_t alen;

    memset(&r, 0, sizeof(r));
    if (og_report_decode(&r, data, size) != 0) {
        return;
    }
    if (strlen(r.outcome) != size - OG_REPORT_HDR_LEN) {
        fprintf(stderr, "fuzz_record: report outcome length %zu, row says %zu\n",
                strlen(r.outcome), size - (size_t)OG_REPORT_HDR_LEN);
        abort();
    }
    alen = og_report_encode(again, &r);
    if (alen != size || memcmp(again, data, size) != 0) {
        round_trip_failed("report", data, size, again, alen);
    }
}

static void fuzz_fleet(const uint8_t *data, size_t size)
{
    static unsigned char again[OG_FLEET_VALUE_MAX];
    const unsigned char *der = NULL;
    apr_size_t len = 0, alen;
    og_fleet_claim_t c;

    if (og_fleet_value_decode(data, size, &der, &len) == 0) {
        if (der != data + OG_FLEET_MAGIC_LEN || len != size - OG_FLEET_MAGIC_LEN || !len) {
            fprintf(stderr, "fuzz_record: fleet value DER does not point into the input\n");
            abort();
        }
        alen = og_fleet_value_encode(again, sizeof(again), der, len);
        if (alen != size || memcmp(again, data, size) != 0) {
            round_trip_failed("fleet value", data, size, again, alen);
        }
    }
    if (og_fleet_claim_decode(&c, data, size) == 0) {
        og_fleet_claim_encode(again, &c);
        if (size != OG_FLEET_CLAIM_LEN || memcmp(again, data, size) != 0) {
            round_trip_failed("fleet claim", data, size, again, OG_FLEET_CLAIM_LEN);
        }
        (void)og_fleet_claim_defers(&c, 1, c.until / 2, c.until);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_record(data, size);
    fuzz_report(data, size);
    fuzz_fleet(data, size);
    return 0;
}

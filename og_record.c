/* og_record.c: encode and decode the two rows kept in shared memory per
 * certificate (see og_record.h): the record the handshake path staples and
 * the report row the status page shows. Never raw struct bytes.
 * Record layout, all integers big-endian:
 *   0  u32 magic "OGR1"        4  u32 DER length
 *   8  i64 thisUpdate (us)    16  i64 nextUpdate (us, effective)
 *  24  i64 fetched at (us)    32  u8 cert status   33 u8 source
 *  34  6 bytes zero           40  DER
 * Report row layout, all integers big-endian:
 *   0  u32 magic "OGP1"        4  i32 consecutive failures
 *   8  u8 last cert status     9  3 bytes zero
 *  12  u16 outcome length N   14  2 bytes zero
 *  16  i64 last attempt (us)  24  i64 last success (us)
 *  32  i64 next attempt (us)  40  i64 last fetch duration (ms)
 *  48  outcome, N bytes of printable ASCII (no NUL), N <= 199
 * Core file: APR only. */
#include <string.h>

#include "og_record.h"


const char *og_source_str(og_source_e s)
{
    switch (s) {
    case OG_SOURCE_NONE:     return "none";
    case OG_SOURCE_PREFETCH: return "prefetch";
    case OG_SOURCE_REFRESH:  return "refresh";
    case OG_SOURCE_STORE:    return "store";
    case OG_SOURCE_FLEET:    return "fleet";
    }
    return "?";
}

apr_size_t og_record_encode(unsigned char *buf, apr_size_t cap, const og_record_t *r)
{
    apr_size_t total = OG_RECORD_HDR_LEN + r->der_len;

    if (r->der_len > OG_OCSP_MAX_STAPLE || total > cap) {
        return 0;
    }
    memset(buf, 0, OG_RECORD_HDR_LEN);
    og_put32(buf, OG_RECORD_MAGIC);
    og_put32(buf + 4, (apr_uint32_t)r->der_len);
    og_put64(buf + 8, r->this_update);
    og_put64(buf + 16, r->next_update);
    og_put64(buf + 24, r->fetched_at);
    buf[32] = (unsigned char)r->cert_status;
    buf[33] = (unsigned char)r->source;
    if (r->der_len) { /* der may be NULL in an empty record */
        memcpy(buf + OG_RECORD_HDR_LEN, r->der, r->der_len);
    }
    return total;
}

int og_record_decode(og_record_t *r, const unsigned char *buf, apr_size_t len)
{
    apr_uint32_t der_len;

    if (len < OG_RECORD_HDR_LEN || og_get32(buf) != OG_RECORD_MAGIC) {
        return -1;
    }
    der_len = og_get32(buf + 4);
    if (der_len > OG_OCSP_MAX_STAPLE || der_len != len - OG_RECORD_HDR_LEN
        || buf[32] > OG_STATUS_UNKNOWN || buf[33] > OG_SOURCE_FLEET
        || buf[34] || buf[35] || buf[36] || buf[37] || buf[38] || buf[39]) {
        return -1; /* bytes 34..39 are written zero: anything else is not ours */
    }
    r->this_update = og_get64(buf + 8);
    r->next_update = og_get64(buf + 16);
    r->fetched_at = og_get64(buf + 24);
    r->cert_status = (og_cert_status_e)buf[32];
    r->source = (og_source_e)buf[33];
    r->der = buf + OG_RECORD_HDR_LEN;
    r->der_len = der_len;
    return 0;
}

int og_record_stapleable(const og_record_t *r, apr_time_t now)
{
    return r->der_len > 0
           && (r->cert_status == OG_STATUS_GOOD || r->cert_status == OG_STATUS_REVOKED)
           && now < r->next_update;
}

apr_size_t og_report_encode(unsigned char *buf, const og_report_t *r)
{
    apr_size_t n = strnlen(r->outcome, OG_REPORT_OUTCOME_MAX), i;

    if (n > OG_REPORT_OUTCOME_MAX) {
        n = OG_REPORT_OUTCOME_MAX;
    }
    memset(buf, 0, OG_REPORT_HDR_LEN);
    og_put32(buf, OG_REPORT_MAGIC);
    og_put32(buf + 4, (apr_uint32_t)r->failures);
    buf[8] = (unsigned char)r->last_cert_status;
    buf[12] = (unsigned char)(n >> 8);
    buf[13] = (unsigned char)n;
    og_put64(buf + 16, r->last_attempt);
    og_put64(buf + 24, r->last_success);
    og_put64(buf + 32, r->next_attempt);
    og_put64(buf + 40, r->last_ms);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)r->outcome[i];
        buf[OG_REPORT_HDR_LEN + i] = (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return OG_REPORT_HDR_LEN + n;
}

int og_report_decode(og_report_t *r, const unsigned char *buf, apr_size_t len)
{
    apr_size_t n, i;

    if (len < OG_REPORT_HDR_LEN || og_get32(buf) != OG_REPORT_MAGIC
        || buf[8] > OG_STATUS_UNKNOWN
        || buf[9] || buf[10] || buf[11] || buf[14] || buf[15]) {
        return -1; /* bytes 9..11 and 14..15 are written zero */
    }
    n = ((apr_size_t)buf[12] << 8) | buf[13];
    if (n > OG_REPORT_OUTCOME_MAX || len != OG_REPORT_HDR_LEN + n) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = buf[OG_REPORT_HDR_LEN + i];
        if (c < 0x20 || c >= 0x7f) {
            return -1;
        }
    }
    r->failures = (int)(apr_int32_t)og_get32(buf + 4);
    r->last_cert_status = (og_cert_status_e)buf[8];
    r->last_attempt = og_get64(buf + 16);
    r->last_success = og_get64(buf + 24);
    r->next_attempt = og_get64(buf + 32);
    r->last_ms = og_get64(buf + 40);
    memcpy(r->outcome, buf + OG_REPORT_HDR_LEN, n);
    r->outcome[n] = '\0';
    return 0;
}

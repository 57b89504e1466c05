/* og_record.c: encode and decode the cache record (see og_record.h).
 * Layout, all integers big-endian:
 *   0  u32 magic "OGR1"        4  u32 DER length
 *   8  i64 thisUpdate (us)    16  i64 nextUpdate (us, effective)
 *  24  i64 fetched at (us)    32  u8 cert status   33 u8 source
 *  34  6 bytes zero           40  DER
 * Core file: APR only. */
#include <string.h>

#include "og_record.h"

static void put32(unsigned char *p, apr_uint32_t v);
static void put64(unsigned char *p, apr_int64_t v);
static apr_uint32_t get32(const unsigned char *p);
static apr_int64_t get64(const unsigned char *p);

static void put32(unsigned char *p, apr_uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, apr_int64_t v)
{
    put32(p, (apr_uint32_t)((apr_uint64_t)v >> 32));
    put32(p + 4, (apr_uint32_t)((apr_uint64_t)v & 0xffffffffu));
}

static apr_uint32_t get32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16)
           | ((apr_uint32_t)p[2] << 8) | (apr_uint32_t)p[3];
}

static apr_int64_t get64(const unsigned char *p)
{
    return (apr_int64_t)(((apr_uint64_t)get32(p) << 32) | get32(p + 4));
}

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
    put32(buf, OG_RECORD_MAGIC);
    put32(buf + 4, (apr_uint32_t)r->der_len);
    put64(buf + 8, r->this_update);
    put64(buf + 16, r->next_update);
    put64(buf + 24, r->fetched_at);
    buf[32] = (unsigned char)r->cert_status;
    buf[33] = (unsigned char)r->source;
    memcpy(buf + OG_RECORD_HDR_LEN, r->der, r->der_len);
    return total;
}

int og_record_decode(og_record_t *r, const unsigned char *buf, apr_size_t len)
{
    apr_uint32_t der_len;

    if (len < OG_RECORD_HDR_LEN || get32(buf) != OG_RECORD_MAGIC) {
        return -1;
    }
    der_len = get32(buf + 4);
    if (der_len > OG_OCSP_MAX_STAPLE || der_len != len - OG_RECORD_HDR_LEN
        || buf[32] > OG_STATUS_UNKNOWN || buf[33] > OG_SOURCE_FLEET) {
        return -1;
    }
    r->this_update = get64(buf + 8);
    r->next_update = get64(buf + 16);
    r->fetched_at = get64(buf + 24);
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

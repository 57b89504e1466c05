/* og_fmt.h: small shared vocabulary of the core: where something is
 * written (file:line), log tags, hex and ISO 8601 renderings, big-endian
 * integers. Core (APR only); no
 * state, no I/O. */
#ifndef OG_FMT_H
#define OG_FMT_H

#include <apr_pools.h>
#include <apr_time.h>

/* Where a directive or a certificate is written; file NULL: nowhere (a default). */
typedef struct og_loc_t {
    const char *file;
    int line;
} og_loc_t;

/* A log tag, "OG" and five digits: one per call site or rule, never reused
 * (the next free number is in tags.next; tests/integration/test_001_tags.py
 * checks). The glue's OGLOGNO(n) is OG_TAG(n) ": ". */
#define OG_TAG(n) "OG" #n

/* Hex-encode `len` bytes, lowercase. */
const char *og_hex(apr_pool_t *p, const unsigned char *d, apr_size_t len);

/* "2026-12-01T18:44:07Z"; NULL for 0 or an unrepresentable time. */
const char *og_iso_time(apr_pool_t *p, apr_time_t t);

/* Big-endian integers in the byte layouts of og_record.c and og_store.c. */
static inline void og_put32(unsigned char *b, apr_uint32_t v)
{
    b[0] = (unsigned char)(v >> 24); b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);  b[3] = (unsigned char)v;
}

static inline void og_put64(unsigned char *b, apr_int64_t v)
{
    og_put32(b, (apr_uint32_t)((apr_uint64_t)v >> 32));
    og_put32(b + 4, (apr_uint32_t)((apr_uint64_t)v & 0xffffffffu));
}

static inline apr_uint32_t og_get32(const unsigned char *b)
{
    return ((apr_uint32_t)b[0] << 24) | ((apr_uint32_t)b[1] << 16)
           | ((apr_uint32_t)b[2] << 8) | (apr_uint32_t)b[3];
}

static inline apr_int64_t og_get64(const unsigned char *b)
{
    return (apr_int64_t)(((apr_uint64_t)og_get32(b) << 32) | og_get32(b + 4));
}

#endif /* OG_FMT_H */

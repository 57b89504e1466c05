/* og_fmt.h: small shared vocabulary of the core: where something is
 * written (file:line), hex and ISO 8601 renderings. Core (APR only); no
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

/* Hex-encode `len` bytes, lowercase. */
const char *og_hex(apr_pool_t *p, const unsigned char *d, apr_size_t len);

/* "2026-12-01T18:44:07Z"; NULL for 0 or an unrepresentable time. */
const char *og_iso_time(apr_pool_t *p, apr_time_t t);

#endif /* OG_FMT_H */

/* og_record.h: the cache record, the bytes kept in shared memory for one
 * certificate: a fixed header (validity, status, provenance) followed by the
 * verified DER. The handshake path only decodes the header, never the DER.
 * Core (APR only). */
#ifndef OG_RECORD_H
#define OG_RECORD_H

#include <apr_time.h>

#include "og_ocsp.h"

#define OG_RECORD_MAGIC   0x4f475231u  /* "OGR1" */
#define OG_RECORD_HDR_LEN 40
#define OG_RECORD_MAX     (OG_RECORD_HDR_LEN + OG_OCSP_MAX_STAPLE)
/* Room per certificate in OCSPGuardCache: its report row twice over (rows
 * are rewritten, shmcb is a ring), and a share of the room for the few
 * responses too long for the handshakes' table (og_table), which holds all
 * the others. */
#define OG_RECORD_ROOM_PER_CERT 1536
/* The most one record takes in a shmcb subcache: the record, its key and
 * shmcb's per-object index, rounded up. A subcache smaller than this cannot
 * hold a maximal response (og_check's cache-size rule). */
#define OG_RECORD_CACHE_FOOTPRINT (17 * 1024)
/* The average object size hinted to the cache (shmcb lays itself out by
 * it): mostly report rows, now and then a long response. */
#define OG_RECORD_AVG_SIZE      1024

typedef enum {
    OG_SOURCE_NONE = 0,
    OG_SOURCE_PREFETCH,
    OG_SOURCE_REFRESH,
    OG_SOURCE_STORE,
    OG_SOURCE_FLEET
} og_source_e;

typedef struct og_record_t {
    apr_time_t this_update;
    apr_time_t next_update;       /* effective end of validity */
    apr_time_t fetched_at;
    og_cert_status_e cert_status;
    og_source_e source;
    const unsigned char *der;     /* points into the decoded buffer */
    apr_size_t der_len;
} og_record_t;

/* The report row: how the last attempts for one certificate went, published
 * beside its record by whichever process fetched last, for the status page. */
#define OG_REPORT_MAGIC       0x4f475031u  /* "OGP1" */
#define OG_REPORT_HDR_LEN     48
#define OG_REPORT_OUTCOME_MAX 199
#define OG_REPORT_MAX         (OG_REPORT_HDR_LEN + OG_REPORT_OUTCOME_MAX)

typedef struct og_report_t {
    int failures;                 /* consecutive */
    og_cert_status_e last_cert_status; /* what the responder last said */
    apr_time_t last_attempt;
    apr_time_t last_success;
    apr_time_t next_attempt;
    apr_int64_t last_ms;
    char outcome[OG_REPORT_OUTCOME_MAX + 1]; /* printable ASCII, NUL-terminated */
} og_report_t;

/* Encode into buf (OG_REPORT_MAX bytes); returns the length. Bytes of the
 * outcome outside printable ASCII are written as '?'. */
apr_size_t og_report_encode(unsigned char *buf, const og_report_t *r);

/* Decode; returns 0 on success, -1 when the bytes are not a report row (bad
 * magic or length, a status out of range, a byte outside printable ASCII). */
int og_report_decode(og_report_t *r, const unsigned char *buf, apr_size_t len);

/* Encode into buf (cap bytes); returns the length, 0 if it does not fit. */
apr_size_t og_record_encode(unsigned char *buf, apr_size_t cap, const og_record_t *r);

/* Decode; returns 0 on success, -1 when the bytes are not a record. */
int og_record_decode(og_record_t *r, const unsigned char *buf, apr_size_t len);

/* May this record be stapled at `now`? Good or revoked, and not expired. */
int og_record_stapleable(const og_record_t *r, apr_time_t now);

const char *og_source_str(og_source_e s);

#endif /* OG_RECORD_H */

/* og_admit.h: the monotonic rule, pure: may a verified response replace the
 * one held? Responder traffic is plain HTTP without nonces, so anyone on the
 * path can replay an older, still-valid response; the store and a fleet cache
 * are writable by others too. A held response is replaced only by a newer one,
 * and a revocation is never undone by a response from before it.
 * Core (APR only): no I/O, no logging; the glue logs the verdict. */
#ifndef OG_ADMIT_H
#define OG_ADMIT_H

#include <apr_time.h>

#include "og_ocsp.h"
#include "og_record.h"

/* What was ever accepted for one certificate: persisted in the store beside
 * the response, so a restart does not forget it. */
typedef struct og_floor_t {
    apr_time_t newest_this_update;  /* newest thisUpdate accepted (0: none) */
    apr_time_t revoked_this_update; /* thisUpdate of the newest revoked response
                                     * accepted (0: never seen revoked) */
    apr_time_t revoked_at;          /* the revocationTime it gave */
} og_floor_t;

typedef enum {
    OG_ADMIT_NEWER = 0,      /* replaces the held response */
    OG_ADMIT_UNREVOKED,      /* good and newer than the revocation seen: replaces
                              * it, an event worth an error line */
    OG_ADMIT_SAME,           /* the held response again, byte for byte */
    OG_ADMIT_EQUAL_TIME,     /* same thisUpdate as the held one, other bytes: kept */
    OG_ADMIT_OLDER,          /* thisUpdate older than the newest accepted: a replay */
    OG_ADMIT_PRE_REVOCATION  /* good, but not newer than the revocation seen */
} og_admit_e;

/* Judge the verified response `res` (DER der/len) against the floor and the
 * held record (NULL or der NULL: none held). */
og_admit_e og_admit(const og_floor_t *floor, const og_record_t *held,
                    const og_ocsp_result_t *res, const unsigned char *der,
                    apr_size_t len);

/* Does this verdict install the response? */
int og_admit_installs(og_admit_e a);

/* Raise the floor after accepting `rec` (the newest of both, per field). */
void og_floor_raise(og_floor_t *floor, const og_record_t *rec, apr_time_t revoked_at);

/* Merge two floors (e.g. the store's and this process' memory): the newest. */
void og_floor_merge(og_floor_t *into, const og_floor_t *other);

/* A floor read from storage others can write (the store, a fleet cache):
 * drop what no verified response could have set (a time later than now plus
 * the clock skew), so a poisoned floor cannot lock responses out forever. */
void og_floor_clamp(og_floor_t *floor, apr_time_t now);

const char *og_admit_str(og_admit_e a);

#endif /* OG_ADMIT_H */

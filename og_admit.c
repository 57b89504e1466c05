/* og_admit.c: the monotonic rule (see og_admit.h). Order matters: the same
 * bytes are not news; a good answer from before a revocation is refused
 * before anything else is weighed; then time only moves forward.
 * Core file: APR only. */
#include <string.h>

#include "og_admit.h"

og_admit_e og_admit(const og_floor_t *floor, const og_record_t *held,
                    const og_ocsp_result_t *res, const unsigned char *der,
                    apr_size_t len)
{
    int have = held && held->der && held->der_len;

    if (have && held->der_len == len && memcmp(held->der, der, len) == 0) {
        return OG_ADMIT_SAME;
    }
    if (res->cert_status == OG_STATUS_GOOD && floor->revoked_this_update
        && res->this_update <= floor->revoked_this_update) {
        return OG_ADMIT_PRE_REVOCATION;
    }
    if (res->this_update < floor->newest_this_update
        || (have && res->this_update < held->this_update)) {
        return OG_ADMIT_OLDER;
    }
    if (have && res->this_update == held->this_update) {
        return OG_ADMIT_EQUAL_TIME;
    }
    if (res->cert_status == OG_STATUS_GOOD && floor->revoked_this_update) {
        return OG_ADMIT_UNREVOKED;
    }
    return OG_ADMIT_NEWER;
}

int og_admit_installs(og_admit_e a)
{
    return a == OG_ADMIT_NEWER || a == OG_ADMIT_UNREVOKED;
}

void og_floor_raise(og_floor_t *floor, const og_record_t *rec, apr_time_t revoked_at)
{
    if (rec->this_update > floor->newest_this_update) {
        floor->newest_this_update = rec->this_update;
    }
    if (rec->cert_status == OG_STATUS_REVOKED
        && rec->this_update >= floor->revoked_this_update) {
        floor->revoked_this_update = rec->this_update;
        floor->revoked_at = revoked_at;
    }
}

void og_floor_merge(og_floor_t *into, const og_floor_t *other)
{
    if (other->newest_this_update > into->newest_this_update) {
        into->newest_this_update = other->newest_this_update;
    }
    if (other->revoked_this_update > into->revoked_this_update) {
        into->revoked_this_update = other->revoked_this_update;
        into->revoked_at = other->revoked_at;
    }
}

void og_floor_clamp(og_floor_t *floor, apr_time_t now)
{
    if (floor->newest_this_update > now + OG_OCSP_SKEW) {
        floor->newest_this_update = 0;
    }
    if (floor->revoked_this_update > now + OG_OCSP_SKEW) {
        floor->revoked_this_update = 0;
        floor->revoked_at = 0;
    }
}

const char *og_admit_str(og_admit_e a)
{
    switch (a) {
    case OG_ADMIT_NEWER:          return "newer";
    case OG_ADMIT_UNREVOKED:      return "good after a revocation";
    case OG_ADMIT_SAME:           return "unchanged";
    case OG_ADMIT_EQUAL_TIME:     return "same thisUpdate, other bytes";
    case OG_ADMIT_OLDER:          return "older than the newest accepted";
    case OG_ADMIT_PRE_REVOCATION: return "good from before the revocation";
    }
    return "?";
}

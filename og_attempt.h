/* og_attempt.h: what one attempt to get a response came to, decided from
 * plain facts (the exchange, the verification, the monotonic rule) before
 * anything is logged, cached or stored: decide, then act. The kind and its
 * detail are also the state that is logged once per change. Core, pure. */
#ifndef OG_ATTEMPT_H
#define OG_ATTEMPT_H

#include "og_admit.h"
#include "og_fetch.h"
#include "og_ocsp.h"
#include "og_record.h"

typedef enum {
    OG_ATTEMPT_NONE = 0,       /* nothing tried yet */
    OG_ATTEMPT_FETCH_FAILED,   /* no usable body: detail is the og_fetch_err_e */
    OG_ATTEMPT_REJECTED,       /* a body that fails verification: detail is the verdict */
    OG_ATTEMPT_UNKNOWN,        /* verified, but the responder says unknown */
    OG_ATTEMPT_REPLAY,         /* verified, older than the newest accepted */
    OG_ATTEMPT_PRE_REVOCATION, /* verified good, not newer than a seen revocation */
    OG_ATTEMPT_UNCHANGED,      /* the held response again, or one as old */
    OG_ATTEMPT_ACCEPTED,       /* newer: it replaces the held one */
    OG_ATTEMPT_UNREVOKED       /* newer good after a revocation: replaces it */
} og_attempt_e;

typedef struct og_attempt_t {
    og_attempt_e kind;
    og_admit_e admit;          /* for a verified good or revoked answer */
    int detail;                /* fetch error, verdict (with response status), or admit
                                * with cert status: with kind, the state to log on change */
    int failure;               /* counts as a consecutive failure */
    int installs;              /* the response replaces the held one */
} og_attempt_t;

/* Judge one attempt: the exchange's result, its verification (meaningful
 * when fetch->err is OG_FETCH_OK), against the floor and the held record. */
og_attempt_t og_attempt_judge(const og_fetch_res_t *fetch, const og_ocsp_result_t *res,
                              const og_floor_t *floor, const og_record_t *held);

/* Same state as before (log at debug) or a change (log at its level)? */
int og_attempt_same_state(const og_attempt_t *a, const og_attempt_t *b);

/* Does this exchange say the responder itself is failing (no answer, an
 * HTTP error), rather than this one certificate's answer being wrong? */
int og_attempt_responder_failed(const og_fetch_res_t *fetch);

#endif /* OG_ATTEMPT_H */

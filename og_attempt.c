/* og_attempt.c: the judgement of one attempt (see og_attempt.h).
 * Core file: APR and OpenSSL types only, no I/O. */
#include "og_attempt.h"

og_attempt_t og_attempt_judge(const og_fetch_res_t *fetch, const og_ocsp_result_t *res,
                              const og_floor_t *floor, const og_record_t *held)
{
    og_attempt_t a = { OG_ATTEMPT_NONE, OG_ADMIT_NEWER, 0, 1, 0 };
    og_admit_e admit;

    if (fetch->err != OG_FETCH_OK) {
        a.kind = OG_ATTEMPT_FETCH_FAILED;
        a.detail = (int)fetch->err;
        return a;
    }
    if (res->verdict != OG_VERDICT_OK) {
        a.kind = OG_ATTEMPT_REJECTED;
        a.detail = (int)res->verdict * 16 + (res->response_status & 15);
        return a;
    }
    if (res->cert_status == OG_STATUS_UNKNOWN) {
        a.kind = OG_ATTEMPT_UNKNOWN;
        return a;
    }
    admit = og_admit(floor, held, res, fetch->body, fetch->len);
    a.admit = admit;
    switch (admit) {
    case OG_ADMIT_OLDER:
        a.kind = OG_ATTEMPT_REPLAY;
        break;
    case OG_ADMIT_PRE_REVOCATION:
        a.kind = OG_ATTEMPT_PRE_REVOCATION;
        break;
    case OG_ADMIT_SAME:
    case OG_ADMIT_EQUAL_TIME:
        a.kind = OG_ATTEMPT_UNCHANGED;
        a.failure = 0;
        break;
    case OG_ADMIT_UNREVOKED:
        a.kind = OG_ATTEMPT_UNREVOKED;
        a.failure = 0;
        a.installs = 1;
        break;
    case OG_ADMIT_NEWER:
        a.kind = OG_ATTEMPT_ACCEPTED;
        a.failure = 0;
        a.installs = 1;
        break;
    }
    /* a good or revoked answer is a state of its own for the log */
    a.detail = (int)admit * 4 + (int)res->cert_status;
    return a;
}

int og_attempt_same_state(const og_attempt_t *a, const og_attempt_t *b)
{
    return a->kind == b->kind && a->detail == b->detail;
}

int og_attempt_responder_failed(const og_fetch_res_t *fetch)
{
    switch (fetch->err) {
    case OG_FETCH_DNS:
    case OG_FETCH_REFUSED:
    case OG_FETCH_TIMEOUT:
    case OG_FETCH_HTTP_STATUS:
    case OG_FETCH_OTHER:
        return 1;
    default:
        /* an answer (even a wrong one), or a problem of the URL or of this answer */
        return 0;
    }
}

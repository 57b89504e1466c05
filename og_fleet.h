/* og_fleet.h: what mod_ocsp_guard writes to a fleet cache (OCSPGuardFleetCache)
 * and reads back, pure. The fleet cache is storage other servers (and anyone
 * who reaches it) can write: a value is only a frame around bytes that are
 * then verified like a responder's answer (og_ocsp_verify, og_admit); a
 * claim ("this server is fetching it until T") may only delay a fetch by a
 * bounded time. Also each server's deterministic place in the renew window,
 * so servers holding the same response do not renew it at the same moment.
 * Core (APR only): no I/O, no logging. */
#ifndef OG_FLEET_H
#define OG_FLEET_H

#include <apr.h>
#include <apr_time.h>

#include "og_admit.h"
#include "og_ocsp.h"

#define OG_FLEET_VALUE_MAGIC "OGF1"
#define OG_FLEET_CLAIM_MAGIC "OGC1"
#define OG_FLEET_MAGIC_LEN   4
#define OG_FLEET_CLAIM_LEN   (OG_FLEET_MAGIC_LEN + 8 + 8)
/* the longest value: the magic and a response that may be stapled */
#define OG_FLEET_VALUE_MAX   (OG_FLEET_MAGIC_LEN + 16384)
/* keys: the certificate id followed by one of these */
#define OG_FLEET_KEY_RESPONSE 'R'
#define OG_FLEET_KEY_CLAIM    'C'

/* A response's value: the magic, then the DER. Returns the length written
 * into buf (cap bytes), 0 if it does not fit. */
apr_size_t og_fleet_value_encode(unsigned char *buf, apr_size_t cap, const unsigned char *der,
                                 apr_size_t der_len);

/* 0, with der and der_len pointing into buf, when the bytes are a value frame
 * (magic, a non-empty DER of at most OG_FLEET_VALUE_MAX - 4 bytes); -1 if
 * not. Says nothing about the DER itself: verify it. */
int og_fleet_value_decode(const unsigned char *buf, apr_size_t len, const unsigned char **der,
                          apr_size_t *der_len);

/* What a server does with a response read from the fleet, already run
 * through og_ocsp_verify (res, for this server's certificate) and og_admit
 * (a, against what it holds and ever accepted), at `now`, with `renew_at`
 * the response's own renewal time (og_sched_renew_at). */
typedef enum {
    OG_FLEET_TAKE = 0,        /* verified, newer, not yet due: staple it, ask nobody */
    OG_FLEET_FALLBACK,        /* verified and newer, but as due as ours: ask the
                               * responder; use it only if that gives nothing */
    OG_FLEET_NOTHING_NEWER,   /* the response held, or one of its age: ask */
    OG_FLEET_INVALID,         /* fails verification (signer, CertID, times...) */
    OG_FLEET_UNKNOWN,         /* says 'unknown': never stapled */
    OG_FLEET_UNREVOKES,       /* 'good' over a revocation seen: only a responder may */
    OG_FLEET_OLDER            /* older than what was accepted: stale or replayed */
} og_fleet_verdict_e;

og_fleet_verdict_e og_fleet_judge(const og_ocsp_result_t *res, og_admit_e a, apr_time_t now,
                                  apr_time_t renew_at);

/* A claim: who (og_fleet_server_id) fetches, and until when. */
typedef struct og_fleet_claim_t {
    apr_uint64_t server;
    apr_time_t until;
} og_fleet_claim_t;

void og_fleet_claim_encode(unsigned char buf[OG_FLEET_CLAIM_LEN], const og_fleet_claim_t *c);
int og_fleet_claim_decode(og_fleet_claim_t *c, const unsigned char *buf, apr_size_t len);

/* Does a claim read from the fleet defer this server's fetch, at `now`?
 * Only another server's, only while it runs, and only if it ends within
 * `bound` (the exchange deadline): a forged claim delays a fetch by at most
 * that, once. Returns the time to look again, 0: not deferred. */
apr_time_t og_fleet_claim_defers(const og_fleet_claim_t *c, apr_uint64_t self, apr_time_t now,
                                 apr_interval_time_t bound);

/* This server's identity in the fleet: a 64-bit hash of what tells servers
 * apart (its host name; its ServerRoot and first port, as one string), never 0. */
apr_uint64_t og_fleet_server_id(const char *host, const char *server_root);

/* This server's place for one certificate: a 32-bit value, deterministic,
 * spread evenly over servers and certificates; og_sched turns it into an
 * offset in the renew window (og_sched_state_t.spread). Never 0 (0: none). */
apr_uint32_t og_fleet_spread(apr_uint64_t server, const unsigned char *id, apr_size_t id_len);

#endif /* OG_FLEET_H */

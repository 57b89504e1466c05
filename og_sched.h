/* og_sched.h: the refresh policy, pure: when to renew a response, when to
 * retry after failures. `now` is always a parameter; nothing here sleeps,
 * fetches or logs. */
#ifndef OG_SCHED_H
#define OG_SCHED_H

#include <apr_time.h>

typedef struct og_sched_policy_t {
    int renew_window;                 /* percent of validity left at renewal */
    apr_interval_time_t retry_min;    /* first retry delay, floor of all delays */
    apr_interval_time_t retry_max;    /* cap of the backoff */
    apr_interval_time_t near_expiry;  /* "the last hour" before nextUpdate */
    apr_interval_time_t near_retry;   /* cap of the delay in that last hour */
} og_sched_policy_t;

typedef struct og_sched_state_t {
    int has_response;                 /* a verified, unexpired response is held */
    apr_time_t this_update;
    apr_time_t next_update;
    int failures;                     /* consecutive failed attempts */
    apr_time_t last_attempt;          /* 0: never */
    apr_uint32_t spread;              /* 0: renew at the window's start; else this
                                       * server's place in the window's first half
                                       * (og_fleet_spread): a fleet's servers renew
                                       * one after the other, not all at once */
} og_sched_state_t;

/* Defaults: 50%, 60 s, 1 h, last hour, 5 min. */
void og_sched_defaults(og_sched_policy_t *pol);

/* The moment at which less than renew_window% of thisUpdate..nextUpdate remains. */
apr_time_t og_sched_renew_at(const og_sched_policy_t *pol, apr_time_t this_update,
                             apr_time_t next_update);

/* Delay before the next try after `failures` (>= 1) consecutive failures,
 * at `now`, with a response valid until next_update (0: none). */
apr_interval_time_t og_sched_backoff(const og_sched_policy_t *pol, int failures,
                                     apr_time_t now, apr_time_t next_update);

/* The renewal time of one server: og_sched_renew_at, moved by `spread`
 * (0..2^32-1) into the first half of the renew window; 0: not moved. */
apr_time_t og_sched_renew_spread(const og_sched_policy_t *pol, apr_time_t this_update,
                                 apr_time_t next_update, apr_uint32_t spread);

/* When the next attempt is due. Never earlier than retry_min after the last
 * attempt, so a responder that keeps handing out the same old response is
 * not hammered. */
apr_time_t og_sched_next(const og_sched_policy_t *pol, const og_sched_state_t *st,
                         apr_time_t now);

/* While a responder fails, one certificate probes it: the delay before probe
 * number `failed_probes` + 1 (failed_probes >= 1): 2 s, doubling, at most
 * retry_min (never more often than every 2 s). `unstapled`: the probing
 * certificate (the most urgent of the responder's) has no valid response, so
 * clients see no staple while the outage lasts; then the delay stays at most
 * OG_SCHED_PROBE_UNSTAPLED, and a responder back after an outage at start
 * staples again within seconds, however long the outage was. */
#define OG_SCHED_PROBE_FIRST apr_time_from_sec(2)
#define OG_SCHED_PROBE_UNSTAPLED apr_time_from_sec(5)
apr_interval_time_t og_sched_probe_delay(const og_sched_policy_t *pol, int failed_probes,
                                         int unstapled);
/* The longest og_sched_probe_delay gives, however many probes failed. */
apr_interval_time_t og_sched_probe_cap(const og_sched_policy_t *pol, int unstapled);

#endif /* OG_SCHED_H */

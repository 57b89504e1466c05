/* og_sched.c: renewal time and capped exponential backoff that tightens as
 * the held response nears its nextUpdate. Pure functions (see og_sched.h). */
#include "og_sched.h"

void og_sched_defaults(og_sched_policy_t *pol)
{
    pol->renew_window = 50;
    pol->retry_min = apr_time_from_sec(60);
    pol->retry_max = apr_time_from_sec(3600);
    pol->near_expiry = apr_time_from_sec(3600);
    pol->near_retry = apr_time_from_sec(300);
}

apr_time_t og_sched_renew_at(const og_sched_policy_t *pol, apr_time_t this_update,
                             apr_time_t next_update)
{
    apr_uint64_t validity, lead;

    if (next_update <= this_update) {
        return next_update;
    }
    /* unsigned, and divided first: the times may come from shared memory any
     * child can write, and validity * renew_window overflows past ~5,800 years */
    validity = (apr_uint64_t)next_update - (apr_uint64_t)this_update;
    lead = validity / 100 * (apr_uint64_t)pol->renew_window
           + validity % 100 * (apr_uint64_t)pol->renew_window / 100;
    return (apr_time_t)((apr_uint64_t)next_update - lead); /* window is 1..99 */
}

apr_time_t og_sched_renew_spread(const og_sched_policy_t *pol, apr_time_t this_update,
                                 apr_time_t next_update, apr_uint32_t spread)
{
    apr_time_t at = og_sched_renew_at(pol, this_update, next_update);
    double half;

    if (!spread || next_update <= at) {
        return at;
    }
    /* in floating point: the window may span anything shared memory held */
    half = ((double)next_update - (double)at) / 2.0;
    return at + (apr_time_t)(half * ((double)spread / 4294967296.0));
}

apr_interval_time_t og_sched_backoff(const og_sched_policy_t *pol, int failures,
                                     apr_time_t now, apr_time_t next_update)
{
    apr_interval_time_t d = pol->retry_min;
    int i;

    for (i = 1; i < failures && d < pol->retry_max; i++) {
        d *= 2;
    }
    if (d > pol->retry_max) {
        d = pol->retry_max;
    }
    if (next_update > now) {
        apr_interval_time_t left = next_update - now;

        /* more often as expiry nears: at most a quarter of what is left,
         * and at most near_retry in the last stretch */
        if (d > left / 4) {
            d = left / 4;
        }
        if (left <= pol->near_expiry && d > pol->near_retry) {
            d = pol->near_retry;
        }
    }
    if (d < pol->retry_min) {
        d = pol->retry_min;
    }
    return d;
}

apr_time_t og_sched_next(const og_sched_policy_t *pol, const og_sched_state_t *st,
                         apr_time_t now)
{
    apr_time_t due;

    if (st->failures > 0 && st->last_attempt) {
        return st->last_attempt + og_sched_backoff(pol, st->failures, st->last_attempt,
                                                   st->has_response ? st->next_update : 0);
    }
    if (!st->has_response) {
        return st->last_attempt ? st->last_attempt + pol->retry_min : now;
    }
    /* a response held (fetched, or loaded from the store at startup) */
    due = og_sched_renew_spread(pol, st->this_update, st->next_update, st->spread);
    if (st->last_attempt && due < st->last_attempt + pol->retry_min) {
        due = st->last_attempt + pol->retry_min;
    }
    return due;
}

apr_interval_time_t og_sched_probe_cap(const og_sched_policy_t *pol, int unstapled)
{
    apr_interval_time_t cap = pol->retry_min > OG_SCHED_PROBE_FIRST ? pol->retry_min
                                                                     : OG_SCHED_PROBE_FIRST;

    return unstapled && cap > OG_SCHED_PROBE_UNSTAPLED ? OG_SCHED_PROBE_UNSTAPLED : cap;
}

apr_interval_time_t og_sched_probe_delay(const og_sched_policy_t *pol, int failed_probes,
                                         int unstapled)
{
    apr_interval_time_t d = OG_SCHED_PROBE_FIRST;
    apr_interval_time_t cap = og_sched_probe_cap(pol, unstapled);
    int i;

    for (i = 1; i < failed_probes && d < cap; i++) {
        d *= 2;
    }
    return d > cap ? cap : d;
}

/* mod_ocsp_guard_entry.c: the life of one certificate's response, shared by
 * the startup prefetch and the background refresher. An attempt is first
 * judged by the core (og_attempt_judge: exchange, verification, the
 * monotonic rule), then acted on here: counters, the outcome text, one log
 * line per change of state, install, the shared cache, the store
 * (mod_ocsp_guard_store.c), the schedule and the report row. */
#include <stdlib.h>

#include <apr_strings.h>
#include <http_core.h>
#include <openssl/ocsp.h>

#include "mod_ocsp_guard_private.h"

static const char *fetch_hint(og_fetch_err_e err);
static const char *keep_text(apr_pool_t *p, const guard_entry_t *e, apr_time_t now);
static void log_failure(guard_entry_t *e, server_rec *s, int level, const char *keep,
                        apr_pool_t *p);
static void log_installed(guard_t *g, guard_entry_t *e, server_rec *s, int prior_failures,
                          apr_pool_t *p);
static void keep_response(guard_t *g, guard_entry_t *e, og_source_e src, apr_time_t now);
static void note_capped(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p);

int guard_entry_stapleable(const guard_entry_t *e, apr_time_t now)
{
    return e->rec.der && og_record_stapleable(&e->rec, now);
}

const char *guard_entry_url_origin(apr_pool_t *p, const guard_entry_t *e)
{
    switch (e->url_from) {
    case GUARD_URL_AIA:
        return "AIA";
    case GUARD_URL_OVERRIDE:
        return apr_psprintf(p, "OCSPGuardResponderOverride at %s:%d", e->override_at.file,
                            e->override_at.line);
    case GUARD_URL_NONE:
        break;
    }
    return NULL;
}

static const char *fetch_hint(og_fetch_err_e err)
{
    switch (err) {
    case OG_FETCH_DNS:
        return "check the responder's host name and this server's DNS resolver; "
               "if the server may only reach the web through a proxy, set OCSPGuardProxy";
    case OG_FETCH_REFUSED:
        return "check that the responder is reachable from this server: firewall rules "
               "must allow outgoing HTTP to it, or set OCSPGuardProxy";
    case OG_FETCH_TIMEOUT:
        return "a firewall that drops outgoing HTTP looks like this: allow it, or set "
               "OCSPGuardProxy; OCSPGuardResponderTimeout bounds each exchange";
    case OG_FETCH_BAD_URL:
        return "fix the URL with OCSPGuardResponderOverride";
    default:
        return "the responder misbehaves; mod_ocsp_guard retries with backoff";
    }
}

/* Verify what the last exchange brought, for this entry's certificate. */
void guard_entry_verify(guard_entry_t *e, apr_interval_time_t max_validity)
{
    memset(&e->result, 0, sizeof(e->result));
    if (e->fetch.err == OG_FETCH_OK) {
        og_ocsp_verify(&e->result, e->cert, e->fetch.body, e->fetch.len, apr_time_now(),
                       max_validity);
    }
}

/* Hold `rec` (its DER copied) as the entry's response; raise the floor. In
 * the refresher the copy is malloc'ed and freed when replaced: no pool per
 * certificate; the parent's lives in `pool` (its generation's). */
void guard_entry_install(guard_t *g, guard_entry_t *e, const og_record_t *rec,
                         apr_time_t revoked_at, apr_pool_t *pool)
{
    unsigned char *der = NULL;

    if (g->wd_pool && (der = malloc(rec->der_len ? rec->der_len : 1))) {
        memcpy(der, rec->der, rec->der_len);
    }
    e->rec = *rec;
    e->rec.der = der ? der : apr_pmemdup(pool, rec->der, rec->der_len);
    free(e->der_malloced);
    e->der_malloced = der;
    e->revoked_at = rec->cert_status == OG_STATUS_REVOKED ? revoked_at : 0;
    e->expired_logged = 0;
    og_floor_raise(&e->floor, &e->rec, e->revoked_at);
}

static void keep_response(guard_t *g, guard_entry_t *e, og_source_e src, apr_time_t now)
{
    og_record_t rec;

    memset(&rec, 0, sizeof(rec));
    rec.der = e->fetch.body;
    rec.der_len = e->fetch.len;
    rec.this_update = e->result.this_update;
    rec.next_update = e->result.next_update;
    rec.fetched_at = now;
    rec.cert_status = e->result.cert_status;
    rec.source = src;
    guard_entry_install(g, e, &rec, e->result.revoked_at, g->pool);
}

/* A response that claims more validity than OCSPGuardMaxValidity: said once. */
static void note_capped(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p)
{
    if (!e->result.validity_capped || e->capped_logged) {
        return;
    }
    e->capped_logged = 1;
    GUARD_ELOG(APLOG_INFO, 0, s, e, p, OGLOGNO(00056)
               "the response claims validity until %s, more than OCSPGuardMaxValidity (%"
               APR_TIME_T_FMT " s) after its thisUpdate %s; it counts as valid until %s and "
               "is renewed accordingly. For a private PKI with long-lived responses, raise "
               "OCSPGuardMaxValidity", og_iso_time(p, e->result.next_update_claimed),
               apr_time_sec(g->max_validity), og_iso_time(p, e->result.this_update),
               og_iso_time(p, e->result.next_update));
}

/* What happens to clients meanwhile, for failure messages. */
static const char *keep_text(apr_pool_t *p, const guard_entry_t *e, apr_time_t now)
{
    apr_interval_time_t left = apr_time_sec(e->rec.next_update - now);

    if (!guard_entry_stapleable(e, now)) {
        return "handshakes get no staple until a fetch succeeds";
    }
    return apr_psprintf(p, "the current response stays stapled until its nextUpdate %s (%"
                        APR_TIME_T_FMT "h %02" APR_TIME_T_FMT "m %02" APR_TIME_T_FMT
                        "s left)", og_iso_time(p, e->rec.next_update), left / 3600,
                        (left / 60) % 60, left % 60);
}

/* An attempt that brought nothing stapleable: the outcome text and its line. */
static void log_failure(guard_entry_t *e, server_rec *s, int level, const char *keep,
                        apr_pool_t *p)
{
    const char *tu = og_iso_time(p, e->result.this_update);

    switch (e->last.kind) {
    case OG_ATTEMPT_FETCH_FAILED:
        apr_snprintf(e->outcome, sizeof(e->outcome), "%s: %s", og_fetch_err_str(e->fetch.err),
                     e->fetch.detail);
        GUARD_ELOG(level, 0, s, e, p, OGLOGNO(00010)
                   "OCSP responder %s (%s) failed: %s (after %" APR_TIME_T_FMT " ms, %d "
                   "failure(s) in a row); %s. %s", e->url, guard_entry_url_origin(p, e),
                   e->outcome, apr_time_as_msec(e->fetch.elapsed), e->failures, keep,
                   fetch_hint(e->fetch.err));
        break;
    case OG_ATTEMPT_REJECTED:
        apr_snprintf(e->outcome, sizeof(e->outcome), "rejected: %s: %s",
                     og_ocsp_verdict_str(e->result.verdict), e->result.detail);
        GUARD_ELOG(level, 0, s, e, p, OGLOGNO(00011)
                   "response from %s %s; it is not stored and never stapled (%d failure(s) "
                   "in a row); %s", e->url, e->outcome, e->failures, keep);
        break;
    case OG_ATTEMPT_UNKNOWN:
        apr_cpystrn(e->outcome, "responder answered unknown", sizeof(e->outcome));
        GUARD_ELOG(level, 0, s, e, p, OGLOGNO(00012)
                   "responder %s answers 'unknown' for this certificate; an unknown status "
                   "is not stapled; %s. Check that %s is the responder of the issuing CA "
                   "('%s'), or set OCSPGuardResponderOverride", e->url, keep, e->url,
                   e->cert->issuer_name);
        break;
    case OG_ATTEMPT_PRE_REVOCATION:
        /* plain HTTP without a nonce: anyone on the path can replay */
        apr_snprintf(e->outcome, sizeof(e->outcome), "rejected: replayed? good response, "
                     "thisUpdate %s: from before the revocation", tu);
        GUARD_ELOG(level == APLOG_DEBUG ? APLOG_DEBUG : APLOG_ERR, 0, s, e, p, OGLOGNO(00054)
                   "%s answered 'good' with thisUpdate %s, but a response of %s already said "
                   "REVOKED: a replayed response from before the revocation; it is never "
                   "stapled (%d failure(s) in a row). Someone on the path to the responder "
                   "replays old answers: replace the certificate", e->url, tu,
                   og_iso_time(p, e->floor.revoked_this_update), e->failures);
        break;
    default: /* OG_ATTEMPT_REPLAY */
        apr_snprintf(e->outcome, sizeof(e->outcome), "rejected: replayed? %s response, "
                     "thisUpdate %s: older than the newest accepted",
                     og_ocsp_status_str(e->result.cert_status), tu);
        GUARD_ELOG(level, 0, s, e, p, OGLOGNO(00053)
                   "%s sent a %s response with thisUpdate %s, older than the newest "
                   "accepted (%s): a replayed or stale answer; it is never stapled (%d "
                   "failure(s) in a row); %s. If this repeats, check what sits between this "
                   "server and the responder (proxies, caches)", e->url,
                   og_ocsp_status_str(e->result.cert_status), tu,
                   og_iso_time(p, e->floor.newest_this_update), e->failures, keep);
        break;
    }
}

/* A newer response was installed: the cache, its line, the store. */
static void log_installed(guard_t *g, guard_entry_t *e, server_rec *s, int prior_failures,
                          apr_pool_t *p)
{
    if (guard_cache_put(g, s, e, p) != APR_SUCCESS) {
        GUARD_ELOG(APLOG_ERR, 0, s, e, p, OGLOGNO(00013)
                   "the verified response (%" APR_SIZE_T_FMT " bytes) does not fit "
                   "OCSPGuardCache %s; it cannot be stapled: make the cache larger",
                   e->rec.der_len, g->cache_desc);
    }
    else if (e->result.cert_status == OG_STATUS_REVOKED) {
        GUARD_ELOG(APLOG_ERR, 0, s, e, p, OGLOGNO(00014)
                   "%s says this certificate is REVOKED (since %s, reason %s); "
                   "the revocation is stapled and clients will refuse the connection: "
                   "replace the certificate now", e->rec.source == OG_SOURCE_FLEET
                   ? apr_psprintf(p, "a response of %s, taken from the fleet cache %s and "
                                  "verified,", e->url, guard_fleet_desc(g->fleet))
                   : apr_psprintf(p, "the responder %s", e->url),
                   og_iso_time(p, e->result.revoked_at),
                   e->result.revocation_reason >= 0
                   ? OCSP_crl_reason_str(e->result.revocation_reason) : "none given");
    }
    else if (e->rec.source == OG_SOURCE_STORE) {
        GUARD_ELOG(APLOG_INFO, 0, s, e, p, OGLOGNO(00082)
                   "newer good response found in OCSPGuardStore %s (thisUpdate %s, nextUpdate "
                   "%s), written by the server's previous generation; verified and stapled, "
                   "%s was not asked", g->store_dir, og_iso_time(p, e->result.this_update),
                   og_iso_time(p, e->result.next_update), e->url);
        e->fleet_defer_end = 0;
        return; /* it is in the store, and that generation published it */
    }
    else if (e->rec.source == OG_SOURCE_FLEET) {
        GUARD_ELOG(APLOG_INFO, 0, s, e, p, OGLOGNO(00075)
                   "good response taken from the fleet cache %s (thisUpdate %s, nextUpdate "
                   "%s), verified and stapled; %s was not asked", guard_fleet_desc(g->fleet),
                   og_iso_time(p, e->result.this_update), og_iso_time(p, e->result.next_update),
                   e->url);
    }
    else {
        GUARD_ELOG(APLOG_INFO, 0, s, e, p, OGLOGNO(00015)
                   "good response from %s in %" APR_TIME_T_FMT " ms (thisUpdate %s, "
                   "nextUpdate %s), stapled%s", e->url, apr_time_as_msec(e->fetch.elapsed),
                   og_iso_time(p, e->result.this_update), og_iso_time(p, e->result.next_update),
                   prior_failures ? apr_psprintf(p, "; the responder recovered after %d "
                                                 "failed attempt(s)", prior_failures) : "");
    }
    guard_store_persist(g, e, s, p);
    if (g->fleet && e->rec.source != OG_SOURCE_FLEET && !e->fleet_published) {
        /* verified here: the fleet's other servers take it instead of asking */
        guard_fleet_publish(g->fleet, e->cert->id, e->rec.der, e->rec.der_len,
                            e->rec.next_update);
    }
    e->fleet_defer_end = 0;
}

void guard_entry_apply(guard_t *g, guard_entry_t *e, server_rec *s, og_source_e src,
                       int quiet_repeats, apr_pool_t *p)
{
    apr_time_t now = apr_time_now();
    og_attempt_t a = og_attempt_judge(&e->fetch, &e->result, &e->floor, &e->rec);
    int changed = !og_attempt_same_state(&a, &e->last);
    int level = quiet_repeats >= 2 ? APLOG_DEBUG
                : (changed || !quiet_repeats) ? APLOG_WARNING : APLOG_DEBUG;
    int prior_failures = e->failures;

    /* 1. decided: the counters */
    guard_metrics_attempt(g, a.kind, src);
    e->last = a;
    e->last_attempt = now;
    e->failures = a.failure ? e->failures + 1 : 0;
    if (!a.failure) {
        e->last_success = now;
    }
    /* 2. what it means, once per change of state */
    if (a.failure) {
        /* nothing was installed: what clients keep is the held response */
        log_failure(e, s, level, keep_text(p, e, now), p);
    }
    else if (!a.installs) {
        apr_cpystrn(e->outcome, "ok: unchanged (the responder has nothing newer yet)",
                    sizeof(e->outcome));
        GUARD_ELOG(APLOG_DEBUG, 0, s, e, p, OGLOGNO(00057)
                   "%s answered with %s (thisUpdate %s); the held response stays", e->url,
                   a.admit == OG_ADMIT_SAME ? "the response already held"
                   : "another response of the same age", og_iso_time(p, e->result.this_update));
    }
    else {
        apr_cpystrn(e->outcome, e->result.cert_status == OG_STATUS_REVOKED ? "ok: revoked"
                                                                            : "ok: good",
                    sizeof(e->outcome));
        if (a.kind == OG_ATTEMPT_UNREVOKED) {
            GUARD_ELOG(APLOG_ERR, 0, s, e, p, OGLOGNO(00055)
                       "%s now answers 'good' (thisUpdate %s) after a response of %s said "
                       "REVOKED (since %s); the newer answer is stapled. A CA lifts a "
                       "revocation only for certificateHold: ask the CA why", e->url,
                       og_iso_time(p, e->result.this_update),
                       og_iso_time(p, e->floor.revoked_this_update),
                       og_iso_time(p, e->floor.revoked_at));
        }
        /* 3. the new response: held, cached, stored */
        keep_response(g, e, src, now);
        note_capped(g, e, s, p);
        log_installed(g, e, s, prior_failures, p);
    }
    if (e->cert->must_staple && !guard_entry_stapleable(e, now) && (changed || !quiet_repeats)) {
        GUARD_ELOG(APLOG_ERR, 0, s, e, p, OGLOGNO(00016)
                   "the certificate requires stapling (Must-Staple) and has no valid response: "
                   "clients such as Firefox will refuse to connect until a fetch from %s "
                   "succeeds", e->url);
    }
    /* 4. when next, and what the status page shows */
    guard_entry_schedule(g, e, now);
    guard_entry_publish(g, e, s, p);
}

void guard_entry_schedule(guard_t *g, guard_entry_t *e, apr_time_t now)
{
    og_sched_state_t st;

    st.has_response = guard_entry_stapleable(e, now);
    st.this_update = e->rec.this_update;
    st.next_update = e->rec.next_update;
    st.failures = e->failures;
    st.last_attempt = e->last_attempt;
    st.spread = e->spread;
    e->next_attempt = og_sched_next(&g->policy, &st, now);
}

/* The report row other processes (the status handler) read from the cache. */
void guard_entry_publish(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p)
{
    og_report_t rp;
    apr_status_t rv;

    memset(&rp, 0, sizeof(rp));
    rp.last_attempt = e->last_attempt;
    rp.last_success = e->last_success;
    rp.next_attempt = e->next_attempt;
    rp.last_ms = apr_time_as_msec(e->fetch.elapsed);
    rp.failures = e->failures;
    rp.last_cert_status = e->last.kind != OG_ATTEMPT_NONE && e->fetch.err == OG_FETCH_OK
                          && e->result.verdict == OG_VERDICT_OK
                          ? e->result.cert_status : e->rec.cert_status;
    apr_cpystrn(rp.outcome, e->outcome, sizeof(rp.outcome));
    if ((rv = guard_cache_put_report(g, s, e, &rp, p)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_TRACE1, rv, s, "report row not published");
    }
}

/* The refresher noticed that the held response passed its nextUpdate. */
void guard_entry_check_expiry(guard_t *g, guard_entry_t *e, server_rec *s, apr_time_t now,
                              apr_pool_t *p)
{
    if (!e->rec.der || now < e->rec.next_update || e->expired_logged) {
        return;
    }
    e->expired_logged = 1;
    GUARD_ELOG(APLOG_ERR, 0, s, e, p, OGLOGNO(00029)
               "the last good response expired at %s and the responder %s has failed %d "
               "time(s) since (%s); handshakes get NO staple now (an expired one is never "
               "sent). %s", og_iso_time(p, e->rec.next_update), e->url, e->failures,
               e->outcome[0] ? e->outcome : "no answer",
               e->cert->must_staple ? "This certificate is Must-Staple: clients refuse to "
               "connect. Fix the responder access now" : "Fix the responder access (see "
               "the earlier OG00010/OG00011 lines)");
    guard_entry_publish(g, e, s, p);
}

/* mod_ocsp_guard_entry.c: the life of one certificate's response, shared by
 * the startup prefetch and the background refresher: exchange + verify, the
 * monotonic rule (og_admit), then keep or reject, publish to the shared
 * cache, persist (mod_ocsp_guard_store.c), publish the report row, and log
 * once per change of state. */
#include <apr_strings.h>
#include <http_core.h>
#include <openssl/ocsp.h>

#include "mod_ocsp_guard_private.h"

static const char *fetch_hint(const guard_entry_t *e);
static const char *state_key(apr_pool_t *p, const guard_entry_t *e, og_admit_e admit);
static void keep_response(guard_t *g, guard_entry_t *e, og_source_e src, apr_time_t now);
static void note_capped(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p);

const char *guard_server_desc(apr_pool_t *p, const server_rec *s)
{
    return apr_psprintf(p, "vhost %s:%d (%s:%d)", s->server_hostname ? s->server_hostname : "?",
                        s->addrs ? s->addrs->host_port : s->port,
                        s->defn_name ? s->defn_name : "?", s->defn_line_number);
}

const char *guard_entry_desc(apr_pool_t *p, const guard_entry_t *e)
{
    const char *vh = e->vhosts->nelts
        ? guard_server_desc(p, APR_ARRAY_IDX(e->vhosts, 0, server_rec *)) : "no vhost";

    return apr_psprintf(p, "certificate '%s' (serial %s) of %s%s", e->cert->subject,
                        e->cert->serial_hex, vh,
                        e->vhosts->nelts > 1
                        ? apr_psprintf(p, " and %d more", e->vhosts->nelts - 1) : "");
}

int guard_entry_stapleable(const guard_entry_t *e, apr_time_t now)
{
    return e->rec.der && og_record_stapleable(&e->rec, now);
}

static const char *fetch_hint(const guard_entry_t *e)
{
    switch (e->fetch.err) {
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

/* What kind of outcome this is, to log once per change of state. */
static const char *state_key(apr_pool_t *p, const guard_entry_t *e, og_admit_e admit)
{
    if (e->fetch.err != OG_FETCH_OK) {
        return apr_psprintf(p, "fetch:%d", e->fetch.err);
    }
    if (e->result.verdict != OG_VERDICT_OK) {
        return apr_psprintf(p, "verify:%d:%d", e->result.verdict, e->result.response_status);
    }
    return apr_psprintf(p, "status:%d:%d", e->result.cert_status,
                        og_admit_installs(admit) ? -1 : (int)admit);
}

void guard_entry_exchange(guard_entry_t *e, apr_pool_t *p, const char *proxy, apr_time_t deadline,
                       apr_interval_time_t max_validity)
{
    og_fetch_req_t req;

    memset(&req, 0, sizeof(req));
    req.url = e->url;
    req.proxy = proxy;
    req.der = e->req_der;
    req.der_len = e->req_len;
    req.timeout_s = e->timeout_s;
    req.deadline = deadline;
    og_fetch_http(&e->fetch, p, &req);
    memset(&e->result, 0, sizeof(e->result));
    if (e->fetch.err == OG_FETCH_OK) {
        og_ocsp_verify(&e->result, e->cert, e->fetch.body, e->fetch.len, apr_time_now(),
                       max_validity);
    }
}

/* Hold `rec` (its DER copied) as the entry's response; raise the floor. */
void guard_entry_install(guard_t *g, guard_entry_t *e, const og_record_t *rec,
                      apr_time_t revoked_at, apr_pool_t *pool)
{
    apr_pool_t *dp = NULL;

    /* in the refresher, each response lives in its own pool, freed when replaced */
    if (g->wd_pool && apr_pool_create(&dp, g->wd_pool) != APR_SUCCESS) {
        dp = NULL;
    }
    e->rec = *rec;
    e->rec.der = apr_pmemdup(dp ? dp : pool, rec->der, rec->der_len);
    if (e->der_pool) {
        apr_pool_destroy(e->der_pool);
    }
    e->der_pool = dp;
    e->revoked_at = rec->cert_status == OG_STATUS_REVOKED ? revoked_at : 0;
    e->expired_logged = 0;
    og_floor_raise(&e->floor, &e->rec, e->revoked_at);
}

/* A response that claims more validity than OCSPGuardMaxValidity: said once. */
static void note_capped(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p)
{
    if (!e->result.validity_capped || e->capped_logged) {
        return;
    }
    e->capped_logged = 1;
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OGLOGNO(00056)
                 "%s: the response claims validity until %s, more than "
                 "OCSPGuardMaxValidity (%" APR_TIME_T_FMT " s) after its thisUpdate %s; it "
                 "counts as valid until %s and is renewed accordingly. For a private PKI "
                 "with long-lived responses, raise OCSPGuardMaxValidity",
                 guard_entry_desc(p, e), og_iso_time(p, e->result.next_update_claimed),
                 apr_time_sec(g->max_validity), og_iso_time(p, e->result.this_update),
                 og_iso_time(p, e->result.next_update));
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

void guard_entry_apply(guard_t *g, guard_entry_t *e, server_rec *s, og_source_e src,
                    int quiet_repeats, apr_pool_t *p)
{
    const char *desc = guard_entry_desc(p, e);
    apr_time_t now = apr_time_now();
    og_admit_e admit = e->fetch.err == OG_FETCH_OK && e->result.verdict == OG_VERDICT_OK
                       && e->result.cert_status != OG_STATUS_UNKNOWN
        ? og_admit(&e->floor, &e->rec, &e->result, e->fetch.body, e->fetch.len)
        : OG_ADMIT_NEWER;
    const char *key = state_key(p, e, admit);
    int changed = strcmp(e->state_key, key) != 0;
    int level = (changed || !quiet_repeats) ? APLOG_WARNING : APLOG_DEBUG;
    int prior_failures = e->failures;
    apr_interval_time_t left = e->rec.next_update - now;
    const char *keep = guard_entry_stapleable(e, now)
        ? apr_psprintf(p, "the current response stays stapled until its nextUpdate %s "
                       "(%" APR_TIME_T_FMT "h %02" APR_TIME_T_FMT "m %02" APR_TIME_T_FMT
                       "s left)", og_iso_time(p, e->rec.next_update),
                       apr_time_sec(left) / 3600, (apr_time_sec(left) / 60) % 60,
                       apr_time_sec(left) % 60)
        : "handshakes get no staple until a fetch succeeds";

    e->last_attempt = now;
    e->fetched = 1;
    apr_cpystrn(e->state_key, key, sizeof(e->state_key));
    if (e->fetch.err != OG_FETCH_OK) {
        e->failures++;
        apr_snprintf(e->outcome, sizeof(e->outcome), "%s: %s", og_fetch_err_str(e->fetch.err),
                     e->fetch.detail);
        ap_log_error(APLOG_MARK, level, 0, s, OGLOGNO(00010)
                     "%s: OCSP responder %s (%s) failed: %s (after %" APR_TIME_T_FMT
                     " ms, %d failure(s) in a row); %s. %s", desc, e->url, e->url_origin,
                     e->outcome, apr_time_as_msec(e->fetch.elapsed), e->failures, keep,
                     fetch_hint(e));
    }
    else if (e->result.verdict != OG_VERDICT_OK) {
        e->failures++;
        apr_snprintf(e->outcome, sizeof(e->outcome), "rejected: %s: %s",
                     og_ocsp_verdict_str(e->result.verdict), e->result.detail);
        ap_log_error(APLOG_MARK, level, 0, s, OGLOGNO(00011)
                     "%s: response from %s %s; it is not stored and never stapled "
                     "(%d failure(s) in a row); %s", desc, e->url, e->outcome, e->failures, keep);
    }
    else if (e->result.cert_status == OG_STATUS_UNKNOWN) {
        e->failures++;
        apr_cpystrn(e->outcome, "responder answered unknown", sizeof(e->outcome));
        ap_log_error(APLOG_MARK, level, 0, s, OGLOGNO(00012)
                     "%s: responder %s answers 'unknown' for this certificate; an unknown "
                     "status is not stapled; %s. Check that %s is the responder of the "
                     "issuing CA ('%s'), or set OCSPGuardResponderOverride", desc, e->url,
                     keep, e->url, e->cert->issuer_name);
    }
    else if (admit == OG_ADMIT_OLDER || admit == OG_ADMIT_PRE_REVOCATION) {
        /* plain HTTP without a nonce: anyone on the path can replay */
        e->failures++;
        apr_snprintf(e->outcome, sizeof(e->outcome), "rejected: replayed? %s response, "
                     "thisUpdate %s: %s", og_ocsp_status_str(e->result.cert_status),
                     og_iso_time(p, e->result.this_update), og_admit_str(admit));
        if (admit == OG_ADMIT_PRE_REVOCATION) {
            ap_log_error(APLOG_MARK, (changed || !quiet_repeats) ? APLOG_ERR : APLOG_DEBUG,
                         0, s, OGLOGNO(00054)
                         "%s: %s answered 'good' with thisUpdate %s, but a response of %s "
                         "already said REVOKED: a replayed response from before the "
                         "revocation; it is never stapled (%d failure(s) in a row). Someone "
                         "on the path to the responder replays old answers: replace the "
                         "certificate", desc, e->url, og_iso_time(p, e->result.this_update),
                         og_iso_time(p, e->floor.revoked_this_update), e->failures);
        }
        else {
            ap_log_error(APLOG_MARK, level, 0, s, OGLOGNO(00053)
                         "%s: %s sent a %s response with thisUpdate %s, older than the "
                         "newest accepted (%s): a replayed or stale answer; it is never "
                         "stapled (%d failure(s) in a row); %s. If this repeats, check what "
                         "sits between this server and the responder (proxies, caches)",
                         desc, e->url, og_ocsp_status_str(e->result.cert_status),
                         og_iso_time(p, e->result.this_update),
                         og_iso_time(p, e->floor.newest_this_update), e->failures, keep);
        }
    }
    else if (!og_admit_installs(admit)) {
        /* the held response again (or one as old): nothing newer yet, no failure */
        e->failures = 0;
        e->last_success = now;
        apr_cpystrn(e->outcome, "ok: unchanged (the responder has nothing newer yet)",
                    sizeof(e->outcome));
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, OGLOGNO(00057)
                     "%s: %s answered with %s (thisUpdate %s); the held response stays",
                     desc, e->url, admit == OG_ADMIT_SAME ? "the response already held"
                     : "another response of the same age", og_iso_time(p, e->result.this_update));
    }
    else {
        e->failures = 0;
        e->last_success = now;
        apr_cpystrn(e->outcome, e->result.cert_status == OG_STATUS_REVOKED ? "ok: revoked"
                                                                            : "ok: good",
                    sizeof(e->outcome));
        if (admit == OG_ADMIT_UNREVOKED) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00055)
                         "%s: %s now answers 'good' (thisUpdate %s) after a response of %s "
                         "said REVOKED (since %s); the newer answer is stapled. A CA lifts a "
                         "revocation only for certificateHold: ask the CA why",
                         desc, e->url, og_iso_time(p, e->result.this_update),
                         og_iso_time(p, e->floor.revoked_this_update),
                         og_iso_time(p, e->floor.revoked_at));
        }
        keep_response(g, e, src, now);
        note_capped(g, e, s, p);
        if (guard_cache_put(g, s, e, p) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00013)
                         "%s: the verified response (%" APR_SIZE_T_FMT " bytes) does not "
                         "fit OCSPGuardCache %s; it cannot be stapled: make the cache larger",
                         desc, e->rec.der_len, g->cache_desc);
        }
        else if (e->result.cert_status == OG_STATUS_REVOKED) {
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00014)
                         "%s: the responder %s says this certificate is REVOKED (since %s, "
                         "reason %s); the revocation is stapled and clients will refuse "
                         "the connection: replace the certificate now", desc, e->url,
                         og_iso_time(p, e->result.revoked_at),
                         e->result.revocation_reason >= 0
                         ? OCSP_crl_reason_str(e->result.revocation_reason) : "none given");
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OGLOGNO(00015)
                         "%s: good response from %s in %" APR_TIME_T_FMT " ms "
                         "(thisUpdate %s, nextUpdate %s), stapled%s", desc, e->url,
                         apr_time_as_msec(e->fetch.elapsed),
                         og_iso_time(p, e->result.this_update),
                         og_iso_time(p, e->result.next_update),
                         prior_failures ? apr_psprintf(p, "; the responder recovered after "
                                                       "%d failed attempt(s)", prior_failures)
                                        : "");
        }
        guard_store_persist(g, e, s, p);
    }
    if (e->cert->must_staple && !guard_entry_stapleable(e, now) && (changed || !quiet_repeats)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00016)
                     "%s: the certificate requires stapling (Must-Staple) and has no valid "
                     "response: clients such as Firefox will refuse to connect until a "
                     "fetch from %s succeeds", desc, e->url);
    }
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
    e->next_attempt = og_sched_next(&g->policy, &st, now);
}

/* The status row other processes (the status handler) read from the cache. */
void guard_entry_publish(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p)
{
    og_report_t st;

    memset(&st, 0, sizeof(st));
    st.last_attempt = e->last_attempt;
    st.last_success = e->last_success;
    st.next_attempt = e->next_attempt;
    st.last_ms = apr_time_as_msec(e->fetch.elapsed);
    st.failures = e->failures;
    st.last_cert_status = e->fetched && e->fetch.err == OG_FETCH_OK
                          && e->result.verdict == OG_VERDICT_OK
                          ? e->result.cert_status : e->rec.cert_status;
    apr_cpystrn(st.outcome, e->outcome, sizeof(st.outcome));
    guard_cache_put_report(g, s, e, &st, p);
}

/* The refresher noticed that the held response passed its nextUpdate. */
void guard_entry_check_expiry(guard_t *g, guard_entry_t *e, server_rec *s, apr_time_t now,
                           apr_pool_t *p)
{
    if (!e->rec.der || now < e->rec.next_update || e->expired_logged) {
        return;
    }
    e->expired_logged = 1;
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00029)
                 "%s: the last good response expired at %s and the responder %s has failed "
                 "%d time(s) since (%s); handshakes get NO staple now (an expired one is "
                 "never sent). %s", guard_entry_desc(p, e), og_iso_time(p, e->rec.next_update),
                 e->url, e->failures, e->outcome[0] ? e->outcome : "no answer",
                 e->cert->must_staple ? "This certificate is Must-Staple: clients refuse to "
                 "connect. Fix the responder access now" : "Fix the responder access "
                 "(see the earlier OG00010/OG00011 lines)");
    guard_entry_publish(g, e, s, p);
}

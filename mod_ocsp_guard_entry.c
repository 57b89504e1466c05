/* mod_ocsp_guard_entry.c: the life of one certificate's response, shared by
 * the startup prefetch and the background refresher: exchange + verify, then
 * keep or reject, publish to the shared cache, persist to the store, publish
 * the status row, and log once per change of state. Also the store glue:
 * the directory, its owner, loading and re-verifying at startup. */
#include <unistd.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_file_info.h>
#include <http_core.h>
#include <unixd.h>
#include <openssl/ocsp.h>

#include "mod_ocsp_guard_private.h"
#include "og_store.h"

#define OG_STATUS_MAGIC 0x4f475331u /* "OGS1" */

static const char *fetch_hint(const og_entry_t *e);
static const char *state_key(apr_pool_t *p, const og_entry_t *e);
static void keep_response(og_global_t *g, og_entry_t *e, og_source_e src, apr_time_t now);
static void persist(og_global_t *g, og_entry_t *e, server_rec *s, apr_pool_t *p);

const char *og_iso_time(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;
    char buf[32];
    apr_size_t len;

    if (!t || apr_time_exp_gmt(&x, t) != APR_SUCCESS
        || apr_strftime(buf, &len, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &x) != APR_SUCCESS) {
        return NULL;
    }
    return apr_pstrdup(p, buf);
}

const char *og_server_desc(apr_pool_t *p, const server_rec *s)
{
    return apr_psprintf(p, "vhost %s:%d (%s:%d)", s->server_hostname ? s->server_hostname : "?",
                        s->addrs ? s->addrs->host_port : s->port,
                        s->defn_name ? s->defn_name : "?", s->defn_line_number);
}

const char *og_entry_desc(apr_pool_t *p, const og_entry_t *e)
{
    const char *vh = e->vhosts->nelts
        ? og_server_desc(p, APR_ARRAY_IDX(e->vhosts, 0, server_rec *)) : "no vhost";

    return apr_psprintf(p, "certificate '%s' (serial %s) of %s%s", e->cert->subject,
                        e->cert->serial_hex, vh,
                        e->vhosts->nelts > 1
                        ? apr_psprintf(p, " and %d more", e->vhosts->nelts - 1) : "");
}

int og_entry_stapleable(const og_entry_t *e, apr_time_t now)
{
    return e->rec.der && og_record_stapleable(&e->rec, now);
}

static const char *fetch_hint(const og_entry_t *e)
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
static const char *state_key(apr_pool_t *p, const og_entry_t *e)
{
    if (e->fetch.err != OG_FETCH_OK) {
        return apr_psprintf(p, "fetch:%d", e->fetch.err);
    }
    if (e->result.verdict != OG_VERDICT_OK) {
        return apr_psprintf(p, "verify:%d:%d", e->result.verdict, e->result.response_status);
    }
    return apr_psprintf(p, "status:%d", e->result.cert_status);
}

void og_entry_exchange(og_entry_t *e, apr_pool_t *p, const char *proxy, int timeout_s)
{
    og_fetch_req_t req;

    memset(&req, 0, sizeof(req));
    req.url = e->url;
    req.proxy = proxy;
    req.der = e->req_der;
    req.der_len = e->req_len;
    req.timeout_s = timeout_s;
    og_fetch_http(&e->fetch, p, &req);
    memset(&e->result, 0, sizeof(e->result));
    if (e->fetch.err == OG_FETCH_OK) {
        og_ocsp_verify(&e->result, e->cert, e->fetch.body, e->fetch.len, apr_time_now());
    }
}

static void keep_response(og_global_t *g, og_entry_t *e, og_source_e src, apr_time_t now)
{
    apr_pool_t *dp = NULL;

    /* in the refresher, each response lives in its own pool, freed when replaced */
    if (g->wd_pool) {
        apr_pool_create(&dp, g->wd_pool);
    }
    e->rec.der = apr_pmemdup(dp ? dp : g->pool, e->fetch.body, e->fetch.len);
    if (e->der_pool) {
        apr_pool_destroy(e->der_pool);
    }
    e->der_pool = dp;
    e->rec.der_len = e->fetch.len;
    e->rec.this_update = e->result.this_update;
    e->rec.next_update = e->result.next_update;
    e->rec.fetched_at = now;
    e->rec.cert_status = e->result.cert_status;
    e->rec.source = src;
    e->expired_logged = 0;
}

static void persist(og_global_t *g, og_entry_t *e, server_rec *s, apr_pool_t *p)
{
    const char *err;
    apr_status_t rv;

    if (!g->store_dir) {
        return;
    }
    rv = og_store_save(&err, p, g->store_dir, e->cert->id, &e->rec);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, g->store_warned ? APLOG_DEBUG : APLOG_WARNING, rv, s,
                     OGLOGNO(00021) "%s: cannot persist the response in OCSPGuardStore %s "
                     "(%s); it is stapled, but a restart will have to fetch it again: make "
                     "the directory writable by the server's User", og_entry_desc(p, e),
                     g->store_dir, err);
        g->store_warned = 1;
        return;
    }
    if (geteuid() == 0) {
        /* written by the parent: let the refresher (running as User) replace it */
        if (chown(og_store_path(p, g->store_dir, e->cert->id), ap_unixd_config.user_id,
                  ap_unixd_config.group_id) != 0) {
            /* the rename over it still works: the directory is the User's */
        }
    }
}

void og_entry_apply(og_global_t *g, og_entry_t *e, server_rec *s, og_source_e src,
                    int quiet_repeats, apr_pool_t *p)
{
    const char *desc = og_entry_desc(p, e);
    apr_time_t now = apr_time_now();
    const char *key = state_key(p, e);
    int changed = strcmp(e->state_key, key) != 0;
    int level = (changed || !quiet_repeats) ? APLOG_WARNING : APLOG_DEBUG;
    int prior_failures = e->failures;
    apr_interval_time_t left = e->rec.next_update - now;
    const char *keep = og_entry_stapleable(e, now)
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
    else {
        e->failures = 0;
        e->last_success = now;
        apr_cpystrn(e->outcome, e->result.cert_status == OG_STATUS_REVOKED ? "ok: revoked"
                                                                            : "ok: good",
                    sizeof(e->outcome));
        keep_response(g, e, src, now);
        if (og_cache_put(g, s, e, p) != APR_SUCCESS) {
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
        persist(g, e, s, p);
    }
    if (e->cert->must_staple && !og_entry_stapleable(e, now) && (changed || !quiet_repeats)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00016)
                     "%s: the certificate requires stapling (Must-Staple) and has no valid "
                     "response: clients such as Firefox will refuse to connect until a "
                     "fetch from %s succeeds", desc, e->url);
    }
    og_entry_schedule(g, e, now);
    og_entry_publish(g, e, s, p);
}

void og_entry_schedule(og_global_t *g, og_entry_t *e, apr_time_t now)
{
    og_sched_state_t st;

    st.has_response = og_entry_stapleable(e, now);
    st.this_update = e->rec.this_update;
    st.next_update = e->rec.next_update;
    st.failures = e->failures;
    st.last_attempt = e->last_attempt;
    e->next_attempt = og_sched_next(&g->policy, &st, now);
}

/* The status row other processes (the status handler) read from the cache. */
void og_entry_publish(og_global_t *g, og_entry_t *e, server_rec *s, apr_pool_t *p)
{
    og_status_t st;

    memset(&st, 0, sizeof(st));
    st.magic = OG_STATUS_MAGIC;
    st.last_attempt = e->last_attempt;
    st.last_success = e->last_success;
    st.next_attempt = e->next_attempt;
    st.last_ms = apr_time_as_msec(e->fetch.elapsed);
    st.failures = e->failures;
    st.last_cert_status = e->fetched && e->fetch.err == OG_FETCH_OK
                          && e->result.verdict == OG_VERDICT_OK
                          ? (apr_int32_t)e->result.cert_status : (apr_int32_t)e->rec.cert_status;
    apr_cpystrn(st.outcome, e->outcome, sizeof(st.outcome));
    og_cache_put_status(g, s, e, &st, p);
}

int og_status_valid(const og_status_t *st)
{
    return st->magic == OG_STATUS_MAGIC;
}

/* Create the store directory (0700) and give it to the server's User, so the
 * refresher, which runs in a child as that User, can write to it. */
apr_status_t og_store_prepare(og_global_t *g, server_rec *s, apr_pool_t *p)
{
    apr_status_t rv;
    apr_finfo_t fi;

    rv = apr_dir_make_recursive(g->store_dir, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                | APR_FPROT_UEXECUTE, p);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, OGLOGNO(00022)
                     "cannot create OCSPGuardStore %s: responses will not survive a "
                     "restart; create it or point OCSPGuardStore at a writable directory",
                     g->store_dir);
        return rv;
    }
    if (apr_stat(&fi, g->store_dir, APR_FINFO_TYPE, p) != APR_SUCCESS
        || fi.filetype != APR_DIR) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00023)
                     "OCSPGuardStore %s is not a directory: responses will not survive "
                     "a restart; point OCSPGuardStore at a directory", g->store_dir);
        return APR_ENOTDIR;
    }
    chmod(g->store_dir, 0700);
    if (geteuid() == 0
        && chown(g->store_dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, OGLOGNO(00024)
                     "cannot give OCSPGuardStore %s to the server's User: the background "
                     "refresh will not be able to persist responses; chown it yourself",
                     g->store_dir);
    }
    return APR_SUCCESS;
}

/* Startup: take a still-valid stored response, re-verified. Returns 1 if kept. */
int og_entry_load_store(og_global_t *g, og_entry_t *e, server_rec *s, apr_pool_t *p)
{
    og_record_t rec;
    og_ocsp_result_t res;
    const char *err;
    apr_status_t rv;

    if (!g->store_dir) {
        return 0;
    }
    rv = og_store_load(&rec, &err, g->pool, g->store_dir, e->cert->id);
    if (rv == APR_ENOENT) {
        return 0;
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, OGLOGNO(00025)
                     "%s: ignoring stored response %s: %s; a new one is fetched (delete the "
                     "file if this repeats)", og_entry_desc(p, e),
                     og_store_path(p, g->store_dir, e->cert->id), err);
        return 0;
    }
    if (og_ocsp_verify(&res, e->cert, rec.der, rec.der_len, apr_time_now()) != APR_SUCCESS
        || (res.cert_status != OG_STATUS_GOOD && res.cert_status != OG_STATUS_REVOKED)) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, OGLOGNO(00026)
                     "%s: stored response no longer usable (%s%s%s); a new one is fetched",
                     og_entry_desc(p, e), og_ocsp_verdict_str(res.verdict),
                     res.detail[0] ? ": " : "", res.detail);
        return 0;
    }
    e->rec = rec;
    e->rec.this_update = res.this_update;
    e->rec.next_update = res.next_update;
    e->rec.cert_status = res.cert_status;
    e->rec.source = OG_SOURCE_STORE;
    e->last_success = rec.fetched_at;
    apr_cpystrn(e->outcome, "loaded from store", sizeof(e->outcome));
    if (og_cache_put(g, s, e, p) != APR_SUCCESS) {
        return 0;
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, OGLOGNO(00027)
                 "%s: using the stored response (thisUpdate %s, nextUpdate %s)",
                 og_entry_desc(p, e), og_iso_time(p, e->rec.this_update),
                 og_iso_time(p, e->rec.next_update));
    if (e->rec.cert_status == OG_STATUS_REVOKED) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00028)
                     "%s: the stored response says this certificate is REVOKED; the "
                     "revocation is stapled and clients will refuse the connection: "
                     "replace the certificate now", og_entry_desc(p, e));
    }
    return 1;
}

/* The refresher noticed that the held response passed its nextUpdate. */
void og_entry_check_expiry(og_global_t *g, og_entry_t *e, server_rec *s, apr_time_t now,
                           apr_pool_t *p)
{
    if (!e->rec.der || now < e->rec.next_update || e->expired_logged) {
        return;
    }
    e->expired_logged = 1;
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, OGLOGNO(00029)
                 "%s: the last good response expired at %s and the responder %s has failed "
                 "%d time(s) since (%s); handshakes get NO staple now (an expired one is "
                 "never sent). %s", og_entry_desc(p, e), og_iso_time(p, e->rec.next_update),
                 e->url, e->failures, e->outcome[0] ? e->outcome : "no answer",
                 e->cert->must_staple ? "This certificate is Must-Staple: clients refuse to "
                 "connect. Fix the responder access now" : "Fix the responder access "
                 "(see the earlier OG00010/OG00011 lines)");
    og_entry_publish(g, e, s, p);
}

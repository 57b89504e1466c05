/* mod_ocsp_guard_status.c: the ocsp-guard-status handler (JSON by default,
 * an HTML table for browsers, Prometheus' text format for scrapers,
 * mod_ocsp_guard_metrics.c; POST ?refresh=<id>|all asks the refresher to
 * fetch now) and a section in mod_status' server-status.
 * Rows are built once from the registry and the shared cache (which holds
 * what the process that fetched last wrote); the renderers only format. */
#include <apr_strings.h>
#include <apr_optional.h>
#include <httpd.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>

#include "mod_ocsp_guard.h"
#include "mod_ocsp_guard_private.h"

#define GUARD_HANDLER "ocsp-guard-status"


static int og_status_handler(request_rec *r);
static int og_status_hook(request_rec *r, int flags);
static void render_json(request_rec *r, guard_t *g, apr_array_header_t *rows);
static void render_html(request_rec *r, guard_t *g, apr_array_header_t *rows, int full_page);
static const char *json_str(apr_pool_t *p, const char *s);
static const char *json_time(apr_pool_t *p, apr_time_t t);
static const char *status_text(const guard_status_row_t *row);

apr_array_header_t *guard_status_rows(request_rec *r, guard_t *g)
{
    apr_array_header_t *rows = apr_array_make(r->pool, g->entries->nelts, sizeof(guard_status_row_t));
    apr_time_t now = apr_time_now();
    int i;

    for (i = 0; i < g->entries->nelts; i++) {
        guard_status_row_t *row = apr_array_push(rows);
        unsigned char *buf = apr_palloc(r->pool, OG_RECORD_MAX);
        apr_size_t len = 0;

        memset(row, 0, sizeof(*row));
        row->e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);
        /* what a handshake would read */
        row->have_rec = guard_cache_get(g, r->server, row->e, buf, &len, r->pool)
                            == APR_SUCCESS
                        && og_record_decode(&row->rec, buf, len) == 0;
        row->have_st = guard_cache_get_report(g, r->server, row->e, &row->st, r->pool)
                       == APR_SUCCESS;
        row->stapled = row->have_rec && og_record_stapleable(&row->rec, now);
        if (row->have_rec) {
            row->status = row->rec.cert_status;
            row->renew_at = og_sched_renew_spread(&g->policy, row->rec.this_update,
                                                  row->rec.next_update, row->e->spread);
        }
        else if (row->have_st) {
            row->status = row->st.last_cert_status; /* og_report_decode checked the range */
        }
    }
    return rows;
}

/* The certificate's own notAfter, and in words when it is near or past. */
static const char *expiry_text(apr_pool_t *p, apr_time_t not_after)
{
    apr_interval_time_t left = not_after - apr_time_now();

    if (!not_after) {
        return "-";
    }
    if (left <= 0) {
        return apr_psprintf(p, "%s (EXPIRED)", og_iso_time(p, not_after));
    }
    if (left < apr_time_from_sec(14 * 86400)) {
        return apr_psprintf(p, "%s (in %" APR_TIME_T_FMT " day(s): renew it)",
                            og_iso_time(p, not_after), apr_time_sec(left) / 86400);
    }
    return og_iso_time(p, not_after);
}

static const char *status_text(const guard_status_row_t *row)
{
    return row->status == OG_STATUS_NONE ? "none yet" : og_ocsp_status_str(row->status);
}

static const char *json_str(apr_pool_t *p, const char *s)
{
    apr_size_t n = 2;
    const char *i;
    char *out, *o;

    if (!s) {
        return "null";
    }
    for (i = s; *i; i++) {
        n += ((unsigned char)*i < 0x20 || *i == 0x7f || *i == '"' || *i == '\\') ? 6 : 1;
    }
    o = out = apr_palloc(p, n + 1);
    *o++ = '"';
    for (i = s; *i; i++) {
        unsigned char c = (unsigned char)*i;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        }
        else if (c < 0x20 || c == 0x7f) {
            o += apr_snprintf(o, 7, "\\u%04x", c);
        }
        else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

static const char *json_time(apr_pool_t *p, apr_time_t t)
{
    return json_str(p, t ? og_iso_time(p, t) : NULL);
}

/* The fleet cache's row, as the refresher last published it: NULL when no
 * fleet cache is configured; its state (the text before the first ';') in
 * *state. */
const char *guard_status_fleet(request_rec *r, guard_t *g, const char **state)
{
    const char *spec = guard_sconf(g->s)->fleet.spec;
    og_report_t rp;

    *state = NULL;
    if (!spec) {
        return NULL;
    }
    if (guard_cache_get_fleet_report(g, r->server, &rp, r->pool) != APR_SUCCESS) {
        *state = "not used yet";
        return "no lookup or publication yet";
    }
    *state = apr_pstrmemdup(r->pool, rp.outcome, strcspn(rp.outcome, ";"));
    return apr_pstrdup(r->pool, rp.outcome);
}

static void render_json(request_rec *r, guard_t *g, apr_array_header_t *rows)
{
    apr_pool_t *p = r->pool;
    int i, j;

    ap_set_content_type(r, "application/json");
    const char *fstate, *fdetail = guard_status_fleet(r, g, &fstate);

    ap_rprintf(r, "{\"module\":\"mod_ocsp_guard\",\"version\":\"%s\",\"time\":%s,"
               "\"cache\":%s,\"store\":%s,\"fleet\":%s,\"certificates\":[",
               MOD_OCSP_GUARD_VERSION, json_time(p, apr_time_now()),
               json_str(p, g->cache_desc), json_str(p, g->store_dir),
               fdetail ? apr_psprintf(p, "{\"cache\":%s,\"state\":%s,\"detail\":%s}",
                                      json_str(p, guard_sconf(g->s)->fleet.spec),
                                      json_str(p, fstate), json_str(p, fdetail)) : "null");
    for (i = 0; i < rows->nelts; i++) {
        guard_status_row_t *row = &APR_ARRAY_IDX(rows, i, guard_status_row_t);
        const guard_entry_t *e = row->e;

        ap_rprintf(r, "%s{\"id\":\"%s\",\"subject\":%s,\"serial\":\"%s\",\"vhosts\":[",
                   i ? "," : "", e->cert->id_hex, json_str(p, e->cert->subject),
                   e->cert->serial_hex);
        for (j = 0; j < e->vhosts->nelts; j++) {
            server_rec *vs = APR_ARRAY_IDX(e->vhosts, j, server_rec *);
            ap_rprintf(r, "%s%s", j ? "," : "",
                       json_str(p, apr_psprintf(p, "%s:%d", vs->server_hostname,
                                                vs->addrs ? vs->addrs->host_port : vs->port)));
        }
        ap_rprintf(r, "],\"not_after\":%s,\"responder\":%s,\"responder_origin\":%s,"
                   "\"must_staple\":%s,\"cert_status\":%s,\"this_update\":%s,\"next_update\":%s,"
                   "\"renew_at\":%s,\"source\":%s,\"stapled\":%s,",
                   json_time(p, e->cert->not_after),
                   json_str(p, e->url), json_str(p, guard_entry_url_origin(p, e)),
                   e->cert->must_staple ? "true" : "false", json_str(p, status_text(row)),
                   json_time(p, row->have_rec ? row->rec.this_update : 0),
                   json_time(p, row->have_rec ? row->rec.next_update : 0),
                   json_time(p, row->renew_at),
                   json_str(p, og_source_str(row->have_rec ? row->rec.source : OG_SOURCE_NONE)),
                   row->stapled ? "true" : "false");
        ap_rprintf(r, "\"last_fetch\":{\"time\":%s,\"outcome\":%s,\"ms\":%" APR_INT64_T_FMT
                   "},\"last_success\":%s,\"next_attempt\":%s,\"consecutive_failures\":%d}",
                   json_time(p, row->have_st ? row->st.last_attempt : 0),
                   json_str(p, row->have_st && row->st.outcome[0] ? row->st.outcome : NULL),
                   row->have_st ? row->st.last_ms : (apr_int64_t)0,
                   json_time(p, row->have_st ? row->st.last_success : 0),
                   json_time(p, e->url && row->have_st ? row->st.next_attempt : 0),
                   row->have_st ? (int)row->st.failures : 0);
    }
    ap_rputs("]}\n", r);
}

static void render_html(request_rec *r, guard_t *g, apr_array_header_t *rows, int full_page)
{
    const char *fstate, *fdetail = guard_status_fleet(r, g, &fstate);
    apr_pool_t *p = r->pool;
    int i, j;

    if (full_page) {
        ap_set_content_type(r, "text/html; charset=utf-8");
        ap_rputs(DOCTYPE_HTML_4_01 "<html><head><title>mod_ocsp_guard status</title>"
                 "<style>td,th{padding:2px 6px;border-bottom:1px solid #ccc;text-align:left}"
                 ".bad{color:#a00}</style></head><body>\n", r);
    }
    ap_rputs("<h2>mod_ocsp_guard: OCSP stapling</h2>\n", r);
    if (fdetail) {
        ap_rprintf(r, "<p>fleet cache %s: <span class=\"%s\">%s</span></p>\n",
                   ap_escape_html(p, guard_sconf(g->s)->fleet.spec),
                   strcmp(fstate, "reachable") && strcmp(fstate, "not used yet") ? "bad" : "ok",
                   ap_escape_html(p, fdetail));
    }
    ap_rputs("<table><tr><th>certificate</th>"
             "<th>serial</th><th>certificate expires</th><th>virtual hosts</th><th>responder</th><th>status</th>"
             "<th>thisUpdate</th><th>nextUpdate</th><th>renew at</th><th>last fetch</th>"
             "<th>failures</th><th>source</th><th>stapled</th></tr>\n", r);
    for (i = 0; i < rows->nelts; i++) {
        guard_status_row_t *row = &APR_ARRAY_IDX(rows, i, guard_status_row_t);
        const guard_entry_t *e = row->e;
        const char *vh = "";

        for (j = 0; j < e->vhosts->nelts; j++) {
            server_rec *vs = APR_ARRAY_IDX(e->vhosts, j, server_rec *);
            vh = apr_pstrcat(p, vh, j ? ", " : "", ap_escape_html2(p, vs->server_hostname, 0),
                             NULL);
        }
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td%s>%s</td><td>%s</td><td>%s</td><td%s>%s</td>"
                   "<td>%s</td><td>%s</td><td>%s</td><td>%s (%s, %" APR_INT64_T_FMT
                   " ms)</td><td>%d</td><td>%s</td><td%s>%s</td></tr>\n",
                   ap_escape_html2(p, e->cert->subject, 0), e->cert->serial_hex,
                   e->cert->not_after - apr_time_now() < apr_time_from_sec(14 * 86400)
                   ? " class=\"bad\"" : "", expiry_text(p, e->cert->not_after), vh,
                   e->url ? ap_escape_html2(p, e->url, 0) : "(none)",
                   row->status != OG_STATUS_GOOD ? " class=\"bad\"" : "", status_text(row),
                   row->have_rec ? og_iso_time(p, row->rec.this_update) : "-",
                   row->have_rec ? og_iso_time(p, row->rec.next_update) : "-",
                   row->renew_at ? og_iso_time(p, row->renew_at) : "-",
                   row->have_st && row->st.last_attempt
                   ? og_iso_time(p, row->st.last_attempt) : "never",
                   row->have_st && row->st.outcome[0]
                   ? ap_escape_html2(p, row->st.outcome, 0) : "-",
                   row->have_st ? row->st.last_ms : (apr_int64_t)0,
                   row->have_st ? (int)row->st.failures : 0,
                   og_source_str(row->have_rec ? row->rec.source : OG_SOURCE_NONE),
                   row->stapled ? "" : " class=\"bad\"", row->stapled ? "yes" : "no");
    }
    ap_rputs("</table>\n", r);
    if (full_page) {
        ap_rputs("</body></html>\n", r);
    }
}

/* The value of `name` in the query string, or NULL. */
static const char *query_arg(request_rec *r, const char *name)
{
    apr_size_t n = strlen(name);
    const char *a = r->args;

    while (a && *a) {
        if (!strncmp(a, name, n) && a[n] == '=') {
            return apr_pstrndup(r->pool, a + n + 1, strcspn(a + n + 1, "&"));
        }
        a = ap_strchr_c(a, '&');
        a = a ? a + 1 : NULL;
    }
    return NULL;
}

/* POST ?refresh=<id>|all: the refresher fetches these certificates at its
 * next tick, though never sooner than OCSPGuardRetryDelay after their last
 * attempt (a script in a loop cannot hammer a CA). The answer says what was
 * scheduled, and from when. */
static int refresh_request(request_rec *r, guard_t *g, const char *which)
{
    apr_time_t now = apr_time_now();
    int i, n = 0, all = !strcmp(which, "all");

    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);
        og_report_t st;
        apr_time_t from = now;

        if ((!all && strcasecmp(which, e->cert->id_hex)) || !e->url) {
            continue;
        }
        if (!guard_metrics_request_refresh(g, e)) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
        if (guard_cache_get_report(g, r->server, e, &st, r->pool) == APR_SUCCESS
            && st.last_attempt + g->policy.retry_min > now) {
            from = st.last_attempt + g->policy.retry_min;
        }
        ap_rprintf(r, "%s{\"id\":\"%s\",\"subject\":%s,\"not_before\":%s}",
                   n++ ? "," : "{\"scheduled\":[", e->cert->id_hex,
                   json_str(r->pool, e->cert->subject), json_time(r->pool, from));
    }
    if (!n) {
        if (!all) {
            return HTTP_NOT_FOUND; /* no such certificate (or one without a responder) */
        }
        ap_rputs("{\"scheduled\":[", r);
    }
    ap_rprintf(r, "],\"retry_delay_seconds\":%" APR_TIME_T_FMT "}\n",
               apr_time_sec(g->policy.retry_min));
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, OGLOGNO(00080)
                  "refresh asked for %d certificate(s) (%s); the background refresh fetches "
                  "them at its next tick, each at most every OCSPGuardRetryDelay", n, which);
    return OK;
}

static int wants_prometheus(request_rec *r, const char *accept)
{
    const char *format = query_arg(r, "format");

    if (format) {
        return !strcmp(format, "prometheus");
    }
    return accept && (ap_strcasestr(accept, "application/openmetrics-text")
                      || (ap_strcasestr(accept, "text/plain")
                          && ap_strcasestr(accept, "version=0.0.4")));
}

static int og_status_handler(request_rec *r)
{
    guard_t *g = guard_registry();
    const char *accept, *refresh;
    int json, prom;

    if (!r->handler || strcmp(r->handler, GUARD_HANDLER)) {
        return DECLINED;
    }
    refresh = query_arg(r, "refresh");
    if (r->method_number == M_POST && refresh) {
        if (!g || !g->entries->nelts) {
            return HTTP_SERVICE_UNAVAILABLE;
        }
        return refresh_request(r, g, refresh);
    }
    if (r->method_number != M_GET || refresh) {
        /* a GET never changes anything */
        r->allowed = (AP_METHOD_BIT << M_GET) | (refresh ? (AP_METHOD_BIT << M_POST) : 0);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!g) {
        return HTTP_SERVICE_UNAVAILABLE;
    }
    accept = apr_table_get(r->headers_in, "Accept");
    prom = wants_prometheus(r, accept);
    json = !prom && ((r->args && !strcmp(r->args, "json"))
                     || !accept || ap_strcasestr(accept, "application/json")
                     || !ap_strcasestr(accept, "text/html"));
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_mergen(r->headers_out, "Vary", "Accept");
    if (r->header_only) {
        ap_set_content_type(r, prom ? "text/plain; version=0.0.4; charset=utf-8"
                               : json ? "application/json" : "text/html; charset=utf-8");
        return OK;
    }
    if (prom) {
        guard_metrics_render(r, g, guard_status_rows(r, g));
    }
    else if (json) {
        render_json(r, g, guard_status_rows(r, g));
    }
    else {
        render_html(r, g, guard_status_rows(r, g), 1);
    }
    return OK;
}

static int og_status_hook(request_rec *r, int flags)
{
    guard_t *g = guard_registry();
    apr_array_header_t *rows;
    int i, stapled = 0, failing = 0;

    if (!g || g->entries->nelts == 0) {
        return OK;
    }
    rows = guard_status_rows(r, g);
    if (flags & AP_STATUS_SHORT) {
        for (i = 0; i < rows->nelts; i++) {
            guard_status_row_t *row = &APR_ARRAY_IDX(rows, i, guard_status_row_t);
            stapled += row->stapled;
            failing += row->have_st && row->st.failures > 0;
        }
        ap_rprintf(r, "OCSPGuardCertificates: %d\nOCSPGuardStapled: %d\n"
                   "OCSPGuardFailing: %d\n", rows->nelts, stapled, failing);
    }
    else {
        render_html(r, g, rows, 0);
    }
    return OK;
}

void guard_status_register_hooks(void)
{
    ap_hook_handler(og_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, og_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}

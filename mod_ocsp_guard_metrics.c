/* mod_ocsp_guard_metrics.c: what monitoring sees. A small block of shared
 * memory per generation (created by the parent before the prefetch,
 * inherited by every child) holds counters that any process bumps with
 * atomic operations (handshakes on their path: no lock, no system call;
 * fetch outcomes) and one refresh request per certificate, which the status
 * handler's POST sets and the refresher takes. The status handler renders
 * them, with every certificate's state, in Prometheus' text exposition
 * format (og_prom.c), and accepts refresh requests. */
#include <apr_shm.h>
#include <apr_strings.h>
#include <http_protocol.h>

#include "mod_ocsp_guard_private.h"
#include "og_prom.h"

#define SHARED_MAGIC 0x4f474d31u /* "OGM1" */

typedef enum {
    OUT_ACCEPTED = 0, OUT_UNCHANGED, OUT_FAILED, OUT_REJECTED, OUT_UNKNOWN, OUT_REPLAY,
    OUT_COUNT
} outcome_e;

static const char *const outcome_names[OUT_COUNT] = {
    "accepted", "unchanged", "failed", "rejected", "unknown", "replay"
};

struct guard_shared_t {
    apr_uint32_t magic;
    apr_uint32_t nslots;
    apr_uint64_t handshakes;            /* asked for status */
    apr_uint64_t stapled;               /* of those, stapled */
    apr_uint64_t fetches[OUT_COUNT];    /* responder exchanges, by outcome */
    apr_uint64_t fleet_taken;           /* responses taken from the fleet cache */
    apr_uint64_t refresh[];             /* per slot: when a refresh was asked, 0: not */
};

void guard_metrics_post_config(guard_t *g, server_rec *s, apr_pool_t *pconf)
{
    apr_size_t size = sizeof(guard_shared_t)
                      + sizeof(apr_uint64_t) * (apr_size_t)g->entries->nelts;
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    g->shared = NULL;
    if ((rv = apr_shm_create(&shm, size, NULL, pconf)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, OGLOGNO(00077)
                     "no shared memory (%" APR_SIZE_T_FMT " bytes) for the counters: the "
                     "status page's metrics stay at 0 and POST ?refresh is refused", size);
        return;
    }
    g->shared = apr_shm_baseaddr_get(shm);
    memset(g->shared, 0, size);
    g->shared->magic = SHARED_MAGIC;
    g->shared->nslots = (apr_uint32_t)g->entries->nelts;
}

void guard_metrics_handshake(guard_t *g, int stapled)
{
    if (g->shared) {
        __atomic_add_fetch(&g->shared->handshakes, 1, __ATOMIC_RELAXED);
        if (stapled) {
            __atomic_add_fetch(&g->shared->stapled, 1, __ATOMIC_RELAXED);
        }
    }
}

void guard_metrics_attempt(guard_t *g, og_attempt_e kind, og_source_e src)
{
    outcome_e o;

    if (!g->shared || kind == OG_ATTEMPT_NONE) {
        return;
    }
    if (src == OG_SOURCE_FLEET || src == OG_SOURCE_STORE) {
        if (src == OG_SOURCE_FLEET
            && (kind == OG_ATTEMPT_ACCEPTED || kind == OG_ATTEMPT_UNREVOKED)) {
            __atomic_add_fetch(&g->shared->fleet_taken, 1, __ATOMIC_RELAXED);
        }
        return; /* no exchange with a responder */
    }
    switch (kind) {
    case OG_ATTEMPT_ACCEPTED:
    case OG_ATTEMPT_UNREVOKED:
        o = OUT_ACCEPTED;
        break;
    case OG_ATTEMPT_UNCHANGED:
        o = OUT_UNCHANGED;
        break;
    case OG_ATTEMPT_FETCH_FAILED:
        o = OUT_FAILED;
        break;
    case OG_ATTEMPT_REJECTED:
        o = OUT_REJECTED;
        break;
    case OG_ATTEMPT_UNKNOWN:
        o = OUT_UNKNOWN;
        break;
    default: /* replay, pre-revocation */
        o = OUT_REPLAY;
        break;
    }
    __atomic_add_fetch(&g->shared->fetches[o], 1, __ATOMIC_RELAXED);
}

int guard_metrics_request_refresh(guard_t *g, const guard_entry_t *e)
{
    if (!g->shared || e->slot >= g->shared->nslots) {
        return 0;
    }
    __atomic_store_n(&g->shared->refresh[e->slot], (apr_uint64_t)apr_time_now(),
                     __ATOMIC_RELEASE);
    return 1;
}

int guard_metrics_take_refresh(guard_t *g, const guard_entry_t *e)
{
    if (!g->shared || e->slot >= g->shared->nslots
        || !__atomic_load_n(&g->shared->refresh[e->slot], __ATOMIC_RELAXED)) {
        return 0;
    }
    return __atomic_exchange_n(&g->shared->refresh[e->slot], 0, __ATOMIC_ACQ_REL) != 0;
}

/* ---- Prometheus text format ------------------------------------------------ */

static void family(request_rec *r, const char *name, const char *type, const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The labels of one certificate: id, subject, serial, its first vhost. */
static const char *cert_labels(apr_pool_t *p, const guard_entry_t *e)
{
    const char *vhost = "";

    if (e->vhosts->nelts) {
        server_rec *vs = APR_ARRAY_IDX(e->vhosts, 0, server_rec *);

        vhost = apr_psprintf(p, "%s:%d", vs->server_hostname ? vs->server_hostname : "",
                             vs->addrs ? vs->addrs->host_port : vs->port);
    }
    return apr_psprintf(p, "id=\"%s\",subject=\"%s\",serial=\"%s\",vhost=\"%s\"",
                        e->cert->id_hex, og_prom_label_value(p, e->cert->subject),
                        e->cert->serial_hex, og_prom_label_value(p, vhost));
}

static apr_uint64_t load(const apr_uint64_t *v)
{
    return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* The per-certificate gauges: name, help, value of one row. */
typedef const char *row_value_fn(apr_pool_t *p, const guard_status_row_t *row);

static const char *v_stapled(apr_pool_t *p, const guard_status_row_t *row)
{
    (void)p;
    return row->stapled ? "1" : "0";
}

static const char *v_must_staple(apr_pool_t *p, const guard_status_row_t *row)
{
    (void)p;
    return row->e->cert->must_staple ? "1" : "0";
}

static const char *v_this_update(apr_pool_t *p, const guard_status_row_t *row)
{
    return og_prom_seconds(p, row->have_rec ? row->rec.this_update : 0);
}

static const char *v_next_update(apr_pool_t *p, const guard_status_row_t *row)
{
    return og_prom_seconds(p, row->have_rec ? row->rec.next_update : 0);
}

static const char *v_renew_at(apr_pool_t *p, const guard_status_row_t *row)
{
    return og_prom_seconds(p, row->renew_at);
}

static const char *v_not_after(apr_pool_t *p, const guard_status_row_t *row)
{
    return og_prom_seconds(p, row->e->cert->not_after);
}

static const char *v_failures(apr_pool_t *p, const guard_status_row_t *row)
{
    return apr_itoa(p, row->have_st ? row->st.failures : 0);
}

static const char *v_fetch_duration(apr_pool_t *p, const guard_status_row_t *row)
{
    return apr_psprintf(p, "%.3f", row->have_st ? (double)row->st.last_ms / 1000.0 : 0.0);
}

static const char *v_fetch_time(apr_pool_t *p, const guard_status_row_t *row)
{
    return og_prom_seconds(p, row->have_st ? row->st.last_attempt : 0);
}

static const struct {
    const char *name, *help;
    row_value_fn *value;
} gauges[] = {
    { "ocsp_guard_stapled",
      "1 if a handshake now gets a valid stapled response for this certificate.", v_stapled },
    { "ocsp_guard_must_staple",
      "1 if the certificate has the TLS Feature status_request (Must-Staple).", v_must_staple },
    { "ocsp_guard_response_this_update_timestamp_seconds",
      "thisUpdate of the held response (0: none).", v_this_update },
    { "ocsp_guard_response_next_update_timestamp_seconds",
      "nextUpdate of the held response, as capped by OCSPGuardMaxValidity (0: none).",
      v_next_update },
    { "ocsp_guard_response_renew_at_timestamp_seconds",
      "When the held response is renewed (0: none held).", v_renew_at },
    { "ocsp_guard_certificate_not_after_timestamp_seconds",
      "notAfter of the certificate itself.", v_not_after },
    { "ocsp_guard_consecutive_failures",
      "Failed attempts in a row for this certificate.", v_failures },
    { "ocsp_guard_last_fetch_duration_seconds",
      "How long the last exchange with the responder took.", v_fetch_duration },
    { "ocsp_guard_last_fetch_timestamp_seconds",
      "When the responder was last asked for this certificate (0: never).", v_fetch_time },
};

void guard_metrics_render(request_rec *r, guard_t *g, apr_array_header_t *rows)
{
    static const og_cert_status_e states[] = {
        OG_STATUS_GOOD, OG_STATUS_REVOKED, OG_STATUS_UNKNOWN, OG_STATUS_NONE
    };
    static const og_source_e sources[] = {
        OG_SOURCE_PREFETCH, OG_SOURCE_REFRESH, OG_SOURCE_STORE, OG_SOURCE_FLEET, OG_SOURCE_NONE
    };
    apr_pool_t *p = r->pool;
    const char **labels = apr_pcalloc(p, sizeof(*labels) * (apr_size_t)(rows->nelts + 1));
    apr_time_t now = apr_time_now();
    const char *fstate = NULL;
    int i, k;

    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    for (i = 0; i < rows->nelts; i++) {
        labels[i] = cert_labels(p, APR_ARRAY_IDX(rows, i, guard_status_row_t).e);
    }
    family(r, "ocsp_guard_certificates", "gauge",
           "Certificates whose OCSP responses mod_ocsp_guard staples.");
    ap_rprintf(r, "ocsp_guard_certificates %d\n", rows->nelts);
    for (k = 0; k < (int)(sizeof(gauges) / sizeof(gauges[0])); k++) {
        family(r, gauges[k].name, "gauge", gauges[k].help);
        for (i = 0; i < rows->nelts; i++) {
            ap_rprintf(r, "%s{%s} %s\n", gauges[k].name, labels[i],
                       gauges[k].value(p, &APR_ARRAY_IDX(rows, i, guard_status_row_t)));
        }
    }
    /* state sets: one sample per state, 1 for the current one */
    family(r, "ocsp_guard_response_status", "gauge",
           "The certificate's OCSP status as the responder last said it (1 for the current "
           "state; none: no answer yet).");
    for (i = 0; i < rows->nelts; i++) {
        const guard_status_row_t *row = &APR_ARRAY_IDX(rows, i, guard_status_row_t);

        for (k = 0; k < (int)(sizeof(states) / sizeof(states[0])); k++) {
            ap_rprintf(r, "ocsp_guard_response_status{%s,status=\"%s\"} %d\n", labels[i],
                       states[k] == OG_STATUS_NONE ? "none" : og_ocsp_status_str(states[k]),
                       row->status == states[k]);
        }
    }
    family(r, "ocsp_guard_response_source", "gauge",
           "Where the held response came from (1 for the current source).");
    for (i = 0; i < rows->nelts; i++) {
        const guard_status_row_t *row = &APR_ARRAY_IDX(rows, i, guard_status_row_t);
        og_source_e src = row->have_rec ? row->rec.source : OG_SOURCE_NONE;

        for (k = 0; k < (int)(sizeof(sources) / sizeof(sources[0])); k++) {
            ap_rprintf(r, "ocsp_guard_response_source{%s,source=\"%s\"} %d\n", labels[i],
                       og_source_str(sources[k]), src == sources[k]);
        }
    }

    family(r, "ocsp_guard_fetches_total", "counter",
           "Exchanges with responders since the last (re)start, by outcome.");
    for (k = 0; k < OUT_COUNT; k++) {
        ap_rprintf(r, "ocsp_guard_fetches_total{outcome=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   outcome_names[k], g->shared ? load(&g->shared->fetches[k]) : 0);
    }
    family(r, "ocsp_guard_fleet_responses_taken_total", "counter",
           "Responses taken from the fleet cache instead of asking a responder.");
    ap_rprintf(r, "ocsp_guard_fleet_responses_taken_total %" APR_UINT64_T_FMT "\n",
               g->shared ? load(&g->shared->fleet_taken) : 0);
    family(r, "ocsp_guard_handshakes_status_requested_total", "counter",
           "TLS handshakes that asked for a stapled response (status_request).");
    ap_rprintf(r, "ocsp_guard_handshakes_status_requested_total %" APR_UINT64_T_FMT "\n",
               g->shared ? load(&g->shared->handshakes) : 0);
    family(r, "ocsp_guard_handshakes_stapled_total", "counter",
           "Of those, the handshakes that got a stapled response.");
    ap_rprintf(r, "ocsp_guard_handshakes_stapled_total %" APR_UINT64_T_FMT "\n",
               g->shared ? load(&g->shared->stapled) : 0);
    family(r, "ocsp_guard_handshakes_unstapled_total", "counter",
           "Of those, the handshakes that got no stapled response.");
    ap_rprintf(r, "ocsp_guard_handshakes_unstapled_total %" APR_UINT64_T_FMT "\n",
               g->shared ? load(&g->shared->handshakes) - load(&g->shared->stapled) : 0);
    if (guard_status_fleet(r, g, &fstate)) {
        family(r, "ocsp_guard_fleet_cache_up", "gauge",
               "1 if the fleet cache (OCSPGuardFleetCache) answers as the refresher last saw.");
        ap_rprintf(r, "ocsp_guard_fleet_cache_up{cache=\"%s\"} %d\n",
                   og_prom_label_value(p, guard_sconf(g->s)->fleet.spec),
                   !strcmp(fstate, "reachable") || !strcmp(fstate, "not used yet"));
    }
    family(r, "ocsp_guard_scrape_timestamp_seconds", "gauge", "When this page was made.");
    ap_rprintf(r, "ocsp_guard_scrape_timestamp_seconds %s\n", og_prom_seconds(p, now));
}

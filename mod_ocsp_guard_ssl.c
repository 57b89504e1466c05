/* mod_ocsp_guard_ssl.c: the two hooks mod_ssl calls. Prime: take ownership of
 * a certificate (one registry entry per certificate, whatever the number of
 * virtual hosts). Get-resp: copy the cached response out of the lock-free
 * table, nothing else: no lock, no system call, no network, no disk, no DER
 * decoding, trace-level logs only. */
#include <string.h>

#include <apr_strings.h>
#include <http_ssl.h>

#include "mod_ocsp_guard_private.h"

static int og_hook_ocsp_prime(server_rec *s, apr_pool_t *p, const char *id,
                              apr_size_t id_len, const char *pem);
static int og_hook_ocsp_get_resp(server_rec *s, conn_rec *c, const char *id,
                                 apr_size_t id_len, ap_ssl_ocsp_copy_resp *cb,
                                 void *userdata);

static int og_hook_ocsp_prime(server_rec *s, apr_pool_t *p, const char *id,
                              apr_size_t id_len, const char *pem)
{
    guard_t *g = guard_registry();
    guard_sconf_t *sc = guard_sconf(s);
    guard_entry_t *e;
    og_cert_t *cert;
    const char *err;
    int i, fresh = 0;

    (void)p;
    if (!g || !guard_sconf_enabled(sc) || id_len != OG_CERT_ID_LEN) {
        return DECLINED;
    }
    if (guard_dry_run()) {
        /* the dry run of the first start serves nothing and our post-config
         * skips it: parsing every certificate here would only double the cost
         * of a start with thousands (the real pass reads and judges each) */
        return OK;
    }
    e = apr_hash_get(g->by_id, id, (apr_ssize_t)id_len);
    if (!e) {
        if (og_cert_from_pem(&cert, &err, g->pool, pem, strlen(pem), g->issuers) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00006)
                         "%s: cannot read the certificate mod_ssl offered for stapling "
                         "(%s); mod_ssl keeps it", guard_server_desc(p, s), err);
            return DECLINED;
        }
        if (memcmp(cert->id, id, OG_CERT_ID_LEN) != 0 || !cert->issuer) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00007)
                         "%s: certificate %s (serial %s) came without its issuer or "
                         "with an unexpected id; mod_ssl keeps it",
                         guard_server_desc(p, s), cert->subject, cert->serial_hex);
            return DECLINED;
        }
        e = apr_pcalloc(g->pool, sizeof(*e));
        e->cert = cert;
        e->slot = (unsigned int)g->entries->nelts;
        e->vhosts = apr_array_make(g->pool, 2, sizeof(server_rec *));
        e->url = cert->ocsp_url;
        e->url_from = cert->ocsp_url ? GUARD_URL_AIA : GUARD_URL_NONE;
        e->timeout_s = guard_sconf_timeout(sc);
        APR_ARRAY_PUSH(g->entries, guard_entry_t *) = e;
        apr_hash_set(g->by_id, cert->id, OG_CERT_ID_LEN, e);
        fresh = 1;
    }
    for (i = 0; i < e->vhosts->nelts; i++) {
        if (APR_ARRAY_IDX(e->vhosts, i, server_rec *) == s) {
            return OK;
        }
    }
    APR_ARRAY_PUSH(e->vhosts, server_rec *) = s;
    if (sc->override_url && e->url_from != GUARD_URL_OVERRIDE) {
        /* the first virtual host with an override gives it */
        e->url = sc->override_url;
        e->url_from = GUARD_URL_OVERRIDE;
        e->override_at = sc->override_at;
    }
    if (fresh) {
        /* its prefetch exchange starts now, while mod_ssl loads the others */
        guard_early_prime(g, e);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, OGLOGNO(00008)
                 "%s: stapling certificate %s (serial %s, id %s)", guard_server_desc(p, s),
                 e->cert->subject, e->cert->serial_hex, e->cert->id_hex);
    return OK;
}

static int og_hook_ocsp_get_resp(server_rec *s, conn_rec *c, const char *id,
                                 apr_size_t id_len, ap_ssl_ocsp_copy_resp *cb,
                                 void *userdata)
{
    guard_t *g = guard_registry();
    unsigned char buf[OG_RECORD_MAX];
    apr_size_t len = 0;
    og_record_t rec;
    const guard_entry_t *e;

    if (!g || id_len != OG_CERT_ID_LEN || !guard_sconf_enabled(guard_sconf(s))
        || !(e = apr_hash_get(g->by_id, id, (apr_ssize_t)id_len))) {
        return DECLINED;
    }
    if (guard_cache_get(g, s, e, buf, &len, c->pool) == APR_SUCCESS
        && og_record_decode(&rec, buf, len) == 0
        && og_record_stapleable(&rec, apr_time_now())) {
        ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, c, "stapling %u bytes (%s)",
                      (unsigned)rec.der_len, og_ocsp_status_str(rec.cert_status));
        cb(rec.der, rec.der_len, userdata);
        guard_metrics_handshake(g, 1);
    }
    else {
        ap_log_cerror(APLOG_MARK, APLOG_TRACE1, 0, c, "no valid response to staple");
        cb(NULL, 0, userdata);
        guard_metrics_handshake(g, 0);
    }
    /* OK even without a response: mod_ssl must not fetch on the handshake path */
    return OK;
}

void guard_ssl_register_hooks(void)
{
    /* before mod_md's: with MDStapling on too, mod_ocsp_guard staples (OG00046) */
    static const char *const before_md[] = { "mod_md.c", NULL };

    ap_hook_ssl_ocsp_prime_hook(og_hook_ocsp_prime, NULL, before_md, APR_HOOK_MIDDLE);
    ap_hook_ssl_ocsp_get_resp_hook(og_hook_ocsp_get_resp, NULL, NULL, APR_HOOK_MIDDLE);
}

/* og_check.c: the stapling diagnostics as rules over og_conf_t. Each rule
 * says what is wrong, where, what will happen and the exact line to add or
 * change. No httpd header: the glue describes the configuration, reads the
 * findings and does the logging. Tags are fixed per rule (see README). */
#include <string.h>

#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_file_io.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/err.h>

#include "og_check.h"
#include "og_cert.h"


static og_finding_t *add(apr_array_header_t *out, og_level_e level, const char *tag, og_loc_t at,
                         const char *vhost);
static const char *where(apr_pool_t *p, og_loc_t at);
static const char *first_stapling_on(apr_pool_t *p, apr_hash_t *seen, const og_conf_vhost_t *v);
static void rule_stapling_cache(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out);
static void rule_certificates(apr_pool_t *p, const og_conf_t *c, og_cert_reader_fn *reader,
                              apr_array_header_t *out);
static void rule_return_errors(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out);
static void cache_finding(apr_pool_t *p, apr_array_header_t *out, const og_setting_t *cache,
                          const char *directive, apr_size_t need, int whole_records,
                          const char *holds_for, const char *effect);
static apr_size_t at_least(apr_size_t v, apr_size_t floor);
static void rule_cache_size(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out);
static void rule_other_provider(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out);
static void rule_redundant_stapling(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out);
static void rule_store(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out);

static og_finding_t *add(apr_array_header_t *out, og_level_e level, const char *tag, og_loc_t at,
                         const char *vhost)
{
    og_finding_t *f = apr_array_push(out);

    memset(f, 0, sizeof(*f));
    f->level = level;
    f->tag = tag;
    f->at = at;
    f->vhost = vhost;
    return f;
}

static const char *where(apr_pool_t *p, og_loc_t at)
{
    return at.file ? apr_psprintf(p, "%s:%d", at.file, at.line) : "(default)";
}

/* The place of v's 'SSLUseStapling on', the first time it is seen (an
 * inherited setting is shared by many virtual hosts); NULL otherwise. */
static const char *first_stapling_on(apr_pool_t *p, apr_hash_t *seen, const og_conf_vhost_t *v)
{
    const char *key;

    if (v->use_stapling.flag != 1 || !v->use_stapling.at.file) {
        return NULL;
    }
    key = where(p, v->use_stapling.at);
    if (apr_hash_get(seen, key, APR_HASH_KEY_STRING)) {
        return NULL;
    }
    apr_hash_set(seen, key, APR_HASH_KEY_STRING, key);
    return key;
}

static int guard_on(const og_conf_vhost_t *v)
{
    return v->guard.flag != 0;
}

/* SSLUseStapling on anywhere without a global SSLStaplingCache: mod_ssl
 * refuses to start (AH01958), although the syntax check passes. */
static void rule_stapling_cache(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out)
{
    apr_hash_t *seen = apr_hash_make(p);
    int i;

    if (c->stapling_cache.at.file) {
        return;
    }
    for (i = 0; i < c->vhosts->nelts; i++) {
        const og_conf_vhost_t *v = APR_ARRAY_IDX(c->vhosts, i, og_conf_vhost_t *);
        const char *key = first_stapling_on(p, seen, v);
        og_finding_t *f;

        if (!key) {
            continue;
        }
        f = add(out, OG_LVL_ERROR, OG_CHECK_NO_STAPLING_CACHE, v->use_stapling.at, v->name);
        f->always_fatal = 1;
        f->what = "'SSLUseStapling on' without a global SSLStaplingCache";
        f->effect = "mod_ssl refuses to start (AH01958: no stapling cache available) "
                    "although its syntax check passes";
        f->fix = apr_psprintf(p, "add 'SSLStaplingCache shmcb:%s/ssl_stapling(131072)' "
                              "at the top level, outside any <VirtualHost>; or remove "
                              "'SSLUseStapling on' at %s: mod_ocsp_guard staples "
                              "without it", c->runtime_dir ? c->runtime_dir : "/var/run/apache2",
                              key);
    }
}

/* Read a certificate file: the leaf, then its issuer after it, in
 * chain_file or in ca_file; chains and bundles seen before (thousands of
 * certificates of one CA) are not parsed again. */
og_certinfo_t og_check_read_cert(apr_pool_t *p, const char *path, const char *chain_file,
                                 const char *ca_file, og_issuers_t *shared)
{
    og_certinfo_t ci;
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    char *text = NULL;
    apr_size_t len = 0;
    og_cert_t *c;
    const char *err;

    memset(&ci, 0, sizeof(ci));
    if (apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p) != APR_SUCCESS
        || apr_file_info_get(&fi, APR_FINFO_SIZE, f) != APR_SUCCESS
        || fi.size <= 0 || fi.size > OG_CHECK_MAX_CERT_FILE
        || !(text = apr_palloc(p, (apr_size_t)fi.size + 1))
        || apr_file_read_full(f, text, (apr_size_t)fi.size, &len) != APR_SUCCESS) {
        ci.error = "cannot be read";
        if (f) {
            apr_file_close(f);
        }
        return ci;
    }
    apr_file_close(f);
    text[len] = '\0';
    if (og_cert_read(&c, &ci.self_signed, &err, p, text, len, shared, chain_file, ca_file)
        != APR_SUCCESS) {
        ci.error = "holds no PEM certificate";
        return ci;
    }
    ci.has_cert = 1;
    ci.has_issuer = c->issuer != NULL;
    ci.subject = c->subject;
    ci.issuer_name = c->issuer_name;
    ci.serial_hex = c->serial_hex;
    ci.ocsp_url = c->ocsp_url;
    ci.must_staple = c->must_staple;
    return ci;
}

/* Incomplete chains (error) and certificates without OCSP URL (info, and one
 * notice-level summary). */
static void rule_certificates(apr_pool_t *p, const og_conf_t *c, og_cert_reader_fn *reader,
                              apr_array_header_t *out)
{
    apr_hash_t *seen = apr_hash_make(p), *cas = apr_hash_make(p);
    apr_pool_t *chains, *scratch;
    og_issuers_t *shared;
    int i, j, no_url = 0;
    og_loc_t first = { NULL, 0 };
    apr_hash_index_t *hi;
    const char *ca_list = NULL;

    /* what is read lives only while it is looked at: the parsed chains for
     * the whole rule, each file's text and leaf for its own iteration; the
     * findings (in p) copy what they say */
    apr_pool_create(&chains, p);
    apr_pool_create(&scratch, p);
    shared = og_issuers_make(chains);
    for (i = 0; i < c->vhosts->nelts; i++) {
        const og_conf_vhost_t *v = APR_ARRAY_IDX(c->vhosts, i, og_conf_vhost_t *);

        if (!v->ssl) {
            continue;
        }
        for (j = 0; j < v->certs->nelts; j++) {
            const og_conf_cert_t *cc = &APR_ARRAY_IDX(v->certs, j, og_conf_cert_t);
            const char *key = apr_pstrcat(p, cc->path, "|", v->chain_file.value ? v->chain_file.value : "",
                                          "|", guard_on(v) && v->override_url.value ? "o" : "", NULL);
            og_certinfo_t ci;
            og_finding_t *f;

            if (apr_hash_get(seen, key, APR_HASH_KEY_STRING)) {
                continue;
            }
            apr_hash_set(seen, key, APR_HASH_KEY_STRING, key);
            apr_pool_clear(scratch);
            ci = reader(scratch, cc->path, v->chain_file.value, v->ca_file.value, shared);
            if (!ci.has_cert) {
                continue; /* mod_ssl reports unreadable files itself */
            }
            if (ci.self_signed && (guard_on(v) || v->use_stapling.flag == 1)) {
                f = add(out, OG_LVL_INFO, OG_CHECK_SELF_SIGNED, cc->at, v->name);
                f->what = apr_psprintf(p, "certificate %s ('%s', serial %s) is self-signed: "
                                       "nothing to staple", cc->path, ci.subject,
                                       ci.serial_hex);
                f->effect = "it is served without a staple, as it must be: no CA answers "
                            "OCSP for it";
                f->fix = "nothing to do; for a public site, use a certificate from a CA "
                         "(e.g. with mod_md)";
                continue;
            }
            if (!ci.has_issuer && (guard_on(v) || v->use_stapling.flag == 1)) {
                f = add(out, OG_LVL_ERROR, OG_CHECK_NO_ISSUER, cc->at, v->name);
                f->what = apr_psprintf(p, "certificate %s ('%s', serial %s) comes without "
                                       "its issuer: the issuer '%s' is neither after it in "
                                       "the file nor in SSLCertificateChainFile or "
                                       "SSLCACertificateFile", cc->path, ci.subject,
                                       ci.serial_hex, ci.issuer_name);
                f->effect = "mod_ssl never offers this certificate for stapling: it is "
                            "served without a staple, and clients that lack the "
                            "intermediate cannot build the chain";
                f->fix = apr_psprintf(p, "cat %s intermediate.pem > %s-fullchain.pem "
                                      "(intermediate.pem: '%s', from your CA) and set "
                                      "'SSLCertificateFile %s-fullchain.pem' at %s",
                                      cc->path, cc->path, ci.issuer_name, cc->path,
                                      where(p, cc->at));
            }
            if (!ci.ocsp_url && guard_on(v) && !v->override_url.value) {
                no_url++;
                if (!first.file) {
                    first = cc->at;
                }
                apr_hash_set(cas, apr_pstrdup(p, ci.issuer_name), APR_HASH_KEY_STRING, "");
                f = add(out, OG_LVL_INFO, OG_CHECK_NO_URL, cc->at, v->name);
                f->what = apr_psprintf(p, "certificate %s ('%s', serial %s) has no OCSP URL "
                                       "and no OCSPGuardResponderOverride applies",
                                       cc->path, ci.subject, ci.serial_hex);
                f->effect = "it is served without a staple; nothing breaks (many CAs no "
                            "longer run OCSP)";
                f->fix = "nothing to do; to staple anyway, set 'OCSPGuardResponderOverride "
                         "http://<responder>/' in this virtual host";
            }
        }
    }
    apr_pool_destroy(scratch);
    apr_pool_destroy(chains);
    if (no_url) {
        og_finding_t *f = add(out, OG_LVL_NOTICE, OG_CHECK_NO_URL_SUMMARY, first, NULL);

        for (hi = apr_hash_first(p, cas); hi; hi = apr_hash_next(hi)) {
            const void *k;
            apr_hash_this(hi, &k, NULL, NULL);
            ca_list = ca_list ? apr_pstrcat(p, ca_list, "; ", (const char *)k, NULL) : k;
        }
        f->what = apr_psprintf(p, "%d certificate(s) have no OCSP URL (issued by: %s)",
                               no_url, ca_list);
        f->effect = "they are served without a staple";
        f->fix = "nothing to do: their CAs do not offer OCSP";
    }
}

/* Virtual hosts left to mod_ssl's stapling keep its default of stapling the
 * responder's errors. */
static void rule_return_errors(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out)
{
    int i;

    for (i = 0; i < c->vhosts->nelts; i++) {
        const og_conf_vhost_t *v = APR_ARRAY_IDX(c->vhosts, i, og_conf_vhost_t *);
        og_finding_t *f;

        if (!v->ssl || guard_on(v) || v->use_stapling.flag != 1
            || v->return_errors.flag == 0) {
            continue;
        }
        f = add(out, OG_LVL_WARN, OG_CHECK_RETURN_ERRORS, v->guard.at, v->name);
        f->what = "this virtual host has 'OCSPGuard Off' and 'SSLUseStapling on', with "
                  "SSLStaplingReturnResponderErrors on (mod_ssl's default)";
        f->effect = "mod_ssl fetches during handshakes and staples the responder's errors "
                    "(tryLater, expired or foreign responses) to clients";
        f->fix = apr_psprintf(p, "add 'SSLStaplingReturnResponderErrors off' to this "
                              "<VirtualHost> (%s), or remove 'OCSPGuard Off' at %s so that "
                              "mod_ocsp_guard staples it", where(p, v->at),
                              where(p, v->guard.at));
    }
}

apr_size_t og_check_shmcb_size(const char *spec)
{
    const char *open = spec ? strrchr(spec, '(') : NULL;

    return open ? (apr_size_t)apr_atoi64(open + 1) : 0;
}

apr_size_t og_check_shmcb_subcache(apr_size_t size, apr_size_t avg_obj, apr_size_t avg_id)
{
    apr_size_t num_idx = size / (avg_obj + avg_id), num_sub = 256, per_sub, overhead;

    while (num_sub > 1 && (num_idx / num_sub) < (2 * num_sub)) {
        num_sub /= 2;
    }
    per_sub = num_idx / num_sub;
    overhead = 64 + per_sub * 32; /* subcache header and index slots, rounded up */
    return size / num_sub > overhead ? size / num_sub - overhead : 0;
}

/* A shmcb cache written with an explicit size smaller than `need` (or, for
 * ours, whose subcaches cannot hold a maximal record): one finding. */
static void cache_finding(apr_pool_t *p, apr_array_header_t *out, const og_setting_t *cache,
                          const char *directive, apr_size_t need, int whole_records,
                          const char *holds_for, const char *effect)
{
    apr_size_t size;
    og_finding_t *f;

    if (!cache->value || strncmp(cache->value, "shmcb", 5)
        || (size = og_check_shmcb_size(cache->value)) == 0) {
        return;
    }
    while (whole_records
           && og_check_shmcb_subcache(need, OG_RECORD_AVG_SIZE, OG_CERT_ID_LEN) < OG_RECORD_CACHE_FOOTPRINT) {
        need *= 2;
    }
    if (size >= need && (!whole_records || og_check_shmcb_subcache(size, OG_RECORD_AVG_SIZE,
                                                                   OG_CERT_ID_LEN)
                                           >= OG_RECORD_CACHE_FOOTPRINT)) {
        return;
    }
    f = add(out, OG_LVL_WARN, OG_CHECK_CACHE_TOO_SMALL, cache->at, NULL);
    f->what = apr_psprintf(p, "%s holds %" APR_SIZE_T_FMT " bytes for %s; it needs %"
                           APR_SIZE_T_FMT, directive, size, holds_for, need);
    f->effect = effect;
    f->fix = apr_psprintf(p, "'%s %.*s(%" APR_SIZE_T_FMT ")' at %s", directive,
                          (int)(strrchr(cache->value, '(') - cache->value), cache->value,
                          need, where(p, cache->at));
}

static apr_size_t at_least(apr_size_t v, apr_size_t floor)
{
    return v < floor ? floor : v;
}

static void rule_cache_size(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out)
{
    apr_hash_t *ours = apr_hash_make(p), *ssl = apr_hash_make(p);
    unsigned n_ours, n_ssl;
    int i, j;

    for (i = 0; i < c->vhosts->nelts; i++) {
        const og_conf_vhost_t *v = APR_ARRAY_IDX(c->vhosts, i, og_conf_vhost_t *);

        for (j = 0; v->ssl && j < v->certs->nelts; j++) {
            const char *path = APR_ARRAY_IDX(v->certs, j, og_conf_cert_t).path;
            apr_hash_set(guard_on(v) ? ours : ssl, path, APR_HASH_KEY_STRING, path);
        }
    }
    n_ours = apr_hash_count(ours);
    n_ssl = apr_hash_count(ssl);
    cache_finding(p, out, &c->guard_cache, "OCSPGuardCache",
                  at_least((apr_size_t)n_ours * OG_RECORD_ROOM_PER_CERT, 64 * 1024), 1,
                  apr_psprintf(p, "%u certificate(s)", n_ours),
                  "responses that do not fit (or do not fit one shmcb subcache) are "
                  "silently never cached, so never stapled");
    if (n_ssl) {
        cache_finding(p, out, &c->stapling_cache, "SSLStaplingCache",
                      at_least((apr_size_t)n_ssl * OG_RECORD_ROOM_PER_CERT, 32 * 1024), 0,
                      apr_psprintf(p, "the %u certificate(s) mod_ssl staples itself", n_ssl),
                      "mod_ssl evicts responses early and fetches again during handshakes");
    }
}

static void rule_other_provider(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out)
{
    og_finding_t *f;

    if (!c->md_loaded || c->md_stapling.flag != 1) {
        return;
    }
    f = add(out, OG_LVL_INFO, OG_CHECK_OTHER_PROVIDER, c->md_stapling.at, NULL);
    f->what = "mod_md's 'MDStapling on' also offers to staple the certificates it manages";
    f->effect = "mod_ocsp_guard's hook runs before mod_md's, so it staples every certificate "
                "of virtual hosts with OCSPGuard On; mod_md staples only those with OCSPGuard Off";
    f->fix = apr_psprintf(p, "nothing is broken; to make it explicit set 'MDStapling off' at "
                          "%s, or 'OCSPGuard Off' in the virtual hosts mod_md should staple",
                          where(p, c->md_stapling.at));
}

/* mod_ssl's own stapling switched on where mod_ocsp_guard staples: its
 * SSLStapling* settings do nothing there. Said once per directive. */
static void rule_redundant_stapling(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out)
{
    apr_hash_t *seen = apr_hash_make(p);
    int i;

    if (!c->stapling_cache.at.file) {
        return; /* that is OG00040's business */
    }
    for (i = 0; i < c->vhosts->nelts; i++) {
        const og_conf_vhost_t *v = APR_ARRAY_IDX(c->vhosts, i, og_conf_vhost_t *);
        const char *key;
        og_finding_t *f;

        if (!v->ssl || !guard_on(v) || !(key = first_stapling_on(p, seen, v))) {
            continue;
        }
        f = add(out, OG_LVL_INFO, OG_CHECK_REDUNDANT_STAPLING, v->use_stapling.at, v->name);
        f->what = "'SSLUseStapling on' where mod_ocsp_guard staples (OCSPGuard On)";
        f->effect = "mod_ssl's own stapling is bypassed for these certificates: its "
                    "SSLStapling* settings (timeouts, error handling, cache) have no effect here";
        f->fix = apr_psprintf(p, "nothing is broken; remove 'SSLUseStapling on' at %s (and "
                              "SSLStaplingCache, if nothing else needs it) to say what happens, "
                              "and tune OCSPGuard* directives instead", key);
    }
}

/* The store directory belongs to the server's User while root reads it: a
 * link, a directory others can write, or one below a directory the User can
 * write would let that User point root's reads elsewhere. */
static void rule_store(apr_pool_t *p, const og_conf_t *c, apr_array_header_t *out)
{
    og_finding_t *f;

    if (!c->store_problem) {
        return;
    }
    f = add(out, OG_LVL_ERROR, OG_CHECK_STORE_UNSAFE, c->store_at, NULL);
    f->what = apr_psprintf(p, "OCSPGuardStore %s%s %s", c->store_dir,
                           c->store_at.file ? "" : " (the default)", c->store_problem);
    f->effect = "mod_ocsp_guard does not use it: responses are stapled but not kept "
                "across restarts";
    f->fix = apr_psprintf(p, "make %s a real directory (not a link) of its own, mode 0700, "
                          "in a directory only root can write (e.g. OCSPGuardStore "
                          "/var/lib/apache2/ocsp_guard); mod_ocsp_guard creates it and hands "
                          "it to the server's User", c->store_dir);
}

apr_array_header_t *og_check_run(apr_pool_t *p, const og_conf_t *conf, og_cert_reader_fn *reader)
{
    apr_array_header_t *out = apr_array_make(p, 8, sizeof(og_finding_t));

    rule_stapling_cache(p, conf, out);
    rule_certificates(p, conf, reader ? reader : og_check_read_cert, out);
    rule_return_errors(p, conf, out);
    rule_cache_size(p, conf, out);
    rule_other_provider(p, conf, out);
    rule_redundant_stapling(p, conf, out);
    rule_store(p, conf, out);
    return out;
}

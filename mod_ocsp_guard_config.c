/* mod_ocsp_guard_config.c: the OCSPGuard* directives: parsing, validation,
 * create and merge. Defaults are resolved in one place (guard_sconf_*). A bad
 * value stops startup with the directive, the value and what is accepted.
 * Nothing here fetches, caches or logs at run time. */
#include <apr_strings.h>
#include <apr_lib.h>
#include <http_core.h>
#include <ap_provider.h>
#include <openssl/http.h>

#include "mod_ocsp_guard_private.h"

static const char *set_enabled(cmd_parms *cmd, void *dc, int flag);
static const char *set_cache(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_fleet_cache(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_store(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_responder_timeout(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_prefetch_timeout(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_renew_window(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_override(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_proxy(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_enforce(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_retry_delay(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_max_validity(cmd_parms *cmd, void *dc, const char *arg);

const command_rec guard_cmds[] = {
    AP_INIT_FLAG("OCSPGuard", set_enabled, NULL, RSRC_CONF,
                 "On|Off: let mod_ocsp_guard staple this server's certificates (default On)"),
    AP_INIT_TAKE1("OCSPGuardCache", set_cache, NULL, RSRC_CONF,
                  "type[:args]: the mod_socache cache the handshakes read, "
                  "e.g. shmcb:/run/apache2/ocsp_guard(1048576)"),
    AP_INIT_TAKE1("OCSPGuardFleetCache", set_fleet_cache, NULL, RSRC_CONF,
                  "type:args: a network cache shared by a fleet (redis:host:port, memcache:host:port)"),
    AP_INIT_TAKE1("OCSPGuardStore", set_store, NULL, RSRC_CONF,
                  "directory where responses persist across restarts"),
    AP_INIT_TAKE1("OCSPGuardResponderTimeout", set_responder_timeout, NULL, RSRC_CONF,
                  "seconds: bound on one responder exchange (default 5)"),
    AP_INIT_TAKE1("OCSPGuardPrefetchTimeout", set_prefetch_timeout, NULL, RSRC_CONF,
                  "seconds startup may wait for the first fetch (default 10; 0: background)"),
    AP_INIT_TAKE1("OCSPGuardRenewWindow", set_renew_window, NULL, RSRC_CONF,
                  "percent: renew when less than this share of the validity remains (default 50%)"),
    AP_INIT_TAKE1("OCSPGuardResponderOverride", set_override, NULL, RSRC_CONF,
                  "http URL: use this responder instead of the certificate's AIA URL"),
    AP_INIT_TAKE1("OCSPGuardProxy", set_proxy, NULL, RSRC_CONF,
                  "http://host:port: send responder traffic through this HTTP proxy"),
    AP_INIT_TAKE1("OCSPGuardEnforce", set_enforce, NULL, RSRC_CONF,
                  "warn|strict: strict fails startup on every error-level finding (default warn)"),
    AP_INIT_TAKE1("OCSPGuardRetryDelay", set_retry_delay, NULL, RSRC_CONF,
                  "seconds: first retry after a failed fetch, and the least time between "
                  "two fetches of a certificate (default 60)"),
    AP_INIT_TAKE1("OCSPGuardMaxValidity", set_max_validity, NULL, RSRC_CONF,
                  "duration (e.g. 10d, 36h, 90m, 600s): a response counts as valid for at "
                  "most this long after its thisUpdate (default 10d, CA/B Forum BR 4.9.10)"),
    AP_INIT_TAKE1(NULL, NULL, NULL, 0, NULL)
};

void *guard_create_sconf(apr_pool_t *p, server_rec *s)
{
    guard_sconf_t *sc = apr_pcalloc(p, sizeof(*sc));

    (void)s;
    sc->enabled = GUARD_UNSET;
    sc->responder_timeout = GUARD_UNSET;
    sc->prefetch_timeout = GUARD_UNSET;
    sc->renew_window = GUARD_UNSET;
    sc->enforce_strict = GUARD_UNSET;
    sc->retry_delay = GUARD_UNSET;
    sc->max_validity = GUARD_UNSET;
    return sc;
}

#define MERGE(f) c->f = (add->f != GUARD_UNSET) ? add->f : base->f
#define MERGE_PTR(f) c->f = add->f ? add->f : base->f

void *guard_merge_sconf(apr_pool_t *p, void *basev, void *addv)
{
    guard_sconf_t *base = basev, *add = addv, *c = apr_pcalloc(p, sizeof(*c));

    /* per virtual host */
    MERGE(enabled);
    c->enabled_at = add->enabled != GUARD_UNSET ? add->enabled_at : base->enabled_at;
    MERGE(responder_timeout);
    MERGE_PTR(override_url);
    c->override_at = add->override_url ? add->override_at : base->override_at;
    /* global only: the directives are refused in virtual hosts, so the
     * base (main server) values are the ones that count */
    c->cache_spec = base->cache_spec;
    c->cache_at = base->cache_at;
    c->cache_provider = base->cache_provider;
    c->cache_inst = base->cache_inst;
    c->fleet_spec = base->fleet_spec;
    c->fleet_at = base->fleet_at;
    c->fleet_provider = base->fleet_provider;
    c->fleet_inst = base->fleet_inst;
    c->store_dir = base->store_dir;
    c->store_at = base->store_at;
    c->max_validity = base->max_validity;
    c->prefetch_timeout = base->prefetch_timeout;
    c->renew_window = base->renew_window;
    c->proxy = base->proxy;
    c->enforce_strict = base->enforce_strict;
    c->retry_delay = base->retry_delay;
    return c;
}

guard_sconf_t *guard_sconf(server_rec *s)
{
    return ap_get_module_config(s->module_config, &ocsp_guard_module);
}

#define OR_DEFAULT(v, dflt) ((v) != GUARD_UNSET ? (v) : (dflt))

int guard_sconf_enabled(const guard_sconf_t *sc)
{
    return sc->enabled != 0; /* On unless Off */
}

int guard_sconf_timeout(const guard_sconf_t *sc)
{
    return OR_DEFAULT(sc->responder_timeout, GUARD_DEFAULT_RESPONDER_TIMEOUT);
}

int guard_sconf_strict(const guard_sconf_t *sc)
{
    return OR_DEFAULT(sc->enforce_strict, 0) == 1;
}

const char *guard_sconf_store_dir(apr_pool_t *p, const guard_sconf_t *sc)
{
    return sc->store_dir ? sc->store_dir : ap_server_root_relative(p, GUARD_DEFAULT_STORE_DIR);
}

/* This generation's effective policy, from the main server's settings. */
void guard_config_resolve(guard_t *g, server_rec *s, apr_pool_t *pconf)
{
    const guard_sconf_t *sc = guard_sconf(s);

    g->proxy = sc->proxy;
    g->strict = guard_sconf_strict(sc);
    g->prefetch_timeout = OR_DEFAULT(sc->prefetch_timeout, GUARD_DEFAULT_PREFETCH_TIMEOUT);
    g->max_validity = OR_DEFAULT(sc->max_validity, GUARD_DEFAULT_MAX_VALIDITY);
    g->store_dir = guard_sconf_store_dir(pconf, sc);
    og_sched_defaults(&g->policy); /* renew window, retry delays: og_sched.c */
    g->policy.renew_window = OR_DEFAULT(sc->renew_window, g->policy.renew_window);
    if (sc->retry_delay != GUARD_UNSET) {
        g->policy.retry_min = apr_time_from_sec(sc->retry_delay);
    }
    if (g->policy.retry_max < g->policy.retry_min) {
        g->policy.retry_max = g->policy.retry_min;
    }
}

static guard_sconf_t *cmd_sconf(cmd_parms *cmd)
{
    return guard_sconf(cmd->server);
}

static og_loc_t cmd_where(cmd_parms *cmd)
{
    og_loc_t w;

    w.file = cmd->directive ? cmd->directive->filename : "?";
    w.line = cmd->directive ? cmd->directive->line_num : 0;
    return w;
}

/* Parse whole seconds ("5" or "5s") within [lo, hi]. */
static const char *parse_seconds(cmd_parms *cmd, const char *arg, int lo, int hi, int *pval)
{
    char *end;
    long v;

    v = strtol(arg, &end, 10);
    if (end == arg || (*end && strcmp(end, "s")) || v < lo || v > hi) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds "
                            "from %d to %d (e.g. %s %d)", cmd->cmd->name, arg, lo, hi,
                            cmd->cmd->name, lo > 5 ? lo : 5);
    }
    *pval = (int)v;
    return NULL;
}

static const char *check_http_url(cmd_parms *cmd, const char *arg, int want_path)
{
    int ssl = 0;
    char *host = NULL, *port = NULL, *path = NULL;
    const char *err = NULL;

    if (strncasecmp(arg, "http://", 7)
        || !OSSL_HTTP_parse_url(arg, &ssl, NULL, &host, &port, NULL, &path, NULL, NULL)
        || !host || !*host) {
        err = apr_psprintf(cmd->pool, "%s: '%s' is not an http:// URL (expected e.g. "
                           "%s http://%s)", cmd->cmd->name, arg, cmd->cmd->name,
                           want_path ? "ocsp.example.org/" : "proxy.example.org:3128");
    }
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    return err;
}

static const char *set_enabled(cmd_parms *cmd, void *dc, int flag)
{
    guard_sconf_t *sc = cmd_sconf(cmd);

    (void)dc;
    sc->enabled = flag ? 1 : 0;
    sc->enabled_at = cmd_where(cmd);
    return NULL;
}

/* "type[:args]" -> a created socache instance of that provider. */
static const char *make_socache(cmd_parms *cmd, const char *arg,
                                const ap_socache_provider_t **pprov,
                                ap_socache_instance_t **pinst)
{
    const char *sep = ap_strchr_c(arg, ':');
    const char *name = sep ? apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(sep - arg)) : arg;
    const char *args = sep ? sep + 1 : NULL;
    const ap_socache_provider_t *prov;
    const char *err;

    prov = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!prov) {
        return apr_psprintf(cmd->pool, "%s: unknown cache type '%s' in '%s'. Maybe you need "
                            "to load the module first: LoadModule socache_%s_module "
                            "modules/mod_socache_%s.so (on Debian: a2enmod socache_%s)",
                            cmd->cmd->name, name, arg, name, name, name);
    }
    err = prov->create(pinst, args, cmd->temp_pool, cmd->pool);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: '%s': %s", cmd->cmd->name, arg, err);
    }
    *pprov = prov;
    return NULL;
}

static const char *set_cache(cmd_parms *cmd, void *dc, const char *arg)
{
    guard_sconf_t *sc = cmd_sconf(cmd);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err) {
        return err;
    }
    if (sc->cache_spec) {
        return apr_psprintf(cmd->pool, "%s: already set at %s:%d", cmd->cmd->name,
                            sc->cache_at.file, sc->cache_at.line);
    }
    /* the handshake path staples what this cache returns without verifying it
     * again: only this machine's shared memory may hold it */
    if (strncasecmp(arg, "shmcb", 5) || (arg[5] && arg[5] != ':')) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not accepted: the cache the handshakes "
                            "read must be this machine's shared memory (shmcb, e.g. %s "
                            "shmcb:/run/apache2/ocsp_guard(1048576)); to share responses "
                            "across servers use OCSPGuardFleetCache, whose records are "
                            "verified before use", cmd->cmd->name, arg, cmd->cmd->name);
    }
    if ((err = make_socache(cmd, arg, &sc->cache_provider, &sc->cache_inst))) {
        return err;
    }
    sc->cache_spec = arg;
    sc->cache_at = cmd_where(cmd);
    return NULL;
}

static const char *set_fleet_cache(cmd_parms *cmd, void *dc, const char *arg)
{
    guard_sconf_t *sc = cmd_sconf(cmd);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err) {
        return err;
    }
    if (strncasecmp(arg, "redis:", 6) && strncasecmp(arg, "memcache:", 9)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a network cache; accepted: "
                            "redis:host:port or memcache:host:port", cmd->cmd->name, arg);
    }
    if ((err = make_socache(cmd, arg, &sc->fleet_provider, &sc->fleet_inst))) {
        return err;
    }
    sc->fleet_spec = arg;
    sc->fleet_at = cmd_where(cmd);
    return NULL;
}

static const char *set_store(cmd_parms *cmd, void *dc, const char *arg)
{
    guard_sconf_t *sc = cmd_sconf(cmd);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err) {
        return err;
    }
    if (!*arg) {
        return apr_psprintf(cmd->pool, "%s: needs a directory path", cmd->cmd->name);
    }
    sc->store_dir = ap_server_root_relative(cmd->pool, arg);
    if (!sc->store_dir) {
        return apr_psprintf(cmd->pool, "%s: invalid path '%s'", cmd->cmd->name, arg);
    }
    sc->store_at = cmd_where(cmd);
    return NULL;
}

static const char *set_responder_timeout(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    return parse_seconds(cmd, arg, 1, 300, &cmd_sconf(cmd)->responder_timeout);
}

static const char *set_prefetch_timeout(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    return err ? err : parse_seconds(cmd, arg, 0, 600, &cmd_sconf(cmd)->prefetch_timeout);
}

static const char *set_renew_window(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    long v;

    (void)dc;
    if (err) {
        return err;
    }
    v = strtol(arg, &end, 10);
    if (end == arg || (*end && strcmp(end, "%")) || v < 1 || v > 99) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a percentage from 1%% to 99%% "
                            "(e.g. %s 50%%)", cmd->cmd->name, arg, cmd->cmd->name);
    }
    cmd_sconf(cmd)->renew_window = (int)v;
    return NULL;
}

static const char *set_override(cmd_parms *cmd, void *dc, const char *arg)
{
    guard_sconf_t *sc = cmd_sconf(cmd);
    const char *err = check_http_url(cmd, arg, 1);

    (void)dc;
    if (err) {
        return err;
    }
    sc->override_url = arg;
    sc->override_at = cmd_where(cmd);
    return NULL;
}

static const char *set_proxy(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err || (err = check_http_url(cmd, arg, 0))) {
        return err;
    }
    cmd_sconf(cmd)->proxy = arg;
    return NULL;
}

static const char *set_enforce(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    if (err) {
        return err;
    }
    if (!strcasecmp(arg, "warn")) {
        cmd_sconf(cmd)->enforce_strict = 0;
    }
    else if (!strcasecmp(arg, "strict")) {
        cmd_sconf(cmd)->enforce_strict = 1;
    }
    else {
        return apr_psprintf(cmd->pool, "%s: '%s' is not accepted; use warn or strict",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_retry_delay(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    return err ? err : parse_seconds(cmd, arg, 1, 3600, &cmd_sconf(cmd)->retry_delay);
}

/* "10d", "36h", "90m", "600s" or plain seconds, from 1 s to 3650 days. */
static const char *set_max_validity(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    char *end;
    long long v, unit = 1;

    (void)dc;
    if (err) {
        return err;
    }
    v = strtoll(arg, &end, 10);
    if (end != arg && *end && !end[1]) {
        switch (apr_tolower(*end)) {
        case 's': unit = 1; end++; break;
        case 'm': unit = 60; end++; break;
        case 'h': unit = 3600; end++; break;
        case 'd': unit = 86400; end++; break;
        default: break;
        }
    }
    if (end == arg || *end || v < 1 || v > 3650LL * 86400 / unit) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a duration from 1s to 3650d "
                            "(e.g. %s 10d, or 36h, 90m, 600s)", cmd->cmd->name, arg,
                            cmd->cmd->name);
    }
    cmd_sconf(cmd)->max_validity = apr_time_from_sec(v * unit);
    return NULL;
}

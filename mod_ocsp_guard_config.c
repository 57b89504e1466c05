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

/* A directive of the main server only: set_global checks the context, then
 * calls the setter named in the command's table entry. */
typedef const char *guard_setter_fn(cmd_parms *cmd, guard_sconf_t *sc, const char *arg);
typedef struct guard_setter_t {
    guard_setter_fn *fn;
} guard_setter_t;

static const char *set_global(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_enabled(cmd_parms *cmd, void *dc, int flag);
static const char *set_responder_timeout(cmd_parms *cmd, void *dc, const char *arg);
static const char *set_override(cmd_parms *cmd, void *dc, const char *arg);
static guard_setter_fn set_cache, set_fleet_cache, set_store, set_prefetch_timeout,
                       set_renew_window, set_proxy, set_enforce, set_retry_delay,
                       set_max_validity;

#define GLOBAL(name, fn, help) \
    AP_INIT_TAKE1(name, set_global, (void *)&(const guard_setter_t){ fn }, RSRC_CONF, help)

const command_rec guard_cmds[] = {
    AP_INIT_FLAG("OCSPGuard", set_enabled, NULL, RSRC_CONF,
                 "On|Off: let mod_ocsp_guard staple this server's certificates (default On)"),
    GLOBAL("OCSPGuardCache", set_cache,
           "shmcb[:path(size)]: the shared-memory cache the handshakes read, "
           "e.g. shmcb:/run/apache2/ocsp_guard(1048576)"),
    GLOBAL("OCSPGuardFleetCache", set_fleet_cache,
           "type:args: a network cache shared by a fleet (redis:host:port, memcache:host:port)"),
    GLOBAL("OCSPGuardStore", set_store, "directory where responses persist across restarts"),
    AP_INIT_TAKE1("OCSPGuardResponderTimeout", set_responder_timeout, NULL, RSRC_CONF,
                  "seconds: bound on one responder exchange (default 5)"),
    GLOBAL("OCSPGuardPrefetchTimeout", set_prefetch_timeout,
           "seconds startup may wait for the first fetch (default 10; 0: background)"),
    GLOBAL("OCSPGuardRenewWindow", set_renew_window,
           "percent: renew when less than this share of the validity remains (default 50%)"),
    AP_INIT_TAKE1("OCSPGuardResponderOverride", set_override, NULL, RSRC_CONF,
                  "http URL: use this responder instead of the certificate's AIA URL"),
    GLOBAL("OCSPGuardProxy", set_proxy,
           "http://host:port: send responder traffic through this HTTP proxy"),
    GLOBAL("OCSPGuardEnforce", set_enforce,
           "warn|strict: strict fails startup on every error-level finding (default warn)"),
    GLOBAL("OCSPGuardRetryDelay", set_retry_delay,
           "seconds: first retry after a failed fetch, and the least time between "
           "two fetches of a certificate (default 60)"),
    GLOBAL("OCSPGuardMaxValidity", set_max_validity,
           "duration (e.g. 10d, 36h, 90m, 600s): a response counts as valid for at most "
           "this long after its thisUpdate (default 10d, CA/B Forum BR 4.9.10)"),
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
    MERGE(responder_timeout);
    MERGE_PTR(override_url);
    c->override_at = add->override_url ? add->override_at : base->override_at;
    /* global only: the directives are refused in virtual hosts, so the
     * base (main server) values are the ones that count */
    c->cache = base->cache;
    c->fleet = base->fleet;
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

static const char *set_global(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)dc;
    return err ? err : ((const guard_setter_t *)cmd->info)->fn(cmd, cmd_sconf(cmd), arg);
}

static const char *set_enabled(cmd_parms *cmd, void *dc, int flag)
{
    (void)dc;
    cmd_sconf(cmd)->enabled = flag ? 1 : 0;
    return NULL;
}

/* "type[:args]" -> a created socache instance of that provider, kept with
 * the directive's text and place (once only). */
static const char *make_socache(cmd_parms *cmd, const char *arg, guard_socache_conf_t *sock)
{
    const char *sep = ap_strchr_c(arg, ':');
    const char *name = sep ? apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(sep - arg)) : arg;
    const char *args = sep ? sep + 1 : NULL;
    const ap_socache_provider_t *prov;
    const char *err;

    if (sock->spec) {
        return apr_psprintf(cmd->pool, "%s: already set at %s:%d", cmd->cmd->name,
                            sock->at.file, sock->at.line);
    }
    prov = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!prov) {
        return apr_psprintf(cmd->pool, "%s: unknown cache type '%s' in '%s'. Maybe you need "
                            "to load the module first: LoadModule socache_%s_module "
                            "modules/mod_socache_%s.so (on Debian: a2enmod socache_%s)",
                            cmd->cmd->name, name, arg, name, name, name);
    }
    err = prov->create(&sock->inst, args, cmd->temp_pool, cmd->pool);
    if (err) {
        return apr_psprintf(cmd->pool, "%s: '%s': %s", cmd->cmd->name, arg, err);
    }
    sock->provider = prov;
    sock->spec = arg;
    sock->at = cmd_where(cmd);
    return NULL;
}

static const char *set_cache(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    /* the handshake path staples what this cache returns without verifying it
     * again: only this machine's shared memory may hold it */
    if (strncasecmp(arg, "shmcb", 5) || (arg[5] && arg[5] != ':')) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not accepted: the cache the handshakes "
                            "read must be this machine's shared memory (shmcb, e.g. %s "
                            "shmcb:/run/apache2/ocsp_guard(1048576)); to share responses "
                            "across servers use OCSPGuardFleetCache, whose records are "
                            "verified before use", cmd->cmd->name, arg, cmd->cmd->name);
    }
    return make_socache(cmd, arg, &sc->cache);
}

static const char *set_fleet_cache(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    if (strncasecmp(arg, "redis:", 6) && strncasecmp(arg, "memcache:", 9)) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a network cache; accepted: "
                            "redis:host:port or memcache:host:port", cmd->cmd->name, arg);
    }
    return make_socache(cmd, arg, &sc->fleet);
}

static const char *set_store(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
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

static const char *set_prefetch_timeout(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    return parse_seconds(cmd, arg, 0, 600, &sc->prefetch_timeout);
}

static const char *set_retry_delay(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    return parse_seconds(cmd, arg, 1, 3600, &sc->retry_delay);
}

static const char *set_renew_window(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (end == arg || (*end && strcmp(end, "%")) || v < 1 || v > 99) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a percentage from 1%% to 99%% "
                            "(e.g. %s 50%%)", cmd->cmd->name, arg, cmd->cmd->name);
    }
    sc->renew_window = (int)v;
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

static const char *set_proxy(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    const char *err = check_http_url(cmd, arg, 0);

    if (!err) {
        sc->proxy = arg;
    }
    return err;
}

static const char *set_enforce(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    if (!strcasecmp(arg, "warn") || !strcasecmp(arg, "strict")) {
        sc->enforce_strict = !strcasecmp(arg, "strict");
        return NULL;
    }
    return apr_psprintf(cmd->pool, "%s: '%s' is not accepted; use warn or strict",
                        cmd->cmd->name, arg);
}

/* "10d", "36h", "90m", "600s" or plain seconds, from 1 s to 3650 days. */
static const char *set_max_validity(cmd_parms *cmd, guard_sconf_t *sc, const char *arg)
{
    char *end;
    long long v = strtoll(arg, &end, 10), unit = 1;

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
    sc->max_validity = apr_time_from_sec(v * unit);
    return NULL;
}

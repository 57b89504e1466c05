/* mod_ocsp_guard_check.c: read httpd's effective configuration tree
 * (ap_conftree: Include, <IfModule> and <IfDefine> already resolved) into the
 * plain og_conf_t, run the og_check rules, log every finding with its tag,
 * place, effect and fix, and fail `apachectl -t` and startup where the
 * finding is fatal (or OCSPGuardEnforce strict makes it so). */
#include <apr_strings.h>
#include <http_core.h>
#include <http_main.h>
#include <http_config.h>

#include "mod_ocsp_guard_private.h"
#include "og_check.h"

static og_conf_vhost_t *new_vhost(apr_pool_t *p, const char *name, const ap_directive_t *d);
static void read_directive(apr_pool_t *p, og_conf_t *c, og_conf_vhost_t *v,
                           const ap_directive_t *d, int global);
static void read_tree(apr_pool_t *p, og_conf_t *c, og_conf_vhost_t *v,
                      const ap_directive_t *d, int global);
static void inherit(og_conf_vhost_t *v, const og_conf_vhost_t *main);
static og_conf_t *read_conf(apr_pool_t *p);

static og_conf_vhost_t *new_vhost(apr_pool_t *p, const char *name, const ap_directive_t *d)
{
    og_conf_vhost_t *v = apr_pcalloc(p, sizeof(*v));

    v->name = name;
    v->ssl = -1;
    v->use_stapling.flag = v->return_errors.flag = v->guard.flag = -1;
    v->override_url.flag = v->chain_file.flag = v->ca_file.flag = -1;
    v->certs = apr_array_make(p, 2, sizeof(og_conf_cert_t));
    if (d) {
        v->at.file = d->filename;
        v->at.line = d->line_num;
    }
    return v;
}

static int flag_of(const char *arg)
{
    if (!strcasecmp(arg, "on")) {
        return 1;
    }
    if (!strcasecmp(arg, "off")) {
        return 0;
    }
    return -1;
}

static void set(og_setting_t *st, apr_pool_t *p, const ap_directive_t *d, int flag, int path)
{
    const char *arg = d->args;

    if (*arg == '"') { /* a quoted path */
        arg = apr_pstrndup(p, arg + 1, strlen(arg) > 1 ? strlen(arg) - 2 : 0);
    }
    st->flag = flag;
    st->value = path ? ap_server_root_relative(p, arg) : arg;
    st->at.file = d->filename;
    st->at.line = d->line_num;
}

static void read_directive(apr_pool_t *p, og_conf_t *c, og_conf_vhost_t *v,
                           const ap_directive_t *d, int global)
{
    const char *n = d->directive;

    if (!strcasecmp(n, "SSLEngine")) {
        v->ssl = !strcasecmp(d->args, "on") || !strcasecmp(d->args, "optional");
    }
    else if (!strcasecmp(n, "SSLUseStapling")) {
        set(&v->use_stapling, p, d, flag_of(d->args), 0);
    }
    else if (!strcasecmp(n, "SSLStaplingReturnResponderErrors")) {
        set(&v->return_errors, p, d, flag_of(d->args), 0);
    }
    else if (!strcasecmp(n, "OCSPGuard")) {
        set(&v->guard, p, d, flag_of(d->args), 0);
    }
    else if (!strcasecmp(n, "OCSPGuardResponderOverride")) {
        set(&v->override_url, p, d, 1, 0);
    }
    else if (!strcasecmp(n, "SSLCertificateChainFile")) {
        set(&v->chain_file, p, d, 1, 1);
    }
    else if (!strcasecmp(n, "SSLCACertificateFile")) {
        set(&v->ca_file, p, d, 1, 1);
    }
    else if (!strcasecmp(n, "SSLCertificateFile")) {
        og_conf_cert_t *cc = apr_array_push(v->certs);
        og_setting_t st;

        set(&st, p, d, 1, 1);
        cc->path = st.value;
        cc->at = st.at;
    }
    else if (global && !strcasecmp(n, "SSLStaplingCache")) {
        set(&c->stapling_cache, p, d, 1, 0);
    }
    else if (global && !strcasecmp(n, "OCSPGuardCache")) {
        set(&c->guard_cache, p, d, 1, 0);
    }
    else if (!strcasecmp(n, "MDStapling")) {
        set(&c->md_stapling, p, d, flag_of(d->args), 0);
    }
    else if (!strcasecmp(n, "ServerName") && !global && v->at.file) {
        v->name = apr_pstrdup(p, d->args);
    }
}

/* Sections that hold per-directory settings are not server settings. */
static int is_dir_section(const char *n)
{
    return !strcasecmp(n, "<Directory") || !strcasecmp(n, "<DirectoryMatch")
           || !strcasecmp(n, "<Location") || !strcasecmp(n, "<LocationMatch")
           || !strcasecmp(n, "<Files") || !strcasecmp(n, "<FilesMatch")
           || !strcasecmp(n, "<Proxy") || !strcasecmp(n, "<ProxyMatch")
           || !strcasecmp(n, "<If") || !strcasecmp(n, "<ElseIf") || !strcasecmp(n, "<Else")
           || !strcasecmp(n, "<Limit") || !strcasecmp(n, "<LimitExcept");
}

static void read_tree(apr_pool_t *p, og_conf_t *c, og_conf_vhost_t *v,
                      const ap_directive_t *d, int global)
{
    for (; d; d = d->next) {
        if (global && !strcasecmp(d->directive, "<VirtualHost")) {
            og_conf_vhost_t *vh = new_vhost(p, apr_pstrdup(p, d->args), d);

            if (vh->name[0] && vh->name[strlen(vh->name) - 1] == '>') {
                vh->name = apr_pstrndup(p, vh->name, strlen(vh->name) - 1);
            }
            read_tree(p, c, vh, d->first_child, 0);
            APR_ARRAY_PUSH(c->vhosts, og_conf_vhost_t *) = vh;
        }
        else if (d->first_child && !is_dir_section(d->directive)) {
            /* <MDomain> and other server-level sections */
            read_tree(p, c, v, d->first_child, global);
        }
        else if (!d->first_child) {
            read_directive(p, c, v, d, global);
        }
    }
}

#define INHERIT(f) if (v->f.flag == -1 && !v->f.at.file) v->f = main->f

static void inherit(og_conf_vhost_t *v, const og_conf_vhost_t *main)
{
    if (v->ssl == -1) {
        v->ssl = main->ssl;
    }
    INHERIT(use_stapling);
    INHERIT(return_errors);
    INHERIT(guard);
    INHERIT(override_url);
    INHERIT(chain_file);
    INHERIT(ca_file);
    if (v->certs->nelts == 0) {
        v->certs = main->certs;
    }
}

static og_conf_t *read_conf(apr_pool_t *p)
{
    og_conf_t *c = apr_pcalloc(p, sizeof(*c));
    og_conf_vhost_t *main = new_vhost(p, "main server", NULL);
    int i;

    c->vhosts = apr_array_make(p, 8, sizeof(og_conf_vhost_t *));
    c->stapling_cache.flag = c->guard_cache.flag = c->md_stapling.flag = -1;
    APR_ARRAY_PUSH(c->vhosts, og_conf_vhost_t *) = main;
    read_tree(p, c, main, ap_conftree, 1);
    if (main->ssl == -1) {
        main->ssl = 0;
    }
    for (i = 1; i < c->vhosts->nelts; i++) {
        inherit(APR_ARRAY_IDX(c->vhosts, i, og_conf_vhost_t *), main);
    }
    c->md_loaded = ap_find_linked_module("mod_md.c") != NULL;
    c->runtime_dir = ap_runtime_dir_relative(p, "");
    if (c->runtime_dir) {
        apr_size_t n = strlen(c->runtime_dir);
        if (n > 1 && c->runtime_dir[n - 1] == '/') {
            c->runtime_dir = apr_pstrndup(p, c->runtime_dir, n - 1);
        }
    }
    return c;
}

/* check_config, for `apachectl -t` and every (re)start: read the tree and run
 * the rules once per configuration generation; post-config logs the same
 * findings again into the error log, without reading anything twice. */
/* For the dry run of a start: certificates are not read (their findings
 * are errors only with OCSPGuardEnforce strict, and the real pass reads
 * them); with thousands of certificates this halves the check's cost. */
static og_certinfo_t skip_reader(apr_pool_t *p, const char *path, const char *chain_file,
                                 const char *ca_file, og_issuers_t *shared)
{
    og_certinfo_t ci;

    (void)p;
    (void)path;
    (void)chain_file;
    (void)ca_file;
    (void)shared;
    memset(&ci, 0, sizeof(ci));
    return ci;
}

void guard_check_collect(guard_t *g, server_rec *s, int read_certs)
{
    og_conf_t *c = read_conf(g->pool);
    guard_sconf_t *sc = guard_sconf(s);

    c->store_dir = guard_sconf_store_dir(g->pool, sc);
    c->store_at.file = sc->store_at.file;
    c->store_at.line = sc->store_at.line;
    c->store_problem = g->store_problem = guard_store_check(g->pool, c->store_dir);
    g->findings = og_check_run(g->pool, c, read_certs || guard_sconf_strict(sc) ? NULL
                                                                              : skip_reader);
}

/* Log the findings (all of them, or only those that stop the server) and
 * return how many stop it. */
int guard_check_log(guard_t *g, server_rec *s, int log_all, apr_pool_t *ptemp)
{
    guard_sconf_t *sc = guard_sconf(s);
    int strict = guard_sconf_strict(sc);
    int i, fatal = 0;

    for (i = 0; g->findings && i < g->findings->nelts; i++) {
        const og_finding_t *f = &APR_ARRAY_IDX(g->findings, i, og_finding_t);
        int is_fatal = f->always_fatal || (strict && f->level == OG_LVL_ERROR);

        fatal += is_fatal;
        if (!log_all && !is_fatal) {
            continue;
        }
        /* the tag is the rule's (og_check.c), one per rule */
        ap_log_error(APLOG_MARK, (int)f->level, 0, s,
                     "%s: %s%s%s: %s. Effect: %s. Fix: %s%s", f->tag,
                     f->vhost ? "virtual host " : "global configuration",
                     f->vhost ? f->vhost : "",
                     f->at.file ? apr_psprintf(ptemp, " (%s:%d)", f->at.file, f->at.line) : "",
                     f->what, f->effect, f->fix,
                     is_fatal ? (f->always_fatal ? ". This stops the server."
                                 : ". OCSPGuardEnforce strict: this stops the server.") : "");
    }
    if (fatal) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, OGLOGNO(00034)
                     "mod_ocsp_guard: %d stapling configuration error(s) above would break "
                     "this server; fix them (each line says how)%s", fatal,
                     strict ? "" : ", or they stop it anyway");
    }
    return fatal;
}

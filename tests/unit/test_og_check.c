/* test_og_check.c: the diagnostics rules over plain configuration
 * descriptions, with a fake certificate reader: each rule fires on the
 * mistake, names the place and the fix, and stays silent once fixed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "og_check.h"

static apr_pool_t *pool;

/* fake files: "<name>.noissuer", "<name>.nourl", "<name>.selfsigned" (both:
 * no issuer in the chain, no OCSP URL, issued by itself), anything else is
 * complete */
static og_certinfo_t fake_reader(apr_pool_t *p, const char *path, const char *chain,
                                 const char *ca, og_issuers_t *shared)
{
    og_certinfo_t ci;

    (void)p;
    (void)ca;
    (void)shared;
    memset(&ci, 0, sizeof(ci));
    ci.has_cert = 1;
    ci.subject = "CN=test";
    ci.issuer_name = "CN=Test Intermediate";
    ci.serial_hex = "01";
    ci.has_issuer = !strstr(path, "noissuer") || (chain && strstr(chain, "chain"));
    ci.ocsp_url = strstr(path, "nourl") ? NULL : "http://ocsp.test/";
    if (strstr(path, "selfsigned")) {
        ci.self_signed = 1;
        ci.has_issuer = 0;
        ci.ocsp_url = NULL;
        ci.issuer_name = ci.subject;
    }
    return ci;
}

static og_loc_t at(int line)
{
    og_loc_t l = { "/etc/apache2/sites-enabled/site.conf", line };
    return l;
}

static og_conf_vhost_t *vhost(og_conf_t *c, const char *name, int line, const char *cert)
{
    og_conf_vhost_t *v = apr_pcalloc(pool, sizeof(*v));
    og_conf_cert_t *cc;

    v->name = name;
    v->at = at(line);
    v->ssl = 1;
    v->use_stapling.flag = v->return_errors.flag = v->guard.flag = -1;
    v->override_url.flag = v->chain_file.flag = v->ca_file.flag = -1;
    v->certs = apr_array_make(pool, 1, sizeof(og_conf_cert_t));
    if (cert) {
        cc = apr_array_push(v->certs);
        cc->path = cert;
        cc->at = at(line + 2);
    }
    APR_ARRAY_PUSH(c->vhosts, og_conf_vhost_t *) = v;
    return v;
}

static og_conf_t *conf(void)
{
    og_conf_t *c = apr_pcalloc(pool, sizeof(*c));

    c->vhosts = apr_array_make(pool, 4, sizeof(og_conf_vhost_t *));
    c->stapling_cache.flag = c->guard_cache.flag = c->md_stapling.flag = -1;
    c->runtime_dir = "/var/run/apache2";
    return c;
}

static const og_finding_t *find(apr_array_header_t *fs, const char *tag)
{
    int i;

    for (i = 0; i < fs->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(fs, i, og_finding_t).tag, tag)) {
            return &APR_ARRAY_IDX(fs, i, og_finding_t);
        }
    }
    return NULL;
}

static void test_check_use_stapling_without_cache_is_fatal(void **state)
{
    og_conf_t *c = conf();
    og_conf_vhost_t *v = vhost(c, "www.test", 10, "/certs/www.pem");
    const og_finding_t *f;

    (void)state;
    v->use_stapling.flag = 1;
    v->use_stapling.at = at(14);
    f = find(og_check_run(pool, c, fake_reader), OG_CHECK_NO_STAPLING_CACHE);
    assert_non_null(f);
    assert_int_equal(f->level, OG_LVL_ERROR);
    assert_true(f->always_fatal);
    assert_int_equal(f->at.line, 14);
    assert_non_null(strstr(f->fix, "SSLStaplingCache shmcb:/var/run/apache2/ssl_stapling(131072)"));
    assert_non_null(strstr(f->fix, "site.conf:14"));
    /* fixed: the cache line is there */
    c->stapling_cache.flag = 1;
    c->stapling_cache.value = "shmcb:/var/run/apache2/ssl_stapling(131072)";
    c->stapling_cache.at = at(1);
    assert_null(find(og_check_run(pool, c, fake_reader), OG_CHECK_NO_STAPLING_CACHE));
}

static void test_check_inherited_use_stapling_is_reported_once(void **state)
{
    og_conf_t *c = conf();
    og_conf_vhost_t *a = vhost(c, "a.test", 10, "/certs/a.pem");
    og_conf_vhost_t *b = vhost(c, "b.test", 20, "/certs/b.pem");
    apr_array_header_t *fs;
    int i, n = 0;

    (void)state;
    a->use_stapling.flag = b->use_stapling.flag = 1;
    a->use_stapling.at = b->use_stapling.at = at(3); /* inherited from the main server */
    fs = og_check_run(pool, c, fake_reader);
    for (i = 0; i < fs->nelts; i++) {
        n += !strcmp(APR_ARRAY_IDX(fs, i, og_finding_t).tag, OG_CHECK_NO_STAPLING_CACHE);
    }
    assert_int_equal(n, 1);
}

static void test_check_missing_issuer_is_an_error_with_cat_fix(void **state)
{
    og_conf_t *c = conf();
    og_conf_vhost_t *v = vhost(c, "www.test", 10, "/certs/www.noissuer.pem");
    const og_finding_t *f;

    (void)state;
    f = find(og_check_run(pool, c, fake_reader), OG_CHECK_NO_ISSUER);
    assert_non_null(f);
    assert_int_equal(f->level, OG_LVL_ERROR);
    assert_false(f->always_fatal);
    assert_int_equal(f->at.line, 12);
    assert_non_null(strstr(f->fix, "cat /certs/www.noissuer.pem intermediate.pem > "));
    /* fixed with SSLCertificateChainFile */
    v->chain_file.flag = 1;
    v->chain_file.value = "/certs/chain.pem";
    assert_null(find(og_check_run(pool, c, fake_reader), OG_CHECK_NO_ISSUER));
}

/* Debian's snakeoil: one info line, not an incomplete chain, not a CA
 * without OCSP (the stock default-ssl site stays quiet above info) */
static void test_check_self_signed_is_one_info_line(void **state)
{
    og_conf_t *c = conf();
    apr_array_header_t *fs;
    const og_finding_t *f;

    (void)state;
    vhost(c, "vm", 10, "/etc/ssl/certs/ssl-cert-snakeoil.selfsigned.pem");
    fs = og_check_run(pool, c, fake_reader);
    assert_int_equal(fs->nelts, 1);
    f = &APR_ARRAY_IDX(fs, 0, og_finding_t);
    assert_string_equal(f->tag, OG_CHECK_SELF_SIGNED);
    assert_int_equal(f->level, OG_LVL_INFO);
    assert_non_null(strstr(f->what, "self-signed: nothing to staple"));
}

static void test_check_no_url_is_info_plus_one_notice(void **state)
{
    og_conf_t *c = conf();
    apr_array_header_t *fs;
    int i, infos = 0, notices = 0;

    (void)state;
    vhost(c, "a.test", 10, "/certs/a.nourl.pem");
    vhost(c, "b.test", 20, "/certs/b.nourl.pem");
    fs = og_check_run(pool, c, fake_reader);
    for (i = 0; i < fs->nelts; i++) {
        const og_finding_t *f = &APR_ARRAY_IDX(fs, i, og_finding_t);
        assert_true(f->level != OG_LVL_ERROR);
        infos += !strcmp(f->tag, OG_CHECK_NO_URL) && f->level == OG_LVL_INFO;
        notices += !strcmp(f->tag, OG_CHECK_NO_URL_SUMMARY) && f->level == OG_LVL_NOTICE;
    }
    assert_int_equal(infos, 2);
    assert_int_equal(notices, 1);
    assert_non_null(strstr(find(fs, OG_CHECK_NO_URL_SUMMARY)->what, "CN=Test Intermediate"));
}

static void test_check_override_silences_no_url(void **state)
{
    og_conf_t *c = conf();
    og_conf_vhost_t *v = vhost(c, "a.test", 10, "/certs/a.nourl.pem");

    (void)state;
    v->override_url.flag = 1;
    v->override_url.value = "http://ocsp.test/";
    assert_null(find(og_check_run(pool, c, fake_reader), OG_CHECK_NO_URL));
}

static void test_check_return_errors_for_mod_ssl_stapled_vhost(void **state)
{
    og_conf_t *c = conf();
    og_conf_vhost_t *v = vhost(c, "old.test", 30, "/certs/old.pem");
    const og_finding_t *f;

    (void)state;
    c->stapling_cache.flag = 1;
    c->stapling_cache.value = "shmcb:/run/stapling(131072)";
    c->stapling_cache.at = at(1);
    v->guard.flag = 0;
    v->guard.at = at(33);
    v->use_stapling.flag = 1;
    v->use_stapling.at = at(34);
    f = find(og_check_run(pool, c, fake_reader), OG_CHECK_RETURN_ERRORS);
    assert_non_null(f);
    assert_int_equal(f->level, OG_LVL_WARN);
    assert_non_null(strstr(f->fix, "SSLStaplingReturnResponderErrors off"));
    v->return_errors.flag = 0;
    assert_null(find(og_check_run(pool, c, fake_reader), OG_CHECK_RETURN_ERRORS));
}

static void test_check_cache_too_small_names_the_size(void **state)
{
    og_conf_t *c = conf();
    const og_finding_t *f;
    int i;

    (void)state;
    for (i = 0; i < 20; i++) {
        vhost(c, "v.test", 10 + i, apr_psprintf(pool, "/certs/%d.pem", i));
    }
    c->guard_cache.flag = 1;
    c->guard_cache.value = "shmcb:/run/og(32768)";
    c->guard_cache.at = at(2);
    f = find(og_check_run(pool, c, fake_reader), OG_CHECK_CACHE_TOO_SMALL);
    assert_non_null(f);
    assert_non_null(strstr(f->fix, "OCSPGuardCache shmcb:/run/og("));
    c->guard_cache.value = "shmcb:/run/og(1048576)";
    assert_null(find(og_check_run(pool, c, fake_reader), OG_CHECK_CACHE_TOO_SMALL));
}

static void test_check_shmcb_subcache_model(void **state)
{
    (void)state;
    /* 512 KiB with 2 KiB objects: 8 subcaches of about 64 KiB */
    assert_true(og_check_shmcb_subcache(512 * 1024, 2048, 20) > 60 * 1024);
    /* 32 KiB: 2 subcaches, too small for a 16 KiB response plus header */
    assert_true(og_check_shmcb_subcache(32 * 1024, 2048, 20) < OG_RECORD_CACHE_FOOTPRINT);
    assert_int_equal(og_check_shmcb_size("shmcb:/x/y(12345)"), 12345);
    assert_int_equal(og_check_shmcb_size("shmcb"), 0);
}

static void test_check_mod_md_stapling_is_info(void **state)
{
    og_conf_t *c = conf();
    const og_finding_t *f;

    (void)state;
    vhost(c, "md.test", 10, "/certs/md.pem");
    c->md_loaded = 1;
    c->md_stapling.flag = 1;
    c->md_stapling.at = at(5);
    f = find(og_check_run(pool, c, fake_reader), OG_CHECK_OTHER_PROVIDER);
    assert_non_null(f);
    assert_int_equal(f->level, OG_LVL_INFO);
    assert_non_null(strstr(f->effect, "mod_ocsp_guard"));
}

static void test_check_redundant_use_stapling_is_info(void **state)
{
    og_conf_t *c = conf();
    og_conf_vhost_t *v = vhost(c, "www.test", 10, "/certs/www.pem");
    const og_finding_t *f;

    (void)state;
    c->stapling_cache.flag = 1;
    c->stapling_cache.value = "shmcb:/run/stapling(131072)";
    c->stapling_cache.at = at(1);
    v->use_stapling.flag = 1;
    v->use_stapling.at = at(13);
    f = find(og_check_run(pool, c, fake_reader), OG_CHECK_REDUNDANT_STAPLING);
    assert_non_null(f);
    assert_int_equal(f->level, OG_LVL_INFO);
    assert_non_null(strstr(f->fix, "site.conf:13"));
    v->guard.flag = 0; /* left to mod_ssl: then it is not redundant */
    assert_null(find(og_check_run(pool, c, fake_reader), OG_CHECK_REDUNDANT_STAPLING));
}

static void test_check_clean_config_has_no_findings(void **state)
{
    og_conf_t *c = conf();

    (void)state;
    vhost(c, "www.test", 10, "/certs/www.pem");
    assert_int_equal(og_check_run(pool, c, fake_reader)->nelts, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_use_stapling_without_cache_is_fatal),
        cmocka_unit_test(test_check_inherited_use_stapling_is_reported_once),
        cmocka_unit_test(test_check_missing_issuer_is_an_error_with_cat_fix),
        cmocka_unit_test(test_check_self_signed_is_one_info_line),
        cmocka_unit_test(test_check_no_url_is_info_plus_one_notice),
        cmocka_unit_test(test_check_override_silences_no_url),
        cmocka_unit_test(test_check_return_errors_for_mod_ssl_stapled_vhost),
        cmocka_unit_test(test_check_cache_too_small_names_the_size),
        cmocka_unit_test(test_check_shmcb_subcache_model),
        cmocka_unit_test(test_check_mod_md_stapling_is_info),
        cmocka_unit_test(test_check_redundant_use_stapling_is_info),
        cmocka_unit_test(test_check_clean_config_has_no_findings),
    };
    int rv;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rv = cmocka_run_group_tests_name("og_check", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rv;
}

/* og_check.h: the configuration diagnostics, as rules over a plain
 * description of the configuration (what the glue read from httpd's
 * configuration tree) and of the certificate files. Core (APR and OpenSSL
 * only): produces findings {level, tag, where, what, effect, fix}; the glue
 * logs them and decides whether startup fails. */
#ifndef OG_CHECK_H
#define OG_CHECK_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "og_cert.h"

#include "og_fmt.h"
#include "og_record.h"

/* One tag per rule (README lists each with cause and fix). */
#define OG_CHECK_NO_STAPLING_CACHE  OG_TAG(00040)
#define OG_CHECK_NO_ISSUER          OG_TAG(00041)
#define OG_CHECK_NO_URL             OG_TAG(00042)
#define OG_CHECK_NO_URL_SUMMARY     OG_TAG(00043)
#define OG_CHECK_RETURN_ERRORS      OG_TAG(00044)
#define OG_CHECK_CACHE_TOO_SMALL    OG_TAG(00045)
#define OG_CHECK_OTHER_PROVIDER     OG_TAG(00046)
#define OG_CHECK_REDUNDANT_STAPLING OG_TAG(00047)
#define OG_CHECK_STORE_UNSAFE       OG_TAG(00049)
#define OG_CHECK_SELF_SIGNED        OG_TAG(00076)

typedef enum {
    OG_LVL_ERROR = 3,    /* httpd's APLOG_ERR */
    OG_LVL_WARN = 4,
    OG_LVL_NOTICE = 5,
    OG_LVL_INFO = 6
} og_level_e;

/* A value as written, with where; on/off values use flag (-1 unset). */
typedef struct og_setting_t {
    int flag;
    const char *value;
    og_loc_t at;
} og_setting_t;

typedef struct og_conf_cert_t {
    const char *path;            /* SSLCertificateFile, resolved */
    og_loc_t at;
} og_conf_cert_t;

typedef struct og_conf_vhost_t {
    const char *name;            /* ServerName, or the <VirtualHost> address */
    og_loc_t at;                 /* <VirtualHost> line; file NULL for the main server */
    int ssl;                     /* SSLEngine on (effective) */
    og_setting_t use_stapling;   /* SSLUseStapling (effective, may be inherited) */
    og_setting_t return_errors;  /* SSLStaplingReturnResponderErrors (effective) */
    og_setting_t guard;          /* OCSPGuard (effective) */
    og_setting_t override_url;   /* OCSPGuardResponderOverride (effective) */
    og_setting_t chain_file;     /* SSLCertificateChainFile (effective) */
    og_setting_t ca_file;        /* SSLCACertificateFile (effective) */
    apr_array_header_t *certs;   /* og_conf_cert_t */
} og_conf_vhost_t;

typedef struct og_conf_t {
    apr_array_header_t *vhosts;  /* og_conf_vhost_t * (the main server first) */
    og_setting_t stapling_cache; /* SSLStaplingCache (global) */
    og_setting_t guard_cache;    /* OCSPGuardCache (global) */
    og_setting_t md_stapling;    /* MDStapling (global or any MDomain) */
    int md_loaded;               /* mod_md is loaded */
    const char *runtime_dir;     /* DefaultRuntimeDir, for suggested cache paths */
    const char *store_dir;       /* OCSPGuardStore, resolved (or the default) */
    og_loc_t store_at;           /* where OCSPGuardStore is set; file NULL: default */
    const char *store_problem;   /* why the store directory is unsafe, or NULL */
} og_conf_t;

typedef struct og_finding_t {
    og_level_e level;
    const char *tag;             /* the rule's OG_CHECK_* tag */
    int always_fatal;            /* fails -t and startup whatever OCSPGuardEnforce says */
    og_loc_t at;
    const char *vhost;           /* NULL: global */
    const char *what;
    const char *effect;
    const char *fix;
} og_finding_t;

/* What the check learnt of one certificate file. */
typedef struct og_certinfo_t {
    int has_cert;
    int has_issuer;              /* in the file, the chain file or the CA file */
    int must_staple;
    int self_signed;             /* issued by its own key: no CA, nothing to staple */
    const char *subject;
    const char *issuer_name;
    const char *serial_hex;
    const char *ocsp_url;
    const char *error;
} og_certinfo_t;

/* Read a certificate file (leaf first, at most OG_CHECK_MAX_CERT_FILE bytes)
 * and look for its issuer in the rest of the file, in chain_file and in
 * ca_file (either may be NULL); `shared` keeps the chains and bundles parsed
 * for the next certificate. */
#define OG_CHECK_MAX_CERT_FILE (4 * 1024 * 1024)
og_certinfo_t og_check_read_cert(apr_pool_t *p, const char *path, const char *chain_file,
                                 const char *ca_file, og_issuers_t *shared);

/* The certificate facts the rules need, so tests can give them without files. */
typedef og_certinfo_t og_cert_reader_fn(apr_pool_t *p, const char *path,
                                        const char *chain_file, const char *ca_file,
                                        og_issuers_t *shared);

/* Run every rule; returns og_finding_t entries, most severe first within a rule. */
apr_array_header_t *og_check_run(apr_pool_t *p, const og_conf_t *conf, og_cert_reader_fn *reader);

/* Size of one shmcb subcache's data area for a cache of `size` bytes, as
 * mod_socache_shmcb lays it out for the given object size hint: it derives
 * the index count from size / (avg_obj + avg_id), halves 256 subcaches while
 * each would have fewer than twice as many index slots as there are
 * subcaches, then takes the subcache header and index out of each share
 * (socache_shmcb_init() in httpd 2.4's modules/cache/mod_socache_shmcb.c;
 * shmcb keeps this private, so it is re-derived here and rounded up). An
 * object larger than one subcache's data area is silently never cached. */
apr_size_t og_check_shmcb_subcache(apr_size_t size, apr_size_t avg_obj, apr_size_t avg_id);

/* Parse the "(size)" of a shmcb argument; 0 when absent. */
apr_size_t og_check_shmcb_size(const char *spec);


#endif /* OG_CHECK_H */

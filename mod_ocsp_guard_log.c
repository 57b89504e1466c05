/* mod_ocsp_guard_log.c: the context every message about one certificate
 * carries, attached in one place (as nginx's ngx_ssl_ocsp_log_error appends
 * responder, peer and certificate to every line): the certificate's subject
 * and serial, the first virtual host using it with its file:line, and how
 * many others. Call sites write only the tag and what happened. Nothing here
 * decides or fetches. */
#include <stdarg.h>

#include <apr_strings.h>
#include <http_core.h>

#include "mod_ocsp_guard_private.h"

const char *guard_server_desc(apr_pool_t *p, const server_rec *s)
{
    return apr_psprintf(p, "vhost %s:%d (%s:%d)", s->server_hostname ? s->server_hostname : "?",
                        s->addrs ? s->addrs->host_port : s->port,
                        s->defn_name ? s->defn_name : "?", s->defn_line_number);
}

const char *guard_entry_desc(apr_pool_t *p, const guard_entry_t *e)
{
    const char *vh = e->vhosts->nelts
        ? guard_server_desc(p, APR_ARRAY_IDX(e->vhosts, 0, server_rec *)) : "no vhost";

    return apr_psprintf(p, "certificate '%s' (serial %s) of %s%s", e->cert->subject,
                        e->cert->serial_hex, vh,
                        e->vhosts->nelts > 1
                        ? apr_psprintf(p, " and %d more", e->vhosts->nelts - 1) : "");
}

/* fmt starts with the tag, OGLOGNO(nnnnn): the context goes right after it,
 * so every line still begins with its tag. */
void guard_elog_(const char *file, int line, int module_index, int level, apr_status_t rv,
                 server_rec *s,
                 const guard_entry_t *e, apr_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    const char *msg, *rest;

    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    rest = strlen(msg) >= GUARD_TAG_LEN ? msg + GUARD_TAG_LEN : "";
    ap_log_error_(file, line, module_index, level, rv, s, "%.*s%s: %s",
                  (int)(rest - msg), msg, guard_entry_desc(p, e), rest);
}

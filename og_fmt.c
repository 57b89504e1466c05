/* og_fmt.c: hex and ISO 8601 renderings (see og_fmt.h).
 * Core file: APR only. */
#include <apr_strings.h>

#include "og_fmt.h"

const char *og_hex(apr_pool_t *p, const unsigned char *d, apr_size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = apr_palloc(p, len * 2 + 1);
    apr_size_t i;

    for (i = 0; i < len; i++) {
        s[2 * i] = digits[d[i] >> 4];
        s[2 * i + 1] = digits[d[i] & 0x0f];
    }
    s[len * 2] = '\0';
    return s;
}

const char *og_iso_time(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t x;
    char buf[32];
    apr_size_t len;

    if (!t || apr_time_exp_gmt(&x, t) != APR_SUCCESS
        || apr_strftime(buf, &len, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &x) != APR_SUCCESS) {
        return NULL;
    }
    return apr_pstrdup(p, buf);
}

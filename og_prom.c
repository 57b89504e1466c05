/* og_prom.c: Prometheus text format helpers (see og_prom.h). */
#include <apr_strings.h>

#include "og_prom.h"

/* length of the valid UTF-8 sequence at s (1-4), 0 if not valid */
static int utf8_len(const unsigned char *s)
{
    int n, i;

    if (s[0] < 0x80) {
        return 1;
    }
    n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || (n == 2 && s[0] < 0xc2) || (n == 4 && s[0] > 0xf4)) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    /* overlong 3- and 4-byte forms, surrogates, above U+10FFFF */
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 3 && s[0] == 0xed && s[1] >= 0xa0)
        || (n == 4 && s[0] == 0xf0 && s[1] < 0x90) || (n == 4 && s[0] == 0xf4 && s[1] >= 0x90)) {
        return 0;
    }
    return n;
}

const char *og_prom_label_value(apr_pool_t *p, const char *s)
{
    const unsigned char *i;
    char *out, *o;
    apr_size_t n = 1;

    if (!s) {
        return "";
    }
    for (i = (const unsigned char *)s; *i; i++) {
        n += (*i == '\\' || *i == '"' || *i == '\n') ? 2 : 1;
    }
    o = out = apr_palloc(p, n);
    for (i = (const unsigned char *)s; *i;) {
        int len = utf8_len(i);

        if (*i == '\\' || *i == '"') {
            *o++ = '\\';
            *o++ = (char)*i++;
        }
        else if (*i == '\n') {
            *o++ = '\\';
            *o++ = 'n';
            i++;
        }
        else if (*i < 0x20 || *i == 0x7f || !len) {
            *o++ = '?';
            i++;
        }
        else {
            while (len--) {
                *o++ = (char)*i++;
            }
        }
    }
    *o = '\0';
    return out;
}

int og_prom_valid_name(const char *name, int label)
{
    const char *c;

    if (!name || !*name || (*name >= '0' && *name <= '9')) {
        return 0;
    }
    for (c = name; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '_' || (*c == ':' && !label))) {
            return 0;
        }
    }
    return 1;
}

const char *og_prom_seconds(apr_pool_t *p, apr_time_t t)
{
    /* magnitude first, unsigned: -t of the most negative time would overflow */
    apr_uint64_t ms = (t < 0 ? (apr_uint64_t)0 - (apr_uint64_t)t : (apr_uint64_t)t) / 1000;
    apr_uint64_t sec = ms / 1000, frac = ms % 1000;
    const char *sign = t < 0 ? "-" : "";

    if (!ms) {
        return "0";
    }
    return frac ? apr_psprintf(p, "%s%" APR_UINT64_T_FMT ".%03" APR_UINT64_T_FMT, sign, sec, frac)
                : apr_psprintf(p, "%s%" APR_UINT64_T_FMT, sign, sec);
}

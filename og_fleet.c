/* og_fleet.c: the fleet cache's frames (values and claims), the server
 * identity and the renew-window spread, pure (see og_fleet.h). */
#include <string.h>

#include "og_fleet.h"

apr_size_t og_fleet_value_encode(unsigned char *buf, apr_size_t cap, const unsigned char *der,
                                 apr_size_t der_len)
{
    if (!der_len || der_len > OG_FLEET_VALUE_MAX - OG_FLEET_MAGIC_LEN
        || cap < OG_FLEET_MAGIC_LEN + der_len) {
        return 0;
    }
    memcpy(buf, OG_FLEET_VALUE_MAGIC, OG_FLEET_MAGIC_LEN);
    memcpy(buf + OG_FLEET_MAGIC_LEN, der, der_len);
    return OG_FLEET_MAGIC_LEN + der_len;
}

int og_fleet_value_decode(const unsigned char *buf, apr_size_t len, const unsigned char **der,
                          apr_size_t *der_len)
{
    if (!buf || len <= OG_FLEET_MAGIC_LEN || len > OG_FLEET_VALUE_MAX
        || memcmp(buf, OG_FLEET_VALUE_MAGIC, OG_FLEET_MAGIC_LEN) != 0) {
        return -1;
    }
    *der = buf + OG_FLEET_MAGIC_LEN;
    *der_len = len - OG_FLEET_MAGIC_LEN;
    return 0;
}

og_fleet_verdict_e og_fleet_judge(const og_ocsp_result_t *res, og_admit_e a, apr_time_t now,
                                  apr_time_t renew_at)
{
    if (res->verdict != OG_VERDICT_OK) {
        return OG_FLEET_INVALID;
    }
    if (res->cert_status == OG_STATUS_UNKNOWN) {
        return OG_FLEET_UNKNOWN;
    }
    switch (a) {
    case OG_ADMIT_UNREVOKED:
    case OG_ADMIT_PRE_REVOCATION:
        return OG_FLEET_UNREVOKES;
    case OG_ADMIT_OLDER:
        return OG_FLEET_OLDER;
    case OG_ADMIT_NEWER:
        return now >= renew_at ? OG_FLEET_FALLBACK : OG_FLEET_TAKE;
    default: /* the same, or of the same age */
        return OG_FLEET_NOTHING_NEWER;
    }
}

static void put64(unsigned char *p, apr_uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static apr_uint64_t get64(const unsigned char *p)
{
    apr_uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void og_fleet_claim_encode(unsigned char buf[OG_FLEET_CLAIM_LEN], const og_fleet_claim_t *c)
{
    memcpy(buf, OG_FLEET_CLAIM_MAGIC, OG_FLEET_MAGIC_LEN);
    put64(buf + OG_FLEET_MAGIC_LEN, c->server);
    put64(buf + OG_FLEET_MAGIC_LEN + 8, (apr_uint64_t)c->until);
}

int og_fleet_claim_decode(og_fleet_claim_t *c, const unsigned char *buf, apr_size_t len)
{
    apr_uint64_t until;

    if (!buf || len != OG_FLEET_CLAIM_LEN
        || memcmp(buf, OG_FLEET_CLAIM_MAGIC, OG_FLEET_MAGIC_LEN) != 0) {
        return -1;
    }
    c->server = get64(buf + OG_FLEET_MAGIC_LEN);
    until = get64(buf + OG_FLEET_MAGIC_LEN + 8);
    if (!c->server || until > (apr_uint64_t)APR_INT64_MAX) {
        return -1;
    }
    c->until = (apr_time_t)until;
    return 0;
}

apr_time_t og_fleet_claim_defers(const og_fleet_claim_t *c, apr_uint64_t self, apr_time_t now,
                                 apr_interval_time_t bound)
{
    if (c->server == self || c->until <= now || bound <= 0 || c->until - now > bound) {
        return 0;
    }
    return c->until;
}

/* FNV-1a, 64 bits, then a finalizer (splitmix64's) so that close inputs
 * land far apart */
static apr_uint64_t fnv(apr_uint64_t h, const unsigned char *p, apr_size_t n)
{
    while (n--) {
        h ^= *p++;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static apr_uint64_t mix(apr_uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

apr_uint64_t og_fleet_server_id(const char *host, const char *server_root)
{
    apr_uint64_t h = 0xcbf29ce484222325ULL;
    static const unsigned char sep = 0;

    h = fnv(h, (const unsigned char *)(host ? host : ""), host ? strlen(host) : 0);
    h = fnv(h, &sep, 1);
    h = fnv(h, (const unsigned char *)(server_root ? server_root : ""),
            server_root ? strlen(server_root) : 0);
    h = mix(h);
    return h ? h : 1;
}

apr_uint32_t og_fleet_spread(apr_uint64_t server, const unsigned char *id, apr_size_t id_len)
{
    unsigned char s[8];
    apr_uint64_t h = 0xcbf29ce484222325ULL;
    apr_uint32_t v;

    put64(s, server);
    h = fnv(h, s, sizeof(s));
    h = fnv(h, id, id_len);
    v = (apr_uint32_t)(mix(h) >> 32);
    return v ? v : 1;
}

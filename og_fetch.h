/* og_fetch.h: one bounded HTTP exchange with an OCSP responder.
 * Core (APR and OpenSSL only): OpenSSL's own HTTP client, one deadline for
 * name lookup + connect + send + receive (kept to the microsecond, not to
 * OpenSSL's whole seconds), no redirects followed, body size capped, GET for
 * short requests and POST otherwise (RFC 5019). Knows nothing of verification.
 * Text taken from the network reaches `detail` as printable ASCII only. */
#ifndef OG_FETCH_H
#define OG_FETCH_H

#include <apr_pools.h>
#include <apr_time.h>

/* Requests whose base64+URL encoding is shorter than this go by GET. */
#define OG_FETCH_GET_MAX   255
/* Cap on a responder's body: far above any sane response, far below 1 MiB. */
#define OG_FETCH_MAX_BODY  (64 * 1024)

typedef enum {
    OG_FETCH_OK = 0,
    OG_FETCH_BAD_URL,        /* unparsable, or not http:// */
    OG_FETCH_DNS,            /* host name does not resolve */
    OG_FETCH_REFUSED,        /* connection refused or reset */
    OG_FETCH_TIMEOUT,        /* the deadline passed */
    OG_FETCH_HTTP_STATUS,    /* HTTP status other than 200 */
    OG_FETCH_REDIRECT,       /* 3xx: not followed */
    OG_FETCH_CONTENT_TYPE,   /* not application/ocsp-response */
    OG_FETCH_TOO_LARGE,      /* body above the cap */
    OG_FETCH_OTHER
} og_fetch_err_e;

typedef struct og_fetch_req_t {
    const char *url;              /* responder, http://host[:port][/path] */
    const char *proxy;            /* http://host:port or NULL */
    const unsigned char *der;     /* OCSPRequest */
    apr_size_t der_len;
    int timeout_s;                /* the one deadline, seconds from now (>= 1), */
    apr_time_t deadline;          /* ... unless this absolute deadline is set */
    apr_size_t max_body;          /* 0: OG_FETCH_MAX_BODY */
    int *keep_fd;                 /* NULL: one connection per exchange. Else HTTP/1.1
                                   * keep-alive: in, a connection to this responder
                                   * to reuse (-1: none); out, one the responder
                                   * keeps open for the next exchange (-1: none).
                                   * A reused connection that turns out closed is
                                   * replaced by a new one, once. */
} og_fetch_req_t;

typedef struct og_fetch_res_t {
    og_fetch_err_e err;
    unsigned char *body;          /* from the pool, when err == OG_FETCH_OK */
    apr_size_t len;
    apr_interval_time_t elapsed;
    char detail[256];
} og_fetch_res_t;

/* One exchange with the responder; APR_SUCCESS when a body within the cap came back. */
apr_status_t og_fetch_http(og_fetch_res_t *res, apr_pool_t *p, const og_fetch_req_t *req);

/* The same exchange over `fd`, a stream already connected to the responder
 * (or proxy) of req->url: no lookup, no connect. For tests and the fuzzer,
 * which talk to it through a socketpair. The descriptor is not closed. */
apr_status_t og_fetch_http_on_fd(og_fetch_res_t *res, apr_pool_t *p, const og_fetch_req_t *req,
                                 int fd);

/* The GET path for a request under `base_path` (exposed for tests); NULL when
 * the encoded request is too long for GET. */
const char *og_fetch_get_path(apr_pool_t *p, const char *base_path,
                              const unsigned char *der, apr_size_t len);

const char *og_fetch_err_str(og_fetch_err_e e);

#endif /* OG_FETCH_H */

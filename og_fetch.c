/* og_fetch.c: the HTTP exchange with a responder, on OpenSSL's HTTP client
 * (OSSL_HTTP_REQ_CTX) over a socket APR connects, so that DNS failures,
 * refusals and timeouts are told apart. One deadline covers connect, send and
 * receive; redirects are reported, not followed; the body is capped.
 * Core file: APR and OpenSSL only, never an httpd header. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_network_io.h>
#include <apr_portable.h>
#include <openssl/ocsp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/http.h>
#include <openssl/httperr.h>

#include "og_fetch.h"

#define OG_CT_REQUEST  "application/ocsp-request"
#define OG_CT_RESPONSE "application/ocsp-response"

static void set_err(og_fetch_res_t *res, og_fetch_err_e err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void classify_openssl_error(og_fetch_res_t *res);

const char *og_fetch_err_str(og_fetch_err_e e)
{
    switch (e) {
    case OG_FETCH_OK:           return "ok";
    case OG_FETCH_BAD_URL:      return "bad responder URL";
    case OG_FETCH_DNS:          return "host name lookup failed";
    case OG_FETCH_REFUSED:      return "connection failed";
    case OG_FETCH_TIMEOUT:      return "timeout";
    case OG_FETCH_HTTP_STATUS:  return "HTTP error status";
    case OG_FETCH_REDIRECT:     return "redirect (not followed)";
    case OG_FETCH_CONTENT_TYPE: return "wrong content type";
    case OG_FETCH_TOO_LARGE:    return "response too large";
    case OG_FETCH_OTHER:        return "exchange failed";
    }
    return "?";
}

static void set_err(og_fetch_res_t *res, og_fetch_err_e err, const char *fmt, ...)
{
    va_list ap;

    res->err = err;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
}

/* Walk OpenSSL's error queue; the most specific reason wins. */
static void classify_openssl_error(og_fetch_res_t *res)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0;
    og_fetch_err_e kind = OG_FETCH_OTHER;
    char first[200] = "";

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        int lib = ERR_GET_LIB(e), reason = ERR_GET_REASON(e);
        const char *d = (data && (flags & ERR_TXT_STRING)) ? data : "";

        if (!first[0]) {
            snprintf(first, sizeof(first), "%s%s%s", ERR_reason_error_string(e)
                     ? ERR_reason_error_string(e) : "error", *d ? ": " : "", d);
        }
        if (lib == ERR_LIB_SYS && (reason == ECONNREFUSED || reason == ECONNRESET
                                   || reason == EHOSTUNREACH || reason == ENETUNREACH)) {
            kind = OG_FETCH_REFUSED;
            snprintf(first, sizeof(first), "%s", strerror(reason));
        }
        else if (lib == ERR_LIB_SYS && reason == ETIMEDOUT) {
            kind = OG_FETCH_TIMEOUT;
        }
        else if (lib == ERR_LIB_BIO) {
            if (reason == BIO_R_TRANSFER_TIMEOUT || reason == BIO_R_CONNECT_TIMEOUT) {
                kind = OG_FETCH_TIMEOUT;
            }
            else if (reason == BIO_R_LOOKUP_RETURNED_NOTHING || strstr(d, "getaddrinfo")
                     || strstr(d, "Name or service") || strstr(d, "not known")) {
                kind = OG_FETCH_DNS;
            }
            else if ((reason == BIO_R_CONNECT_ERROR || reason == BIO_R_NBIO_CONNECT_ERROR)
                     && kind == OG_FETCH_OTHER) {
                kind = OG_FETCH_REFUSED;
            }
        }
        else if (lib == ERR_LIB_HTTP) {
            og_fetch_err_e k = OG_FETCH_OTHER;

            switch (reason) {
            case HTTP_R_RETRY_TIMEOUT:
                k = OG_FETCH_TIMEOUT; break;
            case HTTP_R_RECEIVED_ERROR:
            case HTTP_R_STATUS_CODE_UNSUPPORTED:
                k = OG_FETCH_HTTP_STATUS; break;
            case HTTP_R_REDIRECTION_NOT_ENABLED:
            case HTTP_R_MISSING_REDIRECT_LOCATION:
            case HTTP_R_TOO_MANY_REDIRECTIONS:
                k = OG_FETCH_REDIRECT; break;
            case HTTP_R_UNEXPECTED_CONTENT_TYPE:
            case HTTP_R_MISSING_CONTENT_TYPE:
                k = OG_FETCH_CONTENT_TYPE; break;
            case HTTP_R_MAX_RESP_LEN_EXCEEDED:
            case HTTP_R_ASN1_LEN_EXCEEDS_MAX_RESP_LEN:
                k = OG_FETCH_TOO_LARGE; break;
            default:
                break;
            }
            if (k != OG_FETCH_OTHER && kind == OG_FETCH_OTHER) {
                /* the specific reason, with OpenSSL's data (code=500, actual=...) */
                kind = k;
                snprintf(first, sizeof(first), "%s%s%s", ERR_reason_error_string(e)
                         ? ERR_reason_error_string(e) : "error", *d ? ": " : "", d);
            }
        }
    }
    set_err(res, kind, "%s", first[0] ? first : og_fetch_err_str(kind));
}

const char *og_fetch_get_path(apr_pool_t *p, const char *base_path,
                              const unsigned char *der, apr_size_t len)
{
    char *b64, *enc, *o;
    const char *i;
    int n;
    apr_size_t blen = base_path ? strlen(base_path) : 0;

    if (len > OG_FETCH_GET_MAX) { /* base64 only grows */
        return NULL;
    }
    b64 = apr_palloc(p, 4 * ((len + 2) / 3) + 1);
    n = EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    if (n < 0) {
        return NULL;
    }
    enc = o = apr_palloc(p, 3 * (apr_size_t)n + 1);
    for (i = b64; *i; i++) {
        switch (*i) {
        case '+': memcpy(o, "%2B", 3); o += 3; break;
        case '/': memcpy(o, "%2F", 3); o += 3; break;
        case '=': memcpy(o, "%3D", 3); o += 3; break;
        default: *o++ = *i;
        }
    }
    *o = '\0';
    if ((apr_size_t)(o - enc) >= OG_FETCH_GET_MAX) {
        return NULL;
    }
    return apr_pstrcat(p, (blen && base_path[blen - 1] == '/') ? base_path
                          : apr_pstrcat(p, blen ? base_path : "", "/", NULL),
                       enc, NULL);
}

/* TCP connect to host:port within the deadline, with APR: a name that does
 * not resolve, a refused connection and a timeout are told apart here
 * (OpenSSL's own connect retries a refused connection until its timeout). */
static og_fetch_err_e tcp_connect(apr_socket_t **psock, og_fetch_res_t *res, apr_pool_t *p,
                                  const char *host, const char *port, apr_time_t deadline)
{
    apr_sockaddr_t *sa = NULL;
    apr_socket_t *sock = NULL;
    apr_status_t rv;
    char ebuf[120];
    long portnum = strtol(port, NULL, 10);

    *psock = NULL;
    rv = apr_sockaddr_info_get(&sa, host, APR_UNSPEC, (apr_port_t)portnum, 0, p);
    if (rv != APR_SUCCESS) {
        set_err(res, OG_FETCH_DNS, "cannot resolve '%s': %s", host,
                apr_strerror(rv, ebuf, sizeof(ebuf)));
        return res->err;
    }
    for (; sa; sa = sa->next) {
        apr_interval_time_t left = deadline - apr_time_now();

        if (left <= 0) {
            rv = APR_TIMEUP;
            break;
        }
        if ((rv = apr_socket_create(&sock, sa->family, SOCK_STREAM, APR_PROTO_TCP, p))
            != APR_SUCCESS) {
            continue;
        }
        apr_socket_timeout_set(sock, left);
        rv = apr_socket_connect(sock, sa);
        if (rv == APR_SUCCESS) {
            *psock = sock;
            return OG_FETCH_OK;
        }
        apr_socket_close(sock);
    }
    if (APR_STATUS_IS_TIMEUP(rv) || APR_STATUS_IS_ETIMEDOUT(rv)) {
        set_err(res, OG_FETCH_TIMEOUT, "connecting to %s:%s timed out", host, port);
    }
    else {
        set_err(res, OG_FETCH_REFUSED, "connecting to %s:%s: %s", host, port,
                apr_strerror(rv, ebuf, sizeof(ebuf)));
    }
    return res->err;
}

apr_status_t og_fetch_http(og_fetch_res_t *res, apr_pool_t *p, const og_fetch_req_t *req)
{
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    char *phost = NULL, *pport = NULL;
    int use_ssl = 0, pssl = 0, n, left_s, timeout = req->timeout_s > 0 ? req->timeout_s : 1;
    OSSL_HTTP_REQ_CTX *rctx = NULL;
    apr_socket_t *sock = NULL;
    apr_os_sock_t fd;
    BIO *bio = NULL, *rsp;
    OCSP_REQUEST *ocsp_req = NULL;
    const unsigned char *q;
    const char *get_path = NULL, *hosthdr;
    apr_size_t cap = req->max_body ? req->max_body : OG_FETCH_MAX_BODY;
    apr_time_t start = apr_time_now(), deadline = start + apr_time_from_sec(timeout);
    unsigned char *buf;
    apr_size_t got = 0;

    memset(res, 0, sizeof(*res));
    ERR_clear_error();
    if (!req->url || (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))
        || !OSSL_HTTP_parse_url(req->url, &use_ssl, NULL, &host, &port, NULL,
                                          &path, &query, NULL)) {
        set_err(res, OG_FETCH_BAD_URL, "cannot parse responder URL '%s'",
                req->url ? req->url : "(none)");
        goto cleanup;
    }
    if (use_ssl) {
        set_err(res, OG_FETCH_BAD_URL, "https responder URLs are not supported "
                "(OCSP is served over plain http, RFC 5019): '%s'", req->url);
        goto cleanup;
    }
    if (req->proxy && *req->proxy
        && (!OSSL_HTTP_parse_url(req->proxy, &pssl, NULL, &phost, &pport, NULL,
                                 NULL, NULL, NULL) || pssl)) {
        set_err(res, OG_FETCH_BAD_URL, "cannot use proxy '%s' (http://host:port expected)",
                req->proxy);
        goto cleanup;
    }
    if (query && !*query) {
        OPENSSL_free(query); /* "http://host/?" has an empty query: none */
        query = NULL;
    }
    if (!query) {
        get_path = og_fetch_get_path(p, path, req->der, req->der_len);
    }
    res->used_get = get_path != NULL;

    if (tcp_connect(&sock, res, p, phost ? phost : host, phost ? pport : port, deadline)
        != OG_FETCH_OK) {
        goto cleanup;
    }
    /* non-blocking, so that OpenSSL's deadline covers every read and write */
    apr_os_sock_get(&fd, sock);
    apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1);
    apr_socket_timeout_set(sock, 0);
    if (!(bio = BIO_new_socket(fd, BIO_NOCLOSE))
        || !(rctx = OSSL_HTTP_REQ_CTX_new(bio, bio, 0))) {
        set_err(res, OG_FETCH_OTHER, "out of memory");
        goto cleanup;
    }
    hosthdr = strcmp(port, "80") ? apr_pstrcat(p, host, ":", port, NULL) : host;
    left_s = (int)apr_time_sec(deadline - apr_time_now() + apr_time_from_msec(999));
    if (!OSSL_HTTP_REQ_CTX_set_request_line(rctx, get_path == NULL,
                                            phost ? host : NULL, phost ? port : NULL,
                                            get_path ? get_path
                                            : (query ? apr_pstrcat(p, path, "?", query, NULL)
                                               : path))
        || !OSSL_HTTP_REQ_CTX_add1_header(rctx, "Host", hosthdr)
        || !OSSL_HTTP_REQ_CTX_set_expected(rctx, OG_CT_RESPONSE, 1, left_s > 0 ? left_s : 1, 0)) {
        classify_openssl_error(res);
        goto cleanup;
    }
    OSSL_HTTP_REQ_CTX_set_max_response_length(rctx, (unsigned long)cap);
    if (!get_path) {
        q = req->der;
        ocsp_req = d2i_OCSP_REQUEST(NULL, &q, (long)req->der_len);
        if (!ocsp_req || !OSSL_HTTP_REQ_CTX_set1_req(rctx, OG_CT_REQUEST,
                                                     ASN1_ITEM_rptr(OCSP_REQUEST),
                                                     (const ASN1_VALUE *)ocsp_req)) {
            set_err(res, OG_FETCH_OTHER, "cannot encode the request");
            goto cleanup;
        }
    }
    rsp = OSSL_HTTP_REQ_CTX_exchange(rctx); /* owned by rctx */
    if (!rsp) {
        if (ERR_peek_error() == 0) {
            /* OpenSSL 3.0 stops silently, with nothing queued, exactly when a GET
             * is answered 301/302 with a Location header */
            set_err(res, OG_FETCH_REDIRECT, "HTTP redirect (301/302 with Location)");
        }
        else {
            classify_openssl_error(res);
        }
        goto cleanup;
    }
    buf = apr_palloc(p, cap + 1);
    while (got <= cap) {
        n = BIO_read(rsp, buf + got, (int)(cap + 1 - got));
        if (n <= 0) {
            break;
        }
        got += (apr_size_t)n;
    }
    if (got > cap) {
        set_err(res, OG_FETCH_TOO_LARGE, "body above %" APR_SIZE_T_FMT " bytes", cap);
        goto cleanup;
    }
    if (got == 0) {
        set_err(res, OG_FETCH_OTHER, "empty body");
        goto cleanup;
    }
    res->body = buf;
    res->len = got;
    res->err = OG_FETCH_OK;

cleanup:
    res->elapsed = apr_time_now() - start;
    OSSL_HTTP_REQ_CTX_free(rctx);
    BIO_free(bio);
    if (sock) {
        apr_socket_close(sock);
    }
    OCSP_REQUEST_free(ocsp_req);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    OPENSSL_free(query);
    OPENSSL_free(phost);
    OPENSSL_free(pport);
    ERR_clear_error();
    return res->err == OG_FETCH_OK ? APR_SUCCESS : APR_EGENERAL;
}

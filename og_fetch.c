/* og_fetch.c: the HTTP exchange with a responder, on OpenSSL's HTTP client
 * (OSSL_HTTP_REQ_CTX, driven non-blocking through OSSL_HTTP_REQ_CTX_nbio and
 * poll) over a socket APR connects, so that DNS failures, refusals and
 * timeouts are told apart. One deadline covers the name lookup (in a thread
 * of its own, abandoned when the deadline passes), connect, send and receive;
 * redirects are reported, not followed; the body is capped.
 * Core file: APR, OpenSSL and POSIX only, never an httpd header. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
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
static og_fetch_err_e http_reason_kind(int reason);

const char *og_fetch_err_str(og_fetch_err_e e)
{
    static const char *const text[] = {
        [OG_FETCH_OK] = "ok", [OG_FETCH_BAD_URL] = "bad responder URL",
        [OG_FETCH_DNS] = "host name lookup failed", [OG_FETCH_REFUSED] = "connection failed",
        [OG_FETCH_TIMEOUT] = "timeout", [OG_FETCH_HTTP_STATUS] = "HTTP error status",
        [OG_FETCH_REDIRECT] = "redirect (not followed)",
        [OG_FETCH_CONTENT_TYPE] = "wrong content type",
        [OG_FETCH_TOO_LARGE] = "response too large", [OG_FETCH_OTHER] = "exchange failed",
    };

    return (unsigned)e < sizeof(text) / sizeof(text[0]) ? text[e] : "?";
}

/* Details quote the network (reason phrases, content types): printable
 * ASCII only, so that no log line, JSON or HTML page carries what a
 * responder chose to send. */
static void set_err(og_fetch_res_t *res, og_fetch_err_e err, const char *fmt, ...)
{
    va_list ap;
    char *c;

    res->err = err;
    va_start(ap, fmt);
    vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
    va_end(ap);
    for (c = res->detail; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
            *c = '?';
        }
    }
}

/* What an HTTP_R_* reason of OpenSSL's HTTP client means for us. */
static og_fetch_err_e http_reason_kind(int reason)
{
    static const struct { int reason; og_fetch_err_e kind; } map[] = {
        { HTTP_R_RETRY_TIMEOUT, OG_FETCH_TIMEOUT },
        { HTTP_R_RECEIVED_ERROR, OG_FETCH_HTTP_STATUS },
        { HTTP_R_STATUS_CODE_UNSUPPORTED, OG_FETCH_HTTP_STATUS },
        { HTTP_R_REDIRECTION_NOT_ENABLED, OG_FETCH_REDIRECT },
        { HTTP_R_MISSING_REDIRECT_LOCATION, OG_FETCH_REDIRECT },
        { HTTP_R_TOO_MANY_REDIRECTIONS, OG_FETCH_REDIRECT },
        { HTTP_R_UNEXPECTED_CONTENT_TYPE, OG_FETCH_CONTENT_TYPE },
        { HTTP_R_MISSING_CONTENT_TYPE, OG_FETCH_CONTENT_TYPE },
        { HTTP_R_MAX_RESP_LEN_EXCEEDED, OG_FETCH_TOO_LARGE },
        { HTTP_R_ASN1_LEN_EXCEEDS_MAX_RESP_LEN, OG_FETCH_TOO_LARGE },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].reason == reason) {
            return map[i].kind;
        }
    }
    return OG_FETCH_OTHER;
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
            og_fetch_err_e k = http_reason_kind(reason);

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

/* ---- name lookup within the deadline -------------------------------------
 * getaddrinfo() cannot be interrupted, so it runs in a detached thread; the
 * caller waits on a condition until the deadline and then walks away. Whoever
 * of the two lets go last frees the shared state. */
typedef struct og_lookup_t {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                   /* 2 while both hold it */
    int done;
    int rc;                     /* getaddrinfo's */
    struct addrinfo *ai;
    char host[256];
    char port[16];
} og_lookup_t;

static void lookup_release(og_lookup_t *l)
{
    int last;

    pthread_mutex_lock(&l->mu);
    last = --l->refs == 0;
    pthread_mutex_unlock(&l->mu);
    if (last) {
        if (l->ai) {
            freeaddrinfo(l->ai);
        }
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
    }
}

static void *lookup_thread(void *data)
{
    og_lookup_t *l = data;
    struct addrinfo hints, *ai = NULL;
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(l->host, l->port, &hints, &ai);
    pthread_mutex_lock(&l->mu);
    l->rc = rc;
    l->ai = ai;
    l->done = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    lookup_release(l);
    return NULL;
}

/* The addresses of host (apr_sockaddr_t *, in the resolver's order) into
 * *paddrs, within the deadline. */
static og_fetch_err_e resolve(apr_array_header_t **paddrs, og_fetch_res_t *res, apr_pool_t *p,
                              const char *host, const char *port, apr_time_t deadline)
{
    apr_array_header_t *addrs = apr_array_make(p, 4, sizeof(apr_sockaddr_t *));
    unsigned char bin[sizeof(struct in6_addr)];
    og_lookup_t *l;
    pthread_attr_t attr;
    pthread_condattr_t ca;
    pthread_t tid;
    struct addrinfo *ai;
    struct timespec ts;
    int done, rc, started;
    long portnum = strtol(port, NULL, 10);

    *paddrs = addrs;
    /* a literal address needs no lookup */
    if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1) {
        apr_sockaddr_t *sa = NULL;

        if (apr_sockaddr_info_get(&sa, host, strchr(host, ':') ? APR_INET6 : APR_INET,
                                  (apr_port_t)portnum, 0, p) != APR_SUCCESS || !sa) {
            set_err(res, OG_FETCH_BAD_URL, "cannot use address '%s'", host);
            return res->err;
        }
        APR_ARRAY_PUSH(addrs, apr_sockaddr_t *) = sa;
        return OG_FETCH_OK;
    }
    if (strlen(host) >= sizeof(l->host) || strlen(port) >= sizeof(l->port)
        || !(l = calloc(1, sizeof(*l)))) {
        set_err(res, OG_FETCH_BAD_URL, "host name too long");
        return res->err;
    }
    strcpy(l->host, host);
    strcpy(l->port, port);
    l->refs = 2;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    started = pthread_create(&tid, &attr, lookup_thread, l) == 0;
    pthread_attr_destroy(&attr);
    if (!started) {
        lookup_thread(l); /* no thread to be had: look it up here, unbounded */
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    {
        apr_interval_time_t left = deadline - apr_time_now();
        long long ns = (long long)ts.tv_nsec + (left > 0 ? left : 0) % 1000000 * 1000;

        ts.tv_sec += (time_t)((left > 0 ? left : 0) / 1000000) + (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
    }
    pthread_mutex_lock(&l->mu);
    while (!l->done) {
        if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    done = l->done;
    rc = l->rc;
    ai = l->ai;
    if (done) {
        for (; ai; ai = ai->ai_next) {
            char num[INET6_ADDRSTRLEN];
            const void *a = ai->ai_family == AF_INET6
                ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
            apr_sockaddr_t *sa = NULL;

            if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
                && inet_ntop(ai->ai_family, a, num, sizeof(num))
                && apr_sockaddr_info_get(&sa, num, ai->ai_family == AF_INET6 ? APR_INET6
                                         : APR_INET, (apr_port_t)portnum, 0, p) == APR_SUCCESS
                && sa) {
                APR_ARRAY_PUSH(addrs, apr_sockaddr_t *) = sa;
            }
        }
    }
    pthread_mutex_unlock(&l->mu);
    lookup_release(l);
    if (!done) {
        set_err(res, OG_FETCH_DNS, "looking up '%s': no answer from the resolver within "
                "the deadline", host);
        return res->err;
    }
    if (rc != 0 || !addrs->nelts) {
        set_err(res, OG_FETCH_DNS, "cannot resolve '%s': %s", host,
                rc ? gai_strerror(rc) : "no IPv4 or IPv6 address");
        return res->err;
    }
    return OG_FETCH_OK;
}

/* TCP connect to host:port within the deadline: a name that does not
 * resolve, a refused connection and a timeout are told apart here (OpenSSL's
 * own connect retries a refused connection until its timeout). */
static og_fetch_err_e tcp_connect(apr_socket_t **psock, og_fetch_res_t *res, apr_pool_t *p,
                                  const char *host, const char *port, apr_time_t deadline)
{
    apr_array_header_t *addrs;
    apr_socket_t *sock = NULL;
    apr_status_t rv = APR_TIMEUP;
    char ebuf[120];
    int i;

    *psock = NULL;
    if (resolve(&addrs, res, p, host, port, deadline) != OG_FETCH_OK) {
        return res->err;
    }
    for (i = 0; i < addrs->nelts; i++) {
        apr_sockaddr_t *sa = APR_ARRAY_IDX(addrs, i, apr_sockaddr_t *);
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

/* ---- the exchange ------------------------------------------------------- */

typedef struct og_target_t {
    char *host, *port, *path, *query;   /* OpenSSL-allocated */
    char *phost, *pport;                /* proxy, or NULL */
    const char *addr;                   /* host without IPv6 brackets */
    const char *get_path;               /* NULL: POST */
} og_target_t;

static void target_free(og_target_t *t)
{
    OPENSSL_free(t->host);
    OPENSSL_free(t->port);
    OPENSSL_free(t->path);
    OPENSSL_free(t->query);
    OPENSSL_free(t->phost);
    OPENSSL_free(t->pport);
}

static const char *unbracket(apr_pool_t *p, const char *host)
{
    apr_size_t n = strlen(host);

    return (n > 2 && host[0] == '[' && host[n - 1] == ']')
           ? apr_pstrmemdup(p, host + 1, n - 2) : host;
}

static og_fetch_err_e parse_target(og_target_t *t, og_fetch_res_t *res, apr_pool_t *p,
                                   const og_fetch_req_t *req)
{
    int use_ssl = 0, pssl = 0;

    memset(t, 0, sizeof(*t));
    if (!req->url || (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))
        || !OSSL_HTTP_parse_url(req->url, &use_ssl, NULL, &t->host, &t->port, NULL,
                                &t->path, &t->query, NULL)) {
        set_err(res, OG_FETCH_BAD_URL, "cannot parse responder URL '%s'",
                req->url ? req->url : "(none)");
        return res->err;
    }
    if (use_ssl) {
        set_err(res, OG_FETCH_BAD_URL, "https responder URLs are not supported "
                "(OCSP is served over plain http, RFC 5019): '%s'", req->url);
        return res->err;
    }
    if (req->proxy && *req->proxy
        && (!OSSL_HTTP_parse_url(req->proxy, &pssl, NULL, &t->phost, &t->pport, NULL,
                                 NULL, NULL, NULL) || pssl)) {
        set_err(res, OG_FETCH_BAD_URL, "cannot use proxy '%s' (http://host:port expected)",
                req->proxy);
        return res->err;
    }
    if (t->query && !*t->query) {
        OPENSSL_free(t->query); /* "http://host/?" has an empty query: none */
        t->query = NULL;
    }
    if (!t->query) {
        t->get_path = og_fetch_get_path(p, t->path, req->der, req->der_len);
    }
    t->addr = unbracket(p, t->phost ? t->phost : t->host);
    return OG_FETCH_OK;
}

/* Send the request and read the answer over the connected, non-blocking fd,
 * polling until the deadline (OpenSSL's own deadline counts whole seconds of
 * time(NULL): a budget of 1 s could end after a few ms). */
static int exchange(og_fetch_res_t *res, apr_pool_t *p, const og_fetch_req_t *req,
                    const og_target_t *t, int fd, apr_time_t start, apr_time_t deadline)
{
    int alive = 0;
    OSSL_HTTP_REQ_CTX *rctx = NULL;
    OCSP_REQUEST *ocsp_req = NULL;
    BIO *bio = NULL, *mem;
    const unsigned char *q;
    const char *hosthdr;
    apr_size_t cap = req->max_body ? req->max_body : OG_FETCH_MAX_BODY, got = 0;
    unsigned char *buf;
    int rv, n;

    if (!(bio = BIO_new_socket(fd, BIO_NOCLOSE))
        || !(rctx = OSSL_HTTP_REQ_CTX_new(bio, bio, 0))) {
        set_err(res, OG_FETCH_OTHER, "out of memory");
        goto cleanup;
    }
    hosthdr = strcmp(t->port, "80") ? apr_pstrcat(p, t->host, ":", t->port, NULL) : t->host;
    if (!OSSL_HTTP_REQ_CTX_set_request_line(rctx, t->get_path == NULL,
                                            t->phost ? t->host : NULL,
                                            t->phost ? t->port : NULL,
                                            t->get_path ? t->get_path
                                            : (t->query ? apr_pstrcat(p, t->path, "?",
                                                                      t->query, NULL)
                                               : t->path))
        || !OSSL_HTTP_REQ_CTX_add1_header(rctx, "Host", hosthdr)
        || !OSSL_HTTP_REQ_CTX_set_expected(rctx, OG_CT_RESPONSE, 1, 0 /* ours */,
                                           req->keep_fd && !t->phost ? 1 : 0)) {
        classify_openssl_error(res);
        goto cleanup;
    }
    OSSL_HTTP_REQ_CTX_set_max_response_length(rctx, (unsigned long)cap);
    /* OpenSSL asks for keep-alive itself only with a body (POST) */
    if (t->get_path && req->keep_fd && !t->phost
        && !OSSL_HTTP_REQ_CTX_add1_header(rctx, "Connection", "keep-alive")) {
        set_err(res, OG_FETCH_OTHER, "out of memory");
        goto cleanup;
    }
    if (!t->get_path) {
        q = req->der;
        ocsp_req = d2i_OCSP_REQUEST(NULL, &q, (long)req->der_len);
        if (!ocsp_req || !OSSL_HTTP_REQ_CTX_set1_req(rctx, OG_CT_REQUEST,
                                                     ASN1_ITEM_rptr(OCSP_REQUEST),
                                                     (const ASN1_VALUE *)ocsp_req)) {
            set_err(res, OG_FETCH_OTHER, "cannot encode the request");
            goto cleanup;
        }
    }
    for (;;) {
        struct pollfd pfd;
        apr_interval_time_t left;

        rv = OSSL_HTTP_REQ_CTX_nbio(rctx);
        if (rv != -1) {
            break;
        }
        left = deadline - apr_time_now();
        if (left <= 0) {
            set_err(res, OG_FETCH_TIMEOUT, "no complete answer within the deadline "
                    "(%" APR_TIME_T_FMT " ms)", apr_time_as_msec(apr_time_now() - start));
            goto cleanup;
        }
        pfd.fd = fd;
        pfd.events = BIO_should_write(bio) ? POLLOUT : POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)((left + 999) / 1000)) < 0 && errno != EINTR) {
            set_err(res, OG_FETCH_OTHER, "poll: %s", strerror(errno));
            goto cleanup;
        }
    }
    if (rv == 0) {
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
    mem = OSSL_HTTP_REQ_CTX_get0_mem_bio(rctx);
    buf = apr_palloc(p, cap + 1);
    while (mem && got <= cap) {
        n = BIO_read(mem, buf + got, (int)(cap + 1 - got));
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
    alive = req->keep_fd && !t->phost && OSSL_HTTP_is_alive(rctx);

cleanup:
    OSSL_HTTP_REQ_CTX_free(rctx);
    BIO_free(bio);
    OCSP_REQUEST_free(ocsp_req);
    return alive;
}

static apr_time_t deadline_of(const og_fetch_req_t *req, apr_time_t start)
{
    return req->deadline ? req->deadline
                         : start + apr_time_from_sec(req->timeout_s > 0 ? req->timeout_s : 1);
}

/* A reused connection that failed this way was probably closed by the
 * responder while idle: worth one new connection. */
static int stale_connection(const og_fetch_res_t *res)
{
    return res->err == OG_FETCH_REFUSED || res->err == OG_FETCH_OTHER;
}

apr_status_t og_fetch_http(og_fetch_res_t *res, apr_pool_t *p, const og_fetch_req_t *req)
{
    og_target_t t;
    apr_socket_t *sock = NULL;
    apr_os_sock_t fd;
    apr_time_t start = apr_time_now(), deadline = deadline_of(req, start);
    int reused = req->keep_fd ? *req->keep_fd : -1, alive;

    memset(res, 0, sizeof(res[0]));
    ERR_clear_error();
    if (req->keep_fd) {
        *req->keep_fd = -1;
    }
    if (parse_target(&t, res, p, req) != OG_FETCH_OK) {
        if (reused >= 0) {
            close(reused);
        }
        goto done;
    }
    if (reused >= 0) {
        alive = exchange(res, p, req, &t, reused, start, deadline);
        if (alive) {
            *req->keep_fd = reused;
            goto done;
        }
        close(reused);
        if (res->err == OG_FETCH_OK || !stale_connection(res)
            || deadline - apr_time_now() <= 0) {
            goto done;
        }
        memset(res, 0, sizeof(res[0])); /* once more, on a new connection */
        ERR_clear_error();
    }
    if (tcp_connect(&sock, res, p, t.addr, t.phost ? t.pport : t.port, deadline)
        == OG_FETCH_OK) {
        /* non-blocking: every read and write waits in our poll, under our deadline */
        apr_os_sock_get(&fd, sock);
        apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1);
        apr_socket_timeout_set(sock, 0);
        if (exchange(res, p, req, &t, fd, start, deadline)) {
            *req->keep_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* outlives this pool's socket */
        }
    }
done:
    res->elapsed = apr_time_now() - start;
    if (sock) {
        apr_socket_close(sock);
    }
    target_free(&t);
    ERR_clear_error();
    return res->err == OG_FETCH_OK ? APR_SUCCESS : APR_EGENERAL;
}

apr_status_t og_fetch_http_on_fd(og_fetch_res_t *res, apr_pool_t *p, const og_fetch_req_t *req,
                                 int fd)
{
    og_target_t t;
    apr_time_t start = apr_time_now();

    memset(res, 0, sizeof(res[0]));
    ERR_clear_error();
    if (parse_target(&t, res, p, req) == OG_FETCH_OK) {
        (void)exchange(res, p, req, &t, fd, start, deadline_of(req, start));
    }
    res->elapsed = apr_time_now() - start;
    target_free(&t);
    ERR_clear_error();
    return res->err == OG_FETCH_OK ? APR_SUCCESS : APR_EGENERAL;
}

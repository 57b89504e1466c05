/* fuzz_http.c: libFuzzer target for the responder's side of the HTTP
 * exchange, og_fetch_http_on_fd. Per input, a socketpair and a server thread
 * (created here, joined before returning): it reads our request (bounded,
 * short polls), writes the input after its first byte as the raw HTTP
 * reply, and closes. The first byte picks the URL (bits 0-1: GET, POST via
 * a query string, GET on port 80, GET with a path on [::1]) and the body cap
 * (bits 2-3: 64 KiB, 16, 200, 1024 bytes). The exchange must end within its
 * one-second deadline whatever comes back; the body must respect the cap and
 * the detail must be printable ASCII (og_fetch.h promises both). Loopback
 * only: no name lookup, no connect. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_feature.h"
#include "fuzz_pki.h"
#include "og_fetch.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_server_t {
    int fd;
    const uint8_t *reply;
    size_t len;
} fz_server_t;

/* how long the server thread waits at most, per phase (ms) */
#define SRV_QUIET_MS   200   /* no byte of the request for this long: go on */
#define SRV_READ_MS    1500
#define SRV_WRITE_MS   3000
#define SRV_DRAIN_MS   3000
/* the exchange's own budget is 1 s; allow this much scheduling slack */
#define DEADLINE_SLACK apr_time_from_msec(1500)

static fz_pki_t pki;
static int verbose;             /* FUZZ_VERBOSE=1: print each outcome (seed work) */
static unsigned char *req_der;
static apr_size_t req_len;

static const char *const urls[4] = {
    FZ_URL,
    "http://127.0.0.1:8080/ocsp?fuzz=1",
    "http://127.0.0.1/",
    "http://[::1]:8080/ocsp/"
};
static const apr_size_t caps[4] = { 0, 16, 200, 1024 };

/* The server thread runs beside the exchange: how often its loops turn is
 * scheduling, not input, so it stays out of the coverage feedback. */
#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

static apr_time_t ms_left(apr_time_t until) FZ_NO_COVERAGE;
static int request_complete(const char *buf, size_t len) FZ_NO_COVERAGE;
static void *server(void *arg) FZ_NO_COVERAGE;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    fz_pki_init(&pki);
    verbose = getenv("FUZZ_VERBOSE") && *getenv("FUZZ_VERBOSE") == '1';
    if (og_ocsp_request_der(&req_der, &req_len, pki.pool, pki.cert) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_http: cannot build the OCSP request\n");
        abort();
    }
    return 0;
}

static apr_time_t ms_left(apr_time_t until)
{
    apr_time_t left = until - apr_time_now();

    return left > 0 ? apr_time_as_msec(left) + 1 : 0;
}

/* Headers ended, and as many body bytes as Content-Length says. */
static int request_complete(const char *buf, size_t len)
{
    const char *end = NULL, *h;
    size_t i, hdr, body = 0;

    for (i = 3; i < len; i++) {
        if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n') {
            end = buf + i + 1;
            break;
        }
    }
    if (!end) {
        return 0;
    }
    hdr = (size_t)(end - buf);
    for (h = buf; h + 15 < end; h++) {
        if ((h == buf || h[-1] == '\n') && strncasecmp(h, "Content-Length:", 15) == 0) {
            body = (size_t)strtoul(h + 15, NULL, 10);
            break;
        }
    }
    return len >= hdr + body;
}

static void *server(void *arg)
{
    fz_server_t *s = arg;
    char req[16384];
    size_t got = 0, off = 0;
    apr_time_t until = apr_time_now() + apr_time_from_msec(SRV_READ_MS);
    struct pollfd pfd;
    int i;

    /* 1. the request, until complete, quiet, or the phase ends */
    while (got < sizeof(req) - 1 && ms_left(until) > 0) {
        ssize_t n;

        pfd.fd = s->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, SRV_QUIET_MS) <= 0) {
            break;
        }
        n = read(s->fd, req + got, sizeof(req) - 1 - got);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        req[got] = '\0';
        if (request_complete(req, got)) {
            break;
        }
    }
    /* 2. the reply, as far as the client takes it */
    until = apr_time_now() + apr_time_from_msec(SRV_WRITE_MS);
    while (off < s->len && ms_left(until) > 0) {
        ssize_t n = write(s->fd, s->reply + off, s->len - off);

        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pfd.fd = s->fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            poll(&pfd, 1, (int)ms_left(until));
            continue;
        }
        if (n <= 0) {
            break; /* EPIPE: the client is done */
        }
        off += (size_t)n;
    }
    /* 3. end of reply; read what else comes until the client closes, so that
     * closing with unread bytes never turns into a reset under the reply */
    shutdown(s->fd, SHUT_WR);
    until = apr_time_now() + apr_time_from_msec(SRV_DRAIN_MS);
    for (i = 0; i < 10000 && ms_left(until) > 0; i++) {
        ssize_t n;

        pfd.fd = s->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)ms_left(until)) <= 0) {
            break;
        }
        n = read(s->fd, req, sizeof(req));
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (n <= 0) {
            break;
        }
    }
    close(s->fd);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = NULL;
    og_fetch_req_t req;
    og_fetch_res_t res;
    fz_server_t srv;
    pthread_t tid;
    apr_size_t cap;
    apr_time_t start;
    const char *c;
    int sv[2];

    if (size < 1) {
        return 0;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        perror("fuzz_http: socketpair");
        abort();
    }
    /* both ends non-blocking: og_fetch polls on its own, the server too */
    if (fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) != 0
        || fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK) != 0) {
        perror("fuzz_http: fcntl");
        abort();
    }
    srv.fd = sv[1];
    srv.reply = data + 1;
    srv.len = size - 1;
    if (pthread_create(&tid, NULL, server, &srv) != 0) {
        perror("fuzz_http: pthread_create");
        abort();
    }
    p = fz_pool_create();
    memset(&req, 0, sizeof(req));
    req.url = urls[data[0] & 3];
    req.der = req_der;
    req.der_len = req_len;
    req.timeout_s = 1;
    req.max_body = caps[(data[0] >> 2) & 3];
    cap = req.max_body ? req.max_body : OG_FETCH_MAX_BODY;
    start = apr_time_now();
    og_fetch_http_on_fd(&res, p, &req, sv[0]);
    close(sv[0]);
    pthread_join(tid, NULL);

    if (apr_time_now() - start > apr_time_from_sec(1) + DEADLINE_SLACK
        || res.elapsed > apr_time_from_sec(1) + DEADLINE_SLACK) {
        fprintf(stderr, "fuzz_http: the exchange took %" APR_TIME_T_FMT " ms, deadline 1 s\n",
                apr_time_as_msec(apr_time_now() - start));
        abort();
    }
    if (res.err == OG_FETCH_OK && (!res.body || res.len == 0 || res.len > cap)) {
        fprintf(stderr, "fuzz_http: ok with a body of %zu bytes, cap %zu\n",
                (size_t)res.len, (size_t)cap);
        abort();
    }
    if (!memchr(res.detail, '\0', sizeof(res.detail))) {
        fprintf(stderr, "fuzz_http: detail not terminated\n");
        abort();
    }
    for (c = res.detail; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) {
            fprintf(stderr, "fuzz_http: byte 0x%02x in the detail\n", (unsigned char)*c);
            abort();
        }
    }
    /* the outcome kind per URL shape and cap, and OpenSSL's reason text */
    fz_feature((unsigned)res.err << 4 | (data[0] & 0x0f), res.detail);
    if (verbose) {
        fprintf(stderr, "outcome: %s, %zu body bytes, %" APR_TIME_T_FMT " ms: %s\n",
                og_fetch_err_str(res.err), (size_t)res.len, apr_time_as_msec(res.elapsed),
                res.detail);
    }
    apr_pool_destroy(p);
    return 0;
}

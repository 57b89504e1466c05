"""OcspFront: a threaded HTTP OCSP responder on 127.0.0.1 for the integration tests.

Normal answers come from the real `openssl ocsp` responder run over the PKI's index.txt; fault modes
(switchable at runtime through `mode`) produce slow, hanging, broken, forged or time-shifted answers.
Forged responses are built with python3-cryptography's OCSPResponseBuilder.
Requests whose path starts with /redirected/ (the target of mode 'redirect') are always answered normally.
"""
import base64
import datetime
import functools
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from .util import LOOPBACK, wait_until

OCSP_RESPONSE_TYPE = 'application/ocsp-response'
REDIRECT_PREFIX = '/redirected'
DEFAULT_VALIDITY_MINUTES = 60 * 24
DEFAULT_DELAY_S = 2.0
HANG_MAX_S = 120
OVERSIZE_BYTES = 2 * 1024 * 1024
MAX_POST_BYTES = 1024 * 1024
# Bare OCSPResponse { responseStatus } for the error modes: DER 30 03 0A 01 NN.
BARE_STATUS = {'malformedrequest': 1, 'internalerror': 2, 'trylater': 3, 'sigrequired': 5, 'unauthorized': 6}
DEFAULT_SHORT_SECONDS = 20
FORGED = ('wrongsigner', 'lookalike', 'otherca', 'othercert', 'expired', 'future', 'nonextupdate', 'short',
          'stale', 'goodstale', 'liar', 'farfuture')
DEFAULT_STALE_SECONDS = 6 * 3600
YEAR_9999 = datetime.datetime(9999, 12, 31, 23, 59, 59)
HOSTILE_REASON = 'Internal \x1b[31mError\x1b[0m \xff\xfe<script>'
MODES = ('ok', 'slow', 'hang', 'trickle', 'http500', 'badreason', 'redirect', 'wrongtype', 'oversize', 'garbage',
         *BARE_STATUS, *FORGED)


def bare_response(status):
    """An OCSPResponse carrying only a responseStatus (no responseBytes)."""
    return bytes([0x30, 0x03, 0x0A, 0x01, status])


def parse_request(der):
    """The serial number asked about in a DER OCSP request, or None if it is not a single-cert request."""
    try:
        return ocsp.load_der_ocsp_request(der).serial_number
    except ValueError:
        return None


def request_from_path(path):
    """(der, serial) from an RFC 5019 GET path '/[prefix/]<url-encoded base64 DER>'.

    Tries the last path segment first, then longer suffixes, for clients that leave '/' in the base64
    unencoded.  Returns (b'', None) when nothing decodes.
    """
    segments = path.split('?', 1)[0].split('/')
    fallback = b''
    for i in range(len(segments) - 1, 0, -1):
        try:
            der = base64.b64decode(urllib.parse.unquote('/'.join(segments[i:])), validate=True)
        except ValueError:
            continue
        serial = parse_request(der)
        if serial is not None:
            return der, serial
        fallback = fallback or der
    return fallback, None


@functools.lru_cache(maxsize=None)
def _load_pair(cert_path, key_path):
    with open(cert_path, 'rb') as f:
        cert = x509.load_pem_x509_certificate(f.read())
    with open(key_path, 'rb') as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return cert, key


def _no_nonce(der):
    try:
        ocsp.load_der_ocsp_request(der).extensions.get_extension_for_class(x509.OCSPNonce)
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    return False


class _Handler(BaseHTTPRequestHandler):
    server_version = 'og-ocsp-front/1'

    def setup(self):
        super().setup()
        front = self.server.front
        if front.keepalive:  # HTTP/1.1: the connection stays open between requests
            self.protocol_version = 'HTTP/1.1'
        with front._lock:
            front.connections += 1

    def do_GET(self):
        der, serial = request_from_path(self.path)
        self._serve('GET', der, serial)

    def do_POST(self):
        length = min(int(self.headers.get('Content-Length') or 0), MAX_POST_BYTES)
        der = self.rfile.read(length)
        self._serve('POST', der, parse_request(der))

    def log_message(self, fmt, *args):
        self.server.front.log(f'{self.client_address[0]}:{self.client_address[1]} {fmt % args}')

    def _serve(self, method, der, serial):
        front, stopped = self.server.front, self.server.stopped
        mode = 'ok' if self.path.startswith(REDIRECT_PREFIX + '/') else front.mode
        front.record(method, self.path, der, serial, mode)
        front.enter()
        try:
            if front.answer_delay and stopped.wait(front.answer_delay):  # stop() during it: no answer
                self.close_connection = True
            elif mode == 'hang':
                wait_until(lambda: front.mode != 'hang' or stopped.is_set(), HANG_MAX_S, 0.05)
                self.close_connection = True
            elif mode == 'http500':
                self._send(500, 'text/plain', b'internal server error\n')
            elif mode == 'badreason':  # a reason phrase with ESC sequences, bytes >= 0x80 and markup
                self.send_response(500, HOSTILE_REASON)
                self.send_header('Content-Type', 'text/plain')
                self.send_header('Content-Length', '0')
                self.end_headers()
            elif mode == 'redirect':
                self.send_response(302)
                self.send_header('Location', f'{front.url}{REDIRECT_PREFIX}{self.path}')
                self.send_header('Content-Length', '0')
                self.end_headers()
            elif mode == 'oversize':  # a DER SEQUENCE header that claims the whole 2 MiB, then zeros
                self._send(200, OCSP_RESPONSE_TYPE, b'\x30\x84' + (OVERSIZE_BYTES - 6).to_bytes(4, 'big')
                           + bytes(OVERSIZE_BYTES - 6))
            elif mode == 'garbage':
                self._send(200, OCSP_RESPONSE_TYPE, os.urandom(200))
            elif mode in BARE_STATUS:
                self._send(200, OCSP_RESPONSE_TYPE, bare_response(BARE_STATUS[mode]))
            elif mode in FORGED:
                self._send(200, OCSP_RESPONSE_TYPE, front.forge(der, serial, mode))
            elif mode == 'slow' and stopped.wait(front.delay):  # stop() during the delay: no answer
                self.close_connection = True
            elif mode == 'trickle':
                self._trickle(front.answer(der), stopped)
            else:  # ok, slow (after its delay), wrongtype
                ctype = 'text/html' if mode == 'wrongtype' else OCSP_RESPONSE_TYPE
                self._send(200, ctype, front.built(der, serial))
        except (BrokenPipeError, ConnectionResetError) as e:
            front.log(f'client went away: {e!r}')
        finally:
            front.leave()

    def _send(self, code, ctype, body):
        self.send_response(code)
        if self.server.front.keepalive and not self.close_connection:
            self.send_header('Connection', 'keep-alive')  # as nginx and httpd answer HTTP/1.0 clients
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _trickle(self, body, stopped):
        """Headers at once, then the body one byte per second (at most HANG_MAX_S seconds)."""
        self.send_response(200)
        self.send_header('Content-Type', OCSP_RESPONSE_TYPE)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.flush()
        for byte in body[:HANG_MAX_S]:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            if stopped.wait(1.0):
                break
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # socketserver's 5 would drop the SYNs of a burst of connections


class _V6Server(_Server):
    address_family = socket.AF_INET6


class OcspFront:
    """OCSP responder on http://127.0.0.1:<port> over `pki`.

    host: LOOPBACK or '::1'. Runtime attributes: mode (see MODES), delay (s, mode 'slow'), answer_delay (s, before
    every answer of any mode), validity_minutes
    (nextUpdate - now), stale_seconds and far_days (modes 'stale'/'goodstale', 'farfuture'), signer ('delegated' = pki.responder_cert, 'issuer' = the intermediate itself).
    Modes: 'ok' openssl's answer; 'slow' the same after `delay`; 'hang' no answer, the connection is closed
    when mode changes, at stop() or after HANG_MAX_S; 'trickle' headers, then the body at 1 byte/s (at most
    HANG_MAX_S bytes); 'http500'; 'badreason' HTTP 500 whose reason phrase carries ESC sequences, bytes
    >= 0x80 and markup; 'redirect' 302 to /redirected/<path> on this front (answered as 'ok');
    'wrongtype' text/html; 'oversize' 2 MiB; 'garbage' 200 random bytes; BARE_STATUS modes a bare
    responseStatus; FORGED modes a response built here: signed by plainleaf (+ intermediate), the look-alike,
    the other CA, or correctly signed but for another leaf / expired / not yet valid / without nextUpdate;
    replays, correctly signed: 'stale' the truth with thisUpdate stale_seconds ago (an old answer replayed),
    'goodstale' the same but always 'good' (a pre-revocation answer replayed for a revoked leaf), 'liar'
    always 'good' and fresh (a CA lifting a revocation); 'farfuture' nextUpdate far_days ahead (None: the
    last second of year 9999).
    keepalive: answer as HTTP/1.1, keeping each connection open for the next request (connections counts them).
    embed_chain: FORGED answers also embed the intermediate and the root (a longer response).
    Accounting: count, last_forged_len, requests [(method, path_len, der, serial)], inflight and max_inflight (requests
    being answered at once), reset(), wait_for_count(n, timeout).
    """

    def __init__(self, pki, port=0, signer='delegated', host=LOOPBACK):
        self.pki = pki
        self.host = host  # LOOPBACK or '::1'
        self.port = port
        self.signer = signer
        self.delay = DEFAULT_DELAY_S
        self.answer_delay = 0  # s before every answer, whatever the mode
        self.validity_minutes = DEFAULT_VALIDITY_MINUTES
        self.short_seconds = DEFAULT_SHORT_SECONDS
        self.stale_seconds = DEFAULT_STALE_SECONDS
        self.far_days = 20
        self.redirects_followed = 0  # requests that arrived at a redirect's target
        self.dir = os.path.join(pki.dir, 'front')
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = os.path.join(self.dir, 'requests.log')
        self._lock = threading.Lock()
        self.builder = 'openssl'  # 'ok'/'slow' answers: a real `openssl ocsp`, or 'python': the same
        # answer built here (about ten times cheaper: for benchmarks with thousands of certificates),
        # or 'prebuilt': built here once per certificate (prebuild()) and then served from memory, for
        # benchmarks of the server's own capacity (a responder that costs no CPU of the machine)
        self._prebuilt = {}
        self.keepalive = False  # answer as HTTP/1.1 and keep connections open
        self.connections = 0  # TCP connections accepted
        self.embed_chain = False  # FORGED modes: embed the intermediate and the root beside the signer
        self.no_certs = False  # `openssl ocsp -resp_no_certs`: no certificate in the answer (as a CA signing
        # with the issuer itself answers: about 1 KB less in every stapled handshake)
        self.last_forged_len = 0  # bytes of the last FORGED answer
        self.inflight = 0  # requests being answered now
        self.max_inflight = 0  # the most at once since the last reset()
        self._mode = 'ok'
        self._requests = []
        self.request_times = []  # time.time() of each request's arrival
        self._server = None
        self._thread = None

    @property
    def url(self):
        if not self.port:
            raise RuntimeError('OcspFront has no port yet: start() it or pass port=')
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'http://{host}:{self.port}'

    @property
    def mode(self):
        with self._lock:
            return self._mode

    @mode.setter
    def mode(self, value):
        if value not in MODES:
            raise ValueError(f'unknown OcspFront mode {value!r}')
        with self._lock:
            self._mode = value
        self.log(f'mode -> {value}')

    @property
    def count(self):
        with self._lock:
            return len(self._requests)

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def reset(self):
        with self._lock:
            self._requests.clear()
            self.request_times.clear()
            self.redirects_followed = 0
            self.max_inflight = self.inflight
            self.connections = 0

    def wait_for_count(self, n, timeout):
        """Poll until at least n requests were received; True if so within timeout seconds."""
        return bool(wait_until(lambda: self.count >= n, timeout))

    def start(self):
        """Listen on 127.0.0.1:port (SO_REUSEADDR), the same port again after a stop()."""
        if self._server:
            return
        server_class = _V6Server if ':' in self.host else _Server
        server = server_class((self.host, self.port), _Handler)
        server.block_on_close = False
        server.front = self
        server.stopped = threading.Event()
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.1},
                                        name=f'ocsp-front-{self.port}', daemon=True)
        self._thread.start()
        self.log(f'listening on {self.url}')

    def stop(self):
        """Close the listening socket (new connections are refused) and release hanging handlers."""
        if not self._server:
            return
        server, self._server = self._server, None
        server.stopped.set()
        server.shutdown()
        server.server_close()
        self._thread.join(timeout=10)
        self.log('stopped')

    def enter(self):
        """A request is being answered: counts towards inflight and max_inflight."""
        with self._lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)

    def leave(self):
        with self._lock:
            self.inflight -= 1

    def record(self, method, path, der, serial, mode):
        with self._lock:
            self._requests.append((method, len(path), der, serial))
            self.request_times.append(time.time())
            if path.startswith(REDIRECT_PREFIX + '/'):
                self.redirects_followed += 1
        self.log(f'{method} path_len={len(path)} der_len={len(der)} '
                 f'serial={"-" if serial is None else format(serial, "X")} mode={mode}')

    def log(self, line):
        with self._lock, open(self.log_path, 'a') as f:
            f.write(f'{time.strftime("%H:%M:%S")} {line}\n')

    def answer(self, der):
        """The real `openssl ocsp` responder's DER answer to a DER request (malformedrequest if it fails)."""
        signer_cert, signer_key = self._signer_paths()
        fd, req_path = tempfile.mkstemp(dir=self.dir, suffix='.req')
        resp_path = req_path[:-4] + '.resp'
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(der)
            proc = subprocess.run(
                ['openssl', 'ocsp', '-index', self.pki.index, '-CA', self.pki.inter_pem,
                 '-rsigner', signer_cert, '-rkey', signer_key, '-reqin', req_path, '-respout', resp_path,
                 '-nmin', str(self.validity_minutes)] + (['-resp_no_certs'] if self.no_certs else []),
                capture_output=True, text=True, timeout=30)
            if proc.returncode != 0 or not os.path.exists(resp_path):
                self.log(f'openssl ocsp failed rc={proc.returncode}: {proc.stdout}{proc.stderr}')
                return bare_response(BARE_STATUS['malformedrequest'])
            with open(resp_path, 'rb') as f:
                return f.read()
        finally:
            for path in (req_path, resp_path):
                if os.path.exists(path):
                    os.unlink(path)

    def built(self, der, serial):
        """The answer to an 'ok'/'slow' request, by self.builder."""
        if self.builder == 'openssl':
            return self.answer(der)
        if self.builder == 'prebuilt' and serial is not None and _no_nonce(der):
            body = self._prebuilt.get(serial)
            if body is None:
                body = self._prebuilt[serial] = self.forge(der, serial, 'built')
            return body
        return self.forge(der, serial, 'built')

    def prebuild(self, leaves):
        """Build and keep the answer for each leaf (builder 'prebuilt'), as for a SHA-1 CertID request."""
        issuer, _ = _load_pair(self.pki.inter_pem, self.pki.inter_key)
        for leaf in leaves:
            req = ocsp.OCSPRequestBuilder().add_certificate(leaf.certificate, issuer, hashes.SHA1()).build()
            der = req.public_bytes(serialization.Encoding.DER)
            self._prebuilt[leaf.serial] = self.forge(der, leaf.serial, 'built')

    def forge(self, der, serial, mode):
        """A signed response for one of the FORGED modes (unauthorized if the serial is not a PKI leaf)."""
        leaf = self.pki.by_serial(serial) if serial is not None else None
        if leaf is None:
            return bare_response(BARE_STATUS['unauthorized'])
        request = ocsp.load_der_ocsp_request(der)
        issuer, _ = _load_pair(self.pki.inter_pem, self.pki.inter_key)
        signer_cert, signer_key = _load_pair(*self._signer_paths())
        embedded = [signer_cert] + ([issuer, _load_pair(self.pki.root_pem, self.pki.inter_key)[0]]
                                    if self.embed_chain else [])
        now = datetime.datetime.utcnow().replace(microsecond=0)
        validity = datetime.timedelta(minutes=self.validity_minutes)
        day = datetime.timedelta(days=1)
        this_update, next_update = now - datetime.timedelta(minutes=1), now + validity
        if mode == 'expired':
            this_update, next_update = now - 2 * day, now - day
        elif mode == 'future':
            this_update, next_update = now + day, now + day + validity
        elif mode == 'nonextupdate':
            next_update = None
        elif mode == 'short':  # a good response valid for short_seconds only, to drive time in tests
            this_update, next_update = now, now + datetime.timedelta(seconds=self.short_seconds)
        elif mode == 'othercert':
            leaf = next(other for other in self.pki.leaves.values() if other.serial != serial)
        elif mode in ('stale', 'goodstale'):
            this_update = now - datetime.timedelta(seconds=self.stale_seconds)
        elif mode == 'liar':
            this_update = now
        elif mode == 'farfuture':
            this_update = now
            next_update = YEAR_9999 if self.far_days is None else now + datetime.timedelta(days=self.far_days)
        revoked = leaf.revoked and mode not in ('goodstale', 'liar')
        if mode == 'wrongsigner':  # chains to the intermediate, but lacks EKU OCSPSigning
            signer_cert, signer_key = _load_pair(self.pki.plainleaf.cert, self.pki.plainleaf.key)
            embedded = [signer_cert, issuer]
        elif mode in ('lookalike', 'otherca'):
            hostile = self.pki.lookalike if mode == 'lookalike' else self.pki.otherca
            signer_cert, signer_key = _load_pair(hostile.cert, hostile.key)
            embedded = [signer_cert]
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response(cert=leaf.certificate, issuer=issuer, algorithm=request.hash_algorithm,
                                 cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
                                 this_update=this_update, next_update=next_update,
                                 revocation_time=leaf.revoked_at if revoked else None, revocation_reason=None)
                   .responder_id(ocsp.OCSPResponderEncoding.NAME, signer_cert)
                   .certificates(embedded))
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        except x509.ExtensionNotFound:
            pass
        body = builder.sign(signer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
        self.last_forged_len = len(body)
        return body

    def _signer_paths(self):
        if self.signer == 'issuer':
            return self.pki.inter_pem, self.pki.inter_key
        return self.pki.responder_cert, self.pki.responder_key

"""CountingProxy: a tiny forward HTTP proxy on 127.0.0.1 for the OCSPGuardProxy tests.

It accepts absolute-URI requests (GET and POST, as a client talking to a proxy sends them),
forwards them only to 127.0.0.1 targets, relays the answer, and counts what passed through.
"""
import http.client
import http.server
import threading
import urllib.parse

from .util import LOOPBACK


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self._forward(None)

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        self._forward(self.rfile.read(length) if length else b'')

    def _forward(self, body):
        proxy = self.server.proxy
        target = urllib.parse.urlsplit(self.path)
        with proxy.lock:
            proxy.requests.append((self.command, self.path))
        if target.scheme != 'http' or target.hostname != LOOPBACK:
            self.send_error(403, 'this test proxy forwards to 127.0.0.1 only')
            return
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ('proxy-connection', 'connection')}
            path = target.path + (f'?{target.query}' if target.query else '')
            conn.request(self.command, path or '/', body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ('connection', 'transfer-encoding', 'content-length'):
                    self.send_header(k, v)
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError as e:
            self.send_error(502, f'upstream failed: {e}')
        finally:
            conn.close()


class CountingProxy:
    """start(), stop(), url, count, requests [(method, absolute URI)]."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self._server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self
        self._thread = None

    @property
    def url(self):
        return f'http://{LOOPBACK}:{self._server.server_address[1]}'

    @property
    def count(self):
        with self.lock:
            return len(self.requests)

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={'poll_interval': 0.1},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

"""The fleet caches the tests share between httpd instances: Debian's redis-server and memcached, started on
127.0.0.1 on a free port and stopped by PID, each with a few lines of its wire protocol for the tests to read
and overwrite what mod_ocsp_guard wrote (no client library: the protocols are two lines each).

Keys as mod_socache_redis/memcache write them: "ocsp_guard:" + hex(certificate id + 'R' or 'C'), where the
certificate id is the SHA-1 of the leaf's DER.
"""
import hashlib
import os
import signal
import socket
import subprocess
import time

from cryptography.hazmat.primitives import serialization

from .util import LOOPBACK, free_port, pid_alive, wait_until


def fleet_key(leaf, kind='R'):
    """The key mod_ocsp_guard's record for `leaf` has in the fleet cache ('R': response, 'C': claim)."""
    der = leaf.certificate.public_bytes(serialization.Encoding.DER)
    return 'ocsp_guard:' + (hashlib.sha1(der).digest() + kind.encode()).hex()


class _Server:
    kind = None

    def __init__(self, base_dir):
        self.port = free_port()
        self.dir = base_dir
        self.proc = None

    @property
    def spec(self):
        """The OCSPGuardFleetCache argument for this server."""
        return f'{self.kind}:{LOOPBACK}:{self.port}'

    @property
    def load_module(self):
        name = 'redis' if self.kind == 'redis' else 'memcache'
        return f'LoadModule socache_{name}_module /usr/lib/apache2/modules/mod_socache_{name}.so\n'

    def config(self):
        """Configuration lines for an httpd using this fleet cache."""
        return self.load_module + f'OCSPGuardFleetCache {self.spec}\n'

    def start(self):
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=self.dir)
        if not wait_until(self.answers, 10, 0.05):
            self.stop()
            raise AssertionError(f'{self.kind} did not come up on port {self.port}')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def pause(self):
        """SIGSTOP: connections are accepted by the kernel, nothing is answered."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def answers(self):
        try:
            self.ping()
            return True
        except OSError:
            return False

    def _exchange(self, data, until, timeout=5):
        with socket.create_connection((LOOPBACK, self.port), timeout=timeout) as s:
            s.sendall(data)
            buf = b''
            end = time.monotonic() + timeout
            while not until(buf):
                if time.monotonic() > end:
                    raise OSError('no complete answer')
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return buf


class Redis(_Server):
    kind = 'redis'

    def command(self):
        return ['redis-server', '--port', str(self.port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no',
                '--dir', self.dir, '--protected-mode', 'no']

    @staticmethod
    def _cmd(*args):
        out = f'*{len(args)}\r\n'.encode()
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += f'${len(a)}\r\n'.encode() + a + b'\r\n'
        return out

    @staticmethod
    def _parse(buf):
        """(value, rest) of one RESP reply, or raise IndexError/ValueError when incomplete."""
        t, line_end = buf[:1], buf.index(b'\r\n')
        line = buf[1:line_end]
        rest = buf[line_end + 2:]
        if t in (b'+', b'-', b':'):
            return line.decode(), rest
        if t == b'$':
            n = int(line)
            if n < 0:
                return None, rest
            if len(rest) < n + 2:
                raise IndexError('incomplete')
            return rest[:n], rest[n + 2:]
        if t == b'*':
            items = []
            for _ in range(int(line)):
                item, rest = Redis._parse(rest)
                items.append(item)
            return items, rest
        raise ValueError(f'unexpected reply {buf[:20]!r}')

    def call(self, *args):
        def complete(buf):
            try:
                self._parse(buf)
                return True
            except (IndexError, ValueError):
                return False
        return self._parse(self._exchange(self._cmd(*args), complete))[0]

    def ping(self):
        return self.call('PING')

    def keys(self):
        return sorted(k.decode() for k in self.call('KEYS', 'ocsp_guard:*'))

    def get(self, key):
        return self.call('GET', key)

    def set(self, key, value, ttl=3600):
        return self.call('SETEX', key, ttl, value)


class Memcached(_Server):
    kind = 'memcache'

    def command(self):
        return ['memcached', '-l', LOOPBACK, '-p', str(self.port), '-U', '0', '-u', 'nobody', '-m', '16']

    def ping(self):
        return self._exchange(b'version\r\n', lambda b: b.endswith(b'\r\n'))

    def get(self, key):
        buf = self._exchange(f'get {key}\r\n'.encode(), lambda b: b.endswith(b'END\r\n'))
        if not buf.startswith(b'VALUE'):
            return None
        header, rest = buf.split(b'\r\n', 1)
        n = int(header.split()[3])
        return rest[:n]

    def set(self, key, value, ttl=3600):
        data = f'set {key} 0 {ttl} {len(value)}\r\n'.encode() + value + b'\r\n'
        return self._exchange(data, lambda b: b.endswith(b'\r\n')).strip().decode()


def alive(server):
    return server.proc is not None and pid_alive(server.proc.pid)

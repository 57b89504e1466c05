"""TLS clients that ask for a stapled OCSP response (status_request): openssl s_client, curl, gnutls-cli.

All connect to 127.0.0.1 only, send SNI for the wanted host name, and are bounded by a subprocess timeout.
"""
import re
import subprocess
from dataclasses import dataclass

from .util import LOOPBACK


@dataclass
class SClientResult:
    """What `openssl s_client -status` printed; raw is stdout + stderr."""
    rc: int
    raw: str
    stapled: bool
    response_status: str = None
    cert_status: str = None
    this_update: str = None
    next_update: str = None
    verify_ok: bool = False


def _field(pattern, text):
    match = re.search(pattern, text, re.M)
    return match.group(1).strip() if match else None


def _run(cmd, timeout):
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        return 124, f'{out}\n{cmd[0]} timed out after {timeout}s'
    return proc.returncode, proc.stdout + proc.stderr


def s_client(port, servername, cafile, timeout=15, extra=()):
    """Handshake with `openssl s_client -status` to 127.0.0.1:port and parse the stapled response, if any."""
    rc, raw = _run(['openssl', 's_client', '-connect', f'{LOOPBACK}:{port}', '-servername', servername, '-status',
                    '-CAfile', cafile, '-verify_return_error', *extra], timeout)
    return SClientResult(
        rc=rc, raw=raw,
        stapled='OCSP Response Data:' in raw,
        response_status=_field(r'^\s*OCSP Response Status: (\S+)', raw),
        cert_status=_field(r'^\s*Cert Status: (\S+)', raw),
        this_update=_field(r'^\s*This Update: (.+)$', raw),
        next_update=_field(r'^\s*Next Update: (.+)$', raw),
        verify_ok=bool(re.search(r'Verify return code: 0 \(ok\)', raw)))


def curl_cert_status(port, host, cafile, timeout=15):
    """(rc, output) of `curl --cert-status` to https://host:port/ resolved to 127.0.0.1."""
    return _run(['curl', '--cert-status', '--cacert', cafile, '--resolve', f'{host}:{port}:{LOOPBACK}',
                 '--max-time', str(timeout), '-sS', '-o', '/dev/null', f'https://{host}:{port}/'], timeout + 5)


def gnutls_ocsp(port, host, cafile, timeout=15):
    """(rc, output) of `gnutls-cli --ocsp` to 127.0.0.1:port with SNI and hostname check for host."""
    return _run(['gnutls-cli', '--ocsp', '--x509cafile', cafile, '--port', str(port), '--sni-hostname', host,
                 '--verify-hostname', host, LOOPBACK], timeout)


def staple(httpd, pki, name='good.localhost'):
    """s_client -status against an Httpd instance's HTTPS port with SNI `name`, trusting the test root."""
    return s_client(httpd.https_port, name, pki.root_pem)

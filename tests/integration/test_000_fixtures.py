"""Checks of the test fixtures alone (PKI, OCSP front, httpd without mod_ocsp_guard, TLS clients)."""
import base64
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID

from ogtest.clients import curl_cert_status, gnutls_ocsp, s_client
from ogtest.util import LOOPBACK, pid_alive, wait_until


def openssl_ocsp(pki, front, leaf_name):
    """(rc, output) of the openssl OCSP client asking the front about one leaf (POST)."""
    proc = subprocess.run(['openssl', 'ocsp', '-issuer', pki.inter_pem, '-cert', pki.leaves[leaf_name].cert,
                           '-url', front.url, '-CAfile', pki.root_pem, '-resp_text', '-timeout', '10'],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    return proc.returncode, proc.stdout + proc.stderr


def der_request(leaf, pki):
    issuer = x509.load_pem_x509_certificate(open(pki.inter_pem, 'rb').read())
    return (ocsp.OCSPRequestBuilder().add_certificate(leaf.certificate, issuer, hashes.SHA1())
            .build().public_bytes(serialization.Encoding.DER))


def raw_get(front, leaf, pki):
    """A connected socket that has sent an RFC 5019 GET for leaf."""
    sock = socket.create_connection((LOOPBACK, front.port), timeout=5)
    path = '/' + urllib.parse.quote(base64.b64encode(der_request(leaf, pki)).decode(), safe='')
    sock.sendall(f'GET {path} HTTP/1.0\r\nHost: {LOOPBACK}\r\n\r\n'.encode())
    return sock


@pytest.mark.parametrize('leaf_name, status', [('good', 'good'), ('good-ec', 'good'), ('revoked', 'revoked')])
def test_front_answers_post(pki, front, leaf_name, status):
    rc, out = openssl_ocsp(pki, front, leaf_name)
    assert rc == 0, out
    assert f'{leaf_name}.pem: {status}' in out
    assert 'Response verify OK' in out
    assert front.count == 1
    method, _, der, serial = front.requests[0]
    assert (method, serial) == ('POST', pki.leaves[leaf_name].serial) and der


@pytest.mark.parametrize('prefix', ['', '/some/prefix'])
@pytest.mark.parametrize('signer', ['delegated', 'issuer'])
def test_front_answers_rfc5019_get(pki, front, prefix, signer):
    front.signer = signer
    leaf = pki.leaves['good']
    b64 = urllib.parse.quote(base64.b64encode(der_request(leaf, pki)).decode(), safe='')
    with urllib.request.urlopen(f'{front.url}{prefix}/{b64}', timeout=10) as reply:
        assert reply.headers['Content-Type'] == 'application/ocsp-response'
        response = ocsp.load_der_ocsp_response(reply.read())
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == leaf.serial
    signer_pem = pki.responder_cert if signer == 'delegated' else pki.inter_pem
    assert response.responder_name == x509.load_pem_x509_certificate(open(signer_pem, 'rb').read()).subject
    assert front.requests[0][0] == 'GET' and front.requests[0][3] == leaf.serial


@pytest.mark.parametrize('mode, rc_ok, expected', [
    ('trylater', False, 'Responder Error: trylater (3)'),
    ('internalerror', False, 'Responder Error: internalerror (2)'),
    ('unauthorized', False, 'Responder Error: unauthorized (6)'),
    ('malformedrequest', False, 'Responder Error: malformedrequest (1)'),
    ('sigrequired', False, 'Responder Error: sigrequired (5)'),
    ('http500', False, 'code=500'),
    ('redirect', False, 'redirection not enabled'),
    ('wrongtype', False, 'unexpected content type'),
    ('oversize', False, 'max resp len exceeded'),
    ('garbage', False, 'Error querying OCSP responder'),
    ('wrongsigner', False, 'missing ocspsigning usage'),
    ('lookalike', False, 'Response Verify Failure'),
    ('otherca', False, 'Response Verify Failure'),
    ('othercert', False, 'No Status found'),
    ('expired', True, 'status expired'),
    ('future', True, 'status not yet valid'),
    ('nonextupdate', True, 'good.pem: good'),
])
def test_front_fault_modes(pki, front, mode, rc_ok, expected):
    front.mode = mode
    rc, out = openssl_ocsp(pki, front, 'good')
    assert (rc == 0) == rc_ok, out
    assert expected in out, out
    assert front.count == 1
    if mode == 'nonextupdate':
        assert 'Next Update' not in out


def test_front_redirect_target_answers(pki, front):
    front.mode = 'redirect'
    leaf = pki.leaves['good']
    b64 = urllib.parse.quote(base64.b64encode(der_request(leaf, pki)).decode(), safe='')
    with urllib.request.urlopen(f'{front.url}/{b64}', timeout=10) as reply:  # urllib follows the 302
        assert ocsp.load_der_ocsp_response(reply.read()).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert front.count == 2


def test_front_slow_hang_trickle(pki, front):
    leaf = pki.leaves['good']
    front.mode, front.delay = 'slow', 0.5
    started = time.monotonic()
    with raw_get(front, leaf, pki) as sock:
        assert sock.recv(64).startswith(b'HTTP/1.0 200')
    assert time.monotonic() - started >= 0.5

    front.mode = 'hang'
    with raw_get(front, leaf, pki) as sock:
        sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            sock.recv(64)
        front.mode = 'ok'  # releases the hanging handler: it closes without an answer
        sock.settimeout(5)
        assert sock.recv(64) == b''

    front.mode = 'trickle'
    with raw_get(front, leaf, pki) as sock:
        sock.settimeout(0.5)
        received = b''
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                received += sock.recv(4096)
            except socket.timeout:
                continue
    head, _, body = received.partition(b'\r\n\r\n')
    length = int(re.search(rb'(?im)^content-length:\s*(\d+)', head).group(1))
    assert head.startswith(b'HTTP/1.0 200') and 0 < len(body) <= 3 < length
    assert front.count == 3


def test_front_stop_refuses_then_restarts_on_same_port(pki, front):
    port = front.port
    front.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=5)
    front.start()
    assert front.port == port
    rc, out = openssl_ocsp(pki, front, 'good')
    assert rc == 0 and 'good.pem: good' in out, out


def test_pki_leaves(pki, front):
    ext = {name: leaf.certificate.extensions for name, leaf in pki.leaves.items()}
    assert ext['good'].get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value[0] \
        .access_location.value == front.url
    with pytest.raises(x509.ExtensionNotFound):
        ext['nourl'].get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    tls_feature = ext['muststaple'].get_extension_for_oid(ExtensionOID.TLS_FEATURE)
    assert tls_feature.value.public_bytes() == bytes.fromhex('3003020105')
    assert pki.leaves['shared'].dns == ['a.localhost', 'b.localhost']
    assert pki.leaves['good'].serial != pki.leaves['good-ec'].serial

    leaf = pki.add_leaf('fixture-extra', key_type='ec', revoked=True)
    assert 'R\t' in next(line for line in open(pki.index) if leaf.serial_hex in line)
    rc, out = openssl_ocsp(pki, front, 'fixture-extra')
    assert rc == 0 and 'fixture-extra.pem: revoked' in out, out


def test_plain_httpd_serves_tls_without_staple(pki, front, httpd_factory):
    httpd = httpd_factory(module_so=None)
    httpd.write_config(httpd.vhost(['good', 'good-ec'], 'good.localhost'))
    rc, out = httpd.configtest()
    assert rc == 0, out
    rc, out = httpd.start()
    assert rc == 0, out
    assert pid_alive(httpd.pid) and httpd.start_time_s < 30
    assert wait_until(lambda: len(httpd.children()) >= 2, 10)

    result = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert result.verify_ok and not result.stapled, result.raw
    assert 'OCSP response: no response sent' in result.raw
    rc, out = curl_cert_status(httpd.https_port, 'good.localhost', pki.root_pem)
    assert rc != 0 and 'No OCSP response received' in out, out
    rc, out = gnutls_ocsp(httpd.https_port, 'good.localhost', pki.root_pem)  # no staple: gnutls asks the AIA URL
    assert rc == 0 and 'Handshake was completed' in out, out
    with urllib.request.urlopen(f'http://{LOOPBACK}:{httpd.http_port}/', timeout=10) as reply:
        assert b'ocsp guard test' in reply.read()

    pid = httpd.pid
    rc, out = httpd.graceful()
    assert rc == 0 and httpd.pid == pid, out
    httpd.stop()
    assert not pid_alive(pid)
    assert httpd.log_tags() == []

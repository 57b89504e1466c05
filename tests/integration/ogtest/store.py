"""The on-disk store as an attacker (or a test) sees it: the file format of og_store.c written and read
in Python, certificate ids, and OCSP requests for a leaf, so tests can forge store files with a correct
checksum (anyone can compute it) and ask the front for responses directly."""
import hashlib
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

RECORD_MAGIC = 0x4F475231  # "OGR1"
STATUS = {'none': 0, 'good': 1, 'revoked': 2, 'unknown': 3}
SOURCE = {'none': 0, 'prefetch': 1, 'refresh': 2, 'store': 3, 'fleet': 4}
US = 1_000_000


def cert_id(leaf):
    """The id mod_ssl gives a certificate: SHA-1 of its DER, as 40 hex digits."""
    return hashlib.sha1(leaf.certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def store_path(store_dir, leaf):
    return os.path.join(store_dir, cert_id(leaf) + '.ocsp')


def ocsp_request(leaf, issuer_cert):
    """DER of an RFC 5019 request (SHA-1 CertID, no nonce) for leaf."""
    return (ocsp.OCSPRequestBuilder().add_certificate(leaf.certificate, issuer_cert, hashes.SHA1())
            .build().public_bytes(serialization.Encoding.DER))


def response_times(der):
    """(status, this_update, next_update) of a DER response, times as seconds since the epoch."""
    resp = ocsp.load_der_ocsp_response(der)
    status = {ocsp.OCSPCertStatus.GOOD: 'good', ocsp.OCSPCertStatus.REVOKED: 'revoked'}.get(
        resp.certificate_status, 'unknown')
    this = resp.this_update.replace(tzinfo=None) - _EPOCH
    nxt = resp.next_update.replace(tzinfo=None) - _EPOCH if resp.next_update else None
    return status, int(this.total_seconds()), int(nxt.total_seconds()) if nxt is not None else None


def encode_file(leaf, der, floor_newest=None, floor_revoked=0, revoked_at=0, source='refresh'):
    """A version-2 store file for leaf holding response der, with a correct SHA-256 (og_store.c layout).

    The floor defaults to the response's own thisUpdate (what an honest writer would put)."""
    status, this_s, next_s = response_times(der)
    this_us, next_us = this_s * US, (next_s if next_s is not None else this_s + 12 * 3600) * US
    record = struct.pack('>IIqqqBB6x', RECORD_MAGIC, len(der), this_us, next_us, this_us,
                         STATUS[status], SOURCE[source]) + der
    head = (b'OGST' + bytes([2, 0, 0, 0]) + bytes.fromhex(cert_id(leaf))
            + struct.pack('>Iqqq', 0, this_us if floor_newest is None else floor_newest, floor_revoked, revoked_at)
            + struct.pack('>I', len(record)))
    body = head + record
    return body + hashlib.sha256(body).digest()


def decode_file(data):
    """(version, floor_newest_us, floor_revoked_us, this_update_us, status) of a store file's bytes."""
    version = data[4]
    if version == 2:
        newest, revoked = struct.unpack('>qq', data[32:48])
        rec = data[60:]
    else:
        newest, revoked, rec = None, None, data[32:]
    this_us = struct.unpack('>q', rec[8:16])[0]
    return version, newest, revoked, this_us, rec[32]


_EPOCH = __import__('datetime').datetime(1970, 1, 1)

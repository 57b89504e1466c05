"""Test PKI for mod_ocsp_guard: root and intermediate CAs, a delegated OCSP responder, server leaves,
hostile signers for fault tests, and the `openssl ca` style index.txt that the OCSP responder reads.

Everything is generated with python3-cryptography and written world-readable (keys included), so that
httpd's children (user www-data) can read it.
"""
import datetime
import os
import threading
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from .util import write_file

ORG = 'mod_ocsp_guard test'
USE_DEFAULT_URL = object()  # add_leaf(ocsp_url=...) default: the PKI's ocsp_url


@dataclass
class Credential:
    """A certificate and its private key, as PEM file paths."""
    name: str
    cert: str
    key: str


@dataclass
class Leaf(Credential):
    """A leaf issued by the intermediate; `chain` is leaf + intermediate (fullchain)."""
    chain: str
    serial: int
    serial_hex: str
    subject: str
    dns: list
    not_after: datetime.datetime
    revoked_at: datetime.datetime = None
    certificate: x509.Certificate = field(default=None, repr=False)

    @property
    def revoked(self):
        return self.revoked_at is not None


def _utcnow():
    return datetime.datetime.utcnow().replace(microsecond=0)


def _name(cn, ou=None):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _oneline(name):
    """The subject the way `openssl ca` writes it in index.txt: /O=.../OU=.../CN=..."""
    return ''.join(f'/{a.rfc4514_attribute_name}={a.value}' for a in name)


def _serial_hex(serial):
    text = f'{serial:X}'
    return text if len(text) % 2 == 0 else '0' + text


def _index_time(t):
    return t.strftime('%y%m%d%H%M%SZ')


def _new_key(key_type):
    if key_type == 'rsa':
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == 'ec':
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f'unknown key_type {key_type!r}')


def ec_leaves(pki, n):
    """Names of n ECDSA leaves budget0..budget<n-1> of the session PKI, issued on first use (tests share them)."""
    names = [f'budget{i}' for i in range(n)]
    for name in names:
        if name not in pki.leaves:
            pki.add_leaf(name, key_type='ec')
    return names


class PKI:
    """Builds the whole test PKI in base_dir (created if needed, mode 0755).

    Attributes: dir, root_pem, root_key, inter_pem, inter_key, responder_cert, responder_key, index,
    leaves (dict name -> Leaf: good, good-ec, revoked, nourl, muststaple, shared, plus add_leaf ones),
    lookalike / otherca (Credential), plainleaf (Leaf, not in `leaves`).
    """

    def __init__(self, base_dir, ocsp_url):
        self.dir = base_dir
        self.ocsp_url = ocsp_url
        os.makedirs(base_dir, exist_ok=True)
        os.chmod(base_dir, 0o755)
        self.index = os.path.join(base_dir, 'index.txt')
        write_file(self.index + '.attr', 'unique_subject = no\n')
        self.leaves = {}
        self._by_serial = {}  # serial -> Leaf of self.leaves: the front looks one up per request
        self._index_rows = []
        self._lock = threading.Lock()
        now = _utcnow()

        root_key = _new_key('rsa')
        root_name = _name('mod_ocsp_guard test root CA')
        root = self._sign(self._builder(root_name, root_name, root_key, now, 3650)
                          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                          .add_extension(self._ca_usage(), critical=True),
                          root_key, root_key)
        self.root_pem, self.root_key = self._save('root', root, root_key)

        self._inter_key = _new_key('rsa')
        inter_name = _name('mod_ocsp_guard test intermediate CA')
        self._inter = self._sign(self._builder(inter_name, root_name, self._inter_key, now, 3650)
                                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                                 .add_extension(self._ca_usage(), critical=True),
                                 root_key, root)
        self.inter_pem, self.inter_key = self._save('inter', self._inter, self._inter_key)

        responder_key = _new_key('rsa')
        responder_name = _name('mod_ocsp_guard test OCSP responder')
        responder = self._sign(self._builder(responder_name, inter_name, responder_key, now, 365)
                               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                               .add_extension(self._ee_usage(), critical=True)
                               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                                              critical=False)
                               .add_extension(x509.OCSPNoCheck(), critical=False),
                               self._inter_key, self._inter)
        self.responder_cert, self.responder_key = self._save('responder', responder, responder_key)

        lookalike_key = _new_key('rsa')
        lookalike = self._sign(self._builder(responder_name, responder_name, lookalike_key, now, 365)
                               .add_extension(self._ee_usage(), critical=True)
                               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]),
                                              critical=False),
                               lookalike_key, lookalike_key)
        self.lookalike = Credential('lookalike', *self._save('lookalike', lookalike, lookalike_key))

        otherca_key = _new_key('rsa')
        otherca_name = _name('mod_ocsp_guard test other CA')
        otherca = self._sign(self._builder(otherca_name, otherca_name, otherca_key, now, 3650)
                             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                             .add_extension(self._ca_usage(), critical=True),
                             otherca_key, otherca_key)
        self.otherca = Credential('otherca', *self._save('otherca', otherca, otherca_key))

        self.plainleaf = self._issue_leaf('plainleaf', 'rsa', ['plainleaf.localhost'], None, False, False)
        self.add_leaf('good', dns=['good.localhost'])
        self.add_leaf('good-ec', key_type='ec', dns=['good.localhost'])
        self.add_leaf('revoked', dns=['revoked.localhost'], revoked=True)
        self.add_leaf('nourl', dns=['nourl.localhost'], ocsp_url=None)
        self.add_leaf('muststaple', dns=['muststaple.localhost'], must_staple=True)
        self.add_leaf('shared', dns=['a.localhost', 'b.localhost'])

    @property
    def inter_cert(self):
        """The intermediate (issuer of every leaf) as a cryptography certificate."""
        return self._inter

    def add_leaf(self, name, key_type='rsa', dns=None, ocsp_url=USE_DEFAULT_URL, must_staple=False,
                 revoked=False, days=90):
        """Issue a leaf from the intermediate, record it in index.txt and in `leaves`; returns the Leaf.

        dns defaults to [<name>.localhost]; ocsp_url=None leaves out the AIA extension.
        """
        if name in self.leaves or name in ('root', 'inter', 'responder', 'lookalike', 'otherca', 'plainleaf'):
            raise ValueError(f'duplicate certificate name {name!r}')
        url = self.ocsp_url if ocsp_url is USE_DEFAULT_URL else ocsp_url
        leaf = self._issue_leaf(name, key_type, dns or [f'{name}.localhost'], url, must_staple, revoked, days)
        self.leaves[name] = leaf
        self._by_serial[leaf.serial] = leaf
        return leaf

    def by_serial(self, serial):
        """The Leaf (including plainleaf) with this serial number, or None."""
        if self.plainleaf is not None and self.plainleaf.serial == serial:
            return self.plainleaf
        return self._by_serial.get(serial)

    def _issue_leaf(self, name, key_type, dns, ocsp_url, must_staple, revoked, days=90):
        now = _utcnow()
        key = _new_key(key_type)
        subject = _name(dns[0], ou=name)
        builder = (self._builder(subject, self._inter.subject, key, now, days)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(self._ee_usage(key_encipherment=(key_type == 'rsa')), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False))
        if ocsp_url:
            builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
        if must_staple:  # TLS Feature status_request: DER 30:03:02:01:05
            builder = builder.add_extension(x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
        cert = self._sign(builder, self._inter_key, self._inter)
        cert_path, key_path = self._save(name, cert, key)
        chain_path = os.path.join(self.dir, f'{name}.chain.pem')
        write_file(chain_path, cert.public_bytes(serialization.Encoding.PEM)
                   + self._inter.public_bytes(serialization.Encoding.PEM))
        leaf = Leaf(name=name, cert=cert_path, key=key_path, chain=chain_path, serial=cert.serial_number,
                    serial_hex=_serial_hex(cert.serial_number), subject=_oneline(subject), dns=list(dns),
                    not_after=cert.not_valid_after, revoked_at=(now - datetime.timedelta(hours=1)) if revoked else None,
                    certificate=cert)
        self._add_index_row(leaf)
        return leaf

    def _add_index_row(self, leaf):
        if leaf.revoked:
            row = f'R\t{_index_time(leaf.not_after)}\t{_index_time(leaf.revoked_at)}'
        else:
            row = f'V\t{_index_time(leaf.not_after)}\t'
        with self._lock:
            self._index_rows.append(f'{row}\t{leaf.serial_hex}\tunknown\t{leaf.subject}\n')
            write_file(self.index, ''.join(self._index_rows))

    @staticmethod
    def _builder(subject, issuer_name, key, now, days):
        return (x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(issuer_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=days))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))

    @staticmethod
    def _sign(builder, issuer_key, issuer):
        """Sign with issuer_key; issuer is the issuing certificate, or the key itself when self-signed."""
        issuer_pub = issuer.public_key()
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_pub),
                                        critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    @staticmethod
    def _ca_usage():
        return x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                             encipher_only=False, decipher_only=False)

    @staticmethod
    def _ee_usage(key_encipherment=False):
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=key_encipherment,
                             data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                             encipher_only=False, decipher_only=False)

    def _save(self, name, cert, key):
        cert_path = os.path.join(self.dir, f'{name}.pem')
        key_path = os.path.join(self.dir, f'{name}.key')
        write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        write_file(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path

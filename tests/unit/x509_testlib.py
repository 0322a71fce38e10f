"""A grid-like test PKI for the X.509 login tests, made with the cryptography
library: a CA, a rogue CA of the same subject (another key), user
certificates (RSA keys: OpenNebula's x509 login signs its token with the
key's RSA private operation), an expired one, and a CRL.

    pki = TestPki(tmp_path)           # the trusted CA, whose subject hash starts with 0
    alice = pki.issue("/C=FR/O=StratusLab/CN=Alice Grid")
    alice.cert_path, alice.key_path, alice.dn
    pki.crl([revoked.serial])         # PEM file path
    pki.proxy(alice)                  # a grid proxy of alice's (RFC 3820), as one file
    make_proxy(cert, key, out)        # the same from any certificate and key files
                                      # (the site scenario's tests/test_x509_login.py)

The trusted CA's subject is chosen so that OpenSSL's subject hash starts
with a zero: OpenNebula's driver looks such a CA up without the zero, which
the frontend role answers with a link (roles/frontend/tasks/x509_auth.yml).
"""

import datetime
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

NOW = datetime.datetime.now(datetime.timezone.utc)
_OIDS = {"C": NameOID.COUNTRY_NAME, "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
         "CN": NameOID.COMMON_NAME, "DC": NameOID.DOMAIN_COMPONENT}


def name_from_slash(dn):
    """An x509.Name from OpenSSL's slash form /C=FR/O=X/CN=Y."""
    parts = [part.split("=", 1) for part in dn.strip("/").split("/")]
    return x509.Name([x509.NameAttribute(_OIDS[key], value) for key, value in parts])


def subject_hash(cert_pem):
    """OpenSSL's subject hash of a PEM certificate (the name of its <hash>.0 file)."""
    return subprocess.run(["openssl", "x509", "-noout", "-subject_hash"], input=cert_pem, capture_output=True,
                          text=True, check=True).stdout.strip()


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def make_proxy(cert_path, key_path, out_path, hours=12):
    """A grid proxy (RFC 3820) of the user certificate ``cert_path``: signed by the user's key
    ``key_path``, its subject the user's DN plus a CN, written to ``out_path`` as grid tools write
    one (the proxy, its RSA key, then the user's certificate), mode 0600; returns ``out_path``."""
    user_key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    user_cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    key = _key()
    serial = x509.random_serial_number()
    subject = x509.Name(list(user_cert.subject) + [x509.NameAttribute(NameOID.COMMON_NAME, str(serial % 10**9))])
    # proxyCertInfo (RFC 3820): inherit all of the user's rights.
    info = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.14"),
                                      bytes.fromhex("300c300a06082b06010505071501"))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(user_cert.subject)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=hours))
            .add_extension(info, critical=True)
            .sign(user_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    out_path = Path(out_path)
    out_path.write_text(_pem(cert) + key_pem + _pem(user_cert), encoding="utf-8")
    out_path.chmod(0o600)
    return out_path


@dataclass
class Issued:
    dn: str
    serial: int
    cert_path: Path
    key_path: Path


class TestPki:
    __test__ = False  # not a pytest test class

    def __init__(self, directory):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca_key = _key()
        self.ca_cert = self._find_zero_hash_ca()
        self.ca_path = self._write("ca.pem", _pem(self.ca_cert))
        # The rogue CA: the trusted CA's subject, another key.
        self.rogue_key = _key()
        self.rogue_cert = self._ca_cert(self.ca_cert.subject, self.rogue_key)
        self.rogue_path = self._write("rogue-ca.pem", _pem(self.rogue_cert))
        self._serial = 4096

    def _write(self, name, text):
        path = self.dir / name
        path.write_text(text, encoding="utf-8")
        return path

    def _ca_cert(self, subject, key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))

    def _find_zero_hash_ca(self):
        for index in range(2000):
            cert = self._ca_cert(name_from_slash("/C=FR/O=StratusLab Test/CN=Test Grid CA %d" % index), self.ca_key)
            if subject_hash(_pem(cert)).startswith("0"):
                return cert
        raise AssertionError("no CA subject with a subject hash starting with 0 in 2000 tries")

    @property
    def ca_hash(self):
        return subject_hash(_pem(self.ca_cert))

    def issue(self, dn, name=None, rogue=False, days=(-1, 30)):
        """A user certificate for ``dn`` (slash form) signed by the CA (or the rogue CA), valid from
        ``days[0]`` to ``days[1]`` days from now; its files are <name>.crt and <name>.key."""
        name = name or dn.rsplit("=", 1)[-1].replace(" ", "-").lower()
        self._serial += 1
        key = _key()
        signer_key, signer = (self.rogue_key, self.rogue_cert) if rogue else (self.ca_key, self.ca_cert)
        cert = (x509.CertificateBuilder().subject_name(name_from_slash(dn)).issuer_name(signer.subject)
                .public_key(key.public_key()).serial_number(self._serial)
                .not_valid_before(NOW + datetime.timedelta(days=days[0]))
                .not_valid_after(NOW + datetime.timedelta(days=days[1]))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(signer_key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption()).decode()
        cert_path = self._write(name + ".crt", _pem(cert))
        key_path = self._write(name + ".key", key_pem)
        key_path.chmod(0o600)
        return Issued(dn=dn, serial=self._serial, cert_path=cert_path, key_path=key_path)

    def proxy(self, issued, hours=12):
        """A proxy certificate of ``issued`` (make_proxy), written beside it as <name>.proxy."""
        return make_proxy(issued.cert_path, issued.key_path, self.dir / (issued.cert_path.stem + ".proxy"), hours)

    def crl(self, serials, name="ca.crl"):
        """A CRL of the trusted CA revoking ``serials``, as a PEM file."""
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.ca_cert.subject)
                   .last_update(NOW - datetime.timedelta(hours=1)).next_update(NOW + datetime.timedelta(days=7)))
        for serial in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW).build())
        crl = builder.sign(self.ca_key, hashes.SHA256())
        return self._write(name, crl.public_bytes(serialization.Encoding.PEM).decode())

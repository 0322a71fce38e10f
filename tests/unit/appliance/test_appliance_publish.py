"""tools/sl-publish: the stored file and its signed manifest, and the WebDAV upload over TLS.

The upload runs against a small in-process WebDAV stand-in (MKCOL, PUT and
basic auth over TLS with a test certificate); the real Apache2 repository is
exercised by the molecule scenario molecule/site (tests/test_appliances.py).
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import http.server
import os
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from appliance_testlib import PYTHON, SL_PUBLISH, LocalHTTPServer, pem_cert, pem_key, pki, sm

PASSWORD = "s3cret-publisher-pw"


def publish(tmp_path, *args, env=None, stdin=None):
    ident = pki()["alice"]
    key = tmp_path / "alice.key"
    cert = tmp_path / "alice.crt"
    key.write_bytes(ident.key_pem)
    cert.write_bytes(ident.cert_pem)
    cmd = [str(PYTHON), str(SL_PUBLISH), "--user", "alice", "--key", str(key), "--cert", str(cert),
           "--type", "base", "--name", "ttylinux", "--version", "9.7", "--os", "ttylinux", "--osversion", "9.7"]
    full_env = dict(os.environ)
    full_env.pop("SL_PUBLISH_PASSWORD", None)
    full_env.update(env or {})
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, timeout=60,
                          input=stdin)


@pytest.fixture
def raw_image(tmp_path):
    path = tmp_path / "ttylinux.img"
    path.write_bytes(os.urandom(50_000) + b"\0" * 100_000)
    return path


def test_output_mode_writes_a_gzip_and_a_signed_manifest(tmp_path, raw_image):
    out = tmp_path / "out"
    proc = publish(tmp_path, "--output", str(out), str(raw_image))
    assert proc.returncode == 0, proc.stderr
    stored = out / "ttylinux-9.7.img.gz"
    assert gzip.decompress(stored.read_bytes()) == raw_image.read_bytes()
    manifest = sm.parse((out / "ttylinux-9.7.img.manifest.xml").read_bytes())
    data = stored.read_bytes()
    assert manifest.size == len(data)
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.sha512 == hashlib.sha512(data).hexdigest()
    assert manifest.compression == "gz" and manifest.user == "alice"
    _, signer = sm.verify((out / "ttylinux-9.7.img.manifest.xml").read_bytes(),
                          sm.load_trusted([pki()["ca"].cert_pem]))
    assert signer.subject.startswith("CN=alice,")


def _xmlsec1_verify(manifest_file, trusted_pem, tmp_path):
    ca = tmp_path / "trusted.pem"
    ca.write_bytes(trusted_pem)
    return subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(ca), str(manifest_file)],
                          capture_output=True, text=True, timeout=60)


def test_xmlsec1_alone_verifies_the_published_manifest(tmp_path, raw_image):
    # The standard tool on its own, no project code: the signers' CA trusted, the
    # signer's certificate taken from the manifest's KeyInfo/X509Data.
    out = tmp_path / "out"
    assert publish(tmp_path, "--output", str(out), str(raw_image)).returncode == 0
    manifest_file = out / "ttylinux-9.7.img.manifest.xml"
    text = manifest_file.read_text()
    assert '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">' in text
    assert '<ds:Reference URI="">' in text and "#enveloped-signature" in text
    good = _xmlsec1_verify(manifest_file, pki()["ca"].cert_pem, tmp_path)
    assert good.returncode == 0 and "OK" in good.stdout + good.stderr, good.stderr
    # ... and refuses it with another CA, or once a value is changed.
    other = _xmlsec1_verify(manifest_file, pki()["other_ca"].cert_pem, tmp_path)
    assert other.returncode != 0
    manifest_file.write_text(text.replace("<version>9.7</version>", "<version>9.8</version>"))
    edited = _xmlsec1_verify(manifest_file, pki()["ca"].cert_pem, tmp_path)
    assert edited.returncode != 0 and "FAIL" in edited.stdout + edited.stderr


def test_compression_is_reproducible(tmp_path, raw_image):
    first = publish(tmp_path, "--output", str(tmp_path / "a"), str(raw_image))
    second = publish(tmp_path, "--output", str(tmp_path / "b"), str(raw_image))
    assert first.returncode == second.returncode == 0
    assert (tmp_path / "a/ttylinux-9.7.img.gz").read_bytes() == (tmp_path / "b/ttylinux-9.7.img.gz").read_bytes()


def test_an_already_gzipped_image_is_kept_as_it_is(tmp_path, raw_image):
    gz = tmp_path / "ready.img.gz"
    gz.write_bytes(gzip.compress(raw_image.read_bytes()))
    proc = publish(tmp_path, "--output", str(tmp_path / "out"), str(gz))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out/ttylinux-9.7.img.gz").read_bytes() == gz.read_bytes()


def test_plain_http_repository_is_refused_before_anything_is_sent(tmp_path, raw_image):
    proc = publish(tmp_path, "--repository", "http://127.0.0.1:9/", str(raw_image),
                   env={"SL_PUBLISH_PASSWORD": PASSWORD})
    assert proc.returncode == 1
    assert "only sent over https://" in proc.stderr


def test_password_is_not_an_option():
    proc = subprocess.run([str(PYTHON), str(SL_PUBLISH), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "--password" not in proc.stdout


# --- upload against a WebDAV stand-in over TLS ------------------------------------


class DavStandIn(LocalHTTPServer):
    """MKCOL/PUT/GET with basic auth over TLS; alice is a writer, bob a reader only."""

    def __init__(self, root, certfile, keyfile):
        self.root = root
        self.log = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _user(self):
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return None
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user if password == {"alice": PASSWORD, "bob": "bob-pw"}.get(user) else None

            def _answer(self, code):
                self.send_response(code)
                if code == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="repo"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _write(self, method):
                user = self._user()
                outer.log.append((method, self.path, user))
                if user is None:
                    return self._answer(401)
                if user != "alice":
                    return self._answer(403)
                path = os.path.join(outer.root, self.path.lstrip("/"))
                if method == "MKCOL":
                    if os.path.isdir(path):
                        return self._answer(405)
                    if not os.path.isdir(os.path.dirname(path.rstrip("/"))):
                        return self._answer(409)
                    os.mkdir(path)
                    return self._answer(201)
                if not os.path.isdir(os.path.dirname(path)):
                    return self._answer(409)
                length = int(self.headers["Content-Length"])
                with open(path, "wb") as handle:
                    handle.write(self.rfile.read(length))
                return self._answer(201)

            def do_MKCOL(self):
                self._write("MKCOL")

            def do_PUT(self):
                self._write("PUT")

        super().__init__(Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d/" % self.port
        self.start()


@pytest.fixture
def dav(tmp_path):
    ca = pki()["ca"]
    key = pki()["alice_ec"].key  # any key will do for the TLS server
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    (tmp_path / "tls.crt").write_bytes(pem_cert(cert))
    (tmp_path / "tls.key").write_bytes(pem_key(key))
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    root = tmp_path / "davroot"
    root.mkdir()
    server = DavStandIn(str(root), str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    yield server
    server.close()


def test_upload_creates_collections_then_puts_image_before_manifest(tmp_path, raw_image, dav):
    proc = publish(tmp_path, "--repository", dav.url, "--cafile", str(tmp_path / "ca.pem"), str(raw_image),
                   env={"SL_PUBLISH_PASSWORD": PASSWORD})
    assert proc.returncode == 0, proc.stderr
    assert [(m, p) for m, p, _u in dav.log] == [
        ("MKCOL", "/images/"), ("MKCOL", "/images/base/"), ("MKCOL", "/images/base/ttylinux/"),
        ("PUT", "/images/base/ttylinux/ttylinux-9.7.img.gz"),
        ("PUT", "/images/base/ttylinux/ttylinux-9.7.img.manifest.xml"),
    ]
    base = os.path.join(dav.root, "images/base/ttylinux")
    manifest = sm.parse(open(os.path.join(base, "ttylinux-9.7.img.manifest.xml"), "rb").read())
    sm.check_file(manifest, os.path.join(base, "ttylinux-9.7.img.gz"))
    assert PASSWORD not in proc.stdout + proc.stderr

    # Publishing again: existing collections answer 405, which is fine.
    again = publish(tmp_path, "--repository", dav.url, "--cafile", str(tmp_path / "ca.pem"), str(raw_image),
                    env={"SL_PUBLISH_PASSWORD": PASSWORD})
    assert again.returncode == 0, again.stderr


def test_wrong_password_is_reported_and_nothing_written(tmp_path, raw_image, dav):
    proc = publish(tmp_path, "--repository", dav.url, "--cafile", str(tmp_path / "ca.pem"), str(raw_image),
                   env={"SL_PUBLISH_PASSWORD": "wrong"})
    assert proc.returncode == 1 and "401 (wrong user or password)" in proc.stderr
    assert "wrong" not in proc.stdout
    assert not os.listdir(dav.root)


def test_server_certificate_is_checked(tmp_path, raw_image, dav):
    proc = publish(tmp_path, "--repository", dav.url, str(raw_image), env={"SL_PUBLISH_PASSWORD": PASSWORD})
    assert proc.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr
    assert dav.log == []

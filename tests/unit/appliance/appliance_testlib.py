"""Helpers of the appliance tests: test PKI, a local repository server, playbook runs.

Certificates are made with ``cryptography`` at test time (nothing secret is
stored in the repository). The repository server is Python's http.server on a
free port, serving a temporary directory laid out like the real tree.
"""

from __future__ import annotations

import datetime
import functools
import http.server
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "module_utils"))

import stratuslab_manifest as sm  # noqa: E402
import ansible.module_utils  # noqa: E402,F401  (the venv's ansible-core)

# The modules import their helpers as ansible.module_utils.<name>.
sys.modules.setdefault("ansible.module_utils.stratuslab_manifest", sm)


# ... and the OpenNebula layer as the package ansible.module_utils.stratuslab_one.
if str(REPO / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(REPO / "module_utils"))

# Playbook runs and a module's argument spec are the OpenNebula tests' helpers
# (tests/unit/opennebula: one_playbook.py, one_testlib.py).
sys.path.insert(0, str(REPO / "tests" / "unit" / "opennebula"))
from http_testlib import LocalHTTPServer  # noqa: E402
from one_playbook import PYTHON, run_tasks as _run_playbook_tasks  # noqa: E402
from one_testlib import main_kwargs  # noqa: E402

XSD = REPO / "module_utils" / "stratuslab_manifest.xsd"
SL_PUBLISH = REPO / "tools" / "sl-publish"


def module_spec(name):
    """(module object, kwargs its main() passes to AnsibleModule) of library/<name>.py."""
    return main_kwargs(name, lambda mod, fake: setattr(mod, "AnsibleModule", fake))


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "StratusLab test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class Identity:
    """A key and its certificate (PEM bytes in .key_pem / .cert_pem)."""

    def __init__(self, key, cert):
        self.key = key
        self.cert = cert
        self.key_pem = pem_key(key)
        self.cert_pem = pem_cert(cert)


def make_identity(cn, issuer=None, ca=False, kind="rsa", days=30, not_before_days=-1, digital_signature=True):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" \
        else ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=not_before_days))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False),
                       critical=True)
    )
    signing_key = issuer.key if issuer else key
    return Identity(key, builder.sign(signing_key, hashes.SHA256()))


@functools.lru_cache(maxsize=None)
def pki():
    """The test PKI, made once per session: a CA, signers it issued, and outsiders."""
    ca = make_identity("Test Signers CA", ca=True)
    other_ca = make_identity("Other CA", ca=True)
    return {
        "ca": ca,
        "alice": make_identity("alice", issuer=ca),
        "alice_ec": make_identity("alice-ec", issuer=ca, kind="ec"),
        "pinned": make_identity("pinned self-signed", kind="ec"),
        "mallory": make_identity("mallory", issuer=other_ca),
        "other_ca": other_ca,
        "expired": make_identity("expired", issuer=ca, days=-1, not_before_days=-10),
        "no_signing": make_identity("no-signing", issuer=ca, digital_signature=False),
    }


def publish_tree(root, image_bytes, signer, name="ttylinux", version="9.7", type_="base"):
    """Write a signed image + manifest into a repository tree; returns (manifest, image path, manifest path)."""
    directory = Path(root) / "images" / type_ / name
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / ("%s-%s.img.gz" % (name, version))
    image.write_bytes(image_bytes)
    manifest = sm.build(str(image), name=name, type=type_, version=version, arch="x86_64", os="ttylinux",
                        osversion="9.7", user="alice")
    document = sm.sign(manifest, signer.key_pem, signer.cert_pem)
    manifest_file = directory / manifest.manifest_file
    manifest_file.write_bytes(document)
    return sm.parse(document), image, manifest_file


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class RepoServer(LocalHTTPServer):
    """http.server on 127.0.0.1:<free port> serving ``root``; counts GETs by path."""

    def __init__(self, root):
        self.root = str(root)
        self.requests = []
        outer = self

        class Handler(_QuietHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=outer.root, **kwargs)

            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

        super().__init__(Handler)
        self.url = "http://127.0.0.1:%d/" % self.port


def run_tasks(tmp_path, tasks, check=False, diff=False, inventory=None, python=PYTHON):
    """Run tasks on localhost through ansible-playbook (one_playbook.run_tasks):
    (list of task results (json callback), output).

    inventory: INI text of an inventory holding localhost (default: localhost alone).
    python: the interpreter modules run with on localhost.
    """
    run = _run_playbook_tasks(tmp_path, tasks, check=check, diff=diff, inventory=inventory, python=python)
    results = [{key: value for key, value in result.items() if key != "_task"} for result in run.results]
    return results, run.stdout + run.stderr

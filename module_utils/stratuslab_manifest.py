# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""StratusLab appliance manifests: build, serialise, parse, sign and verify.

A manifest describes one file of the appliance repository
(``images/<type>/<name>/<name>-<version>.img.gz``) and sits beside it as
``<name>-<version>.img.manifest.xml``. Its format is defined by
``stratuslab_manifest.xsd`` (next to this file); this module enforces the
same rules with the standard library only, so hosts need no lxml.

Signing (docs/appliance-repository.md explains the choice): X.509. The
``<signature>`` element holds the signer's certificate (DER, base64) and the
signature value over the canonical form of the manifest without its
``<signature>`` element: W3C Canonical XML 2.0 with text trimmed
(``xml.etree.ElementTree.canonicalize(strip_text=True)``), UTF-8.
RSA (PKCS#1 v1.5, SHA-256) and ECDSA (SHA-256) keys are supported.

Trust: a signer is trusted when its certificate is one of the site's
trusted certificates (pinned), or was issued directly by one of them that
is a CA. Signing and verifying need ``cryptography`` (python3-cryptography
on Debian 12, version 38 or later); building and parsing do not.

Used by tools/sl-publish (the publisher's side) and library/appliance_verify.py
(the site's side).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from typing import List, Optional

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # signing/verifying say so; parsing still works
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc

FORMAT = "1"
MAX_MANIFEST_BYTES = 256 * 1024
CHUNK = 1024 * 1024

RSA_SHA256 = "rsa-pkcs1v15-sha256"
ECDSA_SHA256 = "ecdsa-sha256"
SIGNATURE_ALGORITHMS = (RSA_SHA256, ECDSA_SHA256)
COMPRESSIONS = ("gz", "bz2", "xz", "none")

# The same rules as stratuslab_manifest.xsd (tests/unit/appliance checks both agree).
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~\-]{0,127}\Z")
_TEXT = re.compile(r"[^ \t\r\n]([^\t\r\n]{0,254}[^ \t\r\n])?\Z")
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
_SIZE = re.compile(r"(0|[1-9][0-9]*)\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")
_SHA512 = re.compile(r"[0-9a-f]{128}\Z")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]+\Z")

# (element, attribute of Manifest, pattern, required), in document order.
FIELDS = (
    ("name", "name", _TOKEN, True),
    ("type", "type", _TOKEN, True),
    ("version", "version", _TOKEN, True),
    ("arch", "arch", _TOKEN, True),
    ("os", "os", _TOKEN, True),
    ("osversion", "osversion", _TOKEN, True),
    ("compression", "compression", None, True),
    ("created", "created", _UTC, True),
    ("user", "user", _TEXT, True),
    ("description", "description", _TEXT, False),
    ("size", "size", _SIZE, True),
    ("sha256", "sha256", _SHA256, True),
    ("sha512", "sha512", _SHA512, True),
)


class ManifestError(Exception):
    """A manifest that is not a valid format-1 manifest."""


class SignatureError(ManifestError):
    """A missing, malformed or wrong signature."""


class TrustError(ManifestError):
    """A correctly signed manifest whose signer the site does not trust."""


class ContentError(ManifestError):
    """A file whose size or checksums differ from its manifest."""


def require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise ManifestError(
            "signing and verifying manifests need the Python 'cryptography' package "
            "(python3-cryptography on Debian): %s" % CRYPTOGRAPHY_IMPORT_ERROR
        )


@dataclass
class Signature:
    algorithm: str
    certificate: bytes  # DER
    value: bytes


@dataclass
class Manifest:
    name: str
    type: str
    version: str
    arch: str
    os: str
    osversion: str
    compression: str
    created: str
    user: str
    size: int
    sha256: str
    sha512: str
    description: Optional[str] = None
    signature: Optional[Signature] = field(default=None, repr=False)

    # Where the files live in the repository tree.
    @property
    def directory(self):
        return "images/%s/%s" % (self.type, self.name)

    @property
    def image_file(self):
        suffix = "" if self.compression == "none" else "." + self.compression
        return "%s-%s.img%s" % (self.name, self.version, suffix)

    @property
    def manifest_file(self):
        return "%s-%s.img.manifest.xml" % (self.name, self.version)

    @property
    def image_path(self):
        return "%s/%s" % (self.directory, self.image_file)

    @property
    def manifest_path(self):
        return "%s/%s" % (self.directory, self.manifest_file)

    def to_dict(self):
        """The fields as plain values (what modules return), without the signature."""
        out = {attr: getattr(self, attr) for _tag, attr, _p, _r in FIELDS}
        out["image_path"] = self.image_path
        out["manifest_path"] = self.manifest_path
        out["signed"] = self.signature is not None
        return out


# --------------------------------------------------------------------------
# Building and checking fields
# --------------------------------------------------------------------------


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest_file(path):
    """(size, sha256 hex, sha512 hex) of a file, read once in chunks."""
    sha256 = hashlib.sha256()
    sha512 = hashlib.sha512()
    size = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            sha256.update(chunk)
            sha512.update(chunk)
    return size, sha256.hexdigest(), sha512.hexdigest()


def check_fields(manifest):
    """Raise ManifestError naming the first field that breaks the format."""
    for tag, attr, pattern, required in FIELDS:
        value = getattr(manifest, attr)
        if value is None:
            if required:
                raise ManifestError("manifest field '%s' is missing" % tag)
            continue
        if tag == "size":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ManifestError("manifest field 'size' must be a non-negative integer, got %r" % (value,))
            continue
        if not isinstance(value, str):
            raise ManifestError("manifest field '%s' must be a string, got %r" % (tag, value))
        if tag == "compression":
            if value not in COMPRESSIONS:
                raise ManifestError(
                    "manifest field 'compression' must be one of %s, got %r" % (", ".join(COMPRESSIONS), value)
                )
            continue
        if not pattern.match(value):
            raise ManifestError("manifest field '%s' has an invalid value %r" % (tag, value))
    sig = manifest.signature
    if sig is not None and sig.algorithm not in SIGNATURE_ALGORITHMS:
        raise ManifestError("unknown signature algorithm %r" % sig.algorithm)


def build(image_path, name, type, version, arch, os, osversion, user,
          compression="gz", created=None, description=None):
    """An unsigned manifest for the stored (already compressed) file image_path."""
    size, sha256, sha512 = digest_file(image_path)
    manifest = Manifest(
        name=name, type=type, version=version, arch=arch, os=os, osversion=osversion,
        compression=compression, created=created or utc_now(), user=user,
        description=description or None, size=size, sha256=sha256, sha512=sha512,
    )
    check_fields(manifest)
    return manifest


# --------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def to_element(manifest, signed=True):
    check_fields(manifest)
    root = ET.Element("manifest", {"format": FORMAT})
    for tag, attr, _pattern, _required in FIELDS:
        value = getattr(manifest, attr)
        if value is None:
            continue
        ET.SubElement(root, tag).text = str(value)
    if signed and manifest.signature is not None:
        sig = ET.SubElement(root, "signature", {"algorithm": manifest.signature.algorithm})
        ET.SubElement(sig, "certificate").text = _b64(manifest.signature.certificate)
        ET.SubElement(sig, "value").text = _b64(manifest.signature.value)
    return root


def _indent(elem, level=0):
    # ET.indent exists from Python 3.9 only; targets may be older.
    pad = "\n" + "  " * level
    if len(elem):
        if not (elem.text or "").strip():
            elem.text = pad + "  "
        for child in elem:
            _indent(child, level + 1)
        if not (child.tail or "").strip():
            child.tail = pad
    if level and not (elem.tail or "").strip():
        elem.tail = pad


def serialize(manifest):
    """The manifest document, UTF-8 bytes, indented, with an XML declaration."""
    root = to_element(manifest)
    _indent(root)
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def _canonical(root):
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True).encode("utf-8")


def canonical_bytes(manifest):
    """What the signature covers: C14N 2.0 (text trimmed) of the manifest without <signature>."""
    return _canonical(to_element(manifest, signed=False))


def _child_text(elem, what):
    if len(elem):
        raise ManifestError("%s must hold text only" % what)
    return (elem.text or "").strip()


def parse(data):
    """A Manifest from document bytes; ManifestError for anything outside format 1.

    DOCTYPEs (and so entities) are refused before parsing. The document must
    hold exactly what the format allows: its canonical form is compared with
    the canonical form rebuilt from the parsed fields, so nothing a signature
    would not cover can hide in it.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError("manifest is larger than %d bytes" % MAX_MANIFEST_BYTES)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ManifestError("manifest must not contain a DOCTYPE or entity declarations")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ManifestError("manifest is not well-formed XML: %s" % exc) from None
    if root.tag != "manifest":
        raise ManifestError("root element must be <manifest>, got <%s>" % root.tag)
    if root.get("format") != FORMAT:
        raise ManifestError("unsupported manifest format %r (this is format %s)" % (root.get("format"), FORMAT))
    if set(root.attrib) != {"format"}:
        raise ManifestError("unexpected attributes on <manifest>: %s" % sorted(set(root.attrib) - {"format"}))

    known = {tag: attr for tag, attr, _p, _r in FIELDS}
    values = {}
    signature = None
    for child in root:
        if child.tag == "signature":
            if signature is not None:
                raise ManifestError("more than one <signature>")
            signature = _parse_signature(child)
            continue
        if child.tag not in known:
            raise ManifestError("unexpected element <%s> in manifest" % child.tag)
        if signature is not None:
            raise ManifestError("<signature> must be the last element")
        if known[child.tag] in values:
            raise ManifestError("element <%s> appears twice" % child.tag)
        if child.attrib:
            raise ManifestError("unexpected attributes on <%s>" % child.tag)
        values[known[child.tag]] = _child_text(child, "<%s>" % child.tag)

    for tag, attr, _p, required in FIELDS:
        if required and attr not in values:
            raise ManifestError("manifest field '%s' is missing" % tag)
    size = values.get("size", "")
    if not _SIZE.match(size):
        raise ManifestError("manifest field 'size' has an invalid value %r" % size)
    values["size"] = int(size)
    manifest = Manifest(signature=signature, **values)
    check_fields(manifest)

    unsigned = ET.Element(root.tag, root.attrib)
    unsigned.extend(child for child in root if child.tag != "signature")
    unsigned.text = None
    for child in unsigned:
        child.tail = None
    if _canonical(unsigned) != canonical_bytes(manifest):
        raise ManifestError("manifest elements are out of order or hold content outside format %s" % FORMAT)
    return manifest


def _parse_signature(elem):
    algorithm = elem.get("algorithm")
    if set(elem.attrib) != {"algorithm"} or algorithm not in SIGNATURE_ALGORITHMS:
        raise ManifestError("<signature> needs algorithm= one of %s" % ", ".join(SIGNATURE_ALGORITHMS))
    if [child.tag for child in elem] != ["certificate", "value"]:
        raise ManifestError("<signature> must hold <certificate> then <value>")
    decoded = []
    for child in elem:
        text = "".join(_child_text(child, "<%s>" % child.tag).split())
        if not _BASE64.match(text) or child.attrib:
            raise ManifestError("<signature>/<%s> must be base64" % child.tag)
        try:
            decoded.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise ManifestError("<signature>/<%s> is not valid base64" % child.tag) from None
    return Signature(algorithm=algorithm, certificate=decoded[0], value=decoded[1])


# --------------------------------------------------------------------------
# Signing and verifying
# --------------------------------------------------------------------------


def _algorithm_for(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return RSA_SHA256
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ECDSA_SHA256
    raise SignatureError("only RSA and ECDSA keys are supported, not %s" % type(public_key).__name__)


def sign(manifest, key_pem, cert_pem, key_password=None):
    """A copy of manifest signed with the private key; cert_pem is the signer's certificate."""
    require_cryptography()
    if isinstance(key_pem, str):
        key_pem = key_pem.encode("ascii")
    if isinstance(cert_pem, str):
        cert_pem = cert_pem.encode("ascii")
    if isinstance(key_password, str):
        key_password = key_password.encode("utf-8")
    try:
        key = serialization.load_pem_private_key(key_pem, password=key_password)
    except (TypeError, ValueError) as exc:
        raise SignatureError("cannot load the signing key: %s" % exc) from None
    cert = _load_one_cert(cert_pem, "the signer's certificate")
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        raise SignatureError("the signing key does not belong to the certificate %s" % cert.subject.rfc4514_string())
    algorithm = _algorithm_for(key.public_key())
    data = canonical_bytes(replace(manifest, signature=None))
    if algorithm == RSA_SHA256:
        value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        value = key.sign(data, ec.ECDSA(hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    return replace(manifest, signature=Signature(algorithm=algorithm, certificate=der, value=value))


def _load_one_cert(pem, what):
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SignatureError("cannot load %s: %s" % (what, exc)) from None


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def load_trusted(pems):
    """x509 certificates from PEM texts (each may hold several certificates)."""
    require_cryptography()
    certs = []
    for index, pem in enumerate(pems):
        if isinstance(pem, str):
            pem = pem.encode("ascii")
        blocks = _PEM_CERT.findall(pem)
        if not blocks:
            raise TrustError("trusted signer #%d holds no PEM certificate" % (index + 1))
        for block in blocks:
            certs.append(_load_one_cert(block, "trusted signer #%d" % (index + 1)))
    return certs


def fingerprint(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def _utc(cert, name):
    # cryptography >= 42 has *_utc; Debian 12's 38 has naive UTC datetimes.
    value = getattr(cert, name + "_utc", None)
    if value is None:
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def _check_validity(cert, now, what):
    if now < _utc(cert, "not_valid_before"):
        raise TrustError("%s %s is not valid before %s" % (what, cert.subject.rfc4514_string(), _utc(cert, "not_valid_before")))
    if now > _utc(cert, "not_valid_after"):
        raise TrustError("%s %s expired on %s" % (what, cert.subject.rfc4514_string(), _utc(cert, "not_valid_after")))


def _extension(cert, oid_class):
    try:
        return cert.extensions.get_extension_for_class(oid_class).value
    except x509.ExtensionNotFound:
        return None


def _issued_by(cert, issuer):
    """True when issuer (a CA) signed cert."""
    if cert.issuer != issuer.subject:
        return False
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        return False
    public_key = issuer.public_key()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                              cert.signature_hash_algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True


@dataclass
class Signer:
    subject: str
    issuer: str
    fingerprint: str
    trusted_by: str  # "pinned" or "issued by <CA subject>"

    def to_dict(self):
        return {"subject": self.subject, "issuer": self.issuer, "sha256_fingerprint": self.fingerprint,
                "trusted_by": self.trusted_by}


def verify_signature(manifest, trusted, now=None):
    """The Signer of a correctly signed manifest from a trusted signer.

    trusted: certificates from load_trusted(). Raises SignatureError (unsigned,
    bad value) or TrustError (signer not trusted, expired, wrong key usage).
    """
    require_cryptography()
    if manifest.signature is None:
        raise SignatureError("manifest %s is not signed" % manifest.manifest_file)
    if not trusted:
        raise TrustError("no trusted signers are configured: every manifest is refused")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    sig = manifest.signature
    try:
        cert = x509.load_der_x509_certificate(sig.certificate)
    except ValueError as exc:
        raise SignatureError("the embedded signer certificate cannot be read: %s" % exc) from None
    subject = cert.subject.rfc4514_string()
    print_ = fingerprint(cert)

    trusted_by = None
    for anchor in trusted:
        if fingerprint(anchor) == print_:
            trusted_by = "pinned"
            break
    if trusted_by is None:
        for anchor in trusted:
            if _issued_by(cert, anchor):
                _check_validity(anchor, now, "trusted CA")
                trusted_by = "issued by " + anchor.subject.rfc4514_string()
                break
    if trusted_by is None:
        raise TrustError(
            "signer %s (issuer %s, SHA-256 fingerprint %s) is not one of the site's trusted signers"
            % (subject, cert.issuer.rfc4514_string(), print_)
        )
    _check_validity(cert, now, "signer certificate")
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise TrustError("signer certificate %s does not allow digital signatures (keyUsage)" % subject)

    public_key = cert.public_key()
    if _algorithm_for(public_key) != sig.algorithm:
        raise SignatureError("signature algorithm %s does not match the signer's %s key"
                             % (sig.algorithm, type(public_key).__name__))
    data = canonical_bytes(manifest)
    try:
        if sig.algorithm == RSA_SHA256:
            public_key.verify(sig.value, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            public_key.verify(sig.value, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError(
            "the signature of %s does not match its content: the manifest was changed after signing"
            % manifest.manifest_file
        ) from None
    return Signer(subject=subject, issuer=cert.issuer.rfc4514_string(), fingerprint=print_, trusted_by=trusted_by)


def check_content(manifest, size, sha256, sha512):
    """Raise ContentError unless a file's measured size and digests are the manifest's."""
    if size != manifest.size:
        raise ContentError("%s is %d bytes, its manifest says %d" % (manifest.image_file, size, manifest.size))
    if sha256 != manifest.sha256:
        raise ContentError("%s has SHA-256 %s, its manifest says %s" % (manifest.image_file, sha256, manifest.sha256))
    if sha512 != manifest.sha512:
        raise ContentError("%s has SHA-512 %s, its manifest says %s" % (manifest.image_file, sha512, manifest.sha512))


def check_file(manifest, path):
    check_content(manifest, *digest_file(path))

# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""StratusLab appliance manifests: build, serialise, parse, sign and verify.

A manifest describes one file of the appliance repository
(``images/<type>/<name>/<name>-<version>.img.gz``) and sits beside it as
``<name>-<version>.img.manifest.xml``. Its format is defined by
``stratuslab_manifest.xsd`` (next to this file); this module enforces the
same rules with the standard library only, so hosts need no lxml.

Signing (docs/appliance-repository.md explains the choice): a W3C XML
Signature, enveloped, as the last child of ``<manifest>``: one Reference
to the whole document (``URI=""``) with the enveloped-signature transform
and Exclusive XML Canonicalization, SHA-256 digest, RSA-SHA256 or
ECDSA-SHA256, and the signer's X.509 certificate in KeyInfo/X509Data.
Signatures are made and checked by ``xmlsec1`` (the XML Security Library's
command line tool, Debian package xmlsec1), so any XML-DSig tool verifies
them; this module writes the signature template, runs xmlsec1, and parses
the signature strictly so that what xmlsec1 verified is exactly what the
manifest's fields say.

Trust: a signer is trusted when its certificate chains to one of the site's
trusted certificates as xmlsec1 (OpenSSL) sees it: it is one of them and
self-signed, or was issued directly by one of them that is a CA; each
within its validity period. The same rules are checked here first with
``cryptography`` (python3-cryptography on Debian 12, version 38 or later)
so that a refusal says which signer and why; building and parsing need
neither.

Used by tools/sl-publish (the publisher's side) and library/appliance_verify.py
(the site's side).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
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

FORMAT = "2"
MAX_MANIFEST_BYTES = 256 * 1024
CHUNK = 1024 * 1024

# W3C XML Signature: the one profile manifests use.
DSIG = "http://www.w3.org/2000/09/xmldsig#"
ENVELOPED = DSIG + "enveloped-signature"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_METHODS = (EXC_C14N, C14N)
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
DIGEST_METHODS = (SHA256, SHA512)
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SIGNATURE_ALGORITHMS = (RSA_SHA256, ECDSA_SHA256)
XMLSEC1 = "xmlsec1"
XMLSEC1_TIMEOUT = 120
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
    """A document that is not a valid manifest of this format."""


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
    """The parts of an enveloped ds:Signature a reader needs (what xmlsec1 checks is the document)."""

    algorithm: str  # SignatureMethod URI
    certificate: bytes  # the signer's X.509 certificate, DER
    value: bytes
    c14n: str = EXC_C14N
    digest_method: str = SHA256
    digest: bytes = b""


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


def _tag(name):
    return "{%s}%s" % (DSIG, name)


def to_element(manifest):
    """The manifest's own elements (never its signature: a signed document is kept as signed)."""
    check_fields(manifest)
    root = ET.Element("manifest", {"format": FORMAT})
    for tag, attr, _pattern, _required in FIELDS:
        value = getattr(manifest, attr)
        if value is None:
            continue
        ET.SubElement(root, tag).text = str(value)
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


_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def serialize(manifest):
    """The unsigned manifest document, UTF-8 bytes, indented, with an XML declaration."""
    root = to_element(manifest)
    _indent(root)
    body = ET.tostring(root, encoding="unicode")
    return (_DECLARATION + body + "\n").encode("utf-8")


# The enveloped signature xmlsec1 fills in: DigestValue, SignatureValue and
# the signer's certificate (from the --privkey-pem key,cert pair).
_SIGNATURE_TEMPLATE = """  <ds:Signature xmlns:ds="%(dsig)s">
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="%(c14n)s"/>
      <ds:SignatureMethod Algorithm="%(algorithm)s"/>
      <ds:Reference URI="">
        <ds:Transforms>
          <ds:Transform Algorithm="%(enveloped)s"/>
          <ds:Transform Algorithm="%(c14n)s"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="%(digest)s"/>
        <ds:DigestValue/>
      </ds:Reference>
    </ds:SignedInfo>
    <ds:SignatureValue/>
    <ds:KeyInfo>
      <ds:X509Data>
        <ds:X509Certificate/>
      </ds:X509Data>
    </ds:KeyInfo>
  </ds:Signature>
"""


def signature_template(manifest, algorithm=RSA_SHA256):
    """The manifest document with an empty enveloped signature, ready for ``xmlsec1 --sign``."""
    if algorithm not in SIGNATURE_ALGORITHMS:
        raise SignatureError("unknown signature algorithm %r" % algorithm)
    body = serialize(manifest).decode("utf-8")
    end = body.rindex("</manifest>")
    signature = _SIGNATURE_TEMPLATE % {"dsig": DSIG, "c14n": EXC_C14N, "algorithm": algorithm,
                                       "enveloped": ENVELOPED, "digest": SHA256}
    return (body[:end] + signature + body[end:]).encode("utf-8")


def _canonical(root):
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True).encode("utf-8")


def canonical_bytes(manifest):
    """C14N 2.0 (text trimmed) of the manifest's fields: what parse() compares a document with."""
    return _canonical(to_element(manifest))


def _child_text(elem, what):
    if len(elem):
        raise ManifestError("%s must hold text only" % what)
    return (elem.text or "").strip()


_XML_DECLARATION = re.compile(rb"\A(\xef\xbb\xbf)?<\?xml[ \t\r\n][^>]*\?>")


def _refuse_unsigned_markup(data):
    """DOCTYPEs, entities, comments and processing instructions are refused.

    A DOCTYPE could define entities; comments are outside what a signature
    over URI="" covers, and processing instructions mean nothing here.
    """
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ManifestError("manifest must not contain a DOCTYPE or entity declarations")
    if b"<!--" in data:
        raise ManifestError("manifest must not contain XML comments (a signature does not cover them)")
    if b"<?" in _XML_DECLARATION.sub(b"", data, count=1):
        raise ManifestError("manifest must not contain processing instructions")


def parse(data):
    """A Manifest from document bytes; ManifestError for anything outside this format.

    The document must hold exactly what the format allows: its canonical
    form is compared with the canonical form rebuilt from the parsed fields,
    text between elements must be blank, and the signature, when there is
    one, must have the one shape of docs/appliance-repository.md; so nothing
    can hide in a manifest beside what its fields say.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError("manifest is larger than %d bytes" % MAX_MANIFEST_BYTES)
    _refuse_unsigned_markup(data)
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
    if (root.text or "").strip() or any((child.tail or "").strip() for child in root):
        raise ManifestError("manifest holds text between its elements")

    known = {tag: attr for tag, attr, _p, _r in FIELDS}
    values = {}
    signature = None
    for child in root:
        if child.tag == _tag("Signature"):
            if signature is not None:
                raise ManifestError("more than one <ds:Signature>")
            signature = _parse_signature(child)
            continue
        if child.tag not in known:
            raise ManifestError("unexpected element <%s> in manifest" % child.tag)
        if signature is not None:
            raise ManifestError("<ds:Signature> must be the last element")
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
    for child in root:
        if child.tag != _tag("Signature"):
            copy = ET.SubElement(unsigned, child.tag, child.attrib)
            copy.text = child.text
    if _canonical(unsigned) != canonical_bytes(manifest):
        raise ManifestError("manifest elements are out of order or hold content outside format %s" % FORMAT)
    return manifest


def _only(elem, tags, what):
    """elem's children, which must be exactly the ds: elements tags, in order."""
    children = list(elem)
    if [child.tag for child in children] != [_tag(t) for t in tags]:
        raise SignatureError("<ds:%s> must hold %s" % (what, ", ".join("<ds:%s>" % t for t in tags)))
    if (elem.text or "").strip() or any((child.tail or "").strip() for child in children):
        raise SignatureError("<ds:%s> holds text between its elements" % what)
    return children


def _algorithm(elem, allowed, what):
    if set(elem.attrib) != {"Algorithm"} or len(elem) or (elem.text or "").strip():
        raise SignatureError("<ds:%s> must have an Algorithm attribute and nothing else" % what)
    value = elem.get("Algorithm")
    if value not in allowed:
        raise SignatureError("<ds:%s> Algorithm %r is not one of %s" % (what, value, ", ".join(allowed)))
    return value


def _base64_text(elem, what):
    if elem.attrib or len(elem):
        raise SignatureError("<ds:%s> must hold base64 text only" % what)
    text = "".join((elem.text or "").split())
    if not text or not _BASE64.match(text):
        raise SignatureError("<ds:%s> must hold base64 text" % what)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("<ds:%s> is not valid base64" % what) from None


def _parse_signature(elem):
    """The one signature shape manifests use: enveloped, URI="", the signer's certificate in X509Data."""
    if elem.attrib:
        raise SignatureError("unexpected attributes on <ds:Signature>")
    signed_info, value, key_info = _only(elem, ("SignedInfo", "SignatureValue", "KeyInfo"), "Signature")
    if signed_info.attrib or key_info.attrib:
        raise SignatureError("unexpected attributes on <ds:SignedInfo> or <ds:KeyInfo>")
    c14n, method, reference = _only(signed_info, ("CanonicalizationMethod", "SignatureMethod", "Reference"),
                                    "SignedInfo")
    c14n = _algorithm(c14n, C14N_METHODS, "CanonicalizationMethod")
    method = _algorithm(method, SIGNATURE_ALGORITHMS, "SignatureMethod")
    if dict(reference.attrib) != {"URI": ""}:
        raise SignatureError('<ds:Reference> must be URI="" (the whole manifest) and nothing else')
    transforms, digest_method, digest = _only(reference, ("Transforms", "DigestMethod", "DigestValue"), "Reference")
    steps = list(transforms)
    if transforms.attrib or not steps or len(steps) > 2 or [s.tag for s in steps] != [_tag("Transform")] * len(steps):
        raise SignatureError("<ds:Transforms> must hold the enveloped-signature transform, then at most a C14N one")
    _only(transforms, ("Transform",) * len(steps), "Transforms")
    if _algorithm(steps[0], (ENVELOPED,), "Transform") != ENVELOPED:
        raise SignatureError("the first transform must be enveloped-signature")
    if len(steps) == 2:
        _algorithm(steps[1], C14N_METHODS, "Transform")
    digest_method = _algorithm(digest_method, DIGEST_METHODS, "DigestMethod")
    (x509_data,) = _only(key_info, ("X509Data",), "KeyInfo")
    if x509_data.attrib:
        raise SignatureError("unexpected attributes on <ds:X509Data>")
    (certificate,) = _only(x509_data, ("X509Certificate",), "X509Data")
    return Signature(algorithm=method, certificate=_base64_text(certificate, "X509Certificate"),
                     value=_base64_text(value, "SignatureValue"), c14n=c14n, digest_method=digest_method,
                     digest=_base64_text(digest, "DigestValue"))


# --------------------------------------------------------------------------
# Signing and verifying with xmlsec1
# --------------------------------------------------------------------------


def _algorithm_for(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return RSA_SHA256
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ECDSA_SHA256
    raise SignatureError("only RSA and ECDSA keys are supported, not %s" % type(public_key).__name__)


def find_xmlsec1(xmlsec1=XMLSEC1):
    path = shutil.which(xmlsec1)
    if path is None:
        raise ManifestError("%s is not installed (Debian package xmlsec1): it makes and checks the manifests' "
                            "XML signatures" % xmlsec1)
    return path


def _xmlsec1_errors(output):
    """The reasons xmlsec1 gives (OpenSSL's certificate messages), or its last lines."""
    reasons = []
    for match in re.finditer(r"err=(\d+); ?msg=([^:\n]+)", output):
        text = match.group(2).strip()
        if text not in reasons:
            reasons.append(text)
    if reasons:
        return "; ".join(reasons)
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("func=")]
    return "; ".join(lines[-3:]) or "no output"


def sign(manifest, key_pem, cert_pem, key_password=None, xmlsec1=XMLSEC1):
    """The signed manifest document (bytes): ``xmlsec1 --sign`` of signature_template().

    The key is loaded here (so a passphrase never reaches a command line and
    the key is checked against the certificate) and handed to xmlsec1
    unencrypted through a pipe, never a file.
    """
    require_cryptography()
    if manifest.signature is not None:
        manifest = replace(manifest, signature=None)
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
    if _public_bytes(cert.public_key()) != _public_bytes(key.public_key()):
        raise SignatureError("the signing key does not belong to the certificate %s" % cert.subject.rfc4514_string())
    template = signature_template(manifest, _algorithm_for(key.public_key()))
    plain = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    program = find_xmlsec1(xmlsec1)
    workdir = tempfile.mkdtemp(prefix="sl-manifest-")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, plain)  # a PEM key is far smaller than a pipe's buffer
        os.close(write_end)
        write_end = None
        for name, data in (("template.xml", template), ("signer.pem", cert_pem)):
            with open(os.path.join(workdir, name), "wb") as handle:
                handle.write(data)
        out = os.path.join(workdir, "signed.xml")
        proc = subprocess.run(
            [program, "--sign", "--privkey-pem", "/dev/fd/%d,%s" % (read_end, os.path.join(workdir, "signer.pem")),
             "--output", out, os.path.join(workdir, "template.xml")],
            pass_fds=(read_end,), capture_output=True, text=True, timeout=XMLSEC1_TIMEOUT, check=False)
        if proc.returncode != 0 or not os.path.isfile(out):
            raise SignatureError("xmlsec1 --sign failed: %s" % _xmlsec1_errors(proc.stdout + proc.stderr))
        with open(out, "rb") as handle:
            return handle.read()
    finally:
        os.close(read_end)
        if write_end is not None:
            os.close(write_end)
        shutil.rmtree(workdir, ignore_errors=True)


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


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


def _signed_by(cert, issuer):
    """True when issuer's key made cert's signature."""
    if cert.issuer != issuer.subject:
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


def _issued_by(cert, issuer):
    """True when issuer (a CA: basicConstraints CA:TRUE) signed cert."""
    constraints = _extension(issuer, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        return False
    return _signed_by(cert, issuer)


@dataclass
class Signer:
    subject: str
    issuer: str
    fingerprint: str
    trusted_by: str  # "pinned" or "issued by <CA subject>"

    def to_dict(self):
        return {"subject": self.subject, "issuer": self.issuer, "sha256_fingerprint": self.fingerprint,
                "trusted_by": self.trusted_by}


def check_signer(manifest, trusted, now=None):
    """The Signer of a signed manifest when the site trusts its certificate.

    The rules of xmlsec1 --trusted-pem (OpenSSL), checked here so that a
    refusal names the signer and the reason: the signer's certificate is
    one of the trusted certificates and self-signed (pinned), or was issued
    by one of them that is a CA; both within their validity periods; and its
    keyUsage, when it has one, allows digitalSignature. Raises SignatureError
    (unsigned, unreadable certificate) or TrustError.
    """
    require_cryptography()
    if manifest.signature is None:
        raise SignatureError("manifest %s is not signed (it has no <ds:Signature>)" % manifest.manifest_file)
    if not trusted:
        raise TrustError("no trusted signers are configured: every manifest is refused")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    sig = manifest.signature
    try:
        cert = x509.load_der_x509_certificate(sig.certificate)
    except ValueError as exc:
        raise SignatureError("the signer certificate in <ds:X509Certificate> cannot be read: %s" % exc) from None
    subject = cert.subject.rfc4514_string()
    print_ = fingerprint(cert)

    trusted_by = None
    for anchor in trusted:
        if fingerprint(anchor) == print_:
            if not _signed_by(cert, cert):
                raise TrustError(
                    "signer %s is listed in the site's trusted signers but was issued by %s: list the CA %s "
                    "instead (only self-signed certificates can be trusted on their own)"
                    % (subject, cert.issuer.rfc4514_string(), cert.issuer.rfc4514_string()))
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
    if _algorithm_for(cert.public_key()) != sig.algorithm:
        raise SignatureError("signature algorithm %s does not match the signer's %s key"
                             % (sig.algorithm, type(cert.public_key()).__name__))
    return Signer(subject=subject, issuer=cert.issuer.rfc4514_string(), fingerprint=print_, trusted_by=trusted_by)


def pem_to_der(pem):
    """DER bytes of the first certificate of a PEM text."""
    require_cryptography()
    if isinstance(pem, str):
        pem = pem.encode("ascii")
    return _load_one_cert(pem, "certificate").public_bytes(serialization.Encoding.DER)


def xmlsec1_verify(data, trusted, xmlsec1=XMLSEC1, manifest_file="the manifest", pubkey_cert_pem=None):
    """Run ``xmlsec1 --verify`` on the document with each trusted certificate as --trusted-pem.

    Only the signer certificate in X509Data may give the key (no KeyValue,
    no key by name) and only a same-document URI="" reference is followed.
    pubkey_cert_pem instead checks the signature with that certificate's key
    and no chain (the publisher's own check). The files live in a private
    temporary directory, removed on return. Raises SignatureError with
    xmlsec1's reason.
    """
    program = find_xmlsec1(xmlsec1)
    workdir = tempfile.mkdtemp(prefix="sl-manifest-")
    try:
        cmd = [program, "--verify", "--enabled-reference-uris", "empty"]
        if pubkey_cert_pem is not None:
            path = os.path.join(workdir, "signer.pem")
            with open(path, "wb") as handle:
                handle.write(pubkey_cert_pem if isinstance(pubkey_cert_pem, bytes) else pubkey_cert_pem.encode())
            cmd += ["--pubkey-cert-pem", path]
        else:
            cmd += ["--enabled-key-data", "x509"]
        for index, cert in enumerate(trusted):
            path = os.path.join(workdir, "trusted-%d.pem" % index)
            with open(path, "wb") as handle:
                handle.write(cert.public_bytes(serialization.Encoding.PEM))
            cmd += ["--trusted-pem", path]
        document = os.path.join(workdir, "manifest.xml")
        with open(document, "wb") as handle:
            handle.write(data)
        proc = subprocess.run(cmd + [document], capture_output=True, text=True, timeout=XMLSEC1_TIMEOUT,
                              check=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    output = proc.stdout + proc.stderr
    if proc.returncode == 0 and re.search(r"^OK$", output, re.M):
        return
    if re.search(r"^FAIL$", output, re.M):
        raise SignatureError("the signature of %s does not match its content: the manifest was changed after "
                             "signing (xmlsec1 --verify: FAIL)" % manifest_file)
    raise SignatureError("xmlsec1 --verify refused %s: %s" % (manifest_file, _xmlsec1_errors(output)))


def verify(data, trusted, now=None, xmlsec1=XMLSEC1):
    """(Manifest, Signer) of signed document bytes from a trusted signer.

    parse() (the format and the signature's shape), check_signer() (who
    signed, for a clear refusal), then xmlsec1_verify() (the signature
    itself, and the signer's chain by xmlsec1's own rules). Raises
    ManifestError (format), SignatureError or TrustError.
    """
    manifest = parse(data)
    signer = check_signer(manifest, trusted, now=now)
    xmlsec1_verify(data if isinstance(data, bytes) else data.encode("utf-8"), trusted, xmlsec1=xmlsec1,
                   manifest_file=manifest.manifest_file)
    return manifest, signer


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

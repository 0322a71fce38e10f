"""module_utils/stratuslab_manifest.py: format, schema agreement, signing, trust, tampering."""

from __future__ import annotations

import base64
import datetime
import os
import re
import subprocess
from dataclasses import replace

import pytest
import xmlschema

from appliance_testlib import XSD, pki, sm

SCHEMA = xmlschema.XMLSchema(str(XSD))


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "ttylinux-9.7.img.gz"
    path.write_bytes(os.urandom(4096) + b"tail")
    return path


@pytest.fixture
def manifest(image):
    return sm.build(str(image), name="ttylinux", type="base", version="9.7", arch="x86_64", os="ttylinux",
                    osversion="9.7", user="alice", created="2026-11-25T12:00:00Z", description="A tiny Linux")


def signed(manifest, who="alice"):
    """The signed document (bytes) xmlsec1 makes with who's key and certificate."""
    ident = pki()[who]
    return sm.sign(manifest, ident.key_pem, ident.cert_pem)


def trusted(*names):
    return sm.load_trusted([pki()[n].cert_pem for n in names])


# --- format ------------------------------------------------------------------


def test_build_measures_the_stored_file(image, manifest):
    data = image.read_bytes()
    import hashlib

    assert manifest.size == len(data)
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.sha512 == hashlib.sha512(data).hexdigest()
    assert manifest.image_path == "images/base/ttylinux/ttylinux-9.7.img.gz"
    assert manifest.manifest_path == "images/base/ttylinux/ttylinux-9.7.img.manifest.xml"


def test_serialised_manifest_round_trips_and_is_schema_valid(manifest):
    data = sm.serialize(manifest)
    SCHEMA.validate(data.decode())
    assert sm.parse(data) == manifest


def test_signed_manifest_is_schema_valid_and_keeps_its_fields(manifest):
    data = signed(manifest)
    SCHEMA.validate(data.decode())
    parsed = sm.parse(data)
    assert replace(parsed, signature=None) == manifest
    assert parsed.signature.algorithm == sm.RSA_SHA256
    assert parsed.signature.certificate == sm.pem_to_der(pki()["alice"].cert_pem)


BAD_DOCUMENTS = {
    "unknown element": lambda d: d.replace("<user>alice</user>", "<user>alice</user><extra>x</extra>"),
    "missing field": lambda d: d.replace("<arch>x86_64</arch>", ""),
    "slash in name": lambda d: d.replace("<name>ttylinux</name>", "<name>../etc</name>"),
    "bad compression": lambda d: d.replace("<compression>gz</compression>", "<compression>zip</compression>"),
    "upper-case digest": lambda d: re.sub(r"<sha256>[0-9a-f]", "<sha256>A", d),
    "short digest": lambda d: re.sub(r"<sha512>[0-9a-f]", "<sha512>", d),
    "negative size": lambda d: d.replace("<size>", "<size>-"),
    "local time": lambda d: d.replace("12:00:00Z", "12:00:00+01:00"),
    "wrong format": lambda d: d.replace('format="2"', 'format="1"'),
    "old signature element": lambda d: d.replace("</manifest>", '<signature algorithm="ecdsa-sha256"/></manifest>'),
    "out of order": lambda d: d.replace("<type>base</type>", "").replace("<arch>", "<type>base</type><arch>"),
    "duplicate": lambda d: d.replace("<os>ttylinux</os>", "<os>ttylinux</os><os>ttylinux</os>"),
    "extra attribute": lambda d: d.replace("<size>", '<size unit="kB">'),
    "blank user": lambda d: d.replace("<user>alice</user>", "<user> </user>"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCUMENTS))
def test_library_and_schema_refuse_the_same_documents(manifest, case):
    data = sm.serialize(manifest).decode()
    bad = BAD_DOCUMENTS[case](data)
    assert bad != data
    assert not SCHEMA.is_valid(bad), case
    with pytest.raises(sm.ManifestError):
        sm.parse(bad.encode())


def test_doctype_and_entities_are_refused(manifest):
    data = sm.serialize(manifest).decode()
    bad = data.replace('<manifest', '<!DOCTYPE m [<!ENTITY x "y">]><manifest', 1)
    with pytest.raises(sm.ManifestError, match="DOCTYPE"):
        sm.parse(bad.encode())


def test_build_refuses_a_bad_field(image):
    with pytest.raises(sm.ManifestError, match="'version'"):
        sm.build(str(image), name="t", type="base", version="1/2", arch="x86_64", os="t", osversion="1", user="a")


# --- signing and trust (xmlsec1 makes and checks every signature here) -------


def verify(data, *names):
    return sm.verify(data, trusted(*names))


def xmlsec1_alone(data, tmp_path, *names):
    """``xmlsec1 --verify`` with no project code: (ok, output)."""
    doc = tmp_path / "m.xml"
    doc.write_bytes(data)
    cmd = ["xmlsec1", "--verify"]
    for name in names:
        path = tmp_path / ("%s.pem" % name)
        path.write_bytes(pki()[name].cert_pem)
        cmd += ["--trusted-pem", str(path)]
    proc = subprocess.run(cmd + [str(doc)], capture_output=True, text=True, timeout=60)
    return proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("who,algorithm", [("alice", sm.RSA_SHA256), ("alice_ec", sm.ECDSA_SHA256)])
def test_good_manifest_from_a_signer_issued_by_a_trusted_ca_is_verified(manifest, tmp_path, who, algorithm):
    data = signed(manifest, who)
    parsed, signer = verify(data, "ca")
    assert parsed.signature.algorithm == algorithm
    assert parsed.sha256 == manifest.sha256 and parsed.size == manifest.size
    assert signer.trusted_by.startswith("issued by ") and "Test Signers CA" in signer.trusted_by
    ok, out = xmlsec1_alone(data, tmp_path, "ca")
    assert ok, out


def test_pinned_self_signed_signer_is_accepted(manifest, tmp_path):
    data = signed(manifest, "pinned")
    assert verify(data, "pinned")[1].trusted_by == "pinned"
    assert xmlsec1_alone(data, tmp_path, "pinned")[0]


def test_ca_issued_leaf_listed_alone_is_refused_with_advice(manifest, tmp_path):
    # xmlsec1 (OpenSSL) trusts no CA-issued certificate on its own: say so, and what to list instead.
    data = signed(manifest)
    with pytest.raises(sm.TrustError, match="list the CA CN=Test Signers CA"):
        verify(data, "alice")
    assert not xmlsec1_alone(data, tmp_path, "alice")[0]


def test_untrusted_signer_is_refused(manifest, tmp_path):
    data = signed(manifest, "mallory")
    with pytest.raises(sm.TrustError, match="mallory.*not one of the site's trusted signers"):
        verify(data, "ca", "pinned")
    assert not xmlsec1_alone(data, tmp_path, "ca", "pinned")[0]


def test_untrusted_signer_is_refused_by_xmlsec1_too(manifest):
    # The second line of defence on its own: xmlsec1's verdict, not the module's pre-check.
    with pytest.raises(sm.SignatureError, match="xmlsec1 --verify refused.*unable to get local issuer"):
        sm.xmlsec1_verify(signed(manifest, "mallory"), trusted("ca"))


def test_a_trusted_non_ca_does_not_vouch_for_others(manifest):
    with pytest.raises(sm.TrustError):
        verify(signed(manifest, "alice_ec"), "alice")


def test_expired_signer_is_refused(manifest, tmp_path):
    data = signed(manifest, "expired")
    with pytest.raises(sm.TrustError, match="signer certificate CN=expired.*expired on"):
        verify(data, "ca")
    ok, out = xmlsec1_alone(data, tmp_path, "ca")
    assert not ok and "certificate has expired" in out
    with pytest.raises(sm.SignatureError, match="certificate has expired"):
        sm.xmlsec1_verify(data, trusted("ca"))


def test_signer_without_digital_signature_usage_is_refused(manifest):
    with pytest.raises(sm.TrustError, match="keyUsage"):
        verify(signed(manifest, "no_signing"), "ca")


def test_no_trusted_signers_refuses_everything(manifest):
    with pytest.raises(sm.TrustError, match="no trusted signers"):
        verify(signed(manifest), *())


def test_unsigned_manifest_is_refused(manifest, tmp_path):
    data = sm.serialize(manifest)
    with pytest.raises(sm.SignatureError, match="not signed"):
        verify(data, "ca")
    assert not xmlsec1_alone(data, tmp_path, "ca")[0]


EDITS = {
    "version": ("<version>9.7</version>", "<version>9.8</version>"),
    "sha256": ("<sha256>", "<sha256>0"),
    "size": ("<size>", "<size>1"),
    "user": ("<user>alice</user>", "<user>mallory</user>"),
    "description": ("<description>A tiny Linux</description>", ""),
    "whitespace": ("<name>", "\n  <name>"),
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_manifest_changed_after_signing_is_refused(manifest, tmp_path, field):
    data = signed(manifest).decode()
    old, new = EDITS[field]
    if field == "sha256":
        new = "<sha256>" + ("0" if data[data.index("<sha256>") + 8] != "0" else "1")
        data = data.replace("<sha256>" + data[data.index("<sha256>") + 8], new, 1)
    elif field == "size":
        data = data.replace("<size>%d<" % manifest.size, "<size>%d<" % (manifest.size + 1))
    else:
        assert old in data
        data = data.replace(old, new, 1)
    with pytest.raises(sm.SignatureError, match="changed after signing"):
        verify(data.encode(), "ca")
    ok, out = xmlsec1_alone(data.encode(), tmp_path, "ca")
    assert not ok and "FAIL" in out


def test_swapped_certificate_is_refused(manifest):
    # Mallory signs, then puts alice's (trusted) certificate in the manifest.
    data = signed(manifest, "mallory").decode()
    start = data.index("<ds:X509Certificate>") + len("<ds:X509Certificate>")
    end = data.index("</ds:X509Certificate>")
    alice = base64.b64encode(sm.pem_to_der(pki()["alice"].cert_pem)).decode()
    with pytest.raises(sm.SignatureError, match="xmlsec1"):
        verify((data[:start] + alice + data[end:]).encode(), "ca")


def _reference_elsewhere(d):
    return d.replace('<ds:Reference URI="">', '<ds:Reference URI="#other">')


BAD_SIGNATURES = {
    "reference elsewhere": _reference_elsewhere,
    "no enveloped transform": lambda d: re.sub(r'<ds:Transform Algorithm="[^"]*enveloped-signature"/>\s*', "", d),
    "sha1 method": lambda d: d.replace("xmldsig-more#rsa-sha256", "xmldsig#rsa-sha1"),
    "key value instead of certificate": lambda d: re.sub(r"<ds:X509Data>.*</ds:X509Data>",
                                                         "<ds:KeyValue/>", d, flags=re.S),
    "two certificates": lambda d: re.sub(r"(<ds:X509Certificate>.*</ds:X509Certificate>)", r"\1\1", d,
                                         flags=re.S),
    "comment": lambda d: d.replace("<name>ttylinux</name>", "<name>ttylinux</name><!-- not signed -->"),
    "signature not last": lambda d: re.sub(r"(<ds:Signature.*</ds:Signature>)\s*</manifest>",
                                           r"</manifest>", d, flags=re.S).replace(
        "<name>", re.search(r"<ds:Signature.*</ds:Signature>", d, re.S).group(0) + "<name>"),
}


@pytest.mark.parametrize("case", sorted(BAD_SIGNATURES))
def test_signatures_outside_the_profile_are_refused_before_xmlsec1(manifest, case):
    data = signed(manifest).decode()
    bad = BAD_SIGNATURES[case](data)
    assert bad != data
    with pytest.raises(sm.ManifestError):
        sm.parse(bad.encode())


def test_signing_key_must_match_the_certificate(manifest):
    with pytest.raises(sm.SignatureError, match="does not belong"):
        sm.sign(manifest, pki()["alice"].key_pem, pki()["mallory"].cert_pem)


def test_encrypted_key_signs_with_its_passphrase(manifest):
    from cryptography.hazmat.primitives import serialization

    key = pki()["alice"].key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.BestAvailableEncryption(b"pass phrase"))
    data = sm.sign(manifest, key, pki()["alice"].cert_pem, key_password="pass phrase")
    assert verify(data, "ca")[1].subject.startswith("CN=alice,")


def test_verification_time_is_checked_against_validity(manifest):
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
    with pytest.raises(sm.TrustError):
        sm.verify(signed(manifest), trusted("ca"), now=later)


# --- content -----------------------------------------------------------------


def test_matching_file_passes(image, manifest):
    sm.check_file(manifest, str(image))


def test_flipped_byte_is_refused(image, manifest):
    data = bytearray(image.read_bytes())
    data[100] ^= 0x01
    image.write_bytes(bytes(data))
    with pytest.raises(sm.ContentError, match="SHA-256"):
        sm.check_file(manifest, str(image))


def test_truncated_file_is_refused(image, manifest):
    image.write_bytes(image.read_bytes()[:-1])
    with pytest.raises(sm.ContentError, match="bytes"):
        sm.check_file(manifest, str(image))


def test_trusted_signers_must_hold_certificates():
    with pytest.raises(sm.TrustError, match="#1 holds no PEM certificate"):
        sm.load_trusted(["not a certificate"])

"""module_utils/stratuslab_manifest.py: format, schema agreement, signing, trust, tampering."""

from __future__ import annotations

import base64
import datetime
import os
import re
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


@pytest.mark.parametrize("sign_it", [False, True])
def test_serialised_manifest_round_trips_and_is_schema_valid(manifest, sign_it):
    if sign_it:
        manifest = signed(manifest)
    data = sm.serialize(manifest)
    SCHEMA.validate(data.decode())
    assert sm.parse(data) == manifest


def test_reformatting_keeps_the_signature_valid(manifest):
    data = sm.serialize(signed(manifest)).decode()
    squashed = re.sub(r">\s+<", "><", data)
    assert sm.verify_signature(sm.parse(squashed), trusted("ca")).subject.startswith("CN=alice,")


BAD_DOCUMENTS = {
    "unknown element": lambda d: d.replace("<user>alice</user>", "<user>alice</user><extra>x</extra>"),
    "missing field": lambda d: d.replace("<arch>x86_64</arch>", ""),
    "slash in name": lambda d: d.replace("<name>ttylinux</name>", "<name>../etc</name>"),
    "bad compression": lambda d: d.replace("<compression>gz</compression>", "<compression>zip</compression>"),
    "upper-case digest": lambda d: re.sub(r"<sha256>[0-9a-f]", "<sha256>A", d),
    "short digest": lambda d: re.sub(r"<sha512>[0-9a-f]", "<sha512>", d),
    "negative size": lambda d: d.replace("<size>", "<size>-"),
    "local time": lambda d: d.replace("12:00:00Z", "12:00:00+01:00"),
    "wrong format": lambda d: d.replace('format="1"', 'format="2"'),
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


# --- signing and trust -------------------------------------------------------


@pytest.mark.parametrize("who,algorithm", [("alice", sm.RSA_SHA256), ("alice_ec", sm.ECDSA_SHA256)])
def test_signer_issued_by_a_trusted_ca_is_accepted(manifest, who, algorithm):
    doc = sm.parse(sm.serialize(signed(manifest, who)))
    assert doc.signature.algorithm == algorithm
    signer = sm.verify_signature(doc, trusted("ca"))
    assert signer.trusted_by.startswith("issued by ") and "Test Signers CA" in signer.trusted_by


def test_pinned_self_signed_signer_is_accepted(manifest):
    signer = sm.verify_signature(sm.parse(sm.serialize(signed(manifest, "pinned"))), trusted("pinned"))
    assert signer.trusted_by == "pinned"


def test_pinned_leaf_certificate_is_accepted_without_its_ca(manifest):
    signer = sm.verify_signature(signed(manifest), trusted("alice"))
    assert signer.trusted_by == "pinned"


def test_untrusted_signer_is_refused(manifest):
    with pytest.raises(sm.TrustError, match="mallory.*not one of the site's trusted signers"):
        sm.verify_signature(signed(manifest, "mallory"), trusted("ca", "pinned"))


def test_a_trusted_non_ca_does_not_vouch_for_others(manifest):
    # alice is trusted (pinned) but is no CA: a certificate claiming alice as issuer is not trusted.
    with pytest.raises(sm.TrustError):
        sm.verify_signature(signed(manifest, "alice_ec"), trusted("alice"))


def test_expired_signer_is_refused(manifest):
    with pytest.raises(sm.TrustError, match="expired"):
        sm.verify_signature(signed(manifest, "expired"), trusted("ca"))


def test_signer_without_digital_signature_usage_is_refused(manifest):
    with pytest.raises(sm.TrustError, match="keyUsage"):
        sm.verify_signature(signed(manifest, "no_signing"), trusted("ca"))


def test_no_trusted_signers_refuses_everything(manifest):
    with pytest.raises(sm.TrustError, match="no trusted signers"):
        sm.verify_signature(signed(manifest), [])


def test_unsigned_manifest_is_refused(manifest):
    with pytest.raises(sm.SignatureError, match="not signed"):
        sm.verify_signature(manifest, trusted("ca"))


@pytest.mark.parametrize("field,value", [("version", "9.8"), ("sha256", "0" * 64), ("size", 1),
                                         ("user", "mallory"), ("description", None)])
def test_edited_manifest_is_refused(manifest, field, value):
    doc = signed(manifest)
    tampered = sm.parse(sm.serialize(replace(doc, **{field: value})))
    with pytest.raises(sm.SignatureError, match="changed after signing"):
        sm.verify_signature(tampered, trusted("ca"))


def test_edited_manifest_text_is_refused(manifest):
    data = sm.serialize(signed(manifest)).decode().replace("<arch>x86_64</arch>", "<arch>aarch64</arch>")
    with pytest.raises(sm.SignatureError):
        sm.verify_signature(sm.parse(data.encode()), trusted("ca"))


def test_swapped_certificate_is_refused(manifest):
    # Mallory signs, then puts alice's (trusted) certificate in the manifest.
    doc = signed(manifest, "mallory")
    alice_der = base64.b64decode(b"".join(pki()["alice"].cert_pem.splitlines()[1:-1]))
    doc = replace(doc, signature=replace(doc.signature, certificate=alice_der))
    with pytest.raises(sm.SignatureError, match="changed after signing"):
        sm.verify_signature(doc, trusted("ca"))


def test_signing_key_must_match_the_certificate(manifest):
    with pytest.raises(sm.SignatureError, match="does not belong"):
        sm.sign(manifest, pki()["alice"].key_pem, pki()["mallory"].cert_pem)


def test_verification_time_is_checked_against_validity(manifest):
    doc = signed(manifest)
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
    with pytest.raises(sm.TrustError):
        sm.verify_signature(doc, trusted("ca"), now=later)


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

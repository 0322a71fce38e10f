# -*- coding: utf-8 -*-
"""Checks of the certificates, keys and CAs a site file names, on the control machine.

The site file names its own TLS files (a server's certificate, its key, the
CA that signed it) and its trusted appliance signers as files on the control
machine; the roles copy them to the hosts. These filters read them where the
roles read them, and return one message per mistake (``[]`` when there is
none), for one preflight assert that reports every mistake at once:

* ``sl_tls_errors(cert, key, ca)``: each file named exists and is what it must
  be (PEM certificates, an unencrypted PEM private key), the key is the
  certificate's, the certificate is valid today, and with a CA, the CA file
  holds a CA certificate that issued the certificate (through the
  intermediate CAs the certificate file holds after it);
* ``sl_signer_errors(signers)``: each trusted signer (PEM text, or a PEM file)
  holds X.509 certificates;
* ``sl_openpgp_key_problem(content)``: an apt repository's signing key (read
  from a host with slurp) is an OpenPGP key.

A file encrypted with ansible-vault (a key, usually) is read from
``contents``, ``{path: text}`` that the caller decrypts with the
``ansible.builtin.unvault`` lookup; without it, only its presence is checked.

The ``cryptography`` library (a dependency of ansible-core) is imported at
the first check, not when Ansible loads this file. Every filter is a plain
function; ``FilterModule`` only maps names to them.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import os
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_PEM_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_VAULT = b"$ANSIBLE_VAULT"
_ARMOR = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"


def _crypto():
    """cryptography's x509 and serialization modules."""
    try:
        from cryptography import x509  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    except ImportError as error:  # pragma: no cover - ansible-core depends on it
        raise AnsibleFilterError("stratuslab_pki: the Python library 'cryptography' is missing on the control "
                                 "machine: %s" % error) from error
    return x509, serialization


def _utc(cert, name):
    """A validity bound as an aware datetime (cryptography >= 42 has *_utc)."""
    value = getattr(cert, name + "_utc", None)
    if value is None:  # pragma: no cover - older cryptography
        value = getattr(cert, name).replace(tzinfo=datetime.timezone.utc)
    return value


def _read(path, label, contents, errors):
    """The bytes of a file on the control machine, or None after saying why not."""
    if not isinstance(path, str):
        errors.append("%s %r is not a path; expected the path of a file on the control machine" % (label, path))
        return None
    if not os.path.exists(path):
        errors.append("%s %r does not exist on the control machine" % (label, path))
        return None
    if not os.path.isfile(path):
        errors.append("%s %r is not a file on the control machine" % (label, path))
        return None
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as error:
        errors.append("%s %r cannot be read on the control machine: %s" % (label, path, error.strerror))
        return None
    if data.startswith(_VAULT):
        text = (contents or {}).get(path)
        if text is None:
            return None  # encrypted, and not decrypted for us: its presence is all we know
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
    return data


def _certificates(data, label, errors, what):
    """The x509 certificates of a PEM text, or [] after saying why there are none."""
    x509, _ = _crypto()
    blocks = _PEM_CERT.findall(data)
    if not blocks:
        errors.append("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----); expected %s" % (label, what))
        return []
    certs = []
    for block in blocks:
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError as error:
            errors.append("%s holds a certificate that does not parse (%s); expected %s" % (label, error, what))
            return []
    return certs


def _validity_errors(cert, label, now):
    if now < _utc(cert, "not_valid_before"):
        return ["%s (%s) is not valid before %s" % (label, cert.subject.rfc4514_string(),
                                                    _utc(cert, "not_valid_before").date())]
    if now > _utc(cert, "not_valid_after"):
        return ["%s (%s) expired on %s; expected a certificate valid today" % (
            label, cert.subject.rfc4514_string(), _utc(cert, "not_valid_after").date())]
    return []


def _private_key(data, label, errors):
    _, serialization = _crypto()
    if not _PEM_KEY.search(data):
        errors.append("%s holds no PEM private key (-----BEGIN ... PRIVATE KEY-----); expected the certificate's "
                      "private key in PEM" % label)
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        errors.append("%s is protected by a passphrase; expected a key without one (the service starts unattended: "
                      "keep the file in ansible-vault instead)" % label)
    except ValueError as error:
        errors.append("%s does not parse as a private key (%s); expected a PEM private key" % (label, error))
    return None


def _public_bytes(key):
    _, serialization = _crypto()
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _is_ca(cert):
    x509, _ = _crypto()
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert, issuer):
    """Whether ``issuer`` signed ``cert``."""
    from cryptography.exceptions import InvalidSignature  # pylint: disable=import-outside-toplevel

    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chain_errors(certs, cas, labels):
    """The certificate file's leaf must lead, through the file's other certificates, to a CA of the CA file."""
    current, rest = certs[0], list(certs[1:])
    for _ in range(len(certs) + 1):
        if any(_issued_by(current, ca) for ca in cas):
            return []
        parent = next((cert for cert in rest if _issued_by(current, cert)), None)
        if parent is None:
            break
        rest.remove(parent)
        current = parent
    return ["%s is not issued by %s (issuer %s; CA %s): expected the CA that signed the certificate, its "
            "intermediate CAs in the certificate file after it" % (
                labels["cert"], labels["ca"], current.issuer.rfc4514_string(),
                ", ".join(ca.subject.rfc4514_string() for ca in cas))]


def sl_tls_errors(cert, key="", ca="", labels=None, contents=None, prefix="", now=None):
    """Every mistake in a server's TLS files (paths on the control machine); ``[]`` when there is none.

    Empty paths are not checked (the role then makes its own). ``labels`` names
    them in messages: ``{'cert': ..., 'key': ..., 'ca': ...}``. ``contents``:
    ``{path: text}`` of vault-encrypted files, decrypted. ``now`` (an aware
    datetime) is for tests.
    """
    labels = dict({"cert": "cert", "key": "key", "ca": "ca"}, **(labels or {}))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    errors = []
    data = {}
    for role, path in (("cert", cert), ("key", key), ("ca", ca)):
        if path in (None, ""):
            continue
        data[role] = _read(path, labels[role], contents, errors)
    certs = cas = []
    private = None
    if data.get("cert") is not None:
        certs = _certificates(data["cert"], "%s %r" % (labels["cert"], cert), errors,
                              "the server's certificate in PEM, its intermediate CAs after it")
        if _PEM_KEY.search(data["cert"]):
            errors.append("%s %r holds a private key too; expected the certificate alone (it is copied readable "
                          "by all): give the key in %s" % (labels["cert"], cert, labels["key"]))
        if certs:
            errors += _validity_errors(certs[0], "%s %r" % (labels["cert"], cert), now)
    if data.get("key") is not None:
        private = _private_key(data["key"], "%s %r" % (labels["key"], key), errors)
    if data.get("ca") is not None:
        cas = _certificates(data["ca"], "%s %r" % (labels["ca"], ca), errors, "the CA's certificate in PEM")
        not_ca = [one.subject.rfc4514_string() for one in cas if not _is_ca(one)]
        if not_ca:
            errors.append("%s %r holds %s, which is not a CA (no basicConstraints CA:TRUE); expected the "
                          "certificate of the CA that signed %s" % (labels["ca"], ca, "; ".join(not_ca),
                                                                    labels["cert"]))
            cas = []
    if certs and private is not None and _public_bytes(certs[0].public_key()) != _public_bytes(private.public_key()):
        errors.append("%s %r is not the key of %s %r; expected the private key the certificate was issued for" % (
            labels["key"], key, labels["cert"], cert))
    if certs and cas:
        errors += _chain_errors(certs, cas, labels)
    return ["%s%s." % (prefix, error) for error in errors]


def sl_signer_errors(signers, label="signers", contents=None, prefix="", now=None):
    """Every trusted signer that is not X.509 certificates in PEM; ``[]`` when all are.

    Each item is PEM text (it holds ``-----BEGIN``) or the path of a PEM file
    on the control machine; each must hold at least one certificate that
    parses, valid today. A certificate that is neither a CA nor self-signed
    trusts nobody (xmlsec1's rules, docs/appliance-repository.md) unless the
    CA that issued it is listed too: it is refused, naming that CA.
    ``contents``: ``{path: text}`` of vault-encrypted files.
    """
    if isinstance(signers, (str, bytes, Mapping)) or not isinstance(signers, (list, tuple)):
        return ["%s%s is %r; expected a list of certificates (PEM text or files on the control machine)." % (
            prefix, label, signers)]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    errors = []
    listed = []
    for index, item in enumerate(signers):
        what = "%s[%d]" % (label, index)
        if isinstance(item, str) and "-----BEGIN" in item:
            data = item.encode("utf-8", "surrogateescape")
        elif isinstance(item, str) and item:
            what += " (%s)" % item
            data = _read(item, what, contents, errors)
            if data is None:
                continue
        else:
            errors.append("%s is %r; expected a certificate in PEM, or the path of a PEM file on the control "
                          "machine" % (what, item))
            continue
        for cert in _certificates(data, what, errors, "X.509 certificates in PEM (a signer's, or a CA's)"):
            errors += _validity_errors(cert, what, now)
            listed.append((what, cert))
    subjects = {cert.subject for _what, cert in listed if _is_ca(cert)}
    for what, cert in listed:
        if not _is_ca(cert) and cert.issuer != cert.subject and cert.issuer not in subjects:
            errors.append("%s holds %s, issued by %s: a certificate issued by a CA trusts nobody on its own "
                          "(the signature check follows xmlsec1's rules); list that CA instead"
                          % (what, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()))
    return ["%s%s." % (prefix, error) for error in errors]


def sl_openpgp_key_problem(content):
    """Why base64 ``content`` (slurp's) is no OpenPGP key (armored, or binary packets), or ``''``."""
    try:
        data = base64.b64decode(content or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        return "cannot be read"
    if not data:
        return "is empty"
    if data.lstrip().startswith(_ARMOR) or data[0] & 0x80:
        return ""
    return "is not an OpenPGP public key (armored -----BEGIN PGP PUBLIC KEY BLOCK-----, or a binary keyring)"


class FilterModule:
    """StratusLab certificate and key checks."""

    def filters(self):
        return {
            "sl_tls_errors": sl_tls_errors,
            "sl_signer_errors": sl_signer_errors,
            "sl_openpgp_key_problem": sl_openpgp_key_problem,
        }

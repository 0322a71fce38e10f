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
  from a host with slurp) is an OpenPGP key;
* ``sl_x509_ca_errors(cas)``: each CA a site trusts for X.509 logins (PEM text
  or a file) is one CA certificate valid today, its CRL a CRL that CA signed,
  its CRL URL an http(s) URL;
* ``sl_x509_user_errors(users)``: each certificate DN maps to one OpenNebula
  user, each DN in OpenSSL's slash form (``/C=../O=../CN=..``).

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
import json
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


def _pem_item(item, what, contents, errors, expected):
    """The bytes of a PEM text or a PEM file on the control machine, or None after saying why not."""
    if isinstance(item, str) and "-----BEGIN" in item:
        return item.encode("utf-8", "surrogateescape")
    if isinstance(item, str) and item:
        return _read(item, "%s (%s)" % (what, item), contents, errors)
    errors.append("%s is %r; expected %s" % (what, item, expected))
    return None


_CRL_URL = re.compile(r"^https?://[^\s/]+/\S*$")


def sl_x509_ca_errors(cas, label="cas", contents=None, prefix="", now=None):
    """Every mistake in the CAs trusted for X.509 logins; ``[]`` when there is none.

    Each item is ``{cert, crl, crl_url}``: ``cert`` one CA certificate
    (basicConstraints CA:TRUE) valid today, PEM text or a PEM file on the
    control machine; ``crl`` (optional) a PEM CRL issued and signed by that
    CA; ``crl_url`` (optional) an http(s) URL. Two CAs of one subject would
    need the same file name (the subject's hash) in the CA directory.
    ``contents``: ``{path: text}`` of vault-encrypted files.
    """
    if not isinstance(cas, (list, tuple)):
        return ["%s%s is %r; expected a list of {cert, crl, crl_url}." % (prefix, label, cas)]
    x509, _ = _crypto()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    errors = []
    subjects = {}
    for index, item in enumerate(cas):
        what = "%s[%d]" % (label, index)
        if not isinstance(item, Mapping):
            errors.append("%s is %r; expected {cert: <CA certificate>, crl: <its CRL>, crl_url: <URL>}" % (what, item))
            continue
        data = _pem_item(item.get("cert"), what + ".cert", contents, errors,
                         "the CA's certificate in PEM, or the path of a PEM file on the control machine")
        ca = None
        if data is not None:
            certs = _certificates(data, what + ".cert", errors, "the CA's certificate in PEM")
            if len(certs) > 1:
                errors.append("%s.cert holds %d certificates; expected one CA certificate per item" % (what, len(certs)))
            elif certs and not _is_ca(certs[0]):
                errors.append("%s.cert (%s) is not a CA certificate (no basicConstraints CA:TRUE); expected the "
                              "certificate of a CA that issues the users' certificates"
                              % (what, certs[0].subject.rfc4514_string()))
            elif certs:
                ca = certs[0]
                errors += _validity_errors(ca, what + ".cert", now)
                if ca.subject in subjects:
                    errors.append("%s.cert has the subject of %s (%s); two CAs of one subject cannot share the CA "
                                  "directory" % (what, subjects[ca.subject], ca.subject.rfc4514_string()))
                subjects.setdefault(ca.subject, what)
        if item.get("crl") not in (None, ""):
            crl_data = _pem_item(item.get("crl"), what + ".crl", contents, errors,
                                 "the CA's CRL in PEM, or the path of a PEM file on the control machine")
            if crl_data is not None:
                try:
                    crl = x509.load_pem_x509_crl(crl_data)
                except ValueError as error:
                    errors.append("%s.crl is not a CRL in PEM (%s); expected the CA's certificate revocation list "
                                  "(-----BEGIN X509 CRL-----)" % (what, error))
                    crl = None
                if crl is not None and ca is not None and (
                        crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key())):
                    errors.append("%s.crl is issued by %s, not signed by the CA of %s.cert (%s)"
                                  % (what, crl.issuer.rfc4514_string(), what, ca.subject.rfc4514_string()))
        url = item.get("crl_url")
        if url not in (None, "") and not (isinstance(url, str) and _CRL_URL.match(url)):
            errors.append("%s.crl_url is %r; expected the http:// or https:// URL of the CA's CRL" % (what, url))
        unknown = sorted(set(item) - {"cert", "crl", "crl_url"})
        if unknown:
            errors.append("%s has %s; expected only cert, crl and crl_url" % (what, ", ".join(map(str, unknown))))
    return ["%s%s." % (prefix, error) for error in errors]


# OpenNebula's user names: no blank and no colon (User::INVALID_NAME_CHARS), at most 128 characters.
_ONE_USER = re.compile(r"^[^ :\t\n\v\f\r]{1,128}$")
# A DN in OpenSSL's slash form: /KEY=value components; a value may hold a slash
# (CN=host/name) but no '|' (the x509 driver's separator of a user's DNs).
_SLASH_DN = re.compile(r"^(/[A-Za-z][A-Za-z0-9.-]*=[^/|\n\r]+(/[^=/|\n\r]+)*)+$")
_RESERVED_USERS = ("oneadmin", "serveradmin")


def sl_x509_dn_problem(dn):
    """Why ``dn`` is no certificate subject in OpenSSL's slash form, or ``''``."""
    if not isinstance(dn, str) or not dn.strip():
        return "is empty"
    if _SLASH_DN.match(dn):
        return ""
    if "=" in dn and "," in dn and not dn.startswith("/"):
        return ("is in the comma form; expected OpenSSL's slash form, /C=../O=../CN=.. (`openssl x509 -noout "
                "-subject -nameopt compat`)")
    return "is not a DN in OpenSSL's slash form /C=../O=../CN=.. (`openssl x509 -noout -subject -nameopt compat`)"


def sl_x509_user_errors(users, label="users", reserved=(), prefix=""):
    """Every mistake in the DN -> OpenNebula user mapping; ``[]`` when there is none.

    Each item is ``{name, dn}``: a DN that maps to no user (no name), a
    malformed DN or user name, a name given twice, a DN given to two users
    (a certificate would log in as both) and the names of ``reserved``
    (``{name: why}``, e.g. the site's LDAP users) are refused.
    """
    if not isinstance(users, (list, tuple)):
        return ["%s%s is %r; expected a list of {name, dn}." % (prefix, label, users)]
    errors = []
    names, dns = {}, {}
    for index, item in enumerate(users):
        what = "%s[%d]" % (label, index)
        if not isinstance(item, Mapping):
            errors.append("%s is %r; expected {name: <OpenNebula user>, dn: <certificate subject>}" % (what, item))
            continue
        name, dn = item.get("name"), item.get("dn")
        problem = sl_x509_dn_problem(dn)
        if problem:
            errors.append("%s.dn %s %s" % (what, json.dumps(dn), problem))
        if name in (None, ""):
            errors.append("%s.dn %s maps to no user: give the OpenNebula user's name in %s.name"
                          % (what, json.dumps(dn), what))
        elif not isinstance(name, str) or not _ONE_USER.match(name):
            errors.append("%s.name %s is not an OpenNebula user name (1 to 128 characters, no blank or ':')"
                          % (what, json.dumps(name)))
        elif name in _RESERVED_USERS:
            errors.append("%s.name is %s, OpenNebula's own administrator; map the DN to a user of the site"
                          % (what, name))
        elif name in (reserved or {}):
            errors.append("%s.name %s %s" % (what, name, reserved[name]))
        elif name in names:
            errors.append("%s.name %s is given already by %s; give each user one item" % (what, name, names[name]))
        else:
            names[name] = what
        if not problem and isinstance(dn, str):
            if dn in dns:
                errors.append("%s.dn %s is given already by %s; a certificate maps to one user"
                              % (what, json.dumps(dn), dns[dn]))
            dns.setdefault(dn, what)
        unknown = sorted(set(item) - {"name", "dn"})
        if unknown:
            errors.append("%s has %s; expected only name and dn" % (what, ", ".join(map(str, unknown))))
    return ["%s%s." % (prefix, error) for error in errors]


class FilterModule:
    """StratusLab certificate and key checks."""

    def filters(self):
        return {
            "sl_tls_errors": sl_tls_errors,
            "sl_signer_errors": sl_signer_errors,
            "sl_openpgp_key_problem": sl_openpgp_key_problem,
            "sl_x509_ca_errors": sl_x509_ca_errors,
            "sl_x509_dn_problem": sl_x509_dn_problem,
            "sl_x509_user_errors": sl_x509_user_errors,
        }

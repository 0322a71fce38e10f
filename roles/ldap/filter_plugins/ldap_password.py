"""Filters of the ldap role: LDAP password hashes and DN checks.

Why a filter: Ansible's password_hash needs passlib on the control machine,
which the project does not pin, and OpenLDAP wants its own {SSHA} format
(base64 of SHA-1(password + salt) followed by the salt), not crypt(3)'s.

``ldap_ssha`` keeps an existing hash when it already matches the password,
so a role run that changes nothing writes nothing (idempotence, and a clean
``--check --diff``); otherwise it makes a new hash with a random salt.
"""

import base64
import hashlib
import hmac
import os
import re

from ansible.errors import AnsibleFilterError

SSHA_PREFIX = "{SSHA}"
SALT_BYTES = 8

# RFC 4514 distinguished names: attribute type (a name or a dotted OID),
# "=", then a value whose special characters are backslash-escaped (or a
# "#"-hex BER value); RDNs joined by "," and multi-valued RDNs by "+".
_ATTR = r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)"
_VALUE = r"(?:#(?:[0-9A-Fa-f]{2})+|(?:[^,=+\"\\<>;\x00 #]|\\[ \"#+,;<=>\\]|\\[0-9A-Fa-f]{2})" \
         r"(?:[^,=+\"\\<>;\x00]|\\[ \"#+,;<=>\\]|\\[0-9A-Fa-f]{2})*)"
_RDN = r"%s=%s(?:\+%s=%s)*" % (_ATTR, _VALUE, _ATTR, _VALUE)
DN_RE = re.compile(r"^%s(?:,%s)*$" % (_RDN, _RDN))


def _ssha(password, salt):
    digest = hashlib.sha1(password.encode("utf-8") + salt).digest()
    return SSHA_PREFIX + base64.b64encode(digest + salt).decode("ascii")


def ssha_matches(password, hashed):
    """True when ``hashed`` is an {SSHA} hash of ``password``."""
    if not isinstance(hashed, str) or not hashed.startswith(SSHA_PREFIX):
        return False
    try:
        raw = base64.b64decode(hashed[len(SSHA_PREFIX):], validate=True)
    except ValueError:
        return False
    if len(raw) <= 20:
        return False
    return hmac.compare_digest(_ssha(password, raw[20:]), hashed)


def ldap_ssha(password, existing=None):
    """{SSHA} hash of ``password``: ``existing`` if it matches, else a new one.

    ``existing`` may be a string or a list (an LDAP attribute's values).
    """
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("ldap_ssha: the password must be a non-empty string")
    candidates = existing if isinstance(existing, list) else [existing]
    for value in candidates:
        if ssha_matches(password, value):
            return value
    return _ssha(password, os.urandom(SALT_BYTES))


def ldap_dn_is_valid(value):
    """True when ``value`` is a syntactically valid, non-empty DN (RFC 4514)."""
    return isinstance(value, str) and bool(DN_RE.match(value))


def ldap_dn_rdns(value):
    """The DN's RDNs as [attribute, value] pairs (single-valued RDNs only).

    Raises AnsibleFilterError naming the value when it is not a valid DN.
    """
    if not ldap_dn_is_valid(value):
        raise AnsibleFilterError("ldap_dn_rdns: %r is not a valid LDAP DN" % (value,))
    parts = re.findall(r"((?:[^,\\]|\\.)+)", value)
    pairs = []
    for part in parts:
        attr, _, val = part.partition("=")
        pairs.append([attr.strip().lower(), val])
    return pairs


class FilterModule:
    """LDAP filters of the ldap role."""

    def filters(self):
        return {
            "ldap_ssha": ldap_ssha,
            "ldap_dn_is_valid": ldap_dn_is_valid,
            "ldap_dn_rdns": ldap_dn_rdns,
        }

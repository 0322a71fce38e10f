"""LDAP login, as OpenNebula's ldap auth driver does it (--ldap-uri,
--ldap-auth-conf and oned.conf's LDAP login through --oned-conf)."""

import os
import re
import secrets
import subprocess
import tempfile

from . import wire
from .util import sha256


# ------------------------------------------------------------------ LDAP auth
# What OpenNebula's ldap auth driver does, for tests of a site's LDAP: a user
# oned does not know (or one whose AUTH_DRIVER is ldap) is authenticated by
# an LDAP simple bind as uid=<name>,ou=people,<base DN>, and a user created
# that way gets AUTH_DRIVER "ldap" and its DN as PASSWORD, as the real driver
# leaves it. python-ldap is not in the standard library, so the bind is made
# by OpenLDAP's `ldapwhoami` (package ldap-utils), the password passed in a
# 0600 temporary file (-y), never on its command line.
LDAP_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
LDAP_INVALID_CREDENTIALS = 49


class LdapAuth:
    """Simple binds against one LDAP server through `ldapwhoami`."""

    def __init__(self, uri, base_dn, ca_file=None, timeout=10.0,
                 user_field=None, starttls=None):
        if not re.fullmatch(r"ldaps?://[^\s]+", uri):
            raise ValueError("--ldap-uri must be ldap://HOST[:PORT] or "
                             "ldaps://HOST[:PORT]")
        self.uri = uri
        self.base_dn = base_dn
        self.ca_file = ca_file
        self.timeout = timeout
        # None: the user's DN is uid=NAME,ou=people,BASE (--ldap-uri). A
        # field (ldap_auth.conf's :user_field:): the DN is found as the
        # driver finds it, by a search (FIELD=NAME) under the base.
        self.user_field = user_field
        self.starttls = uri.startswith("ldap://") if starttls is None else starttls

    def _tools_args(self):
        args = ["-x", "-H", self.uri,
                "-o", "nettimeout=%d" % max(1, int(self.timeout))]
        if self.starttls:
            args.append("-ZZ")      # StartTLS, and fail without it
        env = dict(os.environ, LDAPTLS_REQCERT="demand")
        if self.ca_file:
            env["LDAPTLS_CACERT"] = self.ca_file
        return args, env

    def user_dn(self, name):
        if self.user_field is None:
            return "uid=%s,ou=people,%s" % (name, self.base_dn)
        # An anonymous search, as the driver makes without :user: in
        # ldap_auth.conf; exactly one entry must match.
        args, env = self._tools_args()
        try:
            proc = subprocess.run(
                ["ldapsearch"] + args + ["-LLL", "-o", "ldif-wrap=no",
                                         "-b", self.base_dn,
                                         "(%s=%s)" % (self.user_field, name),
                                         "1.1"],
                env=env, capture_output=True, text=True,
                timeout=self.timeout + 5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            wire.LOG.emit("ldap: search for %s could not run: %s" % (name, exc))
            return None
        dns = [line[4:] for line in proc.stdout.splitlines()
               if line.startswith("dn: ")]
        if proc.returncode != 0 or len(dns) != 1:
            wire.LOG.emit("ldap: search (%s=%s) under %s: %d entries (%d) %s" % (
                self.user_field, name, self.base_dn, len(dns),
                proc.returncode, proc.stderr.strip()[:200]))
            return None
        return dns[0]

    def bind(self, name, password):
        """The user's DN when a simple bind with ``password`` succeeds."""
        # An empty password would be an unauthenticated bind, which LDAP
        # servers accept: never a login.
        if not password or not LDAP_NAME_RE.fullmatch(name):
            return None
        dn = self.user_dn(name)
        if dn is None:
            return None
        args, env = self._tools_args()
        cmd = ["ldapwhoami"] + args + ["-D", dn]
        fd, pwfile = tempfile.mkstemp(prefix="test-oned-ldap-")
        try:
            with os.fdopen(fd, "w") as fh:   # mkstemp makes it 0600
                fh.write(password)
            proc = subprocess.run(cmd + ["-y", pwfile], env=env,
                                  capture_output=True, text=True,
                                  timeout=self.timeout + 5)
        except (OSError, subprocess.TimeoutExpired) as exc:
            wire.LOG.emit("ldap: bind as %s could not run: %s" % (dn, exc))
            return None
        finally:
            os.unlink(pwfile)
        if proc.returncode == 0:
            return dn
        if proc.returncode != LDAP_INVALID_CREDENTIALS:
            wire.LOG.emit("ldap: bind as %s failed (%d): %s" % (
                dn, proc.returncode, proc.stderr.strip()[:200]))
        return None


def _conf_scalar(text):
    """A scalar of ldap_auth.conf (YAML written for Ruby): 'quoted',
    "quoted", :symbol, a number, true/false, or a bare word."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.startswith(":"):
        return text[1:]
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return {"true": True, "false": False}.get(text, text)


def read_ldap_auth_conf(path):
    """The server OpenNebula's ldap driver would use first, from its
    ldap_auth.conf: {"uri", "starttls", "base", "user_field", "ca_file"}.
    Reads the subset of YAML the driver's file uses (top-level "server N:"
    maps of ":key: value" lines, nested maps such as ":encryption:" with
    ":method:" and ":tls_options:", and an ":order:" list); ValueError names
    the file and what is wrong."""
    servers, order, section, stack = {}, [], None, []
    with open(path, encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not raw[0].isspace():
                if not line.endswith(":"):
                    raise ValueError("%s:%d: expected a section, got %r" % (path, number, line))
                key = line[:-1].strip()
                section = order if key == ":order" else servers.setdefault(key, {})
                stack = [(0, section)]
                continue
            item = line.strip()
            if section is order and item.startswith("- "):
                order.append(_conf_scalar(item[2:]))
                continue
            match = re.fullmatch(r":(\w+):\s*(.*)", item)
            if section is None or section is order or match is None:
                raise ValueError("%s:%d: cannot read %r" % (path, number, item))
            indent = len(line) - len(line.lstrip())
            while len(stack) > 1 and indent <= stack[-1][0]:
                stack.pop()
            target = stack[-1][1]
            if match.group(2):
                target[match.group(1)] = _conf_scalar(match.group(2))
            else:
                target[match.group(1)] = nested = {}
                stack.append((indent, nested))
    name = order[0] if order else next(iter(servers), None)
    server = servers.get(name)
    if server is None:
        raise ValueError("%s: no server %r to use (:order: %s)" % (path, name, order))
    for key in ("host", "base"):
        if not server.get(key):
            raise ValueError("%s: server %r has no :%s:" % (path, name, key))
    encryption = server.get("encryption", "")
    tls_options = {}
    if isinstance(encryption, dict):
        tls_options = encryption.get("tls_options") or {}
        encryption = encryption.get("method", "")
    if encryption not in ("", "simple_tls", "start_tls") or not isinstance(tls_options, dict):
        raise ValueError("%s: server %r: unknown :encryption: %r" % (path, name, server.get("encryption")))
    scheme = "ldaps" if encryption == "simple_tls" else "ldap"
    port = int(server.get("port", 636 if scheme == "ldaps" else 389))
    return {"uri": "%s://%s:%d" % (scheme, server["host"], port),
            "starttls": encryption == "start_tls", "base": server["base"],
            "user_field": server.get("user_field", "cn"), "ca_file": tls_options.get("ca_file")}


class LdapAuthConf:
    """--ldap-auth-conf: the server and fields of an ldap_auth.conf, read
    again at each login as OpenNebula's driver reads it (a changed file
    needs no restart; a file that no longer reads refuses the login)."""

    def __init__(self, path, ca_file=None):
        self.path = path
        self.ca_file = ca_file
        self.current()      # a file that does not read stops the start

    def current(self):
        conf = read_ldap_auth_conf(self.path)
        return LdapAuth(conf["uri"], conf["base"], conf["ca_file"] or self.ca_file,
                        user_field=conf["user_field"], starttls=conf["starttls"])

    def bind(self, name, password):
        try:
            auth = self.current()
        except (OSError, ValueError) as exc:
            wire.LOG.emit("ldap: %s" % exc)
            return None
        return auth.bind(name, password)


def ldap_login(oned, name, secret):
    """The user ``name`` authenticated through LDAP, created on first login."""
    ldap_auth = getattr(oned, "ldap", None)
    if ldap_auth is None:
        return None
    user = oned.store.find_name("user", name)
    if user is not None and (user["auth_driver"] != "ldap" or
                             not user["enabled"]):
        return None
    dn = ldap_auth.bind(name, secret)
    if dn is None:
        return None
    if user is None:
        # As oned does for a user its auth driver accepted: primary group
        # users (1), AUTH_DRIVER ldap, and the driver's answer (the DN) as
        # the stored password.
        user = {"id": oned.store.new_id("user"), "gid": 1, "groups": [1],
                "name": name, "password": dn, "auth_driver": "ldap",
                "enabled": 1, "tokens": [],
                "template": [["TOKEN_PASSWORD",
                              sha256(secrets.token_hex(32))]]}
        oned.store.put("user", user)
    return user

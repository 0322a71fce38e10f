"""API authentication: HTTP Basic credentials checked by an LDAP bind.

The user's own DN (``ldap_user_dn`` with ``{user}`` replaced, the name
DN-escaped) is bound with the given password over TLS (ldaps://, or
ldap:// with a mandatory StartTLS), the server certificate checked against
``ldap_ca_file``.  Accounting admins are the members of the group
``cn=<admin_group>`` under ``ldap_group_base``, as ``memberUid: <user>``
(posixGroup) or ``member``/``uniqueMember: <user DN>`` (groupOfNames),
searched with the user's own bind.
"""

import logging
import re

LOG = logging.getLogger("stratuslab_accounting.auth")

# OpenNebula / POSIX-like user names; anything else cannot be a site user.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AuthFailed(Exception):
    """Wrong or missing credentials (HTTP 401)."""


class AuthUnavailable(Exception):
    """The LDAP server could not be asked (HTTP 503)."""


class Identity:
    def __init__(self, user, is_admin):
        self.user = user
        self.is_admin = is_admin

    def __repr__(self):
        return "Identity(%r, admin=%r)" % (self.user, self.is_admin)


class LdapAuthenticator:
    def __init__(self, uri, user_dn, ca_file="", group_base="", admin_group="", timeout=10.0):
        import ldap  # Debian: python3-ldap
        import ldap.dn
        import ldap.filter
        self._ldap = ldap
        self.uri = uri
        self.user_dn = user_dn
        self.ca_file = ca_file
        self.group_base = group_base
        self.admin_group = admin_group
        self.timeout = timeout

    @classmethod
    def from_config(cls, config):
        return cls(config.require("api", "ldap_uri"), config.require("api", "ldap_user_dn"),
                   config.get("api", "ldap_ca_file"), config.get("api", "ldap_group_base"),
                   config.get("api", "admin_group"), config.getfloat("api", "ldap_timeout"))

    def dn_for(self, user):
        return self.user_dn.replace("{user}", self._ldap.dn.escape_dn_chars(user))

    def _connect(self):
        ldap = self._ldap
        conn = ldap.initialize(self.uri)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
        conn.set_option(ldap.OPT_TIMEOUT, self.timeout)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        if self.ca_file:
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, self.ca_file)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        if self.uri.lower().startswith("ldap://"):
            conn.start_tls_s()
        return conn

    def authenticate(self, user, password):
        """Identity, or raise AuthFailed / AuthUnavailable."""
        ldap = self._ldap
        if not NAME_RE.match(user or ""):
            raise AuthFailed("malformed user name")
        if not password:
            # an empty password would be an anonymous ("unauthenticated") bind
            raise AuthFailed("empty password")
        dn = self.dn_for(user)
        conn = None
        try:
            conn = self._connect()
            conn.simple_bind_s(dn, password)
            is_admin = self._is_admin(conn, user, dn)
        except (ldap.INVALID_CREDENTIALS, ldap.INAPPROPRIATE_AUTH, ldap.UNWILLING_TO_PERFORM,
                ldap.NO_SUCH_OBJECT, ldap.INVALID_DN_SYNTAX):
            raise AuthFailed("invalid credentials") from None
        except ldap.LDAPError as exc:
            info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            LOG.warning("LDAP %s unavailable: %s %s", self.uri, type(exc).__name__,
                        info.get("desc", ""))
            raise AuthUnavailable("LDAP server unavailable") from None
        finally:
            if conn is not None:
                try:
                    conn.unbind_s()
                except self._ldap.LDAPError:
                    pass
        return Identity(user, is_admin)

    def _is_admin(self, conn, user, dn):
        if not (self.group_base and self.admin_group):
            return False
        ldap = self._ldap
        esc = ldap.filter.escape_filter_chars
        flt = "(&(cn=%s)(|(memberUid=%s)(member=%s)(uniqueMember=%s)))" % (
            esc(self.admin_group), esc(user), esc(dn), esc(dn))
        try:
            found = conn.search_s(self.group_base, ldap.SCOPE_SUBTREE, flt, ["cn"])
        except ldap.NO_SUCH_OBJECT:
            return False
        return any(entry_dn for entry_dn, _ in found if entry_dn)

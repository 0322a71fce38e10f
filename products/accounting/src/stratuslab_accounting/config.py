"""The INI configuration (configparser): defaults, types and checks.

The keys are a contract with the Ansible role ``accounting`` (see
docs/accounting.md); a missing optional key takes the default below.
"""

import configparser
import re

DEFAULTS = {
    "oned": {
        "endpoint": "http://127.0.0.1:2633/RPC2",
        "auth_file": "",
        "timeout": "30",
    },
    "store": {
        "backend": "postgresql",
        "host": "127.0.0.1",
        "port": "5432",
        "dbname": "accounting",
        "user": "accounting",
        "password_file": "",
        "path": "/var/lib/stratuslab-accounting/accounting.sqlite",
    },
    "collector": {
        "interval": "300",
        "overlap": "600",
        "retry_max": "300",
    },
    "api": {
        "listen": "0.0.0.0",
        "port": "8443",
        "tls_cert": "",
        "tls_key": "",
        "ldap_uri": "",
        "ldap_ca_file": "",
        "ldap_user_dn": "",
        "ldap_group_base": "",
        "admin_group": "",
        "ldap_timeout": "10",
    },
    "apel": {
        "site": "",
        "cloud_type": "OpenNebula",
        "cloud_compute_service": "",
        "out_dir": "/var/spool/apel/outgoing",
    },
}


class ConfigError(Exception):
    """A missing or malformed configuration value; the message names the key."""


class Config:
    """Typed access to the INI file, with the defaults above."""

    def __init__(self, parser, path="<config>"):
        self._p = parser
        self.path = path

    @classmethod
    def load(cls, path):
        parser = configparser.ConfigParser(interpolation=None,
                                           inline_comment_prefixes=(";",))
        for section, values in DEFAULTS.items():
            parser[section] = dict(values)
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except OSError as exc:
            raise ConfigError("cannot read %s: %s" % (path, exc.strerror)) from None
        except configparser.Error as exc:
            raise ConfigError("%s: %s" % (path, exc)) from None
        cfg = cls(parser, path)
        cfg.validate()
        return cfg

    @classmethod
    def from_dict(cls, values):
        """Build from {section: {key: value}} (tests, tools)."""
        parser = configparser.ConfigParser(interpolation=None)
        for section, defaults in DEFAULTS.items():
            parser[section] = dict(defaults)
        for section, items in values.items():
            if not parser.has_section(section):
                parser.add_section(section)
            for key, value in items.items():
                parser[section][key] = str(value)
        cfg = cls(parser)
        cfg.validate()
        return cfg

    def get(self, section, key):
        return self._p.get(section, key, fallback="").strip()

    def getint(self, section, key, minimum=None):
        return self._number(section, key, int, "an integer", minimum)

    def getfloat(self, section, key, minimum=None):
        return self._number(section, key, float, "a number", minimum)

    def _number(self, section, key, kind, what, minimum):
        """The value of ``key`` read with ``kind`` (int or float, ``what`` in the
        error), and not below ``minimum`` when it is given."""
        raw = self.get(section, key)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError("[%s] %s: %r is not %s" % (section, key, raw, what)) from None
        if minimum is not None and value < minimum:
            raise ConfigError("[%s] %s: %s is below %s" % (section, key, value, minimum))
        return value

    def require(self, section, key):
        value = self.get(section, key)
        if not value:
            raise ConfigError("[%s] %s is required" % (section, key))
        return value

    def validate(self):
        """Checks that do not depend on the command (types, choices)."""
        backend = self.get("store", "backend")
        if backend not in ("postgresql", "sqlite"):
            raise ConfigError("[store] backend: %r is not postgresql or sqlite" % backend)
        self.getint("store", "port", 1)
        self.getfloat("oned", "timeout", 0.1)
        self.getint("collector", "interval", 1)
        self.getint("collector", "overlap", 0)
        self.getint("collector", "retry_max", 1)
        self.getint("api", "port", 0)
        self.getfloat("api", "ldap_timeout", 0.1)
        dn = self.get("api", "ldap_user_dn")
        if dn and "{user}" not in dn:
            raise ConfigError("[api] ldap_user_dn: %r has no {user} placeholder" % dn)
        uri = self.get("api", "ldap_uri")
        if uri and not re.match(r"^ldaps?://", uri):
            raise ConfigError("[api] ldap_uri: %r is not ldap:// or ldaps://" % uri)


def read_secret(path, what):
    """First line of a secret file, without its newline; never logged."""
    if not path:
        raise ConfigError("%s: no file configured" % what)
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError("%s: cannot read %s: %s" % (what, path, exc.strerror)) from None
    if not value:
        raise ConfigError("%s: %s is empty" % (what, path))
    return value

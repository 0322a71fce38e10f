# -*- coding: utf-8 -*-
"""A role's inputs checked against its argument specs, by kind, naming the site file's variable.

``sl_input_errors`` is the first check of every role's preflight. It reads
each option of the role's ``meta/argument_specs.yml`` (``main`` entry point)
from the role's variables and returns one message per mistake (an empty list
when there is none), so that one assert reports every mistake at once:

    frontend: site_one_api_port (frontend_one_api_port) is 70000; expected a port number, an integer from 1 to 65535.

It is stricter than Ansible's ``validate_argument_spec``, which converts what
it can and leaves the variable as it was: a list given as a string
(``site_ntp_servers: pool.ntp.org``) passes it as a one-item list while the
role then loops over the string's characters; ``"yes"`` passes as a boolean
while a ``when:`` refuses a string; ``0750`` unquoted is the number 488; a
version written ``7.10`` is the number 7.1. Here:

* **types** are strict: ``str``/``path`` take text only (a number, which YAML
  may have changed, such as a version or an octal mode, must be quoted), ``int``
  an integer or a string of digits, ``bool`` ``true``/``false`` only, ``list`` a
  list (never a string), ``dict`` a mapping; ``null`` is refused for a
  top-level option; ``choices``, ``required`` sub-options and unknown keys
  of a mapping with ``options`` (with the closest known key) are checked;
* **kinds**, found from the option's name, add a range or a format
  (``_KINDS`` below): ports, uids and gids, durations and counts, absolute
  paths, file modes, DNS domains and names, IP addresses, URLs (host and
  port), OpenNebula versions. A new option whose name says its kind is
  checked without anything more to write.

Messages name the site file's variable the option comes from, read from the
role's ``defaults/main.yml``: ``site_x (role_x)`` when the default is
``{{ site_x }}`` or ``{{ site_x | default(...) }}``; ``role_x (from site_a,
site_b)`` when it is worked out from site variables; ``role_x`` alone
otherwise. Values of options marked ``no_log`` (and of any ``*password*``)
are never shown.

Every filter is a plain function; ``FilterModule`` only maps names to them.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from ansible.errors import AnsibleError, AnsibleFilterError

try:  # Jinja's errors while a role variable is templated (an undefined site variable, mostly).
    from jinja2.exceptions import TemplateError
except ImportError:  # pragma: no cover - Ansible always has Jinja2
    TemplateError = AnsibleError

# OpenNebula versions the roles are written for (oned.conf, the node and
# front-end packages), each with a package repository of OpenNebula's
# (https://downloads.opennebula.io/repo/<version>/) or of the site's mirror.
ONE_VERSIONS = ("7.4",)

_MISSING = object()
_LABEL_PART = re.compile(r"[A-Za-z0-9_-]+")
_DIRECT = re.compile(r"^\s*\{\{\s*(site_[A-Za-z0-9_]+)\s*(\|\s*default\((?:[^()]|\([^()]*\))*\)\s*)?\}\}\s*$")
_IDENTIFIER = re.compile(r"\b([a-z][a-z0-9_]*)\b")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_MODE = re.compile(r"0?[0-7]{3}|[0-7]{4}")
_DIGITS = re.compile(r"[0-9]+")


# --------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------


def dns_name_problem(name, allow_ip=False):
    """Why ``name`` is not a DNS host name (RFC 1123), or None when it is."""
    if not isinstance(name, str) or not name:
        return "is not a host name"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None if allow_ip else "is an IP address, not a name"
    if len(name.rstrip(".")) > 253:
        return "is %d characters long; a host name has at most 253" % len(name)
    for label in name.rstrip(".").split("."):
        if len(label) > 63:
            return "has the label %r of %d characters; a label has at most 63" % (label, len(label))
        if not _HOST_LABEL.fullmatch(label):
            return ("has the label %r; a label has letters, digits and '-' only (no '_' or space), "
                    "and does not start or end with '-'" % label)
    return None


def _in_range(low, high=None):
    def check(value):
        number = int(value)
        if number < low or (high is not None and number > high):
            return "out of range"
        return None
    return check


def _absolute(value):
    return None if value.startswith("/") else "not absolute"


def _mode(value):
    return None if _MODE.fullmatch(value) else "not a mode"


def _domain(value):
    return None if value == "" else dns_name_problem(value)


def _dns_name(value):
    return dns_name_problem(value)


def _host_or_ip(value):
    return dns_name_problem(value, allow_ip=True)


def _ip(value):
    if value == "":
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "not an IP address"
    return None


def _url(value):
    if value == "":
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:  # a port that is no number, or above 65535
        return str(error)
    if not parts.scheme:
        return "has no scheme"
    if parts.scheme == "file":
        return None if parts.path.startswith("/") else "is a file URL without an absolute path"
    if not parts.hostname:
        return "names no host"
    problem = dns_name_problem(parts.hostname, allow_ip=True)
    if problem:
        return "host %r %s" % (parts.hostname, problem)
    if port is not None and not 1 <= port <= 65535:
        return "port %d is not between 1 and 65535" % port
    return None


def _key_source(value):
    if value == "" or value.startswith("/"):
        return None
    return _url(value) if value.startswith(("http://", "https://")) else "not a URL or an absolute path"


def _one_version(value):
    return None if value in ONE_VERSIONS else "unknown version"


# Kinds: (name pattern, option type, check of a value of that type, what is
# expected). The first kind whose pattern matches the option's name (or, for
# a sub-option, its key) applies; an element of a list takes the kind of its
# list. A check returns None when the value is good.
_KINDS = (
    (r"(^|_)one_version$", "str", _one_version,
     "the OpenNebula version (major.minor, in quotes) of a package repository the roles are written for: "
     + ", ".join(ONE_VERSIONS)),
    (r"_port$", "int", _in_range(1, 65535), "a port number between 1 and 65535"),
    (r"^port$", "int", _in_range(0, 65535), "a port number between 0 (the server's default) and 65535"),
    (r"_(uid|gid)$", "int", _in_range(1, 65533), "an id between 1 and 65533"),
    (r"(_timeout|_interval|_days|_minutes|_retry_max|_mb|_keep)$|^size$", "int", _in_range(1),
     "a whole number, at least 1"),
    (r"", "int", _in_range(0), "a whole number, 0 or more"),
    (r"", "float", lambda value: None if value > 0 else "not positive", "a number above 0"),
    (r"", "path", _absolute, "an absolute path (starting with /)"),
    (r"(socket|datastores|file|dir|directory)_mode$", "str", _mode,
     "a file mode of octal digits, in quotes, such as '0750'"),
    (r"_domain$", "str", _domain, "a DNS domain such as example.org, or '' for none"),
    (r"_extra_names$", "str", _dns_name, "a DNS name such as www.example.org"),
    (r"_ntp_servers$", "str", _host_or_ip, "a host name or an IP address"),
    (r"(_address|_listen)$", "str", _ip, "an IP address such as 192.0.2.10, or ''"),
    (r"_repo_key$", "str", _key_source,
     "an http(s) URL of the key, the absolute path of the key on the host, or '' for OpenNebula's"),
    (r"(_url|_uri|_endpoint)$", "str", _url,
     "a URL scheme://HOST[:PORT]/... naming a valid host, with a port from 1 to 65535, or ''"),
)

_TYPE_WORDS = {
    "str": "text",
    "path": "a path (text)",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false (a YAML boolean, without quotes)",
    "list": "a list",
    "dict": "a mapping (key: value)",
    "raw": "any value",
}


def _kind(key, type_name):
    for pattern, kind_type, check, expected in _KINDS:
        if kind_type == type_name and re.search(pattern, key):
            return check, expected
    return None, None


# --------------------------------------------------------------------------
# Where an option comes from
# --------------------------------------------------------------------------


def _sources(name, defaults, seen=None):
    """Site variables a role option's default is worked out from, in order of first use."""
    seen = set() if seen is None else seen
    seen.add(name)
    default = defaults.get(name)
    if not isinstance(default, str) or "{{" not in default:
        return []
    found = []
    for word in _IDENTIFIER.findall(default):
        if word.startswith("site_") and word not in found:
            found.append(word)
        elif word in defaults and word not in seen:
            found.extend(source for source in _sources(word, defaults, seen) if source not in found)
    return found


def option_label(name, defaults):
    """How messages name a role option: ``(head, hint)`` such as ``('site_x', ' (role_x)')``."""
    defaults = defaults or {}
    default = defaults.get(name)
    direct = _DIRECT.match(default) if isinstance(default, str) else None
    if direct:
        return direct.group(1), " (%s)" % name
    sources = _sources(name, defaults)
    if sources:
        return name, " (from %s)" % ", ".join(sources)
    return name, ""


# --------------------------------------------------------------------------
# Checking one value against its spec
# --------------------------------------------------------------------------


def _shown(value, secret):
    if secret:
        return "given (value not shown)"
    if isinstance(value, str):
        return "%r" % str(value)
    if isinstance(value, bool):
        return "%s" % str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "%r" % value
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "%r" % (value,)


def _element_key(index, value):
    """'[public]' for an item with a string name (networks, groups), '[alice]' for a uid, else '[2]'."""
    if isinstance(value, Mapping):
        for key in ("name", "uid"):
            name = value.get(key)
            if isinstance(name, str) and name and _LABEL_PART.fullmatch(name):
                return "[%s]" % name
    return "[%d]" % index


class _Checker:
    """One option's mistakes: of its types (``types``) and of its values (``values``)."""

    def __init__(self, role, hint, secret, part):
        self.prefix = "%s: " % role if role else ""
        self.hint = hint
        self.secret = secret
        self.types = part in ("all", "types")
        self.values = part in ("all", "values")
        self.errors = []

    def fail(self, label, value, expected, secret=False, why="", kind="types"):
        if not getattr(self, kind):
            return
        shown = _shown(value, self.secret or secret)
        self.errors.append("%s%s%s is %s%s; expected %s." % (self.prefix, label, self.hint, shown, why, expected))

    def note(self, message, kind="types"):
        if getattr(self, kind):
            self.errors.append(self.prefix + message)

    def typed(self, value, spec, key, label, secret):
        """The value as its type, or _MISSING after recording why it is not."""
        type_name = spec.get("type", "str")
        _, kind_words = _kind(key, type_name)
        expected = kind_words or _TYPE_WORDS.get(type_name, type_name)
        if spec.get("elements") and type_name == "list":
            element_kind = _kind(key, spec["elements"])[1]
            expected = "a list, each item %s" % (element_kind or _TYPE_WORDS.get(spec["elements"], spec["elements"]))
        why = ""
        good = True
        if type_name in ("str", "path"):
            good = isinstance(value, str)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                why = " (a number: YAML reads 7.10 as 7.1 and 0750 as 488; write text in quotes)"
        elif type_name == "int":
            if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
                value = int(value)
            good = isinstance(value, int) and not isinstance(value, bool)
        elif type_name == "float":
            good = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif type_name == "bool":
            good = isinstance(value, bool)
            if isinstance(value, str):
                why = " (a string, which a condition refuses)"
        elif type_name == "list":
            good = isinstance(value, (list, tuple))
            if isinstance(value, str):
                why = " (a string, not a list: write [item] or one '- item' per line)"
        elif type_name == "dict":
            good = isinstance(value, Mapping)
        if not good:
            self.fail(label, value, expected, secret, why)
            return _MISSING
        return value

    def check(self, value, spec, key, label, secret=False):
        secret = secret or bool(spec.get("no_log")) or "password" in key
        value = self.typed(value, spec, key, label, secret)
        if value is _MISSING:
            return
        type_name = spec.get("type", "str")
        choices = spec.get("choices")
        if choices is not None and value not in choices:
            self.fail(label, value, "one of " + ", ".join(str(choice) for choice in choices), secret)
            return
        check, expected = _kind(key, type_name)
        if check is not None and check(value):
            self.fail(label, value, expected, secret, kind="values")
            return
        if type_name == "list":
            element_spec = {"type": spec.get("elements", "raw"), "options": spec.get("options")}
            for index, item in enumerate(value):
                self.check(item, element_spec, key, label + _element_key(index, item), secret)
        elif type_name == "dict" and spec.get("options"):
            self.suboptions(value, spec["options"], label, secret)

    def suboptions(self, value, options, label, secret):
        for key in value:
            if key not in options:
                close = difflib.get_close_matches(str(key), list(options), n=1)
                hint = " (did you mean %s?)" % close[0] if close else ""
                self.note("%s%s has the unknown key %r%s; expected only %s." % (
                    label, self.hint, key, hint, ", ".join(options)))
        for key, spec in options.items():
            item = value.get(key)
            if item is None:
                if spec.get("required"):
                    self.note("%s.%s%s is missing; expected %s." % (
                        label, key, self.hint, _TYPE_WORDS.get(spec.get("type", "str"), "a value")))
                continue
            self.check(item, spec, key, "%s.%s" % (label, key), secret)


def _description(spec):
    text = spec.get("description") or ""
    if isinstance(text, list):
        text = text[0] if text else ""
    return re.sub(r"[A-Z]\(([^)]*)\)", r"\1", str(text)).strip().rstrip(".")


def sl_input_errors(values, options, defaults=None, role=None, part="all"):
    """Every mistake in a role's inputs, one message each; ``[]`` when there is none.

    ``values``: the role's variables (``vars`` in a task of the role);
    ``options``: its argument spec's options (``argument_specs.main.options``);
    ``defaults``: its ``defaults/main.yml`` as loaded (to name the site file's
    variables); ``role``: the role's name, the messages' prefix.

    ``part``: ``types`` for the mistakes of shape (a type, ``null``, a
    required or unknown key, a value not among the choices, a value that
    cannot be worked out), after which a preflight stops, as its other rules
    could not read such values; ``values`` for the mistakes of value in
    well-shaped inputs (the kinds' ranges and formats), which a preflight
    reports together with its other rules; ``all`` for both.
    """
    if part not in ("all", "types", "values"):
        raise AnsibleFilterError("sl_input_errors: part must be all, types or values, got %r" % (part,))
    if not isinstance(options, Mapping):
        raise AnsibleFilterError("sl_input_errors: options must be the argument spec's options, got %r" % (options,))
    if not isinstance(defaults, (Mapping, type(None))):
        raise AnsibleFilterError("sl_input_errors: defaults must be the role's defaults, got %r" % (defaults,))
    errors = []
    for name, spec in options.items():
        head, hint = option_label(name, defaults)
        secret = bool(spec.get("no_log")) or "password" in name
        checker = _Checker(role, hint, secret, part)
        try:
            value = values[name]
        except KeyError:
            value = _MISSING
        except (TemplateError, AnsibleError) as error:
            checker.note("%s%s cannot be worked out: %s; expected %s." % (
                head, hint, error, _description(spec) or "a value"))
            value = None
        if value is _MISSING:
            if spec.get("required"):
                checker.note("%s%s is not set; expected %s." % (head, hint, _description(spec) or "a value"))
        elif value is None:
            if spec.get("type", "str") != "raw" and not checker.errors:
                checker.fail(head, value, "%s (give '' or [] for none)" % _TYPE_WORDS.get(spec.get("type", "str")))
        else:
            checker.check(value, spec, name, head)
        errors.extend(checker.errors)
    return errors


class FilterModule:
    """StratusLab role input checks."""

    def filters(self):
        return {
            "sl_input_errors": sl_input_errors,
        }

"""Filters that read the site's inventory and a host's facts: host addresses,
per-host values, the packages a role still has to install, and the mistakes
in the inventory itself (sl_inventory_errors).

Pure functions behind a thin FilterModule. Bad input raises AnsibleFilterError
naming the host or value at fault, never a silent empty answer; the
``*_errors`` filters return every mistake they find as a message, for one
preflight assert that reports them all at once.
"""

import difflib
import ipaddress
import re
from collections.abc import Mapping

from ansible.errors import AnsibleError, AnsibleFilterError

try:  # Jinja's errors while a host variable is templated (an undefined variable, mostly).
    from jinja2.exceptions import TemplateError
except ImportError:  # pragma: no cover - Ansible always has Jinja2
    TemplateError = AnsibleError

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Groups every inventory has: they name no part of the site.
_BUILTIN_GROUPS = ("all", "ungrouped")


def _is_ip(value):
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def _host_address(name, hvars):
    """The management address of one inventory host.

    Order: the host's ``site_address`` variable, the IPv4 address of its
    default route from gathered facts, then ``ansible_host`` when it is an IP.
    """
    address = hvars.get("site_address")
    if address:
        if not _is_ip(address):
            raise AnsibleFilterError(
                "site_address of host %r is %r, which is not an IP address" % (name, address))
        return str(address)
    facts = hvars.get("ansible_facts") or {}
    default_ipv4 = facts.get("default_ipv4") or {}
    if default_ipv4.get("address"):
        return default_ipv4["address"]
    if _is_ip(hvars.get("ansible_host", "")):
        return str(hvars["ansible_host"])
    raise AnsibleFilterError(
        "host %r has no address for /etc/hosts: set its site_address variable in the "
        "inventory, or gather its facts" % name)


def sl_host_entries(hosts, hostvars, domain=""):
    """One /etc/hosts entry per inventory host: ``{'host', 'address', 'names'}``.

    ``names`` lists the fully qualified name first, then the short name. An
    inventory name with a dot is taken as fully qualified; a short one gets
    ``domain`` appended when a domain is given.
    """
    entries = []
    for name in hosts:
        if name not in hostvars:
            raise AnsibleFilterError("host %r is not in the inventory" % name)
        hvars = hostvars[name]
        short = name.split(".", 1)[0]
        if "." in name:
            names = [name, short]
        elif domain:
            names = ["%s.%s" % (name, domain), name]
        else:
            names = [name]
        entries.append({"host": name, "address": _host_address(name, hvars), "names": names})
    return entries


def sl_values_by_host(hosts, hostvars, variable, default=None):
    """Group hosts by the value one variable has on each: ``{value: [hosts]}``.

    A site-wide value that must be identical everywhere (oneadmin's uid, say)
    is consistent when the answer has exactly one key. Values are compared as
    strings, so 9869 and "9869" are the same.
    """
    if not isinstance(variable, str) or not variable:
        raise AnsibleFilterError("sl_values_by_host needs a variable name, got %r" % (variable,))
    groups = {}
    for name in hosts:
        value = hostvars[name].get(variable, default) if name in hostvars else default
        groups.setdefault(str(value), []).append(name)
    return groups


def sl_missing_packages(names, facts):
    """The names in ``names`` that ``facts['packages']`` (from
    package_facts) does not list as installed, in their order: ``[]`` means
    a role's package tasks have nothing to do.

    Without those facts in ``facts`` every name is missing, so a role that
    runs before the facts are read still installs. Facts read earlier in the
    run, before another role installed packages, can only make a role install
    for nothing. Names must be plain package names (no version or
    architecture), as the roles' vars/ give them.
    """
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise AnsibleFilterError("sl_missing_packages needs a list of package names, got %r" % (names,))
    installed = (facts or {}).get("packages") or {}
    return [name for name in names if name not in installed]


def host_name_problem(name):
    """Why an inventory name is not a host name (RFC 1123), or None when it is.

    The inventory name is the host's name in /etc/hosts on every site host,
    in SSH's known_hosts and, for a node, in OpenNebula: letters, digits and
    '-' in labels of 1 to 63 characters, 253 characters in all, and not an
    IP address (the address is the host's site_address).
    """
    if not isinstance(name, str) or not name:
        return "is empty"
    if _is_ip(name):
        return "is an IP address: name the host, and give the address as its site_address"
    if len(name) > 253:
        return "is %d characters long; a host name has at most 253" % len(name)
    for label in name.split("."):
        if len(label) > 63:
            return "has a label of %d characters (%r...); a label has at most 63" % (len(label), label[:20])
        if not _HOST_LABEL.fullmatch(label):
            return ("has the label %r: a label holds letters, digits and '-' only (no '_', no space, "
                    "no empty label) and does not start or end with '-'" % label)
    return None


def _count_problem(group, hosts, rule):
    """Why a group of the site has too few or too many hosts, or None."""
    low, high = rule.get("min", 0), rule.get("max")
    holds = rule.get("holds", "")
    what = " (%s)" % holds if holds else ""
    if len(hosts) < low:
        if not hosts:
            return ("the inventory has no host in group '%s'%s: hosts.yml must put %s there"
                    % (group, what, "one host" if low == 1 else "at least %d hosts" % low))
        return "group '%s'%s has %d hosts in hosts.yml (%s); expected at least %d" % (
            group, what, len(hosts), ", ".join(hosts), low)
    if high is not None and len(hosts) > high:
        return "group '%s'%s has %d hosts in hosts.yml (%s); expected at most %d" % (
            group, what, len(hosts), ", ".join(hosts), high)
    return None


def _host_value(hvars, host, variable, errors):
    """A host variable, or None (and a message) when it cannot be worked out."""
    try:
        return hvars.get(variable)
    except (TemplateError, AnsibleError) as error:
        errors.append("%s of host %s cannot be worked out: %s." % (variable, host, error))
        return None


def _host_addresses(host, hvars, errors):
    """[(variable, address)] a host states: site_address and each site_network_addresses item."""
    found = []
    address = _host_value(hvars, host, "site_address", errors)
    if address not in (None, ""):
        if not isinstance(address, str) or not _is_ip(address):
            errors.append("site_address of host %s (hosts.yml) is %r; expected its IP address, such as 192.0.2.10."
                          % (host, address))
        else:
            found.append(("site_address", str(ipaddress.ip_address(address))))
    networks = _host_value(hvars, host, "site_network_addresses", errors)
    if networks is None:
        return found
    if not isinstance(networks, Mapping):
        errors.append("site_network_addresses of host %s (hosts.yml) is %r; expected a mapping of network name "
                      "to the host's address on it (an IP address, or dhcp)." % (host, networks))
        return found
    for network, value in networks.items():
        variable = "site_network_addresses.%s" % network
        if value == "dhcp":
            continue
        if not isinstance(value, str) or not _is_ip(value):
            errors.append("%s of host %s (hosts.yml) is %r; expected an IP address such as 192.0.2.10, or dhcp."
                          % (variable, host, value))
            continue
        found.append((variable, str(ipaddress.ip_address(value))))
    return found


def sl_inventory_errors(groups, hostvars, rules, exclusive=()):
    """Every mistake in the inventory's groups, host names and addresses; ``[]`` when none.

    ``groups``: the ``groups`` of the inventory; ``hostvars``: its ``hostvars``;
    ``rules``: ``{group: {min, max, holds}}`` for the groups the site's plays
    run on (``holds`` says what the group stands for); ``exclusive``: lists of
    groups no host may be in together. Refused:

    * a group of ``rules`` with fewer than ``min`` or more than ``max`` hosts;
    * a host in two groups of one ``exclusive`` list;
    * a group not in ``rules`` whose name is close to one that is (a typo
      leaves that part of the site without hosts);
    * an inventory name that is no host name (see ``host_name_problem``);
    * a ``site_address`` or ``site_network_addresses`` item that is not an IP
      address (``dhcp`` aside), and one address stated for two hosts.
    """
    if not isinstance(groups, Mapping) or not isinstance(rules, Mapping):
        raise AnsibleFilterError("sl_inventory_errors needs the inventory's groups and a mapping of group rules")
    errors = []
    for group, rule in rules.items():
        problem = _count_problem(group, list(groups.get(group) or []), rule or {})
        if problem:
            errors.append(problem + ".")
    for together in exclusive:
        members = {}
        for group in together:
            for host in groups.get(group) or []:
                members.setdefault(host, []).append(group)
        for host, found in members.items():
            if len(found) > 1:
                errors.append("host %s is in groups %s of hosts.yml, which exclude each other: "
                              "give each of these roles its own host." % (host, " and ".join(found)))
    for group in groups:
        if group in rules or group in _BUILTIN_GROUPS:
            continue
        close = difflib.get_close_matches(group, list(rules), n=1, cutoff=0.75)
        if close:
            errors.append("group '%s' of hosts.yml is no group of the site; did you mean '%s'? "
                          "The site's groups are %s." % (group, close[0], ", ".join(rules)))
    seen = {}
    for host in groups.get("all") or []:
        problem = host_name_problem(host)
        if problem:
            errors.append("host %r of hosts.yml: its name %s. Rename it (the name goes into /etc/hosts, "
                          "SSH's known_hosts and OpenNebula)." % (host, problem))
        hvars = hostvars[host] if host in hostvars else {}
        for variable, address in _host_addresses(host, hvars, errors):
            seen.setdefault(address, []).append("%s of %s" % (variable, host))
    for address, users in seen.items():
        if len({user.rsplit(" of ", 1)[1] for user in users}) > 1:
            errors.append("the address %s is given to more than one host in hosts.yml: %s. "
                          "Give each host its own addresses." % (address, ", ".join(users)))
    return errors


class FilterModule(object):
    """Site inventory filters."""

    def filters(self):
        return {
            "sl_host_entries": sl_host_entries,
            "sl_values_by_host": sl_values_by_host,
            "sl_missing_packages": sl_missing_packages,
            "sl_inventory_errors": sl_inventory_errors,
        }

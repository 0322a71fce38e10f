"""Filters that read the site's inventory and a host's facts: host addresses,
per-host values, the packages a role still has to install.

Pure functions behind a thin FilterModule. Bad input raises AnsibleFilterError
naming the host or value at fault, never a silent empty answer.
"""

import ipaddress

from ansible.errors import AnsibleFilterError


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
    stratuslab_package_facts or package_facts) does not list as installed, in
    their order: ``[]`` means a role's package tasks have nothing to do.

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


class FilterModule(object):
    """Site inventory filters."""

    def filters(self):
        return {
            "sl_host_entries": sl_host_entries,
            "sl_values_by_host": sl_values_by_host,
            "sl_missing_packages": sl_missing_packages,
        }

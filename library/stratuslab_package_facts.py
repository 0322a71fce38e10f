#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stratuslab_package_facts
short_description: Read the installed packages from the package database, as package_facts does, without apt's cache
description:
  - Sets C(ansible_facts.packages) in the shape M(ansible.builtin.package_facts) gives it (each package
    name maps to a list of its installed instances, with V(name), V(version), V(arch) and V(source)),
    from one C(dpkg-query) (Debian family) or C(rpm -qa) (RPM family) call.
  - Why not M(ansible.builtin.package_facts) on Debian? It reads the installed packages through
    python3-apt's C(apt.Cache) class, which parses every package list of the host's repositories first
    (0.7 CPU seconds on a Debian 12 host with bookworm's lists, 2-3 s of wall time per host in a
    rerun of the site under load), where C(dpkg-query) reads the installed set alone (10 ms). The
    roles read the facts once per host and run, to skip their package tasks when nothing is
    missing; they need the names only.
  - Read-only; never changes the host.
  - A Debian package counts as installed when dpkg's status is installed, or waits for or owes a
    trigger (C(db:Status-Abbrev) second letter V(i), V(W) or V(t)); a package removed with its
    configuration files kept (V(rc)) or only unpacked (V(iU)) does not.
  - The RPM branch is untested; the project tests Debian 12 only.
version_added: "1.0.0"
author: StratusLab site deployer contributors
options:
  manager:
    description:
      - The package database to read. V(auto) uses C(dpkg-query) when the host has it, else C(rpm).
    type: str
    choices: [auto, dpkg, rpm]
    default: auto
attributes:
  check_mode:
    support: full
    details: Reads in check mode too.
  diff_mode:
    support: none
  facts:
    support: full
"""

EXAMPLES = r"""
- name: Read which packages are installed (once per run, shared by every role)
  stratuslab_package_facts:
  when: ansible_facts['packages'] is not defined
"""

RETURN = r"""
ansible_facts:
  description: The installed packages.
  returned: always
  type: dict
  contains:
    packages:
      description: Package name to the list of its installed instances (one per architecture).
      returned: always
      type: dict
      sample: {"squid": [{"name": "squid", "version": "5.7-2+deb12u5", "arch": "amd64", "source": "dpkg"}]}
manager:
  description: The package database read.
  returned: always
  type: str
  sample: dpkg
"""

from ansible.module_utils.basic import AnsibleModule

ARGUMENT_SPEC = dict(
    manager=dict(type="str", choices=["auto", "dpkg", "rpm"], default="auto"),
)

# dpkg-query's db:Status-Abbrev is three letters: desired action, status, error flag.
# Status: i installed, W triggers awaited, t triggers pending count as installed;
# n not installed, c config files only, U unpacked, H half-installed, F half-configured do not.
DPKG_INSTALLED = frozenset("iWt")
DPKG_FORMAT = r"${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"
RPM_FORMAT = r"%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\n"


def parse_dpkg(text):
    packages = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 4:
            raise ValueError(f"unexpected dpkg-query line: {line!r}")
        status, name, version, arch = fields
        if len(status) >= 2 and status[1] in DPKG_INSTALLED:
            packages.setdefault(name, []).append(dict(name=name, version=version, arch=arch, source="dpkg"))
    return packages


def parse_rpm(text):
    packages = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"unexpected rpm line: {line!r}")
        name, version, arch = fields
        packages.setdefault(name, []).append(dict(name=name, version=version, arch=arch, source="rpm"))
    return packages


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    manager = module.params["manager"]
    dpkg_query = module.get_bin_path("dpkg-query") if manager in ("auto", "dpkg") else None
    rpm = module.get_bin_path("rpm") if manager == "rpm" or (manager == "auto" and not dpkg_query) else None
    if dpkg_query:
        used, argv, parse = "dpkg", [dpkg_query, "-W", "-f", DPKG_FORMAT], parse_dpkg
    elif rpm:
        used, argv, parse = "rpm", [rpm, "-qa", "--qf", RPM_FORMAT], parse_rpm
    else:
        wanted = {"auto": "dpkg-query or rpm", "dpkg": "dpkg-query", "rpm": "rpm"}[manager]
        module.fail_json(msg=f"manager={manager}: no {wanted} on this host's PATH")
    rc, out, err = module.run_command(argv, environ_update={"LC_ALL": "C"})
    if rc != 0:
        module.fail_json(msg=f"{' '.join(argv[:2])} failed (rc {rc}): {err.strip()}", rc=rc)
    try:
        packages = parse(out)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, manager=used, ansible_facts=dict(packages=packages))


if __name__ == "__main__":
    main()

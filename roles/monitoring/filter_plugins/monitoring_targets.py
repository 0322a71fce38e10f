# -*- coding: utf-8 -*-
"""Filters of the monitoring role: which exporters a host runs, and what Prometheus scrapes.

* ``monitoring_host_exporters``: the exporters of ``monitoring_exporters``
  whose inventory groups hold the host (``all``: every host);
* ``monitoring_scrape_jobs``: one scrape job per exporter, its targets the
  hosts of the exporter's groups (``address:port``, labelled with the host's
  inventory name), a retired node left out.

Every filter is a plain function; bad input raises AnsibleFilterError
naming the value. ``FilterModule`` only maps names to them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def _check(exporters):
    if not isinstance(exporters, list):
        raise AnsibleFilterError("monitoring_exporters must be a list of {name, groups, port}, not %r" % (exporters,))
    for exporter in exporters:
        if not isinstance(exporter, Mapping) or not {"name", "groups", "port"} <= set(exporter):
            raise AnsibleFilterError("monitoring_exporters: %r is not a mapping of name, groups and port" % (exporter,))
        if not isinstance(exporter["groups"], list):
            raise AnsibleFilterError("monitoring_exporters: the groups of %r are not a list" % (exporter["name"],))


def monitoring_host_exporters(exporters, group_names, skip=()):
    """The exporters (mappings) that run on a host in ``group_names``, except the names in ``skip``."""
    _check(exporters)
    member = set(group_names or []) | {"all"}
    return [dict(exporter) for exporter in exporters
            if exporter["name"] not in skip and member & set(exporter["groups"])]


def monitoring_scrape_jobs(exporters, groups, hostvars, skip=()):
    """[{job, port, targets: [{host, address}]}] for Prometheus, in the order of ``exporters``.

    A host's address is its ``site_address`` (the inventory name when it has
    none); a host whose ``site_node_state`` is ``retired`` is left out, and so
    is an exporter whose groups hold no host."""
    _check(exporters)
    jobs = []
    for exporter in exporters:
        if exporter["name"] in skip:
            continue
        hosts = []
        for group in exporter["groups"]:
            for host in (groups or {}).get(group) or []:
                if host not in hosts and (hostvars.get(host) or {}).get("site_node_state") != "retired":
                    hosts.append(host)
        if hosts:
            jobs.append({"job": exporter["name"], "port": int(exporter["port"]),
                         "targets": [{"host": host, "address": str((hostvars.get(host) or {}).get("site_address") or host)}
                                     for host in hosts]})
    return jobs


class FilterModule:
    """The monitoring role's filters."""

    def filters(self):
        return {
            "monitoring_host_exporters": monitoring_host_exporters,
            "monitoring_scrape_jobs": monitoring_scrape_jobs,
        }

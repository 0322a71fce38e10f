"""The validate role's view of OpenNebula's VM documents.

Pure functions behind a thin FilterModule, so the role's tasks read plain
values instead of walking ``onevm show --json`` output, whose lists become
single objects when they hold one element (NIC, HISTORY).
"""

import datetime
import ipaddress

from ansible.errors import AnsibleFilterError

# VM STATE 3 is ACTIVE and LCM_STATE 3 is RUNNING (include/VirtualMachine.h).
_ACTIVE = 3
_RUNNING = 3


def _as_list(value):
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def vm_ref(pair):
    """(id, network) -> {'id': id, 'network': network}."""
    try:
        vm_id, network = pair
    except (TypeError, ValueError):
        raise AnsibleFilterError("sl_validate_vm: expected (id, network), got %r" % (pair,))
    return {"id": str(vm_id), "network": str(network)}


def vm_facts(vm):
    """One VM document (the VM object of onevm show --json) -> plain facts."""
    if not isinstance(vm, dict) or "ID" not in vm:
        raise AnsibleFilterError("sl_validate_vm_facts: expected a VM document with an ID, got %r" % (vm,))
    history = _as_list((vm.get("HISTORY_RECORDS") or {}).get("HISTORY"))
    last = history[-1] if history else {}
    template = vm.get("TEMPLATE") or {}
    nics = _as_list(template.get("NIC"))
    user_template = vm.get("USER_TEMPLATE") or {}
    state, lcm = _int(vm.get("STATE")), _int(vm.get("LCM_STATE"))
    stime, rstime = _int(vm.get("STIME")), _int(last.get("RSTIME"))
    return {
        "id": str(vm["ID"]),
        "name": vm.get("NAME", ""),
        "deploy_id": vm.get("DEPLOY_ID", ""),
        "state": state,
        "lcm_state": lcm,
        "running": state == _ACTIVE and lcm == _RUNNING,
        "host": last.get("HOSTNAME", ""),
        "cluster_id": str(last.get("CID", "")),
        "system_ds": str(last.get("DS_ID", "")),
        "ip": nics[0].get("IP", "") if nics else "",
        "mac": nics[0].get("MAC", "") if nics else "",
        "network": nics[0].get("NETWORK", "") if nics else "",
        "stime": stime,
        # oned's own times: the VM's creation and the start of its RUNNING.
        "running_after_s": (rstime - stime) if rstime and stime else None,
        "error": user_template.get("ERROR", "") if isinstance(user_template, dict) else "",
    }


def vm_summary(facts):
    """Facts of vm_facts -> one line of the report."""
    after = facts.get("running_after_s")
    return "VM %s on %s (%s %s)%s" % (
        facts.get("id"), facts.get("host") or "no host", facts.get("network"), facts.get("ip"),
        (", RUNNING %s s after creation" % after) if after is not None else "")


def _addresses(host_vars):
    addresses = [host_vars.get("site_address", "")]
    addresses += list((host_vars.get("site_network_addresses") or {}).values())
    return [a for a in addresses if a]


def pinger(vm, frontend, networks, hostvars):
    """Who pings the VM: the front-end where it has an address on the VM's
    network, else the node the VM runs on (its bridge is on that network)."""
    by_name = {n.get("name"): n for n in networks or []}
    net = by_name.get(vm.get("network"))
    if net is None:
        raise AnsibleFilterError("sl_validate_pinger: VM %s is on network %r, which is not in site_networks"
                                 % (vm.get("id"), vm.get("network")))
    try:
        cidr = ipaddress.IPv4Network(str(net.get("cidr")), strict=False)
    except ValueError as exc:
        raise AnsibleFilterError("sl_validate_pinger: site_networks %s has cidr %r: %s" % (net.get("name"), net.get("cidr"), exc))
    for address in _addresses(hostvars[frontend]):
        try:
            if ipaddress.IPv4Address(str(address)) in cidr:
                return frontend
        except ValueError:
            continue
    return vm.get("host")


def _command_end(result):
    # The command module's "end" is the host's local time; the site's hosts
    # keep UTC (Debian's default).
    try:
        end = datetime.datetime.strptime(result.get("end", ""), "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None
    return end.replace(tzinfo=datetime.timezone.utc).timestamp()


def ping_report(running, ping_results, frontend, networks, hostvars):
    """One line per VM: who pinged it, and its first answer after creation."""
    lines = []
    for vm, result in zip(running, ping_results):
        end = _command_end(result)
        after = (" %d s after creation" % round(end - vm["stime"])) if end and vm.get("stime") else ""
        lines.append("VM %s %s answered %s%s" % (vm["id"], vm["ip"], pinger(vm, frontend, networks, hostvars), after))
    return "; ".join(lines)


def pool_ids(pool_doc, pool_key, item_key, prefix):
    """Ids of the pool's objects whose NAME starts with prefix (onevm/oneimage list --json)."""
    if not isinstance(pool_doc, dict):
        raise AnsibleFilterError("sl_validate_pool_ids: expected a pool document, got %r" % (pool_doc,))
    items = _as_list((pool_doc.get(pool_key) or {}).get(item_key))
    return [str(i["ID"]) for i in items if str(i.get("NAME", "")).startswith(prefix)]


def report(results, expected, skipped=()):
    """The report's lines: each check's status, time and detail; a check
    the site does not have is SKIP with its reason; an expected check (by a
    word of its name) that never ran is NOT RUN."""
    lines = ["%-7s %7.1f s  %s%s" % (r["status"], float(r["seconds"]), r["check"],
                                     (": " + r["detail"]) if r.get("detail") else "") for r in results]
    reasons = dict((word, reason) for word, reason in skipped)
    for word in expected:
        if any(word in r["check"] for r in results):
            continue
        if word in reasons:
            lines.append("SKIP              %s: %s" % (word, reasons[word]))
        else:
            lines.append("NOT RUN           %s" % word)
    return lines


class FilterModule(object):
    def filters(self):
        return {
            "sl_validate_vm": vm_ref,
            "sl_validate_vm_facts": vm_facts,
            "sl_validate_vm_summary": vm_summary,
            "sl_validate_pinger": pinger,
            "sl_validate_ping_report": ping_report,
            "sl_validate_pool_ids": pool_ids,
            "sl_validate_report": report,
        }

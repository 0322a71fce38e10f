"""The validate role's view of OpenNebula's VM documents.

Pure functions behind a thin FilterModule, so the role's tasks read plain
values instead of walking ``onevm show --json`` output, whose lists become
single objects when they hold one element (NIC, HISTORY).
"""

import datetime
import ipaddress
import json
import posixpath
import urllib.parse

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


def vm_ref(item):
    """(id, network, name) -> {'id': id, 'network': network, 'name': name}."""
    try:
        vm_id, network, name = item
    except (TypeError, ValueError):
        raise AnsibleFilterError("sl_validate_vm: expected (id, network, name), got %r" % (item,))
    return {"id": str(vm_id), "network": str(network), "name": str(name)}


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


def with_pinger(running, frontend, networks, hostvars):
    """Each VM's facts with 'pinger', the host that pings it (pinger)."""
    return [dict(vm, pinger=pinger(vm, frontend, networks, hostvars)) for vm in running]


def _vm_of(item, result):
    """The VM a loop's item result is about: the loop item's facts, completed
    by the VM document the item's command printed (onevm show --json)."""
    vm = dict(item) if isinstance(item, dict) else {}
    try:
        doc = json.loads(result.get("stdout") or "")
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("VM"), dict) and "ID" in doc["VM"]:
        facts = vm_facts(doc["VM"])
        for key in ("name", "ip", "host", "state", "lcm_state", "running", "error"):
            if facts.get(key) not in (None, "") and vm.get(key) in (None, ""):
                vm[key] = facts[key]
    return vm


def _who(vm):
    words = ["VM %s (%s)" % (vm.get("id", "?"), vm.get("name") or "no name")]
    if vm.get("ip"):
        words.append("at %s" % vm["ip"])
    if vm.get("pinger"):
        words.append("pinged from %s" % vm["pinger"])
    elif vm.get("host"):
        words.append("on %s" % vm["host"])
    if vm.get("running") is False:
        words.append("in state %s/%s" % (vm["state"], vm["lcm_state"]))
    return " ".join(words)


def _error(result):
    """What went wrong in one result: its message, the command's exit code
    and last line of output, the attempts it made."""
    words = []
    if result.get("rc") not in (None, 0):
        words.append("exit code %s" % result["rc"])
    elif result.get("msg"):
        words.append(str(result["msg"]))
    for stream in ("stderr", "stdout"):
        lines = [line for line in str(result.get(stream) or "").splitlines() if line.strip()]
        if lines and result.get("rc") not in (None, 0):
            words.append(lines[-1].strip())
            break
    if result.get("attempts"):
        words.append("gave up after %s attempts" % result["attempts"])
    return ", ".join(words) or "failed"


def failure(result, limit=600):
    """ansible_failed_result -> the FAIL line's detail. A loop's failed items
    each name their VM (id and name), the address tried and who tried it."""
    if not isinstance(result, dict):
        return str(result)[:limit]
    failed = [r for r in result.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    if not failed:
        return _error(result)[:limit]
    parts = []
    for item_result in failed:
        item = item_result.get(item_result.get("ansible_loop_var") or "item")
        if isinstance(item, dict):
            parts.append("%s: %s" % (_who(_vm_of(item, item_result)), _error(item_result)))
        else:
            parts.append(_error(item_result))
    return "; ".join(parts)[:limit]


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


def appliance_names(appliances):
    """site_appliances -> the OpenNebula image name of each, as the frontend
    role's entry point appliances registers it: the item's name, else the
    manifest file's <name>-<version> (its base name without .img.manifest.xml)."""
    if not isinstance(appliances, (list, tuple)):
        raise AnsibleFilterError("sl_validate_appliance_names: expected the list site_appliances, got %r"
                                 % (appliances,))
    names = []
    for index, item in enumerate(appliances):
        manifest = item.get("manifest") if isinstance(item, dict) else None
        if not isinstance(manifest, str) or not manifest.endswith(".manifest.xml"):
            raise AnsibleFilterError("sl_validate_appliance_names: site_appliances[%d] is %r; expected"
                                     " {manifest: .../<name>-<version>.img.manifest.xml, name: ...}" % (index, item))
        stem = posixpath.basename(urllib.parse.urlsplit(manifest).path)[:-len(".manifest.xml")]
        if stem.endswith(".img"):
            stem = stem[:-len(".img")]
        names.append(str(item.get("name") or stem))
    return names


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
            "sl_validate_with_pinger": with_pinger,
            "sl_validate_failure": failure,
            "sl_validate_ping_report": ping_report,
            "sl_validate_pool_ids": pool_ids,
            "sl_validate_appliance_names": appliance_names,
            "sl_validate_report": report,
        }

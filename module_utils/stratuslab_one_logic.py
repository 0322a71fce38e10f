# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconciliation logic of the opennebula_* modules.

Each ``*_run(client, params, check_mode)`` reads what it needs, plans the
writes, performs them unless ``check_mode`` and returns the module result
(``changed``, ``actions``, ``diff`` and the object summary).  The module
files only hold documentation, their own options and a one-call ``main()``:
``run_one_module(cluster_run, options, by_name_or_id=True)``.
"""

from __future__ import annotations

import posixpath

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.stratuslab_one import connection_argument_spec, run_module
from ansible.module_utils.stratuslab_one import (
    DATASTORE_TYPE_TEMPLATE, DATASTORE_TYPES, HOST_DISABLED, HOST_ERROR, HOST_MONITORED, HOST_OFFLINE,
    VNET_ERROR, VNET_LOCK_CREATE, VNET_LOCK_DELETE, VNET_READY,
    OneActionError, OneError, OneNotFoundError, OneTimeoutError, Pool, attrs_differ,
    cluster_membership_changes, ids_of, normalize_attrs, resolve_ref)


class Changes:
    """Records planned writes; runs them unless in check mode."""

    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.actions = []

    def do(self, description, func, *args, **kwargs):
        self.actions.append(description)
        if self.check_mode:
            return None
        return func(*args, **kwargs)

    @property
    def changed(self):
        return bool(self.actions)


# --------------------------------------------------------------------------
# module runner
# --------------------------------------------------------------------------

class OneModule(AnsibleModule):
    """AnsibleModule that hides the values of its no_log options in every result.

    ansible-core collects the values to hide in one pass over the whole
    argument spec, and a list of sub-options given a string (``vnets: pub``)
    makes that pass fail, so its argument-spec failure would carry
    ``api_password`` in ``invocation``. The values of the top-level no_log
    options (and of their aliases) are taken from the raw parameters before
    any result is written.
    """

    def exit_json(self, **kwargs):
        self._hide_no_log_values()
        super().exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        self._hide_no_log_values()
        super().fail_json(msg, **kwargs)

    def _hide_no_log_values(self):
        for name, spec in self.argument_spec.items():
            if not spec.get("no_log"):
                continue
            for key in [name] + list(spec.get("aliases") or []):
                value = self.params.get(key)
                if value not in (None, ""):
                    self.no_log_values.add(str(value))


def by_name_or_id_spec():
    """name, id (0 valid) and state: documented in doc fragment stratuslab_one.by_name_or_id."""
    return dict(
        name=dict(type="str"),
        id=dict(type="int"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def run_one_module(run, options, by_name_or_id=False, pass_diff_mode=False, **module_kwargs):
    """The whole main() of an opennebula_* module.

    Builds the AnsibleModule from the connection options, the name/id/state
    options when ``by_name_or_id`` (exactly one of name and id), and the
    module's own ``options``; check mode is always supported.  Then
    ``run(client, params, check_mode)`` (with ``diff_mode=`` when
    ``pass_diff_mode``, for the batch modules that return a diff only in diff
    mode) gives the result, and run_module() exits or fails with oned's message.
    """
    argument_spec = connection_argument_spec()
    if by_name_or_id:
        argument_spec.update(by_name_or_id_spec())
        module_kwargs.setdefault("required_one_of", []).append(("name", "id"))
        module_kwargs.setdefault("mutually_exclusive", []).append(("name", "id"))
    argument_spec.update(options)
    module = OneModule(argument_spec=argument_spec, supports_check_mode=True, **module_kwargs)
    extra = dict(diff_mode=module._diff) if pass_diff_mode else {}
    run_module(module, lambda client, mod: run(client, mod.params, mod.check_mode, **extra))


def _find(pool, params, kind):
    """The object named by params['id'] (0 valid) or params['name']; None if absent."""
    if params.get("id") is not None:
        return pool.by_id.get(int(params["id"]))
    return pool.named(params["name"])


def _result(changes, before, after, **extra):
    result = dict(changed=changes.changed, actions=changes.actions,
                  diff=dict(before=before or {}, after=after or {}))
    result.update(extra)
    return result


# --------------------------------------------------------------------------
# cluster
# --------------------------------------------------------------------------

_MEMBER_KINDS = (("hosts", "host"), ("vnets", "vnet"), ("datastores", "datastore"))


def cluster_members_wanted(client, params):
    """{"hosts": [ids], ...} for each member list given; an unknown member fails here, before any write."""
    pools = {"hosts": client.hostpool, "vnets": client.vnpool, "datastores": client.datastorepool}
    return {key: ids_of(pools[key](), params[key], kind)
            for key, kind in _MEMBER_KINDS if params.get(key) is not None}


def cluster_run(client, params, check_mode):
    changes = Changes(check_mode)
    clusters = client.clusterpool()
    cluster = _find(clusters, params, "cluster")
    before = cluster.summary() if cluster else {}
    if params["state"] == "absent":
        if cluster is None:
            return _result(changes, {}, {}, cluster={})
        changes.do("delete cluster %s (%s)" % (cluster.name, cluster.id), client.cluster_delete, cluster.id)
        return _result(changes, before, {}, cluster={})

    if cluster is None and params.get("name") is None:
        raise OneNotFoundError("cluster %s does not exist (give a name to create it)" % params["id"])
    members = cluster_members_wanted(client, params)
    if cluster is None:
        new_id = changes.do("allocate cluster %s" % params["name"], client.cluster_allocate, params["name"])
        after = dict(id=new_id, name=params["name"], hosts=[], datastores=[], vnets=[])
    else:
        after = cluster.summary()

    for key, kind in _MEMBER_KINDS:
        if key not in members:
            continue
        to_add, to_remove = cluster_membership_changes(after[key], members[key], params["exclusive"])
        for obj_id in to_add:
            changes.do("add %s %s to cluster %s" % (kind, obj_id, after["name"]),
                       client.cluster_add, kind, after["id"], obj_id)
        for obj_id in to_remove:
            changes.do("remove %s %s from cluster %s" % (kind, obj_id, after["name"]),
                       client.cluster_del, kind, after["id"], obj_id)
        after[key] = sorted((set(after[key]) | set(to_add)) - set(to_remove))
    if changes.changed and not check_mode:
        after = client.cluster_info(after["id"]).summary()
    return _result(changes, before, after, cluster=after)


# --------------------------------------------------------------------------
# hosts (single and batch share the per-host planning)
# --------------------------------------------------------------------------

def _status_for(host_state, wanted):
    """The one.host.status code needed to reach ``wanted``, or None."""
    if wanted == "enabled" and host_state in (HOST_DISABLED, HOST_OFFLINE):
        return "enabled"
    if wanted == "disabled" and host_state != HOST_DISABLED:
        return "disabled"
    if wanted == "offline" and host_state != HOST_OFFLINE:
        return "offline"
    return None


def _host_view(name, cluster_id, state, template=None, im_mad="", vm_mad=""):
    view = dict(name=name, cluster_id=cluster_id, state=state, im_mad=im_mad, vm_mad=vm_mad)
    if template:
        view["template"] = template
    return view


def plan_host(spec, host, clusters, warnings):
    """Plan the writes for one host.

    ``spec``: name, state, im_mad, vmm_mad, cluster (name/id or None),
    template (dict or None).  Returns a list of (action, args) tuples with
    action in allocate, delete, cluster, status, update.
    """
    steps = []
    if spec["state"] == "absent":
        if host is not None:
            steps.append(("delete", (host.id,)))
        return steps
    cluster_id = None
    if spec.get("cluster") is not None:
        cluster_id = resolve_ref(clusters, spec["cluster"], "cluster").id
    template = normalize_attrs(spec.get("template"))
    if host is None:
        steps.append(("allocate", (spec["name"], spec["im_mad"], spec["vmm_mad"],
                                   -1 if cluster_id is None else cluster_id)))
        status = None if spec["state"] in ("present", "enabled") else spec["state"]
        if status:
            steps.append(("status", (status,)))
        if template:
            steps.append(("update", (template,)))
        return steps
    for field_name, current in (("im_mad", host.im_mad), ("vmm_mad", host.vm_mad)):
        if spec.get(field_name) and spec[field_name] != current:
            warnings.append("host %s: %s is %r, not %r; OpenNebula cannot change the drivers of a "
                            "registered host (delete and re-add it)" % (host.name, field_name, current,
                                                                        spec[field_name]))
    if cluster_id is not None and host.cluster_id != cluster_id:
        steps.append(("cluster", (cluster_id,)))
    status = _status_for(host.state, spec["state"]) if spec["state"] != "present" else None
    if status:
        steps.append(("status", (status,)))
    differ = attrs_differ(template, host.template)
    if differ:
        steps.append(("update", ({k: template[k] for k in differ},)))
    return steps


def execute_host_steps(client, steps, host_id, progress=None):
    """Run planned steps; return the host id (new one after allocate).

    ``progress`` (a dict) receives ``id`` and ``done`` (steps completed), so
    a caller still knows what was written when a later step fails.
    """
    progress = {} if progress is None else progress
    progress.update(id=host_id, done=0)
    for action, args in steps:
        if action == "allocate":
            host_id = client.host_allocate(*args)
        elif action == "delete":
            client.host_delete(args[0])
        elif action == "cluster":
            client.cluster_add("host", args[0], host_id)
        elif action == "status":
            client.host_status(host_id, args[0])
        elif action == "update":
            client.host_update(host_id, args[0], merge=True)
        progress.update(id=host_id, done=progress["done"] + 1)
    return host_id


def describe_step(action, args):
    if action == "allocate":
        return "allocate (im_mad=%s, vmm_mad=%s, cluster=%s)" % (args[1], args[2], args[3])
    if action == "delete":
        return "delete"
    if action == "cluster":
        return "move to cluster %s" % args[0]
    if action == "status":
        return "set status %s" % args[0]
    return "merge template %s" % ", ".join(sorted(args[0]))


def _predict_host(spec, host, steps, clusters):
    if spec["state"] == "absent":
        return {}
    if host is None:
        view = _host_view(spec["name"], None, "INIT", im_mad=spec["im_mad"], vm_mad=spec["vmm_mad"])
        view["cluster_id"] = 0
    else:
        view = _host_before(host, spec)
    for action, args in steps:
        if action == "allocate":
            view["cluster_id"] = 0 if args[3] == -1 else args[3]
        elif action == "cluster":
            view["cluster_id"] = args[0]
        elif action == "status":
            view["state"] = {"enabled": "INIT", "disabled": "DISABLED", "offline": "OFFLINE"}[args[0]]
        elif action == "update":
            view["template"] = dict(view.get("template", {}), **args[0])
    return view


def _host_before(host, spec):
    if host is None:
        return {}
    view = _host_view(host.name, host.cluster_id, host.state_name, im_mad=host.im_mad,
                      vm_mad=host.vm_mad)
    keys = normalize_attrs(spec.get("template"))
    if keys:
        view["template"] = {k: host.template.get(k) for k in keys if k in host.template}
    return view


def _needs_wait(spec, steps):
    actions = [a for a, _ in steps]
    if spec["state"] not in ("present", "enabled"):
        return False
    return "allocate" in actions or any(a == "status" and args[0] == "enabled" for a, args in steps)


HOST_WANTED_STATES = ["present", "absent", "enabled", "disabled", "offline"]


def host_options(wait, wait_timeout):
    """opennebula_host's options beside name; opennebula_hosts takes them as defaults of its hosts."""
    return dict(
        state=dict(type="str", default="present", choices=list(HOST_WANTED_STATES)),
        im_mad=dict(type="str", default="kvm"),
        vmm_mad=dict(type="str", default="kvm", aliases=["vm_mad"]),
        cluster=dict(type="str"),
        template=dict(type="dict"),
        wait=dict(type="bool", default=wait),
        wait_timeout=dict(type="int", default=wait_timeout),
        poll_interval=dict(type="float", default=2.0),
    )


def host_run(client, params, check_mode):
    hosts = client.hostpool()
    host = hosts.named(params["name"])
    needs_clusters = params.get("cluster") is not None and params["state"] != "absent"
    clusters = client.clusterpool() if needs_clusters else Pool("cluster", [])
    warnings = []
    steps = plan_host(params, host, clusters, warnings)
    changes = Changes(check_mode)
    for step in steps:
        changes.actions.append(describe_step(*step))
    before = _host_before(host, params)
    after = _predict_host(params, host, steps, clusters)
    result_host = after
    if steps and not check_mode:
        host_id = execute_host_steps(client, steps, host.id if host else None)
        if params["state"] != "absent":
            if params["wait"] and _needs_wait(params, steps):
                client.wait_hosts([host_id], timeout=params["wait_timeout"],
                                  interval=params["poll_interval"])
            fresh = client.host_info(host_id)
            result_host = dict(fresh.summary(), template=fresh.template)
    elif host is not None and params["state"] != "absent" and not check_mode:
        result_host = dict(host.summary(), template=host.template)
    return _result(changes, before, after, host=result_host, warnings=warnings)


def normalize_host_specs(params):
    """Expand the batch module's hosts list (strings or dicts) with defaults."""
    specs, seen = [], set()
    defaults = dict(state=params["state"], im_mad=params["im_mad"], vmm_mad=params["vmm_mad"],
                    cluster=params.get("cluster"), template=params.get("template"))
    allowed = {"name", "state", "im_mad", "vmm_mad", "cluster", "template"}
    for item in params["hosts"]:
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            item = {"name": str(item)}
        if not isinstance(item, dict) or not item.get("name"):
            raise OneError("each entry of hosts must be a host name or a dict with a name, got %r" % (item,))
        unknown = set(item) - allowed
        if unknown:
            raise OneError("host %s: unknown keys %s" % (item["name"], ", ".join(sorted(unknown))))
        spec = dict(defaults)
        spec.update({k: v for k, v in item.items() if v is not None})
        spec["name"] = str(spec["name"])
        if spec["state"] not in HOST_WANTED_STATES:
            raise OneError("host %s: invalid state %r" % (spec["name"], spec["state"]))
        if spec["name"] in seen:
            raise OneError("host %s is listed twice" % spec["name"])
        seen.add(spec["name"])
        specs.append(spec)
    return specs


def hosts_run(client, params, check_mode, diff_mode=True):
    """Batch registration: one hostpool read, one clusterpool read, only needed writes.

    ``diff`` is returned only with ``diff_mode``; its ``after`` and the
    ``state`` of each entry of ``hosts`` are the same final (or, in check
    mode, predicted) state.
    """
    specs = normalize_host_specs(params)
    hosts = client.hostpool()
    needs_clusters = any(s.get("cluster") is not None and s["state"] != "absent" for s in specs)
    clusters = client.clusterpool() if needs_clusters else Pool("cluster", [])
    warnings, report, errors, to_wait = [], {}, {}, {}
    before, after = {}, {}
    summary = dict(allocated=0, deleted=0, moved=0, status=0, updated=0, unchanged=0, failed=0)
    counters = {"allocate": "allocated", "delete": "deleted", "cluster": "moved",
                "status": "status", "update": "updated"}
    planned = []
    for spec in specs:
        host = hosts.named(spec["name"])
        try:
            steps = plan_host(spec, host, clusters, warnings)
        except OneError as exc:
            errors[spec["name"]] = exc.message
            summary["failed"] += 1
            continue
        if not steps:
            summary["unchanged"] += 1
            continue
        planned.append((spec, host, steps))

    for spec, host, steps in planned:
        name = spec["name"]
        entry = dict(id=host.id if host else None, actions=[describe_step(*s) for s in steps])
        if diff_mode:
            before[name] = _host_before(host, spec)
        after[name] = _predict_host(spec, host, steps, clusters)
        report[name] = entry
        if not check_mode:
            progress = {}
            try:
                entry["id"] = execute_host_steps(client, steps, host.id if host else None, progress)
            except OneError as exc:
                entry["id"] = progress.get("id")
                entry["done"] = progress.get("done", 0)
                entry["error"] = exc.message
                errors[name] = exc.message
                summary["failed"] += 1
                # what was really done: the steps before the failing one
                after[name] = (_predict_host(spec, host, steps[:entry["done"]], clusters) if entry["done"]
                               else _host_before(host, spec))
                if after[name]:
                    entry["state"] = after[name]["state"]
                continue
            if _needs_wait(spec, steps):
                to_wait[entry["id"]] = name
        if after[name]:
            entry["state"] = after[name]["state"]
        for action, _ in steps:
            summary[counters[action]] += 1

    changed = any("error" not in e or e.get("done") for e in report.values())
    result = dict(changed=changed, hosts=report, summary=summary, warnings=warnings)
    if diff_mode:
        result["diff"] = dict(before=before, after=after)
    if to_wait and params["wait"] and not check_mode:
        for name, host, error in _wait_for_hosts(client, to_wait, params):
            report[name]["state"] = host.state_name if host else "gone"
            after[name] = dict(after[name], state=host.state_name) if host else {}
            if error:
                report[name]["error"] = errors[name] = error
                summary["failed"] += 1
    if errors:
        result["errors"] = errors
        result["failed_msg"] = "%d host(s) failed: %s" % (
            len(errors), "; ".join("%s: %s" % (k, v) for k, v in sorted(errors.items())[:10]))
    return result


def _wait_for_hosts(client, to_wait, params):
    """Wait for the hosts {id: name} together; [(name, Host or None if gone, error or None)], one per host."""
    timeout = params["wait_timeout"]
    try:
        found = client.wait_hosts(list(to_wait), timeout=timeout, interval=params["poll_interval"])
        timed_out = False
    except (OneTimeoutError, OneActionError) as exc:
        found = exc.hosts
        timed_out = isinstance(exc, OneTimeoutError)
    outcome = []
    for host_id, name in to_wait.items():
        host = found.get(host_id)
        if host is None:
            error = "host %s disappeared while waiting for it to be MONITORED" % host_id
        elif host.state == HOST_MONITORED:
            error = None
        elif timed_out and host.state != HOST_ERROR:
            error = "not MONITORED after %ss (state %s)" % (timeout, host.state_name)
        else:
            error = host.error or "not MONITORED (state %s)" % host.state_name
        outcome.append((name, host, error))
    return outcome


# --------------------------------------------------------------------------
# virtual networks
# --------------------------------------------------------------------------

AR_KEY_ATTR = "SL_AR_KEY"


def vnet_options():
    """The options that describe one network: opennebula_vnet's, and those of each entry of opennebula_vnets."""
    return dict(
        vn_mad=dict(type="str", choices=["bridge", "802.1Q"]),
        bridge=dict(type="str"),
        phydev=dict(type="str"),
        vlan_id=dict(type="str"),
        template=dict(type="dict"),
        address_ranges=dict(type="list", elements="dict", options=dict(
            key=dict(type="str", no_log=False),
            type=dict(type="str", choices=["IP4", "IP6", "IP4_6", "ETHER"], default="IP4"),
            ip=dict(type="str"),
            mac=dict(type="str"),
            size=dict(type="int", required=True),
            attributes=dict(type="dict"),
        )),
        fixed_leases=dict(type="list", elements="str"),
        clusters=dict(type="list", elements="str"),
    )


def _desired_ars(params):
    ars = []
    for spec in params.get("address_ranges") or []:
        ar_type = (spec.get("type") or "IP4").upper()
        attrs = normalize_attrs(spec.get("attributes"))
        for reserved in ("AR_ID", "TYPE", "IP", "MAC", "SIZE", AR_KEY_ATTR):
            if reserved in attrs:
                raise OneError("address range attribute %s must be given as its own option" % reserved)
        start = spec.get("ip") or spec.get("mac") or ""
        if ar_type != "ETHER" and not spec.get("ip") and ar_type in ("IP4", "IP4_6"):
            raise OneError("address range of type %s needs ip" % ar_type)
        key = spec.get("key") or ("%s:%s" % (ar_type, start) if start else None)
        if key is None:
            raise OneError("address range of type %s without ip/mac needs a key" % ar_type)
        ars.append(dict(key=str(key), type=ar_type, ip=spec.get("ip") or "", mac=(spec.get("mac") or "").lower(),
                        size=int(spec["size"]), attributes=attrs))
    for ip in params.get("fixed_leases") or []:
        ars.append(dict(key="IP4:%s" % ip, type="IP4", ip=str(ip), mac="", size=1, attributes={}))
    keys = [a["key"] for a in ars]
    dup = sorted(set(k for k in keys if keys.count(k) > 1))
    if dup:
        raise OneError("address ranges listed twice: %s" % ", ".join(dup))
    return ars


def _ar_vector(desired, ar_id=None):
    vec = {}
    if ar_id is not None:
        vec["AR_ID"] = ar_id
    else:
        vec["TYPE"] = desired["type"]
        if desired["ip"]:
            vec["IP"] = desired["ip"]
        if desired["mac"]:
            vec["MAC"] = desired["mac"]
    vec["SIZE"] = desired["size"]
    vec.update(desired["attributes"])
    vec[AR_KEY_ATTR] = desired["key"]
    return vec


def _same_start(ar, want):
    if ar.type != want["type"]:
        return False
    if want["ip"]:
        return ar.ip == want["ip"]
    return bool(want["mac"]) and ar.mac.lower() == want["mac"]


def _match_ars(existing, desired):
    """Pair desired ARs with existing ones: by key attribute, then by type+start.

    Two ranges with the same key (a move whose removal of the old range
    failed) pair the one already at the wanted start, so the other is removed.
    """
    pairs, free = {}, {a.ar_id: a for a in existing}
    for want in desired:
        keyed = [ar for ar in free.values() if ar.attributes.get(AR_KEY_ATTR) == want["key"]]
        if keyed:
            best = next((ar for ar in keyed if _same_start(ar, want)), keyed[0])
            pairs[want["key"]] = free.pop(best.ar_id)
    for want in desired:
        if want["key"] in pairs:
            continue
        for ar in list(free.values()):
            if AR_KEY_ATTR not in ar.attributes and _same_start(ar, want):
                pairs[want["key"]] = free.pop(ar.ar_id)
                break
    return pairs, list(free.values())


def plan_ars(vnet_ars, desired, force):
    """Return [(op, payload)] with op in add, update, rm; raise when leases block a change."""
    ops = []
    pairs, leftovers = _match_ars(vnet_ars, desired)
    blocked = []
    for ar in leftovers:
        if ar.used_leases and not force:
            blocked.append("address range %s (%s %s) has %d lease(s) in use and is no longer wanted"
                           % (ar.ar_id, ar.type, ar.ip or ar.mac, ar.used_leases))
        ops.append(("rm", ar.ar_id, None))
    for want in desired:
        ar = pairs.get(want["key"])
        if ar is None:
            ops.append(("add", None, want))
            continue
        start_changed = (ar.type != want["type"] or (want["ip"] and ar.ip != want["ip"])
                         or (want["mac"] and ar.mac.lower() != want["mac"]))
        if start_changed:
            if ar.used_leases and not force:
                blocked.append("address range %s (%s) would move from %s to %s but has %d lease(s) in use"
                               % (ar.ar_id, want["key"], ar.ip or ar.mac, want["ip"] or want["mac"],
                                  ar.used_leases))
            ops.append(("rm", ar.ar_id, None))
            ops.append(("add", None, want))
            continue
        wanted_attrs = dict(want["attributes"])
        wanted_attrs[AR_KEY_ATTR] = want["key"]
        if ar.size != want["size"] or ar.attributes != wanted_attrs:
            ops.append(("update", ar.ar_id, want))
    if blocked:
        raise OneError("; ".join(blocked) + ". Set force=true to remove them anyway.")
    # Removals last. oned accepts overlapping ranges, so a moved range is added at
    # its new start before the old one goes: a range oned refuses (a wrong IP, MAC
    # or SIZE) fails before anything was removed, and the network keeps its ranges.
    ops.sort(key=lambda op: {"add": 0, "update": 1, "rm": 2}[op[0]])
    return ops


def _vnet_template(params):
    tmpl = normalize_attrs(params.get("template"))
    for key, option in (("VN_MAD", "vn_mad"), ("BRIDGE", "bridge"), ("PHYDEV", "phydev"),
                        ("VLAN_ID", "vlan_id")):
        if params.get(option) not in (None, ""):
            tmpl[key] = str(params[option])
    if "AR" in tmpl:
        raise OneError("give address ranges with address_ranges, not template.AR")
    return tmpl


def _vnet_view(vnet):
    if vnet is None:
        return {}
    return dict(id=vnet.id, name=vnet.name, clusters=vnet.clusters,
                template={k: v for k, v in vnet.template.items()},
                address_ranges=sorted(
                    [dict(key=a.attributes.get(AR_KEY_ATTR, "%s:%s" % (a.type, a.ip or a.mac)),
                          type=a.type, ip=a.ip, mac=a.mac, size=a.size,
                          used_leases=a.used_leases) for a in vnet.ars], key=lambda d: d["key"]))


def vnet_wanted(params, clusters=None):
    """(template, desired ARs or None, cluster ids or None) of a vnet spec.

    ``clusters`` is the cluster Pool; it is needed only when the spec names
    clusters.  None means "leave alone" for the ARs and the clusters.
    """
    template = _vnet_template(params)
    desired_ars = _desired_ars(params) if (params.get("address_ranges") is not None
                                           or params.get("fixed_leases") is not None) else None
    cluster_ids = None
    if params.get("clusters") is not None:
        cluster_ids = ids_of(clusters, params["clusters"], "cluster")
    return template, desired_ars, cluster_ids


def vnet_allocation(name, template, desired_ars, cluster_ids):
    """(allocate template, first cluster id or -1, predicted view) of a new vnet."""
    template = dict(template)
    if "VN_MAD" not in template:
        template["VN_MAD"] = "bridge"
    alloc = dict(NAME=name)
    alloc.update(template)
    alloc["AR"] = [_ar_vector(a) for a in desired_ars or []]
    first_cluster = cluster_ids[0] if cluster_ids else -1
    view = dict(id=None, name=name, clusters=[0 if first_cluster == -1 else first_cluster], template=template,
                address_ranges=sorted([dict(key=a["key"], type=a["type"], ip=a["ip"], mac=a["mac"],
                                            size=a["size"], used_leases=0) for a in desired_ars or []],
                                      key=lambda d: d["key"]))
    return alloc, first_cluster, view


def plan_vnet_steps(vnet, template, desired_ars, cluster_ids, force, check_mode=False):
    """The writes that bring an existing vnet to the wanted state.

    Returns [(description, client method name, args, kwargs)]: template
    merge (only differing keys), address range removals, updates and
    additions (see plan_ars), cluster membership (exact when given).
    """
    steps = []
    differ = attrs_differ(template, vnet.template)
    if differ:
        steps.append(("update template %s" % ", ".join(differ), "vn_update",
                      (vnet.id, {k: template[k] for k in differ}), {"merge": True}))
    if desired_ars is not None:
        if vnet.state != VNET_READY and not check_mode:
            raise OneError("vnet %s is in state %s; address ranges can only change when READY"
                           % (vnet.name, vnet.state_name))
        for op, ar_id, want in plan_ars(vnet.ars, desired_ars, force):
            if op == "rm":
                steps.append(("remove address range %s" % ar_id, "vn_rm_ar", (vnet.id, ar_id), {"force": force}))
            elif op == "add":
                steps.append(("add address range %s" % want["key"], "vn_add_ar", (vnet.id, _ar_vector(want)), {}))
            else:
                steps.append(("update address range %s (%s)" % (ar_id, want["key"]), "vn_update_ar",
                              (vnet.id, _ar_vector(want, ar_id=ar_id)), {}))
    if cluster_ids is not None:
        to_add, to_remove = cluster_membership_changes(vnet.clusters, cluster_ids, True)
        for cid in to_add:
            steps.append(("add vnet to cluster %s" % cid, "cluster_add", ("vnet", cid, vnet.id), {}))
        for cid in to_remove:
            steps.append(("remove vnet from cluster %s" % cid, "cluster_del", ("vnet", cid, vnet.id), {}))
    return steps


def errored_vnet_deletion(vnet):
    """The description of the delete of a vnet oned left in ERROR, so that it is allocated again.

    A network ends in ERROR when its creation failed (an address range oned
    could not read, a driver failure): add_ar and the others are refused in
    that state, so the only way to the wanted network is a new one.
    """
    if vnet.used_leases:
        raise OneError("vnet %s (%s) is in state ERROR (%s) with %d lease(s) in use: it cannot be created again"
                       % (vnet.name, vnet.id, vnet.template.get("ERROR", "no error message"), vnet.used_leases))
    return "delete vnet %s (%s) in state ERROR" % (vnet.name, vnet.id)


def vnet_run(client, params, check_mode):
    changes = Changes(check_mode)
    vnets = client.vnpool()
    vnet = _find(vnets, params, "vnet")
    before = _vnet_view(vnet)
    if params["state"] == "absent":
        if vnet is None or vnet.state == VNET_LOCK_DELETE:
            return _result(changes, before, before if vnet else {}, vnet={})
        changes.do("delete vnet %s (%s)" % (vnet.name, vnet.id), client.vn_delete, vnet.id)
        if params["wait"] and not check_mode:
            client.wait_vnet_gone(vnet.id, timeout=params["wait_timeout"])
        return _result(changes, before, {}, vnet={})

    clusters = client.clusterpool() if params.get("clusters") is not None else None
    template, desired_ars, cluster_ids = vnet_wanted(params, clusters)

    name = params.get("name")
    if vnet is not None and vnet.state == VNET_ERROR:
        name = vnet.name
        changes.do(errored_vnet_deletion(vnet), client.vn_delete, vnet.id)
        if not check_mode:
            client.wait_vnet_gone(vnet.id, timeout=params["wait_timeout"])
        vnet = None
    if vnet is None:
        if name is None:
            raise OneNotFoundError("vnet %s does not exist (give a name to create it)" % params["id"])
        alloc, first_cluster, after = vnet_allocation(name, template, desired_ars, cluster_ids)
        template = after["template"]
        new_id = changes.do("allocate vnet %s" % name, client.vn_allocate, alloc, first_cluster)
        after["id"] = new_id
        if check_mode:
            if cluster_ids:
                for cid in cluster_ids[1:]:
                    changes.actions.append("add vnet to cluster %s" % cid)
                after["clusters"] = sorted(cluster_ids)
            return _result(changes, before, after, vnet=after)
        vnet = client.wait_vnet_ready(new_id, timeout=params["wait_timeout"])
    elif vnet.state == VNET_LOCK_CREATE and not check_mode:
        vnet = client.wait_vnet_ready(vnet.id, timeout=params["wait_timeout"])

    for description, method, args, kwargs in plan_vnet_steps(vnet, template, desired_ars, cluster_ids,
                                                             params["force"], check_mode):
        changes.do(description, getattr(client, method), *args, **kwargs)

    if changes.changed and not check_mode:
        vnet = client.vn_info(vnet.id)
        after = _vnet_view(vnet)
    else:
        after = _predict_vnet(before if before else _vnet_view(vnet), template, desired_ars, cluster_ids)
    return _result(changes, before, after, vnet=after if check_mode else vnet.summary())


VNET_SPEC_KEYS = frozenset(vnet_options()) | {"name", "state", "force"}


def normalize_vnet_specs(params):
    """The batch module's vnets list with the module-level defaults applied."""
    specs, seen = [], set()
    for item in params["vnets"]:
        if not isinstance(item, dict) or not item.get("name"):
            raise OneError("each entry of vnets must be a dict with a name, got %r" % (item,))
        unknown = set(item) - VNET_SPEC_KEYS
        if unknown:
            raise OneError("vnet %s: unknown keys %s" % (item["name"], ", ".join(sorted(unknown))))
        spec = {k: item.get(k) for k in VNET_SPEC_KEYS}
        spec["name"] = str(spec["name"])
        for key in ("state", "clusters", "force"):
            if spec[key] is None:
                spec[key] = params.get(key)
        spec["id"] = None
        if spec["name"] in seen:
            raise OneError("vnet %s is listed twice" % spec["name"])
        if spec["vn_mad"] == "802.1Q" and not spec.get("phydev"):
            raise OneError("vnet %s: vn_mad is 802.1Q but phydev is missing" % spec["name"])
        seen.add(spec["name"])
        specs.append(spec)
    return specs


class _VnetTask:
    """One vnet of the batch: its plan, what was done, what it looks like after."""

    def __init__(self, spec, vnet):
        self.spec, self.vnet = spec, vnet
        self.name = spec["name"]
        self.wanted = None          # (template, desired ARs, cluster ids)
        self.steps = []             # [(description, method, args, kwargs)]
        self.alloc = None           # (template, first cluster) of a new vnet
        self.errored = None         # the vnet oned left in ERROR, deleted before the allocation
        self.before = _vnet_view(vnet)
        self.after = {}
        self.entry = dict(id=vnet.id if vnet else None, actions=[])
        self.wait_ready = False     # new, or found in LOCK_CREATE

    def fail(self, errors, message):
        self.entry["error"] = errors[self.name] = message


def _vnets_plan(task, clusters, check_mode):
    spec, vnet = task.spec, task.vnet
    if spec["state"] == "absent":
        if vnet is not None and vnet.state != VNET_LOCK_DELETE:
            task.steps.append(("delete vnet %s (%s)" % (vnet.name, vnet.id), "vn_delete", (vnet.id,), {}))
        task.after = task.before if vnet is not None and not task.steps else {}
        return
    task.wanted = template, desired_ars, cluster_ids = vnet_wanted(spec, clusters)
    if vnet is None or vnet.state == VNET_ERROR:
        _vnets_plan_allocation(task, check_mode)
        return
    if vnet.state == VNET_LOCK_CREATE and not check_mode:
        task.wait_ready = True      # planned once READY
    else:
        task.steps = plan_vnet_steps(vnet, template, desired_ars, cluster_ids, spec["force"], check_mode)
    task.after = _predict_vnet(task.before, template, desired_ars, cluster_ids)


def _vnets_plan_allocation(task, check_mode):
    """A new vnet, or one to allocate again because oned left it in ERROR."""
    template, desired_ars, cluster_ids = task.wanted
    planned = []
    if task.vnet is not None:
        task.errored = task.vnet
        planned.append(errored_vnet_deletion(task.vnet))
    alloc, first_cluster, task.after = vnet_allocation(task.name, template, desired_ars, cluster_ids)
    task.wanted = (task.after["template"], desired_ars, cluster_ids)
    task.alloc = (alloc, first_cluster)
    task.wait_ready = True
    planned.append("allocate vnet %s" % task.name)
    if cluster_ids:
        task.after["clusters"] = sorted(cluster_ids)
        planned.extend("add vnet to cluster %s" % c for c in cluster_ids[1:])
    if check_mode:
        task.entry["actions"].extend(planned)


def _vnets_run_steps(client, task, errors):
    """Run the task's steps; on an oned error record it and stop this vnet."""
    for description, method, args, kwargs in task.steps:
        try:
            getattr(client, method)(*args, **kwargs)
        except OneError as exc:
            task.fail(errors, exc.message)
            return False
        task.entry["actions"].append(description)
    return True


def _vnets_delete_errored(client, tasks, errors, timeout, interval):
    """Delete the vnets oned left in ERROR, then wait until all are gone (their names are taken until then)."""
    deleting = {}
    for task in tasks:
        if task.errored is None:
            continue
        try:
            client.vn_delete(task.errored.id)
        except OneError as exc:
            task.fail(errors, exc.message)
            continue
        task.entry["actions"].append(errored_vnet_deletion(task.errored))
        deleting[task.errored.id] = task
    if not deleting:
        return
    try:
        client.wait_vnets_gone(list(deleting), timeout=timeout, interval=interval)
    except OneTimeoutError as exc:
        for vnet_id in exc.pending["vnets"]:
            deleting[vnet_id].fail(errors, "vnet %s in state ERROR not deleted after %ss" % (vnet_id, timeout))
            deleting[vnet_id].after = {}


def _vnets_allocate(client, tasks, errors):
    """Allocate the new vnets, run the steps of the others; {id: task} of those to wait for."""
    waiting = {}
    for task in tasks:
        if "error" in task.entry:
            continue
        if task.alloc is not None:
            try:
                task.entry["id"] = task.after["id"] = client.vn_allocate(*task.alloc)
            except OneError as exc:
                task.fail(errors, exc.message)
                task.after = {}
                continue
            task.entry["actions"].append("allocate vnet %s" % task.name)
        if task.wait_ready:
            waiting[task.entry["id"]] = task
        else:
            _vnets_run_steps(client, task, errors)
    return waiting


def _vnets_wait_ready(client, waiting, errors, timeout, interval):
    """Wait for the new (or LOCK_CREATE) vnets together; {id: Vnet} of those READY, the others failed."""
    if not waiting:
        return {}
    try:
        return client.wait_vnets_ready(list(waiting), timeout=timeout, interval=interval)
    except (OneActionError, OneTimeoutError) as exc:
        found, reason = getattr(exc, "vnets", {}), exc.message
    for vnet_id, task in waiting.items():
        vnet = found.get(vnet_id)
        if vnet is None:
            task.entry["state"] = "gone"
            task.fail(errors, "disappeared while waiting for READY")
        elif vnet.state != VNET_READY:
            task.entry["state"] = vnet.state_name
            task.fail(errors, "not READY (state %s): %s" % (vnet.state_name, vnet.template.get("ERROR", reason)))
    return {i: v for i, v in found.items() if v is not None and v.state == VNET_READY}


def _vnets_finish_ready(client, waiting, ready, errors):
    """The remaining writes of the vnets now READY (the other clusters, or all of a LOCK_CREATE one)."""
    for vnet_id, vnet in ready.items():
        task = waiting[vnet_id]
        template, desired_ars, cluster_ids = task.wanted
        try:
            task.steps = plan_vnet_steps(vnet, template, desired_ars, cluster_ids, task.spec["force"])
        except OneError as exc:
            task.fail(errors, exc.message)
            continue
        if task.alloc is None:
            task.before = _vnet_view(vnet)
            task.after = _predict_vnet(task.before, template, desired_ars, cluster_ids)
        _vnets_run_steps(client, task, errors)


def _vnets_summary(tasks, errors):
    summary = dict(created=0, updated=0, deleted=0, unchanged=0, failed=0)
    for task in tasks:
        if "error" in task.entry:
            summary["failed"] += 1
        elif not task.entry["actions"]:
            summary["unchanged"] += 1
        elif task.spec["state"] == "absent":
            summary["deleted"] += 1
        elif task.alloc is not None:
            summary["created"] += 1
        else:
            summary["updated"] += 1
    planned = {task.name for task in tasks}
    summary["failed"] += len([k for k in errors if k not in planned and k != "_wait"])
    return summary


def vnets_run(client, params, check_mode, diff_mode=True):
    """Batch vnets: one vnpool read (+ one clusterpool read), only the writes needed.

    Vnets oned left in ERROR are deleted first (and waited for together),
    then the new ones are allocated and waited for together (one vnpool read
    per poll), then get their remaining writes (other clusters).  A failing
    vnet does not stop the others; the result's ``failed_msg`` names them.
    """
    specs = normalize_vnet_specs(params)
    pool = client.vnpool()
    needs_clusters = any(s["state"] == "present" and s.get("clusters") is not None for s in specs)
    clusters = client.clusterpool() if needs_clusters else None
    errors, tasks = {}, []
    for spec in specs:
        try:
            task = _VnetTask(spec, pool.named(spec["name"]))
            _vnets_plan(task, clusters, check_mode)
        except OneError as exc:
            errors[spec["name"]] = exc.message
            continue
        tasks.append(task)

    timeout, interval = params["wait_timeout"], params["poll_interval"]
    if check_mode:
        for task in tasks:
            task.entry["actions"].extend(step[0] for step in task.steps)
    else:
        _vnets_delete_errored(client, tasks, errors, timeout, interval)
        waiting = _vnets_allocate(client, tasks, errors)
        ready = _vnets_wait_ready(client, waiting, errors, timeout, interval)
        _vnets_finish_ready(client, waiting, ready, errors)
        gone = [t.vnet.id for t in tasks if t.spec["state"] == "absent" and t.entry["actions"]]
        if gone and params["wait"]:
            try:
                client.wait_vnets_gone(gone, timeout=timeout, interval=interval)
            except OneTimeoutError as exc:
                errors["_wait"] = exc.message

    report, before, after = {}, {}, {}
    for task in tasks:
        if "error" in task.entry and not task.entry["actions"]:
            task.after = task.before
        if task.entry["actions"] or "error" in task.entry:
            if task.after:
                task.entry.setdefault("state", task.vnet.state_name if task.vnet and not task.wait_ready
                                      else "READY")
            report[task.name] = task.entry
            before[task.name], after[task.name] = task.before, task.after
    result = dict(changed=any(t.entry["actions"] for t in tasks), vnets=report,
                  summary=_vnets_summary(tasks, errors))
    if diff_mode:
        result["diff"] = dict(before=before, after=after)
    if errors:
        result["errors"] = errors
        result["failed_msg"] = "%d vnet(s) failed: %s" % (
            len([k for k in errors if k != "_wait"]) or 1,
            "; ".join("%s: %s" % (k, v) for k, v in sorted(errors.items())[:10]))
    return result


def _predict_vnet(view, template, desired_ars, cluster_ids):
    after = dict(view)
    after["template"] = dict(view.get("template", {}))
    after["template"].update(template)
    if desired_ars is not None:
        used = {a["key"]: a["used_leases"] for a in view.get("address_ranges", [])}
        after["address_ranges"] = sorted([dict(key=a["key"], type=a["type"], ip=a["ip"], mac=a["mac"],
                                               size=a["size"], used_leases=used.get(a["key"], 0))
                                          for a in desired_ars], key=lambda d: d["key"])
    if cluster_ids is not None:
        after["clusters"] = sorted(cluster_ids)
    return after


# --------------------------------------------------------------------------
# datastores
# --------------------------------------------------------------------------

def _datastore_template(params):
    tmpl = normalize_attrs(params.get("template"))
    if "BASE_PATH" in tmpl:
        raise OneError("BASE_PATH cannot be set in the template: oned puts every datastore in "
                       "DATASTORE_LOCATION/<id> (oned.conf); use base_path to check that directory")
    ds_type = params["type"]
    tmpl["TYPE"] = DATASTORE_TYPE_TEMPLATE[ds_type]
    if params.get("tm_mad"):
        tmpl["TM_MAD"] = params["tm_mad"]
    if params.get("ds_mad") and ds_type != "system":
        tmpl["DS_MAD"] = params["ds_mad"]
    return tmpl


# oned 7.4.0 ignores BASE_PATH at allocate and update: a datastore's BASE_PATH
# is always oned.conf's DATASTORE_LOCATION plus its id. So base_path names that
# directory and is only compared with what oned reports (or, before a datastore
# is allocated, with DATASTORE_LOCATION); it is never sent.

def _same_dir(left, right):
    return posixpath.normpath(left) == posixpath.normpath(right)


def _base_path_refused(name, actual, base_path):
    return OneError("datastore %s: oned puts it at %s (DATASTORE_LOCATION of oned.conf, plus the id) and ignores "
                    "BASE_PATH, so base_path %s cannot be applied; set DATASTORE_LOCATION in oned.conf to it, "
                    "or change base_path" % (name, actual, base_path))


def check_base_path(ds, base_path):
    """An existing datastore: the BASE_PATH oned reports must be <base_path>/<id>."""
    if base_path and not _same_dir(posixpath.dirname(ds.base_path), base_path):
        raise _base_path_refused(ds.name, ds.base_path, base_path)


def check_datastore_location(client, name, base_path):
    """Before a datastore is allocated: oned's DATASTORE_LOCATION must be base_path."""
    if not base_path:
        return
    location = client.datastore_location()
    if not _same_dir(location, base_path):
        raise _base_path_refused(name, "%s/<id>" % location.rstrip("/"), base_path)


def _ds_view(ds):
    if ds is None:
        return {}
    view = ds.summary()
    view["template"] = dict(ds.template)
    return view


def datastore_run(client, params, check_mode):
    changes = Changes(check_mode)
    pool = client.datastorepool()
    ds = _find(pool, params, "datastore")
    before = _ds_view(ds)
    if params["state"] == "absent":
        if ds is None:
            return _result(changes, {}, {}, datastore={})
        changes.do("delete datastore %s (%s)" % (ds.name, ds.id), client.datastore_delete, ds.id)
        return _result(changes, before, {}, datastore={})

    template = _datastore_template(params)
    cluster_ids = None
    if params.get("clusters") is not None:
        cluster_ids = ids_of(client.clusterpool(), params["clusters"], "cluster")
    if ds is None:
        if params.get("name") is None:
            raise OneNotFoundError("datastore %s does not exist (give a name to create it)" % params["id"])
        if "TM_MAD" not in template:
            raise OneError("tm_mad is required to create datastore %s" % params["name"])
        if params["type"] != "system" and "DS_MAD" not in template:
            raise OneError("ds_mad is required to create %s datastore %s" % (params["type"], params["name"]))
        check_datastore_location(client, params["name"], params.get("base_path"))
        alloc = dict(NAME=params["name"])
        alloc.update(template)
        first = cluster_ids[0] if cluster_ids else -1
        new_id = changes.do("allocate datastore %s" % params["name"], client.datastore_allocate, alloc, first)
        after = dict(id=new_id, name=params["name"], type=params["type"], ds_mad=template.get("DS_MAD", "-"),
                     tm_mad=template["TM_MAD"], base_path="", clusters=[0 if first == -1 else first],
                     template=template)
        if check_mode:
            if cluster_ids:
                for cid in cluster_ids[1:]:
                    changes.actions.append("add datastore to cluster %s" % cid)
                after["clusters"] = sorted(cluster_ids)
            return _result(changes, before, after, datastore=after)
        ds = client.datastore_info(new_id)
    else:
        if DATASTORE_TYPES.get(ds.type, "").lower() != params["type"]:
            raise OneError("datastore %s is of type %s, not %s; OpenNebula cannot convert it"
                           % (ds.name, ds.type_name.lower(), params["type"]))
        check_base_path(ds, params.get("base_path"))

    current = dict(ds.template)
    current["TYPE"] = DATASTORE_TYPE_TEMPLATE[ds.type_name.lower()]
    current.setdefault("TM_MAD", ds.tm_mad)
    if ds.ds_mad and ds.ds_mad != "-":
        current.setdefault("DS_MAD", ds.ds_mad)
    differ = attrs_differ(template, current)
    if differ:
        changes.do("update template %s" % ", ".join(differ), client.datastore_update, ds.id,
                   {k: template[k] for k in differ}, merge=True)
    if cluster_ids is not None:
        to_add, to_remove = cluster_membership_changes(ds.clusters, cluster_ids, True)
        for cid in to_add:
            changes.do("add datastore to cluster %s" % cid, client.cluster_add, "datastore", cid, ds.id)
        for cid in to_remove:
            changes.do("remove datastore from cluster %s" % cid, client.cluster_del, "datastore", cid, ds.id)
    if changes.changed and not check_mode:
        ds = client.datastore_info(ds.id)
        after = _ds_view(ds)
    else:
        after = _ds_view(ds)
        after["template"].update({k: template[k] for k in differ})
        if cluster_ids is not None:
            after["clusters"] = sorted(cluster_ids)
    return _result(changes, before, after, datastore=after)

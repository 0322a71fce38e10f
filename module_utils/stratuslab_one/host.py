# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reconciler of opennebula_hosts (many hosts in one pass).

It plans each host with ``plan_host``: a list of (action, args) steps, run
by ``execute_host_steps``, described by ``describe_step`` and predicted (check
mode, diff) by ``_predict_host``. It reads each pool once and waits for all
the hosts together.

A host to delete that still has VMs is drained first when the module's
``drain`` allows it (``DrainPlanner``): it is disabled, each VM is migrated
to another enabled host of its cluster (live when it runs), the VMs are
waited for on their new hosts, then the host is deleted. Every VM's new host
is chosen while planning, before any write: a host whose VMs cannot all be
placed is refused, naming them, and nothing is done to it.
"""

from __future__ import annotations

from ansible.module_utils.stratuslab_one.errors import (ACTION, OneActionError, OneConnectionError, OneError,
                                                       OneInternalError, OneTimeoutError)
from ansible.module_utils.stratuslab_one.model import (
    HOST_DISABLED, HOST_ERROR, HOST_MONITORED, HOST_OFFLINE, LCM_RUNNING, VM_ACTIVE, VM_POWEROFF, VM_SUSPENDED, Pool)
from ansible.module_utils.stratuslab_one.template import attrs_differ, normalize_attrs

# OpenNebula's cluster 0, "default": every host that names no other cluster.
DEFAULT_CLUSTER_ID = 0


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


DRAIN_MODES = ["none", "live"]
# Host states a drained host's VMs may go to: monitored and enabled.
_TARGET_STATES = (HOST_MONITORED, 1)  # 1: MONITORING_MONITORED


class DrainPlanner:
    """Chooses, before any write, where each VM of a host to delete goes.

    ``hosts``: the host pool read once; ``specs``: the hosts of the call (a
    host the call disables, takes offline or deletes receives no VM);
    ``params``: the module's ``drain``, ``drain_targets``, ``wait_timeout``
    and ``poll_interval``. The VM pool is read once, when a host to delete
    has VMs. Each VM goes to the allowed host of its cluster with the most
    free memory that has room for it (CPU and memory, as oned counts them in
    HOST_SHARE), counting the VMs planned there before it.
    """

    def __init__(self, client, hosts, specs, params):
        self.client = client
        self.hosts = hosts
        self.mode = params.get("drain") or "none"
        self.targets = params.get("drain_targets")
        self.timeout = params.get("wait_timeout") or 600
        self.interval = params.get("poll_interval") or 2.0
        self.avoid = {s["name"] for s in specs if s["state"] in ("absent", "disabled", "offline")}
        self.planned = {}  # host id -> [cpu, memory KiB] planned onto it in this call
        self.moves = {}  # host name -> the moves planned for its VMs
        self._vms = None

    def vms(self):
        if self._vms is None:
            self._vms = self.client.vmpool()
        return self._vms

    def _candidates(self, host):
        allowed = None if self.targets is None else set(str(t) for t in self.targets)
        return [h for h in self.hosts if h.id != host.id and h.cluster_id == host.cluster_id
                and h.state in _TARGET_STATES and h.name not in self.avoid
                and (allowed is None or h.name in allowed)]

    def _free(self, host):
        cpu, mem = self.planned.get(host.id, (0, 0))
        return host.max_cpu - host.cpu_usage - cpu, host.max_mem - host.mem_usage - mem

    def plan(self, host):
        """(steps, moves): the steps that empty ``host`` (deleting it last is the caller's), and
        [{id, name, state, to, to_id}] per VM. OneError naming the VMs when they cannot all go."""
        pool = self.vms()
        vms = [pool.by_id.get(i) for i in host.vms]
        vms = [vm for vm in vms if vm is not None]
        if not vms:
            return [], []
        listing = ", ".join("%s (%s, %s)" % (vm.id, vm.name, vm.state_name) for vm in vms)
        if self.mode == "none":
            raise OneActionError("host %s still has %d VM(s): %s; with drain none they are not moved: migrate "
                                 "or terminate them first" % (host.name, len(vms), listing),
                                 code=ACTION, resp_id=host.id)
        stuck = [vm for vm in vms if not _movable(vm)]
        if stuck:
            raise OneActionError("host %s has VM(s) that cannot be migrated in their state: %s; only RUNNING, "
                                 "POWEROFF and SUSPENDED VMs move: wait for them or resolve them, then run again"
                                 % (host.name, ", ".join("%s (%s, %s)" % (vm.id, vm.name, vm.state_name)
                                                         for vm in stuck)),
                                 code=ACTION, resp_id=host.id)
        candidates = self._candidates(host)
        if not candidates:
            raise OneActionError("host %s still has %d VM(s): %s; no other enabled host of its cluster %s can "
                                 "take them" % (host.name, len(vms), listing, host.cluster or host.cluster_id),
                                 code=ACTION, resp_id=host.id)
        steps, moves, placed = [], [], {}
        if host.state not in (HOST_DISABLED, HOST_OFFLINE):
            steps.append(("status", ("disabled",)))
        homeless = []
        for vm in vms:
            need = (int(round(vm.cpu * 100)), vm.memory_mb * 1024)
            fits = [h for h in candidates if self._free(h)[0] >= need[0] and self._free(h)[1] >= need[1]]
            if not fits:
                homeless.append(vm)
                continue
            target = max(fits, key=lambda h: (self._free(h)[1], -h.id))
            cpu, mem = self.planned.get(target.id, (0, 0))
            self.planned[target.id] = (cpu + need[0], mem + need[1])
            live = vm.state == VM_ACTIVE
            steps.append(("migrate", (vm.id, vm.name, target.id, target.name, live)))
            moves.append(dict(id=vm.id, name=vm.name, state=vm.state_name, to=target.name, to_id=target.id,
                              live=live))
            placed[vm.id] = target.id
        if homeless:
            for vm_id, target_id in placed.items():  # give back what this host had planned
                vm = pool.by_id[vm_id]
                cpu, mem = self.planned[target_id]
                self.planned[target_id] = (cpu - int(round(vm.cpu * 100)), mem - vm.memory_mb * 1024)
            raise OneActionError("host %s: no other enabled host of its cluster %s has room for VM(s) %s (enabled "
                                 "hosts there: %s)" % (host.name, host.cluster or host.cluster_id,
                                                       ", ".join("%s (%s, %s)" % (vm.id, vm.name, vm.state_name)
                                                                 for vm in homeless),
                                                       ", ".join(h.name for h in candidates)),
                                 code=ACTION, resp_id=host.id)
        steps.append(("wait_moved", (placed, self.timeout, self.interval)))
        self.moves[host.name] = moves
        return steps, moves


def _movable(vm):
    if vm.state == VM_ACTIVE:
        return vm.lcm_state == LCM_RUNNING
    return vm.state in (VM_POWEROFF, VM_SUSPENDED)


def plan_host(spec, host, clusters, warnings, drain=None):
    """Plan the writes for one host.

    ``spec``: name, state, im_mad, vmm_mad, cluster (name/id or None),
    template (dict or None).  Returns a list of (action, args) tuples with
    action in allocate, delete, cluster, status, update, and for a host to
    delete that has VMs (planned by ``drain``, a DrainPlanner) migrate and
    wait_moved before the delete.
    """
    steps = []
    if spec["state"] == "absent":
        if host is not None:
            if host.vms:
                if drain is None:
                    raise OneActionError("host %s still has VMs %s" % (host.name, host.vms), code=ACTION,
                                         resp_id=host.id)
                steps.extend(drain.plan(host)[0])
            steps.append(("delete", (host.id,)))
        return steps
    cluster_id = None
    if spec.get("cluster") is not None:
        cluster_id = clusters.require(spec["cluster"]).id
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
    elif (cluster_id is not None and cluster_id != DEFAULT_CLUSTER_ID
          and host.id not in clusters.require(cluster_id).hosts):
        # oned writes a host's cluster and the cluster's set of hosts one
        # after the other (allocate, addhost): stopped between the two, it
        # leaves a host that names a cluster which does not list it, and no
        # call of the API on that cluster puts it right (addhost answers at
        # once, delete fails). A move to the default cluster does (it fails
        # only at its last write, taking the host out of the set that lacks
        # it), then back.
        warnings.append("host %s (%d) names cluster %s, which does not list it (oned stopped between the two "
                        "writes of an allocate or a move): moved to the default cluster and back"
                        % (host.name, host.id, cluster_id))
        steps.append(("recluster", (cluster_id,)))
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
        elif action == "recluster":
            try:
                client.cluster_add("host", DEFAULT_CLUSTER_ID, host_id)
            except OneInternalError as exc:
                if "not in the cluster set" not in exc.message:
                    raise
            client.cluster_add("host", args[0], host_id)
        elif action == "status":
            client.host_status(host_id, args[0])
        elif action == "update":
            client.host_update(host_id, args[0], merge=True)
        elif action == "migrate":
            client.vm_migrate(args[0], args[2], args[4])
        elif action == "wait_moved":
            client.wait_vms_moved(args[0], timeout=args[1], interval=args[2])
        progress.update(id=host_id, done=progress["done"] + 1)
    return host_id


def describe_step(action, args):
    """What a step writes, for ``actions``; None for a step that only waits."""
    if action == "migrate":
        return "migrate VM %s (%s) %sto host %s (%s)" % (args[0], args[1], "live " if args[4] else "",
                                                         args[3], args[2])
    if action == "wait_moved":
        return None
    if action == "allocate":
        return "allocate (im_mad=%s, vmm_mad=%s, cluster=%s)" % (args[1], args[2], args[3])
    if action == "delete":
        return "delete"
    if action == "cluster":
        return "move to cluster %s" % args[0]
    if action == "recluster":
        return "add to cluster %s's set of hosts again (through the default cluster)" % args[0]
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
        elif action == "recluster":
            view["cluster_id"] = args[0]
            view["listed_by_cluster"] = True
        elif action == "status":
            view["state"] = {"enabled": "INIT", "disabled": "DISABLED", "offline": "OFFLINE"}[args[0]]
        elif action == "update":
            view["template"] = dict(view.get("template", {}), **args[0])
    return view


def _host_before(host, spec, steps=()):
    if host is None:
        return {}
    view = _host_view(host.name, host.cluster_id, host.state_name, im_mad=host.im_mad,
                      vm_mad=host.vm_mad)
    if any(action == "recluster" for action, _ in steps):
        # The one difference a recluster makes: the cluster lists the host
        # again (its cluster_id stays the same).
        view["listed_by_cluster"] = False
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
    """opennebula_hosts' options beside hosts: the defaults of its hosts, and how it waits and drains.

    poll_interval, drain and drain_targets are documented once, in doc fragment stratuslab_one.host.
    """
    return dict(
        state=dict(type="str", default="present", choices=list(HOST_WANTED_STATES)),
        im_mad=dict(type="str", default="kvm"),
        vmm_mad=dict(type="str", default="kvm", aliases=["vm_mad"]),
        cluster=dict(type="str"),
        template=dict(type="dict"),
        wait=dict(type="bool", default=wait),
        wait_timeout=dict(type="int", default=wait_timeout),
        poll_interval=dict(type="float", default=2.0),
        drain=dict(type="str", default="none", choices=list(DRAIN_MODES)),
        drain_targets=dict(type="list", elements="str"),
    )


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
    needs_clusters = params.get("cluster") is not None or any(
        s.get("cluster") is not None and s["state"] != "absent" for s in specs)
    clusters = client.clusterpool() if needs_clusters else Pool("cluster", [])
    warnings, report, errors, to_wait = [], {}, {}, {}
    before, after = {}, {}
    summary = dict(allocated=0, deleted=0, moved=0, status=0, updated=0, migrated=0, unchanged=0, failed=0)
    counters = {"allocate": "allocated", "delete": "deleted", "cluster": "moved", "recluster": "moved",
                "status": "status", "update": "updated", "migrate": "migrated"}
    drain = DrainPlanner(client, hosts, specs, params)
    planned = []
    for spec in specs:
        host = hosts.named(spec["name"])
        try:
            steps = plan_host(spec, host, clusters, warnings, drain)
        except OneError as exc:
            if isinstance(exc, OneConnectionError):
                raise  # oned, not this object: the whole task waits for it or fails (run_module)
            errors[spec["name"]] = exc.message
            summary["failed"] += 1
            continue
        if not steps:
            summary["unchanged"] += 1
            continue
        planned.append((spec, host, steps))

    for spec, host, steps in planned:
        name = spec["name"]
        entry = dict(id=host.id if host else None, actions=[a for a in (describe_step(*s) for s in steps) if a])
        if name in drain.moves:
            entry["vms"] = drain.moves[name]
        if diff_mode:
            before[name] = _host_before(host, spec, steps)
        after[name] = _predict_host(spec, host, steps, clusters)
        report[name] = entry
        if not check_mode:
            progress = {}
            try:
                entry["id"] = execute_host_steps(client, steps, host.id if host else None, progress)
            except OneError as exc:
                if isinstance(exc, OneConnectionError):
                    raise  # oned, not this object: the whole task waits for it or fails (run_module)
                entry["id"] = progress.get("id")
                entry["done"] = progress.get("done", 0)
                entry["error"] = exc.message
                errors[name] = exc.message
                summary["failed"] += 1
                # what was really done: the steps before the failing one
                after[name] = (_predict_host(spec, host, steps[:entry["done"]], clusters) if entry["done"]
                               else _host_before(host, spec, steps))
                if after[name]:
                    entry["state"] = after[name]["state"]
                continue
            if _needs_wait(spec, steps):
                to_wait[entry["id"]] = name
        if after[name]:
            entry["state"] = after[name]["state"]
        for action, _ in steps:
            if action in counters:
                summary[counters[action]] += 1

    changed = any("error" not in e or e.get("done") for e in report.values())
    result = dict(changed=changed, hosts=report, summary=summary, warnings=warnings,
                  unlisted=_unlisted(hosts, specs, params.get("cluster"), clusters))
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


def _unlisted(hosts, specs, cluster, clusters):
    """The registered hosts (of ``cluster`` when given) that ``specs`` does not name: [{name, id, cluster, vms}]."""
    listed = {s["name"] for s in specs}
    cluster_id = None
    if cluster is not None:
        found = clusters.get(cluster)
        if found is None:
            return []
        cluster_id = found.id
    return [dict(name=h.name, id=h.id, cluster=h.cluster, vms=h.vms) for h in hosts
            if h.name not in listed and (cluster_id is None or h.cluster_id == cluster_id)]


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

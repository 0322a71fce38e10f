# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reconcilers of opennebula_host and opennebula_hosts (one host, or many in one pass).

Both plan each host with ``plan_host``: a list of (action, args) steps, run
by ``execute_host_steps``, described by ``describe_step`` and predicted (check
mode, diff) by ``_predict_host``. The batch reads each pool once and waits
for all the hosts together.
"""

from __future__ import annotations

from ansible.module_utils.stratuslab_one.errors import OneActionError, OneConnectionError, OneError, OneTimeoutError
from ansible.module_utils.stratuslab_one.model import HOST_DISABLED, HOST_ERROR, HOST_MONITORED, HOST_OFFLINE, Pool
from ansible.module_utils.stratuslab_one.module import Changes, change_result
from ansible.module_utils.stratuslab_one.template import attrs_differ, normalize_attrs


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
    return change_result(changes, before, after, host=result_host, warnings=warnings)


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
                if isinstance(exc, OneConnectionError):
                    raise  # oned, not this object: the whole task waits for it or fails (run_module)
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

# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opennebula_vnets reconciler: many networks in one pass.

One vnpool read (and one clusterpool read); the networks oned left in ERROR
are deleted and waited for together, the new ones allocated and waited for
together, then each gets its remaining writes. A failing network does not
stop the others.
"""

from __future__ import annotations

from ansible.module_utils.stratuslab_one.errors import OneActionError, OneConnectionError, OneError, OneTimeoutError
from ansible.module_utils.stratuslab_one.model import VNET_ERROR, VNET_LOCK_CREATE, VNET_LOCK_DELETE, VNET_READY
from ansible.module_utils.stratuslab_one.vnet import (
    _predict_vnet, _vnet_view, errored_vnet_deletion, plan_vnet_steps, vnet_allocation, vnet_options,
    vnet_wanted)


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
        self.steps = []             # [(description, client method, args, kwargs)]
        self.alloc = None           # (template, first cluster) of a new vnet
        self.errored = None         # the vnet oned left in ERROR, deleted before the allocation
        self.before = _vnet_view(vnet)
        self.after = {}
        self.entry = dict(id=vnet.id if vnet else None, actions=[])
        self.wait_ready = False     # new, or found in LOCK_CREATE

    def fail(self, errors, message):
        self.entry["error"] = errors[self.name] = message


def _vnets_plan(client, task, clusters, check_mode):
    spec, vnet = task.spec, task.vnet
    if spec["state"] == "absent":
        if vnet is not None and vnet.state != VNET_LOCK_DELETE:
            task.steps.append(("delete vnet %s (%s)" % (vnet.name, vnet.id), client.vn_delete, (vnet.id,), {}))
        task.after = task.before if vnet is not None and not task.steps else {}
        return
    task.wanted = template, desired_ars, cluster_ids = vnet_wanted(spec, clusters)
    if vnet is None or vnet.state == VNET_ERROR:
        _vnets_plan_allocation(task, check_mode)
        return
    if vnet.state == VNET_LOCK_CREATE and not check_mode:
        task.wait_ready = True      # planned once READY
    else:
        task.steps = plan_vnet_steps(client, vnet, template, desired_ars, cluster_ids, spec["force"], check_mode)
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


def _vnets_run_steps(task, errors):
    """Run the task's steps; on an oned error record it and stop this vnet."""
    for description, method, args, kwargs in task.steps:
        try:
            method(*args, **kwargs)
        except OneError as exc:
            if isinstance(exc, OneConnectionError):
                raise  # oned, not this object: the whole task waits for it or fails (run_module)
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
            if isinstance(exc, OneConnectionError):
                raise  # oned, not this object: the whole task waits for it or fails (run_module)
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
                if isinstance(exc, OneConnectionError):
                    raise  # oned, not this object: the whole task waits for it or fails (run_module)
                task.fail(errors, exc.message)
                task.after = {}
                continue
            task.entry["actions"].append("allocate vnet %s" % task.name)
        if task.wait_ready:
            waiting[task.entry["id"]] = task
        else:
            _vnets_run_steps(task, errors)
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
            task.steps = plan_vnet_steps(client, vnet, template, desired_ars, cluster_ids, task.spec["force"])
        except OneError as exc:
            if isinstance(exc, OneConnectionError):
                raise  # oned, not this object: the whole task waits for it or fails (run_module)
            task.fail(errors, exc.message)
            continue
        if task.alloc is None:
            task.before = _vnet_view(vnet)
            task.after = _predict_vnet(task.before, template, desired_ars, cluster_ids)
        _vnets_run_steps(task, errors)


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


def _vnets_read(tasks, ready):
    """The READY networks wanted present, as this run last read them: {name: view}.

    No read is added for it: an existing network as the first pool read found
    it, a new one (or one found in LOCK_CREATE) as the wait read it READY. So
    a range this run adds to an existing network shows from the next run on.
    """
    networks = {}
    for task in tasks:
        if task.spec["state"] != "present" or "error" in task.entry:
            continue
        vnet = ready.get(task.entry["id"]) if task.wait_ready else task.vnet
        if vnet is not None and vnet.state == VNET_READY:
            networks[task.name] = _vnet_view(vnet)
    return networks


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
            _vnets_plan(client, task, clusters, check_mode)
        except OneError as exc:
            if isinstance(exc, OneConnectionError):
                raise  # oned, not this object: the whole task waits for it or fails (run_module)
            errors[spec["name"]] = exc.message
            continue
        tasks.append(task)

    timeout, interval = params["wait_timeout"], params["poll_interval"]
    ready = {}
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
                  summary=_vnets_summary(tasks, errors), networks=_vnets_read(tasks, ready))
    if diff_mode:
        result["diff"] = dict(before=before, after=after)
    if errors:
        result["errors"] = errors
        result["failed_msg"] = "%d vnet(s) failed: %s" % (
            len([k for k in errors if k != "_wait"]) or 1,
            "; ".join("%s: %s" % (k, v) for k, v in sorted(errors.items())[:10]))
    return result

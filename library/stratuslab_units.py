#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stratuslab_units
short_description: Keep several systemd units masked, enabled or running as asked, in one call
description:
  - Reads the state of every unit of O(units) with one C(systemctl show), then masks or unmasks, enables
    or disables, starts or stops only the units that differ, in O(units) order. A unit already as asked
    is left alone.
  - One call does what an M(ansible.builtin.systemd_service) task per unit does. That module reads each
    unit with several C(systemctl) calls and costs a host a module run per unit (about 0.2 CPU seconds
    before any work, since Python compiles the module's payload at every run); a KVM node's six libvirt
    units cost six runs per rerun of the site, and now cost one.
  - Restarts and reloads stay with M(ansible.builtin.systemd_service) in the roles' handlers, which run
    only when something changed, so a list form would gain nothing there.
  - For systemd hosts only. Units are system units (no user scope).
version_added: "1.0.0"
author: StratusLab site deployer contributors
options:
  units:
    description:
      - The units, handled in this order. Give each at least one of O(units[].masked), O(units[].enabled)
        and O(units[].state).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Unit name; without a suffix systemd means C(.service).
        type: str
        required: true
      masked:
        description:
          - V(true) masks the unit (it can then never be started); V(false) unmasks a masked unit.
          - A masked unit can be masked before its package is installed.
        type: bool
      enabled:
        description:
          - V(true) enables the unit at boot (V(enable) is run unless the unit's file state is V(enabled),
            V(static), V(generated) or V(transient); an V(indirect), V(alias) or V(enabled-runtime) unit is
            enabled again, as M(ansible.builtin.systemd_service) does). V(false) disables it.
          - Not with O(units[].masked=true).
        type: bool
      state:
        description:
          - V(started) starts the unit unless it is active or activating; V(stopped) stops it if it is
            active, activating, reloading or deactivating.
          - V(started) not with O(units[].masked=true).
        type: str
        choices: [started, stopped]
  daemon_reload:
    description:
      - Run C(systemctl daemon-reload) first when a unit of O(units) is not loaded yet or its files changed on
        disk since systemd read them (C(NeedDaemonReload)). Only then, since a reload on every run costs each host a
        re-read of all its units. A reload counts as a change.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: A unit that systemd does not know yet (its package not installed) is reported as a change in
      check mode; a real run fails on it unless O(units[].masked=true).
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Run libvirt's UNIX sockets, never its TCP listener
  stratuslab_units:
    daemon_reload: true
    units:
      - {name: libvirtd-tcp.socket, masked: true, state: stopped}
      - {name: libvirtd.socket, enabled: true, state: started}
      - {name: libvirtd.service, enabled: true}
"""

RETURN = r"""
actions:
  description: What was (or in check mode would be) done, as C(systemctl) verbs per unit, in O(units) order;
    units left alone are not listed. A daemon-reload is listed under the name V(daemon-reload).
  returned: always
  type: list
  elements: dict
  sample: [{"unit": "libvirtd.socket", "actions": ["enable", "start"]}]
"""

from ansible.module_utils.basic import AnsibleModule

PROPERTIES = ("Id", "LoadState", "LoadError", "ActiveState", "UnitFileState", "NeedDaemonReload")
# File states that need no `systemctl enable` (systemd_service also enables indirect, alias and runtime units).
ENABLED = frozenset(("enabled", "static", "generated", "transient"))
# File states `systemctl disable` changes.
DISABLE = frozenset(("enabled", "enabled-runtime", "indirect", "alias", "linked", "linked-runtime"))
RUNNING = frozenset(("active", "activating", "reloading"))
STOPPABLE = RUNNING | {"deactivating"}

ARGUMENT_SPEC = dict(
    units=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str", required=True),
        masked=dict(type="bool"),
        enabled=dict(type="bool"),
        state=dict(type="str", choices=["started", "stopped"]),
    )),
    daemon_reload=dict(type="bool", default=False),
)


def parse_show(text, count):
    """`systemctl show -p ... a b c` prints one block per unit, in argument order, blank-line separated."""
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _, value = line.partition("=")
        current[key] = value
    if current:
        blocks.append(current)
    if len(blocks) != count:
        raise ValueError(f"systemctl show printed {len(blocks)} units for the {count} asked")
    return blocks


def describe(status):
    if status.get("LoadState") == "not-found":
        return "not found"
    return f"{status.get('UnitFileState') or 'no unit file state'}, {status.get('ActiveState') or 'unknown'}"


# What each verb leaves in the properties `describe` and `plan` read (the diff's "after", and check mode).
EFFECTS = {
    "mask": {"LoadState": "masked", "UnitFileState": "masked"},
    "unmask": {"LoadState": "loaded", "UnitFileState": "disabled"},
    "enable": {"LoadState": "loaded", "UnitFileState": "enabled"},
    "disable": {"UnitFileState": "disabled"},
    "start": {"LoadState": "loaded", "ActiveState": "active"},
    "stop": {"ActiveState": "inactive"},
}


def apply(status, verbs):
    status = dict(status)
    for verb in verbs:
        status.update(EFFECTS[verb])
    return status


def plan(unit, status, check_mode):
    """The systemctl verbs that bring one unit from `status` to what `unit` asks, in the order to run them.

    Unmasking is planned alone (second value True): the unit's own file state shows only after it, so
    the caller runs it, reads the unit again and plans the rest with masked left out.
    """
    name = unit["name"]
    file_state = status.get("UnitFileState", "")
    active = status.get("ActiveState", "")
    masked_now = status.get("LoadState") == "masked" or file_state in ("masked", "masked-runtime")
    if unit["masked"] is True:
        verbs = [] if masked_now else ["mask"]
        if unit["state"] == "stopped" and active in STOPPABLE:
            verbs.append("stop")
        return verbs, False
    if unit["masked"] is False and masked_now:
        return ["unmask"], True
    if masked_now and (unit["enabled"] or unit["state"] == "started"):
        raise LookupError(f"unit {name} is masked; give it masked: false to unmask it first")
    if status.get("LoadState") == "not-found":
        if not check_mode:
            raise LookupError(f"systemd has no unit {name} (LoadState not-found): is its package installed?")
        # Check mode: an earlier task of the run may install it. Assume a disabled, inactive unit.
        file_state, active = "disabled", "inactive"
    elif status.get("LoadError") and status.get("LoadState") != "loaded":
        raise LookupError(f"systemd could not load unit {name}: {status['LoadError']}")
    verbs = []
    if unit["enabled"] is True and file_state not in ENABLED:
        verbs.append("enable")
    elif unit["enabled"] is False and file_state in DISABLE:
        verbs.append("disable")
    if unit["state"] == "started" and active not in RUNNING:
        verbs.append("start")
    elif unit["state"] == "stopped" and active in STOPPABLE:
        verbs.append("stop")
    return verbs, False


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    units = module.params["units"]
    for index, unit in enumerate(units):
        label = f"units[{index}] ({unit['name']})"
        if unit["masked"] is None and unit["enabled"] is None and unit["state"] is None:
            module.fail_json(msg=f"{label}: give at least one of masked, enabled and state")
        if unit["masked"] is True and (unit["enabled"] is True or unit["state"] == "started"):
            module.fail_json(msg=f"{label}: a masked unit cannot be enabled or started")
    systemctl = module.get_bin_path("systemctl", required=True)
    names = [unit["name"] for unit in units]
    actions = []

    def show(selected):
        rc, out, err = module.run_command([systemctl, "show", "--property=" + ",".join(PROPERTIES), "--", *selected])
        if rc != 0:
            module.fail_json(msg=f"systemctl show failed (rc {rc}): {err.strip()}", actions=actions)
        try:
            return parse_show(out, len(selected))
        except ValueError as exc:
            module.fail_json(msg=str(exc), stdout=out, actions=actions)

    def run(verb, name=None):
        if module.check_mode:
            return
        rc, out, err = module.run_command([systemctl, verb] + (["--", name] if name else []))
        if rc != 0:
            module.fail_json(msg=f"systemctl {verb} {name or ''} failed (rc {rc}): {(err or out).strip()}",
                             actions=actions)

    before = show(names)
    statuses = before
    if module.params["daemon_reload"]:
        stale = [s for s in before if s.get("NeedDaemonReload") == "yes"]
        missing = [s for s in before if s.get("LoadState") == "not-found"]
        if stale or (missing and not module.check_mode):
            run("daemon-reload")
            if not module.check_mode:
                statuses = show(names)
            # A reload that found nothing new (a unit still not found) changed nothing.
            if stale or statuses != before:
                actions.append({"unit": "daemon-reload", "actions": ["daemon-reload"]})

    afters = []
    for unit, status in zip(units, statuses):
        try:
            verbs, reread = plan(unit, status, module.check_mode)
            done = list(verbs)
            for verb in verbs:
                run(verb, unit["name"])
            if reread:
                if module.check_mode:
                    status = apply(status, verbs)
                else:
                    (status,) = show([unit["name"]])
                verbs, _ = plan(dict(unit, masked=None), status, module.check_mode)
                for verb in verbs:
                    run(verb, unit["name"])
                done += verbs
        except LookupError as exc:
            module.fail_json(msg=str(exc), actions=actions)
        if done:
            actions.append({"unit": unit["name"], "actions": done})
        afters.append(apply(status, verbs))

    result = {"changed": bool(actions), "actions": actions}
    if module._diff:
        result["diff"] = {
            "before": "".join(f"{n}: {describe(s)}\n" for n, s in zip(names, before)),
            "after": "".join(f"{n}: {describe(s)}\n" for n, s in zip(names, afters)),
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()

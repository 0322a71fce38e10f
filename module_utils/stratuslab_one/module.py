# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every opennebula_* module shares: its connection options, its runner and its change set.

A module file holds its documentation, its own options and a one-call
``main()``: ``run_one_module(cluster_run, options, by_name_or_id=True)``.
``run_one_module`` builds the AnsibleModule (connection options, check mode),
the client, runs the reconciler ``run(client, params, check_mode)`` and
exits or fails with oned's own message; ``api_password`` is never returned,
on success or failure.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.stratuslab_one.errors import OneConnectionError, OneError, OneTimeoutError
from ansible.module_utils.stratuslab_one.transport import OneClient, resolve_connection


def connection_argument_spec():
    """The shared options, documented in doc_fragments/stratuslab_one.py."""
    return dict(
        api_url=dict(type="str", aliases=["api_endpoint"]),
        api_username=dict(type="str"),
        api_password=dict(type="str", no_log=True, aliases=["api_token"]),
        validate_certs=dict(type="bool", default=True),
        api_timeout=dict(type="int", default=30),
        api_retry_timeout=dict(type="int", default=60),
    )


def client_from_params(params, **kwargs):
    url, user, password = resolve_connection(params.get("api_url"), params.get("api_username"),
                                             params.get("api_password"))
    return OneClient(url=url, username=user, password=password,
                     validate_certs=params.get("validate_certs", True),
                     timeout=params.get("api_timeout") or 30,
                     down_timeout=params.get("api_retry_timeout", 60), **kwargs)


# How many writes with a lost answer a task goes on after (reading OpenNebula
# again each time) before it fails.
MAX_LOST_ANSWERS = 3


def run_module(module, body):
    """Run ``body(client, module) -> result dict`` and exit/fail the module.

    OpenNebula's own message becomes ``msg``; its code, code name and method
    are returned as ``one_error``.  The XML-RPC call count is always returned
    as ``api_calls``.  A failure after writes oned accepted says
    ``changed=true``: the object is no longer as it was.  When the answer
    to a write is lost (the connection broke after oned got the call), the
    body runs again once oned answers: it reads what oned now holds, so
    nothing is made twice.
    """
    client = None
    lost = []
    try:
        client = client_from_params(module.params)
        while True:
            try:
                result = body(client, module)
                break
            except OneConnectionError as exc:
                if not exc.interrupted or len(lost) >= MAX_LOST_ANSWERS:
                    raise
                lost.append(exc.method)
                # oned may have carried the write out: wait until it answers
                # again (api_retry_timeout), then reconcile from what it holds.
                client.version()
    except OneError as exc:
        extra = {"one_error": exc.to_dict(), "changed": bool(client and (client.writes or lost))}
        if isinstance(exc, OneTimeoutError):
            extra["pending"] = exc.pending
        if client is not None:
            extra["api_calls"] = client.calls
        module.fail_json(msg=exc.message, **extra)
        return
    result["api_calls"] = client.calls
    if lost:
        result["changed"] = True
        result.setdefault("warnings", []).append(
            "the answer of oned to %s was lost (connection broken); the task read OpenNebula again and went on"
            % ", ".join(lost))
    for warning in result.pop("warnings", None) or []:
        module.warn(warning)
    failed_msg = result.pop("failed_msg", None)
    if failed_msg:
        module.fail_json(msg=failed_msg, **result)
    module.exit_json(**result)


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


def find_object(pool, params):
    """The object named by params['id'] (0 valid) or params['name']; None if absent."""
    if params.get("id") is not None:
        return pool.by_id.get(int(params["id"]))
    return pool.named(params["name"])


def start_run(check_mode, pool, params, view):
    """A reconciler's first step: (its change set, the object params name in
    ``pool`` or None, the object's ``view`` before any change)."""
    obj = find_object(pool, params)
    return Changes(check_mode), obj, view(obj)


def change_result(changes, before, after, **extra):
    """The module result: changed, actions and the diff, with the object summary in ``extra``."""
    out = dict(changed=changes.changed, actions=changes.actions, diff=dict(before=before or {}, after=after or {}))
    out.update(extra)
    return out


def delete_result(changes, obj, before, kind, delete):
    """The result of state=absent for the ``kind`` object start_run found (or
    None): ``delete`` (a client method taking the object's id) when it exists."""
    if obj is not None:
        changes.do("delete %s %s (%s)" % (kind, obj.name, obj.id), delete, obj.id)
    return change_result(changes, before if obj is not None else {}, {}, **{kind: {}})


def membership_steps(client, kind, obj_id, current_ids, wanted_ids):
    """The writes that put a vnet or datastore in exactly the clusters ``wanted_ids``.

    [(description, client method, args, kwargs)], the additions first.
    """
    to_add, to_remove = cluster_membership_changes(current_ids, wanted_ids, True)
    return ([("add %s to cluster %s" % (kind, cid), client.cluster_add, (kind, cid, obj_id), {}) for cid in to_add]
            + [("remove %s from cluster %s" % (kind, cid), client.cluster_del, (kind, cid, obj_id), {})
               for cid in to_remove])


def plan_other_clusters(changes, kind, cluster_ids):
    """Check mode, a new vnet or datastore: the clusters after the first (given at allocation), planned."""
    for cid in (cluster_ids or [])[1:]:
        changes.actions.append("add %s to cluster %s" % (kind, cid))


def cluster_membership_changes(current_ids, wanted_ids, exclusive):
    """(to_add, to_remove) sorted id lists."""
    current, wanted = set(current_ids), set(wanted_ids)
    to_add = sorted(wanted - current)
    to_remove = sorted(current - wanted) if exclusive else []
    return to_add, to_remove

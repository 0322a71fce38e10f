"""Filters of a KVM node's life cycle: its state in the inventory
(site_node_state, a host variable of hosts.yml) and what OpenNebula says
about the site's nodes.

A node is enabled (OpenNebula places VMs on it), disabled (its VMs keep
running, no new VM goes there), offline (disabled and no longer monitored)
or retired (its VMs move to other nodes, then it leaves OpenNebula,
oneadmin's SSH trust and the NFS export; the site administrator then
deletes it from hosts.yml).

sl_node_states: {node: state} of the nodes, from their host variables.
sl_nodes_in_state: the nodes in some states, in inventory order.
sl_node_registration: the hosts list opennebula_hosts registers.
sl_node_state_errors: a message per node whose state is not one of the four.
sl_node_lifecycle_errors: the messages of the preflight's look at
OpenNebula (a check-mode run of opennebula_hosts): nodes registered in the
site cluster that hosts.yml no longer lists, and retired nodes whose VMs
cannot move. Each message names the variable, or the step, to fix.
sl_node_peers: the oneadmin keys and host keys of the other nodes that one
node trusts (every node not retired), and whether the play holds them all.
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

NODE_STATES = ("enabled", "disabled", "offline", "retired")
STATE_VARIABLE = "site_node_state"
DEFAULT_STATE = "enabled"
# site_node_state -> opennebula_hosts' state
_REGISTERED_AS = {"enabled": "enabled", "disabled": "disabled", "offline": "offline", "retired": "absent"}


def sl_node_states(nodes, hostvars, variable=STATE_VARIABLE, default=DEFAULT_STATE):
    """{node: its state} for ``nodes`` (the inventory's group nodes), from each node's host variable."""
    if isinstance(nodes, (str, Mapping)) or nodes is None:
        raise AnsibleFilterError("sl_node_states expects a list of node names, got %r" % (nodes,))
    states = {}
    for name in nodes:
        hvars = hostvars[name] if name in hostvars else {}
        value = hvars.get(variable, default)
        states[name] = default if value is None else value
    return states


def sl_nodes_in_state(states, wanted):
    """The nodes of ``states`` ({node: state}) whose state is in ``wanted`` (a state or a list)."""
    if not isinstance(states, Mapping):
        raise AnsibleFilterError("sl_nodes_in_state expects {node: state}, got %r" % (states,))
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    return [name for name, state in states.items() if state in wanted]


def sl_node_registration(states, retired=False):
    """opennebula_hosts' ``hosts``: [{name, state}] of the nodes that stay (retired=False) or of the
    retired nodes (retired=True, state absent)."""
    if not isinstance(states, Mapping):
        raise AnsibleFilterError("sl_node_registration expects {node: state}, got %r" % (states,))
    return [{"name": name, "state": _REGISTERED_AS[state]} for name, state in states.items()
            if state in _REGISTERED_AS and (state == "retired") == bool(retired)]


def sl_node_state_errors(states, prefix="", variable=STATE_VARIABLE):
    """One message per node whose state is not one of NODE_STATES."""
    if not isinstance(states, Mapping):
        raise AnsibleFilterError("sl_node_state_errors expects {node: state}, got %r" % (states,))
    return ["%s%s of node %s (hosts.yml) is %r; it must be one of %s." % (
        prefix, variable, name, state, ", ".join(NODE_STATES))
        for name, state in states.items() if not isinstance(state, str) or state not in NODE_STATES]


def _vm_list(vms):
    return ", ".join("%s (%s, %s)" % (vm.get("id"), vm.get("name"), vm.get("state")) if isinstance(vm, Mapping)
                     else str(vm) for vm in vms)


def sl_node_lifecycle_errors(result, states, live_migration, prefix="", nodes_group="nodes",
                             cluster="", variable=STATE_VARIABLE, live_variable="site_node_live_migration"):
    """Messages from ``result``, opennebula_hosts' answer in check mode for every node of ``states``
    (the retired ones as absent, drained live when ``live_migration``).

    - a host registered in the site cluster that ``states`` does not list: a node deleted from
      hosts.yml without being retired first (it keeps its VMs, its trust and its export);
    - a retired node the module could not plan to empty (its ``errors`` entry): live migration off,
      no other enabled node with room, or VMs in a state that cannot migrate;
    - any other failure of the call (oned's own message).
    """
    if not isinstance(result, Mapping) or not isinstance(states, Mapping):
        raise AnsibleFilterError("sl_node_lifecycle_errors expects the module's result and {node: state}")
    errors = []
    where = " %s" % cluster if cluster else ""
    for host in result.get("unlisted") or []:
        vms = host.get("vms") or []
        errors.append(
            "%snode %s is registered in OpenNebula's cluster%s (host %s, %s) but is not in group %s of"
            " hosts.yml. A node leaves the site in two steps: put it back in hosts.yml with %s: retired and run"
            " site.yml (its VMs move to other nodes, then it leaves OpenNebula, oneadmin's SSH trust and the NFS"
            " export), then delete it from hosts.yml. To keep the node, put it back in hosts.yml." % (
                prefix, host.get("name"), where, host.get("id"),
                "%d VM(s): %s" % (len(vms), ", ".join(str(v) for v in vms)) if vms else "no VM",
                nodes_group, variable))
    host_errors = result.get("errors") or {}
    for name in sorted(host_errors):
        state = states.get(name)
        if state == "retired":
            if live_migration:
                hint = ("Give another node room for them (or %s: enabled), or move or terminate them yourself"
                        " (onevm migrate, onevm terminate), then run again." % variable)
            else:
                hint = ("%s is false, so they are not moved: migrate or terminate them yourself (onevm migrate,"
                        " onevm terminate), or set %s: true, then run again." % (live_variable, live_variable))
            errors.append("%s%s of node %s is retired, but its VMs cannot leave it: %s. %s" % (
                prefix, variable, name, host_errors[name], hint))
        else:
            errors.append("%snode %s (%s %s): %s" % (prefix, name, variable, state, host_errors[name]))
    if result.get("failed") and not host_errors and "unlisted" not in result:
        errors.append("%sOpenNebula could not be asked about the nodes: %s" % (prefix, result.get("msg")))
    return errors


def sl_node_peers(states, node, play_hosts, hostvars, key_var="__kvm_node_own_pubkey",
                  known_var="__kvm_node_known"):
    """What ``node`` trusts of the other nodes of ``states`` ({node: state}).

    Returns ``{complete, authorized, known}``: the oneadmin public keys (``key_var``) and host-key
    lines (``known_var``) of every other node that is not retired, in the order of ``states``.
    A retired node trusts no one (complete, both lists empty). ``complete`` is false when one of
    those nodes is outside the play (``play_hosts``: a run with --limit) or its keys are not
    known (a failed host, check mode on a fresh node): the node's files are then left as they
    are, so a partial run never drops a node that is still there.
    """
    if not isinstance(states, Mapping):
        raise AnsibleFilterError("sl_node_peers expects {node: state}, got %r" % (states,))
    if isinstance(play_hosts, (str, Mapping)) or play_hosts is None:
        raise AnsibleFilterError("sl_node_peers expects the play's hosts as a list, got %r" % (play_hosts,))
    if states.get(node) == "retired":
        return {"complete": True, "authorized": [], "known": []}
    authorized, known, complete = [], [], True
    for name, state in states.items():
        if name == node or state == "retired":
            continue
        hvars = hostvars[name] if name in play_hosts and name in hostvars else {}
        if not (hvars.get(key_var) and hvars.get(known_var)):
            complete = False
            continue
        authorized.append(hvars[key_var])
        known.extend(hvars[known_var])
    return {"complete": complete, "authorized": authorized, "known": known}


class FilterModule(object):
    def filters(self):
        return {
            "sl_node_states": sl_node_states,
            "sl_nodes_in_state": sl_nodes_in_state,
            "sl_node_registration": sl_node_registration,
            "sl_node_state_errors": sl_node_state_errors,
            "sl_node_lifecycle_errors": sl_node_lifecycle_errors,
            "sl_node_peers": sl_node_peers,
        }

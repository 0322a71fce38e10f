"""Unit tests of filter_plugins/stratuslab_nodes.py (a KVM node's life cycle) and of the NFS export
the image_share role renders from the nodes' states (run: .venv/bin/pytest tests/unit/filters -q)."""

from pathlib import Path

import jinja2
import pytest
from ansible.errors import AnsibleFilterError

from filter_testlib import load_plugin

nodes = load_plugin("stratuslab_nodes")

ROOT = Path(__file__).resolve().parents[3]
HOSTVARS = {"n1": {"site_address": "10.0.0.1"}, "n2": {"site_address": "10.0.0.2", "site_node_state": "disabled"},
            "n3": {"site_address": "10.0.0.3", "site_node_state": "retired"},
            "n4": {"site_address": "10.0.0.4", "site_node_state": "offline"}}
STATES = {"n1": "enabled", "n2": "disabled", "n3": "retired", "n4": "offline"}


def test_states_come_from_each_node_and_default_to_enabled():
    assert nodes.sl_node_states(["n1", "n2", "n3", "n4"], HOSTVARS) == STATES
    assert nodes.sl_node_states(["n1", "unknown"], HOSTVARS) == {"n1": "enabled", "unknown": "enabled"}


@pytest.mark.parametrize("bad", ["n1", None, {"n1": {}}])
def test_states_refuse_what_is_no_list_of_names(bad):
    with pytest.raises(AnsibleFilterError, match="list of node names"):
        nodes.sl_node_states(bad, HOSTVARS)


def test_registration_keeps_the_states_and_leaves_the_retired_nodes_to_the_drain():
    assert nodes.sl_node_registration(STATES) == [
        {"name": "n1", "state": "enabled"}, {"name": "n2", "state": "disabled"}, {"name": "n4", "state": "offline"}]
    assert nodes.sl_node_registration(STATES, retired=True) == [{"name": "n3", "state": "absent"}]
    assert nodes.sl_nodes_in_state(STATES, "enabled") == ["n1"]
    assert nodes.sl_nodes_in_state(STATES, ["disabled", "offline"]) == ["n2", "n4"]


# --- preflight, by kind of mistake -------------------------------------------

@pytest.mark.parametrize("value", ["retire", "Enabled", "", 1, True, None])
def test_a_bad_state_value_is_refused_naming_the_node_and_the_variable(value):
    errors = nodes.sl_node_state_errors(dict(STATES, n2=value), prefix="frontend: ")
    assert len(errors) == 1
    assert errors[0].startswith("frontend: site_node_state of node n2 (hosts.yml) is %r" % (value,))
    assert "enabled, disabled, offline, retired" in errors[0]


def test_good_states_pass():
    assert nodes.sl_node_state_errors(STATES) == []
    assert nodes.sl_node_lifecycle_errors({"changed": True, "unlisted": [], "hosts": {}}, STATES, True) == []


def test_a_node_registered_but_not_in_the_inventory_is_refused_saying_how_to_retire_it():
    result = {"unlisted": [{"name": "old7", "id": 7, "cluster": "site", "vms": [12, 15]}], "hosts": {}}
    errors = nodes.sl_node_lifecycle_errors(result, STATES, True, prefix="frontend: ", cluster="site")
    assert len(errors) == 1
    message = errors[0]
    assert message.startswith("frontend: node old7 is registered in OpenNebula's cluster site (host 7, 2 VM(s): 12, 15)")
    assert "not in group nodes of hosts.yml" in message
    assert "site_node_state: retired" in message and "then delete it from hosts.yml" in message


def test_retiring_the_last_enabled_node_while_it_hosts_vms_is_refused():
    module_error = ("host n3 still has 1 VM(s): 4 (web, RUNNING); no other enabled host of its cluster site can "
                    "take them")
    result = {"failed": True, "msg": "1 host(s) failed", "errors": {"n3": module_error}, "unlisted": []}
    live = nodes.sl_node_lifecycle_errors(result, STATES, True, prefix="frontend: ")
    assert len(live) == 1
    assert live[0].startswith("frontend: site_node_state of node n3 is retired, but its VMs cannot leave it: ")
    assert "4 (web, RUNNING)" in live[0] and "site_node_state: enabled" in live[0]
    off = nodes.sl_node_lifecycle_errors(result, STATES, False, prefix="frontend: ")
    assert "site_node_live_migration is false" in off[0] and "site_node_live_migration: true" in off[0]


def test_a_failed_call_is_reported_with_oneds_message():
    result = {"failed": True, "msg": "[one.hostpool.info] User couldn't be authenticated, aborting call."}
    errors = nodes.sl_node_lifecycle_errors(result, STATES, True, prefix="frontend: ")
    assert errors == ["frontend: OpenNebula could not be asked about the nodes: [one.hostpool.info] User couldn't be "
                      "authenticated, aborting call."]


# --- the NFS export's client list (roles/image_share) ------------------------

def render_export(clients):
    env = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["comment"] = lambda text: "# " + text
    template = env.from_string((ROOT / "roles/image_share/templates/datastores.exports.j2").read_text())
    return template.render(ansible_managed="Ansible managed", image_share_datastores_dir="/var/lib/one/datastores",
                           image_share_nfs_clients=clients, image_share_nfs_export_options=["rw", "sync"])


def test_the_export_lists_every_node_but_the_retired_ones():
    clients = [HOSTVARS[n]["site_address"] for n in nodes.sl_nodes_in_state(
        nodes.sl_node_states(list(HOSTVARS), HOSTVARS), ["enabled", "disabled", "offline"])]
    lines = [line for line in render_export(clients).splitlines() if line and not line.startswith("#")]
    assert lines == ["/var/lib/one/datastores 10.0.0.1(rw,sync) 10.0.0.2(rw,sync) 10.0.0.4(rw,sync)"]


# --- the trust between the nodes (kvm_node role, tasks/ssh.yml) ----------------
KEYS = {name: {"__kvm_node_own_pubkey": "ssh-ed25519 AAAA%s oneadmin@%s" % (name, name),
               "__kvm_node_known": ["%s ssh-ed25519 HOST%s" % (name, name)]} for name in STATES}


def test_a_node_trusts_the_other_nodes_and_drops_the_retired_ones():
    assert nodes.sl_node_peers(STATES, "n1", list(STATES), KEYS) == {
        "complete": True,
        "authorized": ["ssh-ed25519 AAAAn2 oneadmin@n2", "ssh-ed25519 AAAAn4 oneadmin@n4"],
        "known": ["n2 ssh-ed25519 HOSTn2", "n4 ssh-ed25519 HOSTn4"]}


def test_a_retired_node_trusts_no_one():
    assert nodes.sl_node_peers(STATES, "n3", list(STATES), KEYS) == {"complete": True, "authorized": [], "known": []}


def test_a_retired_node_outside_the_play_does_not_hold_the_others_back():
    # A retired node is often one that is gone: the others drop it without reaching it.
    play = ["n1", "n2", "n4"]
    assert nodes.sl_node_peers(STATES, "n1", play, KEYS)["complete"] is True


@pytest.mark.parametrize("play, keys", [
    (["n1", "n4"], KEYS),  # n2 outside the play (--limit)
    (list(STATES), dict(KEYS, n4={"__kvm_node_own_pubkey": "", "__kvm_node_known": ["n4 ssh-ed25519 HOSTn4"]})),
    (list(STATES), {k: v for k, v in KEYS.items() if k != "n2"}),  # n2 failed: no facts
], ids=["outside the play", "key pair not made yet", "host failed"])
def test_a_partial_play_leaves_the_files_as_they_are(play, keys):
    assert nodes.sl_node_peers(STATES, "n1", play, keys)["complete"] is False


@pytest.mark.parametrize("states, play", [(["n1"], ["n1"]), (STATES, "n1"), (STATES, None)])
def test_peers_refuse_bad_input(states, play):
    with pytest.raises(AnsibleFilterError, match="sl_node_peers expects"):
        nodes.sl_node_peers(states, "n1", play, KEYS)

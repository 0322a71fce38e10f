"""bench/site --scale: its pure logic, without containers.

The scale curve itself (containers, site.yml runs) takes many minutes and
root; these tests check what turns its measurements into figures: the node
list, the least-squares slope, the last line's format, the scaled hosts.yml
and the per-node task costs.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("bench_site", REPO / "bench" / "site" / "bench.py")
bench = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(bench)

LAST_LINE = re.compile(r"^site_scale: controller_cpu_s_per_node=(\d+\.\d\d|n/a) rerun_s_at_8_hosts=(\d+\.\d|n/a)$")


def test_parse_scale_sorts_and_deduplicates():
    assert bench.parse_scale("8,2,4,4,16") == [2, 4, 8, 16]
    assert bench.parse_scale(bench.SCALE_DEFAULT) == [2, 4, 6, 8, 16]
    for bad in ("", "0,2", "2,x", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_scale(bad)


def test_slope_is_the_least_squares_one():
    assert bench.lsq_slope([(2, 10.0), (4, 20.0), (8, 40.0)]) == pytest.approx(5.0)
    # points off a line: slope of the fit, by hand: mean x 4, mean y 6;
    # sum (x-4)(y-6) = (-2)(-4) + 0 + 2*6 = 20 over sum (x-4)^2 = 8
    assert bench.lsq_slope([(2, 2.0), (4, 4.0), (6, 12.0)]) == pytest.approx(2.5)
    assert bench.lsq_slope([(4, 1.0)]) is None
    assert bench.lsq_slope([(4, 1.0), (4, 3.0)]) is None


def test_last_line_format():
    line = bench.scale_line(5.0, 44.44)
    assert line == "site_scale: controller_cpu_s_per_node=5.00 rerun_s_at_8_hosts=44.4"
    assert LAST_LINE.match(line)
    missing = bench.scale_line(None, None)
    assert missing == "site_scale: controller_cpu_s_per_node=n/a rerun_s_at_8_hosts=n/a"
    assert LAST_LINE.match(missing)


DEMO_HOSTS = """
all:
  vars: {ansible_user: root}
  children:
    frontend:
      hosts:
        one: {demo_container: bench-site-one, site_address: 10.89.90.10}
    nodes:
      hosts:
        node1:
          demo_container: bench-site-node1
          site_address: 10.89.90.21
          site_network_addresses: {private: 10.89.91.21}
        node2:
          demo_container: bench-site-node2
          site_address: 10.89.90.22
          site_network_addresses: {private: 10.89.91.22}
    services:
      hosts:
        svc: {demo_container: bench-site-svc, site_address: 10.89.90.5}
    ldap:
      hosts:
        svc:
"""


def test_scaled_hosts_repeats_the_first_node():
    doc = yaml.safe_load(DEMO_HOSTS)
    scaled = bench.scaled_hosts(doc, 6)
    nodes = scaled["all"]["children"]["nodes"]["hosts"]
    assert list(nodes) == [f"node{k}" for k in range(1, 7)]
    assert nodes["node6"] == {"demo_container": "bench-site-node6", "site_address": "10.89.90.26",
                              "site_network_addresses": {"private": "10.89.91.26"}}
    # the other hosts and groups are left alone, and so is the input
    assert scaled["all"]["children"]["frontend"] == doc["all"]["children"]["frontend"]
    assert scaled["all"]["children"]["ldap"] == {"hosts": {"svc": None}}
    assert list(doc["all"]["children"]["nodes"]["hosts"]) == ["node1", "node2"]
    assert list(bench.scaled_hosts(doc, 1)["all"]["children"]["nodes"]["hosts"]) == ["node1"]


def test_scaled_hosts_refuses_the_vm_range_and_taken_addresses():
    with pytest.raises(ValueError, match="past .99"):
        bench.scaled_hosts(yaml.safe_load(DEMO_HOSTS), 80)
    taken = yaml.safe_load(DEMO_HOSTS)
    taken["all"]["children"]["frontend"]["hosts"]["one"]["site_address"] = "10.89.90.23"
    with pytest.raises(ValueError, match="another host's"):
        bench.scaled_hosts(taken, 3)


def run_json(task_seconds):
    """A json-callback result: one free play with one entry per (task, host)."""
    tasks = []
    for name, hosts, seconds in task_seconds:
        for host in hosts:
            tasks.append({"task": {"name": name, "duration": {"start": "2026-01-01T00:00:00.000000Z",
                                                             "end": f"2026-01-01T00:00:{seconds:09.6f}Z"}},
                          "hosts": {host: {"changed": False}}})
        tasks.append({"task": {"name": name, "duration": {"start": "2026-01-01T00:00:00.000000Z"}},
                      "hosts": {}})  # an entry without an end is left out
    return {"plays": [{"play": {"name": "hosts"}, "tasks": tasks}]}


def test_per_node_task_costs_ranks_by_seconds_per_node():
    runs = {}
    for n in (2, 4, 8):
        nodes = [f"node{k}" for k in range(1, n + 1)]
        runs[n] = run_json([("per node", nodes, 1.5), ("fixed", ["one"], 3.0), ("light", nodes, 0.25)])
    rows = bench.per_node_task_costs(runs)
    assert [r[3] for r in rows] == ["per node", "light", "fixed"]
    seconds, results, play, name = rows[0]
    assert (seconds, results, play) == (pytest.approx(1.5), pytest.approx(1.0), "hosts")
    assert rows[2][0] == pytest.approx(0.0) and rows[2][1] == pytest.approx(0.0)
    costs = bench.task_costs(runs[2])
    assert costs[("hosts", "per node")] == [pytest.approx(3.0), 2]


def test_control_paths_are_the_sockets_ansible_names():
    from ansible.plugins.connection.ssh import Connection
    paths = bench.control_paths(["10.89.90.5", "10.89.90.21"])
    for host in ("10.89.90.5", "10.89.90.21"):
        for port in (None, 22):
            assert Connection._create_control_path(host, port, "root").rsplit("/", 1)[1] in paths
    assert Connection._create_control_path("10.89.90.6", None, "root").rsplit("/", 1)[1] not in paths


def point(nodes, rerun_s, controller):
    return {"nodes": nodes, "hosts": nodes + 2, "converge_s": 100.0, "rerun_s": rerun_s, "rerun_changed": 0,
            "controller_cpu_s": controller, "ansible_playbook_cpu_s": controller - 1.0, "ssh_masters_cpu_s": 1.0,
            "machine_cpu_s": 2 * rerun_s, "host_results": 100 + 50 * nodes, "load_rerun": ["1.00", "1.00", "1.00"]}


def test_report_prints_a_line_per_point_and_the_last_line(capsys, tmp_path):
    counts = (2, 4, 6, 8)
    figures = {"scale": [point(n, 20.0 + 5 * n, 30.0 + 4 * n) for n in counts], "load_start": ["1", "1", "1"]}
    reruns = {n: run_json([("per node", [f"node{k}" for k in range(1, n + 1)], 1.0)]) for n in counts}
    bench.scale_report(figures, reruns, [], tmp_path / "out.json")
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert lines[-1] == "site_scale: controller_cpu_s_per_node=4.00 rerun_s_at_8_hosts=50.0"
    assert [line.split()[:2] for line in lines[2:6]] == [[str(n), str(n + 2)] for n in counts]
    assert any("per node" in line and "1.00 s/node" in line for line in lines)
    assert (tmp_path / "out.json").exists()
    # without 6 nodes there is no 8-host point; a stopped curve says so
    figures = {"scale": [point(n, 20.0, 30.0 + 4 * n) for n in (2, 4)], "load_start": ["1", "1", "1"]}
    bench.scale_report(figures, {}, ["stopped before the end"], stopped=True)
    out = capsys.readouterr().out
    assert out.rstrip("\n").splitlines()[-1] == "site_scale: controller_cpu_s_per_node=4.00 rerun_s_at_8_hosts=n/a"
    assert "(stopped after 4 nodes)" in out and "note: stopped before the end" in out


def test_per_node_play_results_counts_run_and_skipped():
    runs = {}
    for n in (2, 4):
        result = run_json([("per node", [f"node{k}" for k in range(1, n + 1)], 1.0), ("fixed", ["one"], 1.0)])
        result["plays"][0]["tasks"].append({"task": {"name": "skipped", "duration": {}},
                                            "hosts": {f"node{k}": {"skipped": True} for k in range(1, n + 1)}})
        runs[n] = result
    assert bench.per_node_play_results(runs) == [(pytest.approx(1.0), pytest.approx(1.0), "hosts")]


def test_a_stopped_curve_prints_what_it_measured_and_cleans_up(monkeypatch, capsys, tmp_path):
    removed = []
    monkeypatch.setattr(bench, "make_inventory", lambda work, name, nodes=None: (
        None, [{"container": f"bench-site-node{k}", "address": f"10.89.90.{20 + k}"} for k in range(1, nodes + 1)],
        [{"podman_network": "net"}], None))
    monkeypatch.setattr(bench, "cleanup", lambda containers, networks: removed.append((containers, networks)))
    monkeypatch.setattr(bench, "create_networks", lambda networks: None)

    def two_points_then_a_signal(args, counts, work, created, reruns, failures, figures, sockets):
        for n in counts[:2]:
            figures["scale"].append(point(n, 30.0, 10.0 * n))
        raise SystemExit("bench/site: stopped by signal 15, cleaning up")

    monkeypatch.setattr(bench, "scale_points", two_points_then_a_signal)
    monkeypatch.setattr(bench.tempfile, "mkdtemp", lambda prefix: str(tmp_path))
    args = argparse.Namespace(scale=[2, 4, 6], json=None, keep=False)
    with pytest.raises(SystemExit):
        bench.scale_main(args)
    out = capsys.readouterr().out
    assert out.rstrip("\n").splitlines()[-1] == "site_scale: controller_cpu_s_per_node=10.00 rerun_s_at_8_hosts=n/a"
    assert "(stopped after 4 nodes)" in out
    assert removed[-1] == ([f"bench-site-node{k}" for k in range(1, 7)], ["net"])

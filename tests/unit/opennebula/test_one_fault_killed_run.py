"""Fault: ansible-playbook killed half-way through a run.

The run is the frontend role's own API task files (cluster.yml,
networks.yml, datastores.yml, through include_role tasks_from, against the
real oned 7.4.0 with connection local: the role's vars point its API calls
at 127.0.0.1:<port> with <home>/.one/one_auth), then what the nodes step and
the appliance step register with the project's modules (a hosts batch with
dummy drivers, as nodes.yml does with kvm; an image), and files rendered
and copied into a directory (template and copy, as the roles write their
configuration). It is stopped at seeded random points, with SIGINT (Ctrl-C:
to ansible-playbook alone) and with SIGKILL (to it and every process below
it: a crash of the control machine). After each stop a rerun completes and
reports what it changed, the next rerun changes nothing, OpenNebula holds
each object once, and every file in place is whole.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from fault_testlib import seeded
from one_playbook import ANSIBLE_PLAYBOOK, PYTHON, REPO, PlaybookRun, stop_half_way
from one_testlib import needs_real_oned

pytestmark = needs_real_oned

CLUSTER = "flt-kill"
NETWORKS = [
    {"name": "flt-kill-public", "bridge": "brkpub", "interface": "eth0", "cidr": "10.73.7.0/24",
     "gateway": "10.73.7.1", "range": {"first": "10.73.7.100", "last": "10.73.7.199"}},
    {"name": "flt-kill-private", "bridge": "brkpriv", "interface": "eth1", "cidr": "10.73.8.0/24",
     "leases": ["10.73.8.100", "10.73.8.101", "10.73.8.102"]},
]
HOSTS = ["flt-kill-node-%02d" % i for i in range(6)]
IMAGE = "flt-kill-image"
DATASTORES = [CLUSTER + "-system", CLUSTER + "-images"]
# files the run writes: name -> size; each is written whole or not at all
FILES = {"conf-%d.txt" % i: 256 * 1024 for i in range(4)}
# signals, each at FAULT_RUNS random points
RUNS = int(os.environ.get("FAULT_RUNS", "2"))


def content(name, size):
    line = ("%s " % name) * 8 + "\n"
    return (line * (size // len(line) + 1))[:size]


def make_play(tmp_path, oned, state="present"):
    home = tmp_path / "oneadmin"
    (home / ".one").mkdir(parents=True, exist_ok=True)
    (home / ".one" / "one_auth").write_text("%s:%s\n" % (oned.username, oned.password))
    image = Path("/var/tmp") / ("flt-kill-%d.img" % oned.port)   # the image_file fixture's
    location = oned.client().datastore_location()
    out = tmp_path / "files"
    role_vars = {
        "frontend_one_api_port": oned.port,
        "frontend_oneadmin_home": str(home),
        "frontend_one_cluster": CLUSTER,
        "frontend_networks": NETWORKS,
        "frontend_datastores_dir": location,
        "frontend_image_sharing": "ssh",
        "frontend_mac_prefix": "02:00",
        "__frontend_api_usable": True,
    }
    env = {"ONE_XMLRPC": oned.url, "ONE_AUTH": str(home / ".one" / "one_auth")}
    templ = tmp_path / "conf.j2"
    templ.write_text("{{ ansible_managed | comment }}\n{{ body }}")
    tasks = [
        {"name": "Make the files' directory", "ansible.builtin.file": {"path": str(out), "state": "directory",
                                                                        "mode": "0755"}},
        {"name": "Create the site cluster, networks and datastores (frontend role's own tasks)",
         "ansible.builtin.include_role": {"name": "frontend", "tasks_from": "cluster.yml"}},
        {"name": "Networks", "ansible.builtin.include_role": {"name": "frontend", "tasks_from": "networks.yml"}},
        {"name": "Render half of the files", "ansible.builtin.template": {
            "src": str(templ), "dest": str(out / "{{ item }}"), "mode": "0644"},
         "loop": sorted(FILES)[:2], "vars": {"body": "{{ lookup('ansible.builtin.file', '%s/' ~ item) }}"
                                             % (tmp_path / "src")}},
        {"name": "Datastores", "ansible.builtin.include_role": {"name": "frontend", "tasks_from": "datastores.yml"}},
        {"name": "Register the nodes (dummy drivers)", "opennebula_hosts": {
            "hosts": HOSTS, "cluster": CLUSTER, "im_mad": "dummy", "vmm_mad": "dummy", "wait": False},
         "environment": env},
        {"name": "Copy the other files", "ansible.builtin.copy": {
            "src": str(tmp_path / "src" / "{{ item }}"), "dest": str(out / "{{ item }}"), "mode": "0644"},
         "loop": sorted(FILES)[2:]},
        {"name": "Register an image", "opennebula_image": {
            "name": IMAGE, "datastore": CLUSTER + "-images", "path": str(image),
            "wait_timeout": 120}, "environment": env},
    ]
    if state == "absent":
        tasks = [
            {"name": "Remove the image", "opennebula_image": {"name": IMAGE, "state": "absent"}, "environment": env},
            {"name": "Remove the nodes", "opennebula_hosts": {"hosts": HOSTS, "state": "absent"}, "environment": env},
            {"name": "Remove the networks", "opennebula_vnets": {
                "vnets": [{"name": n["name"]} for n in NETWORKS], "state": "absent"}, "environment": env},
        ] + [{"name": "Remove datastore " + ds, "opennebula_datastore": {"name": ds, "state": "absent"},
              "environment": env} for ds in DATASTORES] + [
            {"name": "Remove the cluster", "opennebula_cluster": {"name": CLUSTER, "state": "absent"},
             "environment": env},
            {"name": "Remove the files", "ansible.builtin.file": {"path": str(out), "state": "absent"}},
        ]
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for name, size in FILES.items():
        (src / name).write_text(content(name, size))
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": role_vars,
             "tasks": tasks}]
    book = tmp_path / ("kill-%s.yml" % state)
    book.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % PYTHON, str(book)]
    full_env = dict(os.environ)
    full_env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                     "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
                     "ANSIBLE_HOME": str(tmp_path / "ansible-home")})
    for key in ("ONE_XMLRPC", "ONE_AUTH"):
        full_env.pop(key, None)
    return cmd, full_env, out


def run(cmd, env):
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=600)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("not JSON (rc %s): %s %s" % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return PlaybookRun(proc, data)


def changed_tasks(result):
    return [r["_task"] for r in result.results if r.get("changed")]


def object_counts(client):
    names = ([c.name for c in client.clusterpool()] + [v.name for v in client.vnpool()]
             + [d.name for d in client.datastorepool()] + [h.name for h in client.hostpool()]
             + [i.name for i in client.imagepool()])
    wanted = [CLUSTER, IMAGE] + DATASTORES + [n["name"] for n in NETWORKS] + HOSTS
    return {name: names.count(name) for name in wanted}


def files_state(out):
    """(whole, broken, strays): files in place that are whole, those that are
    not, and names in the directory the run does not write (temp files)."""
    whole, broken, strays = [], [], []
    if not out.is_dir():
        return whole, broken, strays
    for path in sorted(out.iterdir()):
        if path.name not in FILES:
            strays.append(path.name)
            continue
        text = path.read_text()
        body = content(path.name, FILES[path.name])
        (whole if text.endswith(body) and len(text) - len(body) < 200 else broken).append(path.name)
    return whole, broken, strays


@pytest.fixture
def image_file(real_oned):
    """The image the run registers; oned's datastore drivers copy images only
    from its SAFE_DIRS (/var/tmp): named by the oned's port, which no other
    instance running beside it has, and removed after the test."""
    path = Path("/var/tmp") / ("flt-kill-%d.img" % real_oned.port)
    path.write_bytes(b"\0" * 1024 * 1024)
    yield path
    path.unlink(missing_ok=True)


def test_a_run_killed_half_way_is_completed_by_a_rerun(real_oned, tmp_path, image_file):
    rng, seed = seeded("run killed half-way")
    client = real_oned.client()
    cmd, env, out = make_play(tmp_path, real_oned)
    clean_cmd, clean_env, _ = make_play(tmp_path, real_oned, "absent")
    begin = time.monotonic()
    full = run(cmd, env)
    length = time.monotonic() - begin
    assert full.rc == 0, full.stdout[-3000:]
    assert files_state(out) == (sorted(FILES), [], [])
    print("a whole run: %.1f s" % length)
    stopped, strays_seen = [], []
    for sig in [signal.SIGINT, signal.SIGKILL] * RUNS:
        assert run(clean_cmd, clean_env).rc == 0
        # the first run (fresh oned: datastores not yet monitored) is the slowest: stop in its first half
        at = rng.uniform(0.05, 0.45) * length
        if not stop_half_way(cmd, env, sig, at):
            continue
        where = "seed %d: %s at %.1f s" % (seed, sig.name, at)
        stopped.append(where)
        time.sleep(2)   # a call the stopped run had sent is still carried out by oned
        whole, broken, strays = files_state(out)
        assert not broken, (where, broken)
        strays_seen += strays
        rerun = run(cmd, env)
        assert rerun.rc == 0, (where, [r.get("msg") for r in rerun.results if r.get("failed")])
        print("%s: the rerun changed %s" % (where, changed_tasks(rerun)))
        again = run(cmd, env)
        assert again.rc == 0 and not changed_tasks(again), (where, changed_tasks(again))
        assert object_counts(client) == dict.fromkeys(object_counts(client), 1), (where, object_counts(client))
        cluster = client.clusterpool().get(CLUSTER)
        assert sorted(client.hostpool().get(h).id for h in HOSTS) == sorted(cluster.hosts), where
        whole, broken, strays = files_state(out)
        assert (whole, broken) == (sorted(FILES), []), (where, whole, broken)
        strays_seen += strays
    print("stopped: %s; temp files left beside the files: %s" % (stopped, strays_seen))
    assert len(stopped) >= RUNS, "most runs ended before their signal: %s" % stopped
    assert not strays_seen, "temp files left in the files' directory: %s" % strays_seen

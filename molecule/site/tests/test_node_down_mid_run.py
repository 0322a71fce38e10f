"""A node goes down in the middle of a run: the run fails on it alone, and a
rerun once it is back converges it with nothing lost.

The run is playbooks/base.yml (the base role, site.yml's first deploying
step) over every host of the converged site: the front-end, the two nodes
and the spare site-node3. Part of base's work is undone first, so that the
run has something to do everywhere: the time daemon's drop-in (which no
daemon reads in a container: the time daemon does not run there) on every
host, and site-node3's block of site members in /etc/hosts. site-node3 is
then stopped (``podman stop -t 0``: its power cut, whatever it was running)
once it has finished one of the play's tasks, drawn by a seeded random
source among the tasks ``--list-tasks`` names but the last five (so that
tasks which reach it are left: FAULT_SEED=<n> in the verify's environment
replays a draw; the seed is printed). The progress is read from
community.general.log_plays, which writes each host's task results to a
file of its own as they come.

What the site must do:

- the run fails on site-node3 alone (unreachable) and the other hosts
  complete it: each rewrote its drop-in, none failed;
- site-node3 started again, a rerun over every host changes site-node3 only
  (what the stopped run had not done there) and nothing on the others;
- a further run on site-node3 changes nothing, and the undone files are
  back in place on every host.

Why site-node3 and ``podman stop``: converge made it a site host only
(group spare, base role), so it has no bridge yet and comes back with its
addresses where they were (test_node_down.py says why a bridged node cannot
be stopped and started again); the site's own nodes and front-end stay up
for the other tests. test_retire.py, which runs after this module, makes
site-node3 a node. The time it adds to the verify is printed.
"""

import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest
import stratuslab_testinfra
from conftest import ROOT, run_playbook

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

VICTIM = "site-node3"
OTHERS = [name for name in stratuslab_testinfra.names("all") if name != VICTIM]
PLAYBOOK = "playbooks/base.yml"
# roles/base: vars/Debian.yml __base_time_config, vars/main.yml __base_hosts_marker
TIME_DROPIN = "/etc/systemd/timesyncd.conf.d/stratuslab.conf"
HOSTS_BLOCK = "StratusLab site members (managed by Ansible: roles/base)"
BACK_TIMEOUT = 180


def _seeded():
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1, 10 ** 9))
    return random.Random(seed), seed


def _listed_tasks():
    """The names of the tasks ansible-playbook --list-tasks lists in base.yml's
    play, in order, without their role's prefix (as log_plays names them)."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(ROOT / PLAYBOOK), "--list-tasks"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    names = [line.split("\tTAGS:")[0].strip() for line in proc.stdout.splitlines()
             if "\tTAGS:" in line and not line.lstrip().startswith("play #")]
    return [name.split(" : ", 1)[1] if name.startswith("base : ") else name for name in names]


def _results(folder):
    """The victim's task results that community.general.log_plays has logged
    ("<time> - <playbook> - <task> - <action> - <status> - <result>")."""
    path = folder / VICTIM
    if not path.exists():
        return []
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


def _done(folder, task):
    return any(" - %s - " % task in line for line in _results(folder))


def _podman(*args):
    return subprocess.run(["podman"] + list(args), capture_output=True, text=True, timeout=300)


def _wait_back(address):
    """Until the victim's systemd has started and its sshd answers (BACK_TIMEOUT)."""
    deadline = time.monotonic() + BACK_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        state = _podman("exec", VICTIM, "systemctl", "is-system-running").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(2)
    else:
        pytest.fail("%s: systemd %r %d s after podman start" % (VICTIM, state, BACK_TIMEOUT))
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=3):
                return
        except OSError:
            time.sleep(2)
    pytest.fail("%s: no sshd at %s:22 %d s after podman start" % (VICTIM, address, BACK_TIMEOUT))


def _stats(run):
    assert run["report"], "no JSON report (rc %d):\n%s\n%s" % (run["rc"], run["stdout"][-3000:], run["stderr"][-2000:])
    return run["report"]["stats"]


@pytest.fixture(scope="module")
def mid_run(host, request, tmp_path_factory):
    started = time.monotonic()
    rng, seed = _seeded()
    listed = _listed_tasks()
    assert len(listed) > 6, listed
    at = rng.choice(listed[:-5])
    where = "seed %d (FAULT_SEED=%d replays it): %s stopped once it had done task %d of %d, %r" % (
        seed, seed, VICTIM, listed.index(at) + 1, len(listed), at)
    stratuslab_testinfra.say(request, "node down mid-run: " + where)
    hosts = {name: host.get_host(stratuslab_testinfra.hosts(name)[0]) for name in OTHERS + [VICTIM]}
    address = stratuslab_testinfra.hostvars(VICTIM)["site_address"]

    def restart():
        if _podman("container", "inspect", "-f", "{{.State.Running}}", VICTIM).stdout.strip() != "true":
            _podman("start", VICTIM)
            _wait_back(address)
    request.addfinalizer(restart)

    for name, node in hosts.items():
        undo = node.run("rm -f %s", TIME_DROPIN)
        assert undo.rc == 0, (name, undo.stderr)
    # the block between base's markers ("# BEGIN <marker text>" ... "# END ...")
    undo = hosts[VICTIM].run("sed -i '\\|# BEGIN StratusLab site members|,\\|# END StratusLab site members|d' "
                             "/etc/hosts")
    assert undo.rc == 0 and HOSTS_BLOCK not in hosts[VICTIM].file("/etc/hosts").content_string, undo.stderr

    folder = tmp_path_factory.mktemp("log_plays")
    stopped = {}

    def fault(done):
        while not done.is_set() and not _done(folder, at):
            time.sleep(0.2)
        if not done.is_set():
            stopped["stop"] = _podman("stop", "-t", "0", VICTIM)
            stopped["results"] = len(_results(folder))

    faulty = run_playbook(PLAYBOOK, env={"ANSIBLE_CALLBACKS_ENABLED": "community.general.log_plays",
                                         "ANSIBLE_LOG_FOLDER": str(folder)}, during=fault)
    stratuslab_testinfra.say(request, "node down mid-run: the run with %s stopped: rc %d in %.0f s, %s" % (
        VICTIM, faulty["rc"], faulty["seconds"], _stats(faulty) if faulty["report"] else "no report"))
    back = time.monotonic()
    if "stop" in stopped:
        assert stopped["stop"].returncode == 0, stopped["stop"].stderr
        _podman("start", VICTIM)
        _wait_back(address)
    back = time.monotonic() - back
    rerun = run_playbook(PLAYBOOK)
    stratuslab_testinfra.say(request, "node down mid-run: %s back in %.0f s; rerun rc %d in %.0f s" % (
        VICTIM, back, rerun["rc"], rerun["seconds"]))
    again = run_playbook(PLAYBOOK, args=["--limit", VICTIM])
    result = {"where": where, "stopped": stopped, "faulty": faulty, "rerun": rerun, "again": again,
              "dropins": {name: node.file(TIME_DROPIN).exists for name, node in hosts.items()},
              "hosts_block": HOSTS_BLOCK in hosts[VICTIM].file("/etc/hosts").content_string}
    stratuslab_testinfra.say(request, "node down mid-run: further run on %s rc %d in %.0f s; the test took %.0f s"
                             % (VICTIM, again["rc"], again["seconds"], time.monotonic() - started))
    return result


def test_the_node_went_down_during_the_run(mid_run):
    assert "stop" in mid_run["stopped"], "the run ended before %s was stopped (%s)" % (VICTIM, mid_run["where"])


def test_the_run_fails_on_that_node_alone(mid_run):
    faulty = mid_run["faulty"]
    stats = _stats(faulty)
    assert faulty["rc"] != 0, (mid_run["where"], stats)
    assert stats[VICTIM]["unreachable"] or stats[VICTIM]["failures"], (mid_run["where"], stats)
    bad = {name: s for name, s in stats.items() if name != VICTIM and (s["unreachable"] or s["failures"])}
    assert not bad, (mid_run["where"], bad, faulty["stdout"][-3000:])


def test_the_other_hosts_converge_in_the_same_run(mid_run):
    stats = _stats(mid_run["faulty"])
    assert all(stats[name]["changed"] > 0 for name in OTHERS), (mid_run["where"], stats)
    assert all(mid_run["dropins"][name] for name in OTHERS), mid_run["dropins"]


def test_a_rerun_once_it_is_back_converges_it_and_changes_nothing_else(mid_run):
    rerun = mid_run["rerun"]
    stats = _stats(rerun)
    assert rerun["rc"] == 0, (mid_run["where"], rerun["stdout"][-3000:])
    assert stats[VICTIM]["changed"] > 0, (mid_run["where"], stats)
    assert all(stats[name]["changed"] == 0 for name in OTHERS), (mid_run["where"], stats)


def test_nothing_is_lost_and_a_further_run_changes_nothing(mid_run):
    again = mid_run["again"]
    stats = _stats(again)
    assert again["rc"] == 0 and stats[VICTIM]["changed"] == 0, (mid_run["where"], stats, again["stdout"][-3000:])
    assert mid_run["dropins"][VICTIM] and mid_run["hosts_block"], (mid_run["dropins"], mid_run["hosts_block"])

"""Run a list of tasks with ansible-playbook on localhost and return the results.

The tasks run with the repository's ansible.cfg (library/ and module_utils/
of the checkout), connection local and the venv's python; the json stdout
callback gives every task result to the test. ``stop_half_way`` starts a
run and stops it with a signal, as Ctrl-C or a crash of the control machine
would (the fault tests: test_one_faults.py, test_one_fault_*.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
PYTHON = REPO / ".venv" / "bin" / "python"


class PlaybookRun:
    def __init__(self, proc, data):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.data = data
        self.results = []
        for play in data.get("plays", []):
            for task in play["tasks"]:
                res = task["hosts"].get("localhost", {})
                res["_task"] = task["task"]["name"]
                self.results.append(res)

    def __getitem__(self, index):
        return self.results[index]

    def __len__(self):
        return len(self.results)

    @property
    def stats(self):
        return self.data.get("stats", {}).get("localhost", {})


def task(module, title=None, ignore=False, **args):
    """One task of ``module`` with ``args``; ``ignore`` keeps the play going after an expected failure."""
    result = {"name": title or module, module: args}
    if ignore:
        result["ignore_errors"] = True
    return result


# opennebula_vnets options that are the module's, not one network's
VNETS_MODULE_OPTIONS = ("wait", "wait_timeout", "poll_interval")


def one_host(name, title=None, ignore=False, **args):
    """An opennebula_hosts task for the one host ``name``, the other ``args`` at module level."""
    return task("opennebula_hosts", title or name, ignore, hosts=[name], **args)


def one_vnet(title=None, ignore=False, **args):
    """An opennebula_vnets task for one network: ``args`` is the network (name, drivers, ranges...) and the
    module's own options (wait, wait_timeout, poll_interval)."""
    module = {k: args.pop(k) for k in VNETS_MODULE_OPTIONS if k in args}
    return task("opennebula_vnets", title or args.get("name"), ignore, vnets=[args], **module)


def run_twice(tmp_path, oned, module, title=None, diff=False, **args):
    """``module`` with ``args`` run twice in one play (the second task titled
    "again"), which must pass, the second run changing nothing: its PlaybookRun.
    ``module`` may also be a function making the task (one_vnet)."""
    make = module if callable(module) else (lambda title, **a: task(module, title, **a))
    run = run_tasks(tmp_path, [make(title, **args), make("again", **args)], oned, diff=diff)
    assert run.rc == 0, run.stdout[-3000:]
    assert not run[1]["changed"], run[1]
    return run


def vnet_left_in_error(tmp_path, oned, name, net, **args):
    """Run opennebula_vnets for the one network ``name`` with an address range
    oned refuses once it has allocated the network (start ``net``.300): the
    task fails, changed, and oned keeps the network in ERROR. (The spec that
    corrects it: start ``net``.10; the ERROR vnet as the client reads it.)"""
    bad = dict(args, name=name, address_ranges=[{"key": "pool", "ip": net + ".300", "size": 8}])
    res = run_tasks(tmp_path, [one_vnet("refused range", ignore=True, **bad)], oned)[0]
    assert res["failed"] and res["changed"] is True  # the network was allocated
    error = res["errors"][name]
    assert "state ERROR" in error and "Wrong or empty IP attribute" in error, res["errors"]
    assert error in res["msg"] and res["vnets"][name]["error"] == error
    broken = oned.client().vnpool().get(name)
    assert broken.state_name == "ERROR"
    return dict(bad, address_ranges=[{"key": "pool", "ip": net + ".10", "size": 8}]), broken


def playbook_command(tmp_path, tasks, oned=None, check=False, diff=False, env=None, connection=True,
                     inventory=None, python=PYTHON):
    """The ansible-playbook command line and environment that run ``tasks``
    (list of dicts) on localhost: (argv, env), for a test that starts the
    process itself (to stop it half-way, say); run_tasks runs it.

    ``oned``: its URL and credentials become the modules' defaults.
    ``inventory``: INI text of an inventory holding localhost (default:
    localhost alone). ``python``: the interpreter modules run with on
    localhost. The environment leaves out ONE_XMLRPC and ONE_AUTH (a module
    reads only its parameters) and the proxy variables (the servers the
    tests start are local), and ``env`` adds to it."""
    play = {"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}
    if oned is not None and connection:
        play["module_defaults"] = {name: {"api_url": oned.url, "api_username": oned.username,
                                          "api_password": oned.password}
                                   for name in ("opennebula_cluster", "opennebula_hosts", "opennebula_vnets",
                                                "opennebula_datastore")}
    book = tmp_path / ("play-%d.yml" % len(list(tmp_path.glob("play-*.yml"))))
    book.write_text(yaml.safe_dump([play], sort_keys=False))
    hosts = "localhost,"
    if inventory is not None:
        hosts = str(book) + ".ini"
        Path(hosts).write_text(inventory)
    cmd = [str(ANSIBLE_PLAYBOOK), "-i", hosts, "-e", "ansible_python_interpreter=%s" % python, str(book)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    full_env = dict(os.environ)
    full_env.update({"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                     "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
                     "ANSIBLE_HOME": str(tmp_path / "ansible-home")})
    for name in ("ONE_XMLRPC", "ONE_AUTH", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return cmd, full_env


def run_tasks(tmp_path, tasks, oned=None, check=False, diff=False, env=None, connection=True, inventory=None,
              python=PYTHON):
    """Run ``tasks`` (list of dicts; the options are playbook_command's): its
    PlaybookRun. Every task not failing is expected unless ignore_errors."""
    cmd, full_env = playbook_command(tmp_path, tasks, oned, check=check, diff=diff, env=env, connection=connection,
                                     inventory=inventory, python=python)
    proc = subprocess.run(cmd, cwd=str(REPO), env=full_env, capture_output=True, text=True, timeout=300)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("ansible-playbook output is not JSON (rc %s):\n%s\n%s"
                             % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return PlaybookRun(proc, data)


def descendants(pid):
    """The pids of every process below ``pid`` (Ansible's workers run setsid:
    they are not in its process group)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_gone(pids, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(os.path.exists("/proc/%d" % pid) for pid in pids):
            return
        time.sleep(0.2)
    raise AssertionError("processes %s still run %d s after the run was stopped" % (pids, timeout))


def stop_half_way(cmd, env, sig, after):
    """Start ``cmd`` (ansible-playbook, with ``env``; playbook_command gives
    both) and stop it with ``sig`` ``after`` seconds in.

    SIGINT goes to ansible-playbook alone, as Ctrl-C in its terminal does
    (Ansible's workers run in sessions of their own): whatever module is
    running may finish. SIGKILL goes to ansible-playbook and every process
    below it at once, as a crash of the control machine would: the module
    dies wherever it is. Returns once every one of them is gone; False when
    the run ended before the signal."""
    proc = subprocess.Popen(cmd, cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        below = descendants(proc.pid)
        for pid in [proc.pid] + (below if sig == signal.SIGKILL else []):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        proc.wait(timeout=120)
        wait_gone(below)
        return True

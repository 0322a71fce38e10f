"""How Ansible reaches the molecule scenarios' test containers: podman's
connection (``podman exec`` for every step of a task) against SSH with
pipelining (molecule/shared/create.yml, as on a real site), side by side.

One container from the test image; the same playbooks of 1 and N+1 tasks
(stat, copy, command: what roles do most) run over each connection in turn,
R times. The cost of a task is (wall(N+1) - wall(1)) / N, so the fixed cost
of ansible-playbook's start is left out; controller CPU likewise (children
included: the podman and ssh processes). Medians of R.

Last line: molecule_connection: podman_s_per_task=<a> ssh_s_per_task=<b>
podman_vs_ssh=<a/b> (controller CPU alike, cpu_ keys).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAME = "stratuslab-bench-molecule"
IMAGE = "localhost/stratuslab-host:bookworm"
KEY = Path("/var/cache/stratuslab-test/demo-ssh/id_ed25519")
TASKS = """\
- name: Tasks a role runs
  hosts: all
  gather_facts: false
  tasks:
    - name: Stat, copy, command
      ansible.builtin.include_tasks: {tasks}
      loop: "{{{{ range({n}) | list }}}}"
"""
ONE = """\
- name: Stat a file
  ansible.builtin.stat:
    path: /etc/hostname
- name: Copy a file
  ansible.builtin.copy:
    content: "bench\\n"
    dest: /tmp/bench.txt
    mode: "0644"
- name: Run a command
  ansible.builtin.command: /bin/true
  changed_when: false
"""


def sh(*argv, **kw):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def start_container():
    subprocess.run(["podman", "rm", "-f", "-t", "2", NAME], capture_output=True, check=False)
    sh("podman", "run", "-d", "--name", NAME, "--privileged", "--systemd=always", "--no-hosts", IMAGE, "/sbin/init")
    subprocess.run(["podman", "exec", NAME, "systemctl", "is-system-running", "--wait"], capture_output=True,
                   check=False)
    if not KEY.exists():
        KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stratuslab-demo", "-f", str(KEY))
    sh("podman", "exec", "-i", NAME, "sh", "-c", "umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys",
       input=KEY.with_suffix(".pub").read_text())
    address = sh("podman", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", NAME).stdout.strip()
    if not address:
        address = sh("podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                     NAME).stdout.strip()
    return address


def inventories(work, address):
    podman = work / "podman.ini"
    podman.write_text("%s ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n"
                      % NAME)
    ssh = work / "ssh.ini"
    ssh.write_text("%s ansible_host=%s ansible_user=root ansible_ssh_private_key_file=%s "
                   "ansible_python_interpreter=/usr/bin/python3 "
                   "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                   "-o LogLevel=ERROR'\n" % (NAME, address, KEY))
    return {"podman": podman, "ssh": ssh}


def timed(inventory, playbook):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    run = subprocess.run(["ansible-playbook", "-i", str(inventory), str(playbook)], capture_output=True, text=True,
                         check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        sys.exit("bench: ansible-playbook failed over %s:\n%s" % (inventory.stem, run.stdout[-2000:]))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=30, help="N: tasks per long run, each a stat, copy, command")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (rootful podman)")
    with tempfile.TemporaryDirectory(prefix="bench-molecule-") as tmp:
        work = Path(tmp)
        (work / "one.yml").write_text(ONE)
        groups = args.tasks // 3
        (work / "short.yml").write_text(TASKS.format(tasks=work / "one.yml", n=1))
        (work / "long.yml").write_text(TASKS.format(tasks=work / "one.yml", n=1 + groups))
        try:
            address = start_container()
            invs = inventories(work, address)
            per = {name: {"wall": [], "cpu": []} for name in invs}
            for repeat in range(args.repeats):
                for name, inventory in invs.items():
                    short = timed(inventory, work / "short.yml")
                    long = timed(inventory, work / "long.yml")
                    tasks = 3 * groups
                    per[name]["wall"].append((long[0] - short[0]) / tasks)
                    per[name]["cpu"].append((long[1] - short[1]) / tasks)
                    print("run %d %-6s %d tasks: wall %.3f s/task, controller cpu %.3f s/task"
                          % (repeat + 1, name, tasks, per[name]["wall"][-1], per[name]["cpu"][-1]), flush=True)
        finally:
            subprocess.run(["podman", "rm", "-f", "-t", "2", NAME], capture_output=True, check=False)
    med = {name: {k: statistics.median(v) for k, v in d.items()} for name, d in per.items()}
    print("note: load average %.1f" % os.getloadavg()[0])
    print("molecule_connection: podman_s_per_task=%.3f ssh_s_per_task=%.3f podman_vs_ssh=%.1f "
          "cpu_podman_s_per_task=%.3f cpu_ssh_s_per_task=%.3f cpu_podman_vs_ssh=%.1f"
          % (med["podman"]["wall"], med["ssh"]["wall"], med["podman"]["wall"] / med["ssh"]["wall"],
             med["podman"]["cpu"], med["ssh"]["cpu"], med["podman"]["cpu"] / med["ssh"]["cpu"]))


if __name__ == "__main__":
    main()

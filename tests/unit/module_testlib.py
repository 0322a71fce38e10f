"""Run the project's modules the way roles call them: ansible-playbook on localhost, json callback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run(tmp_path, tasks, check=False, diff=False, env=None):
    """Task results of a play of `tasks` on localhost; the json callback's view.

    `env` adds to (or replaces in) this process's environment, e.g. a PATH with a stand-in command first.
    """
    book = tmp_path / f"play-{len(list(tmp_path.glob('play-*.yml')))}.yml"
    book.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False,
                                     "tasks": tasks}], sort_keys=False))
    cmd = [str(PLAYBOOK), "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", str(book)]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    full_env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                    ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"), ANSIBLE_HOME=str(tmp_path / "home"))
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=300, check=False)
    data = json.loads(proc.stdout)
    return [task["hosts"]["localhost"] for play in data["plays"] for task in play["tasks"]]

"""Run the project's modules the way roles call them: a play on localhost through
preflight_testlib.run_playbook (the project's ansible.cfg, the json callback), one
task result per task.
"""

from __future__ import annotations

import json

import yaml

from preflight_testlib import ROOT as REPO
from preflight_testlib import run_playbook


def run(tmp_path, tasks, check=False, diff=False, env=None):
    """Task results of a play of `tasks` on localhost; the json callback's view.

    `env` adds to (or replaces in) the environment, e.g. a PATH with a stand-in command first.
    """
    work = tmp_path / f"play-{len(list(tmp_path.glob('play-*')))}"
    play = yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}],
                          sort_keys=False)
    args = (["--check"] if check else []) + (["--diff"] if diff else [])
    proc = run_playbook(work, play, "localhost,", extra_vars={}, args=args, callback="json",
                        env=dict({"ANSIBLE_LOCAL_TEMP": str(tmp_path / "local"),
                                  "ANSIBLE_HOME": str(tmp_path / "home")}, **(env or {})))
    data = json.loads(proc.stdout)
    return [task["hosts"]["localhost"] for play in data["plays"] for task in play["tasks"]]


__all__ = ["REPO", "run"]

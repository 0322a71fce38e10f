"""Make molecule's idempotence run a -vvv run, and mark every run in the log.

Molecule runs the converge playbook a second time for its idempotence step
and tells that run apart only by one extra skipped tag
(``molecule-idempotence-notest``). This callback (loaded for molecule runs
only, through ANSIBLE_CALLBACK_PLUGINS in .config/molecule/config.yml) turns
that run into a real ``-vvv`` run: it raises Ansible's display verbosity to 3
before the first task, exactly what ``-vvv`` on the command line sets, so the
default callback prints every task's full result (module arguments in
``invocation`` included) and the connection plugin prints every command it
runs. With ANSIBLE_LOG_PATH set, that output lands in the scenario's
ephemeral directory, where molecule/shared/test_no_secrets.py greps it for
the site's secrets. The idempotence step therefore IS the verbose run: no
extra converge is paid for it.

Every playbook run also gets a marker line in the log (log only, not on the
screen) naming the playbook and its verbosity, so the test can say in which
run a secret leaked and can check that a verbose run really happened.

Molecule's check step (``--check``) reports changes without failing on them:
this callback writes what that run would change (each task and host) to
``$MOLECULE_EPHEMERAL_DIRECTORY/check-run.json``, which
molecule/shared/test_check_mode.py asserts is nothing.
"""

from __future__ import annotations

import json
import os

from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible.utils.display import Display

DOCUMENTATION = """
name: molecule_verbose_idempotence
type: aggregate
short_description: run molecule's idempotence step at -vvv and mark runs in the log
description:
  - Raises the display verbosity to 3 for the run molecule makes with the
    C(molecule-idempotence-notest) tag skipped, and writes a marker line to
    the Ansible log at the start of every playbook run.
"""

IDEMPOTENCE_TAG = "molecule-idempotence-notest"
CHECK_REPORT = "check-run.json"
VERBOSE_LEVEL = 3
MARKER = "STRATUSLAB-RUN"

display = Display()


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "molecule_verbose_idempotence"
    # Loaded without being listed in callbacks_enabled: only molecule's
    # environment puts this directory on the callback path.
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_changes = []
        self._check_playbook = None

    def v2_playbook_on_start(self, playbook):
        skip_tags = context.CLIARGS.get("skip_tags") or ()
        idempotence = any(IDEMPOTENCE_TAG in str(tag).split(",") for tag in skip_tags)
        if idempotence and display.verbosity < VERBOSE_LEVEL:
            display.verbosity = VERBOSE_LEVEL
        run = "idempotence" if idempotence else "run"
        if context.CLIARGS.get("check"):
            run = "check"
            self._check_playbook = playbook._file_name
        display.display(
            "%s %s playbook=%s verbosity=%d"
            % (MARKER, run, os.path.basename(playbook._file_name), display.verbosity),
            log_only=True,
        )

    def v2_runner_on_ok(self, result):
        if self._check_playbook and result._result.get("changed"):
            self._check_changes.append({"host": result._host.get_name(), "task": result._task.get_name()})

    def v2_playbook_on_stats(self, stats):
        directory = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
        if not self._check_playbook or not directory:
            return
        hosts = sorted(stats.processed)
        report = {"playbook": self._check_playbook, "changes": self._check_changes,
                  "stats": {host: stats.summarize(host) for host in hosts}}
        with open(os.path.join(directory, CHECK_REPORT), "w", encoding="utf-8") as out:
            json.dump(report, out, indent=1)

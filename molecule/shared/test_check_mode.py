"""Molecule's check step found nothing to change on the converged hosts.

Shared by the scenarios (each links it into its tests/). The check step is
``ansible-playbook --check`` of the converge playbook after the idempotence
run; molecule does not fail it when tasks report changes. The
callback molecule/shared/callback_plugins/molecule_verbose_idempotence.py
writes what that run reported to ``$MOLECULE_EPHEMERAL_DIRECTORY/
check-run.json``: every host processed, each task that would change
something. A site whose check run predicts changes on a converged site has
a task that is not idempotent in check mode, or one whose check-mode
prediction is wrong; either misleads an administrator who runs
``--check --diff`` before a change.
"""

import json
import os

import pytest

REPORT = "check-run.json"


@pytest.fixture(scope="module")
def check_run():
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], REPORT)
    if not os.path.exists(path):
        pytest.fail("%s is missing: molecule's check step did not run before verify, or the callback "
                    "molecule_verbose_idempotence did not load" % path)
    with open(path, encoding="utf-8") as report:
        return json.load(report)


def test_the_check_run_processed_every_host(check_run):
    stats = check_run["stats"]
    assert stats, "the check run processed no host"
    for host, counts in stats.items():
        assert counts["ok"] > 0, "%s: no task ran in check mode: %s" % (host, counts)
        assert counts["failures"] == 0 and counts["unreachable"] == 0, "%s: %s" % (host, counts)


def test_the_check_run_predicts_no_change(check_run):
    changes = ["%s: %s" % (change["host"], change["task"]) for change in check_run["changes"]]
    changed = {host: counts["changed"] for host, counts in check_run["stats"].items() if counts["changed"]}
    assert not changes and not changed, "--check --diff on the converged hosts would change:\n" + "\n".join(changes)

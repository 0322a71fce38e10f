"""The site's post-deployment validation, run as a site administrator runs it.

    ansible-playbook -i <molecule inventory> playbooks/validate.yml \
        -e @<site_appliances, site_repository_trusted_signers, site_validate_appliance>

on the converged site with the real OpenNebula: a VM boots from the test
image on every site network, in the site cluster, with its disk copied to
its node by the site's image sharing, answers ping at its leased address,
and its usage is found in the accounting API when the site has one. One
more VM boots from a site appliance: the test image published to the
site's repository, verified and registered by playbooks/appliances.yml
(tests/conftest.py, fixture site_appliance), named by
site_validate_appliance. Then nothing the validation made is left in
OpenNebula, and the appliance's image still is.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
PREFIX = "stratuslab-validate-"  # roles/validate: validate_name_prefix
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _pool_names(host, command, pool, item):
    out = host.run("runuser -u oneadmin -- %s list --json", command)
    assert out.rc == 0, out.stderr
    items = json.loads(out.stdout)[pool].get(item) or []
    return [i["NAME"] for i in (items if isinstance(items, list) else [items])]


@pytest.fixture(scope="module")
def validation(request, site_appliance):
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as extra:
        json.dump(dict(site_appliance["vars"], site_validate_appliance=site_appliance["name"]), extra)
    # molecule's environment forces colour and the YAML result format: the
    # report is read from Ansible's default output, one JSON string per line.
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_INJECT_FACT_VARS="false",
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    started = time.monotonic()
    try:
        proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / "validate.yml"),
                               "-e", "@" + extra.name], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=1800)
    finally:
        os.unlink(extra.name)
    seconds = time.monotonic() - started
    lines = [ANSI.sub("", line).strip().strip('",') for line in proc.stdout.splitlines()]
    report = [line for line in lines if line.startswith(("PASS ", "FAIL ", "SKIP ", "NOT RUN "))]
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("validate.yml: rc %d in %.0f s" % (proc.returncode, seconds))
        for line in report:
            reporter.write_line("  " + line)
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "report": report}


def test_validation_passes_every_check(validation):
    assert validation["rc"] == 0, validation["stdout"][-6000:] + validation["stderr"][-2000:]
    assert validation["report"], "no report lines in:\n" + validation["stdout"][-4000:]
    assert all(line.startswith(("PASS", "SKIP")) for line in validation["report"]), "\n".join(validation["report"])


@pytest.mark.parametrize("check", [
    "LDAP login", "Register the test image", "Every VM RUNNING", "disk reached its node",
    "answers ping", "site appliance", "accounting API", "Remove every VM"])
def test_report_names_each_check(validation, check):
    assert any(check in line for line in validation["report"]), "\n".join(validation["report"])


def test_a_vm_ran_on_every_site_network(validation):
    running = [line for line in validation["report"] if "Every VM RUNNING" in line]
    assert running and "public" in running[0] and "private" in running[0], running


def test_a_vm_booted_from_the_site_appliance(validation, site_appliance):
    booted = [line for line in validation["report"] if "site appliance" in line]
    assert len(booted) == 1 and booted[0].startswith("PASS"), validation["report"]
    assert site_appliance["name"] in booted[0] and "answered" in booted[0], booted


def test_the_site_appliance_stays_registered(host, validation, site_appliance):
    assert validation["report"]
    assert site_appliance["name"] in _pool_names(host, "oneimage", "IMAGE_POOL", "IMAGE")


def test_nothing_the_validation_made_is_left(host, validation):
    assert validation["report"]
    assert not [n for n in _pool_names(host, "onevm", "VM_POOL", "VM") if n.startswith(PREFIX)]
    assert not [n for n in _pool_names(host, "oneimage", "IMAGE_POOL", "IMAGE") if n.startswith(PREFIX)]

"""Fixtures shared by the site scenario's test modules: an appliance
publisher on a site node, and an appliance it published that the site's one
path into OpenNebula (playbooks/appliances.yml) verified and registered.

tests/test_appliances.py checks the repository and the registration with
them; tests/test_validate.py boots the registered appliance in the
validation; tests/test_ldap_client.py uses the publisher as a client of the
site's LDAP (publisher.yml gives it the ldap role's entry point client).
Session-scoped: published and registered once per verify run.

The publisher is the first node (the client of the repository, a site host
that the firewall lets in); the repository, the LDAP server and the
front-end are the first front-end (site-one is all three). The appliance is
the validation's test VM image (make test-image), signed by alice, whom the
test's own signers' CA issued: that CA is the only trusted signer, given to
the playbooks with -e (site_repository_trusted_signers), as the appliance is
(site_appliances).
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import stratuslab_testinfra
import testinfra
import yaml

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SITE = yaml.safe_load((ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml").read_text())
TEST_IMAGE = Path(SITE["site_validate_image"])
PUBLISHER_DIR = "/opt/stratuslab-test"
# roles/frontend: frontend_appliances_dir, where verified images are placed.
FRONTEND_APPLIANCES_DIR = "/var/tmp/stratuslab-appliances"
# inventories/demo: site_ldap_users and site_ldap_groups (appliance-writers: alice, bob).
WRITER = ("alice", {u["uid"]: u["password"] for u in SITE["site_ldap_users"]}["alice"])


def group(name):
    """The scenario's hosts of group ``name`` ([] when it has none)."""
    from testinfra.utils.ansible_runner import AnsibleRunner

    return sorted(AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(name))


def repository_name():
    return "%s.%s" % (group("repository")[0], SITE["site_domain"])


def playbook_env():
    """The environment of an ansible-playbook run from these tests: the project's
    ansible.cfg, a JSON report on stdout, this Python's ansible first on PATH."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_INJECT_FACT_VARS="false",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def run_playbook(playbook, extra_vars=None, args=(), env=None, during=None):
    """Run ``playbook`` (a path under the project, or an absolute one) on the scenario's inventory
    with ``extra_vars`` (-e @file); {rc, report (ansible.posix.json), stdout, stderr, seconds}.

    ``env`` adds to the run's environment. ``during(done)``, when given, runs in
    a thread while the playbook runs (a fault put in its way); ``done`` is a
    threading.Event set when the playbook has ended, and the run returns once
    the thread has too."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    run_env = playbook_env()
    run_env.update(env or {})
    argv = ["ansible-playbook", "-i", str(inventory), str(ROOT / playbook)] + list(args)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(extra_vars or {}, handle)
    done = threading.Event()
    thread = threading.Thread(target=during, args=(done,)) if during else None
    started = time.monotonic()
    try:
        if thread:
            thread.start()
        proc = subprocess.run(argv + ["-e", "@" + handle.name], cwd=ROOT, env=run_env, capture_output=True,
                              text=True, timeout=1800)
    finally:
        done.set()
        if thread:
            thread.join()
        os.unlink(handle.name)
    return {"rc": proc.returncode, "report": json_report(proc.stdout), "stdout": proc.stdout, "stderr": proc.stderr,
            "seconds": time.monotonic() - started}


def json_report(stdout):
    """The ansible.posix.json report a playbook printed, or None when its output is not one."""
    try:
        return json.loads(stdout)
    except ValueError:
        return None


def failed_messages(report):
    """The messages of every failed task of a JSON report (or None), one per line."""
    return "\n".join(str(result.get("msg", "")) for play in (report or {}).get("plays", [])
                     for task in play["tasks"] for result in task["hosts"].values() if result.get("failed"))


def task_results(run, task_suffix, host):
    """The result of ``host`` for each task whose name ends with ``task_suffix``."""
    assert run["report"], "no JSON report (rc %d):\n%s\n%s" % (run["rc"], run["stdout"][-3000:], run["stderr"][-3000:])
    return [task["hosts"][host] for play in run["report"]["plays"] for task in play["tasks"]
            if task["task"]["name"].endswith(task_suffix) and host in task["hosts"]]


def say(request, line):
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)


def publish(publisher, name, signer, version="1.0"):
    """tools/sl-publish on the publisher: the test VM image as appliance ``name``, signed by ``signer``."""
    host = publisher["host"]
    return host.run(
        "SL_PUBLISH_PASSWORD=%s %s/tools/sl-publish --repository %s --user %s --key %s/signers/%s.key "
        "--cert %s/signers/%s.crt --type base --name %s --version %s --os stratuslab-test --osversion 1 "
        "%s/test-vm.img", WRITER[1], PUBLISHER_DIR, publisher["repository"], WRITER[0], PUBLISHER_DIR, signer,
        PUBLISHER_DIR, signer, name, version, PUBLISHER_DIR)


def manifest_path(name, version="1.0"):
    """The manifest's path in the repository (site_appliances' manifest)."""
    return "images/base/%s/%s-%s.img.manifest.xml" % (name, name, version)


@pytest.fixture(scope="session")
def publisher(request):
    """The first node, made a publisher (tests/publisher.yml); {host, name, repository, ca_pem}."""
    assert TEST_IMAGE.is_file(), "%s is missing: make test-image builds it" % TEST_IMAGE
    name = stratuslab_testinfra.names("nodes")[0]
    run = run_playbook(Path(__file__).with_name("publisher.yml"),
                       {"publisher_host": name, "publisher_image": str(TEST_IMAGE)})
    assert run["rc"] == 0, "publisher.yml failed:\n%s\n%s" % (run["stdout"][-4000:], run["stderr"][-2000:])
    say(request, "publisher: %s made a publisher in %.0f s" % (name, run["seconds"]))
    host = testinfra.get_host(stratuslab_testinfra.hosts(name)[0])
    return {"host": host, "name": name, "repository": "https://%s/" % repository_name(),
            "ca_pem": host.file(PUBLISHER_DIR + "/signers/ca.crt").content_string}


def appliance_vars(publisher, appliances, **more):
    """Extra vars that give the site ``appliances`` (manifest paths) and the test CA as its trusted signer."""
    return dict({"site_appliances": [{"manifest": manifest_path(name)} for name in appliances],
                 "site_repository_trusted_signers": [publisher["ca_pem"]]}, **more)


@pytest.fixture(scope="session")
def site_appliance(request, publisher):
    """An appliance alice published and playbooks/appliances.yml verified and
    registered; {name (the OpenNebula image's), appliance, run, vars}."""
    appliance = "sltest%s" % uuid.uuid4().hex[:6]
    out = publish(publisher, appliance, "alice")
    assert out.rc == 0, out.stderr
    extra = appliance_vars(publisher, [appliance])
    run = run_playbook("playbooks/appliances.yml", extra)
    say(request, "appliances.yml registered %s-1.0 in %.0f s (rc %d)" % (appliance, run["seconds"], run["rc"]))
    assert run["rc"] == 0, "appliances.yml failed:\n%s\n%s" % (run["stdout"][-4000:], run["stderr"][-2000:])
    return {"name": "%s-1.0" % appliance, "appliance": appliance, "run": run, "vars": extra,
            "publish_output": out.stdout + out.stderr}

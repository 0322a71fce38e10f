"""Grid users log in to the real OpenNebula with their X.509 certificates.

prepare.yml made a test grid CA on this machine (its subject hash starts
with a zero), a rogue CA of the same subject, and the users' certificates;
the scenario's site file (host_vars/site-one.yml) trusts the CA and its CRL
(site_x509_cas) and maps dora, erin and frank's DNs to OpenNebula users
(site_x509_users). Each user here does what a grid user does, with
OpenNebula's own CLI on the front-end: `oneuser login NAME --x509 --cert
--key` (or `--x509_proxy` with a grid proxy made here), then runs a VM with
the token, which a node's libvirt runs. A certificate from the rogue CA
(dora's subject), an expired one (erin's) and a revoked one (frank's first)
are each refused, with the driver's reason in oned.log; frank's other
certificate logs in.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import stratuslab_testinfra
from conftest import ROOT, SITE

sys.path.insert(0, str(ROOT / "tests" / "unit"))
from x509_testlib import make_proxy  # noqa: E402  (the project's test PKI helpers)

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

FRONTEND = stratuslab_testinfra.names("frontend")[0]
SITE_FILE = stratuslab_testinfra.hostvars(FRONTEND)
GRID = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "grid"
WORK = "/root/sl-x509-test"  # on the front-end, mode 0700
ONE_XMLRPC = "http://localhost:%d/RPC2" % SITE["site_one_api_port"]
ONED_LOG = "/var/log/one/oned.log"
USERS = {user["name"]: user["dn"] for user in SITE_FILE["site_x509_users"]}
VM_RUNNING_S = 300


def sh(host, command, *args):
    """``command`` on the front-end; the result, which must succeed. (testinfra quotes each of
    ``args`` as a string: numbers are given as strings.)"""
    result = host.run(command, *args)
    assert result.rc == 0, "%s\nrc %s\n%s%s" % (result.command, result.rc, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="module")
def work(host):
    """The users' certificates and keys copied to the front-end, and a grid proxy of dora's."""
    make_proxy(GRID / "dora.pem", GRID / "dora.key", GRID / "dora.proxy")
    sh(host, "rm -rf %s && install -d -m 0700 %s", WORK, WORK)
    for path in sorted(GRID.glob("*")):
        if path.suffix in (".pem", ".key", ".proxy") and not path.name.startswith(("ca.", "rogue-ca.")):
            sh(host, "umask 077 && printf %%s %s > %s", path.read_text(), "%s/%s" % (WORK, path.name))
    yield WORK
    host.run("rm -rf %s", WORK)


def cli(host, auth, command, *args):
    """An OpenNebula CLI command on the front-end with ``auth`` (a file in WORK) as ONE_AUTH."""
    return host.run("ONE_AUTH=%s ONE_XMLRPC=%s " + command, "%s/%s" % (WORK, auth), ONE_XMLRPC, *args)


def login(host, user, cert, *extra):
    """`oneuser login` as ``user`` with ``cert`` (<cert>.pem and <cert>.key); the run and its token
    file's content. The CLI needs an ONE_AUTH file before the login writes it: an empty one."""
    auth = "%s.auth" % cert
    sh(host, "rm -f %s/%s && install -m 0600 /dev/null %s/%s", WORK, auth, WORK, auth)
    run = cli(host, auth, "oneuser login %s --x509 --cert %s --key %s --force " + " ".join(extra),
              user, "%s/%s.pem" % (WORK, cert), "%s/%s.key" % (WORK, cert))
    return run, host.file("%s/%s" % (WORK, auth)).content_string


def oneadmin(host, command, *args):
    return sh(host, "runuser -u oneadmin -- " + command, *args)


def vm_state(host, vm_id):
    vm = json.loads(oneadmin(host, "onevm show %s --json", str(vm_id)).stdout)["VM"]
    history = vm.get("HISTORY_RECORDS") or {}
    history = history.get("HISTORY", {})
    last = history[-1] if isinstance(history, list) else history
    return vm, last.get("HOSTNAME")


def test_the_ca_is_installed_under_its_hash_and_the_drivers_name_for_it(host):
    ca_hash = subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in", str(GRID / "ca.pem")],
                             capture_output=True, text=True, check=True).stdout.strip()
    # The fixture's CA was chosen with a leading zero (prepare.yml): the
    # driver's name for it then differs, and the login needs the link.
    assert ca_hash.startswith("0"), ca_hash
    ca_dir = SITE_FILE.get("site_x509_ca_dir", "/etc/grid-security/certificates")
    installed = host.file("%s/%s.0" % (ca_dir, ca_hash))
    assert installed.is_file and installed.content_string.strip() == (GRID / "ca.pem").read_text().strip()
    assert host.file("%s/%s.r0" % (ca_dir, ca_hash)).is_file
    short = host.file("%s/%s.0" % (ca_dir, ca_hash.lstrip("0")))
    assert short.is_symlink and short.linked_to == installed.path


@pytest.mark.parametrize("name", ["dora", "erin", "frank"])
def test_each_mapped_dn_is_an_x509_user(host, name):
    user = json.loads(oneadmin(host, "oneuser show %s --json", name).stdout)["USER"]
    assert user["AUTH_DRIVER"] == "x509"
    # OpenNebula keeps the DN with its spaces escaped.
    assert user["PASSWORD"] == USERS[name].replace(" ", "\\20")


def test_a_user_logs_in_with_her_certificate_and_runs_a_vm(host, work):
    run, token = login(host, "dora", "dora")
    assert run.rc == 0, run.stdout + run.stderr
    assert token.startswith("dora:"), token[:20]
    created = cli(host, "dora.auth", "onevm create --name sl-x509-vm --cpu 0.1 --memory 64")
    assert created.rc == 0, created.stdout + created.stderr
    vm_id = int(created.stdout.strip().rsplit(":", 1)[-1])
    try:
        deadline = time.monotonic() + VM_RUNNING_S
        while True:
            vm, node = vm_state(host, vm_id)
            if vm["STATE"] == "3" and vm["LCM_STATE"] == "3":  # ACTIVE, RUNNING
                break
            assert vm["STATE"] not in ("7", "8") and time.monotonic() < deadline, (
                "VM %s of dora not RUNNING within %d s: STATE %s LCM_STATE %s %s"
                % (vm_id, VM_RUNNING_S, vm["STATE"], vm["LCM_STATE"], vm.get("USER_TEMPLATE", {})))
            time.sleep(5)
        assert vm["UNAME"] == "dora"
        # The node's libvirt runs it.
        node_host = host.get_host(stratuslab_testinfra.hosts(node.split(".")[0])[0])
        domains = node_host.run("virsh -c qemu:///system list --name")
        assert "one-%d" % vm_id in domains.stdout.split(), domains.stdout + domains.stderr
        # dora sees her VM with her token.
        listed = cli(host, "dora.auth", "onevm list --csv -l ID,USER,NAME")
        assert "%d,dora,sl-x509-vm" % vm_id in listed.stdout, listed.stdout + listed.stderr
    finally:
        cli(host, "dora.auth", "onevm terminate --hard %d" % vm_id)
        deadline = time.monotonic() + 120
        while vm_state(host, vm_id)[0]["STATE"] != "6" and time.monotonic() < deadline:  # DONE
            time.sleep(3)
        assert vm_state(host, vm_id)[0]["STATE"] == "6", "VM %s of dora not DONE 120 s after terminate" % vm_id


def test_a_user_logs_in_with_a_grid_proxy(host, work):
    sh(host, "rm -f %s/proxy.auth && install -m 0600 /dev/null %s/proxy.auth", WORK, WORK)
    run = cli(host, "proxy.auth", "oneuser login dora --x509_proxy --proxy %s --force", "%s/dora.proxy" % WORK)
    assert run.rc == 0, run.stdout + run.stderr
    me = cli(host, "proxy.auth", "oneuser show --json")
    assert me.rc == 0 and json.loads(me.stdout)["USER"]["NAME"] == "dora", me.stdout + me.stderr


@pytest.mark.parametrize("user, cert, reason", [
    ("dora", "mallory", "was not verified by"),   # dora's subject, from the rogue CA
    ("erin", "erin", "Certificate not valid"),     # expired
    ("frank", "frank-revoked", "it is revoked"),   # in the CA's CRL
], ids=["untrusted-ca", "expired", "revoked"])
def test_a_bad_certificate_is_refused(host, work, user, cert, reason):
    offset = int(sh(host, "stat -c %%s %s", ONED_LOG).stdout)
    # --time: the token outlives the certificate, so that the expired
    # certificate is refused for its own dates, not for its token's.
    run, token = login(host, user, cert, "--time 3600")
    assert run.rc != 0, "accepted: %s as %s\n%s" % (cert, user, run.stdout)
    assert not token.strip()
    log = sh(host, "tail -c +%s %s", str(offset + 1), ONED_LOG).stdout
    assert reason in log, log[-3000:]


def test_the_revoked_users_other_certificate_logs_in(host, work):
    run, token = login(host, "frank", "frank")
    assert run.rc == 0, run.stdout + run.stderr
    listed = cli(host, "frank.auth", "onevm list --csv -l ID,USER,NAME")
    assert listed.rc == 0, listed.stdout + listed.stderr

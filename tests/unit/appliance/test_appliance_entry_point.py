"""The frontend role's entry point appliances: verify every appliance, then register, or register nothing.

ansible-playbook runs roles/frontend/tasks/appliances.yml on this machine
against a local repository server and the test oned (products/test_oned, not
OpenNebula). The role's preflight is tested in test_frontend_preflight.py
and is marked passed here; the packages task runs for real, with the
system's Python (python3-apt), and finds xmlsec1 and python3-cryptography
installed.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

import pytest

from appliance_testlib import RepoServer, pki, publish_tree, run_tasks
from test_appliance_image import PASSWORD, Oned

SYSTEM_PYTHON = "/usr/bin/python3"


def _system_ready():
    if not shutil.which("xmlsec1") or not os.path.exists(SYSTEM_PYTHON):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import apt, cryptography"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _system_ready(), reason="needs xmlsec1, python3-apt and python3-cryptography "
                                                            "installed (apt-get install xmlsec1 python3-cryptography)")


@pytest.fixture
def site(tmp_path):
    """A repository with two published appliances, the test oned, and the entry point's inputs."""
    root = tmp_path / "repo"
    published = {}
    for name in ("ttylinux", "alpine"):
        published[name] = publish_tree(root, gzip.compress(os.urandom(1024) * 1000), pki()["alice"], name=name)
    home = tmp_path / "oneadmin"
    (home / ".one").mkdir(parents=True)
    (home / ".one" / "one_auth").write_text("oneadmin:%s\n" % PASSWORD)
    appliances = tmp_path / "appliances"
    oned = Oned(tmp_path)
    oned.allow_dir(str(appliances))
    with RepoServer(root) as server:
        server.published = published
        server.oned = oned
        server.appliances = appliances
        server.inputs = {
            "__frontend_preflight_passed": True,
            "frontend_appliances": [
                {"manifest": published["ttylinux"][0].manifest_path},
                {"manifest": server.url + published["alpine"][0].manifest_path, "name": "alpine"},
            ],
            "frontend_appliances_repository_url": server.url,
            "frontend_appliances_trusted_signers": [pki()["ca"].cert_pem.decode()],
            "frontend_appliances_dir": str(appliances),
            "frontend_image_datastore_name": "default",
            "frontend_one_api_port": oned.port,
            "frontend_oneadmin_home": str(home),
            "frontend_one_install": "test_oned",
        }
        yield server
    oned.stop()


def entry_point(tmp_path, site, check=False):
    task = {"name": "appliances", "ansible.builtin.include_role": {"name": "frontend", "tasks_from": "appliances.yml"},
            "vars": site.inputs}
    results, out = run_tasks(tmp_path, [task], check=check, python=SYSTEM_PYTHON)
    return results, out


def registered(site):
    return sorted(image.find("NAME").text for image in site.oned.images())


def test_appliances_are_verified_then_registered_and_a_rerun_changes_nothing(tmp_path, site):
    results, out = entry_point(tmp_path, site)
    assert not [r for r in results if r.get("failed")], out[-3000:]
    assert registered(site) == ["alpine", "ttylinux-9.7"]
    image = {i.find("NAME").text: i for i in site.oned.images()}["ttylinux-9.7"]
    assert image.find("TEMPLATE/SL_SHA256").text == site.published["ttylinux"][0].sha256
    assert image.find("TEMPLATE/SL_SIGNER").text.startswith("CN=alice,")
    assert sorted(os.listdir(site.appliances)) == ["alpine-9.7.img", "ttylinux-9.7.img"]

    again, out = entry_point(tmp_path, site)
    assert not [r for r in again if r.get("failed")], out[-3000:]
    assert [r for r in again if r.get("changed")] == [], out[-3000:]
    assert registered(site) == ["alpine", "ttylinux-9.7"]


def test_check_mode_writes_and_registers_nothing(tmp_path, site):
    results, out = entry_point(tmp_path, site, check=True)
    assert not [r for r in results if r.get("failed")], out[-3000:]
    assert not site.appliances.exists() or os.listdir(site.appliances) == []
    assert registered(site) == []


def _refused(tmp_path, site, reason):
    results, out = entry_point(tmp_path, site)
    failed = [r for r in results if r.get("failed")]
    assert failed, "the appliance was accepted:\n" + out[-3000:]
    reasons = [item.get("reason") for item in failed[0].get("results", []) if item.get("failed")]
    assert reasons == [reason], failed[0]
    assert registered(site) == [], "a refused appliance let another be registered"
    assert [f for f in os.listdir(site.appliances) if f.startswith("alpine")] == []
    return failed[0], out


def test_a_tampered_image_registers_nothing(tmp_path, site):
    image = site.published["alpine"][1]
    data = bytearray(image.read_bytes())
    data[5000] ^= 0x01
    image.write_bytes(bytes(data))
    failed, _ = _refused(tmp_path, site, "content")
    assert "SHA-256" in str(failed)


def test_a_manifest_changed_after_signing_registers_nothing(tmp_path, site):
    manifest_file = site.published["alpine"][2]
    manifest_file.write_text(manifest_file.read_text().replace("<arch>x86_64</arch>", "<arch>aarch64</arch>"))
    failed, _ = _refused(tmp_path, site, "signature")
    assert "changed after signing" in str(failed)


def test_an_untrusted_signer_registers_nothing(tmp_path, site):
    # (An expired signer is refused the same way: test_appliance_verify.py.)
    publish_tree(site.root, site.published["alpine"][1].read_bytes(), pki()["mallory"], name="alpine")
    failed, _ = _refused(tmp_path, site, "trust")
    assert "not one of the site's trusted signers" in str(failed)

"""Verified appliances registered in OpenNebula: opennebula_image against the test oned.

The test oned's image calls follow OpenNebula's documented IMAGE document but
are not replay-checked against a real oned (docs/test-oned.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xmlrpc.client

import pytest

from appliance_testlib import REPO, RepoServer, pki, publish_tree, run_tasks, sm  # noqa: F401

sys.path.insert(0, str(REPO / "products" / "test_oned" / "tests"))
from oned_support import oned_argv, oned_env  # noqa: E402

PASSWORD = "image-test-pw"


class Oned:
    """The test oned (python3 -m stratuslab_test_oned) on a free port, state and datastores in a temporary directory."""

    def __init__(self, tmp_path):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        auth = tmp_path / "one_auth"
        auth.write_text("oneadmin:%s\n" % PASSWORD)
        self.url = "http://127.0.0.1:%d/RPC2" % self.port
        self.log = open(tmp_path / "oned.log", "wb")
        self.proc = subprocess.Popen(
            oned_argv("--listen", "127.0.0.1:%d" % self.port, "--state", tmp_path / "oned.db", "--auth", auth,
                      "--datastore-location", tmp_path / "datastores", python=sys.executable),
            env=oned_env(), stdout=self.log, stderr=subprocess.STDOUT)
        self.rpc = xmlrpc.client.ServerProxy(self.url)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.call("one.system.version")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.05)

    def call(self, method, *params):
        answer = getattr(self.rpc, method)("oneadmin:" + PASSWORD, *params)
        assert answer[0], answer
        return answer[1]

    def images(self):
        import xml.etree.ElementTree as ET

        return ET.fromstring(self.call("one.imagepool.info", -2, -1, -1)).findall("IMAGE")

    def allow_dir(self, path):
        # What a site does for its appliance directory: add it to the image
        # datastore's SAFE_DIRS (RESTRICTED_DIRS is "/").
        self.call("one.datastore.update", 1, 'SAFE_DIRS="/var/tmp %s"' % path, 1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def oned(tmp_path):
    server = Oned(tmp_path)
    yield server
    server.stop()


def connection(oned):
    return {"api_url": oned.url, "api_username": "oneadmin", "api_password": PASSWORD}


def image_task(oned, **args):
    merged = connection(oned)
    merged.update(args)
    return {"name": "image", "opennebula_image": merged}


@pytest.fixture
def appliance(tmp_path):
    """A published, signed appliance in a local repository, and a directory oned may copy from."""
    root = tmp_path / "repo"
    import gzip

    raw = os.urandom(1024) * 3000  # about 3 MB raw
    manifest, image, manifest_file = publish_tree(root, gzip.compress(raw), pki()["alice"])
    appliances = tmp_path / "appliances"
    appliances.mkdir()
    with RepoServer(root) as server:
        server.manifest = manifest
        server.image = image
        server.manifest_file = manifest_file
        server.appliances = appliances
        yield server


def verify_then_register(repo, oned, signer="ca"):
    dest = str(repo.appliances / "ttylinux-9.7.img.gz")
    return [
        {"name": "verify", "register": "appliance",
         "appliance_verify": {"manifest_url": repo.url + repo.manifest.manifest_path, "dest": dest,
                              "trusted_signers": [pki()[signer].cert_pem.decode()]}},
        image_task(oned, name="ttylinux-9.7", datastore="default", path="{{ appliance.dest }}",
                   description="{{ appliance.manifest.os }} {{ appliance.manifest.osversion }}",
                   template={"sl_sha256": "{{ appliance.manifest.sha256 }}",
                             "sl_signer": "{{ appliance.signer.subject }}"}),
    ]


def test_verified_appliance_is_registered_and_ready(tmp_path, appliance, oned):
    oned.allow_dir(str(appliance.appliances))
    (verify, image), _ = run_tasks(tmp_path, verify_then_register(appliance, oned), diff=True)
    assert verify.get("changed") is True, verify
    assert image.get("changed") is True, image
    got = image["image"]
    assert got["state"] == "READY" and got["id"] == 0 and got["datastore"] == "default"
    assert got["size_mb"] == 3  # the gzip's uncompressed size, as the driver stores it
    assert got["template"]["SL_SHA256"] == appliance.manifest.sha256
    assert got["template"]["SL_SIGNER"].startswith("CN=alice,")
    assert image["actions"] == ["allocate image ttylinux-9.7 in datastore default (1)"]
    assert image["diff"]["before"] == {}

    (verify, image), _ = run_tasks(tmp_path, verify_then_register(appliance, oned))
    assert verify.get("changed") is False and image.get("changed") is False, image
    assert image["api_calls"] == 2  # the image pool and nothing else
    assert len(oned.images()) == 1


def test_untrusted_appliance_is_never_registered(tmp_path, appliance, oned):
    oned.allow_dir(str(appliance.appliances))
    results, _ = run_tasks(tmp_path, verify_then_register(appliance, oned, signer="other_ca"))
    assert results[0].get("failed") is True and results[0]["reason"] == "trust"
    assert len(results) == 1  # the play stopped: registration never ran
    assert oned.images() == []
    assert os.listdir(appliance.appliances) == []


def test_check_mode_registers_nothing(tmp_path, appliance, oned):
    path = appliance.appliances / "x.img"
    path.write_bytes(b"x" * 10)
    oned.allow_dir(str(appliance.appliances))
    (res,), _ = run_tasks(tmp_path, [image_task(oned, name="x", datastore="1", path=str(path))], check=True)
    assert res.get("changed") is True and res["image"]["id"] is None, res
    assert oned.images() == []


def test_copy_refused_by_the_datastore_fails_with_oneds_message(tmp_path, appliance, oned):
    path = appliance.appliances / "x.img"
    path.write_bytes(b"x" * 10)  # not in SAFE_DIRS: RESTRICTED_DIRS "/" refuses it
    (res,), _ = run_tasks(tmp_path, [image_task(oned, name="x", datastore="default", path=str(path))])
    assert res.get("failed") is True
    assert "Not allowed to copy images from /" in res["msg"], res["msg"]
    assert "ERROR" in res["msg"]


def test_registered_image_is_not_registered_again_and_absent_deletes(tmp_path, appliance, oned):
    oned.allow_dir(str(appliance.appliances))
    first = appliance.appliances / "a.img"
    first.write_bytes(b"a" * 10)
    (res,), _ = run_tasks(tmp_path, [image_task(oned, name="a", datastore="default", path=str(first))])
    assert res.get("changed") is True and res["image"]["state"] == "READY", res
    (res,), out = run_tasks(tmp_path, [image_task(oned, name="a", datastore="default", path="/var/tmp/other.img")])
    assert res.get("changed") is False
    assert "not registered again" in out
    (res,), _ = run_tasks(tmp_path, [image_task(oned, name="a", state="absent")])
    assert res.get("changed") is True
    assert oned.images() == []
    (res,), _ = run_tasks(tmp_path, [image_task(oned, name="a", state="absent")])
    assert res.get("changed") is False


def test_system_datastore_is_refused(tmp_path, appliance, oned):
    (res,), _ = run_tasks(tmp_path, [image_task(oned, name="x", datastore="system", path="/var/tmp/x")])
    assert res.get("failed") is True and "image datastore" in res["msg"]
    assert oned.images() == []


def test_test_oned_image_document_shape(oned, appliance):
    oned.allow_dir(str(appliance.appliances))
    path = appliance.appliances / "b.img"
    path.write_bytes(b"b" * 10)
    image_id = oned.call("one.image.allocate", 'NAME="b"\nPATH="%s"\nDESCRIPTION="d"' % path, 1)
    import xml.etree.ElementTree as ET

    doc = ET.fromstring(oned.call("one.image.info", image_id))
    tags = [child.tag for child in doc]
    assert tags[:7] == ["ID", "UID", "GID", "UNAME", "GNAME", "NAME", "PERMISSIONS"]
    for tag in ("TYPE", "PERSISTENT", "SOURCE", "PATH", "SIZE", "STATE", "DATASTORE_ID", "DATASTORE",
                "VMS", "TEMPLATE", "SNAPSHOTS"):
        assert tag in tags, tag
    assert doc.find("STATE").text == "4"  # LOCKED while the driver copies
    assert doc.find("TEMPLATE/DESCRIPTION").text == "d"
    assert doc.find("TEMPLATE/PATH") is None and doc.find("TEMPLATE/NAME") is None
    dup = getattr(oned.rpc, "one.image.allocate")("oneadmin:" + PASSWORD, 'NAME="b"\nPATH="/var/tmp/b"', 1)
    assert dup[0] is False and dup[1] == "[one.image.allocate] NAME is already taken by IMAGE %d." % image_id

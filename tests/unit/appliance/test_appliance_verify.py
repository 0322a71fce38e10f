"""library/appliance_verify.py through ansible-playbook, against a local repository server."""

from __future__ import annotations

import os
import subprocess

import pytest

from appliance_testlib import REPO, RepoServer, module_spec, pki, publish_tree, run_tasks, sm

MANIFEST = "images/base/ttylinux/ttylinux-9.7.img.manifest.xml"
IMAGE = "images/base/ttylinux/ttylinux-9.7.img.gz"


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    manifest, image, manifest_file = publish_tree(root, os.urandom(200_000), pki()["alice"])
    with RepoServer(root) as server:
        server.manifest = manifest
        server.image = image
        server.manifest_file = manifest_file
        yield server


@pytest.fixture
def dest_dir(tmp_path):
    path = tmp_path / "dest"
    path.mkdir()
    return path


def verify_task(repo, dest, signers=("ca",), **extra):
    args = {"manifest_url": repo.url + MANIFEST, "dest": str(dest),
            "trusted_signers": [pki()[name].cert_pem.decode() for name in signers]}
    args.update(extra)
    return {"name": "verify", "appliance_verify": args}


def test_verified_image_is_placed_then_not_fetched_again(tmp_path, repo, dest_dir):
    dest = dest_dir / "ttylinux.img.gz"
    (first,), _ = run_tasks(tmp_path, [verify_task(repo, dest)], diff=True)
    assert first.get("changed") is True, first
    assert dest.read_bytes() == repo.image.read_bytes()
    assert oct(dest.stat().st_mode & 0o777) == "0o644"
    assert first["manifest"]["sha256"] == repo.manifest.sha256
    assert first["signer"]["trusted_by"].startswith("issued by CN=Test Signers CA")
    assert first["image_url"] == repo.url + IMAGE
    assert first["diff"]["before"]["sha256"] is None
    assert sorted(os.listdir(dest_dir)) == ["ttylinux.img.gz"]

    repo.requests.clear()
    (second,), _ = run_tasks(tmp_path, [verify_task(repo, dest)])
    assert second.get("changed") is False, second
    assert repo.requests == ["/" + MANIFEST]  # the manifest is checked again, the image not refetched


def test_check_mode_verifies_the_manifest_and_writes_nothing(tmp_path, repo, dest_dir):
    dest = dest_dir / "ttylinux.img.gz"
    (res,), _ = run_tasks(tmp_path, [verify_task(repo, dest)], check=True)
    assert res.get("changed") is True and not res.get("failed"), res
    assert os.listdir(dest_dir) == []
    assert repo.requests == ["/" + MANIFEST]


def _refused(tmp_path, repo, dest_dir, reason, match, **kwargs):
    dest = dest_dir / "ttylinux.img.gz"
    (res,), _ = run_tasks(tmp_path, [verify_task(repo, dest, **kwargs)])
    assert res.get("failed") is True, res
    assert res["reason"] == reason, res
    assert match in res["msg"], res["msg"]
    assert os.listdir(dest_dir) == [], "a refused appliance left files behind"
    return res


def test_flipped_image_byte_is_refused_and_leaves_nothing(tmp_path, repo, dest_dir):
    data = bytearray(repo.image.read_bytes())
    data[12345] ^= 0x80
    repo.image.write_bytes(bytes(data))
    _refused(tmp_path, repo, dest_dir, "content", "SHA-256")


def test_larger_image_is_refused_while_downloading(tmp_path, repo, dest_dir):
    repo.image.write_bytes(repo.image.read_bytes() + b"x" * 5_000_000)
    _refused(tmp_path, repo, dest_dir, "content", "larger than")


def test_edited_manifest_is_refused(tmp_path, repo, dest_dir):
    text = repo.manifest_file.read_text().replace("<osversion>9.7</osversion>", "<osversion>9.8</osversion>")
    repo.manifest_file.write_text(text)
    _refused(tmp_path, repo, dest_dir, "signature", "changed after signing")
    assert repo.requests == ["/" + MANIFEST]  # the image is never fetched for a bad manifest


def test_untrusted_signer_is_refused(tmp_path, repo, dest_dir):
    publish_tree(repo.root, repo.image.read_bytes(), pki()["mallory"])
    res = _refused(tmp_path, repo, dest_dir, "trust", "not one of the site's trusted signers")
    assert "mallory" in res["msg"]


def test_expired_signer_is_refused(tmp_path, repo, dest_dir):
    publish_tree(repo.root, repo.image.read_bytes(), pki()["expired"])
    res = _refused(tmp_path, repo, dest_dir, "trust", "expired on")
    assert "CN=expired" in res["msg"]


def test_signature_outside_the_profile_is_refused(tmp_path, repo, dest_dir):
    text = repo.manifest_file.read_text().replace('<ds:Reference URI="">', '<ds:Reference URI="#x">')
    repo.manifest_file.write_text(text)
    _refused(tmp_path, repo, dest_dir, "signature", 'URI=""')


def test_unsigned_manifest_is_refused(tmp_path, repo, dest_dir):
    unsigned = sm.parse(repo.manifest_file.read_bytes())
    unsigned.signature = None
    repo.manifest_file.write_bytes(sm.serialize(unsigned))
    _refused(tmp_path, repo, dest_dir, "signature", "not signed")


def test_missing_manifest_is_a_download_refusal(tmp_path, repo, dest_dir):
    repo.manifest_file.unlink()
    _refused(tmp_path, repo, dest_dir, "download", "HTTP 404")


def test_refused_appliance_never_touches_an_existing_dest(tmp_path, repo, dest_dir):
    dest = dest_dir / "ttylinux.img.gz"
    dest.write_bytes(b"the previous image")
    publish_tree(repo.root, repo.image.read_bytes(), pki()["mallory"])
    (res,), _ = run_tasks(tmp_path, [verify_task(repo, dest)])
    assert res.get("failed") is True
    assert dest.read_bytes() == b"the previous image"
    assert os.listdir(dest_dir) == ["ttylinux.img.gz"]


def test_pinned_signer_and_image_url(tmp_path, repo, dest_dir):
    publish_tree(repo.root, repo.image.read_bytes(), pki()["pinned"])
    dest = dest_dir / "ttylinux.img.gz"
    (res,), _ = run_tasks(tmp_path, [verify_task(repo, dest, signers=("pinned",),
                                                 image_url=repo.url + IMAGE, mode="0600")])
    assert res.get("changed") is True, res
    assert res["signer"]["trusted_by"] == "pinned"
    assert oct(dest.stat().st_mode & 0o777) == "0o600"


def test_proxy_is_used_when_given(tmp_path, repo, dest_dir):
    # The repository server itself stands in for the proxy: a proxied request
    # carries the absolute URL in its request line.
    dest = dest_dir / "ttylinux.img.gz"
    proxied = "http://repo.invalid/"
    args = verify_task(repo, dest)
    args["appliance_verify"]["manifest_url"] = proxied + MANIFEST
    args["appliance_verify"]["proxy"] = repo.url
    (res,), _ = run_tasks(tmp_path, [args])
    assert res.get("failed") is True  # http.server does not proxy, it answers 404 for the absolute URL
    assert repo.requests == [proxied + MANIFEST]
    assert os.listdir(dest_dir) == []


def test_documentation_matches_the_argument_spec():
    import yaml

    mod, kwargs = module_spec("appliance_verify")
    spec = kwargs["argument_spec"]
    options = yaml.safe_load(mod.DOCUMENTATION)["options"]
    assert set(options) == set(spec)
    for name, arg in spec.items():
        for key, fallback in (("type", "str"), ("required", False), ("default", None), ("elements", None),
                              ("choices", None)):
            assert options[name].get(key, fallback) == arg.get(key, fallback), (name, key)
    assert kwargs["supports_check_mode"] is True
    yaml.safe_load(mod.EXAMPLES)
    yaml.safe_load(mod.RETURN)


def test_ansible_doc_renders_the_module():
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "ansible-doc"), "-M", "library", "appliance_verify"],
                          cwd=str(REPO), capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
    assert proc.returncode == 0, proc.stderr
    assert "trusted_signers" in proc.stdout

"""appliance_verify downloads through the site image cache named in the squid role's client file."""

from __future__ import annotations

import os

import pytest

from appliance_testlib import RepoServer, pki, publish_tree, run_tasks

MANIFEST = "images/base/ttylinux/ttylinux-9.7.img.manifest.xml"
PROXIED = "http://repo.invalid/"  # only a proxy can answer for this name


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    publish_tree(root, os.urandom(50_000), pki()["alice"])
    with RepoServer(root) as server:
        yield server


def task(dest, manifest_url, **extra):
    args = {"manifest_url": manifest_url, "dest": str(dest),
            "trusted_signers": [pki()["ca"].cert_pem.decode()]}
    args.update(extra)
    return {"name": "verify", "appliance_verify": args}


def cache_file(tmp_path, url):
    # What roles/squid/templates/image-cache.env.j2 writes.
    path = tmp_path / "stratuslab-image-cache"
    path.write_text("# managed\nSTRATUSLAB_IMAGE_CACHE=%s\nhttp_proxy=%s\nno_proxy=localhost\n" % (url, url))
    return str(path)


def test_the_site_cache_file_is_the_proxy_when_none_is_given(tmp_path, repo):
    # The repository server stands in for the cache: a proxied request
    # carries the absolute URL in its request line.
    (res,), _ = run_tasks(tmp_path, [task(tmp_path / "x.img.gz", PROXIED + MANIFEST,
                                          proxy_file=cache_file(tmp_path, repo.url))])
    assert res.get("failed") is True  # http.server does not proxy: 404 for the absolute URL
    assert repo.requests == [PROXIED + MANIFEST]


def test_an_empty_proxy_downloads_directly_despite_the_file(tmp_path, repo):
    (res,), _ = run_tasks(tmp_path, [task(tmp_path / "x.img.gz", repo.url + MANIFEST, proxy="",
                                          proxy_file=cache_file(tmp_path, "http://cache.invalid:3128"))])
    assert res.get("changed") is True, res
    assert res["proxy"] == ""
    assert repo.requests == ["/" + MANIFEST, "/" + MANIFEST.replace(".manifest.xml", ".gz")]


def test_no_file_means_no_proxy(tmp_path, repo):
    (res,), _ = run_tasks(tmp_path, [task(tmp_path / "x.img.gz", repo.url + MANIFEST,
                                          proxy_file=str(tmp_path / "absent"))])
    assert res.get("changed") is True, res
    assert res["proxy"] == ""

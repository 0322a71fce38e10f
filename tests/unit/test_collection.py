"""The collection (galaxy.yml: stratuslab.cloud), built and installed, works outside the checkout.

Issue 23, part 1. What `make collection` runs (tools/collection/build)
builds the artifact; `ansible-galaxy collection install --offline` installs
it into an empty directory (its dependencies come from the `ansible`
package of the venv, as in the checkout); then, from a temporary directory
outside the checkout, with an ansible.cfg of nothing, ANSIBLE_COLLECTIONS_PATH
naming only that directory and none of the checkout's ANSIBLE_* settings
(roles_path, library, module_utils, filter_plugins, doc fragments), this
runs:

* ansible-doc on the collection's modules (the doc fragment by its FQCN);
* the preflight playbook by FQCN, `ansible-playbook stratuslab.cloud.preflight`,
  against the demo site file on three local hosts in every group (every
  role's preflight, their filters by FQCN), once good and once with a bad
  LDAP base DN that a role's own filter must refuse;
* the site playbook by FQCN, listed (its imports and static roles resolve);
* the frontend role's cluster step (the role calls its module by short
  name), a module by FQCN, against the test oned (not shipped in the
  collection: the package products/test_oned from this checkout), and appliance_verify (its module_utils
  imported as a package member);
* ansible-builder: `create` on execution-environment.yml (the context names
  the tarball, the pinned collections and the Python and system
  dependencies) and `introspect` on the installed collection (what it
  declares for execution environments).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "products" / "test_oned" / "tests"))
from oned_support import oned_argv, oned_env  # noqa: E402  (the test oned's command line)
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
FQ = "%s.%s" % (GALAXY["namespace"], GALAXY["name"])
MODULES = sorted(p.stem for p in (ROOT / "library").glob("*.py"))
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").is_file())
DEMO_SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"
ACCOUNTING_VERSION = re.search(r'^__version__ = "([^"]+)"', (
    ROOT / "products" / "accounting" / "src" / "stratuslab_accounting" / "__init__.py").read_text(encoding="utf-8"),
    re.M).group(1)
# The demo site's networks moved onto the loopback interface, as in
# test_preflight_playbook.py: the preflight checks addresses against them.
LOOP = {"name": "loop", "bridge": "brloop", "interface": "lo", "cidr": "127.0.0.0/8",
        "range": {"first": "127.0.1.1", "last": "127.0.1.99"}}


def _load_build_tool():
    loader = importlib.machinery.SourceFileLoader("collection_build", str(ROOT / "tools" / "collection" / "build"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _run(argv, cwd, env, timeout=600):
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _out(proc):
    return "rc=%s\n--- stdout\n%s\n--- stderr\n%s" % (proc.returncode, proc.stdout[-4000:], proc.stderr[-3000:])


@pytest.fixture(scope="module")
def built():
    """The artifact, as `make collection` builds it (build/collection/)."""
    proc = _run([sys.executable, ROOT / "tools" / "collection" / "build"], ROOT, dict(os.environ))
    assert proc.returncode == 0, _out(proc)
    tarball = Path(proc.stdout.strip().splitlines()[-1])
    assert tarball.name == "%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
    assert tarball.is_file() and tarball.parent == ROOT / "build" / "collection"
    return tarball


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """The artifact installed in an empty directory, and an environment outside the checkout."""
    base = tmp_path_factory.mktemp("collection")
    path, work = base / "collections", base / "work"
    path.mkdir()
    work.mkdir()
    (work / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(PATH=str(BIN) + os.pathsep + env.get("PATH", ""), ANSIBLE_CONFIG=str(work / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(path), ANSIBLE_HOME=str(base / "home"),
               ANSIBLE_LOCAL_TEMP=str(base / "tmp"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    proc = _run([BIN / "ansible-galaxy", "collection", "install", "--offline", built, "-p", path], work, env)
    assert proc.returncode == 0, _out(proc)
    assert "%s:%s was installed successfully" % (FQ, GALAXY["version"]) in proc.stdout, _out(proc)
    root = path / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    assert (root / "MANIFEST.json").is_file()
    return SimpleNamespace(path=path, root=root, work=work, env=env)


def _inventory(work, name, **site_vars):
    """The demo site file on three local hosts (connection local: preflight only reads);
    fe is also the LDAP server, the repository, the cache, the accounting and the monitoring host."""
    site = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    site.update(site_networks=[LOOP], ansible_connection="local", ansible_python_interpreter=sys.executable)
    # The demo's package repository key is in its containers' mount: a stand-in
    # here (the preflight reads the key where the hosts will read it).
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n", encoding="utf-8")
    site.update(site_one_repo_key=str(work / "one-repo-key.asc"))
    site.update(site_vars)
    fe_groups = {group: {"hosts": {"fe": {}}} for group in ("ldap", "repository", "cache", "accounting", "monitoring")}
    inventory = {"all": {"vars": site, "children": dict(fe_groups, **{
        "frontend": {"hosts": {"fe": {"site_address": "127.0.0.1"}}},
        "nodes": {"hosts": {
            "node1": {"site_address": "127.0.0.2", "site_network_addresses": {"loop": "127.0.0.2"}},
            "node2": {"site_address": "127.0.0.3", "site_network_addresses": {"loop": "127.0.0.3"}},
        }},
    })}}
    (work / name).write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return work / name


def _json_run(installed, argv):
    proc = _run([BIN / "ansible-playbook"] + argv, installed.work,
                dict(installed.env, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"))
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("no JSON report: " + _out(proc))
    return proc, report


def _results(report):
    """(play name, task name, host, result) of every task result."""
    return [(play["play"]["name"], task["task"]["name"], host, result)
            for play in report["plays"] for task in play["tasks"] for host, result in task["hosts"].items()]


def _pins():
    """requirements.yml's collection versions."""
    data = yaml.safe_load((ROOT / "requirements.yml").read_text(encoding="utf-8"))
    return {c["name"]: str(c["version"]) for c in data["collections"]}


def _bundled_version(name):
    """The version of a collection the venv's `ansible` package holds."""
    for entry in sys.path:
        manifest = Path(entry or ".") / "ansible_collections" / name.replace(".", "/") / "MANIFEST.json"
        if manifest.is_file():
            return json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]
    pytest.fail("%s is neither in requirements.yml nor installed" % name)


# --- metadata ---------------------------------------------------------------

def test_dependencies_are_what_the_roles_call_at_the_pinned_versions():
    # Modules as task keys (`  community.general.ldap_attrs:`), filters after a pipe.
    module = re.compile(r"^[ \t-]*([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+:[ \t]*$", re.M)
    piped = re.compile(r"\|[ \t]*([a-z0-9_]+)\.([a-z0-9_]+)\.[a-z0-9_]+\b")
    used = set()
    for top in ("roles", "playbooks"):
        for path in list((ROOT / top).rglob("*.yml")) + list((ROOT / top).rglob("*.j2")):
            text = path.read_text(encoding="utf-8")
            used.update("%s.%s" % match for match in module.findall(text) + piped.findall(text))
    used -= {"ansible.builtin", FQ}
    assert used, "no module called by FQCN found in roles/"
    deps = GALAXY["dependencies"]
    assert used <= set(deps), "roles call collections galaxy.yml does not depend on: %s" % sorted(used - set(deps))
    pins = _pins()
    for name, spec in deps.items():
        # The version the tests run: requirements.yml's pin, else the `ansible` package's.
        tested = pins.get(name) or _bundled_version(name)
        assert tested in SpecifierSet(spec), "%s %s is outside galaxy.yml's %s" % (name, tested, spec)


def test_requires_ansible_admits_the_venvs_ansible_core():
    from ansible.release import __version__

    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text(encoding="utf-8"))
    assert __version__ in SpecifierSet(runtime["requires_ansible"])


def test_the_build_rewrites_filters_and_refuses_a_use_it_does_not_know(tmp_path):
    build = _load_build_tool()
    names = {"sl_duplicates", "sl_ip_to_mac"}
    good = tmp_path / "good.yml"
    good.write_text("# sl_duplicates in a comment stays\n"
                    "a: \"{{ x | sl_duplicates }}\"\nb: \"{{ y | map('sl_ip_to_mac', p) | list }}\"\n"
                    "__sl_duplicates_seen: 1\n", encoding="utf-8")
    assert build.rewrite_filters(good, names, "ns.coll.") == 2
    text = good.read_text(encoding="utf-8")
    assert "x | ns.coll.sl_duplicates }}" in text and "map('ns.coll.sl_ip_to_mac', p)" in text
    assert text.startswith("# sl_duplicates in a comment stays")
    bad = tmp_path / "bad.yml"
    bad.write_text("c: \"{{ sl_duplicates(x) }}\"\n", encoding="utf-8")
    with pytest.raises(build.BuildError, match="bad.yml:1"):
        build.rewrite_filters(bad, names, "ns.coll.")


def test_the_artifact_has_the_collections_layout(built):
    with tarfile.open(built) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (
        GALAXY["namespace"], GALAXY["name"], GALAXY["version"])
    assert manifest["dependencies"] == GALAXY["dependencies"]
    expected = (["plugins/modules/%s.py" % m for m in MODULES]
                + ["roles/%s/tasks/main.yml" % r for r in ROLES]
                + ["playbooks/site.yml", "meta/runtime.yml", "meta/execution-environment.yml",
                   "plugins/doc_fragments/stratuslab_one.py", "plugins/module_utils/stratuslab_one/transport.py",
                   "plugins/filter/stratuslab_net.py", "plugins/filter/bridge_plan.py",
                   "inventories/example/hosts.yml",
                   # The accounting service's wheel, built from products/accounting (not shipped itself).
                   "roles/accounting/files/stratuslab_accounting-%s-py3-none-any.whl" % ACCOUNTING_VERSION]
                + ["playbooks/%s" % p.name for p in (ROOT / "playbooks").glob("*.yml")])
    assert not [n for n in expected if n not in names], sorted(n for n in expected if n not in names)
    # The test oned is a test product (products/test_oned), not shipped.
    unexpected = [n for n in names if n.split("/")[0] in ("library", "module_utils", "filter_plugins", "molecule",
                                                          "tests", "bench", ".venv", "products", "tools")
                  or "/filter_plugins" in n or n.endswith(".pyc")]
    assert not unexpected, sorted(unexpected)


# --- the installed collection, outside the checkout ---------------------------

def test_nothing_of_the_checkout_is_configured(installed):
    proc = _run([BIN / "ansible-config", "dump", "--only-changed"], installed.work, installed.env)
    assert proc.returncode == 0, _out(proc)
    assert str(ROOT) not in proc.stdout, proc.stdout
    assert str(installed.path) in proc.stdout, proc.stdout


def test_ansible_doc_finds_every_module_with_its_doc_fragment(installed):
    proc = _run([BIN / "ansible-doc", "-l", FQ], installed.work, installed.env)
    assert proc.returncode == 0, _out(proc)
    listed = sorted(line.split()[0] for line in proc.stdout.splitlines() if line.startswith(FQ + "."))
    assert listed == ["%s.%s" % (FQ, m) for m in MODULES]

    proc = _run([BIN / "ansible-doc", FQ + ".opennebula_hosts"], installed.work, installed.env)
    assert proc.returncode == 0, _out(proc)
    assert str(installed.root / "plugins" / "modules" / "opennebula_hosts.py") in proc.stdout
    # api_url comes from the doc fragment (extends_documentation_fragment), wait_timeout is the module's own.
    assert "- api_url" in proc.stdout and "- wait_timeout" in proc.stdout, proc.stdout[:3000]


def test_preflight_by_fqcn_passes_a_good_site(installed):
    inventory = _inventory(installed.work, "good.yml")
    proc, report = _json_run(installed, ["-i", inventory, FQ + ".preflight"])
    results = _results(report)
    failed = [(play, task, host, r.get("msg")) for play, task, host, r in results if r.get("failed")]
    assert proc.returncode == 0 and not failed, failed or _out(proc)
    ran = {(play, host) for play, _, host, r in results if not r.get("skipped")}
    for role in ROLES:
        if role in ("validate", "backup"):
            # not part of the site's preflight: validate checks a deployed
            # site, and backup.yml and restore.yml run the backup role's
            # preflight themselves before they change anything
            continue
        hosts = {host for play, host in ran if play.startswith("Preflight of the %s role" % role)}
        assert hosts, "no host ran the %s role's preflight: %s" % (role, sorted(ran))
    assert report["stats"].keys() == {"fe", "node1", "node2"}


def test_preflight_by_fqcn_refuses_a_bad_base_dn_with_the_roles_filter(installed):
    # ldap_dn_is_valid is the ldap role's own filter (roles/ldap/filter_plugins
    # in the checkout, plugins/filter in the collection).
    inventory = _inventory(installed.work, "bad.yml", site_ldap_base_dn="dc=example,,dc=org")
    proc, report = _json_run(installed, ["-i", inventory, FQ + ".preflight"])
    assert proc.returncode != 0, _out(proc)
    messages = [str(r.get("msg")) for _, _, host, r in _results(report) if r.get("failed") and host == "fe"]
    assert any("site_ldap_base_dn (ldap_base_dn=dc=example,,dc=org) is not a valid LDAP DN" in m
               for m in messages), messages


def test_site_playbook_by_fqcn_resolves_its_imports_and_roles(installed):
    inventory = _inventory(installed.work, "list.yml")
    proc = _run([BIN / "ansible-playbook", "-i", inventory, "--list-tasks", FQ + ".site"], installed.work,
                installed.env)
    assert proc.returncode == 0, _out(proc)
    for play in ("Preflight of the base role", "Register every node of group nodes and wait until monitored",
                 "Share the datastores from the front-end"):
        assert play in proc.stdout, proc.stdout[-3000:]
    # image_share.yml lists the role statically: its tasks are listed under the collection's role.
    assert "image_share : " in proc.stdout, proc.stdout[-3000:]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def test_oned(installed, tmp_path):
    """The test oned (python3 -m stratuslab_test_oned from this checkout's
    products/test_oned/src; the collection does not ship it), on a free port."""
    port = _free_port()
    log = tmp_path / "oned.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(oned_argv("--listen", "127.0.0.1:%d" % port, "--state", tmp_path / "oned.sqlite",
                                          python=sys.executable),
                                env=oned_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "test oned did not listen: " + log.read_text()
                time.sleep(0.1)
        yield "http://127.0.0.1:%d/RPC2" % port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_role_and_modules_run_from_the_collection(installed, test_oned, tmp_path):
    auth = tmp_path / "one_auth"
    auth.write_text("oneadmin:opennebula\n", encoding="utf-8")
    play = [{
        "name": "Run the collection's modules", "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [
            {"name": "The frontend role's cluster step",
             "ansible.builtin.include_role": {"name": FQ + ".frontend", "tasks_from": "cluster.yml"},
             "vars": {"frontend_one_cluster": "collection-test", "__frontend_api_usable": True,
                      "__frontend_api_url": test_oned, "__frontend_auth_file": str(auth)}},
            {"name": "The cluster again by FQCN", FQ + ".opennebula_cluster": {
                "name": "collection-test", "state": "present", "api_url": test_oned,
                "api_username": "oneadmin", "api_password": "opennebula"}},
            {"name": "appliance_verify from an unreachable repository", FQ + ".appliance_verify": {
                "manifest_url": "http://127.0.0.1:%d/a-1.img.manifest.xml" % _free_port(),
                "dest": str(tmp_path / "a.img"), "trusted_signers": [], "proxy": ""},
             "ignore_errors": True},
        ]}]
    (installed.work / "modules.yml").write_text(yaml.safe_dump(play, sort_keys=False), encoding="utf-8")
    proc, report = _json_run(installed, ["-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable,
                                         "modules.yml"])
    assert proc.returncode == 0, _out(proc)
    results = {task: result for _, task, _, result in _results(report)}
    # The role's task, named after the collection's role, ran its module (short name) from the collection.
    created = results[FQ + ".frontend : cluster | Create the site cluster"]
    assert created.get("changed") is True and not created.get("failed"), created
    again = results["The cluster again by FQCN"]
    assert again.get("changed") is False and again["cluster"]["name"] == "collection-test", again
    refused = results["appliance_verify from an unreachable repository"]
    # Failed the module's own way (it ran, with its module_utils), not with an import error.
    assert refused.get("failed") and refused.get("reason") == "download", refused


# --- execution environment ----------------------------------------------------

def test_execution_environment_context_names_the_collection_and_its_dependencies(built, tmp_path):
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text(encoding="utf-8"))
    context = tmp_path / "context"
    proc = _run([BIN / "ansible-builder", "create", "-f", ROOT / "execution-environment.yml", "-c", context],
                ROOT, dict(os.environ))
    assert proc.returncode == 0, _out(proc)
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    assert 'EE_BASE_IMAGE="%s"' % ee["images"]["base_image"]["name"] in containerfile
    assert "ansible-core==2.19" in containerfile and "ansible-galaxy collection install" in containerfile
    # The tarball make collection built, under the name galaxy.yml's version gives it.
    shipped = context / "_build" / "collections" / built.name
    assert shipped.is_file() and shipped.read_bytes() == built.read_bytes()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    entries = {c["name"]: c for c in galaxy["collections"]}
    assert entries.get("collections/" + built.name, {}).get("type") == "file", entries
    pins = _pins()
    for name in GALAXY["dependencies"]:
        tested = pins.get(name) or _bundled_version(name)
        assert str(entries.get(name, {}).get("version")) == tested, (name, entries.get(name))
    python = (context / "_build" / "requirements.txt").read_text(encoding="utf-8")
    assert "netaddr" in python
    system = (context / "_build" / "bindep.txt").read_text(encoding="utf-8")
    assert "openssh-clients [platform:rpm]" in system


def test_the_installed_collection_declares_its_python_dependencies(installed):
    proc = _run([BIN / "ansible-builder", "introspect", "--sanitize", installed.path], installed.work, installed.env)
    assert proc.returncode == 0, _out(proc)
    data = yaml.safe_load(proc.stdout.split("---", 1)[1])
    assert any(line.startswith("netaddr") and "from collection " + FQ in line for line in data["python"]), data

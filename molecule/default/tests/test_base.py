"""What a site administrator observes on any host after the base role."""

import pytest
import stratuslab_testinfra

testinfra_hosts = stratuslab_testinfra.hosts("all")

SITE_UID = 9869  # inventories/demo: site_oneadmin_uid and site_oneadmin_gid
MEMBERS = ["base-one", "base-node1"]


def test_oneadmin_has_the_site_ids(host):
    user = host.user("oneadmin")
    assert user.exists
    assert user.uid == SITE_UID
    assert user.gid == SITE_UID
    assert user.home == "/var/lib/one"
    assert user.shell == "/bin/bash"


def test_oneadmin_home_belongs_to_oneadmin(host):
    home = host.file("/var/lib/one")
    assert home.is_directory
    assert home.user == "oneadmin"
    assert home.group == "oneadmin"
    assert home.mode == 0o750


@pytest.mark.parametrize("package", ["openssh-server", "rsync", "curl", "systemd-timesyncd"])
def test_site_packages_installed(host, package):
    assert host.package(package).is_installed


@pytest.mark.parametrize("member", MEMBERS)
def test_every_member_resolves_by_short_and_full_name(host, member):
    short = host.run("getent hosts %s", member)
    full = host.run("getent hosts %s.demo.stratuslab.test", member)
    assert short.rc == 0, short.stderr
    assert full.rc == 0, full.stderr
    assert short.stdout.split()[0] == full.stdout.split()[0]


def test_members_reach_each_other_by_name(host):
    for member in MEMBERS:
        ping = host.run("ping -c1 -W2 %s.demo.stratuslab.test", member)
        assert ping.rc == 0, ping.stdout + ping.stderr


def test_localhost_still_resolves(host):
    assert host.run("getent hosts localhost").stdout.split()[0] in ("127.0.0.1", "::1")


def test_time_daemon_is_not_run_in_containers(host):
    # Containers keep the machine's clock: base_time_sync=auto leaves the
    # daemon off there, but its configuration is in place for real hosts.
    assert not host.service("systemd-timesyncd").is_running
    conf = host.file("/etc/systemd/timesyncd.conf.d/stratuslab.conf")
    assert conf.contains("^NTP=127.0.0.1$")


def test_no_unit_failed(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == ""


MODULE_CACHE = "/var/cache/stratuslab/ansible-module-code"


def test_module_cache_is_root_only_and_loaded_by_the_hosts_python(host):
    cache = host.file(MODULE_CACHE)
    assert cache.is_directory
    assert (cache.user, cache.group, cache.mode) == ("root", "root", 0o700)
    pth = host.file("/usr/local/lib/python3.11/dist-packages/stratuslab_module_cache.pth")
    assert (pth.user, pth.mode) == ("root", 0o644)
    finder = host.run("python3 -c 'import sys; print(type(sys.meta_path[0]).__name__)'")
    assert finder.rc == 0 and finder.stderr == "", finder.stderr
    assert finder.stdout.strip() == "_CodeCacheFinder"
    # A user other than root: the finder stays out, Python works as ever.
    other = host.run("runuser -u nobody -- python3 -c 'import sys; print(type(sys.meta_path[0]).__name__)'")
    assert other.rc == 0 and other.stderr == "", other.stderr
    assert other.stdout.strip() != "_CodeCacheFinder"


def test_module_cache_holds_the_code_the_converge_sent(host):
    # The key of ansible.module_utils.basic as the controller sent it: every
    # module run of the converge imported it through the cache.
    import hashlib
    import pathlib

    import ansible.module_utils.basic

    source = pathlib.Path(ansible.module_utils.basic.__file__).read_text(encoding="utf-8")
    tag = host.check_output(
        "python3 -c 'import importlib.util, sys; print((importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize])).hex())'")
    key = hashlib.sha256(bytes.fromhex(tag) + source.encode("utf-8")).hexdigest()
    entry = host.file("%s/%s" % (MODULE_CACHE, key))
    assert entry.is_file
    assert (entry.user, entry.mode) == ("root", 0o600)


def test_rerunning_a_module_of_the_converge_adds_no_cache_entry(host):
    # getent ran in the converge (the role's checks), so its module and all it
    # imports are cached: running it again adds no entry. (A module the
    # converge never ran, e.g. ping, adds the one entry of its own file.)
    import os
    import subprocess

    before = host.check_output("ls %s | sort", MODULE_CACHE).split()
    run = subprocess.run(
        ["ansible", host.backend.get_hostname(), "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-m", "ansible.builtin.getent",
         "-a", "database=passwd key=root"],
        cwd=os.environ.get("MOLECULE_PROJECT_DIRECTORY"), capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    after = host.check_output("ls %s | sort", MODULE_CACHE).split()
    assert len(before) > 40
    assert after == before

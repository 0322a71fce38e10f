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


@pytest.mark.parametrize("path", [
    "/usr/local/lib/python3.11/dist-packages/stratuslab_module_cache.pth",
    "/usr/local/lib/python3.11/dist-packages/stratuslab_module_cache.py",
    "/etc/tmpfiles.d/stratuslab-module-cache.conf",
    "/var/cache/stratuslab/ansible-module-code",
])
def test_no_module_code_cache_of_earlier_versions_is_left(host, path):
    # roles/base/tasks/cleanup.yml removes what earlier versions installed.
    assert not host.file(path).exists

"""Shared testinfra plugin for every molecule scenario of the project.

Loaded by pytest as ``-p stratuslab_testinfra`` (see .config/molecule/config.yml).
When a test fails, it prints what a site administrator would look at first:
the failed systemd units of the host under test and the tail of their journal.
"""

import contextlib

import pytest


def _failed_units(host):
    cmd = host.run("systemctl --failed --no-legend --plain")
    return [line.split()[0] for line in cmd.stdout.splitlines() if line.strip()]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    host = item.funcargs.get("host") if hasattr(item, "funcargs") else None
    if host is None:
        return
    sections = []
    try:
        units = _failed_units(host)
        sections.append("failed units: " + (", ".join(units) or "none"))
        for unit in units:
            journal = host.run("journalctl -u %s -n 40 --no-pager" % unit)
            sections.append("--- journal of %s ---\n%s" % (unit, journal.stdout))
    except Exception as exc:  # diagnostics must never hide the real failure
        sections.append("could not read the journal: %s" % exc)
    report.sections.append(("systemd on the host under test", "\n".join(sections)))


def say(request, line):
    """Print ``line`` (a measured figure) in the verify output, past pytest's
    output capture, which would otherwise swallow a reporter's line written
    while a test runs."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(line)


def hosts(pattern="all"):
    """testinfra host specs for the molecule hosts matching ``pattern``.

    A host that is a podman container of this machine (every scenario's but
    the VM ones) is checked through testinfra's own podman backend (``podman
    exec``, from outside the site's network and SSH: a check still answers
    when a test has cut the host off). Other hosts (the VM scenarios')
    go through testinfra's Ansible backend.

    Use in a test module: ``testinfra_hosts = stratuslab_testinfra.hosts("nodes")``.
    """
    import os
    import subprocess

    from testinfra.utils.ansible_runner import AnsibleRunner

    specs = []
    for name in AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(pattern):
        container = subprocess.run(["podman", "container", "exists", name], capture_output=True, check=False)
        specs.append(("podman://%s" if container.returncode == 0 else "ansible://%s") % name)
    if not specs:
        raise RuntimeError("no molecule host matches %r" % pattern)
    return specs


def names(pattern="all"):
    """Inventory names of the molecule hosts matching ``pattern``, sorted.

    Lets one test file serve several scenarios whose hosts have other names
    (e.g. the site scenario's site-one and the own_pki scenario's pki-one).
    """
    import os

    from testinfra.utils.ansible_runner import AnsibleRunner

    return sorted(AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(pattern))


def hostvars(name):
    """The inventory variables of one molecule host (site_address and the like)."""
    import os

    from testinfra.utils.ansible_runner import AnsibleRunner

    return AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_variables(name)


def http_code(host, method, url, user=None, data=None, extra=""):
    """HTTP status code of one request made with curl on ``host`` (which
    checks TLS against that host's system store, as its services would)."""
    cmd = "curl -sS -o /dev/null -w '%%{http_code}' -X %s %s" % (method, extra)
    if user:
        cmd += " -u '%s:%s'" % user
    if data is not None:
        cmd += " --data-binary '%s' -H 'Content-Type: application/octet-stream'" % data
    out = host.run(cmd + " '%s'" % url)
    assert out.rc == 0, out.stderr
    return int(out.stdout.strip())


def oned_caller(address, port=2633):
    """call(auth, method, *params): one XML-RPC call to the test oned (or an
    oned) at ``address``, asserting success and returning its value."""
    import xmlrpc.client

    def call(auth, method, *params):
        proxy = xmlrpc.client.ServerProxy("http://%s:%d/RPC2" % (address, port), use_builtin_types=True)
        answer = getattr(proxy, method)("%s:%s" % auth, *params)
        assert answer[0] is True, (method, params, answer)
        return answer[1]
    return call


def cluster_id(call, auth, name):
    """The id of the cluster ``name``, from one.clusterpool.info through ``call``."""
    import xml.etree.ElementTree as ET

    for cluster in ET.fromstring(call(auth, "one.clusterpool.info")).findall("CLUSTER"):
        if cluster.findtext("NAME") == name:
            return int(cluster.findtext("ID"))
    raise AssertionError("no cluster %s in oned" % name)

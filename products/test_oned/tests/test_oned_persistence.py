"""State survives a restart of the test oned on the same --state file, and
the process behaves as a service (pidfile, clean SIGTERM)."""

import os
import re
import signal

import pytest

from oned_support import wait_for


def snapshot(one):
    return [one.one.hostpool.info(), one.one.clusterpool.info(),
            one.one.datastorepool.info(), one.one.vnpool.info(-2, -1, -1),
            one.one.user.info(0)]


def test_restart_keeps_objects_and_id_sequences(oned_factory, tmp_path):
    state = tmp_path / "persist.sqlite"
    slow_monitor = ["--monitor-interval", "60"]
    first = oned_factory(slow_monitor, state=state)
    one = first.proxy()
    cid = one.one.cluster.allocate("c1")[1]
    hosts = [one.one.host.allocate("h%d" % i, "kvm", "kvm", cid)[1]
             for i in range(3)]
    one.one.host.update(hosts[0], 'LABELS="x"', 1)
    vid = one.one.vn.allocate('NAME="n"\nVN_MAD="bridge"', cid)[1]
    wait_for(lambda: "<STATE><![CDATA[1]]>" in one.one.vn.info(vid)[1])
    one.one.vn.add_ar(vid, 'AR=[TYPE="ETHER",SIZE="3"]')
    did = one.one.datastore.allocate('NAME="d"\nTYPE="SYSTEM_DS"\n'
                                     'TM_MAD="ssh"', cid)[1]
    assert one.one.host.delete(hosts[2])[0]            # id 2 is burnt
    one.one.vn.delete(vid)                            # pending driver answer
    token = one.one.user.login("oneadmin", "", 600)[1]
    before = snapshot(one)
    assert first.stop() == 0

    second = oned_factory(slow_monitor, state=state)
    again = second.proxy()
    after = snapshot(again)
    # the vnet delete finished while the server was down
    assert after[0] == before[0] and after[2] == before[2]
    assert after[4] == before[4]
    assert after[1][1] == before[1][1].replace(
        "<VNETS><ID>%d</ID></VNETS>" % vid, "<VNETS></VNETS>")
    assert "<VNET>" in before[3][1] and after[3][1] == "<VNET_POOL></VNET_POOL>"
    # same random MAC, same token, ids continue after the burnt ones
    assert second.proxy("oneadmin:" + token).one.system.version()[0]
    assert again.one.host.allocate("h9", "kvm", "kvm", -1)[1] == 3
    assert again.one.cluster.allocate("c2")[1] == cid + 1
    assert again.one.vn.allocate('NAME="n2"\nVN_MAD="bridge"', -1)[1] == vid + 1
    assert again.one.datastore.allocate('NAME="d2"\nTYPE="SYSTEM_DS"\n'
                                        'TM_MAD="ssh"', -1)[1] == did + 1
    assert again.one.cluster.allocate("c1")[1].endswith(
        "NAME is already taken by CLUSTER %d." % cid)


def test_pidfile_and_sigterm(oned_factory, tmp_path):
    pidfile = tmp_path / "test-oned.pid"
    server = oned_factory(["--pidfile", str(pidfile)])
    assert int(pidfile.read_text()) == server.proc.pid
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert not pidfile.exists()
    assert "test oned stopped" in server.log()


def test_one_log_line_per_call_without_secrets(oned_factory, tmp_path):
    auth = tmp_path / "auth"
    auth.write_text("oneadmin:hunter2-secret\n")
    server = oned_factory(["--auth", str(auth)])
    one = server.proxy("oneadmin:hunter2-secret")
    token = one.one.user.login("oneadmin", "", 60)[1]
    server.proxy("oneadmin:" + token).one.host.info(7)
    one.one.user.login("oneadmin", token, 0)
    server.proxy("oneadmin:wrong-guess").one.system.version()
    server.stop()
    log = server.log()
    calls = [l for l in log.splitlines() if re.search(r" one\.\S+\(", l)]
    assert len(calls) == 4
    for secret in ("hunter2-secret", token, "wrong-guess"):
        assert secret not in log
    assert "one.host.info(oneadmin:***, 7) -> error 1024" in log


def test_systemd_unit_runs_the_documented_command_line(tmp_path):
    """products/test_oned/test-oned.service starts the package from its
    unpacked wheel with the relied-on command line (the site's values from
    /etc/one/oned.conf, state under /var/lib/one), which the test oned's
    own option parser accepts."""
    import shlex
    from oned_support import REPO
    from stratuslab_test_oned import cli
    path = REPO / "products" / "test_oned" / "test-oned.service"
    if not path.exists():
        pytest.skip("%s is not in this checkout" % path)
    unit = path.read_text()
    exec_start = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert len(exec_start) == 1
    argv = shlex.split(exec_start[0][len("ExecStart="):])
    assert argv[:3] == ["/usr/bin/python3", "-m", "stratuslab_test_oned"]
    assert argv[3:7] == ["--oned-conf", "/etc/one/oned.conf", "--state",
                         "/var/lib/one/test-oned.sqlite"]
    assert "Environment=PYTHONPATH=/usr/local/lib/stratuslab/test-oned" in unit.splitlines()
    pid = argv[argv.index("--pidfile") + 1]
    assert "PIDFile=%s" % pid in unit
    args = argv[3:]
    oned_conf = tmp_path / "oned.conf"
    oned_conf.write_text('LISTEN_ADDRESS = "0.0.0.0"\nPORT = 2633\n')
    args[args.index("--oned-conf") + 1] = str(oned_conf)
    args[args.index("--auth") + 1] = str(tmp_path / "one_auth")
    opts = cli.parse_args(args)
    assert (opts.host, opts.port) == ("0.0.0.0", 2633)


def test_unread_stderr_pipe_does_not_stall_answers(tmp_path):
    """Callers that pipe stderr and never read it (a 64 KiB pipe fills after
    a few hundred calls) must still get answers: logging is asynchronous."""
    import subprocess
    import xmlrpc.client
    from oned_support import free_port, oned_argv, oned_env
    port = free_port()
    proc = subprocess.Popen(
        oned_argv("--listen", "127.0.0.1:%d" % port, "--state", tmp_path / "s.sqlite"),
        env=oned_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert b"answering as oned" in proc.stderr.readline()
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1:%d/RPC2" % port)
        for i in range(1500):      # ~100 bytes of log each: > 64 KiB
            assert proxy.one.host.info("oneadmin:opennebula", i)[0] is False
        assert proxy.one.system.version("oneadmin:opennebula")[0] is True
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        finally:
            proc.stderr.close()

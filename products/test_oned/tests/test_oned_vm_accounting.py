"""VMs, accounting and the test clock of the test oned, beyond the replay of
samples-accounting-7.4.0: hours of scripted VM time, the lifecycle the
capture does not show (stop, undeploy, suspend, hold), permissions, leases,
and persistence of VMs and of the clock across a restart."""

import re
import time
import xml.etree.ElementTree as ET

import pytest

from oned_support import SESSION, wait_for

T = 1800000000          # 2027-01-15 08:00 UTC, the scenario's start
HOUR = 3600


def ok(answer):
    assert answer[0], answer
    return answer[1]


def setup_site(one):
    """A dummy host, a dummy system datastore, a network, two groups and
    two users, as in the capture (oneadmin does all of it)."""
    host = ok(one.one.host.allocate("dummy-host", "dummy", "dummy", -1))
    wait_for(lambda: "<STATE>2</STATE>" in one.one.host.info(host)[1])
    ok(one.one.datastore.allocate('NAME="sys"\nTYPE="SYSTEM_DS"\n'
                                  'TM_MAD="dummy"', -1))
    vn = ok(one.one.vn.allocate('NAME="net"\nVN_MAD="bridge"\nBRIDGE="br0"\n'
                                'AR=[TYPE="IP4",IP="10.10.0.10",SIZE="3"]',
                                -1))
    wait_for(lambda: "<STATE><![CDATA[1]]>" in one.one.vn.info(vn)[1])
    ga, gb = ok(one.one.group.allocate("acct-a")), \
        ok(one.one.group.allocate("acct-b"))
    alice = ok(one.one.user.allocate("alice", "alicepw", "core", [ga]))
    bob = ok(one.one.user.allocate("bob", "bobpw", "core", [gb]))
    return {"vn": vn, "ga": ga, "gb": gb, "alice": alice, "bob": bob}


@pytest.fixture
def site(oned_factory):
    server = oned_factory(["--monitor-interval", "0.05"])
    admin = server.proxy()
    ids = setup_site(admin)
    return server, admin, ids


def records(answer_xml):
    root = ET.fromstring(answer_xml)
    out = []
    for h in root.findall("HISTORY"):
        rec = {k: int(h.findtext(k)) for k in (
            "OID", "SEQ", "STIME", "ETIME", "RSTIME", "RETIME", "ACTION",
            "UID", "GID")}
        rec["OWNER"] = int(h.findtext("VM/UID"))
        rec["GROUP"] = int(h.findtext("VM/GID"))
        rec["CPU"] = float(h.findtext("VM/TEMPLATE/CPU"))
        rec["MEMORY"] = int(h.findtext("VM/TEMPLATE/MEMORY"))
        out.append(rec)
    return out


def usage(recs, a, b, now, running_only=False):
    """The README's recipe: clip each record to [a, b), charge the record's
    own capacity, bill HISTORY/VM/UID."""
    per_user = {}
    for r in recs:
        start, end = (r["RSTIME"], r["RETIME"]) if running_only else \
            (r["STIME"], r["ETIME"])
        end = end or now
        seconds = max(0, min(end, b) - max(start, a))
        cpu, mem = per_user.get(r["OWNER"], (0.0, 0.0))
        per_user[r["OWNER"]] = (cpu + r["CPU"] * seconds / HOUR,
                                mem + r["MEMORY"] / 1024 * seconds / HOUR)
    return per_user


def flat(per_user):
    return {(uid, i): v for uid, pair in per_user.items()
            for i, v in enumerate(pair)}


# ------------------------------------------------------------------ clock
def test_clock_set_advance_and_reset(oned):
    one = oned.proxy()
    assert one.testoned.clock.set(T) == [True, T, 0]
    assert one.testoned.clock.advance(90 * 60) == [True, T + 5400, 0]
    time.sleep(1.1)                     # a set clock stands still
    assert one.testoned.clock.advance(0) == [True, T + 5400, 0]
    assert one.testoned.clock.advance(-1)[0] is False
    # 0 gives the real time back
    real = ok(one.testoned.clock.set(0))
    assert abs(real - time.time()) < 5


def test_clock_is_oneadmin_only_and_not_an_oned_method(oned):
    one = oned.proxy()
    ok(one.one.user.allocate("eve", "evepw", "core"))
    eve = oned.proxy("eve:evepw")
    assert eve.testoned.clock.set(T) == [
        False, "[testoned.clock.set] User [2] : Action reserved for group 0 "
        "only.", 512, -1, -1]
    assert eve.testoned.clock.advance(10)[2] == 512
    # the methods live outside oned's one.* namespace
    body = oned.raw(b"<?xml version='1.0'?><methodCall><methodName>"
                    b"one.clock.set</methodName><params><param><value>"
                    b"<string>oneadmin:opennebula</string></value></param>"
                    b"</params></methodCall>")[2]
    assert b"Method 'one.clock.set' not defined" in body


def test_clock_accepts_i8_after_2038(oned):
    later = 2 ** 31 + 100
    body = oned.raw(("<?xml version='1.0'?><methodCall><methodName>"
                     "testoned.clock.set</methodName><params><param><value>"
                     "<string>%s</string></value></param><param><value><i8>"
                     "%d</i8></value></param></params></methodCall>" % (
                         SESSION, later)).encode())[2]
    assert b"<i8>%d</i8>" % later in body


# ---------------------------------------------------- scripted accounting
def test_scripted_scenario_gives_the_expected_cpu_and_memory_hours(site):
    """Two users in two groups; start, poweroff, resume, terminate over
    hours of test-clock time.  The expected CPU-hours and memory GB-hours
    are computed from the script, the measured ones from the records."""
    server, admin, ids = site
    alice, bob = server.proxy("alice:alicepw"), server.proxy("bob:bobpw")
    admin.testoned.clock.set(T)
    a1 = ok(alice.one.vm.allocate('NAME="a1"\nCPU="1"\nVCPU="2"\n'
                                  'MEMORY="2048"\nNIC=[NETWORK_ID="%d"]' %
                                  ids["vn"], True))
    a2 = ok(alice.one.vm.allocate('NAME="a2"\nCPU="0.5"\nMEMORY="512"', True))
    b1 = ok(bob.one.vm.allocate('NAME="b1"\nCPU="2"\nMEMORY="4096"\n'
                                'DISK=[TYPE="fs",SIZE="10240"]', True))
    for vm in (a1, a2, b1):
        ok(admin.one.vm.deploy(vm, 0, False, -1))
    # the script: (hour, who, action, vm)
    script = [(2, alice, "poweroff", a1), (3, admin, "poweroff-hard", b1),
              (5, alice, "resume", a1), (6, bob, "resume", b1),
              (8, alice, "terminate-hard", a2), (9, bob, "terminate", b1)]
    for hour, who, action, vm in script:
        admin.testoned.clock.set(T + hour * HOUR)
        ok(who.one.vm.action(action, vm))
    now = ok(admin.testoned.clock.set(T + 10 * HOUR))

    # independently: a1 holds its host 0..10 (poweroff does not release
    # it) and runs 0-2 and 5-10; a2 0-8; b1 holds 0..9, runs 0-3 and 6-9
    expect = {ids["alice"]: (1 * 10 + 0.5 * 8, 2 * 10 + 0.5 * 8),
              ids["bob"]: (2 * 9, 4 * 9)}
    expect_running = {ids["alice"]: (1 * 7 + 0.5 * 8, 2 * 7 + 0.5 * 8),
                      ids["bob"]: (2 * 6, 4 * 6)}

    recs = records(ok(admin.one.vmpool.accounting(-2, -1, -1)))
    assert [(r["OID"], r["SEQ"]) for r in recs] == [
        (a1, 0), (a1, 1), (a2, 0), (b1, 0), (b1, 1)]
    assert flat(usage(recs, T, T + 10 * HOUR, now)) == \
        pytest.approx(flat(expect))
    assert flat(usage(recs, T, T + 10 * HOUR, now, running_only=True)) == \
        pytest.approx(flat(expect_running))
    # who is billed: the owner; who acted: the record's UID
    first_b1 = [r for r in recs if r["OID"] == b1][0]
    assert (first_b1["OWNER"], first_b1["GROUP"]) == (ids["bob"], ids["gb"])
    assert (first_b1["UID"], first_b1["ACTION"]) == (0, 20)
    # a window [T+4h, T+7h): records overlapping it, never clipped
    window = records(ok(admin.one.vmpool.accounting(-2, T + 4 * HOUR,
                                                    T + 7 * HOUR)))
    assert [(r["OID"], r["SEQ"]) for r in window] == [
        (a1, 0), (a1, 1), (a2, 0), (b1, 0), (b1, 1)]
    assert window[0]["STIME"] == T and window[0]["ETIME"] == T + 5 * HOUR
    assert usage(window, T + 4 * HOUR, T + 7 * HOUR, now)[ids["bob"]] == \
        pytest.approx((2 * 3, 4 * 3))
    # each user sees only their own records
    mine = records(ok(alice.one.vmpool.accounting(-2, -1, -1)))
    assert {r["OWNER"] for r in mine} == {ids["alice"]}
    assert ok(alice.one.vmpool.accounting(ids["bob"], -1, -1)) == \
        "<HISTORY_RECORDS></HISTORY_RECORDS>"


def test_open_record_changes_until_it_closes(site):
    server, admin, ids = site
    admin.testoned.clock.set(T)
    vm = ok(admin.one.vm.allocate('CPU="1"\nMEMORY="1024"', True))
    ok(admin.one.vm.deploy(vm, 0, False, -1))
    admin.testoned.clock.advance(HOUR)
    ok(admin.one.vm.action("poweroff", vm))
    rec = records(ok(admin.one.vmpool.accounting(-2, -1, -1)))[0]
    assert (rec["ETIME"], rec["RETIME"], rec["ACTION"]) == (0, T + HOUR, 19)
    # an open record matches any window start, even a future one
    assert records(ok(admin.one.vmpool.accounting(-2, T + 99 * HOUR, -1)))
    admin.testoned.clock.advance(HOUR)
    ok(admin.one.vm.action("terminate", vm))
    rec = records(ok(admin.one.vmpool.accounting(-2, -1, -1)))[0]
    assert (rec["ETIME"], rec["RETIME"]) == (T + 2 * HOUR, T + HOUR)
    assert not records(ok(admin.one.vmpool.accounting(-2, T + 3 * HOUR, -1)))
    info = ok(admin.one.vm.info(vm))
    assert "<STATE>6</STATE>" in info and \
        "<ETIME>%d</ETIME>" % (T + 2 * HOUR) in info


# ------------------------------------------------------------ lifecycle
def test_stop_undeploy_suspend_hold_release(site):
    server, admin, ids = site
    admin.testoned.clock.set(T)
    vm = ok(admin.one.vm.allocate('CPU="1"\nMEMORY="64"', False))
    assert "<STATE>1</STATE>" in ok(admin.one.vm.info(vm))     # PENDING
    ok(admin.one.vm.action("hold", vm))
    assert "<STATE>2</STATE>" in ok(admin.one.vm.info(vm))
    ok(admin.one.vm.action("release", vm))
    ok(admin.one.vm.deploy(vm, 0, False, -1))
    for step, (action, state) in enumerate(
            [("suspend", 5), ("resume", 3), ("stop", 4), ("resume", 1)]):
        admin.testoned.clock.advance(60)
        ok(admin.one.vm.action(action, vm))
        assert "<STATE>%d</STATE>" % state in ok(admin.one.vm.info(vm)), \
            action
    # resume from STOPPED leaves it PENDING: there is no scheduler
    assert admin.one.vm.action("resume", vm)[1].endswith(
        "This action is not available for state PENDING")
    admin.testoned.clock.advance(60)
    ok(admin.one.vm.deploy(vm, 0, False, -1))
    admin.testoned.clock.advance(60)
    ok(admin.one.vm.action("undeploy-hard", vm))
    recs = records(ok(admin.one.vmpool.accounting(-2, -1, -1)))
    assert [(r["SEQ"], r["STIME"] - T, r["ETIME"] - T, r["RETIME"] - T,
             r["ACTION"]) for r in recs] == [
        (0, 0, 120, 60, 10),        # suspend at +60, closed by resume
        (1, 120, 180, 180, 9),      # stop closes the record at once
        (2, 300, 360, 360, 6)]      # deployed again, undeploy-hard
    info = ok(admin.one.vm.info(vm))
    assert "<STATE>9</STATE>" in info
    ok(admin.one.vm.action("terminate", vm))
    assert len(records(ok(admin.one.vmpool.accounting(-2, -1, -1)))) == 3


def test_terminate_releases_the_lease(site):
    server, admin, ids = site
    nic = 'CPU="1"\nMEMORY="64"\nNIC=[NETWORK_ID="%d"]' % ids["vn"]
    vms = [ok(admin.one.vm.allocate(nic, True)) for _ in range(3)]
    ips = [re.search(r"<IP><!\[CDATA\[([\d.]+)", ok(admin.one.vm.info(v)))
           .group(1) for v in vms]
    assert ips == ["10.10.0.10", "10.10.0.11", "10.10.0.12"]
    full = admin.one.vm.allocate(nic, True)
    assert full[:3] == [False, "[one.vm.allocate] Cannot get IP/MAC lease "
                        "from virtual network %d." % ids["vn"], 8192]
    ok(admin.one.vm.action("terminate", vms[1]))
    # a failed allocate gives back what its first NICs leased
    other = ok(admin.one.vn.allocate(
        'NAME="full"\nVN_MAD="bridge"\nAR=[TYPE="IP4",IP="10.9.0.1",SIZE="1"]',
        -1))
    wait_for(lambda: "<STATE><![CDATA[1]]>" in admin.one.vn.info(other)[1])
    ok(admin.one.vm.allocate('CPU="1"\nMEMORY="64"\nNIC=[NETWORK_ID="%d"]' %
                             other, True))
    assert admin.one.vm.allocate(nic + '\nNIC=[NETWORK_ID="%d"]' % other,
                                 True)[0] is False
    again = ok(admin.one.vm.allocate(nic, True))
    assert "<IP><![CDATA[10.10.0.11]]></IP>" in ok(admin.one.vm.info(again))


def test_permissions(site):
    server, admin, ids = site
    alice, bob = server.proxy("alice:alicepw"), server.proxy("bob:bobpw")
    vm = ok(bob.one.vm.allocate('CPU="1"\nMEMORY="64"', True))
    assert alice.one.vm.info(vm)[1] == \
        "[one.vm.info] User [%d] : Not authorized to perform USE VM [%d]." % (
            ids["alice"], vm)
    assert alice.one.vm.action("terminate", vm)[2] == 512
    assert bob.one.vm.deploy(vm, 0, False, -1)[1].endswith(
        "Not authorized to perform ADMIN VM [%d]." % vm)
    assert ok(alice.one.vmpool.info(-2, -1, -1, -2)) == "<VM_POOL></VM_POOL>"
    assert "<ID>%d</ID>" % vm in ok(bob.one.vmpool.info(-3, -1, -1, -1))
    assert alice.one.vmpool.accounting(-5, -1, -1)[1] == \
        "[one.vmpool.accounting] Incorrect filter_flag"
    assert bob.one.user.allocate("x", "y", "core")[2] == 512
    assert bob.one.vm.allocate('CPU="1"\nMEMORY="64"\nCPU_COST="3"')[1] == (
        "[one.vm.allocate] User [%d] : VM Template includes a restricted "
        "attribute CPU_COST." % ids["bob"])


def test_users_log_in_and_change_group(site):
    server, admin, ids = site
    assert server.proxy("alice:wrong").one.user.info(-1)[2] == 256
    info = ok(server.proxy("alice:alicepw").one.user.info(-1))
    assert "<GID>%d</GID>" % ids["ga"] in info
    ok(admin.one.user.chgrp(ids["alice"], ids["gb"]))
    info = ok(admin.one.user.info(ids["alice"]))
    assert "<GID>%d</GID><GROUPS><ID>%d</ID></GROUPS><GNAME>acct-b" % (
        ids["gb"], ids["gb"]) in info
    assert "<USERS><ID>%d</ID><ID>%d</ID></USERS>" % (
        ids["alice"], ids["bob"]) in ok(admin.one.group.info(ids["gb"]))
    # new VMs belong to the caller's primary group
    vm = ok(server.proxy("alice:alicepw").one.vm.allocate(
        'CPU="1"\nMEMORY="64"', True))
    assert "<GID>%d</GID><UNAME>alice</UNAME><GNAME>acct-b</GNAME>" % \
        ids["gb"] in ok(admin.one.vm.info(vm))


def test_vms_history_and_clock_survive_a_restart(oned_factory, tmp_path):
    state = tmp_path / "vm-persist.sqlite"
    first = oned_factory(["--monitor-interval", "0.05"], state=state)
    admin = first.proxy()
    setup_site(admin)
    admin.testoned.clock.set(T)
    vm = ok(admin.one.vm.allocate('CPU="1"\nMEMORY="64"', True))
    ok(admin.one.vm.deploy(vm, 0, False, -1))
    admin.testoned.clock.advance(HOUR)
    ok(admin.one.vm.action("poweroff", vm))
    before = (ok(admin.one.vm.info(vm)),
              ok(admin.one.vmpool.accounting(-2, -1, -1)))
    assert first.stop() == 0

    second = oned_factory(["--monitor-interval", "0.05"], state=state)
    again = second.proxy()
    assert (ok(again.one.vm.info(vm)),
            ok(again.one.vmpool.accounting(-2, -1, -1))) == before
    assert ok(again.testoned.clock.advance(0)) == T + HOUR
    ok(again.one.vm.action("resume", vm))
    assert [r["STIME"] for r in records(ok(again.one.vmpool.accounting(
        -2, -1, -1)))] == [T, T + HOUR]
    assert ok(again.one.vm.allocate('CPU="1"\nMEMORY="64"', True)) == vm + 1
    assert server_alice_can_log_in(second)


def server_alice_can_log_in(server):
    return server.proxy("alice:alicepw").one.user.info(-1)[0]


def test_showback_over_scripted_hours(site):
    server, admin, ids = site
    bob = server.proxy("bob:bobpw")
    admin.testoned.clock.set(T)                  # 2027-01-15 08:00 UTC
    tid = ok(admin.one.template.allocate(
        'NAME="priced"\nCPU="2"\nMEMORY="1024"\nDISK=[TYPE="fs",SIZE="100"]'
        '\nCPU_COST="0.5"\nMEMORY_COST="0.001"\nDISK_COST="0.01"'))
    ok(admin.one.template.chmod(tid, -1, -1, -1, -1, -1, -1, 1, -1, -1))
    vm = ok(bob.one.template.instantiate(tid, "", True, "", False))
    assert "<NAME>priced-%d</NAME>" % vm in ok(bob.one.vm.info(vm))
    ok(admin.one.vm.deploy(vm, 0, False, -1))
    admin.testoned.clock.advance(3 * HOUR)
    ok(bob.one.vm.action("poweroff", vm))
    admin.testoned.clock.advance(HOUR)
    assert bob.one.vmpool.calculateshowback(1, 2027, 1, 2027)[2] == 512
    assert ok(admin.one.vmpool.calculateshowback(1, 2027, 1, 2027)) == " "
    answer = ok(bob.one.vmpool.showback(-3, -1, -1, -1, -1))
    # 4 h held (3 h running): CPU 0.5*2*4, MEMORY 0.001*1024*4, DISK
    # 0.01*100*4
    assert ("<YEAR>2027</YEAR><MONTH>1</MONTH><CPU_COST>4</CPU_COST>"
            "<MEMORY_COST>4.1</MEMORY_COST><DISK_COST>4</DISK_COST>"
            "<TOTAL_COST>12.1</TOTAL_COST><HOURS>4</HOURS><RHOURS>3</RHOURS>"
            ) in answer
    assert ok(bob.one.vmpool.showback(-3, 2, 2027, 2, 2027)) == \
        "<SHOWBACK_RECORDS></SHOWBACK_RECORDS>"


def test_acl_rules_are_listed_as_oned(oned):
    one = oned.proxy()
    gid = ok(one.one.group.allocate("g"))
    rule = ok(one.one.acl.addrule("2%08x" % gid, "21400000000", "8",
                                  "400000000"))
    assert rule == 9        # 0-5 bootstrap, 6-8 the group's default rules
    acls = ok(one.one.acl.info())
    assert "<STRING>@%d VM+TEMPLATE/* CREATE *</STRING>" % gid in acls
    assert "<STRING>@%d HOST/* MANAGE #0</STRING>" % gid in acls
    assert ok(one.one.acl.delrule(rule)) == rule
    assert "VM+TEMPLATE/* CREATE" not in ok(one.one.acl.info())


def test_pyone_reads_vms_and_accounting(site):
    pyone = pytest.importorskip("pyone")
    server, admin, ids = site
    admin.testoned.clock.set(T)
    one = pyone.OneServer(server.url, session="alice:alicepw")
    vm = one.vm.allocate('NAME="p"\nCPU="1"\nMEMORY="256"\n'
                         'NIC=[NETWORK_ID="%d"]' % ids["vn"], True)
    ok(admin.one.vm.deploy(vm, 0, False, -1))
    admin.testoned.clock.advance(HOUR)
    one.vm.action("poweroff", vm)
    info = one.vm.info(vm)
    assert (info.ID, info.UNAME, info.STATE) == (vm, "alice", 8)
    hist = one.vmpool.accounting(-3, -1, -1).HISTORY
    assert [(h.OID, h.SEQ, h.STIME, h.RETIME, h.ETIME, h.ACTION)
            for h in hist] == [(vm, 0, T, T + HOUR, 0, 19)]
    assert hist[0].VM.UID == ids["alice"]
    assert [v.ID for v in one.vmpool.info(-2, -1, -1, -1).VM] == [vm]

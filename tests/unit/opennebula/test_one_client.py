"""Unit tests of the client layer of module_utils/stratuslab_one/: no oned needed.

The envelope and XML parsing are checked against the raw answers captured
from a real oned 7.4.0 (samples-7.4.0/index.json and *.payload.xml).
"""

from __future__ import annotations

import json
import socket
import ssl
import xmlrpc.client
from pathlib import Path

import pytest

from one_testlib import ONE as one, SAMPLES, FakeClock, OnedProcess, pool_answer

pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason="tests/fixtures/opennebula/samples-7.4.0 missing")


def load_index():
    if not SAMPLES.is_dir():
        return []
    return json.loads((SAMPLES / "index.json").read_text())


def payload(name):
    return (SAMPLES / ("%s.payload.xml" % name)).read_text()


class FakeSend:
    """Replays a list of answers: a value is returned, an exception raised."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, method, params):
        self.requests.append((method, params))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def make_client(*answers, **kwargs):
    sleeps = []
    send = FakeSend(*answers)
    client = one.OneClient(url="http://oned.invalid:2633/RPC2", username="oneadmin", password="pw",
                           send=send, sleep=sleeps.append, **kwargs)
    return client, send, sleeps


# --------------------------------------------------------------------------
# envelope and errors, from every captured exchange
# --------------------------------------------------------------------------

INDEX = load_index()


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_envelope_of_captured_answers(entry):
    if entry["fault"]:
        fault = xmlrpc.client.Fault(entry["fault"]["faultCode"], entry["fault"]["faultString"])
        client, _, _ = make_client(fault)
        with pytest.raises(one.OneFaultError) as info:
            client.call(entry["method"], *entry["params"][1:])
        assert info.value.code == entry["fault"]["faultCode"]
        assert entry["fault"]["faultString"] in info.value.message
        return
    result = entry["result"]
    client, send, sleeps = make_client(result, retries=0)
    if result[0]:
        assert client.call(entry["method"], *entry["params"][1:]) == result[1]
    else:
        with pytest.raises(one.OneError) as info:
            client.call(entry["method"], *entry["params"][1:])
        err = info.value
        assert err.message == result[1]
        assert err.code == result[2]
        assert err.method == entry["method"]
        expected_cls = one.ERROR_CLASSES.get(result[2], one.OneError)
        assert type(err) is expected_cls
        if len(result) > 3:
            assert err.resp_id == result[3]
    assert client.calls == 1
    assert send.requests[0][1][0] == "oneadmin:pw"


def test_error_classes_by_code():
    cases = {256: one.OneAuthenticationError, 512: one.OneAuthorizationError, 1024: one.OneNotFoundError,
             2048: one.OneActionError, 4096: one.OneApiError, 8192: one.OneInternalError,
             16384: one.OneAllocateError, 32768: one.OneLockedError, 65536: one.OneReplicationError}
    for code, cls in cases.items():
        err = one.error_from_response("one.x", [False, "[one.x] boom", code, 7, -1])
        assert isinstance(err, cls) and isinstance(err, one.OneError)
        assert err.code_name == one.ERROR_NAMES[code]
        assert err.to_dict()["resp_id"] == 7
    assert type(one.error_from_response("one.x", [False, "odd", 3])) is one.OneError


def test_no_exists_carries_object_id():
    client, _, _ = make_client([False, "[one.host.info] Error getting host [99999].", 1024, 99999, -1])
    with pytest.raises(one.OneNotFoundError) as info:
        client.host_info(99999)
    assert info.value.resp_id == 99999
    assert info.value.code_name == "NO_EXISTS"


# --------------------------------------------------------------------------
# retries and backoff
# --------------------------------------------------------------------------

def test_connection_refused_is_retried_with_exponential_backoff():
    client, send, sleeps = make_client(ConnectionRefusedError(), ConnectionRefusedError(),
                                       ConnectionRefusedError(), [True, "7.4.0", 0], backoff=0.5)
    assert client.version() == "7.4.0"
    assert sleeps == [0.5, 1.0, 2.0]
    assert client.calls == 4 and client.retried == 3
    assert client.calls_by_method["one.system.version"] == 4


def test_backoff_is_capped():
    client, _, sleeps = make_client(*([ConnectionRefusedError()] * 6 + [[True, 1, 0]]),
                                    retries=6, backoff=1, max_backoff=5)
    client.call("one.host.delete", 1)
    assert sleeps == [1, 2, 4, 5, 5, 5]


def test_retries_exhausted_raise_connection_error():
    client, _, sleeps = make_client(ConnectionRefusedError("refused"), retries=2)
    with pytest.raises(one.OneConnectionError) as info:
        client.hostpool()
    assert "one.hostpool.info" in info.value.message and "refused" in info.value.message
    assert client.calls == 3 and len(sleeps) == 2


def test_a_refusing_oned_is_waited_for_up_to_the_down_timeout():
    # oned restarting: refused for 40 s of backoff, then it answers
    clock = FakeClock(100.0)
    answers = [ConnectionRefusedError()] * 9 + [[True, "7.4.0", 0]]
    client = one.OneClient(url="http://oned.invalid:2633/RPC2", password="pw", send=FakeSend(*answers),
                           sleep=clock.sleep, clock=clock, retries=4, down_timeout=60)
    assert client.version() == "7.4.0"
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0, 8.0]
    assert client.calls == 10


def test_a_oned_that_stays_down_fails_at_the_bound_naming_oned():
    clock = FakeClock(100.0)
    client = one.OneClient(url="http://oned.invalid:2633/RPC2", password="pw",
                           send=FakeSend(*[ConnectionRefusedError("refused")] * 100),
                           sleep=clock.sleep, clock=clock, retries=4, down_timeout=30)
    with pytest.raises(one.OneConnectionError) as info:
        client.hostpool()
    assert sum(clock.sleeps) == 30  # the last wait is cut to the bound
    message = info.value.message
    assert "oned does not answer at http://oned.invalid:2633/RPC2" in message, message
    assert "over 30 s" in message and "systemctl status opennebula" in message, message


def test_the_down_timeout_is_not_for_other_errors():
    # a name that does not resolve is a mistake in api_url, not a restart: the quick retries only
    clock = FakeClock(100.0)
    client = one.OneClient(url="http://oned.invalid:2633/RPC2", password="pw",
                           send=FakeSend(*[socket.gaierror("no such name")] * 100),
                           sleep=clock.sleep, clock=clock, retries=2, down_timeout=60)
    with pytest.raises(one.OneConnectionError):
        client.hostpool()
    assert clock.sleeps == [0.5, 1.0]


def test_reset_during_write_is_not_resent():
    # the allocate may have been executed: resending could create a duplicate
    client, _, sleeps = make_client(ConnectionResetError("reset"), [True, 5, 0])
    with pytest.raises(one.OneConnectionError):
        client.host_allocate("n1", "kvm", "kvm")
    assert client.calls == 1 and sleeps == []


def test_reset_during_read_is_resent():
    client, _, sleeps = make_client(ConnectionResetError("reset"), [True, "<HOST_POOL></HOST_POOL>", 0])
    assert len(client.hostpool()) == 0
    assert client.calls == 2 and len(sleeps) == 1


def test_locked_answer_is_retried_then_succeeds():
    locked = [False, "[one.vn.update] The virtual network is locked.", 32768, -1, -1]
    client, _, sleeps = make_client(locked, locked, [True, 3, 0])
    assert client.vn_update(3, {"A": "b"}) == 3
    assert client.calls == 3 and len(sleeps) == 2


def test_locked_answer_exhausted():
    locked = [False, "[one.vn.update] locked", 32768, -1, -1]
    client, _, _ = make_client(locked, retries=1)
    with pytest.raises(one.OneLockedError) as info:
        client.vn_update(3, "A=b")
    assert info.value.code == one.LOCKED and client.calls == 2


def test_other_errors_and_faults_are_not_retried():
    client, _, sleeps = make_client([False, "[one.host.allocate] Error allocating a new host. NAME is "
                                            "already taken by HOST 0.", 16384, -1, -1])
    with pytest.raises(one.OneAllocateError):
        client.host_allocate("n", "kvm", "kvm")
    client2, _, sleeps2 = make_client(xmlrpc.client.Fault(-506, "Method 'x' not defined"))
    with pytest.raises(one.OneFaultError):
        client2.call("x")
    assert client.calls == client2.calls == 1 and sleeps == sleeps2 == []


def test_http_errors():
    client, _, sleeps = make_client(xmlrpc.client.ProtocolError("h/RPC2", 404, "Not Found", {}))
    with pytest.raises(one.OneConnectionError) as info:
        client.version()
    assert "404" in info.value.message and sleeps == []
    client, _, sleeps = make_client(xmlrpc.client.ProtocolError("h", 503, "Busy", {}), [True, "7.4.0", 0])
    assert client.version() == "7.4.0" and len(sleeps) == 1


def test_request_parameters_are_typed():
    client, send, _ = make_client([True, 0, 0])
    client.host_allocate("n1", "kvm", "kvm", 0)
    client.host_status(0, "disabled")
    client.vn_rm_ar(0, 2, force=True)
    client.vn_add_ar(0, {"TYPE": "IP4", "IP": "10.0.0.1", "SIZE": 2})
    assert send.requests[0] == ("one.host.allocate", ("oneadmin:pw", "n1", "kvm", "kvm", 0))
    assert send.requests[1][1][1:] == (0, 1)
    assert send.requests[2][1][1:] == (0, 2, True)
    assert send.requests[3][1][2] == 'AR=[TYPE="IP4",IP="10.0.0.1",SIZE="2"]'


# --------------------------------------------------------------------------
# endpoint, credentials, TLS
# --------------------------------------------------------------------------

def test_resolve_connection_from_params(tmp_path):
    assert one.resolve_connection("http://x:2633/RPC2", "u", "p", environ={}) == ("http://x:2633/RPC2", "u", "p")


def test_resolve_connection_from_environment(tmp_path):
    auth = tmp_path / "one_auth"
    auth.write_text("alice:pa:ss:word\n")
    env = {"ONE_XMLRPC": "https://front:2633/RPC2", "ONE_AUTH": str(auth)}
    assert one.resolve_connection(environ=env) == ("https://front:2633/RPC2", "alice", "pa:ss:word")
    # username given, password from the matching file
    assert one.resolve_connection(api_username="alice", environ=env)[2] == "pa:ss:word"
    with pytest.raises(one.OneConfigError):
        one.resolve_connection(api_username="bob", environ=env)


def test_resolve_connection_default_auth_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".one").mkdir()
    (tmp_path / ".one" / "one_auth").write_text("oneadmin:secret")
    assert one.resolve_connection(environ={}) == (one.DEFAULT_URL, "oneadmin", "secret")


def test_resolve_connection_errors(tmp_path):
    with pytest.raises(one.OneConfigError) as info:
        one.resolve_connection(environ={"ONE_AUTH": str(tmp_path / "missing")})
    assert "missing" in info.value.message
    bad = tmp_path / "bad"
    bad.write_text("nocolon")
    with pytest.raises(one.OneConfigError):
        one.resolve_connection(environ={"ONE_AUTH": str(bad)})


def test_tls_verification_option():
    strict = one.make_proxy("https://front:2633/RPC2", validate_certs=True)
    lax = one.make_proxy("https://front:2633/RPC2", validate_certs=False)
    assert strict._ServerProxy__transport.context.verify_mode == ssl.CERT_REQUIRED
    assert lax._ServerProxy__transport.context.verify_mode == ssl.CERT_NONE
    assert lax._ServerProxy__transport.context.check_hostname is False
    plain = one.make_proxy("http://front:2633/RPC2", timeout=7)
    assert plain._ServerProxy__transport._timeout == 7


def test_real_http_round_trip(tmp_path):
    """Over HTTP against products/test_oned: success, auth error, fault, timeout option, call counter."""
    oned = OnedProcess(tmp_path)
    try:
        client = one.OneClient(url=oned.url, username="oneadmin", password="opennebula", timeout=5)
        assert client.version() == "7.4.0"
        assert client.clusterpool().get(0).name == "default"
        bad = one.OneClient(url=oned.url, username="oneadmin", password="wrong")
        with pytest.raises(one.OneAuthenticationError) as info:
            bad.version()
        assert info.value.message == "[one.system.version] User couldn't be authenticated, aborting call."
        with pytest.raises(one.OneFaultError) as info:
            client.call("one.no.such.method")
        assert info.value.code == -506
        with pytest.raises(one.OneFaultError) as info:
            client.call("one.host.info", "notanint")
        assert info.value.code == -501
        assert client.calls == 4 and client.calls_by_method["one.system.version"] == 1
    finally:
        oned.stop()


# --------------------------------------------------------------------------
# XML parsing of the real payloads
# --------------------------------------------------------------------------

PAYLOADS = sorted(p.name for p in SAMPLES.glob("*.payload.xml")) if SAMPLES.is_dir() else []
ROOTS = {"HOST_POOL": one.Host, "CLUSTER_POOL": one.Cluster, "VNET_POOL": one.Vnet,
         "DATASTORE_POOL": one.Datastore, "HOST": one.Host, "CLUSTER": one.Cluster, "VNET": one.Vnet,
         "DATASTORE": one.Datastore, "USER_POOL": one.User, "USER": one.User}


@pytest.mark.parametrize("name", PAYLOADS)
def test_every_payload_parses(name):
    text = (SAMPLES / name).read_text()
    root = text[1:text.index(">")]
    if root not in ROOTS:
        pytest.skip("no typed object for <%s>" % root)
    if root.endswith("_POOL"):
        objects = one.parse_pool(ROOTS[root], text)
        assert [o.id for o in objects] == sorted(o.id for o in objects)
    else:
        obj = one.parse_object(ROOTS[root], text)
        assert isinstance(obj.id, int) and obj.name


def test_empty_pools():
    assert one.parse_pool(one.Host, payload("009_one_hostpool_info_initial")) == []
    assert one.parse_pool(one.Vnet, payload("012_one_vnpool_info_initial")) == []


def test_host_pool_descending_order_and_fields():
    hosts = one.parse_pool(one.Host, payload("033_one_hostpool_info_populated"))
    assert [h.id for h in hosts] == [0, 1]  # oned sent 1 then 0
    h0 = hosts[0]
    assert (h0.name, h0.state_name, h0.im_mad, h0.vm_mad) == ("host-201450", "ERROR", "kvm", "kvm")
    assert (h0.cluster_id, h0.cluster) == (100, "cl-201450")
    assert h0.template["LABELS"] == "a,b" and h0.template["RESERVED_CPU"] == ""
    assert "Error monitoring Host" in h0.error
    assert hosts[1].state == one.HOST_INIT and hosts[1].error == ""


def test_monitored_host_with_nested_template():
    hosts = one.Pool("host", one.parse_pool(one.Host, (SAMPLES / "extra_hostpool_dummy_monitored.xml").read_text()))
    node = hosts.get("dummy-node1")
    assert node.state == one.HOST_MONITORED and node.im_mad == "dummy"


def test_vnet_cdata_state_empty_elements_and_ars():
    vnet = one.parse_object(one.Vnet, payload("046_one_vn_info_after_add_ar"))
    assert vnet.state == one.VNET_READY and vnet.state_name == "READY"  # CDATA integer
    assert vnet.vlan_id == "" and vnet.phydev == ""  # <VLAN_ID/>, <PHYDEV/>
    assert vnet.bridge == "br0" and vnet.vn_mad == "bridge" and vnet.clusters == [0]
    assert [a.ar_id for a in vnet.ars] == [0, 1, 2, 3]
    ar1 = vnet.ars[1]
    assert (ar1.type, ar1.ip, ar1.size, ar1.ip_end, ar1.mac) == ("IP4", "10.0.0.100", 5, "10.0.0.104",
                                                                  "02:00:0a:00:00:64")
    assert vnet.ars[2].type == "ETHER" and vnet.ars[2].ip == ""
    assert vnet.template["GATEWAY"] == "10.0.0.1" and vnet.template["VLAN_ID"] == ""
    locked = one.parse_object(one.Vnet, payload("035_one_vn_info_just_allocated"))
    assert locked.state == one.VNET_LOCK_CREATE


def test_datastore_and_cluster_fields():
    pool = one.Pool("datastore", one.parse_pool(one.Datastore, payload("069_one_datastorepool_info_populated")))
    assert [d.id for d in pool] == [0, 1, 2, 100, 101]
    assert pool.get(0).type_name == "SYSTEM" and pool.get("files").type_name == "FILE"
    ds = pool.get("ds-201450")
    assert (ds.ds_mad, ds.tm_mad, ds.clusters) == ("fs", "ssh", [0, 100])
    assert ds.template["SAFE_DIRS"] == "/var/tmp"
    clusters = one.Pool("cluster", one.parse_pool(one.Cluster, payload("071_one_clusterpool_info_populated")))
    assert clusters.get(0).datastores == [0, 1, 2, 100] and clusters.get(0).hosts == []
    assert clusters.get("cl-201450").vnets == [0, 1]


def test_pool_lookup_by_id_and_name():
    pool = one.Pool("cluster", one.parse_pool(one.Cluster, payload("071_one_clusterpool_info_populated")))
    assert pool.get(0).name == "default"          # id 0 is an id, not "missing"
    assert pool.get("0").name == "default"
    assert pool.get("100").name == "cl-201450"
    assert pool.get("default").id == 0
    assert pool.get("nope") is None and pool.get(5) is None
    assert pool.named("0") is None and pool.named("default").id == 0  # names only
    with pytest.raises(one.OneNotFoundError):
        pool.require("nope")
    dup = one.Pool("vnet", [one.Vnet(id=1, name="x", state=1), one.Vnet(id=2, name="x", state=1)])
    with pytest.raises(one.OneError):
        dup.get("x")


def test_bad_xml_is_reported():
    with pytest.raises(one.OneError):
        one.parse_pool(one.Host, "<HOST_POOL><HOST>")
    with pytest.raises(one.OneError):
        one.parse_pool(one.Host, "<VNET_POOL></VNET_POOL>")


# --------------------------------------------------------------------------
# template syntax
# --------------------------------------------------------------------------

def test_render_template():
    text = one.render_template({"name": "pub", "vn_mad": "bridge", "skip": None, "secure": True,
                                "ar": [{"type": "IP4", "ip": "10.0.0.1", "size": 5}, {"type": "ETHER", "size": 2}]})
    assert text == ('NAME="pub"\nVN_MAD="bridge"\nSECURE="YES"\n'
                    'AR=[TYPE="IP4",IP="10.0.0.1",SIZE="5"]\nAR=[TYPE="ETHER",SIZE="2"]\n')
    assert one.render_template({}) == ""
    assert one.render_template({"P": 'C:\\dir "x"'}) == 'P="C:\\dir \\"x\\""\n'
    with pytest.raises(one.OneError):
        one.render_template({"P": "ends\\"})
    with pytest.raises(one.OneError):
        one.render_template({"bad key": "x"})


@pytest.mark.parametrize("value", ['plain', 'with "quotes"', 'back\\slash', 'back\\"quote', 'multi\nline',
                                   'comma, ] and [ = #hash', '', 'ünïcode'])
def test_template_round_trip(value):
    attrs = {"A": value, "V": {"X": value, "Y": "2"}, "L": ["1", value]}
    assert one.parse_template(one.render_template(attrs)) == attrs


def test_parse_template_forms():
    text = '# comment\nA = b\nB="c" # trailing\nC=[ X = "1" ,\n  Y=2 ]\nA="again"\n'
    assert one.parse_template(text) == {"A": ["b", "again"], "B": "c", "C": {"X": "1", "Y": "2"}}
    with pytest.raises(one.OneError):
        one.parse_template('A="unterminated')
    with pytest.raises(one.OneError):
        one.parse_template('A=[X="1"')


def test_parse_captured_vn_allocate_template():
    entry = next(e for e in INDEX if e["file"] == "034_one_vn_allocate_nocluster")
    attrs = one.parse_template(entry["params"][1])
    assert attrs["NAME"] == "vn-201450" and attrs["VN_MAD"] == "bridge"
    assert attrs["AR"]["TYPE"] == "IP4" and attrs["AR"]["SIZE"] == "10"


def test_attrs_differ():
    assert one.attrs_differ({"gateway": "10.0.0.1", "n": 5}, {"GATEWAY": "10.0.0.1", "N": "5", "X": "y"}) == []
    assert one.attrs_differ({"dns": "1.1.1.1"}, {"DNS": "8.8.8.8"}) == ["DNS"]


# --------------------------------------------------------------------------
# polling
# --------------------------------------------------------------------------

def host_pool_xml(states):
    return pool_answer("host", states, error_state=3, error="ssh failed")


@pytest.mark.parametrize("kind, wait, settling, settled, name, method", [
    ("host", "wait_hosts", 0, 2, "MONITORED", "one.hostpool.info"),
    ("vnet", "wait_vnets_ready", 2, 1, "READY", "one.vnpool.info"),
])
def test_batch_waits_read_the_pool_once_per_poll(kind, wait, settling, settled, name, method):
    ids = range(500)
    answers = [pool_answer(kind, {i: settling for i in ids}),
               pool_answer(kind, {i: settled if i % 2 else settling for i in ids}),
               pool_answer(kind, {i: settled for i in ids})]
    clock = FakeClock()
    client = one.OneClient(send=FakeSend(*answers), sleep=clock.sleep, clock=clock)
    done = getattr(client, wait)(ids, timeout=60, interval=2)
    assert len(done) == 500 and all(obj.state_name == name for obj in done.values())
    assert client.calls == 3 and client.calls_by_method == {method: 3}


def test_wait_hosts_waits_for_all_then_reports_error_hosts():
    clock = FakeClock()
    client = one.OneClient(send=FakeSend(host_pool_xml({0: 0, 1: 3}), host_pool_xml({0: 2, 1: 3})),
                           sleep=clock.sleep, clock=clock)
    with pytest.raises(one.OneActionError) as info:
        client.wait_hosts([0, 1], timeout=60, interval=1)
    assert "n1 (1): ssh failed" in info.value.message and client.calls == 2
    assert info.value.hosts[0].state_name == "MONITORED"  # host 0 was still waited for


def test_wait_hosts_timeout_lists_pending():
    clock = FakeClock()
    client = one.OneClient(send=FakeSend(host_pool_xml({0: 2, 1: 0})), sleep=clock.sleep, clock=clock)
    with pytest.raises(one.OneTimeoutError) as info:
        client.wait_hosts([0, 1], timeout=10, interval=2)
    assert info.value.pending["hosts"] == {1: "INIT"}
    assert info.value.hosts[0].state_name == "MONITORED"
    assert clock.now == pytest.approx(10)
    assert client.calls <= 12  # backoff from 0.05 s up to the 2 s interval, not a busy loop


def vnet_pool_xml(states):
    return pool_answer("vnet", states, error_state=5, error="driver failed")


def test_wait_vnets_ready_reports_failed_after_the_others_settle():
    clock = FakeClock()
    client = one.OneClient(send=FakeSend(vnet_pool_xml({0: 2, 1: 5}), vnet_pool_xml({0: 1, 1: 5})),
                           sleep=clock.sleep, clock=clock)
    with pytest.raises(one.OneActionError) as info:
        client.wait_vnets_ready([0, 1], timeout=60)
    assert "v1 (1) in state ERROR: driver failed" in info.value.message and client.calls == 2
    assert info.value.vnets[0].state_name == "READY"


def test_wait_vnets_gone_and_timeout():
    clock = FakeClock()
    client = one.OneClient(send=FakeSend(vnet_pool_xml({0: 3, 1: 3}), vnet_pool_xml({1: 3}), vnet_pool_xml({})),
                           sleep=clock.sleep, clock=clock)
    assert client.wait_vnets_gone([0, 1], timeout=60) is True and client.calls == 3
    client = one.OneClient(send=FakeSend(vnet_pool_xml({0: 2})), sleep=clock.sleep, clock=clock)
    with pytest.raises(one.OneTimeoutError) as info:
        client.wait_vnets_ready([0], timeout=5, interval=1)
    assert info.value.pending["vnets"] == {0: "LOCK_CREATE"} and info.value.vnets[0].state_name == "LOCK_CREATE"


def test_wait_vnet_ready_from_lock_create():
    answers = [[True, payload("035_one_vn_info_just_allocated"), 0], [True, payload("040_one_vn_info"), 0]]
    clock = FakeClock()
    client = one.OneClient(send=FakeSend(*answers), sleep=clock.sleep, clock=clock)
    vnet = client.wait_vnet_ready(0, timeout=30)
    assert vnet.state_name == "READY" and client.calls == 2


def test_wait_vnet_ready_timeout():
    clock = FakeClock()
    client = one.OneClient(send=FakeSend([True, payload("035_one_vn_info_just_allocated"), 0]),
                           sleep=clock.sleep, clock=clock)
    with pytest.raises(one.OneTimeoutError) as info:
        client.wait_vnet_ready(0, timeout=5, interval=1)
    assert "LOCK_CREATE" in info.value.message

"""Replay the XML-RPC calls captured from a real oned 7.4.0
(tests/fixtures/opennebula/samples-7.4.0/index.json) IN ORDER against a fresh test
oned and compare every answer with the recorded one.

Comparison is strict: the raw HTTP status and content type, the xmlrpc-c
wire framing (CRLF lines, <i4>/<i8>/<boolean> types, fault structs), the
envelope values, error codes and messages, and the XML payloads character
for character (element order, CDATA, empty elements).  Only values that
differ by nature between two runs are normalised: oneadmin's TOKEN_PASSWORD,
login tokens, the timestamp inside a host's monitoring ERROR and the random
MACs of ETHER address ranges (whose prefix and MAC_END arithmetic are
still checked).
"""

import json
import re
import time

import pytest

from oned_support import SAMPLES, check_transport, decode, replay_samples, \
    xml_payloads

# How the capture testbed differed from the test oned's defaults:
# - oned lived in /tmp/one (BASE_PATH /tmp/one/var//datastores/<id>);
# - its KVM hosts were fake names, so every kvm probe failed (ERROR);
# - the host monitoring interval was long: host2 was never probed.
# The vnet driver's delay is long enough that the calls the recorder made
# while the real driver was still working (a vnet just deleted is still
# there) fall inside it on a loaded machine too.
VNET_DRIVER_DELAY = 2.0
TESTBED_OPTIONS = ["--datastore-location", "/tmp/one/var//datastores",
                   "--unreachable-hosts", "*", "--monitor-interval", "60",
                   "--vnet-driver-delay", str(VNET_DRIVER_DELAY)]

# Points where the recorder waited for a driver before the next call.
WAIT_BEFORE = {
    40: "vnm driver answered: vnets LOCK_CREATE -> READY",
    81: "vnm driver finished the deletes: vnets gone",
}


def load_index():
    with open(SAMPLES / "index.json") as fh:
        return json.load(fh)


INDEX = load_index() if (SAMPLES / "index.json").exists() else []


_TIME = r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \d{4}"


def _check_and_mask_ether(payload):
    def fix(match):
        block = match.group(0)
        if "<TYPE><![CDATA[ETHER]]></TYPE>" not in block:
            return block
        mac = re.search(r"<MAC><!\[CDATA\[([0-9a-f:]{17})\]\]></MAC>", block)
        assert mac, block
        assert mac.group(1).startswith("02:00:"), block
        size = int(re.search(r"<SIZE><!\[CDATA\[(\d+)\]\]>", block).group(1))
        end = re.search(r"<MAC_END><!\[CDATA\[([0-9a-f:]{17})\]\]>", block)
        if end:
            expect = int(mac.group(1).replace(":", ""), 16) + size - 1
            assert int(end.group(1).replace(":", ""), 16) == expect, block
            block = block.replace(end.group(1), "<ETHER-MAC-END>")
        return block.replace(mac.group(1), "<ETHER-MAC>")
    return re.sub(r"<AR>.*?</AR>", fix, payload)


def normalise_value(method, value):
    if not isinstance(value, str):
        return value
    if method == "one.user.login" and re.fullmatch(r"[0-9a-f]{64}", value):
        return "<LOGIN-TOKEN>"
    value = re.sub(r"(<TOKEN_PASSWORD><!\[CDATA\[)[0-9a-f]{64}(\]\]>)",
                   r"\1<TOKEN>\2", value)
    value = re.sub(_TIME + r"( : Error monitoring Host)", r"<TIME>\1", value)
    return _check_and_mask_ether(value)


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    def wait(server, n):
        if n in WAIT_BEFORE:
            time.sleep(VNET_DRIVER_DELAY + 0.25)
    tmp = tmp_path_factory.mktemp("replay")
    return replay_samples(tmp / "oned.sqlite", SAMPLES, INDEX,
                          TESTBED_OPTIONS, wait)


def test_index_is_complete():
    assert len(INDEX) == 86
    assert [e["n"] for e in INDEX] == list(range(1, 87))


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_replay(replay, entry):
    recorded = (SAMPLES / (entry["file"] + ".response.xml")).read_bytes()
    # xmlrpc-c framing, CRLF and value types exactly as recorded
    values = check_transport(entry, replay[entry["n"]], recorded)
    if values is None:
        real = decode(recorded)
        assert entry["fault"] == {"faultCode": real[1], "faultString": real[2]}
        return
    mine, real = values
    method = entry["method"]
    assert [normalise_value(method, v) for v in mine] == \
        [normalise_value(method, v) for v in real]
    # the index agrees with the raw file (it truncates long strings)
    assert len(entry["result"]) == len(real)
    for idx_value, value in zip(entry["result"], real):
        if isinstance(idx_value, str) and idx_value.endswith("..."):
            assert value.startswith(idx_value[:-3])
        else:
            assert idx_value == value


def test_replay_payloads_validate_against_xsd(replay):
    """Every XML document the test oned returned during the replay is valid
    against OpenNebula's 7.4.0 schemas (namespace injected), except the
    documented never-monitored host, whose failure is asserted."""
    from oned_support import EMPTY_HOST_DS, assert_valid_payload
    checked, quirks = 0, 0
    for entry, value in xml_payloads(INDEX, replay):
        assert_valid_payload(value)
        checked += 1
        quirks += EMPTY_HOST_DS in value
    assert checked == 21   # one per *.payload.xml of the capture
    # sample 033: host2 (id 1) was allocated in a cluster without datastores
    # and never monitored
    assert quirks == 1


def test_replay_payloads_same_verdict_as_real_oned_on_6_10_5_xsd(replay):
    """The 6.10.5 schemas reject some 7.4.0 answers (VNET/TEMPLATE_ID is
    new in 7.x).  Our answers must get exactly the verdict real oned's
    answers get."""
    from oned_support import XSD_DIR, xsd_errors
    for entry, value in xml_payloads(INDEX, replay):
        recorded = decode((SAMPLES / (entry["file"] + ".response.xml"))
                          .read_bytes())[1][1]
        assert xsd_errors(value, XSD_DIR / "6.10.5") == \
            xsd_errors(recorded, XSD_DIR / "6.10.5"), entry["file"]

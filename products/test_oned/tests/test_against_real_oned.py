"""The test oned held to the real daemon: the same XML-RPC calls are sent to
a real oned 7.4.0 and to the test oned, and their answers are compared.

The real oned is OpenNebula 7.4.0 built from its source by `make
one-packages` (tools/opennebula/build-packages), started from the
self-contained tree it installs by tools/opennebula/run-oned-tree, in a
temporary directory on free loopback ports, with its dummy drivers. The test
oned is products/test_oned, started the way the other tests of this
directory start it (oned_support.OnedProcess). Both get the same oneadmin
password, and then ONE scenario (SCENARIO below): the calls the project's
modules make (module_utils/stratuslab_one/, library/opennebula_*.py) and
the error cases of tests/fixtures/opennebula/API.md, in one order. A call that
needs the id of an object made earlier uses the id that server answered
(Ref); both assign ids from the same start, so the ids are also compared,
as equal.

What is compared, per answer:

* an XML-RPC fault: its code and string, exactly;
* a failure: the whole array, [false, message, error code, RESP_ID,
  replication index], the message exactly (after NORMALISERS);
* a success: the flag, then the value; integers (object ids) and strings
  exactly (after NORMALISERS), and XML documents element by element: every
  element under the object (each object of a pool), its name, its place
  among its siblings and its text, after NORMALISERS. The parts of a
  document that legitimately or deliberately differ are not compared: the
  XPaths of DIFFERENCES, each with its reason. A step that DIFFERENCES
  marks as deliberately different is skipped with that reason.

Every entry of DIFFERENCES is a row of the table "Differences from oned
7.4.0" in docs/test-oned.md, with the same reason (test_differences_are_
documented). Anything else that differs fails: a new difference must be
fixed in products/test_oned or documented there and here.

Without the tree (no `make one-packages` on this machine) the module is
skipped.
"""

import difflib
import fnmatch
import os
import re
import secrets
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from oned_support import REPO, OnedProcess

TREE = Path(os.environ.get(
    "STRATUSLAB_ONE_TREE",
    "/var/cache/stratuslab-test/opennebula/current/tree"))
RUN_ONED_TREE = REPO / "tools" / "opennebula" / "run-oned-tree"
DOC = REPO / "docs" / "test-oned.md"

pytestmark = pytest.mark.skipif(
    not (TREE / "bin" / "oned").is_file(),
    reason="no OpenNebula 7.4.0 tree at %s: run `make one-packages` to build "
           "the real oned this test compares the test oned with" % TREE)

# The test oned's --datastore-location default (docs/test-oned.md)
TEST_ONED_DS_LOCATION = "/var/lib/one//datastores"
# A limit, not a delay: on an idle machine the dummy driver's first probe
# takes a few seconds, on one loaded by other builds (load 30 on 2 cores)
# more than 30 s has been seen.
WAIT_TIMEOUT = 120.0


# --------------------------------------------------------------------------
# What legitimately differs between two runs (values), and what the test
# oned deliberately does not do (parts of documents, or whole steps).
# --------------------------------------------------------------------------

@dataclass
class Difference:
    """A deliberate difference of the test oned (docs/test-oned.md,
    "Differences from oned 7.4.0", row ``key``).

    xpaths: parts of documents not compared; "ROOT/A/B" is the element B
    of A in a ROOT document (or a ROOT of a pool) and everything below it,
    "*" matches one element name. value_only=True still compares that the
    element is there, at its place, but not its text or children. steps:
    scenario steps skipped as a whole."""
    key: str
    reason: str
    xpaths: tuple = ()
    value_only: bool = False
    steps: tuple = ()


DIFFERENCES = [
    Difference(
        "host-pci-numa",
        "The test oned's host probe reports no PCI devices and no NUMA "
        "topology (the dummy driver invents a GPU, NICs, cores and huge "
        "pages)",
        xpaths=("HOST/HOST_SHARE/PCI_DEVICES", "HOST/HOST_SHARE/NUMA_NODES")),
    Difference(
        "host-cpu-features",
        "The test oned's host probe reports no CPU features, CPU models or "
        "memory encryption (the dummy driver reports a fixed list of each)",
        xpaths=("HOST/TEMPLATE/KVM_CPU_FEATURES",
                "HOST/TEMPLATE/KVM_CPU_MODELS",
                "HOST/TEMPLATE/MEMORY_ENCRYPTION")),
    Difference(
        "host-monitoring",
        "The test oned keeps no monitoring records: MONITORING is empty "
        "(real oned: the last probe's time, CPU, memory and network figures)",
        xpaths=("HOST/MONITORING",)),
    Difference(
        "host-enable-probe",
        "The test oned answers the probe of a host enabled from OFFLINE at "
        "once: its next call finds the host MONITORED (real oned: INIT until "
        "the driver's probes have run, seconds)",
        steps=("host.info, enabled from offline",)),
    Difference(
        "datastore-capacity",
        "The test oned runs no datastore monitor: TOTAL_MB, FREE_MB and "
        "USED_MB stay 0 (real oned's drivers measure the file system of the "
        "datastore's directory, when their monitor has run)",
        xpaths=("DATASTORE/TOTAL_MB", "DATASTORE/FREE_MB",
                "DATASTORE/USED_MB"),
        value_only=True),
]

@dataclass
class Normaliser:
    """A value that differs between any two runs, even of the same oned.
    normalise_document and normalise_message check each side's value, then
    replace it, for each of NORMALISERS."""
    name: str
    why: str


NORMALISERS = [
    Normaliser("TOKEN_PASSWORD",
               "USER/TEMPLATE/TOKEN_PASSWORD is random per user and run"),
    Normaliser("ETHER MAC",
               "an ETHER address range without MAC gets a random MAC: checked "
               "to carry the MAC_PREFIX 02:00 and MAC_END = MAC + SIZE - 1, "
               "then masked"),
    Normaliser("BASE_PATH prefix",
               "a datastore's BASE_PATH is oned.conf's DATASTORE_LOCATION + "
               "its id; the real instance's location is in its temporary "
               "directory: checked to be each server's own location, then "
               "replaced by <DATASTORE_LOCATION>"),
    Normaliser("ERROR time",
               "TEMPLATE/ERROR starts with the time of the failure, in "
               "ctime(3)'s format: checked, then masked"),
    Normaliser("parse error line",
               "real oned's template parser reports a garbage line number "
               "(an uninitialised counter, e.g. 'at line 1870032489'): the "
               "number is masked, the columns kept"),
]


# --------------------------------------------------------------------------
# The scenario
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Ref:
    """The id a server answered to the step that saved it under ``name``."""
    name: str


@dataclass
class Call:
    name: str
    method: str
    params: tuple = ()
    session: str = None        # None: oneadmin with the right password
    save: str = None           # remember the (int) result per server


@dataclass
class Wait:
    """Poll each server until ``until(answer)`` holds (not compared: the
    two daemons take their own time), then go on."""
    name: str
    method: str
    params: tuple
    until: object
    timeout: float = WAIT_TIMEOUT


def _xml(answer):
    if answer[0] == "result" and answer[1][0] and \
            isinstance(answer[1][1], str):
        return answer[1][1]
    return ""


def hosts_all_monitored(answer):
    states = re.findall(r"<HOST><ID>\d+</ID><NAME>[^<]*</NAME><STATE>(\d+)<",
                        _xml(answer))
    return bool(states) and set(states) == {"2"}


def vnet_ready(answer):
    return "<STATE><![CDATA[1]]></STATE>" in _xml(answer)


def vnets_settled(answer):
    """No network waits for its driver (LOCK_CREATE) any more."""
    xml = _xml(answer)
    return "<VNET>" in xml and \
        "<STATE><![CDATA[2]]></STATE>" not in xml


def vnet_update_done(answer):
    """oned's LCM has dealt with the network's VMs after a change of an
    attribute they inherit: TEMPLATE/VNET_UPDATE is gone again."""
    return "<VNET_UPDATE>" not in _xml(answer) and bool(_xml(answer))


def no_such_object(answer):
    return answer[0] == "result" and answer[1][0] is False and \
        answer[1][2] == 0x400


BAD_SESSION = "oneadmin:not-the-password"
RANGED = ('NAME="public"\nVN_MAD="bridge"\nBRIDGE="br0"\nPHYDEV="eth0"\n'
          'AR=[TYPE="IP4",IP="10.0.0.10",SIZE="10"]\n')
FIXED = ('NAME="fixed"\nVN_MAD="bridge"\nBRIDGE="br1"\n'
         'AR=[TYPE="IP4",IP="10.1.0.10",SIZE="1"]\n'
         'AR=[TYPE="IP4",IP="10.1.0.11",SIZE="1"]\n'
         'AR=[TYPE="IP4",IP="10.1.0.12",SIZE="1"]\n')
NO_BRIDGE = 'NAME="private"\nVN_MAD="bridge"\n'
XML_VNET = ("<VNET><NAME>xmlnet</NAME><VN_MAD>bridge</VN_MAD>"
            "<BRIDGE>br2</BRIDGE><DESCRIPTION>from XML</DESCRIPTION></VNET>")
IMAGE_DS = ('NAME="images"\nTYPE="IMAGE_DS"\nDS_MAD="fs"\nTM_MAD="qcow2"\n'
            'BASE_PATH="/srv/cloud/datastores"\n')
IMAGE_DS_PLAIN = 'NAME="images-shared"\nDS_MAD="fs"\nTM_MAD="shared"\n'
SYSTEM_DS = 'NAME="system-ssh"\nTYPE="SYSTEM_DS"\nTM_MAD="ssh"\n'
SYSTEM_DS_BASE = ('NAME="system-shared"\nTYPE="SYSTEM_DS"\nTM_MAD="shared"\n'
                  'BASE_PATH="/srv/cloud/system"\n')

SCENARIO = [
    # -- system, users, authentication
    Call("version", "one.system.version"),
    Call("version, wrong password", "one.system.version",
         session=BAD_SESSION),
    Call("version, unknown user", "one.system.version", session="nobody:x"),
    Call("version, session without colon", "one.system.version",
         session="oneadmin"),
    Call("user.info, caller", "one.user.info", (-1,)),
    Call("user.info 0", "one.user.info", (0,)),
    Call("user.info, unknown", "one.user.info", (9999,)),
    Call("host.info, wrong password", "one.host.info", (0,),
         session=BAD_SESSION),
    # -- XML-RPC faults (xmlrpc-c)
    Call("unknown method", "one.nosuch.method"),
    Call("host.info, string id", "one.host.info", ("0",)),
    Call("host.info, no id", "one.host.info"),
    Call("host.info, string flag", "one.host.info", (0, "yes")),
    Call("cluster.allocate, int name", "one.cluster.allocate", (5,)),
    Call("vnpool.info, one parameter", "one.vnpool.info", (-2,)),
    # -- the bootstrap pools
    Call("hostpool.info, empty", "one.hostpool.info"),
    Call("clusterpool.info, bootstrap", "one.clusterpool.info"),
    Call("datastorepool.info, bootstrap", "one.datastorepool.info"),
    Call("vnpool.info, empty", "one.vnpool.info", (-2, -1, -1)),
    Call("cluster.info 0", "one.cluster.info", (0,)),
    Call("datastore.info 0", "one.datastore.info", (0,)),
    # -- clusters
    Call("cluster.allocate", "one.cluster.allocate", ("site",), save="cl"),
    Call("cluster.allocate, duplicate", "one.cluster.allocate", ("site",)),
    Call("cluster.allocate, empty name", "one.cluster.allocate", ("",)),
    Call("cluster.info", "one.cluster.info", (Ref("cl"),)),
    Call("cluster.info, unknown", "one.cluster.info", (9999,)),
    # -- hosts (dummy drivers, as `onehost create -i dummy -v dummy`)
    Call("host.allocate, default cluster", "one.host.allocate",
         ("node1", "dummy", "dummy", -1), save="h1"),
    Call("host.allocate, in cluster", "one.host.allocate",
         ("node2", "dummy", "dummy", Ref("cl")), save="h2"),
    Call("host.allocate, duplicate", "one.host.allocate",
         ("node1", "dummy", "dummy", -1)),
    Call("host.allocate, empty name", "one.host.allocate",
         ("", "dummy", "dummy", -1)),
    Call("host.allocate, 64 characters", "one.host.allocate",
         ("n" * 64, "dummy", "dummy", -1)),
    Call("host.allocate, unknown cluster", "one.host.allocate",
         ("node9", "dummy", "dummy", 9999)),
    # (the first probe of the hosts runs while the networks and datastores
    # are made: see "hosts MONITORED" below)
    # -- virtual networks
    Call("vn.allocate ranged", "one.vn.allocate", (RANGED, -1), save="vn1"),
    Call("vn.allocate fixed", "one.vn.allocate", (FIXED, Ref("cl")),
         save="vn2"),
    Call("vn.allocate, no BRIDGE", "one.vn.allocate", (NO_BRIDGE, Ref("cl")),
         save="vn3"),
    Call("vn.allocate, XML template", "one.vn.allocate", (XML_VNET, -1),
         save="vn4"),
    Call("vn.allocate, duplicate", "one.vn.allocate", (RANGED, -1)),
    Call("vn.allocate, no VN_MAD", "one.vn.allocate", ('NAME="x"', -1)),
    Call("vn.allocate, unknown VN_MAD", "one.vn.allocate",
         ('NAME="x"\nVN_MAD="nosuch"', -1)),
    Call("vn.allocate, no NAME", "one.vn.allocate", ('VN_MAD="bridge"', -1)),
    Call("vn.allocate, syntax error", "one.vn.allocate",
         ('NAME="x" AR=[', -1)),
    Call("vn.allocate, malformed XML", "one.vn.allocate",
         ("<VNET><NAME>x</NAME>", -1)),
    Call("vn.allocate, unknown cluster", "one.vn.allocate",
         ('NAME="x"\nVN_MAD="bridge"', 9999)),
    Call("vn.allocate, unknown BRIDGE_TYPE", "one.vn.allocate",
         ('NAME="x"\nVN_MAD="bridge"\nBRIDGE_TYPE="openvswitch"', -1)),
    Call("vn.allocate, AR without SIZE", "one.vn.allocate",
         ('NAME="broken"\nVN_MAD="bridge"\n'
          'AR=[TYPE="IP4",IP="10.9.0.1"]\n'
          'AR=[TYPE="IP4",IP="10.9.1.1",SIZE="2"]\n', -1), save="vn5"),
    Wait("vnets settled", "one.vnpool.info", (-2, -1, -1), vnets_settled),
    Call("vn.info ranged", "one.vn.info", (Ref("vn1"),)),
    Call("vn.info fixed", "one.vn.info", (Ref("vn2"),)),
    Call("vn.info, no BRIDGE", "one.vn.info", (Ref("vn3"),)),
    Call("vn.info, XML template", "one.vn.info", (Ref("vn4"),)),
    Call("vn.info, AR without SIZE", "one.vn.info", (Ref("vn5"),)),
    Call("vn.add_ar, ERROR state", "one.vn.add_ar",
         (Ref("vn5"), 'AR=[TYPE="IP4",IP="10.9.2.1",SIZE="2"]')),
    Call("vn.info, unknown", "one.vn.info", (9999,)),
    Call("vnpool.info all", "one.vnpool.info", (-2, -1, -1)),
    Call("vnpool.info id range", "one.vnpool.info",
         (-2, Ref("vn2"), Ref("vn3"))),
    Call("vnpool.info mine", "one.vnpool.info", (-3, -1, -1)),
    Call("vnpool.info, bad filter", "one.vnpool.info", (-5, -1, -1)),
    # -- address ranges
    Call("vn.add_ar IP4", "one.vn.add_ar", (Ref("vn3"),
         'AR=[TYPE="IP4",IP="192.168.0.2",SIZE="20",GATEWAY="192.168.0.1"]')),
    Call("vn.add_ar ETHER", "one.vn.add_ar",
         (Ref("vn3"), 'AR=[TYPE="ETHER",SIZE="5"]')),
    Call("vn.add_ar fixed", "one.vn.add_ar",
         (Ref("vn3"), 'AR=[TYPE="IP4",IP="192.168.0.100",SIZE="1"]')),
    Call("vn.add_ar, two ARs", "one.vn.add_ar", (Ref("vn3"),
         'AR=[TYPE="IP4",IP="192.168.1.1",SIZE="2"]\n'
         'AR=[TYPE="IP4",IP="192.168.2.1",SIZE="2"]')),
    Call("vn.add_ar, overlapping", "one.vn.add_ar",
         (Ref("vn3"), 'AR=[TYPE="IP4",IP="192.168.0.5",SIZE="2"]')),
    Call("vn.add_ar, no SIZE", "one.vn.add_ar",
         (Ref("vn3"), 'AR=[TYPE="IP4",IP="192.168.3.1"]')),
    Call("vn.add_ar, no AR", "one.vn.add_ar", (Ref("vn3"), 'X="1"')),
    Call("vn.add_ar, unknown vnet", "one.vn.add_ar",
         (9999, 'AR=[TYPE="IP4",IP="192.168.3.1",SIZE="1"]')),
    Call("vn.info after add_ar", "one.vn.info", (Ref("vn3"),)),
    Call("vn.update_ar SIZE and attributes", "one.vn.update_ar",
         (Ref("vn3"), 'AR=[AR_ID="0",SIZE="30",DNS="192.168.0.1"]')),
    Call("vn.update_ar IP ignored", "one.vn.update_ar",
         (Ref("vn3"), 'AR=[AR_ID="2",IP="192.168.9.9",TYPE="ETHER"]')),
    Call("vn.update_ar, no AR_ID", "one.vn.update_ar",
         (Ref("vn3"), 'AR=[SIZE="3"]')),
    Call("vn.update_ar, unknown AR_ID", "one.vn.update_ar",
         (Ref("vn3"), 'AR=[AR_ID="42",SIZE="3"]')),
    Wait("update_ar applied", "one.vn.info", (Ref("vn3"),),
         vnet_update_done),
    Call("vn.info after update_ar", "one.vn.info", (Ref("vn3"),)),
    Call("vn.rm_ar last", "one.vn.rm_ar", (Ref("vn3"), 4)),
    Call("vn.add_ar after rm_ar of the last", "one.vn.add_ar",
         (Ref("vn3"), 'AR=[TYPE="IP4",IP="192.168.4.1",SIZE="4"]')),
    Call("vn.info, AR id after rm_ar of the last", "one.vn.info",
         (Ref("vn3"),)),
    Call("vn.rm_ar middle", "one.vn.rm_ar", (Ref("vn3"), 1)),
    Call("vn.rm_ar forced", "one.vn.rm_ar", (Ref("vn3"), 2, True)),
    Call("vn.add_ar after rm_ar in the middle", "one.vn.add_ar",
         (Ref("vn3"), 'AR=[TYPE="IP4",IP="192.168.5.1",SIZE="4"]')),
    Call("vn.info, AR id after rm_ar in the middle", "one.vn.info",
         (Ref("vn3"),)),
    Call("vn.rm_ar, unknown AR", "one.vn.rm_ar", (Ref("vn3"), 42)),
    Call("vn.rm_ar fixed ARs", "one.vn.rm_ar", (Ref("vn2"), 1)),
    Call("vn.info fixed after rm_ar", "one.vn.info", (Ref("vn2"),)),
    # -- vn.update
    Call("vn.update merge", "one.vn.update",
         (Ref("vn1"), 'DESCRIPTION="public net"\nGUEST_MTU="1500"', 1)),
    Call("vn.info after merge", "one.vn.info", (Ref("vn1"),)),
    Call("vn.update replace", "one.vn.update",
         (Ref("vn1"), 'BRIDGE="br0"\nVN_MAD="bridge"\nDNS="10.0.0.1"', 0)),
    Wait("replace applied", "one.vn.info", (Ref("vn1"),), vnet_update_done),
    Call("vn.info after replace", "one.vn.info", (Ref("vn1"),)),
    Call("vn.update replace, no VN_MAD", "one.vn.update",
         (Ref("vn1"), 'BRIDGE="br9"\nDNS="10.0.0.2"', 0)),
    Call("vn.update, syntax error", "one.vn.update",
         (Ref("vn1"), 'DNS="10.0.0.3" X=[', 1)),
    Call("vn.info after refused updates", "one.vn.info", (Ref("vn1"),)),
    Call("vn.update, bad type", "one.vn.update", (Ref("vn1"), 'X="1"', 2)),
    Call("vn.update, unknown", "one.vn.update", (9999, 'X="1"', 1)),
    Call("vn.update, unknown, bad type", "one.vn.update", (9999, 'X="1"', 2)),
    # -- vnets in clusters
    Call("cluster.addvnet", "one.cluster.addvnet", (Ref("cl"), Ref("vn1"))),
    Call("cluster.addvnet, again", "one.cluster.addvnet",
         (Ref("cl"), Ref("vn1"))),
    Call("cluster.addvnet, unknown vnet", "one.cluster.addvnet",
         (Ref("cl"), 9999)),
    Call("vn.info in two clusters", "one.vn.info", (Ref("vn1"),)),
    Call("cluster.info with vnets", "one.cluster.info", (Ref("cl"),)),
    # -- datastores
    Call("datastore.allocate image, BASE_PATH", "one.datastore.allocate",
         (IMAGE_DS, -1), save="ds1"),
    Call("datastore.allocate image", "one.datastore.allocate",
         (IMAGE_DS_PLAIN, -1), save="ds2"),
    Call("datastore.allocate system in cluster", "one.datastore.allocate",
         (SYSTEM_DS, Ref("cl")), save="ds3"),
    Call("datastore.allocate system, BASE_PATH", "one.datastore.allocate",
         (SYSTEM_DS_BASE, -1), save="ds4"),
    Call("datastore.allocate, duplicate", "one.datastore.allocate",
         (IMAGE_DS, -1)),
    Call("datastore.allocate, no DS_MAD", "one.datastore.allocate",
         ('NAME="x"\nTM_MAD="ssh"', -1)),
    Call("datastore.allocate, unknown DS_MAD", "one.datastore.allocate",
         ('NAME="x"\nDS_MAD="nope"\nTM_MAD="ssh"', -1)),
    Call("datastore.allocate, no TM_MAD", "one.datastore.allocate",
         ('NAME="x"\nDS_MAD="fs"', -1)),
    Call("datastore.allocate, unknown TM_MAD", "one.datastore.allocate",
         ('NAME="x"\nDS_MAD="fs"\nTM_MAD="nope"', -1)),
    Call("datastore.allocate, system with DS_MAD", "one.datastore.allocate",
         ('NAME="x"\nTYPE="SYSTEM_DS"\nDS_MAD="fs"\nTM_MAD="ssh"', -1)),
    Call("datastore.allocate, unknown cluster", "one.datastore.allocate",
         ('NAME="x"\nDS_MAD="fs"\nTM_MAD="ssh"', 9999)),
    Call("datastore.allocate, no NAME", "one.datastore.allocate",
         ('DS_MAD="fs"\nTM_MAD="ssh"', -1)),
    Call("datastore.allocate, dev without DISK_TYPE",
         "one.datastore.allocate", ('NAME="x"\nDS_MAD="dev"\nTM_MAD="dev"',
                                    -1)),
    Call("datastore.allocate, unknown TYPE", "one.datastore.allocate",
         ('NAME="odd"\nTYPE="ODD_DS"\nDS_MAD="fs"\nTM_MAD="lvm"', -1),
         save="ds5"),
    Call("datastore.info, unknown TYPE", "one.datastore.info", (Ref("ds5"),)),
    Call("datastore.info image, BASE_PATH", "one.datastore.info",
         (Ref("ds1"),)),
    Call("datastore.info image", "one.datastore.info", (Ref("ds2"),)),
    Call("datastore.info system in cluster", "one.datastore.info",
         (Ref("ds3"),)),
    Call("datastore.info system, BASE_PATH", "one.datastore.info",
         (Ref("ds4"),)),
    Call("datastore.info, unknown", "one.datastore.info", (9999,)),
    Call("datastore.update merge BASE_PATH", "one.datastore.update",
         (Ref("ds1"), 'BASE_PATH="/srv/cloud/datastores"', 1)),
    Call("datastore.info after update", "one.datastore.info", (Ref("ds1"),)),
    Call("datastore.update replace TM_MAD", "one.datastore.update",
         (Ref("ds2"), 'TM_MAD="ssh"', 0)),
    Call("datastore.info after replace", "one.datastore.info", (Ref("ds2"),)),
    Call("datastorepool.info", "one.datastorepool.info"),
    Call("cluster.adddatastore", "one.cluster.adddatastore",
         (Ref("cl"), Ref("ds1"))),
    Call("cluster.adddatastore, unknown", "one.cluster.adddatastore",
         (Ref("cl"), 9999)),
    Call("datastore.info in two clusters", "one.datastore.info",
         (Ref("ds1"),)),
    Call("cluster.info populated", "one.cluster.info", (Ref("cl"),)),
    Call("clusterpool.info populated", "one.clusterpool.info"),
    # -- hosts, monitored
    Wait("hosts MONITORED", "one.hostpool.info", (), hosts_all_monitored),
    Call("host.info node1, monitored", "one.host.info", (Ref("h1"),)),
    Call("host.info node2, monitored, system datastore in cluster",
         "one.host.info", (Ref("h2"),)),
    Call("hostpool.info, monitored", "one.hostpool.info"),
    Call("host.info, decrypt", "one.host.info", (Ref("h1"), True)),
    Call("host.info, unknown", "one.host.info", (9999,)),
    Call("host.info -1", "one.host.info", (-1,)),
    Call("host.update, merge", "one.host.update",
         (Ref("h1"), 'NOTE="rack 4"\nRESERVED_MEM="1048576"', 1)),
    Call("host.info after update", "one.host.info", (Ref("h1"),)),
    Call("host.status disable", "one.host.status", (Ref("h1"), 1)),
    Call("host.info, disabled", "one.host.info", (Ref("h1"),)),
    Call("host.status enable, disabled", "one.host.status", (Ref("h1"), 0)),
    Call("host.info, enabled from disabled", "one.host.info", (Ref("h1"),)),
    Call("host.status offline", "one.host.status", (Ref("h1"), 2)),
    Call("host.info, offline", "one.host.info", (Ref("h1"),)),
    Call("host.status, bad code", "one.host.status", (Ref("h1"), 7)),
    Call("host.status, unknown host", "one.host.status", (9999, 1)),
    # -- hosts in clusters
    Call("cluster.addhost", "one.cluster.addhost", (Ref("cl"), Ref("h1"))),
    Call("cluster.info with hosts", "one.cluster.info", (Ref("cl"),)),
    Call("host.info, moved", "one.host.info", (Ref("h1"),)),
    Call("cluster.addhost, unknown host", "one.cluster.addhost",
         (Ref("cl"), 9999)),
    Call("cluster.addhost, unknown cluster", "one.cluster.addhost",
         (9999, Ref("h1"))),
    Call("cluster.delhost", "one.cluster.delhost", (Ref("cl"), Ref("h1"))),
    Call("cluster.delhost, unknown cluster", "one.cluster.delhost",
         (9999, Ref("h1"))),
    Call("cluster.delhost, other cluster", "one.cluster.delhost",
         (Ref("cl"), Ref("h1"))),
    Call("host.info, back in default", "one.host.info", (Ref("h1"),)),
    Call("cluster.info 0 with host", "one.cluster.info", (0,)),
    Call("host.status enable, offline", "one.host.status", (Ref("h1"), 0)),
    Call("host.info, enabled from offline", "one.host.info", (Ref("h1"),)),
    # -- deletes
    Call("cluster.delete, hosts", "one.cluster.delete", (Ref("cl"),)),
    Call("host.delete", "one.host.delete", (Ref("h2"),)),
    Call("host.info, deleted", "one.host.info", (Ref("h2"),)),
    Call("host.delete, unknown", "one.host.delete", (9999,)),
    Call("cluster.delete, datastores", "one.cluster.delete", (Ref("cl"),)),
    Call("cluster.deldatastore", "one.cluster.deldatastore",
         (Ref("cl"), Ref("ds1"))),
    Call("cluster.deldatastore system", "one.cluster.deldatastore",
         (Ref("cl"), Ref("ds3"))),
    Call("datastore.info, no cluster", "one.datastore.info", (Ref("ds3"),)),
    Call("datastore.delete", "one.datastore.delete", (Ref("ds3"),)),
    Call("datastore.delete, unknown", "one.datastore.delete", (9999,)),
    Call("datastore.delete 0", "one.datastore.delete", (0,)),
    Call("cluster.delete, vnets", "one.cluster.delete", (Ref("cl"),)),
    Call("vn.delete", "one.vn.delete", (Ref("vn3"),)),
    Call("vn.info, deleting", "one.vn.info", (Ref("vn3"),)),
    Call("vn.delete, unknown", "one.vn.delete", (9999,)),
    Wait("vnet gone", "one.vn.info", (Ref("vn3"),), no_such_object),
    Call("vn.info, deleted", "one.vn.info", (Ref("vn3"),)),
    Call("cluster.delvnet", "one.cluster.delvnet", (Ref("cl"), Ref("vn1"))),
    Call("cluster.delvnet fixed", "one.cluster.delvnet",
         (Ref("cl"), Ref("vn2"))),
    Call("cluster.delvnet, not in cluster", "one.cluster.delvnet",
         (Ref("cl"), Ref("vn4"))),
    Call("cluster.delvnet, unknown cluster", "one.cluster.delvnet",
         (9999, Ref("vn4"))),
    Call("cluster.deldatastore, unknown cluster", "one.cluster.deldatastore",
         (9999, Ref("ds1"))),
    Call("cluster.info emptied", "one.cluster.info", (Ref("cl"),)),
    Call("cluster.delete", "one.cluster.delete", (Ref("cl"),)),
    Call("cluster.info, deleted", "one.cluster.info", (Ref("cl"),)),
    Call("cluster.delete 0", "one.cluster.delete", (0,)),
    Call("cluster.delete, unknown", "one.cluster.delete", (9999,)),
    Call("host.delete node1", "one.host.delete", (Ref("h1"),)),
    Call("hostpool.info, final", "one.hostpool.info"),
    Call("clusterpool.info, final", "one.clusterpool.info"),
    Call("datastorepool.info, final", "one.datastorepool.info"),
    Call("vnpool.info, final", "one.vnpool.info", (-2, -1, -1)),
]

CALLS = [s for s in SCENARIO if isinstance(s, Call)]
WAITS = [s for s in SCENARIO if isinstance(s, Wait)]
assert len({s.name for s in SCENARIO}) == len(SCENARIO), "step names repeat"
for _diff in DIFFERENCES:
    assert set(_diff.steps) <= {s.name for s in CALLS}, _diff.steps


# --------------------------------------------------------------------------
# Running the two daemons
# --------------------------------------------------------------------------

# A block of free ports for run-oned-tree (PORT to PORT+3).
sys.path.insert(0, str(REPO / "tools"))
from free_ports import free_port_block  # noqa: E402


@dataclass
class Endpoint:
    label: str
    url: str
    session: str
    ds_location: str
    saved: dict = field(default_factory=dict)

    def send(self, method, params, session=None):
        """('result', [...]) or ('fault', code, string)."""
        proxy = xmlrpc.client.ServerProxy(self.url)
        try:
            return ("result", getattr(proxy, method)(
                session or self.session, *params))
        except xmlrpc.client.Fault as fault:
            return ("fault", fault.faultCode, fault.faultString)

    def resolve(self, params):
        return tuple(self.saved[p.name] if isinstance(p, Ref) else p
                     for p in params)


@pytest.fixture(scope="module")
def password():
    return "cmp-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def real_oned(tmp_path_factory, password):
    """A real oned 7.4.0 from the tree, in a temporary directory."""
    instance = tmp_path_factory.mktemp("real-oned")
    error = ""
    for _ in range(3):
        port = free_port_block()
        proc = subprocess.run(
            [str(RUN_ONED_TREE), "start", str(TREE), str(instance), str(port),
             password], capture_output=True, text=True, timeout=120)
        if proc.returncode == 0:
            break
        error = proc.stderr[-3000:]
    else:
        pytest.fail("run-oned-tree could not start the real oned: %s" % error)
    url = "http://127.0.0.1:%d/RPC2" % port
    try:
        ok, conf, _ = xmlrpc.client.ServerProxy(url).one.system.config(
            "oneadmin:" + password)[:3]
        assert ok, conf
        location = ET.fromstring(conf).findtext("DATASTORE_LOCATION")
        yield Endpoint("real oned", url, "oneadmin:" + password,
                       location.rstrip("/"))
    finally:
        subprocess.run([str(RUN_ONED_TREE), "stop", str(instance)],
                       capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def test_oned(tmp_path_factory, password):
    """The test oned, started as oned_support starts it for the other
    tests, with the same oneadmin password as the real one."""
    state = tmp_path_factory.mktemp("test-oned")
    auth = state / "one_auth"
    auth.write_text("oneadmin:%s\n" % password)
    auth.chmod(0o600)
    # a vnm "driver" slower than the default 0.1 s: "vn.info, deleting"
    # must find the network still in LOCK_DELETE on a loaded machine too
    server = OnedProcess(state / "oned.sqlite", [
        "--auth", str(auth), "--vnet-driver-delay", "1.0"]).start()
    try:
        yield Endpoint("test oned", server.url, "oneadmin:" + password,
                       TEST_ONED_DS_LOCATION)
    finally:
        server.stop()


@dataclass
class Outcome:
    real: object = None
    test: object = None
    waited: dict = field(default_factory=dict)   # Wait: label -> s or None


@pytest.fixture(scope="module")
def transcript(real_oned, test_oned):
    """Run SCENARIO once on both servers: {step name: Outcome}."""
    out = {}
    servers = (real_oned, test_oned)
    for step in SCENARIO:
        outcome = out[step.name] = Outcome()
        if isinstance(step, Wait):
            for server in servers:
                outcome.waited[server.label] = _wait(server, step)
            continue
        answers = []
        for server in servers:
            try:
                params = server.resolve(step.params)
            except KeyError as exc:     # an earlier allocate failed there
                answers.append(("unsent", "no id saved as %s" % exc))
                continue
            answer = server.send(step.method, params, step.session)
            answers.append(answer)
            if step.save and answer[0] == "result" and answer[1][0]:
                server.saved[step.save] = answer[1][1]
        outcome.real, outcome.test = answers
    return out


def _wait(server, step):
    start = time.monotonic()
    deadline = start + step.timeout
    while True:
        try:
            params = server.resolve(step.params)
        except KeyError:
            return None
        if step.until(server.send(step.method, params)):
            return time.monotonic() - start
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Normalising and comparing answers
# --------------------------------------------------------------------------

def _check_ether_mac(ar, where):
    mac, size = ar.find("MAC"), ar.findtext("SIZE")
    assert mac is not None and re.fullmatch(
        r"02:00(:[0-9a-f]{2}){4}", mac.text or ""), where
    end = ar.find("MAC_END")
    if end is not None:
        assert int(end.text.replace(":", ""), 16) == int(
            mac.text.replace(":", ""), 16) + int(size) - 1, where
        end.text = "<ETHER-MAC-END>"
    mac.text = "<ETHER-MAC>"


CTIME = r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d \d{4}"


def normalise_document(root, server):
    """Apply NORMALISERS to a parsed document of ``server``, in place."""
    where = "%s: %s" % (server.label, root.tag)
    for token in root.iter("TOKEN_PASSWORD"):
        assert re.fullmatch(r"[0-9a-f]{64}", token.text or ""), where
        token.text = "<TOKEN_PASSWORD>"
    for ar in root.iter("AR"):
        if ar.findtext("TYPE") == "ETHER" and ar.find("AR_ID") is not None:
            _check_ether_mac(ar, where)
    for error in root.iter("ERROR"):
        match = re.fullmatch(CTIME + r"( : .*)", error.text or "", re.S)
        if match:
            error.text = "<TIME>" + match.group(1)
    for ds in root.iter("DATASTORE"):
        base = ds.find("BASE_PATH")
        if base is None:
            continue
        expected = "%s/%s" % (server.ds_location, ds.findtext("ID"))
        assert base.text == expected, (where, base.text, expected)
        base.text = "<DATASTORE_LOCATION>/%s" % ds.findtext("ID")


def normalise_message(text):
    return re.sub(r"( at line )\d+(, columns \d+:\d+)", r"\1<N>\2", text)


def _matches(path, xpath):
    """Is the element at ``path`` (names from the object down) the one
    ``xpath`` names?"""
    parts = xpath.split("/")
    return len(path) == len(parts) and all(
        fnmatch.fnmatchcase(p, x) for p, x in zip(path, parts))


def flatten(elem, path=(), lines=None):
    """(path, text) of every element in document order: names, order and
    texts; the parts DIFFERENCES names are left out (or their value)."""
    lines = [] if lines is None else lines
    path = path + (elem.tag,)
    for diff in DIFFERENCES:
        if any(_matches(path, x) for x in diff.xpaths):
            if diff.value_only:
                lines.append("/".join(path) + " = <not compared: %s>"
                             % diff.key)
            return lines
    children = list(elem)
    if children:
        lines.append("/".join(path))
        for child in children:
            flatten(child, path, lines)
    else:
        lines.append("/".join(path) + " = " + repr(elem.text or ""))
    return lines


def document_lines(xml_text, server):
    root = ET.fromstring(xml_text)
    normalise_document(root, server)
    if root.tag.endswith("_POOL") and root.tag != "AR_POOL":
        lines = [root.tag]
        for index, child in enumerate(root):
            lines.append("[%d]" % index)
            flatten(child, (), lines)
        return lines
    return flatten(root)


def comparable(answer, server):
    """The answer as a list of lines to compare."""
    if answer[0] != "result":
        return [repr(answer)]
    values = list(answer[1])
    if values and values[0] is False:
        values[1] = normalise_message(values[1])
        return ["failure: " + repr(values)]
    lines = ["success: %r, code %r" % (values[0], values[2:])]
    value = values[1] if len(values) > 1 else None
    if isinstance(value, str) and value.startswith("<"):
        lines += document_lines(value, server)
    else:
        lines.append("value: %r" % (value,))
    return lines


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------

@pytest.mark.parametrize("step", CALLS, ids=[s.name for s in CALLS])
def test_same_answer(transcript, real_oned, test_oned, step):
    for diff in DIFFERENCES:
        if step.name in diff.steps:
            pytest.skip("%s: %s" % (diff.key, diff.reason))
    outcome = transcript[step.name]
    real = comparable(outcome.real, real_oned)
    mine = comparable(outcome.test, test_oned)
    if real != mine:
        diff = "\n".join(difflib.unified_diff(
            real, mine, "real oned 7.4.0", "test oned", lineterm="", n=2))
        pytest.fail("%s%s differs:\n%s" % (
            step.method, step.params, diff), pytrace=False)


@pytest.mark.parametrize("step", WAITS, ids=[s.name for s in WAITS])
def test_both_reach_the_state(transcript, step):
    waited = transcript[step.name].waited
    assert all(v is not None for v in waited.values()), \
        "%s: not reached within %ss: %s" % (step.name, step.timeout, waited)


def _doc_table():
    """{key: reason} of docs/test-oned.md "Differences from oned 7.4.0"."""
    text = DOC.read_text()
    match = re.search(r"^#+ Differences from oned 7\.4\.0\s*$(.*?)(?=^#|\Z)",
                      text, re.M | re.S)
    assert match, "docs/test-oned.md has no 'Differences from oned 7.4.0'"
    rows = {}
    for line in match.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and \
                re.fullmatch(r"`[a-z0-9-]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[-1]
    return rows


def test_differences_are_documented():
    """Each deliberate difference is a row of the docs' table, with the
    same reason, and the table lists nothing else."""
    assert _doc_table() == {d.key: d.reason for d in DIFFERENCES}

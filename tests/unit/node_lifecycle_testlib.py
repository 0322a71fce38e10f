"""What the node lifecycle tests (test_node_lifecycle_preflight.py,
test_node_lifecycle_roles.py) share: a real OpenNebula 7.4.0 holding the
demo site's cluster, and the demo site file pointed at it.

* ``lifecycle_oned``: a real oned (one_testlib.RealOned, dummy drivers) with
  the demo site's cluster, a dummy system datastore and the hosts ALL;
  lc-a runs a VM, lc-b and lc-c none. It gives (server, client, vm id,
  {host name: id}).
* ``demo_site``: the demo site file's values with that oned's port and
  oneadmin's credentials (an auth file under a work directory), and
  ``node_hosts`` the nodes' host variables, for preflight_testlib.run_cases.
"""

import sys
import time
from pathlib import Path

import pytest
import yaml

from preflight_testlib import ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent / "opennebula"))
from one_testlib import needs_real_oned, running_real_oned  # noqa: E402,F401  (needs_real_oned: for the tests)

SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"
CLUSTER = "demo"  # the demo site file's site_one_cluster
PUBLIC = {"name": "public", "bridge": "brpublic", "interface": "eth0", "cidr": "10.89.7.0/24",
          "gateway": "10.89.7.1", "range": {"first": "10.89.7.100", "last": "10.89.7.199"}}
PRIVATE = {"name": "private", "bridge": "brprivate", "interface": "eth1", "cidr": "10.89.8.0/24",
           "leases": ["10.89.8.100", "10.89.8.101"]}
ALL = ["lc-a", "lc-b", "lc-c"]


@pytest.fixture(scope="module")
def lifecycle_oned(tmp_path_factory):
    with running_real_oned(tmp_path_factory) as server:
        client = server.client()
        cluster = client.cluster_allocate(CLUSTER)
        ds = client.datastore_allocate('NAME="lc-system"\nTYPE="SYSTEM_DS"\nTM_MAD="dummy"', cluster)
        ids = {name: client.host_allocate(name, "dummy", "dummy", cluster) for name in ALL}
        client.wait_hosts(list(ids.values()), timeout=120, interval=0.2)
        vm = client.call("one.vm.allocate", 'NAME="lcvm"\nCPU="0.1"\nMEMORY="64"', True)
        client.call("one.vm.deploy", vm, ids["lc-a"], False, ds)
        deadline = time.monotonic() + 60
        while client.vm_info(vm).state_name != "RUNNING":
            assert time.monotonic() < deadline, "the test VM did not start"
            time.sleep(0.2)
        yield server, client, vm, ids


def demo_site(server, work):
    """The demo site file's values for a run against ``server`` from ``work``."""
    home = work / "oneadmin"
    (home / ".one").mkdir(parents=True, exist_ok=True)
    (home / ".one" / "one_auth").write_text("oneadmin:%s\n" % server.password)
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    site["site_one_repo_key"] = str(work / "one-repo-key.asc")
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n")
    site.update(site_one_api_port=server.port, frontend_oneadmin_home=str(home))
    return site


def node_hosts():
    """The host variables of the nodes ALL (their site networks)."""
    return {name: {"site_networks": [PUBLIC, PRIVATE]} for name in ALL}

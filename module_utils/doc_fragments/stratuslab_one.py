# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation shared by the opennebula_* modules.

DOCUMENTATION: the connection options (connection_argument_spec() in
module_utils/stratuslab_one/module.py) and the check and diff mode every module
run by run_one_module() (the same file) supports.
BY_NAME_OR_ID (``stratuslab_one.by_name_or_id``): the name, id and state
options of the modules that manage one object (by_name_or_id_spec()).
HOST (``stratuslab_one.host``): options of opennebula_hosts (host_options()
in module_utils/stratuslab_one/host.py): poll_interval, and drain and
drain_targets, which empty a host before its deletion.

ansible-doc merges fragments into DOCUMENTATION only, not into RETURN, so the
result keys every module returns (actions, api_calls, one_error) stay in each
module's RETURN.
"""


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - URL of the OpenNebula XML-RPC endpoint, for example V(http://one-frontend:2633/RPC2).
      - When not set, the E(ONE_XMLRPC) environment variable is used, then V(http://localhost:2633/RPC2).
    type: str
    aliases: [api_endpoint]
  api_username:
    description:
      - OpenNebula user name.
      - When not set, it is read from the auth file named by E(ONE_AUTH), else C(~/.one/one_auth),
        which holds C(user:password) like OpenNebula's CLI expects.
    type: str
  api_password:
    description:
      - Password (or login token) of O(api_username).
      - When not set, it is read from the same auth file as O(api_username).
      - Never logged and never returned.
    type: str
    aliases: [api_token]
  validate_certs:
    description:
      - Verify the TLS certificate of an C(https://) endpoint. Set to V(false) only for self-signed test endpoints.
    type: bool
    default: true
  api_timeout:
    description:
      - Timeout in seconds of one XML-RPC request. Connection errors and LOCKED answers are retried
        with exponential backoff on top of it.
    type: int
    default: 30
  api_retry_timeout:
    description:
      - While oned refuses connections (stopped, or restarting after a configuration change), keep
        retrying a request for up to this many seconds, with exponential backoff (at most 8 s between
        tries), then fail naming oned and its endpoint.
      - V(0) fails after the few quick retries every request gets.
    type: int
    default: 60
notes:
  - Talks to oned with Python's standard C(xmlrpc.client); no OpenNebula Python binding (pyone) is needed
    on the host that runs the module.
  - The module result always holds RV(api_calls), the number of XML-RPC requests it made.
attributes:
  check_mode:
    description: In check mode the module reads from oned and predicts the result and the diff, but sends no write.
    support: full
  diff_mode:
    description: In diff mode the result holds a C(diff) with the object(s) before and after (predicted in check mode).
    support: full
"""

    BY_NAME_OR_ID = r"""
options:
  name:
    description:
      - Name of the object. Required to create it. Exactly one of O(name) and O(id) is required.
    type: str
  id:
    description:
      - ID of an existing object. V(0) is a valid ID.
      - An object cannot be created by ID (OpenNebula chooses IDs); use O(name) for that.
    type: int
  state:
    description: V(present) creates the object if needed and updates it; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
"""

    HOST = r"""
options:
  poll_interval:
    description: Longest pause in seconds between two reads while waiting.
    type: float
    default: 2.0
  drain:
    description:
      - What happens to the VMs of a host to delete (O(state=absent)) before it is deleted.
      - V(none) refuses to delete a host that still has VMs, naming them, and changes nothing on it.
      - V(live) empties it first, all its VMs together; the host is disabled (no new VM goes there), each RUNNING
        VM is live-migrated (C(one.vm.migrate) with live) and each POWEROFF or SUSPENDED VM moved, to another
        enabled (MONITORED) host of its cluster that has room for it (CPU and memory as oned counts them; the one
        with the most free memory), then the module waits until every VM runs (or is powered off or suspended
        again) on its new host, and deletes the host.
      - Every VM's new host is chosen before anything is written. A host one of whose VMs has nowhere to go, or is
        in a state that cannot migrate (booting, in a failure...), is refused with the VMs named, and left as it
        is. A migration that fails (oned puts the VM back on its host) fails the module naming the VM; the host
        stays, disabled, and a rerun moves the VMs left.
    type: str
    choices: [none, live]
    default: none
  drain_targets:
    description:
      - With O(drain=live), the only hosts (names) the VMs may move to; each must also be enabled and MONITORED, in
        the drained host's cluster. Omit to allow every such host. A host the same call disables, takes offline or
        deletes never receives VMs.
    type: list
    elements: str
"""

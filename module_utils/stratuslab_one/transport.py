# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The XML-RPC client of oned: ``OneClient``.

Standard library only (xmlrpc.client), so nothing has to be installed on the
host that runs the modules.

* ``resolve_connection``: endpoint and credentials, the way OpenNebula's CLI
  finds them (parameters, ``ONE_XMLRPC``, ``ONE_AUTH`` or ``~/.one/one_auth``).
* ``OneClient.call``: one XML-RPC method, the ``[ok, result, code, ...]``
  envelope turned into a value or a ``OneError`` subclass, retries with
  exponential backoff on connection errors and LOCKED answers (and while oned
  is down, up to ``down_timeout``), and call counters (``calls``,
  ``calls_by_method``, and ``writes``: the calls oned accepted that may have
  changed something).
* typed calls (``host_allocate``, ``vn_add_ar`` ...) and pool readers that
  return the model's objects.
* waits: ``wait_hosts``, ``wait_vnets_ready`` ... read one pool per poll,
  whatever the number of objects waited for.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import time
import xml.parsers.expat
import xmlrpc.client
from collections import Counter

from ansible.module_utils.stratuslab_one.errors import (
    ACTION, OneActionError, OneConfigError, OneConnectionError, OneError, OneFaultError, OneLockedError,
    OneNotFoundError, OneTimeoutError, error_from_response)
from ansible.module_utils.stratuslab_one.model import (
    HOST_ERROR, HOST_MONITORED, HOST_STATES, HOST_STATUS, IMAGE_ERROR, IMAGE_READY, LCM_RUNNING, VM_ACTIVE,
    VM_POWEROFF, VM_SUSPENDED, VNET_ERROR, VNET_READY, VNET_STATES,
    VNET_UPDATE_FAILURE, Cluster, Datastore, Host, Image, Pool, User, Vm, Vnet, datastore_location, parse_object,
    parse_pool)
from ansible.module_utils.stratuslab_one.template import render_template, render_vector

DEFAULT_URL = "http://localhost:2633/RPC2"
DEFAULT_AUTH_FILE = "~/.one/one_auth"


def read_auth_file(path):
    """Return (user, password) from a one_auth file (``user:password``)."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            line = handle.readline().strip()
    except OSError as exc:
        raise OneConfigError("Cannot read OpenNebula auth file %s: %s" % (path, exc.strerror))
    if ":" not in line:
        raise OneConfigError("OpenNebula auth file %s must hold 'user:password'" % path)
    user, password = line.split(":", 1)
    return user, password


def resolve_connection(api_url=None, api_username=None, api_password=None, environ=None):
    """Resolve endpoint and credentials the way OpenNebula's CLI does.

    Module parameters win; then ``ONE_XMLRPC`` for the endpoint and the file
    named by ``ONE_AUTH`` (else ``~/.one/one_auth``) for ``user:password``.
    Returns (url, username, password).
    """
    env = os.environ if environ is None else environ
    url = api_url or env.get("ONE_XMLRPC") or DEFAULT_URL
    user, password = api_username, api_password
    if not user or password is None:
        auth_file = env.get("ONE_AUTH") or DEFAULT_AUTH_FILE
        file_user, file_password = read_auth_file(auth_file)
        if not user:
            user = file_user
            if password is None:
                password = file_password
        elif password is None:
            if user != file_user:
                raise OneConfigError("api_password not given and auth file %s is for user %s, not %s"
                                     % (auth_file, file_user, user))
            password = file_password
    return url, user, password


class _OneShot:
    """Send each request once.

    xmlrpc.client's Transport.request sends a request a second time when the
    connection breaks during the first (RemoteDisconnected, ECONNRESET), even
    when oned has already carried it out: a lost answer to an allocate would
    make the object twice, or fail on the name the first call took. Whether
    to send again is OneClient.call's decision (read-only methods only).
    """

    def request(self, host, handler, request_body, verbose=False):
        return self.single_request(host, handler, request_body, verbose)


class _TimeoutTransport(_OneShot, xmlrpc.client.Transport):
    def __init__(self, timeout):
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class _TimeoutSafeTransport(_OneShot, xmlrpc.client.SafeTransport):
    def __init__(self, timeout, context):
        super().__init__(context=context)
        self._timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


def make_proxy(url, timeout=30, validate_certs=True, ca_path=None):
    """An xmlrpc.client.ServerProxy with a timeout and the TLS policy."""
    if url.lower().startswith("https://"):
        if validate_certs:
            context = ssl.create_default_context(cafile=ca_path)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        transport = _TimeoutSafeTransport(timeout, context)
    else:
        transport = _TimeoutTransport(timeout)
    # allow_none: never needed by oned, but harmless; use_builtin_types keeps str
    return xmlrpc.client.ServerProxy(url, transport=transport, allow_none=False)


# Errors that mean the request never reached oned: safe to resend anything.
_NOT_SENT_ERRORS = (ConnectionRefusedError, socket.gaierror)
# Errors during the exchange: the request may have been executed; only
# read-only methods are resent.
_EXCHANGE_ERRORS = (OSError, http.client.HTTPException)

_READ_ONLY = re.compile(r"\.(info|version|config)$|pool\.info$")


class OneClient:
    """OpenNebula XML-RPC client.

    ``send`` may be given to replace the network (tests): a callable
    ``send(method, params_tuple)`` returning the raw XML-RPC result or raising
    what xmlrpc.client would raise.
    """

    def __init__(self, url=DEFAULT_URL, username="oneadmin", password="", validate_certs=True,
                 timeout=30, retries=4, backoff=0.5, max_backoff=8.0, ca_path=None,
                 send=None, sleep=time.sleep, clock=time.monotonic, down_timeout=0):
        self.url = url
        self.username = username
        self._session = "%s:%s" % (username, password)
        self.timeout = timeout
        self.retries = max(0, int(retries))
        # While oned refuses connections (stopped, restarting), a request is
        # retried for at least this many seconds from the first refusal, on
        # top of ``retries``: a restart of oned in the middle of a run is
        # waited for, within a bound.
        self.down_timeout = max(0, down_timeout or 0)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock
        self.calls = 0
        self.calls_by_method = Counter()
        self.writes = 0
        self.retried = 0
        if send is None:
            proxy = make_proxy(url, timeout=timeout, validate_certs=validate_certs, ca_path=ca_path)

            def send(method, params):
                return getattr(proxy, method)(*params)
        self._send = send

    # -- low level ------------------------------------------------------
    def _delay(self, attempt):
        return min(self.max_backoff, self.backoff * (2 ** attempt))

    def call(self, method, *params):
        """Call ``method`` (session prepended) and return the envelope's result.

        Raises the OneError subclass matching oned's error code.  Connection
        errors before the request reached oned, and LOCKED answers, are
        retried ``retries`` times with exponential backoff; errors in the
        middle of an exchange are retried only for read-only methods.
        """
        read_only = bool(_READ_ONLY.search(method))
        attempt = 0
        refused_since = None
        while True:
            self.calls += 1
            self.calls_by_method[method] += 1
            try:
                response = self._send(method, (self._session,) + tuple(params))
            except xmlrpc.client.Fault as exc:
                raise OneFaultError("[%s] XML-RPC fault %s: %s" % (method, exc.faultCode, exc.faultString),
                                    code=exc.faultCode, method=method)
            except xmlrpc.client.ProtocolError as exc:
                retryable = exc.errcode >= 500 and read_only
                if retryable and attempt < self.retries:
                    self._retry_wait(attempt)
                    attempt += 1
                    continue
                raise OneConnectionError("[%s] HTTP %s %s from %s" % (method, exc.errcode, exc.errmsg, self.url),
                                         method=method)
            except (xmlrpc.client.ResponseError, xml.parsers.expat.ExpatError) as exc:
                raise OneConnectionError("[%s] unreadable XML-RPC answer from %s: %s" % (method, self.url, exc),
                                         method=method)
            except _EXCHANGE_ERRORS as exc:
                retryable = read_only or isinstance(exc, _NOT_SENT_ERRORS)
                refused = isinstance(exc, ConnectionRefusedError)
                if refused and refused_since is None:
                    refused_since = self._clock()
                down_for = self._clock() - refused_since if refused else 0
                if retryable and (attempt < self.retries or (refused and down_for < self.down_timeout)):
                    self._retry_wait(attempt, left=self.down_timeout - down_for if refused else None)
                    attempt += 1
                    continue
                if refused:
                    raise OneConnectionError(
                        "[%s] OpenNebula's oned does not answer at %s (%s), retried %d time(s) over %.0f s:"
                        " is oned running on the front-end (systemctl status opennebula)?"
                        % (method, self.url, exc, attempt, down_for), method=method)
                if not read_only and not isinstance(exc, _NOT_SENT_ERRORS):
                    # the request reached oned, the answer did not come back
                    raise OneConnectionError(
                        "[%s] the connection to OpenNebula's oned at %s broke during the call (%s):"
                        " oned may have carried it out" % (method, self.url, exc), method=method, interrupted=True)
                raise OneConnectionError("[%s] cannot talk to OpenNebula's oned at %s: %s" % (method, self.url, exc),
                                         method=method)
            if not isinstance(response, (list, tuple)) or not response:
                raise OneError("[%s] unexpected answer %r" % (method, response), method=method)
            if response[0]:
                if not read_only:
                    self.writes += 1
                return response[1] if len(response) > 1 else None
            error = error_from_response(method, response)
            if isinstance(error, OneLockedError) and attempt < self.retries:
                self._retry_wait(attempt)
                attempt += 1
                continue
            raise error

    def _retry_wait(self, attempt, left=None):
        self.retried += 1
        delay = self._delay(attempt)
        if left is not None and left > 0 and attempt >= self.retries:
            delay = min(delay, left)
        self._sleep(delay)

    # -- system ---------------------------------------------------------
    def version(self):
        return self.call("one.system.version")

    # -- pools ----------------------------------------------------------
    def hostpool(self):
        return Pool("host", parse_pool(Host, self.call("one.hostpool.info")))

    def clusterpool(self):
        return Pool("cluster", parse_pool(Cluster, self.call("one.clusterpool.info")))

    def vnpool(self):
        return Pool("vnet", parse_pool(Vnet, self.call("one.vnpool.info", -2, -1, -1)))

    def datastorepool(self):
        return Pool("datastore", parse_pool(Datastore, self.call("one.datastorepool.info")))

    # -- hosts ----------------------------------------------------------
    def host_info(self, host_id):
        return parse_object(Host, self.call("one.host.info", int(host_id)))

    def host_allocate(self, name, im_mad, vmm_mad, cluster_id=-1):
        return self.call("one.host.allocate", name, im_mad, vmm_mad, int(cluster_id))

    def host_delete(self, host_id):
        return self.call("one.host.delete", int(host_id))

    def host_status(self, host_id, status):
        code = HOST_STATUS[status] if isinstance(status, str) else int(status)
        return self.call("one.host.status", int(host_id), code)

    def host_update(self, host_id, template, merge=True):
        return self.call("one.host.update", int(host_id), _template_text(template), 1 if merge else 0)

    # -- clusters -------------------------------------------------------
    def cluster_info(self, cluster_id):
        return parse_object(Cluster, self.call("one.cluster.info", int(cluster_id)))

    def cluster_allocate(self, name):
        return self.call("one.cluster.allocate", name)

    def cluster_delete(self, cluster_id):
        return self.call("one.cluster.delete", int(cluster_id))

    def cluster_add(self, kind, cluster_id, obj_id):
        """kind: host, vnet or datastore. Returns the cluster id."""
        return self.call("one.cluster.add%s" % kind, int(cluster_id), int(obj_id))

    def cluster_del(self, kind, cluster_id, obj_id):
        return self.call("one.cluster.del%s" % kind, int(cluster_id), int(obj_id))

    # -- virtual networks -----------------------------------------------
    def vn_info(self, vnet_id):
        return parse_object(Vnet, self.call("one.vn.info", int(vnet_id)))

    def vn_allocate(self, template, cluster_id=-1):
        return self.call("one.vn.allocate", _template_text(template), int(cluster_id))

    def vn_update(self, vnet_id, template, merge=False):
        return self.call("one.vn.update", int(vnet_id), _template_text(template), 1 if merge else 0)

    def vn_add_ar(self, vnet_id, ar):
        return self.call("one.vn.add_ar", int(vnet_id), render_vector("AR", ar))

    def vn_update_ar(self, vnet_id, ar):
        """``ar`` must hold AR_ID. oned ignores IP, MAC and TYPE here."""
        return self.call("one.vn.update_ar", int(vnet_id), render_vector("AR", ar))

    def vn_rm_ar(self, vnet_id, ar_id, force=False):
        return self.call("one.vn.rm_ar", int(vnet_id), int(ar_id), bool(force))

    def vn_delete(self, vnet_id):
        return self.call("one.vn.delete", int(vnet_id))

    # -- datastores -----------------------------------------------------
    def datastore_info(self, ds_id):
        return parse_object(Datastore, self.call("one.datastore.info", int(ds_id)))

    def datastore_allocate(self, template, cluster_id=-1):
        return self.call("one.datastore.allocate", _template_text(template), int(cluster_id))

    def datastore_update(self, ds_id, template, merge=True):
        return self.call("one.datastore.update", int(ds_id), _template_text(template), 1 if merge else 0)

    def datastore_delete(self, ds_id):
        return self.call("one.datastore.delete", int(ds_id))

    def datastore_location(self):
        """oned.conf's DATASTORE_LOCATION: oned puts every datastore in <location>/<id>."""
        return datastore_location(self.call("one.system.config"))

    # -- images ---------------------------------------------------------
    def imagepool(self):
        """Every image the session's user may see (filter -2: all), one call."""
        return Pool("image", parse_pool(Image, self.call("one.imagepool.info", -2, -1, -1)))

    def image_info(self, image_id):
        return parse_object(Image, self.call("one.image.info", int(image_id)))

    def image_allocate(self, template, datastore_id):
        return self.call("one.image.allocate", _template_text(template), int(datastore_id))

    def image_delete(self, image_id):
        return self.call("one.image.delete", int(image_id))

    # -- users ----------------------------------------------------------
    def userpool(self):
        """Every user (oneadmin sees them all), one call."""
        return Pool("user", parse_pool(User, self.call("one.userpool.info")))

    def user_allocate(self, name, password, driver, group_ids=()):
        """A new user; without group ids oned puts it in the users group."""
        return self.call("one.user.allocate", name, password, driver, [int(gid) for gid in group_ids])

    def user_chauth(self, user_id, driver, password):
        return self.call("one.user.chauth", int(user_id), driver, password)

    def user_delete(self, user_id):
        return self.call("one.user.delete", int(user_id))

    # -- virtual machines -------------------------------------------------
    def vmpool(self):
        """Every VM not DONE that the session's user may see (filter -2: all, state -1), one call."""
        return Pool("vm", parse_pool(Vm, self.call("one.vmpool.info", -2, -1, -1, -1)))

    def vm_info(self, vm_id):
        return parse_object(Vm, self.call("one.vm.info", int(vm_id)))

    def vm_migrate(self, vm_id, host_id, live, enforce=True, ds_id=-1, migration_type=0):
        """one.vm.migrate: to host ``host_id`` (live: the VM keeps running); ``enforce`` checks its capacity."""
        return self.call("one.vm.migrate", int(vm_id), int(host_id), bool(live), bool(enforce), int(ds_id),
                         int(migration_type))

    def wait_vms_moved(self, moves, timeout=600, interval=2.0):
        """Wait until every VM of ``moves`` ({vm id: target host id}) has arrived, one one.vm.info per VM and poll.

        Arrived: the VM's last history record is on the target and the move
        is complete there: RUNNING since its running start time (a live
        migration), or POWEROFF/SUSPENDED after its prolog (a cold one).
        Right after one.vm.migrate the VM is already on the target's record,
        still RUNNING, before oned's life-cycle manager starts the move: the
        times tell the two apart. A VM back on another host (oned reverts a
        failed migration), in a failure state, or gone raises OneActionError
        naming it (``vms``: {id: Vm or None}); OneTimeoutError when time runs out.
        """
        wanted = {int(k): int(v) for k, v in moves.items()}
        state = {"vms": {}}
        if not wanted:
            return {}

        def read(vm_id):
            try:
                return self.vm_info(vm_id)
            except OneNotFoundError:
                return None

        def check():
            found = {i: read(i) for i in wanted if i not in state["vms"] or not _vm_arrived(state["vms"][i], wanted[i])}
            state["vms"].update(found)
            failed = {i: vm for i, vm in state["vms"].items() if _vm_move_failed(vm, wanted[i])}
            if failed:
                exc = OneActionError("%d VM(s) did not move: %s" % (len(failed), "; ".join(
                    "VM %s is gone" % i if vm is None else "VM %s (%s) is %s on host %s (%s)" % (
                        i, vm.name, vm.state_name, vm.hostname, vm.hid) for i, vm in sorted(failed.items()))),
                    code=ACTION, method="one.vm.info")
                exc.vms = dict(state["vms"])
                raise exc
            if all(_vm_arrived(state["vms"].get(i), target) for i, target in wanted.items()):
                return dict(state["vms"])
            return None

        def describe():
            pending = {i: vm.state_name for i, vm in state["vms"].items()
                       if vm is not None and not _vm_arrived(vm, wanted[i])}
            return {"what": "%d VM(s) to arrive on their new host" % len(pending), "vms": pending}

        try:
            return self._poll(check, timeout, interval, describe)
        except OneTimeoutError as exc:
            exc.vms = dict(state["vms"])
            raise

    # -- polling --------------------------------------------------------
    def _poll(self, check, timeout, interval, describe):
        """Call check() until it returns a non-None value, or time out."""
        deadline = self._clock() + timeout
        delay = min(interval, 0.05)  # first re-check early: oned is often quick
        while True:
            value = check()
            if value is not None:
                return value
            now = self._clock()
            if now >= deadline:
                pending = describe()
                raise OneTimeoutError("Timed out after %ss waiting for %s" % (timeout, pending["what"]),
                                      pending=pending)
            self._sleep(min(delay, max(0.0, deadline - now)))
            delay = min(interval, delay * 2)

    def _wait_ready(self, info, obj_id, ready, failing, what, method, key, timeout, interval):
        """Read ``info(obj_id)`` until the object is in state ``ready``; return it.

        A ``failing`` state raises OneActionError at once, with oned's ERROR text.
        """
        last = {}

        def check():
            obj = info(obj_id)
            last["obj"] = obj
            if obj.state == ready:
                return obj
            if obj.state in failing:
                raise OneActionError("%s %s (%s) is in state %s: %s"
                                     % (what[0].upper() + what[1:], obj.id, obj.name, obj.state_name,
                                        obj.template.get("ERROR", "no error message")),
                                     code=ACTION, method=method, resp_id=obj.id)
            return None

        def describe():
            obj = last.get("obj")
            return {"what": "%s %s to be READY (state %s)" % (what, obj_id, obj.state_name if obj else "unknown"),
                    key: obj_id}

        return self._poll(check, timeout, interval, describe)

    def _wait_gone(self, info, obj_id, what, timeout, interval):
        """Read ``info(obj_id)`` until oned answers NO_EXISTS (after a delete)."""
        def check():
            try:
                info(obj_id)
            except OneNotFoundError:
                return True
            return None
        return self._poll(check, timeout, interval, lambda: {"what": "%s %s to be deleted" % (what, obj_id)})

    def wait_vnet_ready(self, vnet_id, timeout=60, interval=1.0):
        """Wait for a vnet to leave LOCK_CREATE; return it READY or raise.

        ERROR/UPDATE_FAILURE raise OneActionError at once.
        """
        return self._wait_ready(self.vn_info, vnet_id, VNET_READY, (VNET_ERROR, VNET_UPDATE_FAILURE),
                                "virtual network", "one.vn.info", "vnet", timeout, interval)

    def wait_image_ready(self, image_id, timeout=300, interval=2.0):
        """Wait while oned's datastore driver copies the image; READY or raise (ERROR at once)."""
        return self._wait_ready(self.image_info, image_id, IMAGE_READY, (IMAGE_ERROR,), "image", "one.image.info",
                                "image", timeout, interval)

    def wait_image_gone(self, image_id, timeout=120, interval=1.0):
        return self._wait_gone(self.image_info, image_id, "image", timeout, interval)

    def _wait_settled(self, read_pool, ids, states, ok_states, fail_states, kind, method, failed_text, timeout, interval):
        """Wait for many objects of one pool together, reading the pool once per poll.

        Waits until every object is in ok_states or fail_states, or gone.
        Returns {id: object} when all are in ok_states; raises OneActionError
        when some ended in fail_states or disappeared (``failed_text(ids,
        found)`` says which) and OneTimeoutError when time runs out (its
        ``pending`` = {kind: {id: state name}}). Both exceptions carry, as
        the attribute ``kind``, the last {id: object or None} read (None: the
        object is gone), so callers need no extra read.
        """
        wanted = set(int(i) for i in ids)
        state = {"found": {}}
        if not wanted:
            return {}
        settled = set(ok_states) | set(fail_states)
        names = "/".join(states[s] for s in ok_states)

        def check():
            pool = read_pool()
            found = {i: pool.by_id.get(i) for i in wanted}
            state["found"] = found
            if any(o is not None and o.state not in settled for o in found.values()):
                return None
            failed = sorted(i for i, o in found.items() if o is None or o.state in fail_states)
            if failed:
                exc = OneActionError(failed_text(failed, found), code=ACTION, method=method)
                setattr(exc, kind, found)
                raise exc
            return found

        def describe():
            pending = {i: o.state_name for i, o in state["found"].items()
                       if o is not None and o.state not in ok_states}
            return {"what": "%d %s to be %s" % (len(pending), _NOUNS[kind], names), kind: pending}

        try:
            return self._poll(check, timeout, interval, describe)
        except OneTimeoutError as exc:
            setattr(exc, kind, state["found"])
            raise

    def wait_vnets_ready(self, vnet_ids, timeout=60, interval=1.0):
        """Wait for many vnets to leave LOCK_CREATE, one vnpool read per poll.

        Returns {id: Vnet} when all are READY.  When some end in ERROR or
        UPDATE_FAILURE it waits for the others to settle too, then raises
        OneActionError listing them; a vnet that disappears counts as failed.
        OneTimeoutError when time runs out.  Both carry ``vnets``, the last
        {id: Vnet or None} read.
        """
        def failed_text(failed, found):
            return "%d virtual network(s) not READY: %s" % (len(failed), "; ".join(
                "%s: gone" % i if found[i] is None else "%s (%s) in state %s: %s" % (
                    found[i].name, i, found[i].state_name, found[i].template.get("ERROR", "no error message"))
                for i in failed[:20]))

        return self._wait_settled(self.vnpool, vnet_ids, VNET_STATES, (VNET_READY,), (VNET_ERROR, VNET_UPDATE_FAILURE), "vnets",
                                  "one.vnpool.info", failed_text, timeout, interval)

    def wait_vnets_gone(self, vnet_ids, timeout=60, interval=1.0):
        """Wait after one.vn.delete until none of the vnets is listed, one vnpool read per poll."""
        wanted = set(int(v) for v in vnet_ids)
        state = {"left": sorted(wanted)}
        if not wanted:
            return True

        def check():
            pool = self.vnpool()
            state["left"] = sorted(i for i in wanted if i in pool.by_id)
            return None if state["left"] else True

        return self._poll(check, timeout, interval, lambda: {
            "what": "virtual network(s) %s to be deleted" % ", ".join(str(i) for i in state["left"]),
            "vnets": state["left"]})

    def wait_hosts(self, host_ids, timeout=300, interval=2.0, ok_states=(HOST_MONITORED,),
                   fail_states=(HOST_ERROR,)):
        """Wait for many hosts together (_wait_settled), reading the host pool once per poll.

        Returns {id: Host} when all are in ok_states; OneActionError lists
        the hosts in fail_states or gone with oned's TEMPLATE/ERROR text; both
        exceptions carry ``hosts``.
        """
        def failed_text(failed, found):
            return "%d host(s) in state %s or gone: %s" % (
                len(failed), "/".join(HOST_STATES[s] for s in fail_states),
                "; ".join(_failed_host(i, found[i]) for i in failed[:20]))

        return self._wait_settled(self.hostpool, host_ids, HOST_STATES, ok_states, fail_states, "hosts", "one.hostpool.info",
                                  failed_text, timeout, interval)

# The objects _wait_settled waits for: the noun of its messages.
_NOUNS = {"vnets": "virtual network(s)", "hosts": "host(s)"}


def _template_text(template):
    """A template given as OpenNebula template text, or as a dict to render."""
    return template if isinstance(template, str) else render_template(template)


def _vm_arrived(vm, target):
    if vm is None or vm.hid != target:
        return False
    if vm.state == VM_ACTIVE:
        return vm.lcm_state == LCM_RUNNING and vm.rstime > 0
    return vm.state in (VM_POWEROFF, VM_SUSPENDED) and vm.petime > 0


def _vm_move_failed(vm, target):
    """Gone, in a failure state, or settled on another host than ``target`` (a reverted migration)."""
    if vm is None:
        return True
    if vm.state_name.endswith("FAILURE"):
        return True
    if vm.hid != target:
        return vm.state in (VM_POWEROFF, VM_SUSPENDED) or (vm.state == VM_ACTIVE and vm.lcm_state == LCM_RUNNING)
    return False


def _failed_host(host_id, host):
    if host is None:
        return "host %s disappeared" % host_id
    return "%s (%s): %s" % (host.name, host.id, host.error or host.state_name)

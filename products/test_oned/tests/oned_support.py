"""Helpers for the test oned's own tests: start the test oned
(``python3 -m stratuslab_test_oned`` from products/test_oned/src) as a
subprocess on a free loopback port and talk XML-RPC to it.

Other tests that start a test oned (tests/unit, bench) import
``oned_argv``/``oned_env`` or ``OnedProcess`` from here."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
# The package's source (src layout): the tests import its modules from here
# and run it with this directory on PYTHONPATH, as the test-oned unit runs it
# from the unpacked wheel.
PKG_SRC = REPO / "products" / "test_oned" / "src"
if str(PKG_SRC) not in sys.path:
    sys.path.insert(0, str(PKG_SRC))
SESSION = "oneadmin:opennebula"


# The OpenNebula reference data, kept in the repository as test fixtures
# (captured oned 7.4.0 answers and OpenNebula's XSDs; see its README).
FIXTURES = REPO / "tests" / "fixtures" / "opennebula"
SAMPLES = FIXTURES / "samples-7.4.0"
XSD_DIR = FIXTURES / "xsd"
PYTHON3 = shutil.which("python3") or sys.executable


def oned_argv(*options, python=None):
    """The command line that runs the test oned with ``options``; run it
    with ``oned_env()`` as its environment."""
    return [python or PYTHON3, "-m", "stratuslab_test_oned"] + [str(o) for o in options]


def oned_env(env=None):
    """``env`` (default os.environ) with the package's source first on
    PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(PKG_SRC)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OnedProcess:
    """A running test oned subprocess."""

    def __init__(self, state, extra=(), port=None):
        self.state = Path(state)
        self.extra = list(extra)
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/RPC2" % self.port
        self.proc = None
        self.stderr_path = self.state.with_suffix(".stderr.%d" % self.port)

    @property
    def argv(self):
        # the command line the project relies on, plus optional extras
        return oned_argv("--listen", "127.0.0.1:%d" % self.port,
                         "--state", self.state, *self.extra)

    def start(self, attempts=3):
        """Start and wait until THIS process announces it is listening.

        Connecting to the port is not enough: between free_port() and the
        bind another process (a parallel test run) may take the port, and we
        would then talk to someone else's server.  On a bind failure the
        start is retried on a new port."""
        for attempt in range(attempts):
            if attempt:
                self.port = free_port()
                self.url = "http://127.0.0.1:%d/RPC2" % self.port
            self._err = open(self.stderr_path, "ab")
            offset = self._err.tell()
            self.proc = subprocess.Popen(self.argv, cwd=str(REPO), env=oned_env(),
                                         stdout=subprocess.DEVNULL,
                                         stderr=self._err)
            banner = "answering as oned"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if banner in self.log()[offset:] and \
                        ":%d," % self.port in self.log()[offset:]:
                    return self
                time.sleep(0.03)
            else:
                raise RuntimeError("test oned did not start: %s" % self.log())
            self._err.close()
        raise RuntimeError("test oned exited: %s" % self.log())

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.close()
        code, self.proc = self.proc.returncode, None
        return code

    def log(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def proxy(self, session=None):
        return _Proxy(xmlrpc.client.ServerProxy(self.url), session or SESSION)

    def raw(self, body, path="/RPC2", method="POST",
            content_type="text/xml"):
        """POST raw bytes; return (status, content_type, body)."""
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.port, path), data=body,
            method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers.get("Content-Type"), \
                    resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type"), err.read()


class _Proxy:
    """ServerProxy that inserts the session string as first parameter."""

    def __init__(self, proxy, session, name=""):
        self._proxy, self._session, self._name = proxy, session, name

    def __getattr__(self, attr):
        name = "%s.%s" % (self._name, attr) if self._name else attr
        return _Proxy(self._proxy, self._session, name)

    def __call__(self, *args):
        return getattr(self._proxy, self._name)(self._session, *args)


# ------------------------------------------------------------- replays
def decode(body):
    """Decoded answer: ('result', [...]) or ('fault', code, string)."""
    try:
        (values,), _ = xmlrpc.client.loads(body.decode("utf-8"))
        return ("result", values)
    except xmlrpc.client.Fault as fault:
        return ("fault", fault.faultCode, fault.faultString)


def wire_skeleton(body):
    """The raw response with string contents blanked: framing and types."""
    return re.sub(rb"<string>.*?</string>", b"<string/>", body, flags=re.S)


def replay_samples(state, samples, index, options=(), before=None):
    """POST every captured request of ``index`` in order to a fresh test
    oned and return {n: (status, content type, body)}.  before(server, n)
    runs before sample n (waits, the test clock)."""
    server = OnedProcess(state, options).start()
    answers = {}
    try:
        for entry in index:
            if before is not None:
                before(server, entry["n"])
            request = (samples / (entry["file"] + ".request.xml")).read_bytes()
            answers[entry["n"]] = server.raw(request)
    finally:
        code = server.stop()
    assert code == 0, server.log()
    return answers


def check_transport(entry, answer, recorded):
    """Compare one replayed answer (status, content type, body) with the
    recorded response bytes: HTTP status and content type, xmlrpc-c framing
    and value types, and a fault exactly.  Returns None for a fault, else
    the two decoded value lists (mine, real) for the caller to compare."""
    status, ctype, body = answer
    assert status == entry["http_status"]
    assert ctype == entry["content_type"]
    assert wire_skeleton(body) == wire_skeleton(recorded)
    mine, real = decode(body), decode(recorded)
    assert mine[0] == real[0]
    if real[0] == "fault":
        assert mine == real
        return None
    return mine[1], real[1]


def xml_payloads(index, answers):
    """(entry, XML string) of every successful answer that is a document."""
    for entry in index:
        kind, *rest = decode(answers[entry["n"]][2])
        if kind == "result" and rest[0][0] and isinstance(rest[0][1], str) \
                and rest[0][1].startswith("<"):
            yield entry, rest[0][1]


def wait_for(predicate, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met within %.1fs" % timeout)


# ----------------------------------------------------------------- XSD
NS = "http://opennebula.org/XMLSchema"
XSD_FOR_ROOT = {
    "HOST": "host.xsd", "HOST_POOL": "host_pool.xsd",
    "CLUSTER": "cluster.xsd", "CLUSTER_POOL": "cluster_pool.xsd",
    "DATASTORE": "datastore.xsd", "DATASTORE_POOL": "datastore_pool.xsd",
    "VNET": "vnet.xsd", "VNET_POOL": "vnet_pool.xsd",
    "USER": "user.xsd", "USER_POOL": "user_pool.xsd",
    # samples-accounting-7.4.0
    "VM": "vm.xsd", "VM_POOL": "vm_pool.xsd", "HISTORY_RECORDS": "acct.xsd",
    "VMTEMPLATE": "vmtemplate.xsd", "GROUP": "group.xsd",
    "ACL_POOL": "acl_pool.xsd", "SHOWBACK_RECORDS": "showback.xsd",
}
_SCHEMAS = {}
# A host never probed by the monitor has an empty HOST_SHARE/DATASTORES.
# Real oned 7.4.0 answers it that way although host.xsd requires the four
# DISK/*_DISK children; the test oned reproduces the quirk on purpose.
EMPTY_HOST_DS = "<VMS_THREAD>1</VMS_THREAD><DATASTORES></DATASTORES>"
FILLED_HOST_DS = ("<VMS_THREAD>1</VMS_THREAD><DATASTORES><DISK_USAGE>0"
                  "</DISK_USAGE><FREE_DISK>0</FREE_DISK><MAX_DISK>0</MAX_DISK>"
                  "<USED_DISK>0</USED_DISK></DATASTORES>")


def root_tag(xml_text):
    return re.match(r"<([A-Z_]+)[ >/]", xml_text).group(1)


def with_namespace(xml_text):
    tag = root_tag(xml_text)
    return xml_text.replace("<%s" % tag, '<%s xmlns="%s"' % (tag, NS), 1)


def schema_for(xml_text, xsd_dir=None, name=None):
    import xmlschema
    name = name or XSD_FOR_ROOT[root_tag(xml_text)]
    path = (xsd_dir or XSD_DIR) / name
    if path not in _SCHEMAS:
        try:
            _SCHEMAS[path] = xmlschema.XMLSchema10(str(path))
        except xmlschema.XMLSchemaModelError:
            # 6.10.5 host.xsd breaks the Unique Particle Attribution rule
            # (xs:any next to optional VCENTER_* elements); build it in lax
            # mode, which keeps the content model and still validates.
            _SCHEMAS[path] = xmlschema.XMLSchema10(str(path),
                                                   validation="lax")
    return _SCHEMAS[path]


def xsd_errors(xml_text, xsd_dir=None, name=None):
    """Schema errors; name overrides the schema chosen by the root element
    (vm_pool_extended.xsd for one.vmpool.infoextended's VM_POOL)."""
    schema = schema_for(xml_text, xsd_dir, name)
    return [str(e.reason or e) for e in
            schema.iter_errors(with_namespace(xml_text))]


def assert_valid_payload(xml_text, xsd_dir=None):
    """Validate an answer; the never-monitored host quirk is asserted, not
    ignored: the document must fail only because of it."""
    if EMPTY_HOST_DS in xml_text:
        assert xsd_errors(xml_text, xsd_dir), \
            "expected host.xsd to reject an empty HOST_SHARE/DATASTORES"
        xml_text = xml_text.replace(EMPTY_HOST_DS, FILLED_HOST_DS)
    errors = xsd_errors(xml_text, xsd_dir)
    assert not errors, "%s\n%s" % (errors[:3], xml_text[:400])
    return True

"""The test oned's command line: options, the oned.conf they may come
from, and the main loop. Not OpenNebula (see the package's docstring)."""

import argparse
import os
import secrets
import signal
import threading

from . import wire
from .constants import VERSION
from .core import Oned
from .ldap import read_ldap_auth_conf
# The object kinds' modules: importing them registers their XML-RPC methods.
from .objects import (acl, clock, clusters, datastores, hosts, images,  # noqa: F401
                      showback, system, templates, users, vms, vnets)
from .rpc import dispatch
from .store import Store
from .template import TemplateSyntaxError, parse_template_text, tget, tvectors
from .wire import CallLog, Handler, Server

# The test oned's own defaults, used for what neither the command line nor
# --oned-conf gives.
DEFAULTS = {"listen": "127.0.0.1:2633", "mac_prefix": "02:00",
            "datastore_location": "/var/lib/one//datastores"}


def read_auth(path):
    """Read a ONE_AUTH style file ('user:password').  A missing file is
    created with a random password, as oned does on its first start."""
    if path is None:
        return "oneadmin", "opennebula"
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("oneadmin:%s\n" % secrets.token_hex(16))
    with open(path) as fh:
        line = fh.readline().strip()
    if ":" not in line:
        raise SystemExit("test oned: %s must hold user:password" % path)
    user, password = line.split(":", 1)
    return user, password


def read_oned_conf(path):
    """The options an oned.conf gives (OpenNebula template syntax, read with
    the test oned's template parser): {"listen", "mac_prefix",
    "datastore_location", "ldap_auth_conf"}, each only when the file sets
    it. LDAP login is on when AUTH_MAD's AUTHN lists ldap and DEFAULT_AUTH
    is ldap, as the frontend role writes it; the test oned then reads
    auth/ldap_auth.conf beside the oned.conf, as oned's ldap driver reads
    /etc/one/auth/ldap_auth.conf. ValueError names the file."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        tpl = parse_template_text(text)
    except TemplateSyntaxError as exc:
        raise ValueError("%s: %s" % (path, exc or "syntax error")) from None
    conf = {}
    address, port = tget(tpl, "LISTEN_ADDRESS"), tget(tpl, "PORT")
    if port is not None and not port.isdigit():
        raise ValueError("%s: PORT %r is not a number" % (path, port))
    if address is not None or port is not None:
        conf["listen"] = "%s:%s" % (address or DEFAULTS["listen"].rpartition(":")[0],
                                    port or DEFAULTS["listen"].rpartition(":")[2])
    for key, option in (("MAC_PREFIX", "mac_prefix"),
                        ("DATASTORE_LOCATION", "datastore_location")):
        if tget(tpl, key) is not None:
            conf[option] = tget(tpl, key)
    authn = [name.strip() for vector in tvectors(tpl, "AUTH_MAD")
             for key, value in vector if key == "AUTHN"
             for name in value.split(",")]
    if "ldap" in authn and tget(tpl, "DEFAULT_AUTH") == "ldap":
        conf["ldap_auth_conf"] = os.path.join(
            os.path.dirname(os.path.abspath(path)), "auth", "ldap_auth.conf")
    return conf


def _from_conf(name, key):
    """Where an option's default comes from, for its help."""
    return "(default %s of --oned-conf, else %s)" % (name, DEFAULTS[key])


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python3 -m stratuslab_test_oned",
        description="test oned: an XML-RPC stand-in for OpenNebula oned "
                    "7.4.0, for tests only (it is not OpenNebula).")
    p.add_argument("--listen", default=None,
                   help="HOST:PORT to listen on " + _from_conf("LISTEN_ADDRESS:PORT", "listen"))
    p.add_argument("--state", required=True,
                   help="SQLite file holding the objects (created if missing)")
    p.add_argument("--auth", default=None,
                   help="ONE_AUTH style file 'user:password' for oneadmin "
                        "(default oneadmin:opennebula; a missing file is "
                        "created with a random password)")
    p.add_argument("--mac-prefix", default=None,
                   help="MAC_PREFIX of oned.conf " + _from_conf("MAC_PREFIX", "mac_prefix"))
    p.add_argument("--monitor-interval", type=float, default=1.0,
                   help="seconds between simulated host probes; a new host "
                        "stays INIT this long (default 1.0)")
    p.add_argument("--vnet-driver-delay", type=float, default=0.1,
                   help="seconds the simulated vnm driver takes to answer "
                        "(LOCK_CREATE -> READY, LOCK_DELETE -> gone; "
                        "default 0.1)")
    p.add_argument("--unreachable-hosts", action="append", default=[],
                   metavar="GLOB",
                   help="host names whose simulated probe fails (state "
                        "ERROR), like an unreachable KVM node; repeatable")
    p.add_argument("--datastore-location", default=None,
                   help="DATASTORE_LOCATION used for BASE_PATH "
                        + _from_conf("DATASTORE_LOCATION", "datastore_location"))
    p.add_argument("--pidfile", default=None, help="write the pid here")
    p.add_argument("--ldap-uri", default=None, metavar="URI",
                   help="authenticate unknown users (and AUTH_DRIVER ldap "
                        "users) by an LDAP simple bind here, ldaps:// or "
                        "ldap:// with StartTLS, as OpenNebula's ldap driver")
    p.add_argument("--ldap-base-dn", default=None, metavar="DN",
                   help="base DN; users are uid=NAME,ou=people,DN")
    p.add_argument("--ldap-ca", default=None, metavar="FILE",
                   help="CA certificate that signed the LDAP server's")
    p.add_argument("--ldap-auth-conf", default=None, metavar="FILE",
                   help="authenticate as OpenNebula's ldap driver does with "
                        "this ldap_auth.conf (read at each login): the first "
                        "server of :order:, the user found by :user_field: "
                        "under :base:, then a bind as that entry")
    p.add_argument("--oned-conf", default=None, metavar="FILE",
                   help="take LISTEN_ADDRESS, PORT, MAC_PREFIX, "
                        "DATASTORE_LOCATION and LDAP login (AUTH_MAD's AUTHN "
                        "lists ldap and DEFAULT_AUTH is ldap: auth/"
                        "ldap_auth.conf beside FILE) from this oned.conf; "
                        "options given on the command line win")
    opts = p.parse_args(argv)
    if opts.oned_conf:
        try:
            conf = read_oned_conf(opts.oned_conf)
        except (OSError, ValueError) as exc:
            p.error("--oned-conf: %s" % exc)
        for key, value in conf.items():
            if getattr(opts, key) is None and not (
                    key == "ldap_auth_conf" and opts.ldap_uri):
                setattr(opts, key, value)
    for key, value in DEFAULTS.items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    if opts.ldap_uri and not opts.ldap_base_dn:
        p.error("--ldap-uri needs --ldap-base-dn")
    if opts.ldap_uri and opts.ldap_auth_conf:
        p.error("give --ldap-uri or --ldap-auth-conf, not both")
    if opts.ldap_auth_conf:
        try:
            read_ldap_auth_conf(opts.ldap_auth_conf)
        except (OSError, ValueError) as exc:
            p.error("--ldap-auth-conf: %s" % exc)
    host, sep, port = opts.listen.rpartition(":")
    if not sep or not port.isdigit():
        p.error("--listen must be HOST:PORT")
    opts.host, opts.port = host or "0.0.0.0", int(port)
    opts.datastore_location = opts.datastore_location.rstrip("/") or "/"
    opts.admin = read_auth(opts.auth)
    return opts


def main(argv=None):
    opts = parse_args(argv)
    wire.LOG = log = CallLog()
    store = Store(opts.state)
    oned = Oned(store, opts)
    server = Server((opts.host, opts.port), Handler)
    server.oned = oned
    server.dispatch = dispatch
    if opts.pidfile:
        with open(opts.pidfile, "w") as fh:
            fh.write("%d\n" % os.getpid())

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.emit("test oned (not OpenNebula) answering as oned %s on %s:%d, "
             "state in %s" % (VERSION, opts.host, server.server_address[1],
                              opts.state))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        with oned.lock:
            store.close()
        if opts.pidfile:
            try:
                os.unlink(opts.pidfile)
            except OSError:
                pass
        log.emit("test oned stopped")
        log.close()
        if log.thread.is_alive():
            # The log writer is stuck on a stderr pipe that nobody reads:
            # the interpreter's own flush of stderr at exit would wait for
            # it forever. The state is closed; leave without that flush.
            os._exit(0)
    return 0

"""A real OpenLDAP slapd for unit tests, shared by the accounting tests and
the test oned's LDAP tests (one copy of what both had written out).

slapd runs as a subprocess on two loopback ports (ldaps and plain ldap) with
its cn=config and mdb database in a temporary directory, TLS from a
throw-away CA, and simple binds refused without TLS (olcSecurity
simple_bind=128), as the site's LDAP server refuses them. Users' passwords
are stored as {SSHA} hashes made by slappasswd.

    tls = make_tls(tmp, "my test CA")
    with running_slapd(tmp, tls, "dc=x,dc=test", data_ldif) as server:
        server["ldaps"], server["ldap"], server["ca"], server["log"]

`make deps` installs slapd, ldap-utils and openssl (Makefile APT_PACKAGES);
callers skip with missing_tools() when they are not there.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import time

SBIN = ("/usr/sbin", "/usr/bin")
SERVER_TOOLS = ("slapd", "slapadd", "slappasswd", "openssl")


def which(tool):
    """The tool's path (also from /usr/sbin when PATH lacks it), or None."""
    return shutil.which(tool) or next(
        (os.path.join(d, tool) for d in SBIN if os.access(os.path.join(d, tool), os.X_OK)), None)


def missing_tools(tools=SERVER_TOOLS):
    """Why slapd cannot run here (a sentence naming the missing tools), or None."""
    missing = [t for t in tools if not which(t)]
    if not missing:
        return None
    return "%s missing (make deps installs slapd and ldap-utils)" % ", ".join(missing)


def run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)
    if proc.returncode:
        raise RuntimeError("%s: %s%s" % (" ".join(map(str, argv)), proc.stdout, proc.stderr[-500:]))
    return proc.stdout


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port):
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def make_tls(tmp, ca_name):
    """A CA and a server certificate for 127.0.0.1 and localhost signed by
    it, in directory tmp: {"ca", "cert", "key"} (paths as strings).

    Clients should name 127.0.0.1: for "localhost" libldap checks the
    certificate against the machine's own host name instead."""
    ssl = which("openssl")
    ca_key, ca_crt = tmp / "ca.key", tmp / "ca.crt"
    key, csr, crt = tmp / "server.key", tmp / "server.csr", tmp / "server.crt"
    run([ssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=" + ca_name,
         "-keyout", str(ca_key), "-out", str(ca_crt), "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run([ssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(csr)])
    ext = tmp / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run([ssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(crt)])
    os.chmod(key, 0o644)  # slapd may run as another user; a test key only
    return {"ca": str(ca_crt), "cert": str(crt), "key": str(key)}


CONFIG_LDIF = """\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {tmp}/slapd.pid
olcTLSCACertificateFile: {ca}
olcTLSCertificateFile: {crt}
olcTLSCertificateKeyFile: {key}
olcSecurity: simple_bind=128

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{includes}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {tmp}/db
olcSuffix: {base}
olcRootDN: cn=admin,{base}
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * {read}
"""


def user_ldif(base_dn, users):
    """inetOrgPerson entries uid=<uid>,ou=people,<base_dn> with {SSHA} passwords."""
    out = []
    for uid, password in users.items():
        hashed = run([which("slappasswd"), "-h", "{SSHA}", "-s", password]).strip()
        out.append("dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n"
                   "userPassword: %s\n" % (uid, base_dn, uid, uid, uid, hashed))
    return out


@contextlib.contextmanager
def running_slapd(tmp, tls, base_dn, data_ldif, schemas=("core", "cosine", "inetorgperson"),
                  read="by * read", timeout=20):
    """slapd serving base_dn (entries: data_ldif) from directory tmp.

    schemas: Debian's /etc/ldap/schema files to load; read: who may read
    entries other than passwords (an olcAccess "by" clause). Yields
    {"ldaps", "ldap", "ca", "log"}; stops slapd on exit."""
    (tmp / "db").mkdir(parents=True)
    (tmp / "slapd.d").mkdir()
    includes = "\n".join("include: file:///etc/ldap/schema/%s.ldif" % s for s in schemas)
    (tmp / "config.ldif").write_text(CONFIG_LDIF.format(
        tmp=tmp, ca=tls["ca"], crt=tls["cert"], key=tls["key"], base=base_dn, includes=includes, read=read))
    (tmp / "data.ldif").write_text(data_ldif)
    run([which("slapadd"), "-n0", "-F", str(tmp / "slapd.d"), "-l", str(tmp / "config.ldif")])
    run([which("slapadd"), "-n1", "-F", str(tmp / "slapd.d"), "-l", str(tmp / "data.ldif")])
    ldaps_port, ldap_port = free_port(), free_port()
    log_path = tmp / "slapd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [which("slapd"), "-d", "0", "-F", str(tmp / "slapd.d"),
             "-h", "ldaps://127.0.0.1:%d/ ldap://127.0.0.1:%d/" % (ldaps_port, ldap_port)],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not (listening(ldaps_port) and listening(ldap_port)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("slapd did not start: %s" % log_path.read_text(errors="replace"))
                time.sleep(0.05)
            yield {"ldaps": "ldaps://127.0.0.1:%d" % ldaps_port, "ldap": "ldap://127.0.0.1:%d" % ldap_port,
                   "ca": tls["ca"], "log": log_path}
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

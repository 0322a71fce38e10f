"""Fixtures of the accounting tests: the package on sys.path, stores
(SQLite, and PostgreSQL in a throwaway cluster), a real slapd with TLS, TLS
material for the API."""

import os
import shutil
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from acct_testlib import PKG_PARENT, ROOT, listening, wait_for  # noqa: E402,F401
from acct_pgcluster import PgCluster, free_port, pg_bindir  # noqa: E402
from stratuslab_accounting.store import PostgreSQLStore, SQLiteStore  # noqa: E402

from acct_ldap import BASE_DN, USERS  # noqa: E402


def run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode:
        raise RuntimeError("%s: %s" % (" ".join(cmd), proc.stderr[-500:]))
    return proc.stdout




# ------------------------------------------------------------------ stores
@pytest.fixture(scope="session")
def pg_cluster():
    if pg_bindir() is None:
        pytest.skip("PostgreSQL binaries missing (make deps installs postgresql)")
    cluster = PgCluster(fsync=False).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def new_pg_store(cluster):
    name = "t_" + uuid.uuid4().hex[:12]
    cluster.psql("CREATE DATABASE %s OWNER %s" % (name, cluster.user))
    kw = cluster.kwargs()
    kw["dbname"] = name
    return PostgreSQLStore(**kw)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        st = SQLiteStore(str(tmp_path / "acct.sqlite"))
    else:
        st = new_pg_store(request.getfixturevalue("pg_cluster"))
    st.migrate()
    yield st
    st.close()


# ------------------------------------------------------------------ TLS
@pytest.fixture(scope="session")
def tls(tmp_path_factory):
    """A CA, and a server certificate for 127.0.0.1/localhost signed by it."""
    if not shutil.which("openssl"):
        pytest.skip("openssl missing")
    tmp = tmp_path_factory.mktemp("tls")
    ca_key, ca_crt, key, csr, crt = (tmp / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=acct test CA",
         "-keyout", str(ca_key), "-out", str(ca_crt), "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(csr)])
    (tmp / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(tmp / "ext"), "-out", str(crt)])
    os.chmod(key, 0o644)  # slapd may run as another user; a test key only
    return {"ca": str(ca_crt), "cert": str(crt), "key": str(key)}


# ------------------------------------------------------------------ slapd
SLAPD_CONFIG = """\
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

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

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
olcAccess: {{1}}to * by users read by * none
"""


def slapd_data():
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: acct\no: acct test\n" % BASE_DN,
           "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n" % BASE_DN,
           "dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n" % BASE_DN]
    for uid, password in USERS.items():
        hashed = run(["slappasswd", "-h", "{SSHA}", "-s", password]).strip()
        out.append("dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\n"
                   "userPassword: %s\n" % (uid, BASE_DN, uid, uid, uid, hashed))
    # posixGroup: memberUid (carol); groupOfNames: member DN (dave)
    out.append("dn: cn=accounting-admins,ou=groups,%s\nobjectClass: posixGroup\ncn: accounting-admins\n"
               "gidNumber: 5000\nmemberUid: carol\n" % BASE_DN)
    out.append("dn: cn=acct-admins-gon,ou=groups,%s\nobjectClass: groupOfNames\ncn: acct-admins-gon\n"
               "member: uid=dave,ou=people,%s\n" % (BASE_DN, BASE_DN))
    return "\n".join(out)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory, tls):
    for tool in ("slapd", "slapadd", "slappasswd"):
        if not (shutil.which(tool) or os.path.exists("/usr/sbin/" + tool)):
            pytest.skip("%s missing (apt-get install slapd)" % tool)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"
    tmp = tmp_path_factory.mktemp("slapd")
    (tmp / "db").mkdir()
    (tmp / "slapd.d").mkdir()
    (tmp / "config.ldif").write_text(SLAPD_CONFIG.format(tmp=tmp, ca=tls["ca"], crt=tls["cert"],
                                                         key=tls["key"], base=BASE_DN))
    (tmp / "data.ldif").write_text(slapd_data())
    run(["slapadd", "-n0", "-F", str(tmp / "slapd.d"), "-l", str(tmp / "config.ldif")])
    run(["slapadd", "-n1", "-F", str(tmp / "slapd.d"), "-l", str(tmp / "data.ldif")])
    ldaps_port, ldap_port = free_port(), free_port()
    log = open(tmp / "slapd.log", "wb")
    proc = subprocess.Popen(["slapd", "-d", "0", "-F", str(tmp / "slapd.d"), "-h",
                             "ldaps://127.0.0.1:%d/ ldap://127.0.0.1:%d/" % (ldaps_port, ldap_port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for(lambda: listening(ldaps_port) and listening(ldap_port)):
            pytest.fail("slapd did not start: %s" % (tmp / "slapd.log").read_text(errors="replace"))
        yield {"ldaps": "ldaps://127.0.0.1:%d" % ldaps_port, "ldap": "ldap://127.0.0.1:%d" % ldap_port,
               "ca": tls["ca"], "user_dn": "uid={user},ou=people,%s" % BASE_DN,
               "group_base": "ou=groups,%s" % BASE_DN}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()

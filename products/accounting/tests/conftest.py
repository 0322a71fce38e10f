"""Fixtures of the accounting tests: the package on sys.path, stores
(SQLite, and PostgreSQL in a throwaway cluster), a real slapd with TLS, TLS
material for the API."""

import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# acct_testlib puts the package's source and tests/unit (slapd_testlib) on sys.path.
from acct_testlib import PKG_PARENT, ROOT, listening, wait_for  # noqa: E402,F401
from acct_pgcluster import PgCluster, pg_bindir  # noqa: E402
from stratuslab_accounting.store import PostgreSQLStore, SQLiteStore  # noqa: E402

from acct_ldap import BASE_DN, USERS  # noqa: E402
from slapd_testlib import make_tls, missing_tools, running_slapd, user_ldif  # noqa: E402


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
    reason = missing_tools(("openssl",))
    if reason:
        pytest.skip(reason)
    return make_tls(tmp_path_factory.mktemp("tls"), "acct test CA")


# ------------------------------------------------------------------ slapd
def slapd_data():
    out = ["dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: acct\no: acct test\n" % BASE_DN,
           "dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n" % BASE_DN,
           "dn: ou=groups,%s\nobjectClass: organizationalUnit\nou: groups\n" % BASE_DN]
    out += user_ldif(BASE_DN, USERS)
    # posixGroup: memberUid (carol); groupOfNames: member DN (dave)
    out.append("dn: cn=accounting-admins,ou=groups,%s\nobjectClass: posixGroup\ncn: accounting-admins\n"
               "gidNumber: 5000\nmemberUid: carol\n" % BASE_DN)
    out.append("dn: cn=acct-admins-gon,ou=groups,%s\nobjectClass: groupOfNames\ncn: acct-admins-gon\n"
               "member: uid=dave,ou=people,%s\n" % (BASE_DN, BASE_DN))
    return "\n".join(out)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory, tls):
    """slapd with the accounting users and both kinds of admin group;
    entries readable by bound users only."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"
    with running_slapd(tmp_path_factory.mktemp("slapd"), tls, BASE_DN, slapd_data(),
                       schemas=("core", "cosine", "nis", "inetorgperson"),
                       read="by users read by * none") as server:
        yield dict(server, user_dn="uid={user},ou=people,%s" % BASE_DN, group_base="ou=groups,%s" % BASE_DN)

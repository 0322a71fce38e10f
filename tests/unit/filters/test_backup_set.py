"""Unit tests of roles/backup/filter_plugins/backup_set.py (run: .venv/bin/pytest tests/unit/filters -q)."""

import base64
import hashlib
import importlib.util
import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from filter_testlib import REPO

_SPEC = importlib.util.spec_from_file_location(
    "backup_set_under_test", REPO / "roles" / "backup" / "filter_plugins" / "backup_set.py")
backup = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(backup)

ROOT = "/backups/demo-20240101T000000Z"


def _found(files):
    return [{"path": ROOT + "/" + name, "checksum": hashlib.sha256(text.encode()).hexdigest()}
            for name, text in files.items()]


FILES = {"set.yml": "format: 1\n", "ldap/data.ldif": "dn: dc=x\n", "opennebula/onedb.sql": "COMMIT;\n"}


def test_sums_are_sorted_relative_and_leave_sha256sums_out():
    text = backup.backup_sums(_found(dict(FILES, SHA256SUMS="old")), ROOT)
    assert [line.split("  ")[1] for line in text.splitlines()] == ["ldap/data.ldif", "opennebula/onedb.sql", "set.yml"]
    assert text.endswith("\n")


def test_sums_are_what_sha256sum_checks(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = [{"path": str(tmp_path / name), "checksum": hashlib.sha256(text.encode()).hexdigest()}
             for name, text in FILES.items()]
    (tmp_path / "SHA256SUMS").write_text(backup.backup_sums(found, str(tmp_path)))
    proc = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("bad", [{"path": "/elsewhere/x", "checksum": "0" * 64},
                                 {"path": ROOT + "/x", "checksum": "da39a3ee"}, "x"])
def test_sums_refuse_a_file_outside_the_set_or_without_sha256(bad):
    with pytest.raises(AnsibleFilterError):
        backup.backup_sums([bad], ROOT)


def test_a_good_set_has_no_error():
    sums = backup.backup_sums(_found(FILES), ROOT)
    assert backup.backup_set_errors(_found(dict(FILES, SHA256SUMS=sums)), sums, ROOT) == []


def test_every_flaw_of_a_set_is_named():
    sums = backup.backup_sums(_found(FILES), ROOT)
    found = _found({"set.yml": "format: 1\n", "ldap/data.ldif": "dn: dc=forged\n", "extra.sh": "true\n"})
    errors = "\n".join(backup.backup_set_errors(found, sums, ROOT, "backup_restore_set"))
    assert "ldap/data.ldif has SHA-256" in errors and "changed or damaged" in errors
    assert "opennebula/onedb.sql is listed in SHA256SUMS but missing" in errors
    assert "extra.sh is in the set but not in SHA256SUMS" in errors
    assert "(backup_restore_set)" in errors


@pytest.mark.parametrize("sums, words", [
    (None, "has no SHA256SUMS"),
    ("", "has no SHA256SUMS"),
    ("not a line\n", "line 1 of SHA256SUMS is not"),
    ("%s  ../etc/passwd\n" % ("0" * 64), "not a plain path"),
    ("%s  /etc/passwd\n" % ("0" * 64), "not a plain path"),
    ("%s  set.yml\n%s  set.yml\n" % ("0" * 64, "0" * 64), "a second time"),
    ("%s  ldap/data.ldif\n" % hashlib.sha256(b"dn: dc=x\n").hexdigest(), "does not list set.yml"),
])
def test_a_bad_sha256sums_is_refused(sums, words):
    errors = "\n".join(backup.backup_set_errors(_found({"ldap/data.ldif": "dn: dc=x\n"}), sums, ROOT))
    assert words in errors, errors


MANIFEST = {"format": 1, "site": "demo", "parts": {
    "opennebula": {"host": "one", "database": "sqlite"}, "ldap": {"host": "svc"},
    "accounting": {"host": "one", "store": "postgresql"}}}
HOSTS = {"opennebula": "one", "ldap": "svc", "accounting": "one", "repository": ""}


def test_a_manifest_of_this_site_is_accepted():
    assert backup.backup_manifest_errors(MANIFEST, "demo", HOSTS, "sqlite", "postgresql") == []


@pytest.mark.parametrize("manifest, args, words", [
    (dict(MANIFEST, format=2), {}, "format 2"),
    (dict(MANIFEST, site="other"), {}, "made on the site 'other'"),
    (dict(MANIFEST, parts={}), {}, "names no part"),
    (dict(MANIFEST, parts={"nodes": {}}), {}, "the part 'nodes'"),
    (MANIFEST, {"hosts": dict(HOSTS, ldap="")}, "no host in group ldap"),
    (MANIFEST, {"one_database": "mysql"}, "site_one_database is mysql"),
    (MANIFEST, {"accounting_store": "sqlite"}, "site_accounting_store is sqlite"),
    ("text", {}, "not a mapping"),
])
def test_a_manifest_that_does_not_fit_is_refused(manifest, args, words):
    call = dict({"hosts": HOSTS, "one_database": "sqlite", "accounting_store": "postgresql"}, **args)
    errors = "\n".join(backup.backup_manifest_errors(manifest, "demo", call["hosts"], call["one_database"],
                                                     call["accounting_store"]))
    assert words in errors, errors


def test_force_accepts_another_sites_set():
    assert backup.backup_manifest_errors(dict(MANIFEST, site="other"), "demo", HOSTS, "sqlite", "postgresql",
                                         force=True) == []


def test_lost_objects_are_those_the_set_does_not_have_by_id_and_name():
    live = {"VNET": [[0, "public"], [1, "private"], [2, "extra"]], "USER": [[0, "oneadmin"], [3, "alice"]]}
    saved = {"VNET": [[0, "public"], [1, "other-name"]], "USER": [[0, "oneadmin"]]}
    assert backup.backup_lost_objects(live, saved) == ["USER 3 'alice'", "VNET 1 'private'", "VNET 2 'extra'"]
    assert backup.backup_lost_objects(saved, saved) == []
    with pytest.raises(AnsibleFilterError):
        backup.backup_lost_objects(live, None)


def test_ldif_dns_unfold_decode_and_normalise():
    encoded = base64.b64encode("uid=zoë,ou=people,dc=x".encode()).decode()
    ldif = ("dn: dc=x\nobjectClass: top\n\ndn: uid=alice, ou=People,\n dc=x\ncn: Alice\n\n"
            "dn:: %s\ncn: Zoë\n" % encoded)
    assert backup.backup_ldif_dns(ldif) == ["dc=x", "uid=alice,ou=people,dc=x", "uid=zoë,ou=people,dc=x"]
    assert backup.backup_normal_dns(["UID=Alice, ou=people,dc=X"]) == ["uid=alice,ou=people,dc=x"]


def test_file_entries_keep_directories_and_files_sorted_without_links():
    stats = [{"path": "/etc/ldap/tls/", "isdir": True, "pw_name": "root", "gr_name": "openldap", "mode": "0750"},
             {"path": "/etc/ldap/tls/site-ca.key", "isreg": True, "pw_name": "root", "gr_name": "root", "mode": "0600"},
             {"path": "/etc/ldap/tls/link", "islnk": True, "isreg": True},
             {"path": "/etc/ldap/tls", "isdir": True, "pw_name": "root", "gr_name": "openldap", "mode": "0750"}]
    entries = backup.backup_file_entries(stats)
    assert [(e["path"], e["type"]) for e in entries] == [("/etc/ldap/tls", "directory"),
                                                         ("/etc/ldap/tls/site-ca.key", "file")]
    assert entries[1]["mode"] == "0600" and entries[0]["group"] == "openldap"


def test_expired_sets_are_the_oldest_beyond_keep_of_the_prefix_only():
    names = ["demo-20240103T000000Z", "demo-20240101T000000Z", "demo-20240102T000000Z",
             "other-20230101T000000Z", "demo-notes", "demo-20240104T000000Z"]
    assert backup.backup_expired(names, "demo", 2) == ["demo-20240102T000000Z", "demo-20240101T000000Z"]
    assert backup.backup_expired(names, "demo", 10) == []
    for keep in (0, -1, "2", True):
        with pytest.raises(AnsibleFilterError):
            backup.backup_expired(names, "demo", keep)


def test_the_filter_module_names_every_filter():
    names = backup.FilterModule().filters()
    assert all(name.startswith("backup_") for name in names) and "backup_sums" in names

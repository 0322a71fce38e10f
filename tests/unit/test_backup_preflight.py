"""The backup role refuses a bad backup section, a bad set and a bad inventory before anything changes.

The role's own entry points, tasks_from backup.yml and restore.yml, run in
check mode with ansible-playbook on this machine (connection local: in check
mode they only run their preflight), in one run per entry point for every
case: one local host per case, the values of a good site file as the
inventory's group vars and the case's mistake as its host vars. The parts'
hosts (the front-end, the LDAP host...) are other hosts of the inventory,
not in the play, so no case reaches a service. Each case's host must fail
with a message naming the variable to fix; the good hosts must pass; and the
check runs write nothing in the backup directory.

The restore's cases read sets made here: a good one, and copies with one
flaw each (a file changed after the set was made, a file missing, a file
added, no SHA256SUMS, another site's set, another database).
"""

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from preflight_testlib import assert_refused, case_host, run_cases

ENTRY_PLAY = """\
- name: Run the backup role's {entry} entry point in check mode
  hosts: cases
  gather_facts: false
  tasks:
    - name: Run tasks_from {entry}.yml
      ansible.builtin.include_role:
        name: backup
        tasks_from: {entry}.yml
"""

# The site's other hosts, which hold the parts (not in the play).
OTHERS = {"frontend": {"one": {}}, "ldap": {"svc": {}}, "accounting": {"one": {}}, "repository": {"svc": {}}}

SITE = {
    "site_name": "demo",
    "site_one_install": "packages",
    "site_one_database": "sqlite",
    "site_one_api_port": 2633,
    "site_ldap_deploy": True,
    "site_ldap_base_dn": "dc=demo,dc=stratuslab,dc=test",
    "site_accounting_store": "postgresql",
    "site_backup_keep": 7,
}
GOOD_SET = "demo-20240101T000000Z"
OLDER_SET = "demo-20230101T000000Z"


def _write_set(path, site="demo", parts=None, extra=None):
    """A set directory as the backup writes it: its files, set.yml, SHA256SUMS."""
    path.mkdir(parents=True, mode=0o700)
    files = {"repository/files/etc/ssl/stratuslab-appliances/server.crt": "CERT\n"}
    files.update(extra or {})
    manifest = {"format": 1, "site": site, "name": path.name,
                "parts": parts if parts is not None else {"repository": {"host": "svc", "files": [
                    {"path": "/etc/ssl/stratuslab-appliances/server.crt", "type": "file",
                     "owner": "root", "group": "root", "mode": "0644"}]}}}
    files["set.yml"] = yaml.safe_dump(manifest)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    sums = "".join("%s  %s\n" % (hashlib.sha256(text.encode()).hexdigest(), name) for name, text in sorted(files.items()))
    (path / "SHA256SUMS").write_text(sums, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """A backup directory with a good set, an older one, and a set per flaw; an empty directory; a file."""
    root = tmp_path_factory.mktemp("backup_sets")
    sets = root / "sets"
    sets.mkdir(mode=0o700)
    _write_set(sets / OLDER_SET)
    _write_set(sets / GOOD_SET)
    tampered = _write_set(sets / "demo-tampered")
    (tampered / "repository/files/etc/ssl/stratuslab-appliances/server.crt").write_text("FORGED\n", encoding="utf-8")
    missing = _write_set(sets / "demo-missing")
    (missing / "repository/files/etc/ssl/stratuslab-appliances/server.crt").unlink()
    added = _write_set(sets / "demo-added")
    (added / "repository/evil.sh").write_text("true\n", encoding="utf-8")
    unsummed = _write_set(sets / "demo-unsummed")
    (unsummed / "SHA256SUMS").unlink()
    _write_set(sets / "other-site", site="elsewhere")
    _write_set(sets / "demo-mysql", parts={"opennebula": {"host": "one", "database": "mysql", "objects": {}}})
    _write_set(sets / "demo-ldap", parts={"ldap": {"host": "svc", "base_dn": "dc=demo,dc=stratuslab,dc=test"}})
    # A directory whose only set is incomplete (a backup that stopped half-way).
    partial = root / "partial"
    partial.mkdir(mode=0o700)
    _write_set(partial / GOOD_SET)
    (partial / GOOD_SET / "SHA256SUMS").unlink()
    (root / "a-file").write_text("not a directory\n", encoding="utf-8")
    return root


def _snapshot(root):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


# --- backup -------------------------------------------------------------------

BACKUP_BAD = {
    "dir-missing": ({"site_backup_dir": "{root}/nowhere"}, ["site_backup_dir (backup_dir) is ",
                                                            "which does not exist on the control machine"]),
    "dir-a-file": ({"site_backup_dir": "{root}/a-file"}, ["site_backup_dir (backup_dir) is ", "not a directory"]),
    "dir-empty": ({"site_backup_dir": ""}, ["site_backup_dir (backup_dir) is ''", "an absolute path"]),
    "dir-relative": ({"site_backup_dir": "backups"}, ["site_backup_dir (backup_dir) is 'backups'", "an absolute path"]),
    "keep-0": ({"site_backup_keep": 0}, ["site_backup_keep (backup_keep) is 0", "a whole number, at least 1"]),
    "keep-negative": ({"site_backup_keep": -3}, ["site_backup_keep (backup_keep) is -3", "at least 1"]),
    "keep-text": ({"site_backup_keep": "many"}, ["site_backup_keep (backup_keep) is 'many'", "at least 1"]),
    "keep-bool": ({"site_backup_keep": True}, ["site_backup_keep (backup_keep) is true", "at least 1"]),
    "prefix": ({"site_name": "demo/site"}, ["site_name (backup_name_prefix) is \"demo/site\"", "a file name"]),
    "test-oned": ({"site_one_install": "test_oned"}, ["site_one_install (backup_one_install) is test_oned"]),
    "mysql-keys": ({"site_one_database": "mysql", "site_one_mysql": {"host": "db", "user": "oneadmin"}},
                   ["site_one_mysql (backup_one_mysql)", "missing: password, database"]),
    "database": ({"site_one_database": "postgres"}, ["site_one_database (backup_one_database)", "sqlite, mysql"]),
    "store": ({"site_accounting_store": "mysql"}, ["site_accounting_store (backup_accounting_store)", "postgresql, sqlite"]),
    "ldap-base-dn": ({"site_ldap_base_dn": ""}, ["site_ldap_base_dn (backup_ldap_base_dn) is empty"]),
    "files-part": ({"backup_files": {"nodes": ["/etc/ssh"]}}, ["backup_files has the part \"nodes\""]),
    "files-relative": ({"backup_files": {"ldap": ["etc/ldap/tls"]}}, ["backup_files.ldap item 0 \"etc/ldap/tls\"",
                                                                      "not an absolute path"]),
    "nothing": ({"backup_frontend_host": "", "backup_ldap_host": "", "backup_accounting_host": "",
                 "backup_repository_host": ""}, ["nothing to back up"]),
    "port": ({"site_one_api_port": 70000}, ["site_one_api_port (backup_one_api_port) is 70000", "between 1 and 65535"]),
}
# A host that is itself the front-end: its tools are looked for here, where
# OpenNebula is not installed.
TOOLS_CASE = "case_tools"


@pytest.fixture(scope="module")
def backup_run(sets, tmp_path_factory):
    before = _snapshot(sets / "sets")
    hosts = {case_host(name): {k: (v.format(root=sets) if isinstance(v, str) else v) for k, v in changes.items()}
             for name, (changes, _) in BACKUP_BAD.items()}
    hosts.update(control={}, case_all_at_once={"site_backup_keep": 0, "site_backup_dir": str(sets / "nowhere")})
    hosts[TOOLS_CASE] = {"backup_frontend_host": TOOLS_CASE}
    run = run_cases(tmp_path_factory.mktemp("backup_preflight"), ENTRY_PLAY.format(entry="backup"),
                    dict(OTHERS, cases=hosts), site=dict(SITE, site_backup_dir=str(sets / "sets")), args=["--check"])
    run.written = _snapshot(sets / "sets") != before
    return run


def test_backup_good_values_pass(backup_run):
    assert backup_run.passed("control"), backup_run.failures("control") or backup_run.output[-3000:]


@pytest.mark.parametrize("name", sorted(BACKUP_BAD))
def test_backup_bad_values_fail_naming_the_variable(backup_run, name):
    assert_refused(backup_run, case_host(name), *BACKUP_BAD[name])


def test_backup_reports_every_broken_rule_at_once(backup_run):
    output = backup_run.failures("case_all_at_once")
    assert "site_backup_keep (backup_keep) is 0" in output and "does not exist on the control machine" in output, output


def test_backup_refuses_a_part_host_without_its_tools(backup_run):
    output = backup_run.failures(TOOLS_CASE)
    if Path("/usr/bin/onedb").exists():
        pytest.skip("OpenNebula's onedb is installed on this machine")
    assert "has no /usr/bin/onedb" in output and "site.yml" in output, output


def test_backup_check_mode_writes_nothing(backup_run):
    assert backup_run.passed("control")
    assert not backup_run.written, "the check run wrote into the backup directory"


# --- restore ------------------------------------------------------------------

RESTORE_BAD = {
    "set-empty": ({"site_backup_restore_set": ""}, ["site_backup_restore_set (backup_restore_set) is empty"]),
    "set-missing": ({"site_backup_restore_set": "demo-20990101T000000Z"},
                    ["site_backup_restore_set (backup_restore_set) names the set", "demo-20990101T000000Z",
                     "does not exist"]),
    "set-path-missing": ({"site_backup_restore_set": "{root}/elsewhere/demo-x"}, ["elsewhere/demo-x", "does not exist"]),
    "set-name": ({"site_backup_restore_set": "../sets/" + GOOD_SET},
                 ["site_backup_restore_set (backup_restore_set) is \"../sets/", "is not the name of a set"]),
    "dir-missing": ({"site_backup_dir": "{root}/nowhere"}, ["site_backup_dir (backup_dir) is ",
                                                            "which does not exist on the control machine"]),
    "latest-none": ({"site_backup_dir": "{root}/partial", "site_backup_restore_set": "latest"},
                    ["site_backup_dir (backup_dir)", "holds no complete set of demo"]),
    "tampered": ({"site_backup_restore_set": "demo-tampered"},
                 ["server.crt has SHA-256", "SHA256SUMS says", "changed or damaged"]),
    "file-missing": ({"site_backup_restore_set": "demo-missing"}, ["server.crt is listed in SHA256SUMS but missing"]),
    "file-added": ({"site_backup_restore_set": "demo-added"}, ["repository/evil.sh is in the set but not in SHA256SUMS"]),
    "no-sums": ({"site_backup_restore_set": "demo-unsummed"}, ["has no SHA256SUMS", "not a complete backup set"]),
    "other-site": ({"site_backup_restore_set": "other-site"}, ["made on the site 'elsewhere'", "backup_restore_force"]),
    "database": ({"site_backup_restore_set": "demo-mysql"}, ["OpenNebula database is mysql", "site_one_database is sqlite"]),
    "no-ldap-host": ({"site_backup_restore_set": "demo-ldap", "site_ldap_deploy": False},
                     ["holds the part ldap", "no host in group ldap"]),
    "force-word": ({"backup_restore_force": "maybe"}, ["backup_restore_force is \"maybe\"", "true or false"]),
}
RESTORE_GOOD = {
    "control": {},
    "case_by_name": {"site_backup_restore_set": GOOD_SET},
    "case_by_path": {"site_backup_restore_set": "{root}/sets/" + GOOD_SET, "site_backup_dir": "{root}/nowhere"},
    "case_other_site_forced": {"site_backup_restore_set": "other-site", "backup_restore_force": True},
    # As -e backup_restore_force=true gives it: a string.
    "case_other_site_forced_by_word": {"site_backup_restore_set": "other-site", "backup_restore_force": "true"},
}


@pytest.fixture(scope="module")
def restore_run(sets, tmp_path_factory):
    before = _snapshot(sets)
    cases = {case_host(name): changes for name, (changes, _) in RESTORE_BAD.items()}
    cases.update(RESTORE_GOOD)
    hosts = {host: {k: (v.format(root=sets) if isinstance(v, str) else v) for k, v in changes.items()}
             for host, changes in cases.items()}
    run = run_cases(tmp_path_factory.mktemp("restore_preflight"), ENTRY_PLAY.format(entry="restore"),
                    dict(OTHERS, cases=hosts),
                    site=dict(SITE, site_backup_dir=str(sets / "sets"), site_backup_restore_set="latest"),
                    args=["--check"])
    run.written = _snapshot(sets) != before
    return run


@pytest.mark.parametrize("host", sorted(RESTORE_GOOD))
def test_restore_good_sets_pass(restore_run, host):
    assert restore_run.passed(host), restore_run.failures(host) or restore_run.output[-3000:]


def test_restore_latest_is_the_newest_complete_set(restore_run):
    said = json.dumps([r for r in restore_run.results("control") if "check run" in r.get("task", "")])
    assert GOOD_SET in said and OLDER_SET not in said, said


@pytest.mark.parametrize("name", sorted(RESTORE_BAD))
def test_restore_bad_sets_fail_naming_the_variable(restore_run, name):
    assert_refused(restore_run, case_host(name), *RESTORE_BAD[name])


def test_restore_check_mode_changes_nothing(restore_run):
    assert restore_run.passed("control")
    assert not restore_run.written, "the check run changed the backup directory"

"""Back up the site, change it, restore it: what the set had is back, with the same ids.

Run as a site administrator runs them, with the scenario's inventory, from
outside (the control machine):

    ansible-playbook -i <inventory> playbooks/backup.yml -e site_backup_dir=<dir>
    ansible-playbook -i <inventory> playbooks/restore.yml -e site_backup_dir=<dir> -e backup_restore_set=latest
    ansible-playbook -i <inventory> site.yml

In order (one module fixture each, each using the previous):

1. a mark in each part that the demo's site file would not make again: an
   accounting record of the LDAP user alice in a window of its own (2001),
   when the scenario has an accounting host;
2. the backup: its set has every part's files, SHA256SUMS holds
   (``sha256sum -c``), directories are 0700 and files 0600, set.yml lists
   the front-end's objects;
3. the site changes: the virtual network ``private`` is deleted, and so are
   the LDAP user bob and the accounting mark; a network and an LDAP user
   the set does not have are added;
4. restores that must be refused before anything changes (oned and slapd
   not restarted, the site as changed): without backup_restore_force (the
   added network and user would be deleted: the message names them), and
   from a copy of the set with one byte of oned's dump changed;
5. the restore, forced: every OpenNebula object of the set is back with its
   id and name (``private`` among them) and the added network is gone; bob
   binds to LDAP with his password and the added user is gone; the
   accounting API gives alice's 2001 usage again;
6. site.yml again: 0 changed on every host.

The times and the set's size are printed (pytest -v shows them). The LDAP
and accounting steps need hosts in groups ldap and accounting: without them
their tests fail and say so.
"""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import stratuslab_testinfra
import yaml
from conftest import failed_messages, json_report, playbook_env

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
SITE = yaml.safe_load((ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml").read_text())
BASE_DN = SITE["site_ldap_base_dn"]
PASSWORDS = {user["uid"]: user["password"] for user in SITE["site_ldap_users"]}
FRONTEND = stratuslab_testinfra.names("frontend")[0]
DELETED_VNET = "private"
EXTRA_VNET = "bktest-extra"
DELETED_USER = "bob"
EXTRA_USER = "mallory"
MARK = {"vm_id": 990001, "user": "alice", "from": "2001-01-01", "to": "2001-01-02", "stime": 978310800}


def _group(name):
    """The scenario's hosts of group ``name`` ([] when it has none)."""
    from testinfra.utils.ansible_runner import AnsibleRunner

    return sorted(AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts(name))


def _host(host, name):
    return host.get_host(stratuslab_testinfra.hosts(name)[0])


def _playbook(playbook, *args):
    """Run ``playbook`` on the scenario's inventory; (rc, JSON report or None, stdout, stderr, seconds)."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(ROOT / playbook)] + list(args),
                          cwd=ROOT, env=playbook_env(), capture_output=True, text=True, timeout=3600)
    return proc.returncode, json_report(proc.stdout), proc.stdout, proc.stderr, time.monotonic() - started


def _say(request, line):
    stratuslab_testinfra.say(request, "backup/restore: " + line)


def _objects(host):
    """{kind: [[id, name], ...]} of the front-end's OpenNebula, as the backup role lists them."""
    role_vars = yaml.safe_load((ROOT / "roles" / "backup" / "vars" / "main.yml").read_text())
    out = host.run("python3 -c %s %s %s %s", role_vars["__backup_one_objects_script"],
                   "http://127.0.0.1:2633/RPC2", "/var/lib/one/.one/one_auth", json.dumps(role_vars["__backup_one_pools"]))
    assert out.rc == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["answers"], answer
    return answer["objects"]


def _vnet_ids(host):
    return {name: object_id for object_id, name in _objects(host)["VNET"]}


def _started(host, unit):
    """When ``unit`` last entered the active state (changes when it is restarted)."""
    return host.run("systemctl show -p ActiveEnterTimestampMonotonic --value %s", unit).stdout.strip()


def _psql(host, sql):
    return host.run("runuser -u postgres -- psql -X -q -t -A -d stratuslab_accounting -c %s", sql)


def _usage(host):
    """alice's usage in the mark's window, from the accounting API with her LDAP password."""
    url = "https://%s.%s:%d/v1/usage?user=%s&from=%s&to=%s" % (
        _group("accounting")[0], SITE["site_domain"],
        SITE["site_accounting_api_port"], MARK["user"], MARK["from"], MARK["to"])
    out = host.run("curl -sS --fail -u %s %s", "%s:%s" % (MARK["user"], PASSWORDS[MARK["user"]]), url)
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


# --- 1. marks ------------------------------------------------------------------

@pytest.fixture(scope="module")
def marks(host):
    """The accounting mark (a closed record of alice in 2001), when the scenario has accounting."""
    accounting = _group("accounting")
    if accounting:
        acct = _host(host, accounting[0])
        stime = MARK["stime"]
        sql = ("INSERT INTO history VALUES (%d, 0, 5000, 1, 'alice', 'users', 'bktest-mark', 'bktest-mark', %d,"
               " 'node', 0, %d, %d, %d, %d, %d, %d, 0, 0, 0, 0, 0, 1.0, 1, 512, 1024, %d)"
               " ON CONFLICT (vm_id, seq) DO NOTHING" % (MARK["vm_id"], stime, stime, stime + 3600, stime,
                                                          stime + 3600, stime, stime + 3600, int(time.time())))
        out = _psql(acct, sql)
        assert out.rc == 0, out.stderr
    return {"accounting": bool(accounting)}


# --- 2. backup -----------------------------------------------------------------

@pytest.fixture(scope="module")
def backup(host, marks, tmp_path_factory, request):
    directory = tmp_path_factory.mktemp("backups")
    os.chmod(directory, 0o700)
    rc, report, stdout, stderr, seconds = _playbook("playbooks/backup.yml", "-e", "site_backup_dir=%s" % directory)
    assert rc == 0, "backup.yml failed:\n%s\n%s" % (failed_messages(report) or stdout[-4000:], stderr[-2000:])
    sets = [path for path in directory.iterdir() if path.is_dir()]
    assert len(sets) == 1, "expected one set in %s, found %s" % (directory, sets)
    size = sum(path.stat().st_size for path in sets[0].rglob("*") if path.is_file())
    _say(request, "backup.yml in %.0f s, set of %.1f MiB (%d files)" % (
        seconds, size / 1048576, len([p for p in sets[0].rglob("*") if p.is_file()])))
    return {"dir": directory, "set": sets[0], "report": report, "objects": _objects(host),
            "manifest": yaml.safe_load((sets[0] / "set.yml").read_text())}


def test_the_set_has_every_part_of_the_site(backup):
    parts = backup["manifest"]["parts"]
    expected = ({"opennebula"} | ({"ldap"} if _group("ldap") else set()) | ({"accounting"} if _group("accounting") else set())
                | ({"repository"} if _group("repository") else set()))
    assert expected <= set(parts), "set.yml parts: %s" % sorted(parts)
    for name in ["opennebula/onedb.sql", "opennebula/files/var/lib/one/.one/one_key",
                 "opennebula/files/var/lib/one/.ssh/id_ed25519"]:
        assert (backup["set"] / name).is_file(), "%s missing from the set" % name
    if _group("ldap"):
        for name in ["ldap/config.ldif", "ldap/data.ldif", "ldap/files/etc/ldap/tls/site-ca.key"]:
            assert (backup["set"] / name).is_file(), "%s missing from the set" % name
    if _group("accounting"):
        assert (backup["set"] / parts["accounting"]["dump"]).is_file()
    if _group("repository"):
        # roles/appliance_repo: the repository's TLS key (appliance_repo_tls_dir).
        name = "repository/files/etc/ssl/stratuslab-appliances/server.key"
        assert (backup["set"] / name).is_file(), "%s missing from the set" % name


def test_the_sets_checksums_hold(backup):
    proc = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=backup["set"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    listed = {line.split("  ", 1)[1] for line in (backup["set"] / "SHA256SUMS").read_text().splitlines()}
    present = {str(p.relative_to(backup["set"])) for p in backup["set"].rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert listed == present


def test_the_set_is_readable_by_its_owner_only(backup):
    for path in [backup["set"]] + list(backup["set"].rglob("*")):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), "%s has mode %o" % (path, mode)


def test_the_backup_changes_only_the_files_of_the_set(backup):
    """Every change the run reports is a file written on the control machine: the set's."""
    changed = [task["task"]["name"] for play in backup["report"]["plays"] for task in play["tasks"]
               if any(result.get("changed") for result in task["hosts"].values())]
    writes = ("backup_start | Make the set's directory", "| Fetch ", "backup_finish | ")
    assert changed and all(any(word in name for word in writes) for name in changed), changed


def test_the_set_lists_the_front_ends_objects(backup):
    assert backup["manifest"]["parts"]["opennebula"]["objects"] == backup["objects"]
    assert DELETED_VNET in {name for _, name in backup["objects"]["VNET"]}, backup["objects"]["VNET"]


# --- 3. the site changes ---------------------------------------------------------

@pytest.fixture(scope="module")
def changed_site(host, backup):
    ids = _vnet_ids(host)
    assert DELETED_VNET in ids, "the demo has no virtual network %s: %s" % (DELETED_VNET, ids)
    out = host.run("runuser -u oneadmin -- onevnet delete %s", DELETED_VNET)
    assert out.rc == 0, out.stderr
    template = 'NAME="%s"\nVN_MAD="bridge"\nBRIDGE="brbktest"\nAR=[TYPE="IP4",IP="192.0.2.10",SIZE="2"]\n' % EXTRA_VNET
    out = host.run("printf %s %s > /var/tmp/bktest-extra.vnet && runuser -u oneadmin -- onevnet create %s",
                   "%s", template, "/var/tmp/bktest-extra.vnet")
    host.run("rm -f /var/tmp/bktest-extra.vnet")
    assert out.rc == 0, out.stdout + out.stderr
    if _group("ldap"):
        ldap = _host(host, _group("ldap")[0])
        out = ldap.run("ldapdelete -Q -Y EXTERNAL -H ldapi:/// %s", "uid=%s,ou=people,%s" % (DELETED_USER, BASE_DN))
        assert out.rc == 0, out.stderr
        entry = ("dn: uid={u},ou=people,{b}\nobjectClass: inetOrgPerson\nuid: {u}\ncn: {u}\nsn: {u}\n"
                 "userPassword: {u}-password\n").format(u=EXTRA_USER, b=BASE_DN)
        out = ldap.run("printf %s %s | ldapadd -Q -Y EXTERNAL -H ldapi:///", "%s", entry)
        assert out.rc == 0, out.stderr
    if _group("accounting"):
        out = _psql(_host(host, _group("accounting")[0]), "DELETE FROM history WHERE vm_id = %d" % MARK["vm_id"])
        assert out.rc == 0, out.stderr
    return {"vnets": _vnet_ids(host)}


def test_the_site_changed(changed_site):
    assert DELETED_VNET not in changed_site["vnets"] and EXTRA_VNET in changed_site["vnets"], changed_site["vnets"]


# --- 4. refused restores -------------------------------------------------------

def _units(host):
    units = {FRONTEND: _started(host, "opennebula")}
    for name in _group("ldap"):
        units[name] = _started(_host(host, name), "slapd")
    return units


@pytest.fixture(scope="module")
def refused(host, backup, changed_site, request):
    before = _units(host)
    unforced = _playbook("playbooks/restore.yml", "-e", "site_backup_dir=%s" % backup["dir"],
                         "-e", "backup_restore_set=latest")
    forged = backup["dir"].parent / (backup["dir"].name + "-forged")
    shutil.copytree(backup["set"], forged / backup["set"].name)
    dump = forged / backup["set"].name / "opennebula" / "onedb.sql"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))
    tampered = _playbook("playbooks/restore.yml", "-e", "site_backup_dir=%s" % backup["dir"],
                         "-e", "backup_restore_set=%s" % (forged / backup["set"].name), "-e", "backup_restore_force=true")
    _say(request, "refused restores: unforced in %.0f s, tampered in %.0f s" % (unforced[4], tampered[4]))
    return {"unforced": unforced, "tampered": tampered, "before": before, "after": _units(host),
            "vnets": _vnet_ids(host)}


def test_a_restore_that_would_delete_objects_is_refused_naming_them(refused):
    rc, report, stdout, stderr, _ = refused["unforced"]
    assert rc != 0, "restore.yml without backup_restore_force was not refused"
    message = failed_messages(report) or stdout[-3000:]
    assert "backup_restore_force" in message and "VNET" in message and EXTRA_VNET in message, message
    if _group("ldap"):
        assert "uid=%s" % EXTRA_USER in message, message


def test_a_tampered_set_is_refused_naming_the_file(refused):
    rc, report, stdout, stderr, _ = refused["tampered"]
    assert rc != 0, "restore.yml from a tampered set was not refused"
    message = failed_messages(report) or stdout[-3000:]
    assert "opennebula/onedb.sql has SHA-256" in message and "changed or damaged" in message, message


def test_a_refused_restore_changes_nothing(refused, changed_site):
    for rc, report, *_ in (refused["unforced"], refused["tampered"]):
        assert report is not None
        assert all(stats["changed"] == 0 for stats in report["stats"].values()), report["stats"]
    assert refused["after"] == refused["before"], "a service was restarted: %s -> %s" % (refused["before"], refused["after"])
    assert refused["vnets"] == changed_site["vnets"]


# --- 5. the restore --------------------------------------------------------------

@pytest.fixture(scope="module")
def restored(host, backup, refused, request):
    rc, report, stdout, stderr, seconds = _playbook(
        "playbooks/restore.yml", "-e", "site_backup_dir=%s" % backup["dir"], "-e", "backup_restore_set=latest",
        "-e", "backup_restore_force=true")
    assert rc == 0, "restore.yml failed:\n%s\n%s" % (failed_messages(report) or stdout[-4000:], stderr[-2000:])
    _say(request, "restore.yml (forced) in %.0f s" % seconds)
    return {"objects": _objects(host)}


def test_every_opennebula_object_of_the_set_is_back_with_its_id(backup, restored):
    assert restored["objects"] == backup["objects"]
    vnets = {name: object_id for object_id, name in restored["objects"]["VNET"]}
    assert vnets[DELETED_VNET] == {n: i for i, n in backup["objects"]["VNET"]}[DELETED_VNET]
    assert EXTRA_VNET not in vnets


def test_the_deleted_ldap_user_logs_in_again_and_the_added_one_is_gone(host, restored):
    assert _group("ldap"), "the scenario has no host in group ldap: add one to molecule/site/molecule.yml"
    ldap = _host(host, _group("ldap")[0])
    uri = "ldaps://%s.%s" % (_group("ldap")[0], SITE["site_domain"])
    bind = ldap.run("ldapwhoami -x -H %s -D %s -w %s", uri, "uid=%s,ou=people,%s" % (DELETED_USER, BASE_DN),
                    PASSWORDS[DELETED_USER])
    assert bind.rc == 0, bind.stderr
    gone = ldap.run("ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b %s uid=%s dn", BASE_DN, EXTRA_USER)
    assert gone.rc == 0 and "uid=%s" % EXTRA_USER not in gone.stdout, gone.stdout + gone.stderr


def test_the_accounting_history_is_back(host, marks, restored):
    assert marks["accounting"], "the scenario has no host in group accounting: add one to molecule/site/molecule.yml"
    usage = _usage(_host(host, _group("accounting")[0]))
    rows = [row for row in usage["rows"] if row["user"] == MARK["user"]]
    assert rows and rows[0]["vms"] == 1 and rows[0]["wall_hours"] == 1.0, usage


def test_oned_runs_and_every_node_is_monitored_again(host, restored):
    deadline = time.monotonic() + 300
    while True:
        out = host.run("runuser -u oneadmin -- onehost list --json")
        assert out.rc == 0, out.stderr
        pool = json.loads(out.stdout)["HOST_POOL"].get("HOST") or []
        states = {h["NAME"]: h["STATE"] for h in (pool if isinstance(pool, list) else [pool])}
        if set(states) >= set(_group("nodes")) and set(states.values()) <= {"2"}:
            break
        assert time.monotonic() < deadline, "hosts not MONITORED 300 s after the restore: %s" % states
        time.sleep(5)


# --- 6. site.yml again -----------------------------------------------------------

@pytest.fixture(scope="module")
def rerun(restored, request):
    result = _playbook("site.yml")
    _say(request, "site.yml after the restore in %.0f s" % result[4])
    return result


def test_site_yml_after_the_restore_changes_nothing(rerun):
    rc, report, stdout, stderr, _ = rerun
    assert rc == 0, failed_messages(report) or stdout[-4000:] + stderr[-2000:]
    changed = {name: stats["changed"] for name, stats in report["stats"].items() if stats["changed"]}
    tasks = [task["task"]["name"] for play in report["plays"] for task in play["tasks"]
             if any(result.get("changed") for result in task["hosts"].values())]
    assert not changed, "site.yml changed %s: %s" % (changed, tasks)

"""A node hosting a running VM is retired: the VM keeps running on another node.

The spare site-node3 (group spare: converge made it a site host only) is
the node retired, so the site's own two nodes stay as the other tests
expect them. With the real OpenNebula and the real KVM drivers:

1. site.yml with a second inventory that adds site-node3 to group nodes,
   over the whole site (no --limit: the other nodes must trust it too, as
   a site administrator adds a node that VMs will migrate to or from);
2. a 128 MB VM of the validation's test image on the demo's public network,
   created on hold and deployed on site-node3, until RUNNING there (and its
   libvirt domain running in site-node3's libvirt);
3. site.yml with a third inventory that sets ``site_node_state: retired``
   on site-node3 (the demo site file, which molecule's site scenario uses,
   allows live migration: ``site_node_live_migration: true``). OpenNebula's
   migrate action runs on site-node3 as oneadmin and reaches the
   destination node over SSH and libvirt's migration ports;
4. then: the VM is RUNNING on another node (``onevm show`` and ``virsh
   domstate`` there), site-node3 is gone from ``onehost list``, the other
   nodes and the front-end no longer hold its oneadmin key nor its host keys,
   and a second run of the same site.yml changes nothing.

At the end, also on failure: the VM and the image are deleted, the image's
copy on the front-end removed, and when site-node3 is still registered or
trusted (the test stopped before the retirement), site.yml with
site-node3 retired runs once more. What stays: site-node3 keeps the
kvm_node role's packages and its own oneadmin key pair (authorised nowhere),
and the firewalls keep the openings they gave it as a node until the next
site.yml without it; test_scale_out.py, which runs next, adds it again as a
new node and reads the front-end's firewall as it finds it.

Timeouts: each site.yml run 3600 s (the drain itself waits up to the
frontend role's frontend_node_drain_timeout, 1800 s), the image 300 s to
be READY, the VM 600 s to be RUNNING, 300 s to be deleted at the end.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import stratuslab_testinfra
import yaml
from conftest import failed_messages, json_report, playbook_env

testinfra_hosts = stratuslab_testinfra.hosts("frontend")

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[3]))
FRONTEND = stratuslab_testinfra.names("frontend")[0]
NODES = stratuslab_testinfra.names("nodes")  # the site's own nodes, which stay
RETIRED = "site-node3"
IMAGE = Path(os.environ.get("STRATUSLAB_TEST_IMAGE",
                            "/var/cache/stratuslab-test/test-image/current/stratuslab-test-vm.img"))
DATASTORE = "demo-images"  # inventories/demo: site_one_cluster "-images"
NETWORK = "public"  # inventories/demo: site_networks
NAME = "stratuslab-retire-test"
WORK = "/var/tmp/" + NAME  # under OpenNebula's safe directories for image paths
ONEADMIN_SSH = "/var/lib/one/.ssh"
ACTIVE, RUNNING = "3", "3"  # VM STATE, LCM_STATE
FAILED_STATES = ("7", "8")  # FAILED, POWEROFF
FAILED_LCM_STATES = ("36", "39", "40")  # BOOT_FAILURE, PROLOG_FAILURE, EPILOG_FAILURE
RUN_TIMEOUT = 3600  # above the drain's own wait (frontend_node_drain_timeout, 1800 s)
VM_TIMEOUT = 600


def _say(request, line):
    stratuslab_testinfra.say(request, "retire: " + line)


def _inventories(extra):
    return ["-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent), "-i", str(extra)]


def _site(extra):
    """site.yml on the molecule inventory plus ``extra``: (rc, JSON report or None, stdout, stderr, seconds)."""
    started = time.monotonic()
    try:
        proc = subprocess.run(["ansible-playbook"] + _inventories(extra) + [str(ROOT / "site.yml")],
                              cwd=ROOT, env=playbook_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        return (-1, None, "site.yml still running after %d s\n%s" % (RUN_TIMEOUT, expired.stdout or ""),
                expired.stderr or "", time.monotonic() - started)
    return proc.returncode, json_report(proc.stdout), proc.stdout, proc.stderr, time.monotonic() - started


def _failures(run):
    rc, report, stdout, stderr, _ = run
    failed = failed_messages(report)
    return "rc %d: %s" % (rc, failed or stdout[-4000:] + stderr[-2000:])


def _changed_tasks(report):
    return ["%s on %s" % (task["task"]["name"], host) for play in report["plays"] for task in play["tasks"]
            for host, result in task["hosts"].items() if result.get("changed")]


def _node(host, name):
    return host.get_host(stratuslab_testinfra.hosts(name)[0])


def _one(host, *args):
    """An OpenNebula CLI command as oneadmin on the front-end: its JSON answer, or None on failure."""
    cmd = host.run("runuser -u oneadmin -- " + " ".join(["%s"] * len(args)) + " --json", *args)
    return json.loads(cmd.stdout) if cmd.rc == 0 else None


def _listed(answer, pool, item):
    found = (answer or {}).get(pool, {}).get(item) or []
    return found if isinstance(found, list) else [found]


def _hosts(host):
    return {h["NAME"]: h for h in _listed(_one(host, "onehost", "list"), "HOST_POOL", "HOST")}


def _vm(host, vm_id):
    answer = _one(host, "onevm", "show", vm_id)
    return answer["VM"] if answer else None


def _vm_host(vm):
    history = vm.get("HISTORY_RECORDS", {}).get("HISTORY") or []
    history = history if isinstance(history, list) else [history]
    return history[-1]["HOSTNAME"] if history else None


def _wait_running(host, vm_id, timeout=VM_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        vm = _vm(host, vm_id)
        if vm and vm["STATE"] == ACTIVE and vm["LCM_STATE"] == RUNNING:
            return vm
        failed = vm and (vm["STATE"] in FAILED_STATES or vm["LCM_STATE"] in FAILED_LCM_STATES)
        if failed or time.monotonic() > deadline:
            pytest.fail("VM %s not RUNNING after %d s: %s" % (vm_id, timeout, json.dumps(vm)[-2000:]))
        time.sleep(5)


def _domstate(node, deploy_id):
    out = node.run("virsh -c qemu:///system domstate %s", deploy_id)
    return out.stdout.strip() if out.rc == 0 else "absent (%s)" % out.stderr.strip()


def _trust(node):
    """oneadmin's authorized_keys and known_hosts on ``node``, as text ('' when absent)."""
    files = {}
    for name in ("authorized_keys", "known_hosts"):
        f = node.file("%s/%s" % (ONEADMIN_SSH, name))
        files[name] = f.content_string if f.exists else ""
    return files


def _key_material(lines):
    """The base64 part of each "type key [comment]" line (comments and markers left out)."""
    return [line.split()[1] for line in lines.splitlines()
            if len(line.split()) >= 2 and not line.lstrip().startswith("#")]


def _copy_image():
    """The test image onto the front-end (an ad-hoc copy, as the validate role does)."""
    copy = "src=%s dest=%s/%s owner=oneadmin group=oneadmin mode=0640" % (IMAGE, WORK, IMAGE.name)
    proc = subprocess.run(["ansible", FRONTEND, "-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent),
                           "-m", "ansible.builtin.copy", "-a", copy],
                          cwd=ROOT, env=playbook_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def retire(host, tmp_path_factory, request):
    if not IMAGE.exists():
        pytest.fail("no test image at %s (tools/test-image/build makes it)" % IMAGE)
    site = yaml.safe_load((ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml").read_text())
    if site.get("site_node_live_migration") is not True:
        pytest.fail("the demo site file must allow live migration (site_node_live_migration: true)")
    work = tmp_path_factory.mktemp("retire")
    add = work / "add-node3.yml"
    add.write_text(yaml.safe_dump({"all": {"children": {"nodes": {"hosts": {RETIRED: None}}}}}))
    retired = work / "retire-node3.yml"
    retired.write_text(yaml.safe_dump({"all": {"children": {"nodes": {"hosts": {
        RETIRED: {"site_node_state": "retired"}}}}}}))
    made = {}
    node3 = _node(host, RETIRED)
    others = {name: _node(host, name) for name in NODES}

    def vm_gone(vm_id, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            vm = _vm(host, vm_id)
            if vm is None or vm["STATE"] == "6":  # DONE
                return True
            time.sleep(5)
        return False

    def cleanup():
        vm_id = made.get("vm")
        if vm_id is not None and _vm(host, vm_id) is not None:
            # terminate --hard runs the driver (the domain goes from its node);
            # recover --delete, for a VM stuck in a state terminate refuses.
            host.run("runuser -u oneadmin -- onevm terminate --hard %s", vm_id)
            if not vm_gone(vm_id, 180):
                host.run("runuser -u oneadmin -- onevm recover --delete %s", vm_id)
                vm_gone(vm_id, 120)
        image_id = made.get("image")
        if image_id is not None:
            deadline = time.monotonic() + 120
            while host.run("runuser -u oneadmin -- oneimage show %s", image_id).rc == 0 \
                    and time.monotonic() < deadline:
                host.run("runuser -u oneadmin -- oneimage delete %s", image_id)
                time.sleep(5)
        host.run("rm -rf %s", WORK)
        # The site as converge left it for the next tests: site-node3 neither in
        # OpenNebula nor in any oneadmin's trust.
        pub = node3.file(ONEADMIN_SSH + "/id_ed25519.pub")
        key = made.get("node3_key") or ((_key_material(pub.content_string) if pub.exists else []) or [""])[0]
        trusted = key and any(key in _trust(node)["authorized_keys"] for node in others.values())
        if RETIRED in _hosts(host) or trusted:
            result = _site(retired)
            _say(request, "cleanup: site.yml with %s retired, rc %d in %.0f s" % (RETIRED, result[0], result[4]))
    request.addfinalizer(cleanup)

    # 1. site-node3 joins the site as a node, trusted by the front-end and the other nodes.
    joined = _site(add)
    _say(request, "site.yml adding %s: rc %d in %.0f s" % (RETIRED, joined[0], joined[4]))
    assert joined[0] == 0, _failures(joined)
    assert _hosts(host).get(RETIRED, {}).get("STATE") == "2", "%s not MONITORED after it joined" % RETIRED
    own_key = _key_material(node3.file(ONEADMIN_SSH + "/id_ed25519.pub").content_string)
    assert len(own_key) == 1, "%s has no oneadmin key pair of its own" % RETIRED
    made["node3_key"] = own_key[0]
    made["node3_hostkeys"] = _key_material(node3.check_output("cat /etc/ssh/ssh_host_*_key.pub"))
    trust_before = {name: _trust(node) for name, node in others.items()}
    ssh_before = {name: node3.run("runuser -u oneadmin -- ssh -o BatchMode=yes %s true", name).rc
                  for name in NODES}
    ssh_before.update({"%s->%s" % (name, RETIRED): node.run(
        "runuser -u oneadmin -- ssh -o BatchMode=yes %s true", RETIRED).rc for name, node in others.items()})

    # 2. A VM pinned to site-node3, RUNNING there.
    host.run("install -d -o oneadmin -g oneadmin -m 0750 %s", WORK)
    _copy_image()
    stamp = str(int(time.time()))
    image = host.run("runuser -u oneadmin -- oneimage create --datastore %s --name %s --path %s"
                     " --type OS --prefix vd", DATASTORE, "%s-image-%s" % (NAME, stamp),
                     "%s/%s" % (WORK, IMAGE.name))
    assert image.rc == 0, image.stderr
    made["image"] = image.stdout.split("ID:")[-1].strip()
    deadline = time.monotonic() + 300
    while (_one(host, "oneimage", "show", made["image"]) or {}).get("IMAGE", {}).get("STATE") != "1":
        assert time.monotonic() < deadline, "image %s not READY" % made["image"]
        time.sleep(3)
    template = "%s/vm.tmpl" % WORK
    content = "\n".join([
        'NAME = "%s-vm-%s"' % (NAME, stamp), 'CPU = "0.1"', 'VCPU = "1"', 'MEMORY = "128"',
        'DISK = [ IMAGE_ID = "%s" ]' % made["image"],
        'NIC = [ NETWORK = "%s", NETWORK_UNAME = "oneadmin" ]' % NETWORK,
        'OS = [ BOOT = "disk0" ]', 'CONTEXT = [ NETWORK = "YES" ]']) + "\n"
    written = host.run("printf '%%s' %s > %s", content, template)
    assert written.rc == 0, written.stderr
    vm = host.run("runuser -u oneadmin -- onevm create --hold %s", template)
    assert vm.rc == 0, vm.stderr
    made["vm"] = vm.stdout.split("ID:")[-1].strip()
    deploy = host.run("runuser -u oneadmin -- onevm deploy %s %s", made["vm"], RETIRED)
    assert deploy.rc == 0, deploy.stderr
    before = _wait_running(host, made["vm"])
    assert _vm_host(before) == RETIRED, _vm_host(before)
    deploy_id = before["DEPLOY_ID"]
    state_before = _domstate(node3, deploy_id)
    _say(request, "VM %s RUNNING on %s (%s)" % (made["vm"], RETIRED, deploy_id))

    # 3. Retire site-node3 with live migration, then run the same again.
    retiring = _site(retired)
    _say(request, "site.yml retiring %s: rc %d in %.0f s" % (RETIRED, retiring[0], retiring[4]))
    after = _vm(host, made["vm"])
    moved_to = _vm_host(after) if after else None
    result = {
        "joined": joined, "ssh_before": ssh_before, "trust_before": trust_before,
        "state_before": state_before, "deploy_id": deploy_id, "retiring": retiring, "vm": after,
        "moved_to": moved_to, "hosts": _hosts(host),
        "state_after": _domstate(others[moved_to], deploy_id) if moved_to in others else None,
        "state_on_retired": _domstate(node3, deploy_id),
        "trust_after": {name: _trust(node) for name, node in others.items()},
        "frontend_known": _trust(host)["known_hosts"], "node3_trust": _trust(node3),
        "node3_key": made["node3_key"], "node3_hostkeys": made["node3_hostkeys"],
    }
    result["rerun"] = _site(retired) if retiring[0] == 0 else None
    if result["rerun"]:
        _say(request, "site.yml again: rc %d in %.0f s" % (result["rerun"][0], result["rerun"][4]))
    return result


def test_the_spare_node_joined_and_the_nodes_trust_each_other(retire):
    assert retire["ssh_before"] and set(retire["ssh_before"].values()) == {0}, retire["ssh_before"]
    for name, files in retire["trust_before"].items():
        assert retire["node3_key"] in files["authorized_keys"], "%s does not authorise %s" % (name, RETIRED)
        assert any(key in files["known_hosts"] for key in retire["node3_hostkeys"]), name


def test_the_vm_ran_on_the_node_before_it_was_retired(retire):
    assert retire["state_before"] == "running", retire["state_before"]


def test_the_retiring_run_succeeds(retire):
    assert retire["retiring"][0] == 0, _failures(retire["retiring"])


def test_the_vm_keeps_running_on_another_node(retire):
    vm = retire["vm"]
    assert vm is not None
    assert (vm["STATE"], vm["LCM_STATE"]) == (ACTIVE, RUNNING), (vm["STATE"], vm["LCM_STATE"])
    assert retire["moved_to"] in NODES, retire["moved_to"]
    assert retire["state_after"] == "running", retire["state_after"]
    assert retire["state_on_retired"].startswith("absent"), retire["state_on_retired"]


def test_the_retired_node_left_opennebula(retire):
    assert RETIRED not in retire["hosts"], sorted(retire["hosts"])
    assert all(retire["hosts"][name]["STATE"] == "2" for name in NODES), \
        {name: retire["hosts"].get(name, {}).get("STATE") for name in NODES}


def test_the_other_nodes_and_the_front_end_no_longer_trust_it(retire):
    for name, files in retire["trust_after"].items():
        assert retire["node3_key"] not in files["authorized_keys"], "%s still authorises %s" % (name, RETIRED)
        assert RETIRED not in files["known_hosts"], "%s still names %s in known_hosts" % (name, RETIRED)
        assert not [k for k in retire["node3_hostkeys"] if k in files["known_hosts"]], name
    assert RETIRED not in retire["frontend_known"]
    assert not [k for k in retire["node3_hostkeys"] if k in retire["frontend_known"]]


def test_the_retired_node_trusts_no_one(retire):
    files = retire["node3_trust"]
    assert not _key_material(files["authorized_keys"]), files["authorized_keys"]
    assert not [name for name in NODES + [FRONTEND] if name in files["known_hosts"]], files["known_hosts"]


def test_the_rerun_changes_nothing(retire):
    rerun = retire["rerun"]
    assert rerun is not None, "no rerun: the retiring run failed"
    assert rerun[0] == 0, _failures(rerun)
    changed = {name: stats["changed"] for name, stats in rerun[1]["stats"].items() if stats["changed"]}
    assert not changed, "site.yml changed %s: %s" % (changed, _changed_tasks(rerun[1]))

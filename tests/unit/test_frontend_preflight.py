"""The frontend role's preflight refuses bad site files, naming the variable.

ansible-playbook runs on this machine (connection local, no container) the
role's set_vars.yml and preflight.yml, as playbooks/preflight.yml does, with
the demo site file plus one bad value per case, and each case must fail with
a message naming the site-file variable to fix.
"""

import pytest
import yaml

from preflight_testlib import ROOT, case_host, preflight_play, run_cases

SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"

PLAYBOOK = preflight_play("frontend")

PUBLIC = {"name": "public", "bridge": "brpublic", "interface": "eth0", "cidr": "10.89.7.0/24",
          "gateway": "10.89.7.1", "range": {"first": "10.89.7.100", "last": "10.89.7.199"}}
PRIVATE = {"name": "private", "bridge": "brprivate", "interface": "eth1", "cidr": "10.89.8.0/24",
           "leases": ["10.89.8.100", "10.89.8.101"]}


def net(base, **changes):
    return dict(base, **changes)


def _signer_pem():
    """A self-signed signer's certificate, PEM text (made here: nothing secret is stored)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "preflight signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


SIGNER = _signer_pem()
TTY = {"manifest": "images/base/ttylinux/ttylinux-9.7.img.manifest.xml"}


CASES = {
    "unknown install mode": ({"site_one_install": "from_source"}, "site_one_install"),
    "unknown database": ({"site_one_database": "postgresql"}, "site_one_database"),
    "mysql without its settings": ({"site_one_database": "mysql", "site_one_mysql": {"host": "db.example.org"}},
                                   "site_one_mysql"),
    "malformed MAC prefix": ({"site_mac_prefix": "02-00"}, "site_mac_prefix"),
    "multicast MAC prefix": ({"site_mac_prefix": "01:00"}, "site_mac_prefix"),
    "overlapping address ranges": (
        {"site_networks": [PUBLIC, net(PRIVATE, cidr="10.89.7.0/24", leases=["10.89.7.150"])]},
        "site_networks"),
    "range outside its network": (
        {"site_networks": [net(PUBLIC, range={"first": "10.89.9.100", "last": "10.89.9.199"}), PRIVATE]},
        "site_networks[public].range"),
    "lease outside its network": (
        {"site_networks": [PUBLIC, net(PRIVATE, leases=["10.89.8.100", "10.89.9.7"])]},
        "site_networks[private].leases"),
    "bridge name over 15 characters": (
        {"site_networks": [net(PUBLIC, bridge="brpublic-network"), PRIVATE]},
        "site_networks[public].bridge"),
    "duplicate network names": (
        {"site_networks": [PUBLIC, net(PRIVATE, name="public")]},
        "site_networks"),
    "unknown image sharing mode": ({"site_image_sharing": "ceph"}, "site_image_sharing"),
    "empty oneadmin password": ({"site_oneadmin_password": ""}, "site_oneadmin_password"),
    "monitord interval not above the beacon period": (
        {"frontend_monitord_interval_host": 30}, "frontend_monitord_interval_host"),
    "a monitord probe period missing": (
        {"frontend_monitord_probes_period": {"BEACON_HOST": 30}}, "frontend_monitord_probes_period"),
    "a monitord probe period of 0": (
        {"frontend_monitord_probes_period": {"BEACON_HOST": 30, "SYSTEM_HOST": 0, "MONITOR_HOST": 120,
                                             "STATE_VM": 5, "EXEC_VM": 5, "MONITOR_VM": 30,
                                             "SYNC_STATE_VM": 180}},
        "frontend_monitord_probes_period.SYSTEM_HOST"),
    # node_public_only (below) has only the public network in its own site_networks.
    "a node without the bridge of a site network": (
        {"frontend_nodes": ["node_public_only"]}, "node node_public_only has no bridge brprivate"),
    "a node whose bridge has another name": (
        {"frontend_nodes": ["node_other_bridge"]}, "node node_other_bridge has no bridge brpublic"),
    # Values of the wrong type, range or format, and the repository's key.
    "API port above 65535": ({"site_one_api_port": 70000}, "site_one_api_port (frontend_one_api_port) is 70000"),
    "API port that is no number": ({"site_one_api_port": "26x3"}, "site_one_api_port"),
    "a version OpenNebula has no repository for": ({"site_one_version": "7.5"}, "site_one_version"),
    "a version written as a number": ({"site_one_version": 7.4}, "in quotes"),
    "a repository key the host lacks": ({"site_one_repo_key": "/nonexistent/one.asc"}, "site_one_repo_key"),
    "a repository key that is no OpenPGP key": ({"site_one_repo_key": "/etc/hostname"}, "not an OpenPGP public key"),
    "a repository key that is a relative path": ({"site_one_repo_key": "keys/one.asc"}, "site_one_repo_key"),
    "networks given as a string": ({"site_networks": "public"}, "a string, not a list"),
    "a network key mistyped": ({"site_networks": [net(PUBLIC, gatway="10.89.7.1"), PRIVATE]},
                               "did you mean gateway?"),
    # node_at_21 (below) is at 10.89.7.21.
    "a VM range holding a host's address": (
        {"site_networks": [net(PUBLIC, range={"first": "10.89.7.10", "last": "10.89.7.30"}), PRIVATE]},
        "holds 10.89.7.21, the site_address of node_at_21"),
    # LDAP login: the ldap role's checks run in the front-end's preflight.
    "LDAP login with a URI that is not ldap(s)://": (
        {"site_ldap_deploy": False, "site_ldap_uri": "https://ldap.example.org"}, "site_ldap_uri"),
    "LDAP login with a base DN that does not parse": (
        {"site_ldap_deploy": False, "site_ldap_base_dn": "example.org"}, "site_ldap_base_dn"),
    "LDAP login to a deployed server that has no host": (
        {"frontend_ldap_auth": True}, "group ldap"),
    # Appliances (entry point appliances).
    "appliances without trusted signers": (
        {"site_appliances": [TTY], "site_repository_trusted_signers": []}, "site_repository_trusted_signers"),
    "an appliance whose manifest is the image": (
        {"site_appliances": [{"manifest": "images/base/ttylinux/ttylinux-9.7.img.gz"}],
         "site_repository_trusted_signers": [SIGNER]}, "site_appliances[0].manifest"),
    "an appliance manifest over ftp": (
        {"site_appliances": [{"manifest": "ftp://example.org/images/base/t/t-1.img.manifest.xml"}],
         "site_repository_trusted_signers": [SIGNER]}, "site_appliances[0].manifest"),
    "an appliance given as a string": (
        {"site_appliances": ["images/base/ttylinux/ttylinux-9.7.img.manifest.xml"],
         "site_repository_trusted_signers": [SIGNER]}, "site_appliances"),
    "an appliance without its manifest": (
        {"site_appliances": [{"name": "ttylinux"}], "site_repository_trusted_signers": [SIGNER]},
        "site_appliances"),
    "two appliances under one image name": (
        {"site_appliances": [TTY, {"manifest": "images/base/tty/tty-2.img.manifest.xml", "name": "ttylinux-9.7"}],
         "site_repository_trusted_signers": [SIGNER]}, "image name ttylinux-9.7 more than once"),
    "a trusted signer that is no certificate": (
        {"site_appliances": [TTY], "site_repository_trusted_signers": ["/nonexistent/signers.pem"]},
        "site_repository_trusted_signers"),
    "appliances under a repository URL that is none": (
        {"site_appliances": [TTY], "site_repository_trusted_signers": [SIGNER], "site_repository_url": ""},
        "site_repository_url"),
}

# Good variations of the demo site, each must pass.
GOOD_CASES = {
    "demo site": {},
    "an existing site LDAP (LDAP login on)": {"site_ldap_deploy": False},
    "nodes with every bridge": {"frontend_nodes": ["node_every_bridge"]},
    "appliances with a trusted signer": {
        "site_appliances": [TTY, {"manifest": "http://repo.example.org/images/base/d/d-12.img.manifest.xml",
                                  "name": "debian-12"}],
        "site_repository_trusted_signers": [SIGNER]},
}
# Hosts the cases name in frontend_nodes (not in the play: their own site_networks only).
NODES = {
    "node_public_only": {"site_networks": [PUBLIC]},
    "node_other_bridge": {"site_networks": [net(PUBLIC, bridge="br0"), PRIVATE]},
    "node_every_bridge": {"site_networks": [PUBLIC, PRIVATE]},
    "node_at_21": {"site_address": "10.89.7.21"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Run every case in ONE ansible-playbook run: one local host per case.

    The site file is the inventory's group vars, each case's bad values its
    host vars (host vars win), so the hosts fail independently and the run
    takes a few seconds.
    """
    work = tmp_path_factory.mktemp("frontend_preflight")
    hosts = {case_host(case): dict(overrides) for case, overrides in GOOD_CASES.items()}
    hosts.update({case_host(case): dict(overrides) for case, (overrides, _) in CASES.items()})
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    # The demo's repository key is in its containers' mount: a stand-in here.
    site["site_one_repo_key"] = str(work / "one-repo-key.asc")
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n")
    return run_cases(work, PLAYBOOK, {"cases": hosts, "others": NODES}, site=site, args=["--limit", "cases"])


@pytest.mark.parametrize("case", sorted(GOOD_CASES))
def test_good_site_passes(run, case):
    assert run.passed(case_host(case)), run.failures(case_host(case)) or run.output[-3000:]


def test_ldap_login_runs_the_ldap_checks(run):
    """The good external-LDAP case really ran the ldap role's preflight."""
    assert "ldap : preflight | Check the URI, base DN, server host, users, groups and TLS files" in run.output


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_site_file_is_refused_naming_the_variable(run, case):
    _, variable = CASES[case]
    text = run.failures(case_host(case))
    assert text, "%s was accepted" % case
    assert variable in text, "%s: the failure does not name %s:\n%s" % (case, variable, text)


def test_password_never_shows(run):
    assert "demo-oneadmin-secret" not in run.output
    assert "demo-ldap-admin-secret" not in run.output

"""The frontend role's preflight refuses a bad X.509 login setup, naming the variable.

As test_frontend_preflight.py: the role's set_vars.yml and preflight.yml on
this machine (connection local), the demo site file plus one case per host.
The CAs, CRLs and user certificates are made here (x509_testlib.TestPki);
the CA directories are directories of this machine, as on the front-end.
"""

import pytest
import yaml

from preflight_testlib import ROOT, case_host, preflight_play, run_cases
from x509_testlib import TestPki

SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"
ALICE = "/DC=org/DC=example/OU=Grid Users/CN=Alice Grid"


def cases(pki, work):
    """(good cases, bad cases {name: (site file changes, what the failure says)})."""
    other = TestPki(work / "other-pki")
    user = pki.issue(ALICE, "alice")
    crl = pki.crl([user.serial])
    igtf = work / "igtf"
    igtf.mkdir()
    (igtf / "0a1b2c3d.0").write_text(pki.ca_path.read_text())
    (work / "empty-ca-dir").mkdir()
    x509 = {"site_x509_auth": True}
    ca = {"cert": str(pki.ca_path), "crl": str(crl), "crl_url": "https://ca.example.org/ca.crl"}
    users = [{"name": "alice", "dn": ALICE}]
    good = {
        "the CAs of the site file and a user": dict(x509, site_x509_cas=[ca], site_x509_users=users),
        "a CA given as PEM text": dict(x509, site_x509_cas=[{"cert": pki.ca_path.read_text()}]),
        "the site's IGTF directory": dict(x509, site_x509_ca_dir=str(igtf), site_x509_users=users),
        "a DN whose CN holds a slash": dict(x509, site_x509_ca_dir=str(igtf),
                                            site_x509_users=[{"name": "svc", "dn": "/O=Grid/CN=host/vm.example.org"}]),
    }
    bad = {
        "a CA directory that does not exist": (
            dict(x509, site_x509_ca_dir=str(work / "missing")),
            "does not exist, and site_x509_cas gives none to install there"),
        "a CA directory without a CA": (
            dict(x509, site_x509_ca_dir=str(work / "empty-ca-dir")),
            "site_x509_ca_dir (frontend_x509_ca_dir) %s on case_a_ca_directory_without_a_ca holds no CA certificate"
            % (work / "empty-ca-dir")),
        "a CA file that is no certificate": (
            dict(x509, site_x509_cas=[{"cert": "/etc/hostname"}]), "site_x509_cas (frontend_x509_cas)[0].cert"),
        "a CA file the control machine lacks": (
            dict(x509, site_x509_cas=[{"cert": str(work / "nowhere.pem")}]), "does not exist on the control machine"),
        "a user certificate given as a CA": (
            dict(x509, site_x509_cas=[{"cert": str(user.cert_path)}]), "is not a CA certificate"),
        "a CRL that is no CRL": (
            dict(x509, site_x509_cas=[dict(ca, crl=str(pki.ca_path))]), "site_x509_cas (frontend_x509_cas)[0].crl"),
        "a CRL of another CA": (
            dict(x509, site_x509_cas=[dict(ca, crl=str(other.crl([])))]), "not signed by the CA"),
        "a CRL URL that is no http(s) URL": (
            dict(x509, site_x509_cas=[dict(ca, crl_url="ftp://ca.example.org/ca.crl")]),
            "site_x509_cas (frontend_x509_cas)[0].crl_url"),
        "a DN that maps to no user": (
            dict(x509, site_x509_cas=[ca], site_x509_users=[{"name": "", "dn": ALICE}]), "maps to no user"),
        "a malformed DN": (
            dict(x509, site_x509_cas=[ca], site_x509_users=[{"name": "alice", "dn": "Alice Grid"}]),
            "site_x509_users (frontend_x509_users)[0].dn"),
        "a DN in the comma form": (
            dict(x509, site_x509_cas=[ca], site_x509_users=[{"name": "alice", "dn": "CN=Alice,O=Grid"}]),
            "comma form"),
        "a DN given to two users": (
            dict(x509, site_x509_cas=[ca], site_x509_users=users + [{"name": "alice2", "dn": ALICE}]),
            "a certificate maps to one user"),
        "a user named oneadmin": (
            dict(x509, site_x509_cas=[ca], site_x509_users=[{"name": "oneadmin", "dn": ALICE}]),
            "site_x509_users (frontend_x509_users)[0].name is oneadmin"),
        "a user name with a blank": (
            dict(x509, site_x509_cas=[ca], site_x509_users=[{"name": "alice grid", "dn": ALICE}]),
            "site_x509_users (frontend_x509_users)[0].name"),
        "users without the X.509 login": ({"site_x509_users": users}, "site_x509_auth"),
        "the X.509 login on the test oned": (
            dict(x509, site_x509_cas=[ca], site_one_install="test_oned"), "site_one_install"),
        "users given as a string": (dict(x509, site_x509_cas=[ca], site_x509_users="alice"), "site_x509_users"),
    }
    return good, bad


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("frontend_x509_preflight")
    good, bad = cases(TestPki(work / "pki"), work)
    hosts = {case_host(case): dict(changes) for case, changes in good.items()}
    hosts.update({case_host(case): dict(changes) for case, (changes, _) in bad.items()})
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    site["site_one_repo_key"] = str(work / "one-repo-key.asc")
    (work / "one-repo-key.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n")
    result = run_cases(work, preflight_play("frontend"), {"cases": hosts}, site=site, args=["--limit", "cases"])
    return result, good, bad


GOOD_NAMES = ["the CAs of the site file and a user", "a CA given as PEM text", "the site's IGTF directory",
              "a DN whose CN holds a slash"]
BAD_NAMES = ["a CA directory that does not exist", "a CA directory without a CA", "a CA file that is no certificate",
             "a CA file the control machine lacks", "a user certificate given as a CA", "a CRL that is no CRL",
             "a CRL of another CA", "a CRL URL that is no http(s) URL", "a DN that maps to no user", "a malformed DN",
             "a DN in the comma form", "a DN given to two users", "a user named oneadmin", "a user name with a blank",
             "users without the X.509 login", "the X.509 login on the test oned", "users given as a string"]


@pytest.mark.parametrize("case", GOOD_NAMES)
def test_a_good_x509_setup_passes(run, case):
    result, good, _ = run
    assert case in good
    assert result.passed(case_host(case)), result.failures(case_host(case)) or result.output[-3000:]


@pytest.mark.parametrize("case", BAD_NAMES)
def test_a_bad_x509_setup_is_refused_naming_the_variable(run, case):
    result, _, bad = run
    text = result.failures(case_host(case))
    assert text, "%s was accepted" % case
    assert bad[case][1] in text, "%s: the failure does not say %r:\n%s" % (case, bad[case][1], text)


def test_every_case_is_tested(run):
    _, good, bad = run
    assert sorted(good) == sorted(GOOD_NAMES) and sorted(bad) == sorted(BAD_NAMES)

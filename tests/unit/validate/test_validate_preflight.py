"""The validate role's preflight: the site appliance it boots must be one of
the site's appliances, under a name its cleanup leaves alone.

ansible-playbook runs the role's set_vars.yml and preflight.yml on this
machine (connection local: the preflight only reads), with the demo site
file and one change per case host, in one run.
"""

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from preflight_testlib import ROOT, case_host, preflight_play, run_cases  # noqa: E402

SITE = ROOT / "inventories" / "demo" / "group_vars" / "all" / "site.yml"
APPLIANCES = [
    {"manifest": "images/base/ttylinux/ttylinux-9.7.img.manifest.xml"},
    {"manifest": "https://repo.example.org/images/base/deb/deb-12.img.manifest.xml", "name": "debian-12"},
    {"manifest": "images/base/x/x-1.img.manifest.xml", "name": "stratuslab-validate-x"},
]

GOOD = {
    "no appliance": {},
    "an appliance by its manifest's name and version": {"site_validate_appliance": "ttylinux-9.7"},
    "an appliance by the name site_appliances gives it": {"site_validate_appliance": "debian-12"},
}
BAD = {
    "an appliance that is not in site_appliances": (
        {"site_validate_appliance": "ttylinux"}, ["site_validate_appliance", "site_appliances",
                                                  "ttylinux-9.7, debian-12"]),
    "an appliance with the validation's own prefix": (
        {"site_validate_appliance": "stratuslab-validate-x"}, ["site_validate_appliance", "validate_name_prefix"]),
    "an appliance on a site without appliances": (
        {"site_validate_appliance": "ttylinux-9.7", "site_appliances": []}, ["site_appliances (none)"]),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("validate_preflight")
    site = yaml.safe_load(SITE.read_text(encoding="utf-8"))
    site["site_validate_image"] = str(SITE)  # any file on this machine: the preflight checks it exists
    site["site_appliances"] = APPLIANCES
    cases = {case_host(case): dict(changes) for case, changes in GOOD.items()}
    cases.update({case_host(case): dict(changes) for case, (changes, _) in BAD.items()})
    return run_cases(work, preflight_play("validate", hosts="cases"), {"cases": cases}, site=site)


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_site_passes(run, case):
    assert run.passed(case_host(case)), run.failures(case_host(case)) or run.output[-3000:]


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_appliance_is_refused_naming_the_variables(run, case):
    _, texts = BAD[case]
    failure = run.failures(case_host(case))
    assert failure, "%s was accepted" % case
    for text in texts:
        assert text in failure, "%s: %r not in the failure:\n%s" % (case, text, failure)

"""The site's appliance repository and its one path into OpenNebula, from outside.

site-one is the repository (Apache2, writes authenticated against its own
site LDAP) as well as the front-end. The first node is the repository's
client and the appliance publisher (tests/publisher.yml, through the
fixtures of tests/conftest.py): curl for the HTTP codes, tools/sl-publish
for publishing, xmlsec1 alone for the served manifest, all over the site
network through the site firewall (the repository is open to the site's
hosts). The front-end verifies and registers appliances as a site does,
with playbooks/appliances.yml (the frontend role's entry point appliances:
appliance_verify, then opennebula_image into the real OpenNebula), given
the appliances and the test signers' CA with -e.

Refused, with nothing registered: an image changed on the repository after
publishing, a manifest changed there, a signer whose certificate expired,
and a signer nobody trusts, all in one run beside a good appliance, which
is not registered either. tests/test_validate.py boots the registered one.
"""

import hashlib
import json
import uuid

import pytest
import stratuslab_testinfra
import testinfra
from conftest import (FRONTEND_APPLIANCES_DIR, PUBLISHER_DIR, TEST_IMAGE, WRITER, appliance_vars, manifest_path,
                      publish, repository_name, run_playbook, task_results)

CLIENT = stratuslab_testinfra.names("nodes")[0]
testinfra_hosts = stratuslab_testinfra.hosts(CLIENT)

FRONTEND = stratuslab_testinfra.names("frontend")[0]
REPOSITORY = stratuslab_testinfra.names("repository")[0]
HTTPS = "https://%s/" % repository_name()
HTTP = "http://%s/" % repository_name()
READER = ("carol", "demo-carol-password")  # inventories/demo: a valid user outside appliance-writers
STORE = "/srv/stratuslab/appliances/"  # roles/appliance_repo: appliance_repo_root
VERIFY = "Verify each appliance's signature and checksums, and place the verified image"
REGISTER = "Register each verified image in the site's image datastore"

# HTTP status code of one request from the client (curl checks TLS against
# the client's system store, which holds the site CA from the ldap role).
curl = stratuslab_testinfra.http_code


def _repository():
    return testinfra.get_host(stratuslab_testinfra.hosts(REPOSITORY)[0])


def _frontend():
    return testinfra.get_host(stratuslab_testinfra.hosts(FRONTEND)[0])


def _image(name):
    """The front-end's OpenNebula image ``name`` (oneimage show --json), or None."""
    out = _frontend().run("runuser -u oneadmin -- oneimage show %s --json", name)
    if out.rc != 0:
        return None
    return json.loads(out.stdout)["IMAGE"]


@pytest.fixture(scope="module")
def uploaded(host, publisher):
    """A file alice uploaded (a fresh collection and file per test run)."""
    collection = "images/test-%s/" % uuid.uuid4().hex[:8]
    assert curl(host, "MKCOL", HTTPS + collection, user=WRITER) == 201
    path = collection + "hello.txt"
    assert curl(host, "PUT", HTTPS + path, user=WRITER, data="hello appliance") == 201
    return path


# --- the repository, over HTTP ---------------------------------------------------


def test_anonymous_read_over_https_and_http(host, uploaded):
    assert curl(host, "GET", HTTPS + uploaded) == 200
    assert curl(host, "HEAD", HTTPS + uploaded, extra="-I") == 200
    assert curl(host, "GET", HTTP + uploaded) == 200
    assert host.run("curl -sS '%s'", HTTPS + uploaded).stdout == "hello appliance"


def test_anonymous_write_asks_for_credentials(host, publisher):
    assert curl(host, "PUT", HTTPS + "images/anon.txt", data="x") == 401
    assert curl(host, "MKCOL", HTTPS + "images/anon/") == 401
    assert curl(host, "DELETE", HTTPS + "images/") == 401


def test_wrong_password_is_refused(host, publisher):
    assert curl(host, "PUT", HTTPS + "images/wrong.txt", user=("alice", "not-her-password"), data="x") == 401


def test_user_outside_the_writers_group_is_forbidden(host, uploaded):
    assert curl(host, "PUT", HTTPS + "images/carol.txt", user=READER, data="x") == 403
    assert curl(host, "DELETE", HTTPS + uploaded, user=READER) == 403
    assert curl(host, "GET", HTTPS + uploaded) == 200


def test_writes_over_plain_http_are_refused(host, publisher):
    # No password is ever asked for over http: writes are refused outright.
    assert curl(host, "PUT", HTTP + "images/plain.txt", data="x") == 403
    assert curl(host, "PUT", HTTP + "images/plain.txt", user=WRITER, data="x") == 403
    assert curl(host, "MKCOL", HTTP + "images/plain/", user=WRITER) == 403


def test_writer_uploads_then_everyone_reads(host, publisher):
    path = "images/test-%s.txt" % uuid.uuid4().hex[:8]
    assert curl(host, "PUT", HTTPS + path, user=WRITER, data="uploaded by alice") == 201
    assert host.run("curl -sS '%s'", HTTP + path).stdout == "uploaded by alice"
    assert curl(host, "DELETE", HTTPS + path, user=WRITER) == 204
    assert curl(host, "GET", HTTPS + path) == 404


def test_repository_certificate_is_signed_by_the_site_ca(host, publisher):
    # No -k anywhere: the client trusts the site CA from the ldap role.
    out = host.run("curl -sS -o /dev/null -w '%%{ssl_verify_result}' '%s'", HTTPS)
    assert out.rc == 0 and out.stdout == "0", out.stderr


# --- publishing, verifying, registering ---------------------------------------------


def test_published_manifest_is_an_xml_signature_that_xmlsec1_verifies(host, publisher):
    # From outside, with the standard tool alone: the manifest served by the
    # repository is an enveloped W3C XML Signature with the signer's
    # certificate in KeyInfo/X509Data, and xmlsec1 --verify accepts it with the
    # signers' CA trusted, refuses it with another signer trusted, and refuses
    # it once a value is changed.
    name = "sltest%s" % uuid.uuid4().hex[:6]
    out = publish(publisher, name, "alice")
    assert out.rc == 0, out.stderr
    assert WRITER[1] not in out.stdout + out.stderr
    local = "/var/tmp/%s.manifest.xml" % name
    assert host.run("curl -sSf -o %s '%s'", local, HTTP + manifest_path(name)).rc == 0
    text = host.file(local).content_string
    assert '<manifest format="2">' in text
    assert '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">' in text
    assert '<ds:Reference URI="">' in text and "#enveloped-signature" in text
    assert "<ds:X509Certificate>" in text
    good = host.run("xmlsec1 --verify --trusted-pem %s/signers/ca.crt %s", PUBLISHER_DIR, local)
    assert good.rc == 0 and "OK" in good.stdout + good.stderr, good.stderr
    other = host.run("xmlsec1 --verify --trusted-pem %s/signers/mallory.crt %s", PUBLISHER_DIR, local)
    assert other.rc != 0
    host.run("sed -i 's|<version>1.0</version>|<version>1.1</version>|' %s", local)
    edited = host.run("xmlsec1 --verify --trusted-pem %s/signers/ca.crt %s", PUBLISHER_DIR, local)
    assert edited.rc != 0 and "FAIL" in edited.stdout + edited.stderr
    host.run("rm -f %s", local)


def test_published_appliance_is_verified_on_the_front_end(site_appliance):
    assert WRITER[1] not in site_appliance["publish_output"]
    [verify] = task_results(site_appliance["run"], VERIFY, FRONTEND)
    [item] = verify["results"]
    assert item.get("changed") is True and not item.get("failed"), item
    assert item["signer"]["subject"] == "CN=alice"
    assert item["signer"]["issuer"] == "CN=Site test appliance signers CA"
    frontend = _frontend()
    dest = item["dest"]
    assert dest.startswith(FRONTEND_APPLIANCES_DIR)
    assert frontend.run("sha256sum %s", dest).stdout.split()[0] == item["manifest"]["sha256"]
    image_sha = hashlib.sha256(TEST_IMAGE.read_bytes()).hexdigest()
    assert frontend.run("gzip -dc %s | sha256sum", dest).stdout.split()[0] == image_sha


def test_verified_appliance_is_registered_in_opennebula(site_appliance):
    [register] = task_results(site_appliance["run"], REGISTER, FRONTEND)
    [item] = register["results"]
    assert item.get("changed") is True and not item.get("failed"), item
    image = _image(site_appliance["name"])
    assert image is not None, "%s is not in OpenNebula" % site_appliance["name"]
    assert image["STATE"] in ("1", "2"), image  # READY, or USED by a VM
    # The datastore holds the raw image, decompressed by OpenNebula's
    # datastore driver (a VM boots from it in tests/test_validate.py).
    source = _frontend().run("sha256sum %s", image["SOURCE"])
    assert source.rc == 0, source.stderr
    assert source.stdout.split()[0] == hashlib.sha256(TEST_IMAGE.read_bytes()).hexdigest(), image
    template = {key.upper(): value for key, value in (image.get("TEMPLATE") or {}).items()}
    [verify] = task_results(site_appliance["run"], VERIFY, FRONTEND)
    assert template.get("SL_SHA256") == verify["results"][0]["manifest"]["sha256"], template
    assert template.get("SL_SIGNER") == "CN=alice", template


def test_appliances_rerun_changes_nothing(site_appliance):
    again = run_playbook("playbooks/appliances.yml", site_appliance["vars"])
    assert again["rc"] == 0, again["stdout"][-4000:] + again["stderr"][-2000:]
    assert again["report"]["stats"][FRONTEND]["changed"] == 0, again["report"]["stats"]
    [verify] = task_results(again, VERIFY, FRONTEND)
    assert [r.get("changed") for r in verify["results"]] == [False]


def test_repository_lets_caches_keep_images_and_revalidate_manifests(host, site_appliance):
    # A new version is a new file: caches keep images, and revalidate manifests.
    base = HTTP + manifest_path(site_appliance["appliance"])[:-len(".manifest.xml")]
    assert "immutable" in host.run("curl -sSI '%s.gz'", base).stdout
    assert "no-cache" in host.run("curl -sSI '%s.manifest.xml'", base).stdout


@pytest.fixture(scope="module")
def refused(publisher):
    """One appliances.yml run with four bad appliances and a good one: its
    result, the appliances by case, and the image names it must not register."""
    cases = {case: "sltest%s" % uuid.uuid4().hex[:6] for case in ("image", "manifest", "expired", "untrusted", "good")}
    for case, name in cases.items():
        out = publish(publisher, name, {"expired": "expired", "untrusted": "mallory"}.get(case, "alice"))
        assert out.rc == 0, "%s: %s" % (case, out.stderr)
    repository = _repository()
    stored = STORE + manifest_path(cases["image"])[:-len(".manifest.xml")] + ".gz"
    flip = repository.run(
        "python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[1000]^=1; "
        "open(p,'wb').write(bytes(b))\" %s", stored)
    assert flip.rc == 0, flip.stderr
    edit = repository.run("sed -i 's|<osversion>1</osversion>|<osversion>2</osversion>|' %s",
                          STORE + manifest_path(cases["manifest"]))
    assert edit.rc == 0, edit.stderr
    run = run_playbook("playbooks/appliances.yml", appliance_vars(publisher, list(cases.values())))
    results = {}
    for verify in task_results(run, VERIFY, FRONTEND):
        for item in verify.get("results", []):
            results[item["__frontend_appliance"]["manifest_url"].rsplit("/", 1)[-1].split("-")[0]] = item
    return {"run": run, "cases": cases, "results": {case: results.get(name) for case, name in cases.items()}}


@pytest.mark.parametrize("case, reason, says", [
    ("image", "content", ""),
    ("manifest", "signature", "changed after signing"),
    ("expired", "trust", "expired on"),
    ("untrusted", "trust", "CN=mallory"),
])
def test_bad_appliance_is_refused_and_not_placed(refused, case, reason, says):
    result = refused["results"][case]
    assert result is not None, "appliances.yml did not verify %s:\n%s" % (case, refused["run"]["stdout"][-3000:])
    assert result.get("failed") is True and result.get("reason") == reason, result
    assert says in result["msg"], result["msg"]
    if case == "expired":
        assert "CN=expired" in result["msg"]
    dest = "%s/%s-1.0.img" % (FRONTEND_APPLIANCES_DIR, refused["cases"][case])
    assert not _frontend().file(dest).exists


def test_a_refused_appliance_registers_nothing(refused):
    run = refused["run"]
    assert run["rc"] != 0, "appliances.yml passed with tampered appliances:\n" + run["stdout"][-3000:]
    good = refused["results"]["good"]
    assert good is not None and not good.get("failed"), good
    assert task_results(run, REGISTER, FRONTEND) == [], "the registration ran after a refusal"
    for case, name in refused["cases"].items():
        assert _image("%s-1.0" % name) is None, "%s (%s) was registered" % (name, case)


# --- the repository host -----------------------------------------------------------


def test_repository_configuration_checks(publisher):
    repository = _repository()
    assert repository.run("apache2ctl -t").rc == 0
    check = repository.run("/usr/local/sbin/stratuslab-apache-site-check "
                           "/etc/apache2/sites-available/stratuslab-appliances.conf stratuslab-appliances.conf")
    assert check.rc == 0, check.stderr
    assert repository.service("apache2").is_running
    assert repository.service("apache2").is_enabled


def test_repository_key_is_among_the_secrets_the_no_secrets_test_looks_for():
    # tests/test_no_secrets.py greps the Ansible log for every private key on
    # the hosts; the repository's TLS key must be one of them.
    from test_no_secrets import host_secrets

    labels = [secret.label for secret in host_secrets(stratuslab_testinfra.hosts(REPOSITORY)[0])]
    assert [label for label in labels if "/etc/ssl/stratuslab-appliances/" in label], labels


def test_no_unit_failed(host, publisher):
    for target in (host, _repository()):
        assert target.run("systemctl --failed --no-legend --plain").stdout.strip() == ""

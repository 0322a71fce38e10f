"""What users of the appliance repository observe, from the client host.

Everything goes over the network from ar-client to ar-repo, as a publisher
and the site's hosts would: curl for the HTTP codes, tools/sl-publish for
publishing, and the appliance_verify module (run through ansible-playbook
against the client) for verification.
"""

import json
import os
import subprocess
import tempfile
import uuid

import pytest
import stratuslab_testinfra
import testinfra
import yaml

testinfra_hosts = stratuslab_testinfra.hosts("clients")

REPO_HOST = "ar-repo.demo.stratuslab.test"
HTTPS = "https://%s/" % REPO_HOST
HTTP = "http://%s/" % REPO_HOST
# inventories/demo: site_ldap_users and site_ldap_groups (appliance-writers: alice, bob).
WRITER = ("alice", "demo-alice-password")
READER = ("carol", "demo-carol-password")  # a valid user outside the writers group
TEST_DIR = "/opt/stratuslab-test"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())


# HTTP status code of one request from the client (curl checks TLS against
# the system store).
curl = stratuslab_testinfra.http_code


@pytest.fixture(scope="module")
def uploaded(host):
    """A file alice uploaded (a fresh collection and file per test run)."""
    collection = "images/test-%s/" % uuid.uuid4().hex[:8]
    assert curl(host, "MKCOL", HTTPS + collection, user=WRITER) == 201
    path = collection + "hello.txt"
    assert curl(host, "PUT", HTTPS + path, user=WRITER, data="hello appliance") == 201
    return path


def test_anonymous_read_over_https_and_http(host, uploaded):
    assert curl(host, "GET", HTTPS + uploaded) == 200
    assert curl(host, "HEAD", HTTPS + uploaded, extra="-I") == 200
    assert curl(host, "GET", HTTP + uploaded) == 200
    assert host.run("curl -sS '%s'", HTTPS + uploaded).stdout == "hello appliance"


def test_anonymous_write_asks_for_credentials(host):
    assert curl(host, "PUT", HTTPS + "images/anon.txt", data="x") == 401
    assert curl(host, "MKCOL", HTTPS + "images/anon/") == 401
    assert curl(host, "DELETE", HTTPS + "images/") == 401


def test_wrong_password_is_refused(host):
    assert curl(host, "PUT", HTTPS + "images/wrong.txt", user=("alice", "not-her-password"), data="x") == 401


def test_user_outside_the_writers_group_is_forbidden(host, uploaded):
    assert curl(host, "PUT", HTTPS + "images/carol.txt", user=READER, data="x") == 403
    assert curl(host, "DELETE", HTTPS + uploaded, user=READER) == 403
    assert curl(host, "GET", HTTPS + uploaded) == 200


def test_writes_over_plain_http_are_refused(host):
    # No password is ever asked for over http: writes are refused outright.
    assert curl(host, "PUT", HTTP + "images/plain.txt", data="x") == 403
    assert curl(host, "PUT", HTTP + "images/plain.txt", user=WRITER, data="x") == 403
    assert curl(host, "MKCOL", HTTP + "images/plain/", user=WRITER) == 403


def test_writer_uploads_then_everyone_reads(host):
    path = "images/test-%s.txt" % uuid.uuid4().hex[:8]
    assert curl(host, "PUT", HTTPS + path, user=WRITER, data="uploaded by alice") == 201
    assert host.run("curl -sS '%s'", HTTP + path).stdout == "uploaded by alice"
    assert curl(host, "DELETE", HTTPS + path, user=WRITER) == 204
    assert curl(host, "GET", HTTPS + path) == 404


def test_repository_certificate_is_signed_by_the_site_ca(host):
    # No -k anywhere: the client trusts the site CA from the ldap role.
    out = host.run("curl -sS -o /dev/null -w '%%{ssl_verify_result}' '%s'", HTTPS)
    assert out.rc == 0 and out.stdout == "0", out.stderr


# --- publishing and verification ------------------------------------------------


def publish(host, name, signer, version="1.0"):
    cmd = (
        "SL_PUBLISH_PASSWORD='%s' %s/tools/sl-publish --repository %s --user alice "
        "--key %s/signers/%s.key --cert %s/signers/%s.crt --type base --name %s --version %s "
        "--os ttylinux --osversion 9.7 %s/ttylinux.img"
        % (WRITER[1], TEST_DIR, HTTPS, TEST_DIR, signer, TEST_DIR, signer, name, version, TEST_DIR)
    )
    return host.run(cmd)


def run_on_client(tasks):
    """Run tasks on ar-client through ansible-playbook (the project's modules); their results."""
    play = [{"name": "Run on the client", "hosts": "ar-client", "gather_facts": False, "tasks": tasks}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as book:
        yaml.safe_dump(play, book)
    env = dict(os.environ)
    env.update({
        "ANSIBLE_LIBRARY": os.path.join(PROJECT, "library"),
        "ANSIBLE_MODULE_UTILS": os.path.join(PROJECT, "module_utils"),
        "ANSIBLE_DOC_FRAGMENT_PLUGINS": os.path.join(PROJECT, "module_utils", "doc_fragments"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_NOCOLOR": "1",
    })
    proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], book.name],
                          capture_output=True, text=True, env=env, timeout=300)
    os.unlink(book.name)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("ansible-playbook: %s\n%s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    return [task["hosts"]["ar-client"] for task in data["plays"][0]["tasks"]]


def verify_tasks(name, dest, version="1.0"):
    manifest = "%simages/base/%s/%s-%s.img.manifest.xml" % (HTTP, name, name, version)
    return [
        {"name": "Read the trusted signers' CA",
         "ansible.builtin.slurp": {"src": TEST_DIR + "/signers/ca.crt"}, "register": "ca"},
        {"name": "Verify", "register": "appliance",
         "appliance_verify": {"manifest_url": manifest, "dest": dest,
                              "trusted_signers": ["{{ ca.content | b64decode }}"]}},
    ]


def verify(name, dest, version="1.0"):
    """appliance_verify's result on ar-client."""
    return run_on_client(verify_tasks(name, dest, version))[-1]


def test_published_appliance_verifies_on_the_client(host):
    name = "tty%s" % uuid.uuid4().hex[:6]
    out = publish(host, name, "alice")
    assert out.rc == 0, out.stderr
    assert WRITER[1] not in out.stdout + out.stderr
    dest = "/var/tmp/%s.img.gz" % name
    result = verify(name, dest)
    assert result.get("changed") is True and not result.get("failed"), result
    assert result["signer"]["subject"] == "CN=alice"
    assert host.file(dest).exists
    assert host.run("sha256sum %s", dest).stdout.split()[0] == result["manifest"]["sha256"]
    assert host.run("gzip -dc %s | cmp - %s/ttylinux.img", dest, TEST_DIR).rc == 0
    again = verify(name, dest)
    assert again.get("changed") is False, again
    # Caches keep images (a new version is a new file) and revalidate manifests.
    base = "%simages/base/%s/%s-1.0.img" % (HTTP, name, name)
    assert "immutable" in host.run("curl -sSI '%s.gz'", base).stdout
    assert "no-cache" in host.run("curl -sSI '%s.manifest.xml'", base).stdout


ONED_AUTH = "oneadmin:ar-test-oned-pw"


def test_verified_appliance_is_registered_in_the_test_oned(host):
    # The test oned (tools/test_oned.py, not OpenNebula) on the client, as a
    # transient unit; its default image datastore copies from /var/tmp.
    if not host.service("ar-test-oned").is_running:
        host.run("echo '%s' > /var/tmp/one_auth", ONED_AUTH)
        host.run("systemctl reset-failed ar-test-oned")
        start = host.run("systemd-run --unit=ar-test-oned python3 %s/tools/test_oned.py "
                         "--listen 127.0.0.1:2633 --state /var/tmp/oned.db --auth /var/tmp/one_auth", TEST_DIR)
        assert start.rc == 0, start.stderr
        assert host.run("for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:2633/ && exit 0; "
                        "sleep 0.2; done; exit 1").rc == 0
    name = "tty%s" % uuid.uuid4().hex[:6]
    assert publish(host, name, "alice").rc == 0
    register = {"name": "Register", "opennebula_image": {
        "api_url": "http://127.0.0.1:2633/RPC2", "api_username": "oneadmin",
        "api_password": ONED_AUTH.split(":", 1)[1], "name": name, "datastore": "default",
        "path": "{{ appliance.dest }}", "template": {"sl_sha256": "{{ appliance.manifest.sha256 }}"}}}
    results = run_on_client(verify_tasks(name, "/var/tmp/%s.img.gz" % name) + [register])
    image = results[-1]
    assert image.get("changed") is True and not image.get("failed"), image
    assert image["image"]["state"] == "READY"
    assert image["image"]["size_mb"] == 2  # the 2 MiB raw image, decompressed by the "driver"
    again = run_on_client(verify_tasks(name, "/var/tmp/%s.img.gz" % name) + [register])
    assert again[-1].get("changed") is False, again[-1]


def test_tampered_image_is_refused_and_nothing_is_written(host):
    name = "tty%s" % uuid.uuid4().hex[:6]
    assert publish(host, name, "alice").rc == 0
    repo = testinfra.get_host("podman://ar-repo")
    stored = "/srv/stratuslab/appliances/images/base/%s/%s-1.0.img.gz" % (name, name)
    flip = repo.run(
        "python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[1000]^=1; "
        "open(p,'wb').write(bytes(b))\" %s", stored)
    assert flip.rc == 0, flip.stderr
    dest = "/var/tmp/%s.img.gz" % name
    result = verify(name, dest)
    assert result.get("failed") is True and result["reason"] == "content", result
    assert not host.file(dest).exists
    assert host.run("ls -A /var/tmp | grep -c %s", name).stdout.strip() == "0"


def test_published_manifest_is_an_xml_signature_that_xmlsec1_verifies(host):
    # From outside, with the standard tool alone: the manifest served by the
    # repository is an enveloped W3C XML Signature with the signer's
    # certificate in KeyInfo/X509Data, and xmlsec1 --verify accepts it with the
    # signers' CA trusted, refuses it with another signer trusted, and refuses
    # it once a value is changed.
    name = "tty%s" % uuid.uuid4().hex[:6]
    assert publish(host, name, "alice").rc == 0
    local = "/var/tmp/%s.manifest.xml" % name
    url = "%simages/base/%s/%s-1.0.img.manifest.xml" % (HTTP, name, name)
    assert host.run("curl -sSf -o %s '%s'", local, url).rc == 0
    text = host.file(local).content_string
    assert '<manifest format="2">' in text
    assert '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">' in text
    assert '<ds:Reference URI="">' in text and "#enveloped-signature" in text
    assert "<ds:X509Certificate>" in text
    good = host.run("xmlsec1 --verify --trusted-pem %s/signers/ca.crt %s", TEST_DIR, local)
    assert good.rc == 0 and "OK" in good.stdout + good.stderr, good.stderr
    other = host.run("xmlsec1 --verify --trusted-pem %s/signers/mallory.crt %s", TEST_DIR, local)
    assert other.rc != 0
    host.run("sed -i 's|<version>1.0</version>|<version>1.1</version>|' %s", local)
    edited = host.run("xmlsec1 --verify --trusted-pem %s/signers/ca.crt %s", TEST_DIR, local)
    assert edited.rc != 0 and "FAIL" in edited.stdout + edited.stderr
    host.run("rm -f %s", local)


def test_manifest_changed_on_the_repository_is_refused(host):
    name = "tty%s" % uuid.uuid4().hex[:6]
    assert publish(host, name, "alice").rc == 0
    repo = testinfra.get_host("podman://ar-repo")
    stored = "/srv/stratuslab/appliances/images/base/%s/%s-1.0.img.manifest.xml" % (name, name)
    assert repo.run("sed -i 's|<osversion>9.7</osversion>|<osversion>9.8</osversion>|' %s", stored).rc == 0
    dest = "/var/tmp/%s.img.gz" % name
    result = verify(name, dest)
    assert result.get("failed") is True and result["reason"] == "signature", result
    assert "changed after signing" in result["msg"]
    assert not host.file(dest).exists


@pytest.mark.parametrize("signer, says", [
    ("expired", ["CN=expired", "expired on"]),   # issued by the signers' CA, valid only in the past
    ("mallory", ["CN=mallory"]),                 # self-signed: no CA the host trusts
], ids=["expired", "untrusted"])
def test_signer_not_trusted_is_refused(host, signer, says):
    name = "tty%s" % uuid.uuid4().hex[:6]
    assert publish(host, name, signer).rc == 0
    dest = "/var/tmp/%s.img.gz" % name
    result = verify(name, dest)
    assert result.get("failed") is True and result["reason"] == "trust", result
    for text in says:
        assert text in result["msg"], result["msg"]
    assert not host.file(dest).exists


def test_repository_configuration_checks(host):
    repo = testinfra.get_host("podman://ar-repo")
    assert repo.run("apache2ctl -t").rc == 0
    check = repo.run("/usr/local/sbin/stratuslab-apache-site-check "
                     "/etc/apache2/sites-available/stratuslab-appliances.conf stratuslab-appliances.conf")
    assert check.rc == 0, check.stderr
    assert repo.service("apache2").is_running
    assert repo.service("apache2").is_enabled


def test_no_unit_failed(host):
    for target in (host, testinfra.get_host("podman://ar-repo")):
        assert target.run("systemctl --failed --no-legend --plain").stdout.strip() == ""

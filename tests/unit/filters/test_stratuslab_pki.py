"""Unit tests of filter_plugins/stratuslab_pki.py: the TLS files and trusted signers a site file names.

A test PKI is made once (a root CA, an intermediate CA, server certificates
it issued, an expired one, a foreign CA's), and written into files the way a
site gives them: each server certificate followed by its intermediate, its
key alone, the root CA alone. One kind of mistake per test, for every role
of file (certificate, key, CA) where it applies.
"""

import base64
import datetime
import functools

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from filter_testlib import load_plugin

pki = load_plugin("stratuslab_pki")

NOW = datetime.datetime.now(datetime.timezone.utc)
LABELS = {"cert": "site_ldap_tls_cert (ldap_tls_cert)", "key": "site_ldap_tls_key (ldap_tls_key)",
          "ca": "site_ldap_tls_ca (ldap_tls_ca)"}


def _identity(cn, issuer=None, ca=False, days=30, not_before_days=-1, kind="rsa"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" \
        else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name)
            .issuer_name(issuer[1].subject if issuer else name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW + datetime.timedelta(days=not_before_days))
            .not_valid_after(NOW + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer[0] if issuer else key, hashes.SHA256()))
    return key, cert


def _pem(item, password=None):
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM)
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return item.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption)


@functools.lru_cache(maxsize=None)
def identities():
    root = _identity("Test Root CA", ca=True, days=3650)
    inter = _identity("Test Host CA", issuer=root, ca=True, days=3650)
    return {
        "root": root,
        "inter": inter,
        "server": _identity("ldap.example.org", issuer=inter),
        "server_ec": _identity("ldap-ec.example.org", issuer=inter, kind="ec"),
        "other": _identity("other.example.org", issuer=inter),
        "expired": _identity("old.example.org", issuer=inter, days=-1, not_before_days=-30),
        "future": _identity("soon.example.org", issuer=inter, days=60, not_before_days=5),
        "foreign_ca": _identity("Foreign CA", ca=True, days=3650),
    }


@pytest.fixture()
def files(tmp_path):
    """The PKI as files: {name: path}."""
    ids = identities()
    written = {}

    def write(name, data):
        path = tmp_path / name
        path.write_bytes(data)
        written[name] = str(path)

    write("server.pem", _pem(ids["server"][1]) + _pem(ids["inter"][1]))
    write("server-leaf.pem", _pem(ids["server"][1]))
    write("server-key.pem", _pem(ids["server"][0]))
    write("server-ec.pem", _pem(ids["server_ec"][1]) + _pem(ids["inter"][1]))
    write("server-ec-key.pem", _pem(ids["server_ec"][0]))
    write("other-key.pem", _pem(ids["other"][0]))
    write("expired.pem", _pem(ids["expired"][1]) + _pem(ids["inter"][1]))
    write("expired-key.pem", _pem(ids["expired"][0]))
    write("future.pem", _pem(ids["future"][1]) + _pem(ids["inter"][1]))
    write("future-key.pem", _pem(ids["future"][0]))
    write("ca.pem", _pem(ids["root"][1]))
    write("foreign-ca.pem", _pem(ids["foreign_ca"][1]))
    write("server-as-ca.pem", _pem(ids["server"][1]))
    write("encrypted-key.pem", _pem(ids["server"][0], password=b"secret"))
    write("server.der", ids["server"][1].public_bytes(serialization.Encoding.DER))
    write("server-and-key.pem", _pem(ids["server"][1]) + _pem(ids["inter"][1]) + _pem(ids["server"][0]))
    write("empty.pem", b"")
    write("vaulted-key.pem", b"$ANSIBLE_VAULT;1.1;AES256\n6162636465\n")
    (tmp_path / "a-directory").mkdir()
    written["a-directory"] = str(tmp_path / "a-directory")
    return written


def tls(files, cert="server.pem", key="server-key.pem", ca="ca.pem", contents=None):
    def path(name):
        return files.get(name, name) if name else ""
    return pki.sl_tls_errors(path(cert), path(key), path(ca), labels=LABELS, contents=contents, prefix="ldap: ")


def only(found, *words):
    assert len(found) == 1, found
    for word in words:
        assert word in found[0], found[0]
    assert found[0].startswith("ldap: site_ldap_tls_") and found[0].endswith(".")


def test_a_good_certificate_key_and_ca_pass(files):
    assert tls(files) == []
    assert tls(files, "server-ec.pem", "server-ec-key.pem") == []


def test_empty_paths_are_not_checked(files):
    assert tls(files, "", "", "") == []
    assert tls(files, "", "", "ca.pem") == []  # an existing LDAP server: its CA only


ROLES = ("cert", "key", "ca")


@pytest.mark.parametrize("role", ROLES)
def test_every_file_that_does_not_exist_is_refused(files, role):
    args = dict(cert="server.pem", key="server-key.pem", ca="ca.pem")
    args[role] = "/nonexistent/" + role + ".pem"
    only(tls(files, **args), LABELS[role], "'/nonexistent/%s.pem' does not exist on the control machine" % role)


@pytest.mark.parametrize("role", ROLES)
def test_every_file_that_is_a_directory_is_refused(files, role):
    args = dict(cert="server.pem", key="server-key.pem", ca="ca.pem")
    args[role] = "a-directory"
    only(tls(files, **args), LABELS[role], "is not a file")


@pytest.mark.parametrize("role, name, words", [
    ("cert", "server-key.pem", ["holds no PEM certificate"]),
    ("cert", "server.der", ["holds no PEM certificate"]),
    ("cert", "empty.pem", ["holds no PEM certificate"]),
    ("key", "server.pem", ["holds no PEM private key"]),
    ("key", "empty.pem", ["holds no PEM private key"]),
    ("ca", "server-key.pem", ["holds no PEM certificate"]),
    ("ca", "server-as-ca.pem", ["is not a CA", "basicConstraints CA:TRUE"]),
])
def test_every_file_that_is_not_what_it_must_be_is_refused(files, role, name, words):
    args = dict(cert="server.pem", key="server-key.pem", ca="ca.pem")
    args[role] = name
    found = tls(files, **args)
    assert any(LABELS[role] in message and all(word in message for word in words) for message in found), found


def test_a_key_that_is_not_the_certificates_is_refused(files):
    only(tls(files, key="other-key.pem"), "site_ldap_tls_key", "is not the key of site_ldap_tls_cert")


def test_a_key_with_a_passphrase_is_refused(files):
    only(tls(files, key="encrypted-key.pem"), "site_ldap_tls_key", "passphrase")


def test_a_certificate_file_holding_its_key_is_refused(files):
    only(tls(files, cert="server-and-key.pem"), "site_ldap_tls_cert", "holds a private key too")


@pytest.mark.parametrize("cert, words", [("expired.pem", ["expired on"]), ("future.pem", ["is not valid before"])])
def test_a_certificate_not_valid_today_is_refused(files, cert, words):
    only(tls(files, cert=cert, key=cert.replace(".pem", "-key.pem")), "site_ldap_tls_cert", *words)


def test_a_certificate_another_ca_issued_is_refused(files):
    only(tls(files, ca="foreign-ca.pem"), "site_ldap_tls_cert", "is not issued by site_ldap_tls_ca",
         "CN=Foreign CA")


def test_a_certificate_without_its_intermediate_is_refused(files):
    # The root did not sign the leaf: the intermediate must follow it in the file.
    only(tls(files, cert="server-leaf.pem"), "is not issued by", "CN=Test Host CA")


def test_a_ca_file_with_the_intermediate_passes(files, tmp_path):
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(_pem(identities()["inter"][1]) + _pem(identities()["root"][1]))
    assert tls(files, cert="server-leaf.pem", ca=str(bundle)) == []


def test_a_vault_encrypted_file_is_read_from_its_decrypted_contents(files):
    key = files["vaulted-key.pem"]
    assert tls(files, key="vaulted-key.pem", contents={key: _pem(identities()["server"][0]).decode()}) == []
    only(tls(files, key="vaulted-key.pem", contents={key: _pem(identities()["other"][0]).decode()}),
         "is not the key of")
    # Not decrypted for the filter: its presence is all it checks.
    assert tls(files, key="vaulted-key.pem") == []


def test_every_tls_mistake_is_reported_at_once(files):
    found = tls(files, cert="expired.pem", key="other-key.pem", ca="foreign-ca.pem")
    assert len(found) == 3, found


# --------------------------------------------------------------------------
# Trusted signers
# --------------------------------------------------------------------------


def signers(items, **kwargs):
    return pki.sl_signer_errors(items, "site_repository_trusted_signers", prefix="appliance_repo: ", **kwargs)


def test_good_signers_pass(files):
    assert signers([]) == []
    assert signers([files["ca.pem"], _pem(identities()["server"][1]).decode(), files["server.pem"]]) == []
    assert signers([_pem(identities()["foreign_ca"][1]).decode()]) == []


def test_a_ca_issued_certificate_alone_is_refused_naming_its_ca():
    found = signers([_pem(identities()["server"][1]).decode()])
    assert len(found) == 1, found
    assert found[0].startswith("appliance_repo: site_repository_trusted_signers[0] holds CN=ldap.example.org")
    assert "issued by CN=Test Host CA" in found[0] and "list that CA instead" in found[0]


@pytest.mark.parametrize("item, words", [
    ("/nonexistent/signers.pem", ["[0] (/nonexistent/signers.pem)", "does not exist"]),
    ("server-key.pem", ["holds no PEM certificate"]),
    ("server.der", ["holds no PEM certificate"]),
    ("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----", ["does not parse"]),
    ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", ["holds no PEM certificate"]),
    ("expired.pem", ["expired on"]),
    ("", ["[0] is ''"]),
    (["nested"], ["[0] is ['nested']"]),
])
def test_every_signer_that_is_not_a_certificate_is_refused(files, item, words):
    item = files.get(item, item) if isinstance(item, str) else item
    found = signers([item])
    assert found and all(m.startswith("appliance_repo: site_repository_trusted_signers[0]") for m in found), found
    for word in words:
        assert word in found[0], found


@pytest.mark.parametrize("value", ["/etc/ssl/signers.pem", {"ca": "x"}])
def test_signers_must_be_a_list(value):
    found = signers(value)
    assert len(found) == 1 and "expected a list of certificates" in found[0], found


# --------------------------------------------------------------------------
# OpenPGP keys (apt's Signed-By)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF...\n", b"\x99\x01\x0d\x04",
                                  b"\xc6\x01"])
def test_an_openpgp_key_passes(data):
    assert pki.sl_openpgp_key_problem(base64.b64encode(data).decode()) == ""


@pytest.mark.parametrize("data, words", [(b"", "empty"), (b"<html>404</html>", "not an OpenPGP public key"),
                                         (b"-----BEGIN CERTIFICATE-----", "not an OpenPGP")])
def test_what_is_not_an_openpgp_key_is_refused(data, words):
    assert words in pki.sl_openpgp_key_problem(base64.b64encode(data).decode())


def test_content_that_is_not_base64_is_refused():
    assert pki.sl_openpgp_key_problem("%%%") == "cannot be read"


def test_filter_module_maps_the_names():
    assert pki.FilterModule().filters() == {"sl_tls_errors": pki.sl_tls_errors,
                                            "sl_signer_errors": pki.sl_signer_errors,
                                            "sl_openpgp_key_problem": pki.sl_openpgp_key_problem,
                                            "sl_x509_ca_errors": pki.sl_x509_ca_errors,
                                            "sl_x509_dn_problem": pki.sl_x509_dn_problem,
                                            "sl_x509_user_errors": pki.sl_x509_user_errors}


# --- sl_x509_ca_errors, sl_x509_user_errors: the X.509 login of the front-end ---

def _pem_text(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _crl_pem(issuer_name, key):
    crl = (x509.CertificateRevocationListBuilder().issuer_name(issuer_name).last_update(NOW)
           .next_update(NOW + datetime.timedelta(days=7)).sign(key, hashes.SHA256()))
    return crl.public_bytes(serialization.Encoding.PEM).decode()


@functools.lru_cache(maxsize=None)
def _grid_cas():
    ca = _identity("grid CA", ca=True)
    twin = _identity("grid CA", ca=True)  # the same subject, another key
    expired = _identity("old grid CA", ca=True, days=-1, not_before_days=-30)
    user = _identity("a grid user", issuer=ca)
    return ca, twin, expired, user


def test_a_grid_ca_with_its_crl_passes():
    (key, cert), _, _, _ = _grid_cas()
    item = {"cert": _pem_text(cert), "crl": _crl_pem(cert.subject, key),
            "crl_url": "https://ca.example.org/ca.crl"}
    assert pki.sl_x509_ca_errors([item], "site_x509_cas") == []


@pytest.mark.parametrize("which, change, words", [
    ("expired", {}, "expired on"),
    ("user", {}, "is not a CA certificate"),
    ("ca", {"crl": "twin"}, "not signed by the CA of site_x509_cas[0].cert"),
    ("ca", {"crl": "no crl"}, "site_x509_cas[0].crl is not a CRL"),
    ("ca", {"crl_url": "ldap://ca.example.org/crl"}, "site_x509_cas[0].crl_url"),
    ("ca", {"hash": "x"}, "expected only cert, crl and crl_url"),
])
def test_a_bad_grid_ca_is_refused(which, change, words):
    ca, twin, expired, user = _grid_cas()
    cert = {"ca": ca, "expired": expired, "user": user}[which][1]
    item = {"cert": _pem_text(cert)}
    if change.get("crl") == "twin":
        item["crl"] = _crl_pem(twin[1].subject, twin[0])
    elif "crl" in change:
        item["crl"] = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    item.update({k: v for k, v in change.items() if k != "crl"})
    errors = pki.sl_x509_ca_errors([item], "site_x509_cas")
    assert any(words in error for error in errors), errors


def test_two_grid_cas_of_one_subject_are_refused():
    ca, twin, _, _ = _grid_cas()
    errors = pki.sl_x509_ca_errors([{"cert": _pem_text(ca[1])}, {"cert": _pem_text(twin[1])}], "site_x509_cas")
    assert errors == ["site_x509_cas[1].cert has the subject of site_x509_cas[0] (CN=grid CA); two CAs of one "
                      "subject cannot share the CA directory."]


@pytest.mark.parametrize("dn", ["/C=FR/O=Grid/CN=Jane Doe", "/DC=org/DC=example/CN=host/vm.example.org",
                                "/O=Grid/OU=A.B-C/CN=x"])
def test_slash_dns_pass(dn):
    assert pki.sl_x509_dn_problem(dn) == ""


@pytest.mark.parametrize("dn, words", [("", "is empty"), ("CN=Jane,O=Grid", "comma form"),
                                       ("Jane Doe", "slash form"), ("/C=FR|/CN=x", "slash form"),
                                       ("/=x", "slash form"), (None, "is empty")])
def test_other_dns_are_refused(dn, words):
    assert words in pki.sl_x509_dn_problem(dn)


def test_a_dn_mapping_to_no_user_or_two_is_refused():
    users = [{"name": "jdoe", "dn": "/CN=Jane"}, {"dn": "/CN=Nobody"}, {"name": "jane", "dn": "/CN=Jane"},
             {"name": "jdoe", "dn": "/CN=Other"}, "jdoe"]
    assert pki.sl_x509_user_errors(users, "site_x509_users") == [
        'site_x509_users[1].dn "/CN=Nobody" maps to no user: give the OpenNebula user\'s name in '
        'site_x509_users[1].name.',
        'site_x509_users[2].dn "/CN=Jane" is given already by site_x509_users[0]; a certificate maps to one user.',
        "site_x509_users[3].name jdoe is given already by site_x509_users[0]; give each user one item.",
        "site_x509_users[4] is 'jdoe'; expected {name: <OpenNebula user>, dn: <certificate subject>}."]

"""Unit tests of filter_plugins/stratuslab_inputs.py (sl_input_errors), by kind of input.

The cases are generated from the roles' own meta/argument_specs.yml and
defaults/main.yml: every option of every role whose preflight calls
sl_input_errors, grouped by kind (its type, and the kind its name says:
port, id, path, mode, domain, URL, version...). A new option is covered
by the kind of its type and name without a new test; a role that adopts
sl_input_errors is covered as soon as its preflight calls it.
"""

import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from jinja2.exceptions import UndefinedError

from filter_testlib import REPO, load_plugin

inputs = load_plugin("stratuslab_inputs")

ROLES = sorted(path.parents[1].name for path in (REPO / "roles").glob("*/tasks/preflight.yml")
               if "sl_input_errors" in path.read_text(encoding="utf-8"))


def _load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


SPECS = {role: _load(REPO / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
         for role in ROLES}
DEFAULTS = {role: _load(REPO / "roles" / role / "defaults" / "main.yml") for role in ROLES}


def _options(kind_of):
    """(role, option) of every option for which kind_of(name, spec) is true."""
    return [pytest.param(role, name, id="%s.%s" % (role, name))
            for role in ROLES for name, spec in SPECS[role].items() if kind_of(name, spec)]


def errors_for(role, name, value, part="all"):
    """sl_input_errors on one option's value (the role's other options left unset)."""
    errors = inputs.sl_input_errors({name: value}, SPECS[role], DEFAULTS[role], role, part=part)
    head, hint = inputs.option_label(name, DEFAULTS[role])
    return [error for error in errors if error.startswith("%s: %s" % (role, head)) and hint in error]


def refused(role, name, value, *words):
    found = errors_for(role, name, value)
    assert len(found) == 1, "%s.%s = %r: %s" % (role, name, value, found)
    message = found[0]
    head, hint = inputs.option_label(name, DEFAULTS[role])
    assert re.match(r"%s: %s(\[[^]]+\]|\.\w+)*%s is " % (role, re.escape(head), re.escape(hint)), message), message
    assert "; expected " in message, message
    for word in words:
        assert word in message, "%r not in %r" % (word, message)
    return message


def accepted(role, name, value):
    assert errors_for(role, name, value) == [], "%s.%s = %r" % (role, name, value)


def test_every_role_with_a_preflight_checks_its_inputs():
    assert set(ROLES) >= {"accounting", "appliance_repo", "base", "bridge", "frontend", "image_share", "kvm_node",
                          "ldap", "squid"}, ROLES


# --------------------------------------------------------------------------
# Naming: the site file's variable first, the role's after it
# --------------------------------------------------------------------------


@pytest.mark.parametrize("role, name", _options(lambda name, spec: True))
def test_messages_name_the_site_variable_the_option_comes_from(role, name):
    default = DEFAULTS[role].get(name)
    head, hint = inputs.option_label(name, DEFAULTS[role])
    direct = re.fullmatch(r"\{\{ (site_\w+)( \| default\(.*\))? \}\}", default) if isinstance(default, str) else None
    if direct:
        assert (head, hint) == (direct.group(1), " (%s)" % name)
    elif isinstance(default, str) and "site_" in default:
        assert head == name and hint.startswith(" (from site_"), (head, hint)
    else:
        assert head == name


def test_derived_values_name_every_site_variable_behind_them():
    assert inputs.option_label("frontend_ldap_auth", DEFAULTS["frontend"]) == (
        "frontend_ldap_auth", " (from site_ldap_uri, site_ldap_deploy)")
    # Through another role option: the datastore name comes from the cluster's.
    assert inputs.option_label("frontend_system_datastore_name", DEFAULTS["frontend"]) == (
        "frontend_system_datastore_name", " (from site_one_cluster)")


# --------------------------------------------------------------------------
# Types, one kind at a time, over every option of that type
# --------------------------------------------------------------------------


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "list"))
@pytest.mark.parametrize("value", ["pool.ntp.org", "a, b", {"a": 1}, 3])
def test_every_list_refuses_what_is_not_a_list(role, name, value):
    message = refused(role, name, value, "expected a list")
    if isinstance(value, str):
        assert "a string, not a list" in message


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "list"
                                                and spec.get("elements") in ("str", "path")))
def test_every_list_of_text_refuses_other_items(role, name):
    message = refused(role, name, ["good", ["nested"]], "[1]")
    assert "a list" in message


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "int"))
@pytest.mark.parametrize("value", ["abc", "12x", True, 1.5, [1], None])
def test_every_integer_refuses_what_is_not_one(role, name, value):
    refused(role, name, value)


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "int"))
def test_every_integer_takes_digits_in_quotes(role, name):
    accepted(role, name, "1024")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "bool"))
@pytest.mark.parametrize("value", ["yes", "false", 1, None])
def test_every_boolean_refuses_what_is_not_true_or_false(role, name, value):
    refused(role, name, value, "true or false")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "bool"))
def test_every_boolean_takes_true_and_false(role, name):
    accepted(role, name, True)
    accepted(role, name, False)


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] in ("str", "path")))
@pytest.mark.parametrize("value", [["a"], {"a": 1}, 7.1, 488, True, None])
def test_every_text_refuses_what_is_not_text(role, name, value):
    message = refused(role, name, value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert "in quotes" in message


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "dict"))
@pytest.mark.parametrize("value", ["host=db", ["a"], 3])
def test_every_mapping_refuses_what_is_not_one(role, name, value):
    refused(role, name, value, "a mapping")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: "choices" in spec))
def test_every_choice_refuses_other_values_and_lists_the_choices(role, name):
    spec = SPECS[role][name]
    refused(role, name, "not-a-choice", "one of " + ", ".join(str(c) for c in spec["choices"]))
    for choice in spec["choices"]:
        accepted(role, name, choice)


def test_types_and_values_are_two_parts():
    # A port of the wrong type is a mistake of shape; out of range, of value.
    assert errors_for("squid", "squid_port", "abc", part="types")
    assert not errors_for("squid", "squid_port", "abc", part="values")
    assert errors_for("squid", "squid_port", 70000, part="values")
    assert not errors_for("squid", "squid_port", 70000, part="types")
    # A value that is none of the choices stops the preflight with the types.
    assert errors_for("squid", "squid_store_type", "zfs", part="types")
    assert not errors_for("squid", "squid_store_type", "zfs", part="values")


# --------------------------------------------------------------------------
# Kinds: ranges and formats, over every option whose name says its kind
# --------------------------------------------------------------------------

PORTS = _options(lambda name, spec: spec["type"] == "int" and name.endswith("_port"))


def test_there_are_ports():
    assert len(PORTS) >= 6


@pytest.mark.parametrize("role, name", PORTS)
@pytest.mark.parametrize("value", [0, -1, 65536, 70000])
def test_every_port_refuses_a_number_out_of_range(role, name, value):
    refused(role, name, value, "port number between 1 and 65535")


@pytest.mark.parametrize("role, name", PORTS)
@pytest.mark.parametrize("value", [1, 2633, 65535, "8443"])
def test_every_port_takes_a_port(role, name, value):
    accepted(role, name, value)


def test_a_database_port_inside_its_connection_may_be_0():
    errors = inputs.sl_input_errors({"frontend_one_mysql": {"host": "db", "port": 0}}, SPECS["frontend"],
                                    DEFAULTS["frontend"], "frontend")
    assert errors == []
    errors = inputs.sl_input_errors({"frontend_one_mysql": {"host": "db", "port": 70000}}, SPECS["frontend"],
                                    DEFAULTS["frontend"], "frontend")
    assert len(errors) == 1 and "site_one_mysql.port (frontend_one_mysql) is 70000" in errors[0], errors


@pytest.mark.parametrize("role, name", _options(lambda name, spec: re.search(r"_(uid|gid)$", name)))
@pytest.mark.parametrize("value", [0, 65534, 65535, 100000])
def test_every_account_id_refuses_root_and_nobody(role, name, value):
    refused(role, name, value, "between 1 and 65533")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "int"
                                                and re.search(r"_(timeout|interval|days|minutes|retry_max|mb)$", name)))
def test_every_duration_and_count_is_at_least_1(role, name):
    refused(role, name, 0, "at least 1")
    accepted(role, name, 1)


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "int"))
def test_no_integer_is_negative(role, name):
    refused(role, name, -5)


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "path"))
@pytest.mark.parametrize("value", ["var/lib/one", "", "~/x"])
def test_every_path_is_absolute(role, name, value):
    refused(role, name, value, "absolute path")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "str" and name.endswith("_mode")
                                                and "choices" not in spec and not name.endswith("share_mode")))
@pytest.mark.parametrize("value", ["rwx", "0999", "07500"])
def test_every_file_mode_is_octal(role, name, value):
    refused(role, name, value, "octal")
    accepted(role, name, "0750")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: name.endswith("_domain")))
@pytest.mark.parametrize("value", ["demo_site.test", "-demo.test", "a" * 64 + ".test", "192.0.2.1", "demo..test"])
def test_every_domain_is_a_dns_name(role, name, value):
    refused(role, name, value, "DNS domain")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: name.endswith("_domain")))
def test_every_domain_may_be_empty(role, name):
    accepted(role, name, "")
    accepted(role, name, "demo.stratuslab.test")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: re.search(r"(_url|_uri|_endpoint)$", name)))
@pytest.mark.parametrize("value", ["https://repo.example.org:99999/", "ldaps://ldap_host.example.org",
                                   "https://:443/", "repo.example.org", "http://[::1/"])
def test_every_url_names_a_valid_host_and_port(role, name, value):
    refused(role, name, value, "URL")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: re.search(r"(_url|_uri|_endpoint)$", name)))
@pytest.mark.parametrize("value", ["https://repo.example.org:8443/", "ldaps://ldap.example.org",
                                   "http://192.0.2.7:3128"])
def test_every_url_takes_a_good_url(role, name, value):
    accepted(role, name, value)


@pytest.mark.parametrize("role, name", _options(lambda name, spec: name.endswith("one_version")))
@pytest.mark.parametrize("value", ["7.5", "7.4.0", "v7.4", "7", "latest", ""])
def test_every_opennebula_version_has_a_repository(role, name, value):
    refused(role, name, value, "OpenNebula version", ", ".join(inputs.ONE_VERSIONS))


@pytest.mark.parametrize("role, name", _options(lambda name, spec: name.endswith("one_version")))
def test_a_version_written_as_a_number_is_refused(role, name):
    # site_one_version: 7.10 unquoted is the number 7.1.
    refused(role, name, 7.1, "in quotes")
    for version in inputs.ONE_VERSIONS:
        accepted(role, name, version)


@pytest.mark.parametrize("role, name", _options(lambda name, spec: name.endswith("_repo_key")))
def test_every_repository_key_is_a_url_or_an_absolute_path(role, name):
    refused(role, name, "keys/one.asc", "absolute path")
    refused(role, name, "https://keys_host/one.asc", "URL")
    for value in ("", "/srv/repo/key.asc", "https://downloads.opennebula.io/repo/repo2.key"):
        accepted(role, name, value)


@pytest.mark.parametrize("role, name", _options(lambda name, spec: re.search(r"(_address|_listen)$", name)))
def test_every_address_is_an_ip_address(role, name):
    refused(role, name, "one.example.org", "IP address")
    accepted(role, name, "192.0.2.10")


@pytest.mark.parametrize("role, name", _options(lambda name, spec: re.search(r"(_extra_names|_ntp_servers)$", name)))
def test_every_list_of_names_holds_host_names(role, name):
    refused(role, name, ["good.example.org", "bad_name.example.org"], "[1]")


# --------------------------------------------------------------------------
# Mappings with options: required and unknown keys, items named
# --------------------------------------------------------------------------

NETWORK = {"name": "public", "bridge": "brpublic", "interface": "eth0", "cidr": "10.0.0.0/24",
           "range": {"first": "10.0.0.10", "last": "10.0.0.20"}}


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec["type"] == "list" and spec.get("options")))
def test_every_list_of_mappings_names_its_item_and_refuses_unknown_keys(role, name):
    options = SPECS[role][name]["options"]
    required = [key for key, spec in options.items() if spec.get("required")]
    item = {key: ("x" if options[key]["type"] == "str" else ["x"]) for key in required}
    item["nmae"] = "typo"
    found = errors_for(role, name, [item])
    assert any("unknown key 'nmae'" in error for error in found), found
    for key in required:
        broken = {k: v for k, v in item.items() if k not in (key, "nmae")}
        assert any(".%s%s is missing" % (key, inputs.option_label(name, DEFAULTS[role])[1]) in error
                   for error in errors_for(role, name, [broken])), (key, errors_for(role, name, [broken]))


def test_a_typo_in_a_network_key_is_named_with_the_key_meant():
    errors = errors_for("frontend", "frontend_networks", [dict(NETWORK, gatway="10.0.0.1")])
    assert errors == ["frontend: site_networks[public] (frontend_networks) has the unknown key 'gatway' "
                      "(did you mean gateway?); expected only name, bridge, interface, cidr, gateway, range, leases."]


def test_nested_values_are_checked_with_their_path():
    errors = errors_for("frontend", "frontend_networks", [dict(NETWORK, range={"first": "10.0.0.10", "size": "ten"})])
    assert errors == ["frontend: site_networks[public].range.size (frontend_networks) is 'ten'; expected a whole "
                      "number, at least 1."], errors


def test_a_good_network_list_passes():
    assert errors_for("frontend", "frontend_networks", [NETWORK]) == []
    assert errors_for("bridge", "bridge_networks", [NETWORK]) == []


# --------------------------------------------------------------------------
# Missing, undefined and secret values
# --------------------------------------------------------------------------


class Undefined(dict):
    """Role variables whose templates name a variable the site file lacks."""

    def __getitem__(self, key):
        raise UndefinedError("'vault_oneadmin_password' is undefined")


def test_a_value_that_cannot_be_worked_out_is_named_with_what_is_missing():
    spec = {"frontend_oneadmin_password": SPECS["frontend"]["frontend_oneadmin_password"]}
    errors = inputs.sl_input_errors(Undefined(), spec, DEFAULTS["frontend"], "frontend")
    assert errors == ["frontend: site_oneadmin_password (frontend_oneadmin_password) cannot be worked out: "
                      "'vault_oneadmin_password' is undefined; expected Password of OpenNebula's oneadmin user, "
                      "written to ~oneadmin/.one/one_auth."], errors


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec.get("required")))
def test_every_required_option_that_is_not_set_is_named(role, name):
    errors = inputs.sl_input_errors({}, SPECS[role], DEFAULTS[role], role)
    head, hint = inputs.option_label(name, DEFAULTS[role])
    assert "%s: %s%s is not set; expected " % (role, head, hint) in "\n".join(errors), errors


@pytest.mark.parametrize("role, name", _options(lambda name, spec: spec.get("no_log") or "password" in name))
def test_secrets_are_never_shown(role, name):
    for value in (123456789, ["s3cr3t-in-a-list"], True):
        for error in errors_for(role, name, value):
            assert "123456789" not in error and "s3cr3t" not in error, error
            assert "value not shown" in error


def test_secret_sub_options_are_never_shown():
    users = [{"uid": "alice", "cn": "Alice", "password": 12345678}]
    errors = errors_for("ldap", "ldap_users", users)
    assert errors and "12345678" not in errors[0] and "site_ldap_users[alice].password" in errors[0], errors


def test_a_null_value_is_refused_naming_what_to_write_instead():
    assert refused("ldap", "ldap_tls_cert", None, "give ''")


def test_bad_arguments_raise():
    with pytest.raises(AnsibleFilterError, match="options"):
        inputs.sl_input_errors({}, "not a spec")
    with pytest.raises(AnsibleFilterError, match="part"):
        inputs.sl_input_errors({}, {}, part="some")


# --------------------------------------------------------------------------
# Host names
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["node_1", "-node", "node-", "a" * 64, "node..example", "", "node 1",
                                  "x" * 250 + ".org"])
def test_dns_name_problem_refuses(name):
    assert inputs.dns_name_problem(name)


@pytest.mark.parametrize("name", ["node1", "node-1.example.org", "a" * 63 + ".org", "one.example.org."])
def test_dns_name_problem_takes(name):
    assert inputs.dns_name_problem(name) is None


def test_filter_module_maps_the_name():
    assert inputs.FilterModule().filters() == {"sl_input_errors": inputs.sl_input_errors}

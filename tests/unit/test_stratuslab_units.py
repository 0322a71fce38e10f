"""library/stratuslab_units.py through ansible-playbook on localhost, against a stand-in systemctl.

The stand-in keeps each unit's LoadState, UnitFileState, ActiveState and NeedDaemonReload in a JSON file,
changes them as systemctl's verbs do (a masked unit cannot be enabled or started, a new unit file is seen
only after daemon-reload) and logs every call, so a test sees what the module ran. systemd itself is not
on this machine; the roles' molecule scenarios run the module against real systemd (libvirt's sockets in
site, the services of every role), checked from outside by their verify tests.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import yaml

from module_testlib import REPO, run

SYSTEMCTL = r'''#!PYTHON
import json, os, sys
state_file, log = os.environ["FAKE_SYSTEMD_STATE"], os.environ["FAKE_SYSTEMD_LOG"]
units = json.load(open(state_file))
args = [a for a in sys.argv[1:] if a != "--"]
with open(log, "a") as f:
    f.write(" ".join(args) + "\n")
verb = args.pop(0)
props = args.pop(0).split("=", 1)[1].split(",") if verb == "show" else []
names = [n if "." in n else n + ".service" for n in args]
def fail(msg):
    sys.stderr.write(msg + "\n"); sys.exit(1)
if verb == "show":
    blocks = []
    for n in names:
        u = units.get(n)
        if u is None or u.get("pending"):
            u = {"LoadState": "not-found", "UnitFileState": "", "ActiveState": "inactive"}
        u = dict(u, Id=n)
        blocks.append("".join(f"{p}={u.get(p, 'no' if p == 'NeedDaemonReload' else '')}\n" for p in props if p != "LoadError" or p in u))
    sys.stdout.write("\n".join(blocks))
    sys.exit(0)
if verb == "daemon-reload":
    for u in units.values():
        u.pop("pending", None); u["NeedDaemonReload"] = "no"
else:
    (n,) = names
    u = units.get(n)
    if verb == "mask":
        units[n] = u = u or {"ActiveState": "inactive", "UnitFileState": ""}
        u["unmasked"] = u.get("UnitFileState"); u.update(LoadState="masked", UnitFileState="masked")
    elif u is None or u.get("pending"):
        fail(f"Failed to {verb} unit: Unit file {n} does not exist.")
    elif verb == "unmask":
        u.update(LoadState="loaded", UnitFileState=u.pop("unmasked", "disabled") or "disabled")
    elif u["LoadState"] == "masked" and verb in ("enable", "start"):
        fail(f"Failed to {verb} unit: Unit file /etc/systemd/system/{n} is masked.")
    elif verb in ("enable", "disable"):
        u["UnitFileState"] = verb + "d"
    elif verb in ("start", "stop"):
        u["ActiveState"] = "active" if verb == "start" else "inactive"
    else:
        fail(f"stand-in systemctl: unknown verb {verb}")
json.dump(units, open(state_file, "w"))
'''


def unit(load="loaded", file="disabled", active="inactive", **extra):
    return dict(LoadState=load, UnitFileState=file, ActiveState=active, **extra)


@pytest.fixture()
def systemd(tmp_path):
    """(env for run, set(units), state(), calls()) of a stand-in systemctl first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "systemctl"
    tool.write_text(SYSTEMCTL.replace("PYTHON", sys.executable, 1))
    tool.chmod(0o755)
    state, log = tmp_path / "units.json", tmp_path / "calls.log"
    log.write_text("")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "FAKE_SYSTEMD_STATE": str(state), "FAKE_SYSTEMD_LOG": str(log)}

    class Systemd:
        def set(self, units):
            state.write_text(json.dumps(units))

        def state(self):
            return json.loads(state.read_text())

        def calls(self, clear=True):
            lines = log.read_text().splitlines()
            if clear:
                log.write_text("")
            return [line.split()[0] for line in lines]

    systemd = Systemd()
    systemd.env = env
    return systemd


def task(units, daemon_reload=None):
    args = {"units": units}
    if daemon_reload is not None:
        args["daemon_reload"] = daemon_reload
    return {"name": "units", "stratuslab_units": args}


LIBVIRT = [
    {"name": "libvirtd-tcp.socket", "masked": True, "state": "stopped"},
    {"name": "libvirtd.socket", "enabled": True, "state": "started"},
    {"name": "libvirtd", "enabled": True},
]


def libvirt_fresh():
    return {"libvirtd-tcp.socket": unit(file="enabled", active="active"),
            "libvirtd.socket": unit(file="disabled", active="inactive"),
            "libvirtd.service": unit(file="enabled", active="inactive")}


def test_changes_only_what_differs_then_nothing(tmp_path, systemd):
    systemd.set(libvirt_fresh())
    (first,) = run(tmp_path, [task(LIBVIRT)], env=systemd.env)
    assert first["changed"] is True, first
    assert first["actions"] == [{"unit": "libvirtd-tcp.socket", "actions": ["mask", "stop"]},
                                {"unit": "libvirtd.socket", "actions": ["enable", "start"]}]
    # One read of all three units, then only the verbs that were needed.
    assert systemd.calls() == ["show", "mask", "stop", "enable", "start"]
    now = systemd.state()
    assert (now["libvirtd-tcp.socket"]["LoadState"], now["libvirtd-tcp.socket"]["ActiveState"]) == ("masked", "inactive")
    assert (now["libvirtd.socket"]["UnitFileState"], now["libvirtd.socket"]["ActiveState"]) == ("enabled", "active")

    (second,) = run(tmp_path, [task(LIBVIRT)], env=systemd.env)
    assert second["changed"] is False and second["actions"] == [], second
    assert systemd.calls() == ["show"]


def test_check_mode_reports_the_same_actions_and_runs_none(tmp_path, systemd):
    systemd.set(libvirt_fresh())
    (checked,) = run(tmp_path, [task(LIBVIRT)], check=True, diff=True, env=systemd.env)
    assert checked["changed"] is True
    assert checked["actions"] == [{"unit": "libvirtd-tcp.socket", "actions": ["mask", "stop"]},
                                  {"unit": "libvirtd.socket", "actions": ["enable", "start"]}]
    assert systemd.calls() == ["show"]
    assert systemd.state() == libvirt_fresh()
    assert checked["diff"]["before"] == ("libvirtd-tcp.socket: enabled, active\n"
                                         "libvirtd.socket: disabled, inactive\n"
                                         "libvirtd: enabled, inactive\n")
    assert checked["diff"]["after"] == ("libvirtd-tcp.socket: masked, inactive\n"
                                        "libvirtd.socket: enabled, active\n"
                                        "libvirtd: enabled, inactive\n")


@pytest.mark.parametrize("file_state, enables", [
    ("enabled", False), ("static", False), ("generated", False),
    ("disabled", True), ("indirect", True), ("alias", True), ("enabled-runtime", True),
])
def test_which_file_states_count_as_enabled(tmp_path, systemd, file_state, enables):
    systemd.set({"a.service": unit(file=file_state, active="active")})
    (result,) = run(tmp_path, [task([{"name": "a.service", "enabled": True, "state": "started"}])], env=systemd.env)
    assert result["actions"] == ([{"unit": "a.service", "actions": ["enable"]}] if enables else []), result


def test_stops_and_disables(tmp_path, systemd):
    systemd.set({"a.service": unit(file="enabled", active="active"), "b.service": unit(active="deactivating")})
    (result,) = run(tmp_path, [task([{"name": "a.service", "enabled": False, "state": "stopped"},
                                     {"name": "b.service", "state": "stopped"}])], env=systemd.env)
    assert result["actions"] == [{"unit": "a.service", "actions": ["disable", "stop"]},
                                 {"unit": "b.service", "actions": ["stop"]}]


def test_unmasks_reads_again_then_enables_and_starts(tmp_path, systemd):
    systemd.set({"a.service": unit(load="masked", file="masked", unmasked="disabled")})
    (result,) = run(tmp_path, [task([{"name": "a.service", "masked": False, "enabled": True, "state": "started"}])],
                    env=systemd.env)
    assert result["actions"] == [{"unit": "a.service", "actions": ["unmask", "enable", "start"]}], result
    assert systemd.calls() == ["show", "unmask", "show", "enable", "start"]
    (again,) = run(tmp_path, [task([{"name": "a.service", "masked": False, "enabled": True, "state": "started"}])],
                   env=systemd.env)
    assert again["changed"] is False


def test_masks_a_unit_systemd_does_not_know_yet(tmp_path, systemd):
    systemd.set({})
    (result,) = run(tmp_path, [task([{"name": "libvirtd-tls.socket", "masked": True}])], env=systemd.env)
    assert result["actions"] == [{"unit": "libvirtd-tls.socket", "actions": ["mask"]}]
    assert systemd.state()["libvirtd-tls.socket"]["LoadState"] == "masked"


def test_daemon_reload_only_when_a_unit_needs_it(tmp_path, systemd):
    systemd.set({"a.socket": unit(file="enabled", active="active", NeedDaemonReload="no")})
    (quiet,) = run(tmp_path, [task([{"name": "a.socket", "state": "started"}], daemon_reload=True)], env=systemd.env)
    assert quiet["changed"] is False and systemd.calls() == ["show"]

    systemd.set({"a.socket": unit(file="enabled", active="active", NeedDaemonReload="yes")})
    (checked,) = run(tmp_path, [task([{"name": "a.socket", "state": "started"}], daemon_reload=True)], check=True,
                     env=systemd.env)
    assert checked["actions"] == [{"unit": "daemon-reload", "actions": ["daemon-reload"]}]
    assert systemd.calls() == ["show"]
    (reloaded,) = run(tmp_path, [task([{"name": "a.socket", "state": "started"}], daemon_reload=True)],
                      env=systemd.env)
    assert reloaded["actions"] == [{"unit": "daemon-reload", "actions": ["daemon-reload"]}]
    assert systemd.calls() == ["show", "daemon-reload", "show"]
    assert systemd.state()["a.socket"]["NeedDaemonReload"] == "no"


def test_a_new_unit_file_is_loaded_by_the_reload_and_started(tmp_path, systemd):
    systemd.set({"new.service": unit(pending=True)})
    (result,) = run(tmp_path, [task([{"name": "new.service", "enabled": True, "state": "started"}],
                                    daemon_reload=True)], env=systemd.env)
    assert result["actions"] == [{"unit": "daemon-reload", "actions": ["daemon-reload"]},
                                 {"unit": "new.service", "actions": ["enable", "start"]}], result
    assert systemd.calls() == ["show", "daemon-reload", "show", "enable", "start"]


def test_unknown_unit_fails_naming_it_but_is_a_change_in_check_mode(tmp_path, systemd):
    systemd.set({})
    (checked,) = run(tmp_path, [task([{"name": "slapd", "enabled": True, "state": "started"}])], check=True,
                     env=systemd.env)
    assert checked["changed"] is True and not checked.get("failed"), checked
    assert checked["actions"] == [{"unit": "slapd", "actions": ["enable", "start"]}]

    (failed,) = run(tmp_path, [task([{"name": "slapd", "enabled": True, "state": "started"}], daemon_reload=True)],
                    env=systemd.env)
    assert failed["failed"] is True
    assert "systemd has no unit slapd" in failed["msg"]
    # The reload found nothing new, so nothing is reported as done.
    assert failed["actions"] == []


def test_a_masked_unit_is_not_enabled_behind_the_users_back(tmp_path, systemd):
    systemd.set({"a.service": unit(load="masked", file="masked")})
    (result,) = run(tmp_path, [task([{"name": "a.service", "enabled": True}])], env=systemd.env)
    assert result["failed"] is True and "a.service is masked" in result["msg"] and "masked: false" in result["msg"]


@pytest.mark.parametrize("entry, message", [
    ({"name": "a.service"}, "units[0] (a.service): give at least one of masked, enabled and state"),
    ({"name": "a.service", "masked": True, "state": "started"}, "units[0] (a.service): a masked unit cannot be"),
    ({"name": "a.service", "state": "running"}, "value of state must be one of: started, stopped"),
])
def test_bad_arguments_are_refused_naming_the_unit(tmp_path, systemd, entry, message):
    systemd.set({"a.service": unit()})
    (result,) = run(tmp_path, [task([entry])], env=systemd.env)
    assert result["failed"] is True and message in result["msg"], result
    assert systemd.calls() == []


def test_documentation_matches_the_argument_spec():
    spec = importlib.util.spec_from_file_location("stratuslab_units", REPO / "library" / "stratuslab_units.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    assert set(documented) == set(module.ARGUMENT_SPEC)
    suboptions = documented["units"]["suboptions"]
    for name, option in module.ARGUMENT_SPEC["units"]["options"].items():
        assert suboptions[name]["type"] == option["type"], name
        assert suboptions[name].get("choices") == option.get("choices"), name
        assert bool(suboptions[name].get("required")) == bool(option.get("required")), name

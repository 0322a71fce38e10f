"""No password or key appears in any Ansible output of the scenario.

Shared by the scenarios (each links it into its tests/). What it greps:
the Ansible log of the scenario's playbook runs, which
.config/molecule/config.yml sends to ``$MOLECULE_EPHEMERAL_DIRECTORY/
ansible.log`` (ANSIBLE_LOG_PATH). Molecule's idempotence step is a real
``-vvv`` run (molecule/shared/callback_plugins/molecule_verbose_idempotence.py
raises the verbosity for it), so the log holds every task's full result with
its module arguments, and every command the connection ran; the other runs
(prepare, converge, check) are in it at their normal verbosity.

What it looks for, so that a new secret is not silently missed:
- from the inventory (the site file, host_vars, everything molecule gives),
  every value whose variable or key name says it is secret (password,
  passphrase, secret, token, credential, *_key, vault_*), templated as a
  play would see it; a *_key naming a file on the control machine gives
  that file's content instead;
- from the hosts themselves, after converge: OpenNebula's one_auth files
  (the password after ``user:``), .netrc/.pgpass passwords, and every
  private key (PEM) under /etc, /root, /home, /srv, /opt and /var/lib.
A private key counts as leaked when any line of its base64 body, or the
base64 of the whole file (what slurp returns), appears in the log.

The test fails listing each leak as secret, run, task and host; it also
fails when there is no verbose run in the log or no secret was found, so it
cannot pass by looking at nothing.
"""

import base64
import json
import os
import re
import shlex

import pytest
import stratuslab_testinfra
import testinfra

LOG_NAME = "ansible.log"
SECRET_NAME = re.compile(
    r"(passw|passphrase|secret|token|credential|private_?key|(^|_)key$|^vault_)",
    re.IGNORECASE,
)
MIN_SECRET_LENGTH = 6
# A log record starts with Ansible's logger prefix; other lines continue it.
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ p=(\d+) u=\S+ n=\S+ \w+\| ?(.*)$")
RUN_MARKER = re.compile(r"STRATUSLAB-RUN (\S+) playbook=(\S+) verbosity=(\d+)")
TASK_LINE = re.compile(r"^(TASK|RUNNING HANDLER) \[(.*)\]")
HOST_IN_RECORD = re.compile(r"^(?:ok|changed|failed|fatal|skipping|<)[:\s]*\[?([\w.-]+)[\]>]")
# -vvv only: what the connection plugin does (podman: RUN/PUT, ssh: EXEC/PUT).
CONNECTION_LINE = re.compile(r"^<[^>]+> (ESTABLISH|EXEC|RUN|PUT) ")
KEY_DIRS = ["/etc", "/root", "/home", "/srv", "/opt", "/var/lib"]
# /var/lib/dpkg and friends hold no site secret and are large.
KEY_SKIP = ["/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd", "/var/lib/ucf"]


class Secret:
    def __init__(self, label, needles):
        self.label = label
        self.needles = sorted({_norm(n) for n in needles if n and len(n.strip()) >= MIN_SECRET_LENGTH})


def _norm(text):
    """Whitespace collapsed: the YAML result format folds long strings at spaces."""
    return " ".join(text.split())


def _string_needles(value):
    """A string secret as it can appear in output: raw, JSON- and YAML-quoted."""
    return [value, json.dumps(value)[1:-1], value.replace("'", "''")]


# --- Secrets from the inventory -----------------------------------------------
def _walk(value, path, secret_context, found):
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(item, "%s.%s" % (path, key), secret_context or bool(SECRET_NAME.search(str(key))), found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, "%s[%d]" % (path, index), secret_context, found)
    elif isinstance(value, str) and secret_context:
        found.append((path, value))


def inventory_secrets():
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    # As ansible-playbook does first: without it, a value that calls a
    # plugin by its full name (lookup('ansible.builtin.env', ...)) fails.
    init_plugin_loader()
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[os.environ["MOLECULE_INVENTORY_FILE"]])
    variables = VariableManager(loader=loader, inventory=inventory)
    secrets, unreadable = {}, []
    for host in inventory.get_hosts():
        hostvars = variables.get_vars(host=host)
        templar = Templar(loader=loader, variables=hostvars)
        for name, raw in hostvars.items():
            if name.startswith("molecule_") or name in ("groups", "hostvars", "omit"):
                continue
            candidates = []
            _walk(raw, name, bool(SECRET_NAME.search(name)), candidates)
            for path, value in candidates:
                try:
                    value = str(templar.template(value))
                except Exception as exc:  # e.g. a vault value without its password
                    unreadable.append("%s on %s: %s" % (path, host.name, exc))
                    continue
                if not value.strip():
                    continue
                if re.search(r"(^|_)key$", path.rsplit(".", 1)[-1]) and os.path.isfile(value):
                    with open(value, encoding="utf-8", errors="replace") as handle:
                        secrets.setdefault(path, _pem_secret(path, handle.read()))
                elif "PRIVATE KEY-----" in value:
                    secrets.setdefault(path, _pem_secret(path, value))
                elif value.startswith("/") and "\n" not in value and " " not in value:
                    continue  # a path to a secret on a host, not the secret
                else:
                    secret = secrets.setdefault(path, Secret("inventory %s" % path, []))
                    secret.needles = sorted(set(secret.needles) | set(Secret("", _string_needles(value)).needles))
    return [s for s in secrets.values() if s.needles], unreadable


# --- Secrets from the hosts ---------------------------------------------------
def _pem_secret(label, text, public=""):
    """The forms of one private key, minus what is public.

    An OpenSSH private key file repeats the public key inside its private
    section; for ECDSA keys that copy starts on a base64 boundary, so whole
    lines of the private file are also found in the public key
    (known_hosts, ``.pub``). ``public`` is the key's public text: body
    lines that occur in it are not secret and are not searched for.
    """
    body = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and "-----" not in line and ":" not in line and len(line.strip()) >= 16
    ]
    body = [line for line in body if line not in public]
    whole = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return Secret("private key %s" % label, body + [whole])


def host_secrets(spec):
    host = testinfra.get_host(spec)
    name = spec.split("://", 1)[-1]
    secrets = []
    prune = " -o ".join("-path %s" % path for path in KEY_SKIP)
    find = "find %s -xdev \\( %s \\) -prune -o -type f -size -64k" % (" ".join(KEY_DIRS), prune)
    named = host.run(
        "%s \\( -name one_auth -o -name .netrc -o -name .pgpass \\) -print 2>/dev/null" % find
    ).stdout.split()
    pem = host.run("%s -print0 2>/dev/null | xargs -0 -r grep -l -e 'PRIVATE KEY-----'" % find)
    for path in pem.stdout.splitlines():
        text = host.file(path).content_string
        public = host.run(
            "ssh-keygen -y -f %s 2>/dev/null; cat %s.pub 2>/dev/null" % (shlex.quote(path), shlex.quote(path))
        ).stdout
        secrets.append(_pem_secret("%s:%s" % (name, path), text, public))
    for path in named:
        text = host.file(path).content_string
        base = os.path.basename(path)
        for line in text.splitlines():
            value = ""
            if base == "one_auth" and ":" in line:
                value = line.split(":", 1)[1].strip()
            elif base == ".pgpass" and line.count(":") >= 4:
                value = line.rsplit(":", 1)[1].strip()
            elif base == ".netrc":
                words = line.split()
                value = " ".join(words[i + 1] for i, w in enumerate(words[:-1]) if w == "password")
            if value:
                secrets.append(Secret("%s %s:%s" % (base, name, path), _string_needles(value)))
    return [s for s in secrets if s.needles]


# --- The log ------------------------------------------------------------------
def read_records(path):
    """The log as records: (run, task, host, text), runs told apart by pid."""
    runs, records = {}, []
    current = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = RECORD_START.match(line)
            if match:
                current = [match.group(1), match.group(2)]
                records.append(current)
            elif current is not None:
                current[1] += "\n" + line.rstrip("\n")
    tasks, out = {}, []
    for pid, text in records:
        marker = RUN_MARKER.search(text)
        if marker:
            runs[pid] = "%s of %s (verbosity %s)" % marker.groups()
            continue
        task = TASK_LINE.match(text)
        if task:
            tasks[pid] = task.group(2)
        host = HOST_IN_RECORD.match(text.lstrip())
        out.append((runs.get(pid, "run pid %s" % pid), tasks.get(pid, "-"), host.group(1) if host else "-", text))
    return runs, out


@pytest.fixture(scope="module")
def log_path():
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], LOG_NAME)
    assert os.path.isfile(path), (
        "%s is missing: .config/molecule/config.yml must set ANSIBLE_LOG_PATH for the playbook runs" % path
    )
    return path


def test_log_holds_a_verbose_run(log_path):
    runs, records = read_records(log_path)
    verbose = [run for run in runs.values() if run.startswith("idempotence") and not run.endswith("(verbosity 0)")]
    assert verbose, "no -vvv idempotence run in %s (runs: %s)" % (log_path, sorted(set(runs.values())))
    # What only -vvv prints: the connection's commands and the module arguments.
    texts = [text for run, _, _, text in records if run in verbose]
    assert any(CONNECTION_LINE.match(text) for text in texts), "the verbose run printed no connection command"
    assert any("invocation:" in text or '"invocation"' in text for text in texts), (
        "the verbose run printed no module arguments"
    )


def test_no_secret_in_ansible_output(log_path):
    secrets, unreadable = inventory_secrets()
    assert not unreadable, "secrets the test cannot read (give molecule the vault password): %s" % unreadable
    assert secrets, "no secret found in the inventory: the collector is broken or the pattern is"
    for spec in stratuslab_testinfra.hosts("all"):
        secrets.extend(host_secrets(spec))

    _, records = read_records(log_path)
    leaks = []
    for run, task, host, text in records:
        flat = _norm(text)
        for secret in secrets:
            if any(needle in flat for needle in secret.needles):
                leaks.append("%s  in run %s, task [%s], host %s" % (secret.label, run, task, host))
    leaks = sorted(set(leaks))
    print("checked %d secrets against %d log records of %s" % (len(secrets), len(records), log_path))
    for secret in secrets:
        print("  secret: %s (%d forms)" % (secret.label, len(secret.needles)))
    assert not leaks, "secrets in the Ansible output (%s):\n%s" % (log_path, "\n".join(leaks))

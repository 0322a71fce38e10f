#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stratuslab_files
short_description: Keep several directories and small text files with their owner, group and mode, in one call
description:
  - Ensures each entry of O(entries), in order, is a directory or a regular file with the given content,
    owner, group and mode. An entry already as asked is left alone (not even its timestamps change).
  - One module call does what a M(ansible.builtin.file) task per directory plus a
    M(ansible.builtin.template) or M(ansible.builtin.copy) task per file does. Those cost a host two
    module runs per file even when nothing changes (a checksum C(stat), then C(file) for the attributes),
    and each module run costs the host about 0.2 CPU seconds before it does any work (Python compiles
    the module's zip payload every time). A role's configuration files in one task cost one run.
  - Render templates on the controller with C(lookup('ansible.builtin.template', 'name.j2')) and pass the
    text as O(entries[].content).
  - A file is replaced atomically (a temporary file in the same directory, then a rename), after
    O(entries[].validate) accepted the new content. A refused file leaves the old one in place.
  - Made for configuration files (text only; no SELinux contexts, file attributes or backups).
    Secrets belong in tasks with C(no_log), since the content is a module argument and a diff shows it.
version_added: "1.0.0"
author: StratusLab site deployer contributors
options:
  entries:
    description:
      - The directories and files, handled in this order (list a directory before the files in it).
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description:
          - V(directory) creates a missing directory; missing parents are made owned by the running user with
            mode V(0755), as M(ansible.builtin.file) makes them.
          - V(file) writes O(entries[].content).
        type: str
        choices: [directory, file]
        default: file
      content:
        description: The whole text of the file (V(file) only; required there).
        type: str
      owner:
        description: User name or numeric uid.
        type: str
        default: root
      group:
        description: Group name or numeric gid.
        type: str
        default: root
      mode:
        description: Octal permissions as a string, for example V('0644').
        type: str
        required: true
      validate:
        description:
          - Command that checks a new file before it replaces the old one; V(%s) stands for the new file's path.
            Run only when the content changes.
        type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Render libvirt's configuration
  stratuslab_files:
    entries:
      - path: /var/lib/one
        state: directory
        owner: oneadmin
        group: oneadmin
        mode: "0750"
      - path: /etc/libvirt/libvirtd.conf
        content: "{{ lookup('ansible.builtin.template', 'libvirtd.conf.j2') }}"
        mode: "0644"
  notify: Restart libvirtd
"""

RETURN = r"""
changed_paths:
  description: The paths that were (or in check mode would be) created or changed, in O(entries) order.
  returned: always
  type: list
  elements: str
"""

import grp
import os
import pwd
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

# Longer texts are not shown in a diff (Ansible's own limit for file diffs).
DIFF_LIMIT = 104448


def _uid(name):
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def _gid(name):
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _mode(text, path):
    try:
        value = int(str(text), 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o7777:
        raise ValueError(f"{path}: mode {text!r} is not an octal mode such as '0644'")
    return value


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class Files:
    """Applies the entries; records what changed and the diffs."""

    def __init__(self, module):
        self.module = module
        self.check = module.check_mode
        self.changed_paths = []
        self.diffs = []
        # Directories this run would create in check mode: their files do not exist yet.
        self.planned_dirs = set()

    def ids(self, entry):
        uid, gid = _uid(entry["owner"]), _gid(entry["group"])
        if self.check and (uid is None or gid is None):
            # An earlier task of the same run would have made the account (check mode made nothing):
            # the entry would change; -1 never matches a real owner.
            return (-1 if uid is None else uid), (-1 if gid is None else gid)
        if uid is None:
            self.module.fail_json(msg=f"{entry['path']}: owner {entry['owner']!r} does not exist on this host")
        if gid is None:
            self.module.fail_json(msg=f"{entry['path']}: group {entry['group']!r} does not exist on this host")
        return uid, gid

    def fix_attrs(self, path, st, uid, gid, mode):
        """Owner, group and mode of an existing path; returns the changes as (before, after) texts."""
        before, after = [], []
        if st.st_uid != uid or st.st_gid != gid:
            before.append(f"owner={st.st_uid} group={st.st_gid}")
            after.append(f"owner={uid} group={gid}")
            if not self.check:
                os.chown(path, uid, gid)
        if stat.S_IMODE(st.st_mode) != mode:
            before.append(f"mode={stat.S_IMODE(st.st_mode):04o}")
            after.append(f"mode={mode:04o}")
            if not self.check:
                os.chmod(path, mode)
        if not after:
            return "", ""
        return " ".join(before) + "\n", " ".join(after) + "\n"

    def directory(self, entry):
        path = entry["path"]
        uid, gid = self.ids(entry)
        mode = _mode(entry["mode"], path)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            self.module.fail_json(msg=f"{path}: exists and is not a directory")
        if st is None:
            if self.check:
                self.planned_dirs.add(path)
            else:
                # Missing parents are made as the file module makes them: root's, mode 0755.
                os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                os.mkdir(path, 0o700)
                os.chown(path, uid, gid)
                os.chmod(path, mode)
            self.record(path, "absent\n", f"directory owner={entry['owner']} group={entry['group']} mode={mode:04o}\n")
            return
        before, after = self.fix_attrs(path, st, uid, gid, mode)
        if after:
            self.record(path, before, after)

    def file(self, entry):
        path = entry["path"]
        if entry.get("content") is None:
            self.module.fail_json(msg=f"{path}: a file entry needs content")
        uid, gid = self.ids(entry)
        mode = _mode(entry["mode"], path)
        new = entry["content"].encode("utf-8")
        if os.path.dirname(path) in self.planned_dirs:
            old, st = None, None
        else:
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISREG(st.st_mode):
                self.module.fail_json(msg=f"{path}: exists and is not a regular file")
            old = _read(path) if st is not None else None
        if old == new:
            before, after = self.fix_attrs(path, st, uid, gid, mode)
            if after:
                self.record(path, before, after)
            return
        if not self.check:
            self.write(entry, path, new, uid, gid, mode)
        self.record(path, "" if old is None else old.decode("utf-8", "replace"), entry["content"])

    def write(self, entry, path, data, uid, gid, mode):
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            self.module.fail_json(msg=f"{path}: directory {directory} does not exist (list it earlier in entries)")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                os.fchown(handle.fileno(), uid, gid)
                os.fchmod(handle.fileno(), mode)
            if entry.get("validate"):
                if "%s" not in entry["validate"]:
                    self.module.fail_json(msg=f"{path}: validate must contain %s, the new file's path")
                argv = [tmp if word == "%s" else word.replace("%s", tmp) for word in shlex.split(entry["validate"])]
                rc, out, err = self.module.run_command(argv)
                if rc != 0:
                    self.module.fail_json(msg=f"{path}: the new content failed validation ({entry['validate']}), "
                                              f"the old file is kept", rc=rc, stdout=out, stderr=err)
            os.replace(tmp, path)
            tmp = None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def record(self, path, before, after):
        self.changed_paths.append(path)
        if self.module._diff:
            before, after = (text if len(text) <= DIFF_LIMIT else f"({len(text)} characters, too long to show)\n"
                             for text in (before, after))
            self.diffs.append({"before_header": path, "after_header": path, "before": before, "after": after})


ARGUMENT_SPEC = dict(
    entries=dict(type="list", elements="dict", required=True, options=dict(
        path=dict(type="path", required=True),
        state=dict(type="str", choices=["directory", "file"], default="file"),
        content=dict(type="str"),
        owner=dict(type="str", default="root"),
        group=dict(type="str", default="root"),
        mode=dict(type="str", required=True),
        validate=dict(type="str"),
    )),
)


class FilesModule(AnsibleModule):
    """Reports its arguments with each file's content as its length: a verbose run shows which files
    the task handles, not their whole text (the test oned's script alone is 130 kB)."""

    def _invocation(self):
        try:
            entries = [dict(entry, content=None if entry.get("content") is None
                            else f"({len(entry['content'])} characters)")
                       for entry in self.params["entries"] or []]
        except (AttributeError, KeyError, TypeError):  # arguments that failed validation
            return {"module_args": {}}
        return {"module_args": {"entries": entries}}

    def exit_json(self, **kwargs):
        kwargs.setdefault("invocation", self._invocation())
        super().exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs.setdefault("invocation", self._invocation())
        super().fail_json(msg, **kwargs)


def main():
    module = FilesModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    files = Files(module)
    for entry in module.params["entries"]:
        if not os.path.isabs(entry["path"]):
            module.fail_json(msg=f"{entry['path']}: path must be absolute")
        try:
            if entry["state"] == "directory":
                files.directory(entry)
            else:
                files.file(entry)
        except (OSError, ValueError) as exc:
            module.fail_json(msg=f"{entry['path']}: {exc}", changed_paths=files.changed_paths)
    result = {"changed": bool(files.changed_paths), "changed_paths": files.changed_paths}
    if module._diff:
        result["diff"] = files.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
"""Filters of the backup role: a backup set's checksums, its parts, what a restore would lose.

A backup set is a directory on the control machine (roles/backup/README.md):
``set.yml`` says what it holds, ``SHA256SUMS`` gives the SHA-256 of every
other file, in the format of coreutils' ``sha256sum`` (``sha256sum -c
SHA256SUMS`` in the set's directory checks it by hand).

* ``backup_sums``: the text of SHA256SUMS from ``find`` results;
* ``backup_set_errors``: what is wrong with a set's files against its
  SHA256SUMS (missing, changed, unlisted), one message each;
* ``backup_manifest_errors``: what is wrong with a set's ``set.yml`` for
  this site (another site's set, another database, a part with no host);
* ``backup_lost_objects``: the objects a restore would delete: those the
  site has now and the set does not (an ``[id, name]`` pair of a kind);
* ``backup_ldif_dns``: the DNs of an LDIF text (slapcat's), normalised;
* ``backup_file_entries``: the files and directories to save, as set.yml
  lists them (owner, group, mode);
* ``backup_expired``: which sets the retention removes.

Every filter is a plain function; bad input raises AnsibleFilterError
naming the value. ``FilterModule`` only maps names to them.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

SUMS = "SHA256SUMS"
MANIFEST = "set.yml"
FORMAT = 1
# Parts of a set, each restored onto the host of one inventory group.
PARTS = {
    "opennebula": "frontend",
    "ldap": "ldap",
    "accounting": "accounting",
    "repository": "repository",
}
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")
_SET_NAME = r"^%s-[0-9]{8}T[0-9]{6}Z$"


def _relative(path, root):
    root = root.rstrip("/")
    if not isinstance(path, str) or not path.startswith(root + "/"):
        raise AnsibleFilterError("backup: %r is not inside the set %r" % (path, root))
    return path[len(root) + 1:]


def backup_sums(files, root):
    """SHA256SUMS's text for ``files`` (``find`` results with ``checksum``), paths relative to ``root``.

    SHA256SUMS itself is left out. Lines are sorted by path, as
    ``sha256sum`` prints them for sorted arguments."""
    if not isinstance(files, list):
        raise AnsibleFilterError("backup_sums: expected the files of find, got %r" % (files,))
    lines = []
    for item in files:
        if not isinstance(item, Mapping) or "path" not in item:
            raise AnsibleFilterError("backup_sums: %r is not a file of find" % (item,))
        relative = _relative(item["path"], root)
        if relative == SUMS:
            continue
        checksum = item.get("checksum")
        if not isinstance(checksum, str) or not re.fullmatch(r"[0-9a-f]{64}", checksum):
            raise AnsibleFilterError("backup_sums: %s has no SHA-256 (find needs get_checksum and "
                                     "checksum_algorithm sha256), got %r" % (item["path"], checksum))
        lines.append((relative, checksum))
    return "".join("%s  %s\n" % (checksum, relative) for relative, checksum in sorted(lines))


def parse_sums(text):
    """``({path: sha256}, [problems])`` of a SHA256SUMS text."""
    sums, problems = {}, []
    for number, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        match = _SUM_LINE.match(line)
        if not match:
            problems.append("line %d of %s is not '<sha256>  <file>': %r" % (number, SUMS, line[:80]))
            continue
        checksum, path = match.groups()
        normal = posixpath.normpath(path)
        if path.startswith("/") or normal.startswith("..") or normal != path:
            problems.append("line %d of %s names %r, which is not a plain path inside the set" % (number, SUMS, path))
            continue
        if path in sums:
            problems.append("line %d of %s lists %s a second time" % (number, SUMS, path))
        sums[path] = checksum
    return sums, problems


def backup_set_errors(files, sums_text, root, label="backup_restore_set"):
    """What is wrong with the set in ``root``: one message per problem, ``[]`` when none.

    ``files``: every file of the set (``find`` results with a sha256
    ``checksum``); ``sums_text``: its SHA256SUMS (None when there is none);
    ``label``: how messages name the variable that chose the set."""
    prefix = "backup: the set %s (%s)" % (root, label)
    if not isinstance(files, list):
        raise AnsibleFilterError("backup_set_errors: expected the files of find, got %r" % (files,))
    if sums_text is None or sums_text == "":
        return ["%s has no %s: it is not a complete backup set (a backup that stopped half-way, or not a set "
                "at all); choose another set." % (prefix, SUMS)]
    sums, problems = parse_sums(sums_text)
    found = {}
    for item in files:
        relative = _relative(item["path"], root)
        if relative != SUMS:
            found[relative] = item.get("checksum")
    errors = ["%s: %s" % (prefix, problem) for problem in problems]
    for path, checksum in sorted(sums.items()):
        if path not in found:
            errors.append("%s: %s is listed in %s but missing." % (prefix, path, SUMS))
        elif found[path] != checksum:
            errors.append("%s: %s has SHA-256 %s, but %s says %s: the file was changed or damaged."
                          % (prefix, path, found[path], SUMS, checksum))
    for path in sorted(set(found) - set(sums)):
        errors.append("%s: %s is in the set but not in %s: the set was changed after it was made." % (prefix, path, SUMS))
    if MANIFEST not in sums:
        errors.append("%s: %s does not list %s, which says what the set holds." % (prefix, SUMS, MANIFEST))
    return errors


def backup_manifest_errors(manifest, site, hosts, one_database, accounting_store, force=False):
    """What keeps the set's ``set.yml`` (``manifest``, loaded) from being restored onto this site.

    ``site``: this site's name; ``hosts``: ``{part: host}`` of this
    inventory ('' for none); ``one_database``, ``accounting_store``: this
    site's database kinds. ``force`` accepts another site's set."""
    if not isinstance(manifest, Mapping):
        return ["backup: the set's %s is not a mapping (%r): it is not a backup set of this project." % (MANIFEST, manifest)]
    errors = []
    if manifest.get("format") != FORMAT:
        errors.append("backup: the set's %s has format %r; this role restores format %d."
                      % (MANIFEST, manifest.get("format"), FORMAT))
        return errors
    if manifest.get("site") != site and not force:
        errors.append("backup: the set was made on the site %r, and this inventory's site_name is %r: set "
                      "backup_restore_force=true to restore it here anyway." % (manifest.get("site"), site))
    parts = manifest.get("parts")
    if not isinstance(parts, Mapping) or not parts:
        errors.append("backup: the set's %s names no part (opennebula, ldap, accounting, repository)." % MANIFEST)
        return errors
    for part, record in sorted(parts.items()):
        if part not in PARTS:
            errors.append("backup: the set holds the part %r, which this role does not know." % (part,))
            continue
        if not (hosts or {}).get(part):
            errors.append("backup: the set holds the part %s, but the inventory has no host in group %s to restore "
                          "it onto (backup_%s_host is empty)." % (part, PARTS[part], PARTS[part]))
        if part == "opennebula" and isinstance(record, Mapping) and record.get("database") != one_database:
            errors.append("backup: the set's OpenNebula database is %s, and site_one_database is %s: restore onto a "
                          "front-end with the same database backend." % (record.get("database"), one_database))
        if part == "accounting" and isinstance(record, Mapping) and record.get("store") != accounting_store:
            errors.append("backup: the set's accounting store is %s, and site_accounting_store is %s: restore onto an "
                          "accounting host with the same store." % (record.get("store"), accounting_store))
    return errors


def backup_lost_objects(live, saved):
    """The objects of ``live`` that ``saved`` does not have, as text (``VNET 2 'extra'``).

    Both are ``{kind: [[id, name], ...]}``. An object is kept when the set
    has the same id with the same name; everything else the site has now
    would be gone after the restore."""
    if not isinstance(live, Mapping) or not isinstance(saved, Mapping):
        raise AnsibleFilterError("backup_lost_objects: expected {kind: [[id, name], ...]} twice, got %r and %r"
                                 % (live, saved))
    lost = []
    for kind in sorted(live):
        kept = {(int(i), str(n)) for i, n in saved.get(kind) or []}
        for object_id, name in live[kind] or []:
            if (int(object_id), str(name)) not in kept:
                lost.append("%s %d %r" % (kind, int(object_id), str(name)))
    return lost


def _normal_dn(dn):
    return ",".join(part.strip() for part in dn.split(",")).lower()


def backup_ldif_dns(text):
    """The DNs of the entries of an LDIF text (folded lines and base64 ``dn::`` read), lower-cased."""
    if not isinstance(text, str):
        raise AnsibleFilterError("backup_ldif_dns: expected LDIF text, got %r" % (type(text).__name__,))
    unfolded = re.sub(r"\r?\n ", "", text)
    dns = []
    for line in unfolded.splitlines():
        if line.startswith("dn:: "):
            try:
                dns.append(_normal_dn(base64.b64decode(line[5:].strip()).decode("utf-8")))
            except (binascii.Error, UnicodeDecodeError) as error:
                raise AnsibleFilterError("backup_ldif_dns: a base64 DN that does not decode (%s): %r" % (error, line))
        elif line.startswith("dn: "):
            dns.append(_normal_dn(line[4:].strip()))
    return dns


def backup_normal_dns(dns):
    """``dns`` (a list of DNs) normalised as backup_ldif_dns normalises them."""
    if not isinstance(dns, list):
        raise AnsibleFilterError("backup_normal_dns: expected a list of DNs, got %r" % (dns,))
    return [_normal_dn(str(dn)) for dn in dns]


def backup_file_entries(stats):
    """The directories and regular files of ``stats`` (``stat``'s and ``find``'s results) as set.yml lists them.

    Each ``{path, type, owner, group, mode}``, ``type`` ``directory`` or
    ``file``; sorted by path, so a directory comes before what it holds.
    Symbolic links and other kinds of files are left out; a path given twice
    (a root that is also in a tree) is listed once."""
    if not isinstance(stats, list):
        raise AnsibleFilterError("backup_file_entries: expected stat or find results, got %r" % (stats,))
    entries = {}
    for item in stats:
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            raise AnsibleFilterError("backup_file_entries: %r is not a stat or find result" % (item,))
        if item.get("islnk"):
            continue
        if item.get("isdir"):
            kind = "directory"
        elif item.get("isreg"):
            kind = "file"
        else:
            continue
        path = item["path"].rstrip("/") or "/"
        entries[path] = {"path": path, "type": kind, "owner": item.get("pw_name"), "group": item.get("gr_name"),
                         "mode": item.get("mode")}
    return [entries[path] for path in sorted(entries)]


def backup_expired(names, prefix, keep):
    """The set names of ``names`` that the retention removes: every set of ``prefix`` but the ``keep`` newest.

    A set's name is ``<prefix>-YYYYMMDDTHHMMSSZ``; other names are never
    removed."""
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise AnsibleFilterError("backup_expired: keep must be a whole number, at least 1, got %r" % (keep,))
    pattern = re.compile(_SET_NAME % re.escape(prefix))
    sets = sorted((name for name in names if pattern.match(name)), reverse=True)
    return sets[keep:]


class FilterModule:
    """Backup sets: checksums, manifests, what a restore would lose."""

    def filters(self):
        return {
            "backup_sums": backup_sums,
            "backup_set_errors": backup_set_errors,
            "backup_manifest_errors": backup_manifest_errors,
            "backup_lost_objects": backup_lost_objects,
            "backup_ldif_dns": backup_ldif_dns,
            "backup_normal_dns": backup_normal_dns,
            "backup_file_entries": backup_file_entries,
            "backup_expired": backup_expired,
        }

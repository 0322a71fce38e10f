# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opennebula_user reconciler: a user, its auth driver, and for the x509 driver the DNs it logs in with.

OpenNebula's x509 driver accepts a certificate when its subject, written the
way the driver writes it (OpenSSL's slash form with each blank as ``\\20``),
is one of the ``|``-separated DNs of the user's password: ``x509_dn_password``
writes them so. Passwords of the core driver are stored hashed by oned, so a
core user's password is given at creation only.
"""

from __future__ import annotations

import re

from ansible.module_utils.stratuslab_one.errors import OneError, OneNotFoundError
from ansible.module_utils.stratuslab_one.module import change_result, delete_result, start_run

X509 = "x509"
CORE = "core"
# Ruby's \s, which the driver's escape_dn replaces with a backslash and the character's hex code.
_BLANK = re.compile(r"[ \t\r\n\f\v]")


def escape_dn(dn):
    """A DN as OpenNebula's x509 driver compares it: every blank as \\ and its hex code (space: \\20)."""
    return _BLANK.sub(lambda match: "\\%x" % ord(match.group()), dn)


def unescape_dn(text):
    return re.sub(r"\\([0-9a-f]{1,2})", lambda match: chr(int(match.group(1), 16)), text)


def x509_dn_password(dns):
    """The password of an x509 user that logs in with any of ``dns``."""
    return "|".join(escape_dn(dn) for dn in dns)


def user_view(user):
    """What the module shows of a user; the DNs of an x509 user, no other password."""
    if user is None:
        return {}
    view = dict(id=user.id, name=user.name, group=user.gname, auth_driver=user.auth_driver, enabled=user.enabled)
    if user.auth_driver == X509:
        view["x509_dns"] = [unescape_dn(dn) for dn in user.password.split("|") if dn]
    return view


def user_run(client, params, check_mode):
    changes, user, before = start_run(check_mode, client.userpool(), params, user_view)
    if params["state"] == "absent":
        return delete_result(changes, user, before, "user", client.user_delete)

    dns = params.get("x509_dns")
    driver = X509 if dns is not None else (params.get("auth_driver") or CORE)
    if dns is not None and params.get("auth_driver") not in (None, X509):
        raise OneError("x509_dns is for auth_driver x509, not %s" % params["auth_driver"])
    if dns is not None and not dns:
        raise OneError("x509_dns is empty: the user %s would log in with no certificate" % params.get("name"))
    password = x509_dn_password(dns) if dns is not None else params.get("password")

    if user is None:
        if params.get("name") is None:
            raise OneNotFoundError("user %s does not exist (give a name to create it)" % params["id"])
        if password in (None, ""):
            raise OneError("user %s does not exist: give x509_dns or a password to create it" % params["name"])
        new_id = changes.do("allocate user %s (driver %s)" % (params["name"], driver), client.user_allocate,
                            params["name"], password, driver)
        after = dict(id=new_id, name=params["name"], group="users", auth_driver=driver, enabled=True)
        if driver == X509:
            after["x509_dns"] = list(dns)
    else:
        after = dict(before)
        # A core password is stored hashed: it cannot be compared, so it is not set again.
        same_password = driver == CORE or password is None or password == user.password
        if user.auth_driver != driver or not same_password:
            new_password = user.password if password is None or driver == CORE else password
            changes.do("set the auth driver of user %s to %s%s" % (
                user.name, driver, " with its DNs" if driver == X509 else ""),
                client.user_chauth, user.id, driver, new_password)
            after["auth_driver"] = driver
            if driver == X509:
                after["x509_dns"] = list(dns)
            else:
                after.pop("x509_dns", None)
    if changes.changed and not check_mode:
        after = user_view(client.userpool().named(after["name"]))
    return change_result(changes, before, after, user=after)

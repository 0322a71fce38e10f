"""Users and groups (one.user.*, one.group.*)."""

import secrets

from ..errors import INTERNAL, NO_EXISTS, OnedError
from ..ldap import LDAP_NAME_RE
from ..rpc import check_param, refuse_taken_name, rpc
from ..template import cdata, ids_xml, template_xml
from ..util import now, sha256
from ..wire import _xml_text
from .acl import acl_add, acl_group_rules


# ---------------------------------------------------------------- users
@rpc("one.user.info", "i,?b")
def user_info(o, user, m, oid, decrypt=False):
    if oid == -1:
        oid = user["id"]
    return o.user_xml(o.get("user", oid))


@rpc("one.user.login", "s,s,i,?i")
def user_login(o, user, m, name, token, valid, egid=-1):
    target = o.store.find_name("user", name)
    if target is None:
        raise OnedError(NO_EXISTS, "Error getting user Pool.", -1)
    tokens = target.setdefault("tokens", [])
    if valid == 0:
        if token:
            tokens[:] = [t for t in tokens if t["token"] != token]
        else:
            tokens[:] = []
        o.store.touch("user", target)
        return token
    if not token:
        token = sha256(secrets.token_hex(32))
    expiration = -1 if valid < 0 else int(now()) + valid
    tokens[:] = [t for t in tokens if t["token"] != token]
    tokens.append({"token": token, "expiration": expiration, "egid": egid})
    o.store.touch("user", target)
    return token


# --------------------------------------------------------------------------
# Users and groups (one.user.allocate/chgrp, one.group.allocate/info)
# --------------------------------------------------------------------------

@rpc("one.user.allocate", "s,s,s,?a")
def user_allocate(o, user, m, name, password, driver, group_ids=None):
    o.require_admin(user, "Not authorized to perform CREATE USER.")
    refuse_taken_name(o, "user", name)
    if not name or not LDAP_NAME_RE.fullmatch(name):
        raise OnedError(INTERNAL, "Invalid NAME, it cannot be empty or "
                                  "contain spaces")
    groups = [check_param(group_ids, i, "i")
              for i in range(len(group_ids or []))]
    for gid in groups:
        o.get("group", gid)
    gid = groups[0] if groups else 1
    driver = driver or "core"
    oid = o.store.new_id("user")
    o.store.put("user", {
        "id": oid, "gid": gid, "groups": sorted(set(groups or [1])),
        "name": name,
        "password": sha256(password) if driver == "core" else password,
        "auth_driver": driver, "enabled": 1, "tokens": [],
        "template": [["TOKEN_PASSWORD", sha256(secrets.token_hex(32))]]})
    return oid


@rpc("one.user.chgrp", "i,i")
def user_chgrp(o, user, m, uid, gid):
    o.require_admin(user, "Not authorized to perform MANAGE USER [%d]." % uid)
    target = o.get("user", uid)
    o.get("group", gid)
    old = target["gid"]
    target["groups"] = sorted((set(target["groups"]) - {old}) | {gid})
    target["gid"] = gid
    o.store.touch("user", target)
    return uid


@rpc("one.group.allocate", "s")
def group_allocate(o, user, m, name):
    o.require_admin(user, "Not authorized to perform CREATE GROUP.")
    if not name:
        raise OnedError(INTERNAL, "Invalid NAME, it cannot be empty")
    refuse_taken_name(o, "group", name)
    oid = o.store.new_id("group")
    o.store.put("group", {"id": oid, "name": name, "template": []})
    for rule in acl_group_rules(oid):
        acl_add(o, *rule)
    return oid


@rpc("one.group.info", "i,?b")
def group_info(o, user, m, oid, decrypt=False):
    if oid == -1:
        oid = user["gid"]
    g = o.get("group", oid)
    members = [u["id"] for u in o.store.all("user") if oid in u["groups"]]
    quotas = ("<DATASTORE_QUOTA></DATASTORE_QUOTA><NETWORK_QUOTA>"
              "</NETWORK_QUOTA><VM_QUOTA></VM_QUOTA><IMAGE_QUOTA>"
              "</IMAGE_QUOTA>")
    return ("<GROUP><ID>%d</ID><NAME>%s</NAME>%s%s<ADMINS></ADMINS>%s"
            "<VLAN_RULES><ID>%s</ID></VLAN_RULES><DEFAULT_GROUP_QUOTAS>%s"
            "</DEFAULT_GROUP_QUOTAS></GROUP>") % (
        g["id"], _xml_text(g["name"]), template_xml(g["template"]),
        ids_xml("USERS", members), quotas, cdata(g["id"]), quotas)

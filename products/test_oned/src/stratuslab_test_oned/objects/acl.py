"""ACL rules (one.acl.addrule/delrule/info): stored and listed as oned
lists them."""

from ..errors import INTERNAL, OnedError
from ..rpc import rpc
from ..wire import _xml_text


# --------------------------------------------------------------------------
# ACL rules (one.acl.addrule/delrule/info): stored and listed as oned lists
# them; the test oned does not enforce them (docs/test-oned.md)
# --------------------------------------------------------------------------

ACL_INDIVIDUAL, ACL_GROUP, ACL_ALL, ACL_CLUSTER = \
    0x100000000, 0x200000000, 0x400000000, 0x800000000
ACL_OBJECTS = [  # PoolObjectSQL::ObjectType bits, in oned's string order
    (0x1000000000, "VM"), (0x2000000000, "HOST"), (0x4000000000, "NET"),
    (0x8000000000, "IMAGE"), (0x10000000000, "USER"),
    (0x20000000000, "TEMPLATE"), (0x40000000000, "GROUP"),
    (0x100000000000, "DATASTORE"), (0x200000000000, "CLUSTER"),
    (0x400000000000, "DOCUMENT"), (0x800000000000, "ZONE"),
    (0x1000000000000, "SECGROUP"), (0x2000000000000, "VDC"),
    (0x4000000000000, "VROUTER"), (0x8000000000000, "MARKETPLACE"),
    (0x10000000000000, "MARKETPLACEAPP"), (0x20000000000000, "VMGROUP"),
    (0x40000000000000, "VNTEMPLATE"), (0x80000000000000, "HOOK"),
    (0x100000000000000, "BACKUPJOB")]
ACL_RIGHTS = [(0x1, "USE"), (0x2, "MANAGE"), (0x4, "ADMIN"), (0x8, "CREATE")]
# oned's bootstrap rules, and the default-VDC rules each new group gets
ACL_BOOTSTRAP = [(0x200000001, 0x121429400000000, 0x8, 0x400000000),
                 (0x400000000, 0x800400000000, 0x1, 0x400000000),
                 (0x400000000, 0x18000400000000, 0x1, 0x400000000)]


def acl_group_rules(gid):
    user = ACL_GROUP | gid
    return [(user, 0x2400000000, 0x2, 0x100000000),      # HOST/* MANAGE #0
            (user, 0x4400000000, 0x1, 0x100000000),      # NET/* USE #0
            (user, 0x100400000000, 0x1, 0x100000000)]    # DATASTORE/* USE #0


def _acl_id_str(value):
    low = value & 0xFFFFFFFF
    if value & ACL_ALL:
        return "*"
    if value & ACL_GROUP:
        return "@%d" % low
    if value & ACL_CLUSTER:
        return "%%%d" % low
    return "#%d" % low


def acl_string(user, resource, rights, zone):
    objects = "+".join(n for bit, n in ACL_OBJECTS if resource & bit)
    return "%s %s/%s %s %s" % (
        _acl_id_str(user), objects, _acl_id_str(resource),
        "+".join(n for bit, n in ACL_RIGHTS if rights & bit),
        _acl_id_str(zone))


def acl_add(o, user, resource, rights, zone):
    for rule in o.store.all("acl"):
        if (rule["user"], rule["resource"], rule["rights"], rule["zone"]) \
                == (user, resource, rights, zone):
            raise OnedError(INTERNAL, "Error adding rule: Rule already "
                                      "exists")
    oid = o.store.new_id("acl")
    o.store.put("acl", {"id": oid, "user": user, "resource": resource,
                        "rights": rights, "zone": zone})
    return oid


def _hex_arg(text, what):
    try:
        return int(text, 16)
    except ValueError:
        raise OnedError(INTERNAL, "Error parsing %s [%s]" % (what, text)) \
            from None


@rpc("one.acl.addrule", "s,s,s,?s")
def acl_addrule(o, user, m, user_hex, resource_hex, rights_hex,
                zone_hex="100000000"):
    o.require_admin(user, "Not authorized to perform MANAGE ACL.")
    values = [_hex_arg(user_hex, "user"), _hex_arg(resource_hex, "resource"),
              _hex_arg(rights_hex, "rights"), _hex_arg(zone_hex, "zone")]
    return acl_add(o, *values)


@rpc("one.acl.delrule", "i")
def acl_delrule(o, user, m, oid):
    o.require_admin(user, "Not authorized to perform MANAGE ACL.")
    if o.store.get("acl", oid) is None:
        raise OnedError(INTERNAL, "Rule %d does not exist" % oid)
    o.store.remove("acl", oid)
    return oid


@rpc("one.acl.info")
def acl_info(o, user, m):
    # a multimap keyed by the USER value: by user, then insertion order
    rules = sorted(o.store.all("acl"), key=lambda r: (r["user"], r["id"]))
    return "<ACL_POOL>%s</ACL_POOL>" % "".join(
        "<ACL><ID>%d</ID><USER>%x</USER><RESOURCE>%x</RESOURCE><RIGHTS>%x"
        "</RIGHTS><ZONE>%x</ZONE><STRING>%s</STRING></ACL>" % (
            r["id"], r["user"], r["resource"], r["rights"], r["zone"],
            _xml_text(acl_string(r["user"], r["resource"], r["rights"],
                                 r["zone"])))
        for r in rules)

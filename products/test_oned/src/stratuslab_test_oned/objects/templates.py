"""VM templates (one.template.*, one.templatepool.info)."""

from ..errors import AUTHORIZATION, INTERNAL, OnedError
from ..rpc import DEFAULT_PERMS, _authorize, _is_admin, define_reads, refuse_taken_name, rpc
from ..template import parse_or_fail, perms_xml, template_xml, terase, tget, tmerge, tset
from .vms import _restricted_attr, vm_create


# ------------------------------------------------------- VM templates
def vmtemplate_xml(o, t):
    return "<VMTEMPLATE>%s%s<REGTIME>%d</REGTIME>%s</VMTEMPLATE>" % (
        o.owned_xml(t), perms_xml(t["perms"]), t["regtime"],
        template_xml(t["template"]))


@rpc("one.template.allocate", "s")
def template_allocate(o, user, m, text):
    tpl = parse_or_fail(text)
    if not _is_admin(user):
        bad = _restricted_attr(tpl)
        if bad:
            raise OnedError(AUTHORIZATION, "User [%d] : VM Template includes "
                            "a restricted attribute %s." % (user["id"], bad))
    name = tget(tpl, "NAME", "")
    if not name:
        raise OnedError(INTERNAL, "No NAME in template.")
    refuse_taken_name(o, "vmtemplate", name, owner=user["id"])
    terase(tpl, "NAME")
    oid = o.store.new_id("vmtemplate")
    o.store.put("vmtemplate", {
        "id": oid, "uid": user["id"], "gid": user["gid"], "name": name,
        "perms": list(DEFAULT_PERMS), "regtime": o.clock(), "template": tpl})
    return oid


define_reads("vmtemplate", None, "one.template.info", vmtemplate_xml,
             info_signature="i,?b,?b", use="TEMPLATE")


@rpc("one.template.chmod", "i,i,i,i,i,i,i,i,i,i")
def template_chmod(o, user, m, oid, *bits):
    t = o.get("vmtemplate", oid)
    _authorize(user, t, "MANAGE", "TEMPLATE")
    t["perms"] = [old if new == -1 else int(bool(new))
                  for old, new in zip(t["perms"], bits)]
    o.store.touch("vmtemplate", t)
    return oid


@rpc("one.template.delete", "i,?b")
def template_delete(o, user, m, oid, recursive=False):
    t = o.get("vmtemplate", oid)
    _authorize(user, t, "MANAGE", "TEMPLATE")
    o.store.remove("vmtemplate", oid)
    return oid


@rpc("one.template.instantiate", "i,s,?b,?s,?b")
def template_instantiate(o, user, m, oid, name, hold=False, extra="",
                         persistent=False):
    t = o.get("vmtemplate", oid)
    _authorize(user, t, "USE", "TEMPLATE")
    tpl = [[k, v if isinstance(v, str) else [list(x) for x in v]]
           for k, v in t["template"]]
    if extra:
        more = parse_or_fail(extra)
        if not _is_admin(user):
            bad = _restricted_attr(more)
            if bad:
                raise OnedError(AUTHORIZATION, "User [%d] : VM Template "
                                "includes a restricted attribute %s." % (
                                    user["id"], bad))
        tmerge(tpl, more)
    tset(tpl, "TEMPLATE_ID", str(oid))
    # the restricted attributes of the template itself are allowed
    return vm_create(o, user, tpl, hold,
                     name or "%s-%d" % (t["name"],
                                        o.store.counters.get("vm", 0)),
                     restricted_ok=True)

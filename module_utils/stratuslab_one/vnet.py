# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planning of one network, for opennebula_vnets (module_utils/stratuslab_one/vnets.py).

A network's address ranges are matched by key (``SL_AR_KEY``, else type and
start) and planned by ``plan_ars``; ``plan_vnet_steps`` gives every write an
existing network needs.
"""

from __future__ import annotations

from ansible.module_utils.stratuslab_one.errors import OneError
from ansible.module_utils.stratuslab_one.model import VNET_READY
from ansible.module_utils.stratuslab_one.module import membership_steps
from ansible.module_utils.stratuslab_one.template import attrs_differ, normalize_attrs


AR_KEY_ATTR = "SL_AR_KEY"


def vnet_options():
    """The options that describe one network: those of each entry of opennebula_vnets."""
    return dict(
        vn_mad=dict(type="str", choices=["bridge", "802.1Q"]),
        bridge=dict(type="str"),
        phydev=dict(type="str"),
        vlan_id=dict(type="str"),
        template=dict(type="dict"),
        address_ranges=dict(type="list", elements="dict", options=dict(
            key=dict(type="str", no_log=False),
            type=dict(type="str", choices=["IP4", "IP6", "IP4_6", "ETHER"], default="IP4"),
            ip=dict(type="str"),
            mac=dict(type="str"),
            size=dict(type="int", required=True),
            attributes=dict(type="dict"),
        )),
        fixed_leases=dict(type="list", elements="str"),
        clusters=dict(type="list", elements="str"),
    )


def _desired_ars(params):
    ars = []
    for spec in params.get("address_ranges") or []:
        ar_type = (spec.get("type") or "IP4").upper()
        attrs = normalize_attrs(spec.get("attributes"))
        for reserved in ("AR_ID", "TYPE", "IP", "MAC", "SIZE", AR_KEY_ATTR):
            if reserved in attrs:
                raise OneError("address range attribute %s must be given as its own option" % reserved)
        start = spec.get("ip") or spec.get("mac") or ""
        if ar_type != "ETHER" and not spec.get("ip") and ar_type in ("IP4", "IP4_6"):
            raise OneError("address range of type %s needs ip" % ar_type)
        key = spec.get("key") or ("%s:%s" % (ar_type, start) if start else None)
        if key is None:
            raise OneError("address range of type %s without ip/mac needs a key" % ar_type)
        ars.append(dict(key=str(key), type=ar_type, ip=spec.get("ip") or "", mac=(spec.get("mac") or "").lower(),
                        size=int(spec["size"]), attributes=attrs))
    for ip in params.get("fixed_leases") or []:
        ars.append(dict(key="IP4:%s" % ip, type="IP4", ip=str(ip), mac="", size=1, attributes={}))
    keys = [a["key"] for a in ars]
    dup = sorted(set(k for k in keys if keys.count(k) > 1))
    if dup:
        raise OneError("address ranges listed twice: %s" % ", ".join(dup))
    return ars


def _ar_vector(desired, ar_id=None):
    vec = {}
    if ar_id is not None:
        vec["AR_ID"] = ar_id
    else:
        vec["TYPE"] = desired["type"]
        if desired["ip"]:
            vec["IP"] = desired["ip"]
        if desired["mac"]:
            vec["MAC"] = desired["mac"]
    vec["SIZE"] = desired["size"]
    vec.update(desired["attributes"])
    vec[AR_KEY_ATTR] = desired["key"]
    return vec


def _same_start(ar, want):
    if ar.type != want["type"]:
        return False
    if want["ip"]:
        return ar.ip == want["ip"]
    return bool(want["mac"]) and ar.mac.lower() == want["mac"]


def _match_ars(existing, desired):
    """Pair desired ARs with existing ones: by key attribute, then by type+start.

    Two ranges with the same key (a move whose removal of the old range
    failed) pair the one already at the wanted start, so the other is removed.
    """
    pairs, free = {}, {a.ar_id: a for a in existing}
    for want in desired:
        keyed = [ar for ar in free.values() if ar.attributes.get(AR_KEY_ATTR) == want["key"]]
        if keyed:
            best = next((ar for ar in keyed if _same_start(ar, want)), keyed[0])
            pairs[want["key"]] = free.pop(best.ar_id)
    for want in desired:
        if want["key"] in pairs:
            continue
        for ar in list(free.values()):
            if AR_KEY_ATTR not in ar.attributes and _same_start(ar, want):
                pairs[want["key"]] = free.pop(ar.ar_id)
                break
    return pairs, list(free.values())


def plan_ars(vnet_ars, desired, force):
    """Return [(op, payload)] with op in add, update, rm; raise when leases block a change."""
    ops = []
    pairs, leftovers = _match_ars(vnet_ars, desired)
    blocked = []
    for ar in leftovers:
        if ar.used_leases and not force:
            blocked.append("address range %s (%s %s) has %d lease(s) in use and is no longer wanted"
                           % (ar.ar_id, ar.type, ar.ip or ar.mac, ar.used_leases))
        ops.append(("rm", ar.ar_id, None))
    for want in desired:
        ar = pairs.get(want["key"])
        if ar is None:
            ops.append(("add", None, want))
            continue
        start_changed = (ar.type != want["type"] or (want["ip"] and ar.ip != want["ip"])
                         or (want["mac"] and ar.mac.lower() != want["mac"]))
        if start_changed:
            if ar.used_leases and not force:
                blocked.append("address range %s (%s) would move from %s to %s but has %d lease(s) in use"
                               % (ar.ar_id, want["key"], ar.ip or ar.mac, want["ip"] or want["mac"],
                                  ar.used_leases))
            ops.append(("rm", ar.ar_id, None))
            ops.append(("add", None, want))
            continue
        wanted_attrs = dict(want["attributes"])
        wanted_attrs[AR_KEY_ATTR] = want["key"]
        if ar.size != want["size"] or ar.attributes != wanted_attrs:
            ops.append(("update", ar.ar_id, want))
    if blocked:
        raise OneError("; ".join(blocked) + ". Set force=true to remove them anyway.")
    # Removals last. oned accepts overlapping ranges, so a moved range is added at
    # its new start before the old one goes: a range oned refuses (a wrong IP, MAC
    # or SIZE) fails before anything was removed, and the network keeps its ranges.
    ops.sort(key=lambda op: {"add": 0, "update": 1, "rm": 2}[op[0]])
    return ops


def _vnet_template(params):
    tmpl = normalize_attrs(params.get("template"))
    for key, option in (("VN_MAD", "vn_mad"), ("BRIDGE", "bridge"), ("PHYDEV", "phydev"),
                        ("VLAN_ID", "vlan_id")):
        if params.get(option) not in (None, ""):
            tmpl[key] = str(params[option])
    if "AR" in tmpl:
        raise OneError("give address ranges with address_ranges, not template.AR")
    return tmpl


def _vnet_view(vnet):
    if vnet is None:
        return {}
    return dict(id=vnet.id, name=vnet.name, clusters=vnet.clusters,
                template={k: v for k, v in vnet.template.items()},
                address_ranges=sorted(
                    [dict(key=a.attributes.get(AR_KEY_ATTR, "%s:%s" % (a.type, a.ip or a.mac)),
                          type=a.type, ip=a.ip, mac=a.mac, size=a.size,
                          used_leases=a.used_leases) for a in vnet.ars], key=lambda d: d["key"]))


def vnet_wanted(params, clusters=None):
    """(template, desired ARs or None, cluster ids or None) of a vnet spec.

    ``clusters`` is the cluster Pool; it is needed only when the spec names
    clusters.  None means "leave alone" for the ARs and the clusters.
    """
    template = _vnet_template(params)
    desired_ars = _desired_ars(params) if (params.get("address_ranges") is not None
                                           or params.get("fixed_leases") is not None) else None
    cluster_ids = None
    if params.get("clusters") is not None:
        cluster_ids = clusters.ids(params["clusters"])
    return template, desired_ars, cluster_ids


def vnet_allocation(name, template, desired_ars, cluster_ids):
    """(allocate template, first cluster id or -1, predicted view) of a new vnet."""
    template = dict(template)
    if "VN_MAD" not in template:
        template["VN_MAD"] = "bridge"
    alloc = dict(NAME=name)
    alloc.update(template)
    alloc["AR"] = [_ar_vector(a) for a in desired_ars or []]
    first_cluster = cluster_ids[0] if cluster_ids else -1
    view = dict(id=None, name=name, clusters=[0 if first_cluster == -1 else first_cluster], template=template,
                address_ranges=sorted([dict(key=a["key"], type=a["type"], ip=a["ip"], mac=a["mac"],
                                            size=a["size"], used_leases=0) for a in desired_ars or []],
                                      key=lambda d: d["key"]))
    return alloc, first_cluster, view


def plan_vnet_steps(client, vnet, template, desired_ars, cluster_ids, force, check_mode=False):
    """The writes that bring an existing vnet to the wanted state.

    Returns [(description, client method, args, kwargs)]: template
    merge (only differing keys), address range removals, updates and
    additions (see plan_ars), cluster membership (exact when given).
    """
    steps = []
    differ = attrs_differ(template, vnet.template)
    if differ:
        steps.append(("update template %s" % ", ".join(differ), client.vn_update,
                      (vnet.id, {k: template[k] for k in differ}), {"merge": True}))
    if desired_ars is not None:
        if vnet.state != VNET_READY and not check_mode:
            raise OneError("vnet %s is in state %s; address ranges can only change when READY"
                           % (vnet.name, vnet.state_name))
        for op, ar_id, want in plan_ars(vnet.ars, desired_ars, force):
            if op == "rm":
                steps.append(("remove address range %s" % ar_id, client.vn_rm_ar, (vnet.id, ar_id),
                              {"force": force}))
            elif op == "add":
                steps.append(("add address range %s" % want["key"], client.vn_add_ar, (vnet.id, _ar_vector(want)),
                              {}))
            else:
                steps.append(("update address range %s (%s)" % (ar_id, want["key"]), client.vn_update_ar,
                              (vnet.id, _ar_vector(want, ar_id=ar_id)), {}))
    if cluster_ids is not None:
        steps += membership_steps(client, "vnet", vnet.id, vnet.clusters, cluster_ids)
    return steps


def errored_vnet_deletion(vnet):
    """The description of the delete of a vnet oned left in ERROR, so that it is allocated again.

    A network ends in ERROR when its creation failed (an address range oned
    could not read, a driver failure): add_ar and the others are refused in
    that state, so the only way to the wanted network is a new one.
    """
    if vnet.used_leases:
        raise OneError("vnet %s (%s) is in state ERROR (%s) with %d lease(s) in use: it cannot be created again"
                       % (vnet.name, vnet.id, vnet.template.get("ERROR", "no error message"), vnet.used_leases))
    return "delete vnet %s (%s) in state ERROR" % (vnet.name, vnet.id)


def _predict_vnet(view, template, desired_ars, cluster_ids):
    after = dict(view)
    after["template"] = dict(view.get("template", {}))
    after["template"].update(template)
    if desired_ars is not None:
        used = {a["key"]: a["used_leases"] for a in view.get("address_ranges", [])}
        after["address_ranges"] = sorted([dict(key=a["key"], type=a["type"], ip=a["ip"], mac=a["mac"],
                                               size=a["size"], used_leases=used.get(a["key"], 0))
                                          for a in desired_ars], key=lambda d: d["key"])
    if cluster_ids is not None:
        after["clusters"] = sorted(cluster_ids)
    return after

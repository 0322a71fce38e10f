# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opennebula_datastore reconciler: a datastore's type, drivers, template and clusters."""

from __future__ import annotations

import posixpath

from ansible.module_utils.stratuslab_one.errors import OneError, OneNotFoundError
from ansible.module_utils.stratuslab_one.model import DATASTORE_TYPE_TEMPLATE, DATASTORE_TYPES
from ansible.module_utils.stratuslab_one.module import (
    change_result, delete_result, membership_steps, plan_other_clusters, start_run)
from ansible.module_utils.stratuslab_one.template import attrs_differ, normalize_attrs


def _datastore_template(params):
    tmpl = normalize_attrs(params.get("template"))
    if "BASE_PATH" in tmpl:
        raise OneError("BASE_PATH cannot be set in the template: oned puts every datastore in "
                       "DATASTORE_LOCATION/<id> (oned.conf); use base_path to check that directory")
    ds_type = params["type"]
    tmpl["TYPE"] = DATASTORE_TYPE_TEMPLATE[ds_type]
    if params.get("tm_mad"):
        tmpl["TM_MAD"] = params["tm_mad"]
    if params.get("ds_mad") and ds_type != "system":
        tmpl["DS_MAD"] = params["ds_mad"]
    return tmpl


# oned 7.4.0 ignores BASE_PATH at allocate and update: a datastore's BASE_PATH
# is always oned.conf's DATASTORE_LOCATION plus its id. So base_path names that
# directory and is only compared with what oned reports (or, before a datastore
# is allocated, with DATASTORE_LOCATION); it is never sent.

def _same_dir(left, right):
    return posixpath.normpath(left) == posixpath.normpath(right)


def _base_path_refused(name, actual, base_path):
    return OneError("datastore %s: oned puts it at %s (DATASTORE_LOCATION of oned.conf, plus the id) and ignores "
                    "BASE_PATH, so base_path %s cannot be applied; set DATASTORE_LOCATION in oned.conf to it, "
                    "or change base_path" % (name, actual, base_path))


def check_base_path(ds, base_path):
    """An existing datastore: the BASE_PATH oned reports must be <base_path>/<id>."""
    if base_path and not _same_dir(posixpath.dirname(ds.base_path), base_path):
        raise _base_path_refused(ds.name, ds.base_path, base_path)


def check_datastore_location(client, name, base_path):
    """Before a datastore is allocated: oned's DATASTORE_LOCATION must be base_path."""
    if not base_path:
        return
    location = client.datastore_location()
    if not _same_dir(location, base_path):
        raise _base_path_refused(name, "%s/<id>" % location.rstrip("/"), base_path)


def _ds_view(ds):
    if ds is None:
        return {}
    view = ds.summary()
    view["template"] = dict(ds.template)
    return view


def datastore_run(client, params, check_mode):
    changes, ds, before = start_run(check_mode, client.datastorepool(), params, _ds_view)
    if params["state"] == "absent":
        return delete_result(changes, ds, before, "datastore", client.datastore_delete)

    template = _datastore_template(params)
    cluster_ids = None
    if params.get("clusters") is not None:
        cluster_ids = client.clusterpool().ids(params["clusters"])
    if ds is None:
        if params.get("name") is None:
            raise OneNotFoundError("datastore %s does not exist (give a name to create it)" % params["id"])
        if "TM_MAD" not in template:
            raise OneError("tm_mad is required to create datastore %s" % params["name"])
        if params["type"] != "system" and "DS_MAD" not in template:
            raise OneError("ds_mad is required to create %s datastore %s" % (params["type"], params["name"]))
        check_datastore_location(client, params["name"], params.get("base_path"))
        alloc = dict(NAME=params["name"])
        alloc.update(template)
        first = cluster_ids[0] if cluster_ids else -1
        new_id = changes.do("allocate datastore %s" % params["name"], client.datastore_allocate, alloc, first)
        after = dict(id=new_id, name=params["name"], type=params["type"], ds_mad=template.get("DS_MAD", "-"),
                     tm_mad=template["TM_MAD"], base_path="", clusters=[0 if first == -1 else first],
                     template=template)
        if check_mode:
            plan_other_clusters(changes, "datastore", cluster_ids)
            if cluster_ids:
                after["clusters"] = sorted(cluster_ids)
            return change_result(changes, before, after, datastore=after)
        ds = client.datastore_info(new_id)
    else:
        if DATASTORE_TYPES.get(ds.type, "").lower() != params["type"]:
            raise OneError("datastore %s is of type %s, not %s; OpenNebula cannot convert it"
                           % (ds.name, ds.type_name.lower(), params["type"]))
        check_base_path(ds, params.get("base_path"))

    current = dict(ds.template)
    current["TYPE"] = DATASTORE_TYPE_TEMPLATE[ds.type_name.lower()]
    current.setdefault("TM_MAD", ds.tm_mad)
    if ds.ds_mad and ds.ds_mad != "-":
        current.setdefault("DS_MAD", ds.ds_mad)
    differ = attrs_differ(template, current)
    if differ:
        changes.do("update template %s" % ", ".join(differ), client.datastore_update, ds.id,
                   {k: template[k] for k in differ}, merge=True)
    if cluster_ids is not None:
        for description, method, args, kwargs in membership_steps(client, "datastore", ds.id, ds.clusters,
                                                                  cluster_ids):
            changes.do(description, method, *args, **kwargs)
    if changes.changed and not check_mode:
        ds = client.datastore_info(ds.id)
        after = _ds_view(ds)
    else:
        after = _ds_view(ds)
        after["template"].update({k: template[k] for k in differ})
        if cluster_ids is not None:
            after["clusters"] = sorted(cluster_ids)
    return change_result(changes, before, after, datastore=after)

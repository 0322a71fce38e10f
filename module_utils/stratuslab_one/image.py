# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opennebula_image reconciler: register an image by name (never again from another path), or delete it."""

from __future__ import annotations

from ansible.module_utils.stratuslab_one.errors import NO_EXISTS, OneError, OneNotFoundError
from ansible.module_utils.stratuslab_one.model import DATASTORE_IMAGE, IMAGE_READY


def _wanted_template(params):
    tpl = {"NAME": params["name"], "PATH": params["path"], "TYPE": params["type"].upper()}
    if params.get("description"):
        tpl["DESCRIPTION"] = params["description"]
    for key, value in (params.get("template") or {}).items():
        tpl[str(key).upper()] = value
    return tpl


def image_run(client, params, check_mode):
    """Register (or delete) one image by name; the result dict of the module."""
    name = params["name"]
    images = client.imagepool()
    current = images.named(name)
    before = current.summary() if current else {}
    actions, warnings = [], []

    if params["state"] == "absent":
        if current is None:
            return {"changed": False, "image": {}, "actions": [], "diff": {"before": {}, "after": {}}}
        actions.append("delete image %s (%d)" % (name, current.id))
        if not check_mode:
            client.image_delete(current.id)
            if params["wait"]:
                client.wait_image_gone(current.id, timeout=params["wait_timeout"])
        return {"changed": True, "image": {}, "actions": actions, "diff": {"before": before, "after": {}}}

    if not params.get("path") or params.get("datastore") in (None, ""):
        raise OneError("state=present needs path and datastore")
    datastores = client.datastorepool()
    ds = datastores.get(params["datastore"])
    if ds is None:
        raise OneNotFoundError("datastore %r does not exist" % params["datastore"], code=NO_EXISTS)
    if ds.type != DATASTORE_IMAGE:
        raise OneError("datastore %s (%d) is a %s datastore; images go into an image datastore"
                       % (ds.name, ds.id, ds.type_name.lower()))

    if current is not None:
        if current.datastore_id != ds.id:
            raise OneError("image %s (%d) is registered in datastore %s (%d), not %s (%d); an image does not move "
                           "between datastores: register it under another name"
                           % (name, current.id, current.datastore, current.datastore_id, ds.name, ds.id))
        if current.path != params["path"]:
            warnings.append("image %s (%d) was registered from %s; it is not registered again from %s "
                            "(publish a new version under a new name)" % (name, current.id, current.path,
                                                                          params["path"]))
        image = current
        if params["wait"] and current.state != IMAGE_READY and not check_mode:
            image = client.wait_image_ready(current.id, timeout=params["wait_timeout"])
        return {"changed": False, "image": image.summary(), "actions": [], "warnings": warnings,
                "diff": {"before": before, "after": image.summary()}}

    template = _wanted_template(params)
    actions.append("allocate image %s in datastore %s (%d)" % (name, ds.name, ds.id))
    if check_mode:
        predicted = {"id": None, "name": name, "type": params["type"], "state": "READY", "path": params["path"],
                     "source": "", "size_mb": 0, "datastore_id": ds.id, "datastore": ds.name,
                     "template": {k: v for k, v in template.items() if k not in ("NAME", "PATH", "TYPE")}}
        return {"changed": True, "image": predicted, "actions": actions, "diff": {"before": {}, "after": predicted}}
    image_id = client.image_allocate(template, ds.id)
    image = client.wait_image_ready(image_id, timeout=params["wait_timeout"]) if params["wait"] \
        else client.image_info(image_id)
    return {"changed": True, "image": image.summary(), "actions": actions,
            "diff": {"before": {}, "after": image.summary()}}

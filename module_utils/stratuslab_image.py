# -*- coding: utf-8 -*-
# Copyright: StratusLab site deployer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenNebula images for the opennebula_image module.

Built on the shared client (module_utils/stratuslab_one.py: ``OneClient.call``,
``Pool``, errors, template rendering) without changing it: the image pool's
parsing, the image calls, the wait for READY and the module's plan live here.

OpenNebula's IMAGE document (share/doc/xsd/image.xsd in OpenNebula's
repository; not among the project's reference copies): ID, UID, GID, UNAME,
GNAME, NAME, PERMISSIONS, TYPE, DISK_TYPE, PERSISTENT, REGTIME, SOURCE,
PATH, FORMAT, FS, SIZE (MB), STATE, PREV_STATE, RUNNING_VMS, CLONING_OPS,
CLONING_ID, TARGET_SNAPSHOT, DATASTORE_ID, DATASTORE, VMS, CLONES,
APP_CLONES, TEMPLATE, SNAPSHOTS.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Dict

from ansible.module_utils.stratuslab_one import (
    ACTION,
    NO_EXISTS,
    OneActionError,
    OneError,
    OneNotFoundError,
    Pool,
    elements_to_dict,
    render_template,
)

IMAGE_STATES = {0: "INIT", 1: "READY", 2: "USED", 3: "DISABLED", 4: "LOCKED", 5: "ERROR", 6: "CLONE",
                7: "DELETE", 8: "USED_PERS", 9: "LOCKED_USED", 10: "LOCKED_USED_PERS"}
IMAGE_READY, IMAGE_ERROR = 1, 5
IMAGE_TYPES = {0: "OS", 1: "CDROM", 2: "DATABLOCK", 3: "KERNEL", 4: "RAMDISK", 5: "CONTEXT"}
DATASTORE_IMAGE = 0


def _leaf(elem, tag, default=""):
    child = elem.find(tag)
    if child is None or child.text is None:
        return default
    return child.text.strip()


def _number(elem, tag, default=0):
    text = _leaf(elem, tag, "")
    try:
        return int(text)
    except ValueError:
        return default


@dataclass
class Image:
    id: int
    name: str
    uid: int = 0
    gid: int = 0
    type: int = 0
    state: int = 0
    persistent: int = 0
    path: str = ""
    source: str = ""
    size_mb: int = 0
    datastore_id: int = -1
    datastore: str = ""
    template: Dict[str, Any] = field(default_factory=dict)

    @property
    def state_name(self):
        return IMAGE_STATES.get(self.state, str(self.state))

    @property
    def type_name(self):
        return IMAGE_TYPES.get(self.type, str(self.type))

    @classmethod
    def from_element(cls, elem):
        tmpl = elem.find("TEMPLATE")
        return cls(
            id=_number(elem, "ID", -1), name=_leaf(elem, "NAME"), uid=_number(elem, "UID"),
            gid=_number(elem, "GID"), type=_number(elem, "TYPE"), state=_number(elem, "STATE"),
            persistent=_number(elem, "PERSISTENT"), path=_leaf(elem, "PATH"), source=_leaf(elem, "SOURCE"),
            size_mb=_number(elem, "SIZE"), datastore_id=_number(elem, "DATASTORE_ID", -1),
            datastore=_leaf(elem, "DATASTORE"),
            template=elements_to_dict(list(tmpl)) if tmpl is not None else {},
        )

    def summary(self):
        return {"id": self.id, "name": self.name, "type": self.type_name.lower(), "state": self.state_name,
                "path": self.path, "source": self.source, "size_mb": self.size_mb,
                "datastore_id": self.datastore_id, "datastore": self.datastore, "template": self.template}


def _root(xml_text, tag):
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise OneError("Cannot parse OpenNebula answer as XML (%s)" % exc)
    if root.tag != tag:
        raise OneError("Expected <%s> from OpenNebula, got <%s>" % (tag, root.tag))
    return root


def parse_image_pool(xml_text):
    """Images of an IMAGE_POOL document, by ascending id (oned lists them descending)."""
    return sorted((Image.from_element(e) for e in _root(xml_text, "IMAGE_POOL").findall("IMAGE")),
                  key=lambda i: i.id)


def parse_image(xml_text):
    return Image.from_element(_root(xml_text, "IMAGE"))


# -- calls ------------------------------------------------------------------------

def imagepool(client):
    """Every image the session's user may see (filter -2: all), one call."""
    return Pool("image", parse_image_pool(client.call("one.imagepool.info", -2, -1, -1)))


def image_info(client, image_id):
    return parse_image(client.call("one.image.info", int(image_id)))


def image_allocate(client, template, datastore_id):
    text = template if isinstance(template, str) else render_template(template)
    return client.call("one.image.allocate", text, int(datastore_id))


def image_delete(client, image_id):
    return client.call("one.image.delete", int(image_id))


def wait_image_ready(client, image_id, timeout=300, interval=2.0):
    """Wait while oned's datastore driver copies the image; READY or raise (ERROR at once)."""
    last = {}

    def check():
        image = image_info(client, image_id)
        last["image"] = image
        if image.state == IMAGE_READY:
            return image
        if image.state == IMAGE_ERROR:
            raise OneActionError("Image %s (%s) is in state ERROR: %s"
                                 % (image.id, image.name, image.template.get("ERROR", "no error message")),
                                 code=ACTION, method="one.image.info", resp_id=image.id)
        return None

    def describe():
        image = last.get("image")
        return {"what": "image %s to be READY (state %s)" % (image_id, image.state_name if image else "unknown"),
                "image": image_id}

    return client._poll(check, timeout, interval, describe)


def wait_image_gone(client, image_id, timeout=120, interval=1.0):
    def check():
        try:
            image_info(client, image_id)
        except OneNotFoundError:
            return True
        return None

    return client._poll(check, timeout, interval, lambda: {"what": "image %s to be deleted" % image_id})


# -- the module's plan ------------------------------------------------------------

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
    images = imagepool(client)
    current = images.named(name)
    before = current.summary() if current else {}
    actions, warnings = [], []

    if params["state"] == "absent":
        if current is None:
            return {"changed": False, "image": {}, "actions": [], "diff": {"before": {}, "after": {}}}
        actions.append("delete image %s (%d)" % (name, current.id))
        if not check_mode:
            image_delete(client, current.id)
            if params["wait"]:
                wait_image_gone(client, current.id, timeout=params["wait_timeout"])
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
            image = wait_image_ready(client, current.id, timeout=params["wait_timeout"])
        return {"changed": False, "image": image.summary(), "actions": [], "warnings": warnings,
                "diff": {"before": before, "after": image.summary()}}

    template = _wanted_template(params)
    actions.append("allocate image %s in datastore %s (%d)" % (name, ds.name, ds.id))
    if check_mode:
        predicted = {"id": None, "name": name, "type": params["type"], "state": "READY", "path": params["path"],
                     "source": "", "size_mb": 0, "datastore_id": ds.id, "datastore": ds.name,
                     "template": {k: v for k, v in template.items() if k not in ("NAME", "PATH", "TYPE")}}
        return {"changed": True, "image": predicted, "actions": actions, "diff": {"before": {}, "after": predicted}}
    image_id = image_allocate(client, template, ds.id)
    image = wait_image_ready(client, image_id, timeout=params["wait_timeout"]) if params["wait"] \
        else image_info(client, image_id)
    return {"changed": True, "image": image.summary(), "actions": actions,
            "diff": {"before": {}, "after": image.summary()}}

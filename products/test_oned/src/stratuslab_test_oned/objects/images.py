"""Images (one.imagepool.info, one.image.info/allocate/delete) and their
simulated copy."""

import hashlib
import os
import re

from ..constants import DS_TYPES
from ..errors import INTERNAL, OnedError
from ..rpc import define_reads, refuse_taken_name, rpc
from ..template import cdata, parse_or_fail, perms_xml, template_xml, terase, tget, tset
from ..util import now
from ..wire import _xml_text


# --------------------------------------------------------------------------
# Images (one.imagepool.info, one.image.info/allocate/delete)
#
# No captured oned answer exists for images: the IMAGE document follows
# OpenNebula's documented image.xsd, the messages are modelled on oned's
# other allocate errors, and none of it is replay-checked (docs/test-oned.md).
# The datastore "driver" copies PATH after IMAGE_COPY_DELAY seconds: a local
# file that exists and is allowed by the datastore's RESTRICTED_DIRS and
# SAFE_DIRS makes the image READY; anything else ERROR, with the reason in
# TEMPLATE/ERROR, as the fs driver's cp does.
# --------------------------------------------------------------------------

IMAGE_TYPES = {"OS": 0, "CDROM": 1, "DATABLOCK": 2, "KERNEL": 3, "RAMDISK": 4,
               "CONTEXT": 5}
IMG_READY, IMG_LOCKED, IMG_ERROR = 1, 4, 5
IMAGE_COPY_DELAY = 0.2
_IMAGE_ELEMENT_KEYS = ("NAME", "PATH", "SOURCE", "TYPE", "PERSISTENT", "SIZE")


def image_xml(o, img):
    return ("<IMAGE>%s%s<TYPE>%d</TYPE>"
            "<DISK_TYPE>0</DISK_TYPE><PERSISTENT>%d</PERSISTENT>"
            "<REGTIME>%d</REGTIME><SOURCE>%s</SOURCE><PATH>%s</PATH>"
            "<FORMAT>%s</FORMAT><FS>%s</FS><SIZE>%d</SIZE><STATE>%d</STATE>"
            "<PREV_STATE>%d</PREV_STATE><RUNNING_VMS>0</RUNNING_VMS>"
            "<CLONING_OPS>0</CLONING_OPS><CLONING_ID>-1</CLONING_ID>"
            "<TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT><DATASTORE_ID>%d"
            "</DATASTORE_ID><DATASTORE>%s</DATASTORE><VMS></VMS><CLONES>"
            "</CLONES><APP_CLONES></APP_CLONES>%s<SNAPSHOTS><ALLOW_ORPHANS>"
            "%s</ALLOW_ORPHANS><CURRENT_BASE>%s</CURRENT_BASE><NEXT_SNAPSHOT>"
            "%s</NEXT_SNAPSHOT></SNAPSHOTS><BACKUP_INCREMENTS>"
            "</BACKUP_INCREMENTS><BACKUP_DISK_IDS></BACKUP_DISK_IDS>"
            "</IMAGE>") % (
        o.owned_xml(img), perms_xml([1, 1, 0, 0, 0, 0, 0, 0, 0]), img["type"],
        img["persistent"], img["regtime"], cdata(img["source"]),
        cdata(img["path"]), cdata(img["format"]), cdata(""), img["size"],
        img["state"], img["prev_state"], img["datastore_id"],
        _xml_text(img["datastore"]), template_xml(img["template"]),
        cdata("NO"), cdata(-1), cdata(0))


def _image_copy_error(ds, path):
    """Why the fs driver's cp would refuse path, or None."""
    if re.match(r"^(https?|s3|lxd|docker)://", path):
        return None
    if not path.startswith("/"):
        return "Error copying image in the datastore: Not a valid path: %s" % path

    def dirs(key):
        return [d for d in (tget(ds["template"], key, "") or "").split() if d]

    real = os.path.realpath(path)
    safe = [d for d in dirs("SAFE_DIRS")
            if real == d or real.startswith(d.rstrip("/") + "/")]
    restricted = [d for d in dirs("RESTRICTED_DIRS")
                  if real == d or real.startswith(d.rstrip("/") + "/")]
    if restricted and not safe:
        return ("Error copying image in the datastore: Not allowed to copy "
                "images from %s" % " ".join(dirs("RESTRICTED_DIRS")))
    if not os.path.isfile(real):
        return ("Error copying image in the datastore: Cannot stat %s"
                % path)
    return None


def _image_size_mb(path):
    """Size in MB of the image the driver stores (gzip is decompressed)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            if handle.read(2) == b"\x1f\x8b" and size >= 18:
                handle.seek(-4, os.SEEK_END)
                size = int.from_bytes(handle.read(4), "little")
    except OSError:
        return 0
    return (size + 1048575) // 1048576


def image_tick(o, t):
    for img in list(o.store.objects["image"].values()):
        due = img.get("due")
        if due is None or due > t:
            continue
        img["due"] = None
        ds = o.store.get("datastore", img["datastore_id"])
        error = _image_copy_error(ds, img["path"]) if ds else \
            "Error copying image in the datastore: datastore is gone"
        img["prev_state"] = img["state"]
        if error:
            img["state"] = IMG_ERROR
            tset(img["template"], "ERROR", error)
        else:
            img["state"] = IMG_READY
            if img["path"].startswith("/"):
                img["size"] = _image_size_mb(img["path"])
        o.store.touch("image", img)


define_reads("image", "one.imagepool.info", "one.image.info", image_xml,
             filtered=True)


@rpc("one.image.allocate", "s,i,?b")
def image_allocate(o, user, m, text, ds_id, no_check_capacity=False):
    tpl = parse_or_fail(text)
    ds = o.get("datastore", ds_id)
    if ds["type"] != DS_TYPES["IMAGE_DS"]:
        raise OnedError(INTERNAL, "New images can only be allocated in an "
                                  "IMAGE datastore.")
    name = tget(tpl, "NAME", "")
    if not name:
        raise OnedError(INTERNAL, "No NAME in template.")
    refuse_taken_name(o, "image", name, owner=user["id"])
    type_name = (tget(tpl, "TYPE", "") or "OS").upper()
    if type_name not in IMAGE_TYPES:
        raise OnedError(INTERNAL, "Unknown image type %s." % type_name)
    path = tget(tpl, "PATH", "") or ""
    if not path and type_name != "DATABLOCK" and not tget(tpl, "SOURCE"):
        raise OnedError(INTERNAL, "No PATH nor SOURCE in template.")
    persistent = 1 if (tget(tpl, "PERSISTENT", "") or "").upper() in \
        ("YES", "1") else 0
    for key in _IMAGE_ELEMENT_KEYS:
        terase(tpl, key)
    oid = o.store.new_id("image")
    img = {
        "id": oid, "uid": user["id"], "gid": user["gid"], "name": name,
        "type": IMAGE_TYPES[type_name], "persistent": persistent,
        "regtime": int(now()), "path": path,
        "source": "%s/%s" % (ds["base_path"],
                             hashlib.sha256(("%d:%s:%f" % (oid, name, now()))
                                            .encode()).hexdigest()[:32]),
        "format": "raw", "size": 0, "state": IMG_LOCKED, "prev_state": 0,
        "datastore_id": ds["id"], "datastore": ds["name"], "template": tpl,
        "due": now() + IMAGE_COPY_DELAY,
    }
    o.store.put("image", img)
    return oid


@rpc("one.image.delete", "i,?b")
def image_delete(o, user, m, oid, force=False):
    o.get("image", oid)
    o.store.remove("image", oid)
    return oid

"""Datastores (one.datastore.*, one.datastorepool.info)."""

from ..constants import DISK_TYPES, DS_MAD_CONF, DS_TYPES, TM_MAD_CONF
from ..core import Oned
from ..errors import ACTION, INTERNAL, OnedError
from ..rpc import define_reads, refuse_taken_name, rpc
from ..template import parse_or_fail, terase, tget, tset


# ----------------------------------------------------------- datastores
define_reads("datastore", "one.datastorepool.info", "one.datastore.info",
             Oned.datastore_xml)


def _ds_set_mad(tpl, ds_type, ds_mad):
    """Datastore::set_ds_mad: the DS_MAD_CONF's checks (not for system
    datastores)."""
    if ds_type == DS_TYPES["SYSTEM_DS"]:
        return
    if ds_mad not in DS_MAD_CONF:
        raise OnedError(INTERNAL, 'DS_MAD named "%s" is not defined in '
                                  'oned.conf' % ds_mad)
    required, capacity_check = DS_MAD_CONF[ds_mad]
    if capacity_check is not None:
        tset(tpl, "DATASTORE_CAPACITY_CHECK", capacity_check)
    for attr in filter(None, (a.strip().upper()
                              for a in required.split(","))):
        if not tget(tpl, attr):
            raise OnedError(INTERNAL, 'Datastore template is missing the '
                            '"%s" attribute or it\'s empty.' % attr)


def _yes_no(value, default):
    """A TM_MAD_CONF boolean as oned writes it back."""
    if value is None:
        return default
    return "YES" if value.strip().upper() in ("YES", "TRUE", "1") else "NO"


def _ds_set_tm_mad(tpl, ds_type, tm_mad):
    """Datastore::set_tm_mad: the TM_MAD_CONF's attributes into the
    template."""
    if ds_type == DS_TYPES["BACKUP_DS"]:
        return
    if not tm_mad:
        raise OnedError(INTERNAL, "No TM_MAD in template.")
    conf = TM_MAD_CONF.get(tm_mad)
    if conf is None:
        raise OnedError(INTERNAL, 'TM_MAD named "%s" is not defined in '
                                  'oned.conf' % tm_mad)
    if ds_type == DS_TYPES["SYSTEM_DS"]:
        tset(tpl, "SHARED", _yes_no(conf["SHARED"], "NO"))
        tset(tpl, "DS_MIGRATE", _yes_no(conf.get("DS_MIGRATE"), "YES"))
        tset(tpl, "DS_LIVE_MIGRATE", _yes_no(conf.get("DS_LIVE_MIGRATE"),
                                             "NO"))
        tset(tpl, "DS_MIGRATE_SNAP", _yes_no(conf.get("DS_MIGRATE_SNAP"),
                                             "NO"))
        terase(tpl, "LN_TARGET")
        terase(tpl, "CLONE_TARGET")
    else:
        modes = conf.get("TM_MAD_SYSTEM")
        if modes:
            tset(tpl, "TM_MAD_SYSTEM", modes)
            for mode in filter(None, (x.strip().upper()
                                      for x in modes.split(","))):
                for key in ("LN_TARGET_", "CLONE_TARGET_", "DISK_TYPE_"):
                    value = conf[key + mode]
                    tset(tpl, key + mode, value.upper()
                         if key != "DISK_TYPE_" else value)
        tset(tpl, "LN_TARGET", conf["LN_TARGET"].upper())
        tset(tpl, "CLONE_TARGET", conf["CLONE_TARGET"].upper())
        for key in ("DRIVER", "DISK_TYPE"):
            if conf.get(key):
                tset(tpl, key, conf[key])
        terase(tpl, "SHARED")
    tset(tpl, "ALLOW_ORPHANS", conf.get("ALLOW_ORPHANS", "NO"))
    tset(tpl, "PERSISTENT_SNAPSHOTS",
         _yes_no(conf.get("PERSISTENT_SNAPSHOTS"), "YES"))


def _ds_disk_type(tpl, ds_type, text):
    """Datastore::set_ds_disk_type: the DISK_TYPE element's number, and
    the template's DISK_TYPE (image and system datastores)."""
    name = (text or "FILE").upper()
    disk_type = DISK_TYPES.get(name)
    if ds_type in (DS_TYPES["FILE_DS"], DS_TYPES["BACKUP_DS"]):
        return DISK_TYPES["FILE"]
    if disk_type is None:
        raise OnedError(INTERNAL, "Unknown DISK_TYPE in template.")
    if ds_type == DS_TYPES["IMAGE_DS"] and name in (
            "CDROM", "RBD_CDROM", "SHEEPDOG_CDROM", "GLUSTER_CDROM"):
        raise OnedError(INTERNAL, "Invalid DISK_TYPE for an Image Datastore.")
    if ds_type == DS_TYPES["SYSTEM_DS"] and name not in (
            "FILE", "RBD", "BLOCK", "FILESYSTEM"):
        raise OnedError(INTERNAL, "Invalid DISK_TYPE for a System Datastore.")
    tset(tpl, "DISK_TYPE", name)
    return disk_type


@rpc("one.datastore.allocate", "s,i")
def datastore_allocate(o, user, m, text, cluster_id):
    """DatastorePool::allocate and Datastore::insert, in their order."""
    tpl = parse_or_fail(text)
    cluster = o.cluster_for_allocate(cluster_id)
    name = tget(tpl, "NAME", "")
    if not name:
        raise OnedError(INTERNAL, "Invalid NAME, it cannot be empty")
    refuse_taken_name(o, "datastore", name)
    terase(tpl, "NAME")
    # an unknown TYPE is an image datastore (Datastore::str_to_type)
    ds_type = DS_TYPES.get(tget(tpl, "TYPE", ""), DS_TYPES["IMAGE_DS"])
    ds_mad = tget(tpl, "DS_MAD", "")
    if ds_type == DS_TYPES["SYSTEM_DS"]:
        if ds_mad:
            raise OnedError(INTERNAL, "SYSTEM datastores cannot have DS_MAD "
                                      "defined.")
        ds_mad = "-"
    elif not ds_mad:
        raise OnedError(INTERNAL, "No DS_MAD in template.")
    _ds_set_mad(tpl, ds_type, ds_mad)
    tm_mad = tget(tpl, "TM_MAD", "")
    _ds_set_tm_mad(tpl, ds_type, tm_mad)
    if ds_type == DS_TYPES["BACKUP_DS"]:
        tm_mad = "-"
    # BASE_PATH is always DATASTORE_LOCATION/<id>: oned drops the one given
    terase(tpl, "BASE_PATH")
    disk_text = tget(tpl, "DISK_TYPE", "")
    terase(tpl, "DISK_TYPE")
    disk_type = _ds_disk_type(tpl, ds_type, disk_text)
    if not tget(tpl, "SAFE_DIRS") and not tget(tpl, "RESTRICTED_DIRS"):
        tset(tpl, "SAFE_DIRS", "/var/tmp")
        tset(tpl, "RESTRICTED_DIRS", "/")
    oid = o.store.new_id("datastore")
    ds = o._new_ds(oid, name, ds_mad, tm_mad, ds_type, tpl, cluster["id"])
    ds["uid"], ds["gid"] = user["id"], user["gid"]
    ds["disk_type"] = disk_type
    o.store.put("datastore", ds)
    return oid


def _post_update_datastore(ds):
    """Datastore::post_update_template (the read-only options of
    datastores with images are not checked: the test oned's datastores
    never list their images)."""
    tpl = ds["template"]
    type_text = tget(tpl, "TYPE", "")
    new_type = DS_TYPES.get(type_text, DS_TYPES["IMAGE_DS"]) if type_text \
        else ds["type"]
    if ds["id"] == 0:
        ds["type"] = DS_TYPES["SYSTEM_DS"]
    elif ds["type"] != DS_TYPES["BACKUP_DS"]:
        ds["type"] = new_type
    tset(tpl, "TYPE", {v: k for k, v in DS_TYPES.items()}[ds["type"]])
    disk_text = tget(tpl, "DISK_TYPE", "")
    terase(tpl, "DISK_TYPE")
    if disk_text:
        ds["disk_type"] = _ds_disk_type(tpl, ds["type"], disk_text)
    new_tm = tget(tpl, "TM_MAD", "")
    if new_tm and ds["type"] != DS_TYPES["BACKUP_DS"]:
        _ds_set_tm_mad(tpl, ds["type"], new_tm)
        ds["tm_mad"] = new_tm
    else:
        tset(tpl, "TM_MAD", ds["tm_mad"])
    new_ds = tget(tpl, "DS_MAD", "")
    if ds["type"] == DS_TYPES["SYSTEM_DS"]:
        ds["ds_mad"] = "-"
        terase(tpl, "DS_MAD")
    elif not new_ds:
        tset(tpl, "DS_MAD", ds["ds_mad"])
    else:
        ds["ds_mad"] = new_ds
    _ds_set_mad(tpl, ds["type"], ds["ds_mad"])


@rpc("one.datastore.update", "i,s,?i")
def datastore_update(o, user, m, oid, text, utype=0):
    o.update_template("datastore", oid, text, utype, _post_update_datastore)
    return oid


@rpc("one.datastore.delete", "i")
def datastore_delete(o, user, m, oid):
    """Any datastore may go, the system ones (ids below 100) too, as long
    as no image is in it."""
    o.get("datastore", oid)
    if any(img["datastore_id"] == oid for img in o.store.all("image")):
        raise OnedError(ACTION, "Cannot delete datastore. Datastore %d is "
                                "not empty." % oid)
    o.store.remove("datastore", oid)
    return oid

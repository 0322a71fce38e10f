"""The persistent store: object kinds (Kind) and the SQLite file that keeps
the objects (Store)."""

import json
import sqlite3


# --------------------------------------------------------------------------
# Persistent store
# --------------------------------------------------------------------------

class Kind:
    """An object kind: pool name, first user id and message labels."""

    def __init__(self, name, first_id, label, noun, pool_tag):
        self.name = name            # key in the store
        self.first_id = first_id    # first id given by allocate
        self.label = label          # "NAME is already taken by <label> 3."
        self.noun = noun            # "Error getting <noun> [3]."
        self.pool_tag = pool_tag    # <HOST_POOL>


KINDS = {
    "user": Kind("user", 2, "USER", "user", "USER_POOL"),
    "group": Kind("group", 100, "GROUP", "group", "GROUP_POOL"),
    "host": Kind("host", 0, "HOST", "host", "HOST_POOL"),
    "cluster": Kind("cluster", 100, "CLUSTER", "cluster", "CLUSTER_POOL"),
    "vnet": Kind("vnet", 0, "NET", "virtual network", "VNET_POOL"),
    "datastore": Kind("datastore", 100, "DATASTORE", "datastore",
                      "DATASTORE_POOL"),
    # images: see the "images" section (not replay-checked, docs/test-oned.md)
    "image": Kind("image", 0, "IMAGE", "image", "IMAGE_POOL"),
    # VMs and VM templates: see "Virtual machines" (samples-accounting)
    "vm": Kind("vm", 0, "VM", "virtual machine", "VM_POOL"),
    "vmtemplate": Kind("vmtemplate", 0, "TEMPLATE",
                       "virtual machine template", "VMTEMPLATE_POOL"),
    "acl": Kind("acl", 0, "ACL", "ACL rule", "ACL_POOL"),
}


class Store:
    """Objects in memory, written through to SQLite at the end of each call."""

    def __init__(self, path):
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS objects (kind TEXT, "
                        "oid INTEGER, body TEXT, PRIMARY KEY (kind, oid))")
        self.db.execute("CREATE TABLE IF NOT EXISTS counters (kind TEXT "
                        "PRIMARY KEY, next_id INTEGER)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY "
                        "KEY, value TEXT)")
        self.db.commit()
        self.objects = {k: {} for k in KINDS}
        self.counters = {}
        for kind, oid, body in self.db.execute(
                "SELECT kind, oid, body FROM objects"):
            self.objects.setdefault(kind, {})[oid] = json.loads(body)
        for kind, next_id in self.db.execute(
                "SELECT kind, next_id FROM counters"):
            self.counters[kind] = next_id
        self.dirty = set()
        self.deleted = set()
        self.counters_dirty = False

    def meta(self, key, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?",
                              (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key, value):
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?,?)",
                        (key, value))
        self.db.commit()

    def get(self, kind, oid):
        return self.objects[kind].get(oid)

    def all(self, kind):
        return [self.objects[kind][i] for i in sorted(self.objects[kind])]

    def find_name(self, kind, name):
        for obj in self.objects[kind].values():
            if obj["name"] == name:
                return obj
        return None

    def new_id(self, kind):
        oid = self.counters.get(kind, KINDS[kind].first_id)
        self.counters[kind] = oid + 1
        self.counters_dirty = True
        return oid

    def put(self, kind, obj):
        self.objects[kind][obj["id"]] = obj
        self.dirty.add((kind, obj["id"]))
        self.deleted.discard((kind, obj["id"]))

    def touch(self, kind, obj):
        self.dirty.add((kind, obj["id"]))

    def remove(self, kind, oid):
        self.objects[kind].pop(oid, None)
        self.dirty.discard((kind, oid))
        self.deleted.add((kind, oid))

    def flush(self):
        if not (self.dirty or self.deleted or self.counters_dirty):
            return
        with self.db:
            for kind, oid in self.dirty:
                obj = self.objects[kind].get(oid)
                if obj is not None:
                    self.db.execute(
                        "INSERT OR REPLACE INTO objects (kind, oid, body) "
                        "VALUES (?,?,?)", (kind, oid, json.dumps(obj)))
            for kind, oid in self.deleted:
                self.db.execute("DELETE FROM objects WHERE kind=? AND oid=?",
                                (kind, oid))
            if self.counters_dirty:
                for kind, next_id in self.counters.items():
                    self.db.execute(
                        "INSERT OR REPLACE INTO counters (kind, next_id) "
                        "VALUES (?,?)", (kind, next_id))
        self.dirty.clear()
        self.deleted.clear()
        self.counters_dirty = False

    def close(self):
        self.flush()
        self.db.close()

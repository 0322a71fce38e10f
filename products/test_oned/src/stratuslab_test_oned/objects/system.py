"""one.system.version and one.system.config."""

from ..constants import DS_MAD_CONF, TM_MAD_CONF, VERSION, VN_MAD_CONF
from ..rpc import rpc
from ..template import template_xml


@rpc("one.system.version")
def system_version(o, user, m):
    return VERSION


@rpc("one.system.config")
def system_config(o, user, m):
    conf = [
        ["DATASTORE_LOCATION", o.opts.datastore_location],
        ["DEFAULT_CDROM_DEVICE_PREFIX", "hd"],
        ["DEFAULT_DEVICE_PREFIX", "vd"],
        ["MAC_PREFIX", o.opts.mac_prefix],
        ["MONITORING_INTERVAL_HOST", str(int(o.opts.monitor_interval))],
        ["PORT", str(o.opts.port)],
        ["VERSION", VERSION],
    ]
    for name, btypes in sorted(VN_MAD_CONF.items()):
        conf.append(["VN_MAD_CONF", [["BRIDGE_TYPE", ",".join(btypes)],
                                     ["NAME", name]]])
    for name, (required, capacity) in sorted(DS_MAD_CONF.items()):
        attrs = [["NAME", name], ["REQUIRED_ATTRS", required]]
        if capacity is not None:
            attrs.append(["DATASTORE_CAPACITY_CHECK", capacity])
        conf.append(["DS_MAD_CONF", attrs])
    for name, attrs in sorted(TM_MAD_CONF.items()):
        conf.append(["TM_MAD_CONF", [["NAME", name]] + [
            [k, v] for k, v in sorted(attrs.items())]])
    return template_xml(conf, "OPENNEBULA_CONFIGURATION")

"""oned's numbers and tables that several object kinds share: the version
answered, host and virtual network states, and the driver tables of the
stock oned.conf of 7.4.0 (VN_MAD_CONF, DS_MAD_CONF, TM_MAD_CONF)."""


VERSION = "7.4.0"

# Host states
HOST_INIT, HOST_MONITORED, HOST_ERROR, HOST_DISABLED, HOST_OFFLINE = 0, 2, 3, 4, 8
# Virtual network states
VN_STATES = ["INIT", "READY", "LOCK_CREATE", "LOCK_DELETE", "DONE", "ERROR",
             "UPDATE_FAILURE"]
VN_INIT, VN_READY, VN_LOCK_CREATE, VN_LOCK_DELETE = 0, 1, 2, 3
VN_ERROR, VN_UPDATE_FAILURE = 5, 6

# oned.conf knowledge: the stock oned.conf of 7.4.0 (share/etc/oned.conf).
# VN_MAD_CONF: name -> the BRIDGE_TYPEs it allows (the first is the default)
VN_MAD_CONF = {
    "dummy": ["linux"], "802.1Q": ["linux"], "fw": ["linux"],
    "ovswitch": ["openvswitch", "openvswitch_dpdk"], "vxlan": ["linux"],
    "ovswitch_vxlan": ["openvswitch"], "bridge": ["linux"],
    "elastic": ["linux"], "nodeport": ["linux"],
}
VLAN_VN_MADS = ("802.1Q", "vxlan", "ovswitch_vxlan")
# DS_MAD_CONF: name -> (REQUIRED_ATTRS, DATASTORE_CAPACITY_CHECK or None)
DS_MAD_CONF = {
    "ceph": ("DISK_TYPE,BRIDGE_LIST", None), "dev": ("DISK_TYPE", None),
    "iscsi_libvirt": ("DISK_TYPE,ISCSI_HOST", None), "dummy": ("", None),
    "fs": ("", None), "lvm": ("", None), "restic": ("RESTIC_PASSWORD", None),
    "rsync": ("RSYNC_HOST,RSYNC_USER", None),
    "netapp": ("NETAPP_HOST,NETAPP_USER,NETAPP_PASS,NETAPP_AGGREGATES,"
               "NETAPP_SVM,NETAPP_IGROUP,NETAPP_TARGET", None),
    "purefa": ("PUREFA_HOST,PUREFA_API_TOKEN,PUREFA_TARGET", None),
    "virtiofs": ("", "NO"), "interactive": ("", "NO"),
}
# TM_MAD_CONF: name -> its attributes, as Datastore::set_tm_mad reads them
TM_MAD_CONF = {
    "dummy": dict(LN_TARGET="NONE", CLONE_TARGET="SYSTEM", SHARED="YES",
                  DS_MIGRATE="YES", DS_LIVE_MIGRATE="YES",
                  DS_MIGRATE_SNAP="YES"),
    "shared": dict(LN_TARGET="NONE", CLONE_TARGET="SYSTEM", SHARED="YES",
                   TM_MAD_SYSTEM="ssh", LN_TARGET_SSH="SYSTEM",
                   CLONE_TARGET_SSH="SYSTEM", DISK_TYPE_SSH="FILE",
                   ALLOW_ORPHANS="FORMAT", DS_MIGRATE="YES",
                   DS_LIVE_MIGRATE="YES", DS_MIGRATE_SNAP="YES"),
    "lvm": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                DRIVER="raw", DISK_TYPE="BLOCK", ALLOW_ORPHANS="YES",
                DS_MIGRATE="YES", DS_LIVE_MIGRATE="NO", DS_MIGRATE_SNAP="NO"),
    "fs_lvm": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM", SHARED="YES",
                   DRIVER="raw", DISK_TYPE="BLOCK", DS_MIGRATE="YES",
                   DS_LIVE_MIGRATE="NO", DS_MIGRATE_SNAP="NO"),
    "fs_lvm_ssh": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM",
                       SHARED="YES", DRIVER="raw", DISK_TYPE="BLOCK",
                       PERSISTENT_SNAPSHOTS="NO", ALLOW_ORPHANS="YES",
                       DS_MIGRATE="YES", DS_LIVE_MIGRATE="YES",
                       DS_MIGRATE_SNAP="NO"),
    "qcow2": dict(LN_TARGET="NONE", CLONE_TARGET="SYSTEM", SHARED="YES",
                  TM_MAD_SYSTEM="ssh", LN_TARGET_SSH="SYSTEM",
                  CLONE_TARGET_SSH="SYSTEM", DISK_TYPE_SSH="FILE",
                  DRIVER="qcow2", ALLOW_ORPHANS="FORMAT", DS_MIGRATE="YES",
                  DS_LIVE_MIGRATE="YES", DS_MIGRATE_SNAP="YES"),
    "ssh": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM", SHARED="NO",
                ALLOW_ORPHANS="YES", DS_MIGRATE="YES", DS_LIVE_MIGRATE="YES",
                DS_MIGRATE_SNAP="YES"),
    "local": dict(LN_TARGET="SYSTEM", CLONE_TARGET="SYSTEM", SHARED="NO",
                  ALLOW_ORPHANS="FORMAT", DS_MIGRATE="YES",
                  DS_LIVE_MIGRATE="YES", DS_MIGRATE_SNAP="YES"),
    "ceph": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                 DRIVER="raw", ALLOW_ORPHANS="mixed", TM_MAD_SYSTEM="ssh",
                 LN_TARGET_SSH="SYSTEM", CLONE_TARGET_SSH="SYSTEM",
                 DISK_TYPE_SSH="FILE", DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                 DS_MIGRATE_SNAP="NO"),
    "iscsi_libvirt": dict(LN_TARGET="NONE", CLONE_TARGET="SELF",
                          SHARED="YES", DRIVER="raw", DS_MIGRATE="NO",
                          DS_LIVE_MIGRATE="NO", DS_MIGRATE_SNAP="NO"),
    "dev": dict(LN_TARGET="NONE", CLONE_TARGET="NONE", SHARED="YES",
                DRIVER="raw", DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                DS_MIGRATE_SNAP="NO"),
    "netapp": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                   DRIVER="raw", DISK_TYPE="BLOCK", ALLOW_ORPHANS="LINEAR",
                   DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                   DS_MIGRATE_SNAP="NO"),
    "purefa": dict(LN_TARGET="NONE", CLONE_TARGET="SELF", SHARED="YES",
                   DRIVER="raw", DISK_TYPE="BLOCK", ALLOW_ORPHANS="YES",
                   DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                   DS_MIGRATE_SNAP="NO"),
    "virtiofs": dict(LN_TARGET="NONE", CLONE_TARGET="NONE", SHARED="YES",
                     DRIVER="virtiofs", DISK_TYPE="filesystem",
                     DS_MIGRATE="NO", DS_LIVE_MIGRATE="NO",
                     DS_MIGRATE_SNAP="NO"),
}
# Image::DiskType, for a datastore's DISK_TYPE element
DISK_TYPES = {"FILE": 0, "CDROM": 1, "BLOCK": 2, "RBD": 3, "RBD_CDROM": 4,
              "GLUSTER": 5, "GLUSTER_CDROM": 6, "SHEEPDOG": 7,
              "SHEEPDOG_CDROM": 8, "ISCSI": 9, "FILESYSTEM": 10}
DS_TYPES = {"IMAGE_DS": 0, "SYSTEM_DS": 1, "FILE_DS": 2, "BACKUP_DS": 3}

"""Filters for values OpenNebula's own configuration files take.

sl_monitord_errors: the monitor daemon's periods (monitord.conf's
PROBES_PERIOD and the host interval): every probe named once, each a
number of seconds above 0, and a host interval longer than the beacon
period, or oned takes every node for silent. Returns the messages
(``[]`` when none), for one preflight assert that reports them all.
"""

from collections.abc import Mapping

# monitord.conf's PROBES_PERIOD keys in OpenNebula 7.4 (share/etc/oned/monitord.conf).
MONITORD_PROBES = ("BEACON_HOST", "SYSTEM_HOST", "MONITOR_HOST", "STATE_VM",
                   "EXEC_VM", "MONITOR_VM", "SYNC_STATE_VM")


def _seconds(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def sl_monitord_errors(periods, interval_host, label="frontend_monitord_probes_period",
                       interval_label="frontend_monitord_interval_host", prefix=""):
    if not isinstance(periods, Mapping):
        return ["%s%s is %r: a mapping of %s to seconds is expected." % (
            prefix, label, periods, ", ".join(MONITORD_PROBES))]
    errors = []
    given = sorted(str(key) for key in periods)
    if given != sorted(MONITORD_PROBES):
        missing = [key for key in MONITORD_PROBES if key not in periods]
        unknown = [key for key in given if key not in MONITORD_PROBES]
        detail = "; ".join(part for part in (
            "missing: " + ", ".join(missing) if missing else "",
            "unknown: " + ", ".join(unknown) if unknown else "") if part)
        errors.append("%s%s must give exactly %s (seconds); %s." % (
            prefix, label, ", ".join(MONITORD_PROBES), detail))
    for name in given:
        if not _seconds(periods[name]):
            errors.append("%s%s.%s is %r: a number of seconds above 0 is expected." % (
                prefix, label, name, periods[name]))
    if not _seconds(interval_host):
        errors.append("%s%s is %r: a number of seconds above 0 is expected." % (
            prefix, interval_label, interval_host))
    elif _seconds(periods.get("BEACON_HOST")) and interval_host <= periods["BEACON_HOST"]:
        errors.append("%s%s (%d s) must be greater than %s.BEACON_HOST (%d s), or every node"
                      " looks silent." % (prefix, interval_label, interval_host, label,
                                          periods["BEACON_HOST"]))
    return errors


class FilterModule:
    def filters(self):
        return {"sl_monitord_errors": sl_monitord_errors}

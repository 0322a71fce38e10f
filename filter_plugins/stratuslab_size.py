# -*- coding: utf-8 -*-
"""Jinja filters for the sizes a StratusLab site file states ("20G", "512M").

The site file gives sizes the way people write them; daemons want one unit.
Squid, for one, takes its cache_dir size in megabytes and counts them in
powers of two (1 MB = 1024 KB = 1048576 bytes), so every unit here is binary:

    K, KB, KiB  = 1024 bytes          G, GB, GiB = 1024**3 bytes
    M, MB, MiB  = 1024**2 bytes       T, TB, TiB = 1024**4 bytes

Units are case-insensitive and may follow the number after a space
("20 GB"); the number may have a decimal part ("1.5G"). A bare number is
refused: "20" could be bytes, megabytes or gigabytes depending on who reads it.

Every filter is a plain function; ``FilterModule`` only maps names to them.
Bad input raises ``AnsibleFilterError`` whose message starts with the filter
name, then the field (``label``, where the value came from in the site file),
then the offending value, then what is wrong with it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ansible.errors import AnsibleFilterError

_MIB = 1024 * 1024
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE = re.compile(r"\s*([+-]?[0-9]+(?:\.[0-9]+)?)\s*([KMGT])(?:I?B)?\s*", re.IGNORECASE)


def _fail(filter_name, field, value, problem):
    shown = repr(str(value)) if isinstance(value, str) else repr(value)
    raise AnsibleFilterError(f"{filter_name}: {field} {shown} {problem}")


def _bytes(value, filter_name, field):
    """Exact byte count of a size string; raises naming the value otherwise."""
    match = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        _fail(
            filter_name,
            field,
            value,
            "is not a size: write a number and a unit, such as '20G', '512M' or '1.5T' (K, M, G, T; binary units)",
        )
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:  # pragma: no cover - the pattern only lets decimals through
        _fail(filter_name, field, value, "is not a number followed by a unit")
    if number <= 0:
        _fail(filter_name, field, value, "is not a positive size")
    return number * _UNITS[match.group(2).upper()]


def sl_size_to_mb(value, label=None):
    """Megabytes (binary, rounded down) in a size such as '20G'; at least 1.

    ``label`` names the value in error messages, e.g. ``'site_cache_size'``.

    >>> sl_size_to_mb('20G')
    20480
    >>> sl_size_to_mb('1.5 GiB')
    1536
    """
    name = "sl_size_to_mb"
    field = label or "size"
    megabytes = int(_bytes(value, name, field) // _MIB)
    if megabytes < 1:
        _fail(name, field, value, "is smaller than 1 MB, the smallest size this setting takes")
    return megabytes


def _shown_bytes(number):
    """A byte count the way the site file writes sizes: '4G', '1.5T', '512M'."""
    for unit in ("T", "G", "M", "K"):
        if number >= _UNITS[unit]:
            return f"{(Decimal(number) / _UNITS[unit]).quantize(Decimal('0.1')).normalize():f}{unit}"
    return f"{int(number)} bytes"


def _mount_of(path, mounts):
    """The mount (facts' ansible_mounts item) that holds ``path``: the longest mount point above it."""
    best = None
    for mount in mounts or []:
        point = str(mount.get("mount", "")) if isinstance(mount, dict) else ""
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if point and inside and (best is None or len(point) > len(best["mount"])):
            best = mount
    return best


# The largest share of its file system a cache may take (the rest: Squid's
# overshoot while it writes, its swap.state, the file system's own needs).
DISK_SHARE = 0.8


def sl_cache_errors(cache_size, max_object_size, smallest_image="512M", mounts=None, cache_dir=None,
                    cache_dir_exists=True, labels=None, prefix=""):
    """Every mistake in an image cache's sizes, one message each; ``[]`` when there is none.

    Refused: a size that is not one (sl_size_to_mb's rules); a largest object
    bigger than the cache, or smaller than ``smallest_image`` (the smallest VM
    image worth caching: a cache that keeps no image is of no use); a cache
    larger than the file system that holds ``cache_dir`` (from the host's
    ``mounts`` facts) or more than four fifths of it, or, when ``cache_dir``
    does not exist yet (nothing of the cache is on the disk), larger than its
    free space. ``labels`` names
    the values: ``{'cache_size': ..., 'max_object_size': ...}``. ``prefix``
    starts every message (the role's name).
    """
    labels = dict({"cache_size": "cache_size", "max_object_size": "max_object_size"}, **(labels or {}))
    name = "sl_cache_errors"
    errors, sizes = [], {}
    for key, value in (("cache_size", cache_size), ("max_object_size", max_object_size)):
        try:
            sizes[key] = _bytes(value, name, labels[key])
        except AnsibleFilterError as error:
            errors.append(str(error).split(": ", 1)[1])
    floor = _bytes(smallest_image, name, "smallest_image")
    cache, largest = sizes.get("cache_size"), sizes.get("max_object_size")
    if largest is not None and largest < floor:
        errors.append(f"{labels['max_object_size']} {max_object_size!r} is smaller than {smallest_image}, the smallest "
                      "VM image worth caching: no image above it is ever cached (Squid's own default, 4M, caches "
                      f"none); expected at least {smallest_image}, bigger than the site's largest image")
    if cache is not None and largest is not None and largest > cache:
        errors.append(f"{labels['max_object_size']} {max_object_size!r} is bigger than {labels['cache_size']} "
                      f"{cache_size!r}: no object that large could ever be cached. Lower it or grow the cache")
    mount = _mount_of(cache_dir, mounts) if cache is not None and cache_dir else None
    if mount is not None:
        total, free = int(mount.get("size_total") or 0), int(mount.get("size_available") or 0)
        where = f"the file system that holds {cache_dir} (mounted on {mount['mount']})"
        if cache > total:
            errors.append(f"{labels['cache_size']} {cache_size!r} is larger than {where}, {_shown_bytes(total)} in "
                          "all; expected a cache that fits on its disk, with about a fifth of it left free")
        elif not cache_dir_exists and cache > free:
            errors.append(f"{labels['cache_size']} {cache_size!r} is larger than the free space of {where}, "
                          f"{_shown_bytes(free)}; expected a cache that fits in it")
        elif cache > total * DISK_SHARE:
            # Squid fills its cache to 95 % of the cache_dir size and writes the
            # object it fetches on top; when a write fails for want of space,
            # Squid 5.7 stops (FATAL: Write failure) and serves nobody.
            errors.append(f"{labels['cache_size']} {cache_size!r} leaves less than a fifth of {where} "
                          f"({_shown_bytes(total)} in all) free: Squid stops when its disk is full; expected at most "
                          f"{_shown_bytes(int(total * DISK_SHARE))}")
    return [f"{prefix}{error}." for error in errors]


class FilterModule:
    """StratusLab size filters."""

    def filters(self):
        return {
            "sl_size_to_mb": sl_size_to_mb,
            "sl_cache_errors": sl_cache_errors,
        }

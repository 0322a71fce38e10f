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


class FilterModule:
    """StratusLab size filters."""

    def filters(self):
        return {
            "sl_size_to_mb": sl_size_to_mb,
        }

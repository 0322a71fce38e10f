"""ISO 8601 <-> epoch, strict: what the API and the CLI accept."""

import datetime
import re

# A date, or a date-time with optional seconds, fraction and zone (Z or +hh:mm).
ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})?)?$")
ISO_PATTERN = ISO_RE.pattern
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


class BadTime(ValueError):
    pass


def parse_iso(text, name):
    """Epoch seconds (int, UTC when no zone is given) or BadTime naming the field."""
    m = ISO_RE.match(text or "")
    if not m:
        raise BadTime("%s: %r is not an ISO 8601 date or date-time "
                      "(e.g. 2026-11-01 or 2026-11-01T00:00:00Z)" % (name, text))
    try:
        if m.group(4) is None:
            dt = datetime.datetime.combine(datetime.date.fromisoformat(text),
                                           datetime.time(), datetime.timezone.utc)
        else:
            dt = datetime.datetime.fromisoformat(text.replace(" ", "T"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=datetime.timezone.utc)
        epoch = int(dt.timestamp())
    except (ValueError, OverflowError):
        raise BadTime("%s: %r is not a valid date or time" % (name, text)) from None
    if not 0 <= epoch <= MAX_EPOCH:
        raise BadTime("%s: %r is outside 1970-01-01..9999-12-31 (UTC)" % (name, text))
    return epoch


def iso(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def month_start(epoch):
    d = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    return int(datetime.datetime(d.year, d.month, 1, tzinfo=datetime.timezone.utc).timestamp())

"""RFC 3339 timestamps in and out: any offset accepted, always UTC with `Z` out."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dueflow.domain.errors import invalid

# Far enough from datetime's limits that reminder and recurrence arithmetic cannot overflow.
MIN_YEAR, MAX_YEAR = 1900, 9000
# Full date-time with an explicit offset: fromisoformat alone would accept dates and naive times.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)


def parse_instant(value: object, field: str) -> datetime:
    """Parse an RFC 3339 date-time (offset required) into an aware UTC datetime."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise invalid(field, "must be an RFC 3339 date-time with offset, e.g. 2026-11-23T17:00:00Z")
    text = value.upper().replace(" ", "T")
    if "." in text:  # Python keeps microseconds: drop digits beyond six
        head, _, rest = text.partition(".")
        digits = re.match(r"\d+", rest).group(0)
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    if not MIN_YEAR <= int(text[:4]) <= MAX_YEAR:  # the year as written: a pattern can say it
        raise invalid(field, f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise invalid(field, "is not a valid calendar date-time") from None


def format_instant(value: datetime | None) -> str | None:
    """UTC RFC 3339 with `Z`; microseconds only when present."""
    if value is None:
        return None
    if value.tzinfo is not UTC:  # what the database returns is UTC already: no conversion
        value = value.astimezone(UTC)
    # an aware UTC time's isoformat ends in "+00:00", written as "Z" (a list page formats
    # about 100 instants: 6% of a search's CPU went here, a fifth of it to the conversions)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text[:-6] + "Z"


def parse_timezone(value: object, field: str = "timezone") -> str:
    """A valid IANA time zone name (case as in the database, e.g. `Europe/Berlin`)."""
    if not isinstance(value, str) or not value or len(value) > 64 or value.startswith("/"):
        raise invalid(field, "must be an IANA time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "Europe" is a directory
        raise invalid(field, f"unknown time zone {value!r}") from None
    if value not in _zone_names():
        raise invalid(field, f"unknown time zone {value!r}")
    return value


_ZONES: frozenset[str] | None = None


def _zone_names() -> frozenset[str]:
    # ZoneInfo also opens arbitrary files such as "posixrules": accept only real zone names.
    global _ZONES
    if _ZONES is None:
        # the system list also has links that are no IANA zone: the host's own and placeholders
        _ZONES = (frozenset(available_timezones()) | {"UTC"}) - {"localtime", "Factory"}
    return _ZONES

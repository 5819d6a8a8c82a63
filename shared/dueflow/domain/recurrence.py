"""RFC 5545 recurrence rules: validation now, expansion for the recurrence function.

Rules are expanded as wall-clock time in the task's time zone (RFC 5545 §3.3.10), which is why the
rule is handed to dateutil with a naive local DTSTART and UNTIL is converted to that zone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from dueflow.domain.errors import FieldError, ValidationFailed

FIELD = "recurrence.rrule"
_PARTS = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "BYHOUR",
    "BYMINUTE",
    "BYYEARDAY",
    "BYWEEKNO",
    "WKST",
}
_FREQS = {"MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
# Allowed magnitudes of the numeric BY* lists (negative values count from the end, 0 never allowed
# where negatives are); dateutil only notices a bad value when it iterates.
_RANGES = {
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
    "BYHOUR": (0, 23, False),
    "BYMINUTE": (0, 59, False),
}
_UNTIL = re.compile(r"^(\d{8})(T(\d{6})(Z)?)?$")


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(FIELD, message)])


def parse_rule(value: object) -> dict[str, str]:
    """Split and check an RRULE value ("FREQ=WEEKLY;BYDAY=MO"); returns its parts, upper-cased."""
    if not isinstance(value, str) or not value.strip() or len(value) > 500:
        raise _fail("must be an RFC 5545 RRULE value such as FREQ=WEEKLY;BYDAY=MO")
    text = value.strip().upper()
    if text.startswith("RRULE:"):
        text = text[len("RRULE:") :]
    parts: dict[str, str] = {}
    for item in text.split(";"):
        name, sep, val = item.partition("=")
        if not sep or not val:
            raise _fail(f"malformed part {item!r}: expected NAME=VALUE")
        if name not in _PARTS:
            raise _fail(f"unsupported rule part {name}")
        if name in parts:
            raise _fail(f"{name} appears twice")
        parts[name] = val
    freq = parts.get("FREQ")
    if freq is None:
        raise _fail("FREQ is required")
    if freq == "SECONDLY":
        raise _fail("FREQ=SECONDLY is not supported; the finest is MINUTELY")
    if freq not in _FREQS:
        raise _fail(f"unknown FREQ {freq}")
    for name in ("COUNT", "INTERVAL"):
        if name in parts and (not parts[name].isdigit() or int(parts[name]) < 1):
            raise _fail(f"{name} must be a whole number of at least 1")
    for name, (low, high, signed) in _RANGES.items():
        for item in parts.get(name, "").split(",") if name in parts else ():
            number = item[1:] if signed and item[:1] in "+-" else item
            if not number.isdigit() or not low <= int(number) <= high:
                raise _fail(f"{name} values must be {'±' if signed else ''}{low}..{high}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _fail("COUNT and UNTIL cannot both be given")
    if "UNTIL" in parts and not _UNTIL.match(parts["UNTIL"]):
        raise _fail("UNTIL must be a date (20261231) or a UTC date-time (20261231T235959Z)")
    try:  # let dateutil judge the BY* values, with a neutral start
        build(parts, datetime(2026, 1, 1, 9, 0), "UTC")
    except (ValueError, TypeError, KeyError) as exc:
        raise _fail(f"invalid rule: {exc}".rstrip(": ")) from None
    return parts


def canonical(parts: dict[str, str]) -> str:
    """The rule as stored and returned: FREQ first, the other parts in the order given."""
    return ";".join(
        [f"FREQ={parts['FREQ']}"] + [f"{k}={v}" for k, v in parts.items() if k != "FREQ"]
    )


def build(parts: dict[str, str], dtstart_local: datetime, tz_name: str) -> rrule:
    """A dateutil rrule over naive wall-clock times in `tz_name`, starting at `dtstart_local`."""
    local = dict(parts)
    until = local.get("UNTIL")
    if until is not None:
        m = _UNTIL.match(until)
        if m and m.group(4):  # UTC instant -> wall-clock in the task's zone
            instant = datetime.strptime(m.group(1) + m.group(3), "%Y%m%d%H%M%S")
            wall = instant.replace(tzinfo=UTC).astimezone(ZoneInfo(tz_name))
            local["UNTIL"] = wall.strftime("%Y%m%dT%H%M%S")
        elif m and not m.group(2):  # a date: the whole day is included
            local["UNTIL"] = m.group(1) + "T235959"
    text = ";".join(f"{k}={v}" for k, v in local.items())
    return rrulestr("RRULE:" + text, dtstart=dtstart_local, cache=False)

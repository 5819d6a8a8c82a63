"""RFC 5545 recurrence rules: validation, and the next occurrence of a series.

Rules are expanded as wall-clock time in the task's time zone (RFC 5545 §3.3.10), which is why the
rule is handed to dateutil with a naive local DTSTART and UNTIL is converted to that zone.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from dueflow.domain.durations import to_utc
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
_NUMBER = re.compile(r"^[0-9]{1,9}$")  # ASCII only: str.isdigit() also accepts "²"
_SIGNED = re.compile(r"^[+-]?[0-9]{1,3}$")
_WEEKDAY = re.compile(r"^(?:([+-]?)([0-9]{1,2}))?(MO|TU|WE|TH|FR|SA|SU)$")
_UNTIL = re.compile(r"^([0-9]{8})(T([0-9]{6})Z)?$")


def _fail(message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(FIELD, message)])


def parse_rule(value: object) -> dict[str, str]:
    """Split and check an RRULE value ("FREQ=WEEKLY;BYDAY=MO"); returns its parts, upper-cased.

    These checks need no start date; `check_rule` then tries the rule from the task's own start.
    """
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
        if name in parts and (not _NUMBER.match(parts[name]) or int(parts[name]) < 1):
            raise _fail(f"{name} must be a whole number of at least 1")
    for name, (low, high, signed) in _RANGES.items():
        for item in parts[name].split(",") if name in parts else ():
            ok = (_SIGNED if signed else _NUMBER).match(item)
            if not ok or not low <= abs(int(item)) <= high or (not signed and int(item) < 0):
                raise _fail(f"{name} values must be {'±' if signed else ''}{low}..{high}")
    for item in parts["BYDAY"].split(",") if "BYDAY" in parts else ():
        m = _WEEKDAY.match(item)
        if not m:
            raise _fail(f"BYDAY value {item!r} is not a weekday such as MO, 1MO or -1FR")
        if m.group(2) is not None:
            if freq not in ("MONTHLY", "YEARLY"):
                raise _fail("BYDAY with a number (like -1FR) needs FREQ=MONTHLY or YEARLY")
            if not 1 <= int(m.group(2)) <= (5 if freq == "MONTHLY" else 53):
                raise _fail(f"BYDAY value {item!r} has an ordinal out of range")
    if "WKST" in parts and parts["WKST"] not in ("MO", "TU", "WE", "TH", "FR", "SA", "SU"):
        raise _fail("WKST must be a weekday such as MO")
    if "BYWEEKNO" in parts and freq != "YEARLY":
        raise _fail("BYWEEKNO needs FREQ=YEARLY")
    if "BYYEARDAY" in parts and freq in ("DAILY", "WEEKLY", "MONTHLY"):
        raise _fail("BYYEARDAY is not allowed with FREQ=DAILY, WEEKLY or MONTHLY")
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise _fail("BYMONTHDAY is not allowed with FREQ=WEEKLY")
    if "BYSETPOS" in parts and len(parts) == 2 + ("INTERVAL" in parts) + ("WKST" in parts) + (
        "COUNT" in parts or "UNTIL" in parts
    ):
        raise _fail("BYSETPOS needs another BY* part to select from")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _fail("COUNT and UNTIL cannot both be given")
    if "UNTIL" in parts and not _valid_until(parts["UNTIL"]):
        raise _fail("UNTIL must be a date (20261231) or a UTC date-time (20261231T235959Z)")
    return parts


def can_occur(parts: dict[str, str]) -> bool:
    """False for a rule whose months have none of its days (BYMONTH=2;BYMONTHDAY=30): dateutil
    would search such a rule up to the year 9999 without yielding (seconds to a minute)."""
    months = [int(m) for m in parts["BYMONTH"].split(",")] if "BYMONTH" in parts else range(1, 13)
    longest = {m: 29 if m == 2 else calendar.monthrange(2001, m)[1] for m in months}
    if "BYMONTHDAY" in parts:
        days = [abs(int(d)) for d in parts["BYMONTHDAY"].split(",")]
        if not any(d <= longest[m] for m in months for d in days):
            return False
    if "BYYEARDAY" in parts and "BYMONTH" in parts:
        reach = {
            m: (date(2000, m, 1).timetuple().tm_yday, date(2000, m, longest[m]).timetuple().tm_yday)
            for m in months
        }
        for value in parts["BYYEARDAY"].split(","):
            n = int(value)
            if any(lo - 1 <= (n if n > 0 else 367 + n) <= hi + 1 for lo, hi in reach.values()):
                return True
        return False
    return True


def _valid_until(value: str) -> bool:
    m = _UNTIL.match(value)
    try:
        return bool(m) and bool(
            datetime.strptime(
                m.group(1) + (m.group(3) or ""), "%Y%m%d%H%M%S" if m.group(3) else "%Y%m%d"
            )
        )
    except ValueError:  # shaped like a date but not one (20260230, T250000Z)
        return False


def canonical(parts: dict[str, str]) -> str:
    """The rule as stored and returned: FREQ first, the other parts in the order given."""
    rest = [f"{k}={v}" for k, v in parts.items() if k != "FREQ"]
    return ";".join([f"FREQ={parts['FREQ']}", *rest])


def build(parts: dict[str, str], dtstart_local: datetime, *, bounds: bool = True):
    """A dateutil rrule over naive wall-clock times, starting at `dtstart_local`.

    With bounds=False, COUNT and UNTIL are left out: next_occurrence applies them itself, COUNT by
    position and UNTIL as an instant (dateutil would compare wall-clock times, which across a DST
    change are not in the order of the instants they stand for).
    """
    local = {k: v for k, v in parts.items() if bounds or k not in ("COUNT", "UNTIL")}
    if (until := local.get("UNTIL")) is not None:  # only to check that dateutil accepts it
        local["UNTIL"] = until.rstrip("Z") if "T" in until else until + "T235959"
    text = ";".join(f"{k}={v}" for k, v in local.items())
    return rrulestr("RRULE:" + text, dtstart=dtstart_local, cache=False)


def until_instant(parts: dict[str, str], tz_name: str) -> datetime | None:
    """UNTIL as an instant: a UTC date-time as given; a date includes that whole local day."""
    m = _UNTIL.match(parts.get("UNTIL", ""))
    if not m:
        return None
    if m.group(3):
        return datetime.strptime(m.group(1) + m.group(3), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return to_utc(datetime.strptime(m.group(1) + "235959", "%Y%m%d%H%M%S"), tz_name)


def check_rule(rule: str, due_at: datetime, tz_name: str) -> None:
    """The rule must be expandable from the task's own start (dateutil rejects, for example,
    FREQ=HOURLY;INTERVAL=2;BYHOUR=9 when the start hour is even)."""
    parts = parse_rule(rule)
    if not can_occur(parts):
        raise _fail("the rule never occurs: none of its months has the days it names")
    try:
        build(parts, local_wall_clock(due_at, tz_name))
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise _fail(f"cannot recur from this due date: {exc}".rstrip(": ")) from None


def local_wall_clock(instant: datetime, tz_name: str) -> datetime:
    """The naive wall-clock time of `instant` in `tz_name` (what the rule is expanded in)."""
    return instant.astimezone(ZoneInfo(tz_name)).replace(tzinfo=None)


@dataclass(frozen=True)
class Occurrence:
    due_at: datetime  # aware UTC
    anchor: datetime  # naive wall-clock time of this occurrence in the series' zone
    index: int  # position in the rule's expansion, 1 = the series' start (what COUNT counts)


# How many rule positions one computation may walk past (a MINUTELY task completed a year late
# walks about half a million); beyond it the series is treated as ended rather than hanging.
MAX_STEPS = 2_000_000
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def next_occurrence(
    rule: str,
    tz_name: str,
    anchor: datetime,
    index: int,
    after: datetime,
    exdates: tuple[datetime, ...] = (),
) -> Occurrence | None:
    """The first occurrence strictly after the instant `after`, or None when the series ended.

    The rule is expanded from `anchor`, the wall-clock time of an occurrence at position `index`,
    not from the series' start: the cost depends on how far `after` lies beyond the anchor, never
    on how long the series has run. Re-anchoring on one of its own occurrences leaves a rule's
    expansion unchanged (its periods stay aligned and every default taken from DTSTART — day,
    weekday, time of day — is the same in each occurrence). COUNT is applied here, by position,
    and UNTIL as an instant. EXDATEs are skipped but still count, as in RFC 5545.
    """
    parts = parse_rule(rule)
    if not can_occur(parts):  # a rule stored before check_rule refused it: dateutil would spin
        return None
    limit = int(parts["COUNT"]) if "COUNT" in parts else None
    until = until_instant(parts, tz_name)
    excluded = set(exdates)
    position = index
    for steps, wall in enumerate(build(parts, _period_start(parts, anchor), bounds=False)):
        if wall <= anchor:
            continue  # the anchor's own period up to the anchor: already counted
        position += 1
        instant = to_utc(wall, tz_name)
        if (limit is not None and position > limit) or steps > MAX_STEPS:
            return None
        if until is not None and instant > until:
            return None
        if instant > after and instant not in excluded:
            return Occurrence(instant, wall, position)
    return None


def _period_start(parts: dict[str, str], anchor: datetime) -> datetime:
    """Where to start dateutil so the anchor's whole period is expanded.

    dateutil applies BYSETPOS in a WEEKLY rule's first week to the days from DTSTART on only
    (dateutil issue #1398), so starting at an anchor would shift the positions in its week.
    Starting at the week's first day (WKST) at the anchor's time fixes that; BYDAY is given
    (BYSETPOS needs it), so no default weekday is taken from the start.
    """
    if parts["FREQ"] != "WEEKLY" or "BYSETPOS" not in parts or "BYDAY" not in parts:
        return anchor
    week_start = _WEEKDAYS.index(parts.get("WKST", "MO"))
    return anchor - timedelta(days=(anchor.weekday() - week_start) % 7)

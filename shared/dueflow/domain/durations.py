"""ISO 8601 durations and RFC 5545 duration arithmetic in a time zone."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import isodate

from dueflow.domain.errors import invalid

_MAX = timedelta(days=3660)  # ten years (and a week): anything longer is a typo
_DAYS_PER_MONTH = 366 / 12  # as years count 366 days: P120M and P10Y weigh the same
# P, then at least one number; "P", "PT" and "P1DT" are not durations.
_SHAPE = re.compile(r"^P(?=.*\d)[0-9YMWD.,]*(T(?=.*\d)[0-9HMS.,]+)?$")


@dataclass(frozen=True)
class Duration:
    """A duration split as RFC 5545 §3.3.6 does: nominal parts (calendar) and exact parts (clock).

    Nominal parts (years, months, weeks, days) move the wall-clock date in the task's time zone, so
    "P1D before 09:00" is 09:00 the day before even across a DST change; exact parts (hours,
    minutes, seconds) are absolute time.
    """

    text: str
    years: int
    months: int
    days: int
    exact: timedelta

    def subtract_from(self, instant: datetime, tz_name: str) -> datetime:
        return self._shift(instant, tz_name, -1)

    def add_to(self, instant: datetime, tz_name: str) -> datetime:
        return self._shift(instant, tz_name, +1)

    def _shift(self, instant: datetime, tz_name: str, sign: int) -> datetime:
        result = instant
        if self.years or self.months or self.days:
            local = instant.astimezone(ZoneInfo(tz_name)).replace(tzinfo=None)
            months = local.month - 1 + sign * (self.years * 12 + self.months)
            year, month = local.year + months // 12, months % 12 + 1
            day = min(local.day, _days_in_month(year, month))
            wall = local.replace(year=year, month=month, day=day) + sign * timedelta(days=self.days)
            result = to_utc(wall, tz_name)
        return (result + sign * self.exact).astimezone(UTC)


def to_utc(wall: datetime, tz_name: str) -> datetime:
    """Resolve a naive wall-clock time in `tz_name` the RFC 5545 way.

    A time that does not exist (spring forward) is read with the offset before the gap, so it lands
    after the gap; an ambiguous one (fall back) is the first occurrence (fold=0).
    """
    tz = ZoneInfo(tz_name)
    first = wall.replace(tzinfo=tz, fold=0)
    # zoneinfo's fold=0 uses the offset before a transition: exactly RFC 5545's rule for a gap.
    return first.astimezone(UTC)


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def parse_duration(value: object, field: str) -> Duration:
    """Parse a non-negative ISO 8601 duration such as PT15M, P1D, P1W or P1M."""
    if not isinstance(value, str) or not _SHAPE.match(value.upper()):
        raise invalid(field, "must be an ISO 8601 duration such as PT15M or P1D")
    text = value.upper()
    date_part, _, time_part = text.partition("T")
    # Parse the halves apart: isodate folds PT24H into one day, but hours are exact time and
    # days are calendar days (RFC 5545 §3.3.6), so they must not mix.
    try:
        nominal = isodate.parse_duration(date_part) if date_part != "P" else timedelta(0)
        exact = isodate.parse_duration("PT" + time_part) if time_part else timedelta(0)
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError):
        raise invalid(field, "must be an ISO 8601 duration such as PT15M or P1D") from None
    if isinstance(nominal, isodate.Duration):
        years, months, rest = nominal.years, nominal.months, nominal.tdelta
    else:
        years, months, rest = 0, 0, nominal
    if years != int(years) or months != int(months) or rest != timedelta(days=rest.days):
        raise invalid(field, "fractional days, weeks, months or years are not supported")
    if isinstance(exact, isodate.Duration):
        raise invalid(field, "must be an ISO 8601 duration such as PT15M or P1D")
    if years < 0 or months < 0 or rest < timedelta(0) or exact < timedelta(0):
        raise invalid(field, "must not be negative")
    total_months = int(years) * 12 + int(months)
    if timedelta(days=total_months * _DAYS_PER_MONTH) + rest + exact > _MAX:
        raise invalid(field, "must be at most ten years")
    return Duration(text, int(years), int(months), rest.days, exact)

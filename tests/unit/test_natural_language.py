"""English dates, recurrence and reminder phrases and quick-add lines (domain/natural_language).

Every recurrence row is checked through the whole path: the phrase's RRULE must be what the
domain's own parser keeps (canonical), and the dates after the first come from the domain's own
expansion (`recurrence.next_occurrence`), anchored on the first due date as a task would be.
Times are local wall-clock times with their offset, so DST changes show in the table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from dueflow.domain.natural_language import (
    PhraseNotUnderstood,
    first_occurrence,
    parse_due,
    parse_quick_add,
    parse_recurrence,
    parse_reminder,
)
from dueflow.domain.recurrence import canonical, local_wall_clock, next_occurrence, parse_rule
from dueflow.domain.validation import parse_create

BERLIN, NY, UTC_ZONE, SYDNEY = "Europe/Berlin", "America/New_York", "UTC", "Australia/Sydney"
# Fixed "now"s: a Wednesday evening in Berlin, the days before both 2027 DST changes, a month end.
NOW_B = datetime(2026, 12, 2, 18, 30, tzinfo=ZoneInfo(BERLIN))  # Wed 2 Dec 2026
NOW_SPRING_B = datetime(2027, 3, 26, 10, 0, tzinfo=ZoneInfo(BERLIN))  # Fri; DST starts Sun 28
NOW_FALL_B = datetime(2027, 10, 29, 10, 0, tzinfo=ZoneInfo(BERLIN))  # Fri; DST ends Sun 31
NOW_NY = datetime(2027, 3, 12, 8, 0, tzinfo=ZoneInfo(NY))  # Fri; DST starts Sun 14 March
NOW_FALL_NY = datetime(2027, 11, 5, 20, 0, tzinfo=ZoneInfo(NY))  # Fri; DST ends Sun 7 Nov
NOW_JAN31 = datetime(2028, 1, 31, 12, 0, tzinfo=UTC)  # Mon; 2028 is a leap year
NOWS = {"b": (NOW_B, BERLIN), "bs": (NOW_SPRING_B, BERLIN), "bf": (NOW_FALL_B, BERLIN),
        "ny": (NOW_NY, NY), "nyf": (NOW_FALL_NY, NY), "j": (NOW_JAN31, UTC_ZONE)}  # fmt: skip


def local(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes")


def following(rrule: str, zone: str, first: datetime, n: int) -> list[str]:
    """The n occurrences after `first`, by the domain's own expansion."""
    out, anchor, index, after = [], local_wall_clock(first, zone), 1, first
    for _ in range(n):
        occ = next_occurrence(rrule, zone, anchor, index, after)
        if occ is None:
            out.append("end")
            break
        out.append(local(occ.due_at, zone))
        anchor, index, after = occ.anchor, occ.index, occ.due_at
    return out


# --- recurrence -------------------------------------------------------------------------------

# Two lines a phrase: "phrase | now | RRULE | basis [| none]" ("none": first_due is None, the
# phrase names no day and no time), then the first three occurrences: the first is first_due (or,
# for "none", the first from now at 09:00 by `first_occurrence`), the next two come from the
# domain's expansion.
RECURRENCES = """
every day at 9 | b | FREQ=DAILY | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every weekday at 8:30 | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T08:30+01:00  2026-12-04T08:30+01:00  2026-12-07T08:30+01:00
every other monday | b | FREQ=WEEKLY;INTERVAL=2;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-21T09:00+01:00  2027-01-04T09:00+01:00
every 1st | b | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2027-02-01T09:00+01:00  2027-03-01T09:00+01:00
every last day | b | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2026-12-31T09:00+01:00  2027-01-31T09:00+01:00  2027-02-28T09:00+01:00
every month on the 1st at 9 | b | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2027-02-01T09:00+01:00  2027-03-01T09:00+01:00
every last friday | b | FREQ=MONTHLY;BYDAY=-1FR | due
    2026-12-25T09:00+01:00  2027-01-29T09:00+01:00  2027-02-26T09:00+01:00
every 3rd tuesday | b | FREQ=MONTHLY;BYDAY=3TU | due
    2026-12-15T09:00+01:00  2027-01-19T09:00+01:00  2027-02-16T09:00+01:00
every 2nd-to-last weekday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2 | due
    2026-12-30T09:00+01:00  2027-01-28T09:00+01:00  2027-02-25T09:00+01:00
every 15th workday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=15 | due
    2026-12-21T09:00+01:00  2027-01-21T09:00+01:00  2027-02-19T09:00+01:00
every jan 1 | b | FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2028-01-01T09:00+01:00  2029-01-01T09:00+01:00
every! 3 days | b | FREQ=DAILY;INTERVAL=3 | completion | none
    2026-12-03T09:00+01:00  2026-12-06T09:00+01:00  2026-12-09T09:00+01:00
every day at 2:30 | bs | FREQ=DAILY | due
    2027-03-27T02:30+01:00  2027-03-28T03:30+02:00  2027-03-29T02:30+02:00
every sunday at 2:30 | bf | FREQ=WEEKLY;BYDAY=SU | due
    2027-10-31T02:30+02:00  2027-11-07T02:30+01:00  2027-11-14T02:30+01:00
every day at 2:30am | ny | FREQ=DAILY | due
    2027-03-13T02:30-05:00  2027-03-14T03:30-04:00  2027-03-15T02:30-04:00
every 31st | j | FREQ=MONTHLY;BYMONTHDAY=31 | due
    2028-03-31T09:00+00:00  2028-05-31T09:00+00:00  2028-07-31T09:00+00:00
every feb 29 | j | FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29 | due
    2028-02-29T09:00+00:00  2032-02-29T09:00+00:00  2036-02-29T09:00+00:00
every last day at 17:00 | j | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2028-01-31T17:00+00:00  2028-02-29T17:00+00:00  2028-03-31T17:00+00:00
"""


def recurrence_rows() -> list:
    rows = []
    lines = [line for line in RECURRENCES.strip().splitlines() if line.strip()]
    for head, dates in zip(lines[::2], lines[1::2], strict=True):
        phrase, now, rrule, basis, *none = (part.strip() for part in head.split("|"))
        rows.append(pytest.param(phrase, now, rrule, basis, not none, dates.split(), id=phrase))
    return rows


@pytest.mark.parametrize(
    ("phrase", "now", "rrule", "basis", "has_first", "dates"), recurrence_rows()
)
def test_recurrence_phrase(phrase, now, rrule, basis, has_first, dates):
    now, zone = NOWS[now]
    result = parse_recurrence(phrase, now=now, tz=ZoneInfo(zone))
    assert (result.rrule, result.basis) == (rrule, basis)
    assert result.rrule == canonical(parse_rule(result.rrule))  # what the API stores as is
    if has_first:
        assert result.first_due.tzinfo == ZoneInfo(zone)
        start = result.first_due
    else:
        assert result.first_due is None
        start = first_occurrence(rrule, after=now, tz=ZoneInfo(zone))
    assert start >= now
    assert [local(start, zone), *following(rrule, zone, start, len(dates) - 1)] == dates
    # the API takes it: a task created with these fields validates
    body = {"title": "t", "due_at": start.isoformat(), "timezone": zone,
            "recurrence": {"rrule": result.rrule, "basis": result.basis}}  # fmt: skip
    assert parse_create(body)["recurrence"].rrule == rrule


# --- due dates --------------------------------------------------------------------------------

DUES = [
    ("today", "b", "2026-12-02T23:59+01:00"),
    ("tomorrow", "b", "2026-12-03T09:00+01:00"),
    ("tonight", "b", "2026-12-02T20:00+01:00"),
    ("tomorrow 9am", "b", "2026-12-03T09:00+01:00"),
    ("next monday", "b", "2026-12-07T09:00+01:00"),
    ("in 2 hours", "b", "2026-12-02T20:30+01:00"),
    ("dec 24 18:00", "b", "2026-12-24T18:00+01:00"),
    ("24 december 2027", "b", "2027-12-24T09:00+01:00"),
    ("2026-12-24", "b", "2026-12-24T09:00+01:00"),
    ("end of month", "b", "2026-12-31T09:00+01:00"),
    ("at 5pm", "b", "2026-12-03T17:00+01:00"),
    ("tomorrow 2:30", "bs", "2027-03-27T02:30+01:00"),
]


@pytest.mark.parametrize(("phrase", "now", "expected"), DUES)
def test_due_phrase(phrase, now, expected):
    now, zone = NOWS[now]
    due = parse_due(phrase, now=now, tz=ZoneInfo(zone))
    assert due.tzinfo == ZoneInfo(zone)
    assert local(due, zone) == expected


# --- reminders --------------------------------------------------------------------------------

REMINDERS = [
    ("30 minutes before", "b", {"before": "PT30M"}),
    ("1 day before", "b", {"before": "P1D"}),
    ("PT30M", "b", {"before": "PT30M"}),
    ("at 8am", "b", {"at": "2026-12-03T08:00:00+01:00"}),
    ("dec 24 at 8am", "b", {"at": "2026-12-24T08:00:00+01:00"}),
]


@pytest.mark.parametrize(("phrase", "now", "expected"), REMINDERS)
def test_reminder_phrase(phrase, now, expected):
    now, zone = NOWS[now]
    assert parse_reminder(phrase, now=now, tz=ZoneInfo(zone)) == expected
    body = {"title": "t", "due_at": "2030-01-01T00:00:00Z", "reminders": [expected]}
    assert len(parse_create(body)["reminders"]) == 1  # the API takes it as it is


# --- quick add --------------------------------------------------------------------------------

QUICK_ADDS = [
    (
        "Pay rent every month on the 1st at 9 #home !high remind 2 days before",
        "b",
        {
            "title": "Pay rent",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "basis": "due"},
            "due_at": "2027-01-01T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "P2D"}],
            "priority": "high",
            "tags": ["home"],
        },
    ),
    (
        "Call mom tomorrow at 6pm #family",
        "b",
        {
            "title": "Call mom",
            "due_at": "2026-12-03T18:00:00+01:00",
            "timezone": "Europe/Berlin",
            "tags": ["family"],
        },
    ),
    (
        "Water plants every 3 days p2",
        "b",
        {
            "title": "Water plants",
            "recurrence": {"rrule": "FREQ=DAILY;INTERVAL=3", "basis": "due"},
            "due_at": "2026-12-03T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "priority": "medium",
        },
    ),
    (
        'Read "the next week" chapter today',
        "b",
        {
            "title": "Read the next week chapter",
            "due_at": "2026-12-02T23:59:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
]


@pytest.mark.parametrize(("line", "now", "expected"), QUICK_ADDS)
def test_quick_add_line(line, now, expected):
    now, zone = NOWS[now]
    body = parse_quick_add(line, now=now, tz=ZoneInfo(zone))
    assert body == expected
    parse_create(body)  # a valid POST /tasks body


# --- rejected phrases -------------------------------------------------------------------------

# "<function letter> phrase", now, the field named, a suggestion offered
REJECTED = [
    ("d banana", "b", "due", "today"),
    ("d feb 30", "b", "due", "today"),
    ("d at 25", "b", "due", "at 5pm"),
    ("r every blah", "b", "recurrence", "every day"),
    ("r every feb 30", "b", "recurrence", "every year"),
    ("m 5 parsecs before", "b", "reminders.0", "2 days before"),
    ("q remind me whenever", "b", "text", "Call mom tomorrow at 6pm #family"),
]
PARSERS = {"d": parse_due, "r": parse_recurrence, "m": parse_reminder, "q": parse_quick_add}


@pytest.mark.parametrize(("case", "now", "field", "suggestion"), REJECTED)
def test_rejected_phrase(case, now, field, suggestion):
    kind, _, phrase = case.partition(" ")
    now, zone = NOWS[now]
    with pytest.raises(PhraseNotUnderstood) as caught:
        PARSERS[kind](phrase, now=now, tz=ZoneInfo(zone))
    error = caught.value
    assert [e.field for e in error.errors] == [field]
    assert error.phrase in phrase
    assert f'"{error.phrase}"' in error.errors[0].message
    assert suggestion in error.suggestions
    assert f'"{suggestion}"' in error.errors[0].message

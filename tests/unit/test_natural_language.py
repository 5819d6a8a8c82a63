"""English dates, recurrence and reminder phrases and quick-add lines (domain/natural_language).

Every recurrence row is checked through the whole path: the phrase's RRULE must be what the
domain's own parser keeps (canonical), and the dates after the first come from the domain's own
expansion (`recurrence.next_occurrence`), anchored on the first due date as a task would be.
Times are local wall-clock times with their offset, so DST changes show in the table.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dueflow.domain.durations import parse_duration
from dueflow.domain.errors import ValidationFailed
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
NOW_GAP_B = datetime(2027, 3, 27, 21, 0, tzinfo=ZoneInfo(BERLIN))  # Sat, the night clocks skip
NOW_SYDNEY = datetime(2027, 4, 3, 12, 0, tzinfo=ZoneInfo(SYDNEY))  # Sat; DST ends Sun 4 April
NOW_KOLKATA = datetime(2027, 6, 15, 23, 50, tzinfo=ZoneInfo("Asia/Kolkata"))  # Tue, +05:30
NOW_JAN31 = datetime(2028, 1, 31, 12, 0, tzinfo=UTC)  # Mon; 2028 is a leap year
NOWS = {"b": (NOW_B, BERLIN), "bs": (NOW_SPRING_B, BERLIN), "bf": (NOW_FALL_B, BERLIN),
        "bg": (NOW_GAP_B, BERLIN), "ny": (NOW_NY, NY), "nyf": (NOW_FALL_NY, NY),
        "j": (NOW_JAN31, UTC_ZONE), "syd": (NOW_SYDNEY, SYDNEY),
        "kol": (NOW_KOLKATA, "Asia/Kolkata")}  # fmt: skip
FULL_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


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

# A head line "phrase | now | RRULE | basis [| none]" ("none": first_due is None, the phrase
# names no day and no time), then the first occurrences: the first is first_due (for "none", the
# first from now at 09:00 by `first_occurrence`), the rest come from the domain's expansion ("end":
# the series ended). 09:00 is the default time of day.
RECURRENCES = """
# basics
every day | b | FREQ=DAILY | due | none
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
daily | b | FREQ=DAILY | due | none
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every day at 9 | b | FREQ=DAILY | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every day at 9am | b | FREQ=DAILY | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every day @ 18:00 | b | FREQ=DAILY | due
    2026-12-03T18:00+01:00  2026-12-04T18:00+01:00  2026-12-05T18:00+01:00
every day at noon | b | FREQ=DAILY | due
    2026-12-03T12:00+01:00  2026-12-04T12:00+01:00  2026-12-05T12:00+01:00
every day at midnight | b | FREQ=DAILY | due
    2026-12-03T00:00+01:00  2026-12-04T00:00+01:00  2026-12-05T00:00+01:00
every morning | b | FREQ=DAILY | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every afternoon | b | FREQ=DAILY | due
    2026-12-03T12:00+01:00  2026-12-04T12:00+01:00  2026-12-05T12:00+01:00
every evening | b | FREQ=DAILY | due
    2026-12-02T19:00+01:00  2026-12-03T19:00+01:00  2026-12-04T19:00+01:00
every night | b | FREQ=DAILY | due
    2026-12-02T22:00+01:00  2026-12-03T22:00+01:00  2026-12-04T22:00+01:00
every weekday | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-07T09:00+01:00
every workday | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-07T09:00+01:00
every weekday at 8:30 | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T08:30+01:00  2026-12-04T08:30+01:00  2026-12-07T08:30+01:00
every working day | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-07T09:00+01:00
every business day at 9 | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-07T09:00+01:00
every weekend | b | FREQ=WEEKLY;BYDAY=SA | due
    2026-12-05T09:00+01:00  2026-12-12T09:00+01:00  2026-12-19T09:00+01:00
every weekend day | b | FREQ=WEEKLY;BYDAY=SA,SU | due
    2026-12-05T09:00+01:00  2026-12-06T09:00+01:00  2026-12-12T09:00+01:00
every week | b | FREQ=WEEKLY | due | none
    2026-12-03T09:00+01:00  2026-12-10T09:00+01:00  2026-12-17T09:00+01:00
weekly | b | FREQ=WEEKLY | due | none
    2026-12-03T09:00+01:00  2026-12-10T09:00+01:00  2026-12-17T09:00+01:00
every week at 10am | b | FREQ=WEEKLY | due
    2026-12-03T10:00+01:00  2026-12-10T10:00+01:00  2026-12-17T10:00+01:00
every month | b | FREQ=MONTHLY | due | none
    2026-12-03T09:00+01:00  2027-01-03T09:00+01:00  2027-02-03T09:00+01:00
monthly | b | FREQ=MONTHLY | due | none
    2026-12-03T09:00+01:00  2027-01-03T09:00+01:00  2027-02-03T09:00+01:00
every year | b | FREQ=YEARLY | due | none
    2026-12-03T09:00+01:00  2027-12-03T09:00+01:00  2028-12-03T09:00+01:00
yearly | b | FREQ=YEARLY | due | none
    2026-12-03T09:00+01:00  2027-12-03T09:00+01:00  2028-12-03T09:00+01:00
annually | b | FREQ=YEARLY | due | none
    2026-12-03T09:00+01:00  2027-12-03T09:00+01:00  2028-12-03T09:00+01:00
every hour | b | FREQ=HOURLY | due | none
    2026-12-02T19:00+01:00  2026-12-02T20:00+01:00  2026-12-02T21:00+01:00
    2026-12-02T22:00+01:00  2026-12-02T23:00+01:00  2026-12-03T00:00+01:00
hourly | b | FREQ=HOURLY | due | none
    2026-12-02T19:00+01:00  2026-12-02T20:00+01:00  2026-12-02T21:00+01:00
    2026-12-02T22:00+01:00  2026-12-02T23:00+01:00  2026-12-03T00:00+01:00
every 2 hours | b | FREQ=HOURLY;INTERVAL=2 | due | none
    2026-12-02T19:00+01:00  2026-12-02T21:00+01:00  2026-12-02T23:00+01:00
    2026-12-03T01:00+01:00  2026-12-03T03:00+01:00  2026-12-03T05:00+01:00
every 12 hours starting at 7pm | b | FREQ=HOURLY;INTERVAL=12 | due
    2026-12-02T19:00+01:00  2026-12-03T07:00+01:00  2026-12-03T19:00+01:00
    2026-12-04T07:00+01:00  2026-12-04T19:00+01:00  2026-12-05T07:00+01:00
every 30 minutes | b | FREQ=MINUTELY;INTERVAL=30 | due | none
    2026-12-02T18:30+01:00  2026-12-02T19:00+01:00  2026-12-02T19:30+01:00
    2026-12-02T20:00+01:00  2026-12-02T20:30+01:00  2026-12-02T21:00+01:00
every 90 min | b | FREQ=MINUTELY;INTERVAL=90 | due | none
    2026-12-02T19:30+01:00  2026-12-02T21:00+01:00  2026-12-02T22:30+01:00
    2026-12-03T00:00+01:00  2026-12-03T01:30+01:00  2026-12-03T03:00+01:00
every quarter | b | FREQ=MONTHLY;INTERVAL=3 | due | none
    2026-12-03T09:00+01:00  2027-03-03T09:00+01:00  2027-06-03T09:00+02:00
every 2 quarters | b | FREQ=MONTHLY;INTERVAL=6 | due | none
    2026-12-03T09:00+01:00  2027-06-03T09:00+02:00  2027-12-03T09:00+01:00
# every N
every 2 days | b | FREQ=DAILY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2026-12-05T09:00+01:00  2026-12-07T09:00+01:00
every 3 days at 9 | b | FREQ=DAILY;INTERVAL=3 | due
    2026-12-03T09:00+01:00  2026-12-06T09:00+01:00  2026-12-09T09:00+01:00
every 10 days at 7:15am | b | FREQ=DAILY;INTERVAL=10 | due
    2026-12-03T07:15+01:00  2026-12-13T07:15+01:00  2026-12-23T07:15+01:00
every 2 weeks | b | FREQ=WEEKLY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2026-12-17T09:00+01:00  2026-12-31T09:00+01:00
every 3 weeks on friday | b | FREQ=WEEKLY;INTERVAL=3;BYDAY=FR | due
    2026-12-04T09:00+01:00  2026-12-25T09:00+01:00  2027-01-15T09:00+01:00
every 2 weeks on mon, fri | b | FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR | due
    2026-12-04T09:00+01:00  2026-12-14T09:00+01:00  2026-12-18T09:00+01:00
every 3 months | b | FREQ=MONTHLY;INTERVAL=3 | due | none
    2026-12-03T09:00+01:00  2027-03-03T09:00+01:00  2027-06-03T09:00+02:00
every 6 months on the 15th | b | FREQ=MONTHLY;INTERVAL=6;BYMONTHDAY=15 | due
    2026-12-15T09:00+01:00  2027-06-15T09:00+02:00  2027-12-15T09:00+01:00
every 2 years | b | FREQ=YEARLY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2028-12-03T09:00+01:00  2030-12-03T09:00+01:00
every 2 years on feb 29 | b | FREQ=YEARLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29 | due
    2028-02-29T09:00+01:00  2032-02-29T09:00+01:00  2036-02-29T09:00+01:00
every two days | b | FREQ=DAILY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2026-12-05T09:00+01:00  2026-12-07T09:00+01:00
every three weeks on monday at 9 | b | FREQ=WEEKLY;INTERVAL=3;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-28T09:00+01:00  2027-01-18T09:00+01:00
# every other
every other day | b | FREQ=DAILY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2026-12-05T09:00+01:00  2026-12-07T09:00+01:00
every other day at 21:00 | b | FREQ=DAILY;INTERVAL=2 | due
    2026-12-02T21:00+01:00  2026-12-04T21:00+01:00  2026-12-06T21:00+01:00
every other week | b | FREQ=WEEKLY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2026-12-17T09:00+01:00  2026-12-31T09:00+01:00
every other week on tuesday | b | FREQ=WEEKLY;INTERVAL=2;BYDAY=TU | due
    2026-12-08T09:00+01:00  2026-12-22T09:00+01:00  2027-01-05T09:00+01:00
every other month | b | FREQ=MONTHLY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2027-02-03T09:00+01:00  2027-04-03T09:00+02:00
every other month on the 1st | b | FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2027-03-01T09:00+01:00  2027-05-01T09:00+02:00
every other year | b | FREQ=YEARLY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2028-12-03T09:00+01:00  2030-12-03T09:00+01:00
every other monday | b | FREQ=WEEKLY;INTERVAL=2;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-21T09:00+01:00  2027-01-04T09:00+01:00
every other friday at 17:00 | b | FREQ=WEEKLY;INTERVAL=2;BYDAY=FR | due
    2026-12-04T17:00+01:00  2026-12-18T17:00+01:00  2027-01-01T17:00+01:00
every other mon and thu | b | FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH | due
    2026-12-03T09:00+01:00  2026-12-14T09:00+01:00  2026-12-17T09:00+01:00
# weekdays
every monday | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every mon | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every monday at 9 | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every monday, wednesday | b | FREQ=WEEKLY;BYDAY=MO,WE | due
    2026-12-07T09:00+01:00  2026-12-09T09:00+01:00  2026-12-14T09:00+01:00
every monday and wednesday at 18:30 | b | FREQ=WEEKLY;BYDAY=MO,WE | due
    2026-12-02T18:30+01:00  2026-12-07T18:30+01:00  2026-12-09T18:30+01:00
every mon, wed, fri | b | FREQ=WEEKLY;BYDAY=MO,WE,FR | due
    2026-12-04T09:00+01:00  2026-12-07T09:00+01:00  2026-12-09T09:00+01:00
every mon, wed & fri at 7am | b | FREQ=WEEKLY;BYDAY=MO,WE,FR | due
    2026-12-04T07:00+01:00  2026-12-07T07:00+01:00  2026-12-09T07:00+01:00
every tue and thu at 6pm | b | FREQ=WEEKLY;BYDAY=TU,TH | due
    2026-12-03T18:00+01:00  2026-12-08T18:00+01:00  2026-12-10T18:00+01:00
every tues, thurs | b | FREQ=WEEKLY;BYDAY=TU,TH | due
    2026-12-03T09:00+01:00  2026-12-08T09:00+01:00  2026-12-10T09:00+01:00
every saturday and sunday | b | FREQ=WEEKLY;BYDAY=SA,SU | due
    2026-12-05T09:00+01:00  2026-12-06T09:00+01:00  2026-12-12T09:00+01:00
every sunday at 10:00 | b | FREQ=WEEKLY;BYDAY=SU | due
    2026-12-06T10:00+01:00  2026-12-13T10:00+01:00  2026-12-20T10:00+01:00
every fri at 5 pm | b | FREQ=WEEKLY;BYDAY=FR | due
    2026-12-04T17:00+01:00  2026-12-11T17:00+01:00  2026-12-18T17:00+01:00
every wednesday at 9 a.m. | b | FREQ=WEEKLY;BYDAY=WE | due
    2026-12-09T09:00+01:00  2026-12-16T09:00+01:00  2026-12-23T09:00+01:00
every mondays | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
each monday | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
ev monday | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every week on monday | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every week on mon and wed at 8 | b | FREQ=WEEKLY;BYDAY=MO,WE | due
    2026-12-07T08:00+01:00  2026-12-09T08:00+01:00  2026-12-14T08:00+01:00
# month days
every 1st | b | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2027-02-01T09:00+01:00  2027-03-01T09:00+01:00
every 15th | b | FREQ=MONTHLY;BYMONTHDAY=15 | due
    2026-12-15T09:00+01:00  2027-01-15T09:00+01:00  2027-02-15T09:00+01:00
every 27 | b | FREQ=MONTHLY;BYMONTHDAY=27 | due
    2026-12-27T09:00+01:00  2027-01-27T09:00+01:00  2027-02-27T09:00+01:00
every 27th at 14:00 | b | FREQ=MONTHLY;BYMONTHDAY=27 | due
    2026-12-27T14:00+01:00  2027-01-27T14:00+01:00  2027-02-27T14:00+01:00
every 1st and 15th | b | FREQ=MONTHLY;BYMONTHDAY=1,15 | due
    2026-12-15T09:00+01:00  2027-01-01T09:00+01:00  2027-01-15T09:00+01:00
every 1st, 15th and last day | b | FREQ=MONTHLY;BYMONTHDAY=1,15,-1 | due
    2026-12-15T09:00+01:00  2026-12-31T09:00+01:00  2027-01-01T09:00+01:00
every last day | b | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2026-12-31T09:00+01:00  2027-01-31T09:00+01:00  2027-02-28T09:00+01:00
every last day of the month | b | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2026-12-31T09:00+01:00  2027-01-31T09:00+01:00  2027-02-28T09:00+01:00
every last day of the month at 18:00 | b | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2026-12-31T18:00+01:00  2027-01-31T18:00+01:00  2027-02-28T18:00+01:00
every 2nd to last day | b | FREQ=MONTHLY;BYMONTHDAY=-2 | due
    2026-12-30T09:00+01:00  2027-01-30T09:00+01:00  2027-02-27T09:00+01:00
every 31st | b | FREQ=MONTHLY;BYMONTHDAY=31 | due
    2026-12-31T09:00+01:00  2027-01-31T09:00+01:00  2027-03-31T09:00+02:00
every 30th | b | FREQ=MONTHLY;BYMONTHDAY=30 | due
    2026-12-30T09:00+01:00  2027-01-30T09:00+01:00  2027-03-30T09:00+02:00
every 29th | b | FREQ=MONTHLY;BYMONTHDAY=29 | due
    2026-12-29T09:00+01:00  2027-01-29T09:00+01:00  2027-03-29T09:00+02:00
every 1st of the month | b | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2027-02-01T09:00+01:00  2027-03-01T09:00+01:00
every 15th of every month | b | FREQ=MONTHLY;BYMONTHDAY=15 | due
    2026-12-15T09:00+01:00  2027-01-15T09:00+01:00  2027-02-15T09:00+01:00
every month on the 1st | b | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2027-02-01T09:00+01:00  2027-03-01T09:00+01:00
every month on the 15th at 10 | b | FREQ=MONTHLY;BYMONTHDAY=15 | due
    2026-12-15T10:00+01:00  2027-01-15T10:00+01:00  2027-02-15T10:00+01:00
every month on the last day | b | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2026-12-31T09:00+01:00  2027-01-31T09:00+01:00  2027-02-28T09:00+01:00
every month on the last friday | b | FREQ=MONTHLY;BYDAY=-1FR | due
    2026-12-25T09:00+01:00  2027-01-29T09:00+01:00  2027-02-26T09:00+01:00
every month on the 2nd tuesday | b | FREQ=MONTHLY;BYDAY=2TU | due
    2026-12-08T09:00+01:00  2027-01-12T09:00+01:00  2027-02-09T09:00+01:00
# ordinal weekdays
every last friday | b | FREQ=MONTHLY;BYDAY=-1FR | due
    2026-12-25T09:00+01:00  2027-01-29T09:00+01:00  2027-02-26T09:00+01:00
every 3rd tuesday | b | FREQ=MONTHLY;BYDAY=3TU | due
    2026-12-15T09:00+01:00  2027-01-19T09:00+01:00  2027-02-16T09:00+01:00
every first monday | b | FREQ=MONTHLY;BYDAY=1MO | due
    2026-12-07T09:00+01:00  2027-01-04T09:00+01:00  2027-02-01T09:00+01:00
every 1st monday at 9 | b | FREQ=MONTHLY;BYDAY=1MO | due
    2026-12-07T09:00+01:00  2027-01-04T09:00+01:00  2027-02-01T09:00+01:00
every second wednesday | b | FREQ=MONTHLY;BYDAY=2WE | due
    2026-12-09T09:00+01:00  2027-01-13T09:00+01:00  2027-02-10T09:00+01:00
every 2nd and 4th thursday | b | FREQ=MONTHLY;BYDAY=2TH,4TH | due
    2026-12-10T09:00+01:00  2026-12-24T09:00+01:00  2027-01-14T09:00+01:00
every 2nd, last friday | b | FREQ=MONTHLY;BYDAY=2FR,-1FR | due
    2026-12-11T09:00+01:00  2026-12-25T09:00+01:00  2027-01-08T09:00+01:00
every 4th sunday | b | FREQ=MONTHLY;BYDAY=4SU | due
    2026-12-27T09:00+01:00  2027-01-24T09:00+01:00  2027-02-28T09:00+01:00
every last sunday | b | FREQ=MONTHLY;BYDAY=-1SU | due
    2026-12-27T09:00+01:00  2027-01-31T09:00+01:00  2027-02-28T09:00+01:00
every 2nd-to-last friday | b | FREQ=MONTHLY;BYDAY=-2FR | due
    2026-12-18T09:00+01:00  2027-01-22T09:00+01:00  2027-02-19T09:00+01:00
every 5th friday | b | FREQ=MONTHLY;BYDAY=5FR | due
    2027-01-29T09:00+01:00  2027-04-30T09:00+02:00  2027-07-30T09:00+02:00
every third friday of the month | b | FREQ=MONTHLY;BYDAY=3FR | due
    2026-12-18T09:00+01:00  2027-01-15T09:00+01:00  2027-02-19T09:00+01:00
# workdays (BYSETPOS)
every 2nd-to-last weekday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2 | due
    2026-12-30T09:00+01:00  2027-01-28T09:00+01:00  2027-02-25T09:00+01:00
every 15th workday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=15 | due
    2026-12-21T09:00+01:00  2027-01-21T09:00+01:00  2027-02-19T09:00+01:00
every last workday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1 | due
    2026-12-31T09:00+01:00  2027-01-29T09:00+01:00  2027-02-26T09:00+01:00
every first workday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1 | due
    2027-01-01T09:00+01:00  2027-02-01T09:00+01:00  2027-03-01T09:00+01:00
every 1st workday at 8:00 | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1 | due
    2027-01-01T08:00+01:00  2027-02-01T08:00+01:00  2027-03-01T08:00+01:00
every 2nd to last workday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2 | due
    2026-12-30T09:00+01:00  2027-01-28T09:00+01:00  2027-02-25T09:00+01:00
every 3rd working day | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=3 | due
    2026-12-03T09:00+01:00  2027-01-05T09:00+01:00  2027-02-03T09:00+01:00
every 15th workday, last workday | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=15,-1 | due
    2026-12-21T09:00+01:00  2026-12-31T09:00+01:00  2027-01-21T09:00+01:00
every 10th business day | b | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=10 | due
    2026-12-14T09:00+01:00  2027-01-14T09:00+01:00  2027-02-12T09:00+01:00
# yearly dates
every jan 1 | b | FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2028-01-01T09:00+01:00  2029-01-01T09:00+01:00
every january 1st | b | FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2028-01-01T09:00+01:00  2029-01-01T09:00+01:00
every 1 jan | b | FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2028-01-01T09:00+01:00  2029-01-01T09:00+01:00
every 1st of january | b | FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2028-01-01T09:00+01:00  2029-01-01T09:00+01:00
every dec 24 at 18:00 | b | FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24 | due
    2026-12-24T18:00+01:00  2027-12-24T18:00+01:00  2028-12-24T18:00+01:00
every december 25 | b | FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25 | due
    2026-12-25T09:00+01:00  2027-12-25T09:00+01:00  2028-12-25T09:00+01:00
every jul 4 | b | FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4 | due
    2027-07-04T09:00+02:00  2028-07-04T09:00+02:00  2029-07-04T09:00+02:00
every mar 31 at 23:00 | b | FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=31 | due
    2027-03-31T23:00+02:00  2028-03-31T23:00+02:00  2029-03-31T23:00+02:00
every feb 28 | b | FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28 | due
    2027-02-28T09:00+01:00  2028-02-28T09:00+01:00  2029-02-28T09:00+01:00
every year on dec 24 | b | FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24 | due
    2026-12-24T09:00+01:00  2027-12-24T09:00+01:00  2028-12-24T09:00+01:00
every 4th thursday of november | b | FREQ=YEARLY;BYMONTH=11;BYDAY=4TH | due
    2027-11-25T09:00+01:00  2028-11-23T09:00+01:00  2029-11-22T09:00+01:00
every last monday of may | b | FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO | due
    2027-05-31T09:00+02:00  2028-05-29T09:00+02:00  2029-05-28T09:00+02:00
every 2nd sunday in may | b | FREQ=YEARLY;BYMONTH=5;BYDAY=2SU | due
    2027-05-09T09:00+02:00  2028-05-14T09:00+02:00  2029-05-13T09:00+02:00
every first monday of september at 9 | b | FREQ=YEARLY;BYMONTH=9;BYDAY=1MO | due
    2027-09-06T09:00+02:00  2028-09-04T09:00+02:00  2029-09-03T09:00+02:00
# bounds
every day starting dec 10 | b | FREQ=DAILY | due
    2026-12-10T09:00+01:00  2026-12-11T09:00+01:00  2026-12-12T09:00+01:00
every monday starting jan 4 | b | FREQ=WEEKLY;BYDAY=MO | due
    2027-01-04T09:00+01:00  2027-01-11T09:00+01:00  2027-01-18T09:00+01:00
every day starting tomorrow at 8 | b | FREQ=DAILY | due
    2026-12-03T08:00+01:00  2026-12-04T08:00+01:00  2026-12-05T08:00+01:00
every week starting 2027-01-05 | b | FREQ=WEEKLY | due
    2027-01-05T09:00+01:00  2027-01-12T09:00+01:00  2027-01-19T09:00+01:00
every day until dec 24 | b | FREQ=DAILY;UNTIL=20261224 | due | none
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every week until 2027-06-30 | b | FREQ=WEEKLY;UNTIL=20270630 | due | none
    2026-12-03T09:00+01:00  2026-12-10T09:00+01:00  2026-12-17T09:00+01:00
every monday until 2027-02-01 | b | FREQ=WEEKLY;BYDAY=MO;UNTIL=20270201 | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every day for 10 times | b | FREQ=DAILY;COUNT=10 | due | none
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every day for 3 times at 7am | b | FREQ=DAILY;COUNT=3 | due
    2026-12-03T07:00+01:00  2026-12-04T07:00+01:00  2026-12-05T07:00+01:00
every monday 4 times | b | FREQ=WEEKLY;BYDAY=MO;COUNT=4 | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every 2 weeks for 6 occurrences | b | FREQ=WEEKLY;INTERVAL=2;COUNT=6 | due | none
    2026-12-03T09:00+01:00  2026-12-17T09:00+01:00  2026-12-31T09:00+01:00
every 1st from feb 1 | b | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-02-01T09:00+01:00  2027-03-01T09:00+01:00  2027-04-01T09:00+02:00
every day at 9 starting next monday until dec 31 | b | FREQ=DAILY;UNTIL=20261231 | due
    2026-12-07T09:00+01:00  2026-12-08T09:00+01:00  2026-12-09T09:00+01:00
# completion basis
every! 3 days | b | FREQ=DAILY;INTERVAL=3 | completion | none
    2026-12-03T09:00+01:00  2026-12-06T09:00+01:00  2026-12-09T09:00+01:00
every! week | b | FREQ=WEEKLY | completion | none
    2026-12-03T09:00+01:00  2026-12-10T09:00+01:00  2026-12-17T09:00+01:00
every! monday | b | FREQ=WEEKLY;BYDAY=MO | completion
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every! 2 weeks at 10 | b | FREQ=WEEKLY;INTERVAL=2 | completion
    2026-12-03T10:00+01:00  2026-12-17T10:00+01:00  2026-12-31T10:00+01:00
ev! 10 days | b | FREQ=DAILY;INTERVAL=10 | completion | none
    2026-12-03T09:00+01:00  2026-12-13T09:00+01:00  2026-12-23T09:00+01:00
after 3 days | b | FREQ=DAILY;INTERVAL=3 | completion | none
    2026-12-03T09:00+01:00  2026-12-06T09:00+01:00  2026-12-09T09:00+01:00
after 2 weeks | b | FREQ=WEEKLY;INTERVAL=2 | completion | none
    2026-12-03T09:00+01:00  2026-12-17T09:00+01:00  2026-12-31T09:00+01:00
every 3 days after completion | b | FREQ=DAILY;INTERVAL=3 | completion | none
    2026-12-03T09:00+01:00  2026-12-06T09:00+01:00  2026-12-09T09:00+01:00
every month from completion | b | FREQ=MONTHLY | completion | none
    2026-12-03T09:00+01:00  2027-01-03T09:00+01:00  2027-02-03T09:00+01:00
# rrule passthrough
FREQ=WEEKLY;BYDAY=MO | b | FREQ=WEEKLY;BYDAY=MO | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
RRULE:FREQ=MONTHLY;BYMONTHDAY=1 | b | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-01-01T09:00+01:00  2027-02-01T09:00+01:00  2027-03-01T09:00+01:00
freq=daily;interval=2 | b | FREQ=DAILY;INTERVAL=2 | due | none
    2026-12-03T09:00+01:00  2026-12-05T09:00+01:00  2026-12-07T09:00+01:00
FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU | b | FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU | due
    2027-03-28T09:00+02:00  2028-03-26T09:00+02:00  2029-03-25T09:00+02:00
# DST and month ends
every day at 2:30 | bs | FREQ=DAILY | due
    2027-03-27T02:30+01:00  2027-03-28T03:30+02:00  2027-03-29T02:30+02:00
every sunday at 2:30 | bs | FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30 | due
    2027-03-28T03:30+02:00  2027-04-04T02:30+02:00  2027-04-11T02:30+02:00
every sunday at 3:00 | bs | FREQ=WEEKLY;BYDAY=SU | due
    2027-03-28T03:00+02:00  2027-04-04T03:00+02:00  2027-04-11T03:00+02:00
every day at 9 | bs | FREQ=DAILY | due
    2027-03-27T09:00+01:00  2027-03-28T09:00+02:00  2027-03-29T09:00+02:00
every last sunday at 2:30 | bs | FREQ=MONTHLY;BYDAY=-1SU;BYHOUR=2;BYMINUTE=30 | due
    2027-03-28T03:30+02:00  2027-04-25T02:30+02:00  2027-05-30T02:30+02:00
every 6 hours starting at 20:00 | bs | FREQ=HOURLY;INTERVAL=6 | due
    2027-03-26T20:00+01:00  2027-03-27T02:00+01:00  2027-03-27T08:00+01:00
    2027-03-27T14:00+01:00  2027-03-27T20:00+01:00  2027-03-28T03:00+02:00
every sunday at 2:30 | bf | FREQ=WEEKLY;BYDAY=SU | due
    2027-10-31T02:30+02:00  2027-11-07T02:30+01:00  2027-11-14T02:30+01:00
every day at 2:30 | bf | FREQ=DAILY | due
    2027-10-30T02:30+02:00  2027-10-31T02:30+02:00  2027-11-01T02:30+01:00
every last sunday of october at 2:30 | bf | FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU | due
    2027-10-31T02:30+02:00  2028-10-29T02:30+02:00  2029-10-28T02:30+02:00
every hour starting at 1:00 | bf | FREQ=HOURLY | due
    2027-10-29T10:00+02:00  2027-10-29T11:00+02:00  2027-10-29T12:00+02:00
    2027-10-29T13:00+02:00  2027-10-29T14:00+02:00  2027-10-29T15:00+02:00
every day at 2:30am | ny | FREQ=DAILY | due
    2027-03-13T02:30-05:00  2027-03-14T03:30-04:00  2027-03-15T02:30-04:00
every sunday at 2:30am | ny | FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30 | due
    2027-03-14T03:30-04:00  2027-03-21T02:30-04:00  2027-03-28T02:30-04:00
every day at 9 | ny | FREQ=DAILY | due
    2027-03-12T09:00-05:00  2027-03-13T09:00-05:00  2027-03-14T09:00-04:00
every 2nd sun of march at 2:30am | ny | FREQ=YEARLY;BYMONTH=3;BYDAY=2SU;BYHOUR=2;BYMINUTE=30 | due
    2027-03-14T03:30-04:00  2028-03-12T03:30-04:00  2029-03-11T03:30-04:00
every day at 1:30am | nyf | FREQ=DAILY | due
    2027-11-06T01:30-04:00  2027-11-07T01:30-04:00  2027-11-08T01:30-05:00
every sunday at 1:30 | nyf | FREQ=WEEKLY;BYDAY=SU | due
    2027-11-07T01:30-04:00  2027-11-14T01:30-05:00  2027-11-21T01:30-05:00
every 1st sunday of november at 1:30am | nyf | FREQ=YEARLY;BYMONTH=11;BYDAY=1SU | due
    2027-11-07T01:30-04:00  2028-11-05T01:30-04:00  2029-11-04T01:30-04:00
every 31st | j | FREQ=MONTHLY;BYMONTHDAY=31 | due
    2028-03-31T09:00+00:00  2028-05-31T09:00+00:00  2028-07-31T09:00+00:00
every 30th | j | FREQ=MONTHLY;BYMONTHDAY=30 | due
    2028-03-30T09:00+00:00  2028-04-30T09:00+00:00  2028-05-30T09:00+00:00
every 29th | j | FREQ=MONTHLY;BYMONTHDAY=29 | due
    2028-02-29T09:00+00:00  2028-03-29T09:00+00:00  2028-04-29T09:00+00:00
every feb 29 | j | FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29 | due
    2028-02-29T09:00+00:00  2032-02-29T09:00+00:00  2036-02-29T09:00+00:00
every last day | j | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2028-02-29T09:00+00:00  2028-03-31T09:00+00:00  2028-04-30T09:00+00:00
every last day at 17:00 | j | FREQ=MONTHLY;BYMONTHDAY=-1 | due
    2028-01-31T17:00+00:00  2028-02-29T17:00+00:00  2028-03-31T17:00+00:00
every month on the 31st | j | FREQ=MONTHLY;BYMONTHDAY=31 | due
    2028-03-31T09:00+00:00  2028-05-31T09:00+00:00  2028-07-31T09:00+00:00
every 1st | j | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2028-02-01T09:00+00:00  2028-03-01T09:00+00:00  2028-04-01T09:00+00:00
every month | j | FREQ=MONTHLY | due | none
    2028-02-01T09:00+00:00  2028-03-01T09:00+00:00  2028-04-01T09:00+00:00
every other month on the 31st | j | FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=31 | due
    2028-03-31T09:00+00:00  2028-05-31T09:00+00:00  2028-07-31T09:00+00:00
every last workday | j | FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1 | due
    2028-02-29T09:00+00:00  2028-03-31T09:00+00:00  2028-04-28T09:00+00:00
every year on feb 29 | j | FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29 | due
    2028-02-29T09:00+00:00  2032-02-29T09:00+00:00  2036-02-29T09:00+00:00
every sunday at 2:30am | bs | FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30 | due
    2027-03-28T03:30+02:00  2027-04-04T02:30+02:00  2027-04-11T02:30+02:00
every last sun of march at 2:30 | bs | FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;BYHOUR=2;BYMINUTE=30 | due
    2027-03-28T03:30+02:00  2028-03-26T03:30+02:00  2029-03-25T03:30+02:00
every 2 hours | bg | FREQ=HOURLY;INTERVAL=2 | due | none
    2027-03-27T21:00+01:00  2027-03-27T23:00+01:00  2027-03-28T01:00+01:00
    2027-03-28T03:00+02:00  2027-03-28T05:00+02:00  2027-03-28T07:00+02:00
every 30 minutes | bg | FREQ=MINUTELY;INTERVAL=30 | due | none
    2027-03-27T21:00+01:00  2027-03-27T21:30+01:00  2027-03-27T22:00+01:00
    2027-03-27T22:30+01:00  2027-03-27T23:00+01:00  2027-03-27T23:30+01:00
every day at 2:30 | bg | FREQ=DAILY;BYHOUR=2;BYMINUTE=30 | due
    2027-03-28T03:30+02:00  2027-03-29T02:30+02:00  2027-03-30T02:30+02:00
every hour starting at 23:00 | bg | FREQ=HOURLY | due
    2027-03-27T23:00+01:00  2027-03-28T00:00+01:00  2027-03-28T01:00+01:00
    2027-03-28T03:00+02:00  2027-03-28T04:00+02:00  2027-03-28T05:00+02:00
every day at 2:30 | syd | FREQ=DAILY | due
    2027-04-04T02:30+11:00  2027-04-05T02:30+10:00  2027-04-06T02:30+10:00
every sunday at 2:30am | syd | FREQ=WEEKLY;BYDAY=SU | due
    2027-04-04T02:30+11:00  2027-04-11T02:30+10:00  2027-04-18T02:30+10:00
every day at 9 | syd | FREQ=DAILY | due
    2027-04-04T09:00+10:00  2027-04-05T09:00+10:00  2027-04-06T09:00+10:00
every day at 9 | kol | FREQ=DAILY | due
    2027-06-16T09:00+05:30  2027-06-17T09:00+05:30  2027-06-18T09:00+05:30
every 1st at 8:30 | kol | FREQ=MONTHLY;BYMONTHDAY=1 | due
    2027-07-01T08:30+05:30  2027-08-01T08:30+05:30  2027-09-01T08:30+05:30
every hour | kol | FREQ=HOURLY | due | none
    2027-06-16T00:00+05:30  2027-06-16T01:00+05:30  2027-06-16T02:00+05:30
    2027-06-16T03:00+05:30  2027-06-16T04:00+05:30  2027-06-16T05:00+05:30
every day for 1 time | j | FREQ=DAILY;COUNT=1 | due | none
    2028-02-01T09:00+00:00  end
every 2nd and 4th thursday | j | FREQ=MONTHLY;BYDAY=2TH,4TH | due
    2028-02-10T09:00+00:00  2028-02-24T09:00+00:00  2028-03-09T09:00+00:00
# ranges, spans
every mon-fri | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-07T09:00+01:00
every monday to friday at 8 | b | FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR | due
    2026-12-03T08:00+01:00  2026-12-04T08:00+01:00  2026-12-07T08:00+01:00
every fri - mon | b | FREQ=WEEKLY;BYDAY=FR,SA,SU,MO | due
    2026-12-04T09:00+01:00  2026-12-05T09:00+01:00  2026-12-06T09:00+01:00
every 2nd - to - last friday | b | FREQ=MONTHLY;BYDAY=-2FR | due
    2026-12-18T09:00+01:00  2027-01-22T09:00+01:00  2027-02-19T09:00+01:00
every day for 2 weeks | b | FREQ=DAILY;UNTIL=20261216 | due | none
    2026-12-03T09:00+01:00  2026-12-04T09:00+01:00  2026-12-05T09:00+01:00
every monday for 3 months at 9 | b | FREQ=WEEKLY;BYDAY=MO;UNTIL=20270306 | due
    2026-12-07T09:00+01:00  2026-12-14T09:00+01:00  2026-12-21T09:00+01:00
every day for 1 month | j | FREQ=DAILY;UNTIL=20280229 | due | none
    2028-02-01T09:00+00:00  2028-02-02T09:00+00:00  2028-02-03T09:00+00:00
FREQ=DAILY;BYHOUR=7;BYMINUTE=0 | b | FREQ=DAILY;BYHOUR=7;BYMINUTE=0 | due
    2026-12-03T07:00+01:00  2026-12-04T07:00+01:00  2026-12-05T07:00+01:00
"""


def recurrence_rows() -> list:
    """Rows of RECURRENCES: a head line with "|", then its dates on indented lines."""
    rows: list = []
    for line in RECURRENCES.strip().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            phrase, now, rrule, basis, *none = (part.strip() for part in line.split("|"))
            rows.append([phrase, now, rrule, basis, not none, []])
        else:
            rows[-1][-1].extend(line.split())
    return [pytest.param(*row, id=row[0]) for row in rows]


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
    assert parse_create(body).recurrence.rrule == rrule


# --- due dates --------------------------------------------------------------------------------

DUES = [
    ("today", "b", "2026-12-02T23:59+01:00"),
    ("tod", "b", "2026-12-02T23:59+01:00"),
    ("today at 21:00", "b", "2026-12-02T21:00+01:00"),
    ("today 9am", "b", "2026-12-02T09:00+01:00"),
    ("tomorrow", "b", "2026-12-03T09:00+01:00"),
    ("tmrw", "b", "2026-12-03T09:00+01:00"),
    ("tomorrow 9am", "b", "2026-12-03T09:00+01:00"),
    ("tomorrow at 17:30", "b", "2026-12-03T17:30+01:00"),
    ("tomorrow morning", "b", "2026-12-03T09:00+01:00"),
    ("tomorrow morning at 8", "b", "2026-12-03T08:00+01:00"),
    ("tomorrow evening", "b", "2026-12-03T19:00+01:00"),
    ("tomorrow at noon", "b", "2026-12-03T12:00+01:00"),
    ("tonight", "b", "2026-12-02T20:00+01:00"),
    ("tonight at 9", "b", "2026-12-02T21:00+01:00"),
    ("at 9 tonight", "b", "2026-12-02T21:00+01:00"),
    ("this evening", "b", "2026-12-02T19:00+01:00"),
    ("this friday", "b", "2026-12-04T09:00+01:00"),
    ("this wednesday", "b", "2026-12-02T23:59+01:00"),
    ("next week", "b", "2026-12-07T09:00+01:00"),
    ("next month", "b", "2027-01-01T09:00+01:00"),
    ("next year", "b", "2027-01-01T09:00+01:00"),
    ("next monday", "b", "2026-12-07T09:00+01:00"),
    ("next wednesday", "b", "2026-12-09T09:00+01:00"),
    ("next friday at noon", "b", "2026-12-04T12:00+01:00"),
    ("friday", "b", "2026-12-04T09:00+01:00"),
    ("fri 17:00", "b", "2026-12-04T17:00+01:00"),
    ("wednesday", "b", "2026-12-09T09:00+01:00"),
    ("monday at 17:30", "b", "2026-12-07T17:30+01:00"),
    ("on monday", "b", "2026-12-07T09:00+01:00"),
    ("by friday 5pm", "b", "2026-12-04T17:00+01:00"),
    ("due sunday", "b", "2026-12-06T09:00+01:00"),
    ("in 2 hours", "b", "2026-12-02T20:30+01:00"),
    ("in 30 minutes", "b", "2026-12-02T19:00+01:00"),
    ("in an hour", "b", "2026-12-02T19:30+01:00"),
    ("in 90 min", "b", "2026-12-02T20:00+01:00"),
    ("in 3 days", "b", "2026-12-05T09:00+01:00"),
    ("in 3 days at 18:00", "b", "2026-12-05T18:00+01:00"),
    ("in a week", "b", "2026-12-09T09:00+01:00"),
    ("in 2 weeks", "b", "2026-12-16T09:00+01:00"),
    ("in 1 month", "b", "2027-01-02T09:00+01:00"),
    ("in 2 years", "b", "2028-12-02T09:00+01:00"),
    ("3 days from now", "b", "2026-12-05T09:00+01:00"),
    ("2 hours from now", "b", "2026-12-02T20:30+01:00"),
    ("dec 24", "b", "2026-12-24T09:00+01:00"),
    ("dec 24 18:00", "b", "2026-12-24T18:00+01:00"),
    ("december 24th at 6pm", "b", "2026-12-24T18:00+01:00"),
    ("24 dec", "b", "2026-12-24T09:00+01:00"),
    ("24th of december", "b", "2026-12-24T09:00+01:00"),
    ("24 december 2027", "b", "2027-12-24T09:00+01:00"),
    ("dec 24, 2027", "b", "2027-12-24T09:00+01:00"),
    ("jan 5", "b", "2027-01-05T09:00+01:00"),
    ("dec 2", "b", "2026-12-02T23:59+01:00"),
    ("2026-12-24", "b", "2026-12-24T09:00+01:00"),
    ("2026-12-24 18:00", "b", "2026-12-24T18:00+01:00"),
    ("2026-12-24T18:00", "b", "2026-12-24T18:00+01:00"),
    ("2026-12-24T18:00:00Z", "b", "2026-12-24T19:00+01:00"),
    ("2026-12-24T18:00:00+05:30", "b", "2026-12-24T13:30+01:00"),
    ("end of month", "b", "2026-12-31T09:00+01:00"),
    ("end of the month", "b", "2026-12-31T09:00+01:00"),
    ("at 5pm", "b", "2026-12-03T17:00+01:00"),
    ("5pm", "b", "2026-12-03T17:00+01:00"),
    ("9:30am", "b", "2026-12-03T09:30+01:00"),
    ("9:30 pm", "b", "2026-12-02T21:30+01:00"),
    ("18:00", "b", "2026-12-03T18:00+01:00"),
    ("at noon", "b", "2026-12-03T12:00+01:00"),
    ("midnight", "b", "2026-12-03T00:00+01:00"),
    ("@ 7", "b", "2026-12-03T07:00+01:00"),
    ("the 15th", "b", "2026-12-15T09:00+01:00"),
    ("on the 1st", "b", "2027-01-01T09:00+01:00"),
    ("feb 29", "b", "2028-02-29T09:00+01:00"),
    ("tomorrow 2:30", "bs", "2027-03-27T02:30+01:00"),
    ("sunday at 2:30", "bs", "2027-03-28T03:30+02:00"),
    ("sunday at 9", "bs", "2027-03-28T09:00+02:00"),
    ("sunday at 2:30", "bf", "2027-10-31T02:30+02:00"),
    ("sunday at 2:30am", "ny", "2027-03-14T03:30-04:00"),
    ("sunday 1:30am", "nyf", "2027-11-07T01:30-04:00"),
    ("in 2 days at 9", "nyf", "2027-11-07T09:00-05:00"),
    ("tomorrow", "j", "2028-02-01T09:00+00:00"),
    ("end of month", "j", "2028-01-31T23:59+00:00"),
    ("feb 29", "j", "2028-02-29T09:00+00:00"),
    ("in 1 month", "j", "2028-02-29T09:00+00:00"),
    ("next month", "j", "2028-02-01T09:00+00:00"),
    ("tomorrow at 2:30", "syd", "2027-04-04T02:30+11:00"),
    ("in 15 minutes", "kol", "2027-06-16T00:05+05:30"),
    ("tomorrow", "kol", "2027-06-16T09:00+05:30"),
    ("tonight", "kol", "2027-06-15T23:59+05:30"),
    ("tomorrow evening at 8", "b", "2026-12-03T20:00+01:00"),
    ("this afternoon at 3", "b", "2026-12-02T15:00+01:00"),
    ("tonight at 11:30pm", "b", "2026-12-02T23:30+01:00"),
    ("2026-12-24T18:00Z", "b", "2026-12-24T19:00+01:00"),
    ("2026-12-24T18:00+05:30", "b", "2026-12-24T13:30+01:00"),
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
    ("30 min before", "b", {"before": "PT30M"}),
    ("30m before", "b", {"before": "PT30M"}),
    ("15 mins early", "b", {"before": "PT15M"}),
    ("1 hour before", "b", {"before": "PT1H"}),
    ("an hour before", "b", {"before": "PT1H"}),
    ("2h before", "b", {"before": "PT2H"}),
    ("half an hour before", "b", {"before": "PT30M"}),
    ("1 hour 30 minutes before", "b", {"before": "PT1H30M"}),
    ("1 hour and 30 minutes before", "b", {"before": "PT1H30M"}),
    ("1 day before", "b", {"before": "P1D"}),
    ("a day before", "b", {"before": "P1D"}),
    ("2 days before", "b", {"before": "P2D"}),
    ("1 week before", "b", {"before": "P1W"}),
    ("2 weeks before", "b", {"before": "P2W"}),
    ("1 week 2 days before", "b", {"before": "P9D"}),
    ("1 month before", "b", {"before": "P1M"}),
    ("at due time", "b", {"before": "PT0M"}),
    ("when due", "b", {"before": "PT0M"}),
    ("on time", "b", {"before": "PT0M"}),
    ("PT30M", "b", {"before": "PT30M"}),
    ("pt15m", "b", {"before": "PT15M"}),
    ("P1D", "b", {"before": "P1D"}),
    ("P1W", "b", {"before": "P1W"}),
    ("at 8am", "b", {"at": "2026-12-03T08:00:00+01:00"}),
    ("8am", "b", {"at": "2026-12-03T08:00:00+01:00"}),
    ("tomorrow at 8am", "b", {"at": "2026-12-03T08:00:00+01:00"}),
    ("dec 24 at 8am", "b", {"at": "2026-12-24T08:00:00+01:00"}),
    ("in 2 hours", "b", {"at": "2026-12-02T20:30:00+01:00"}),
    ("2026-12-24T08:00:00+01:00", "b", {"at": "2026-12-24T08:00:00+01:00"}),
    ("2026-12-24T07:00:00Z", "b", {"at": "2026-12-24T08:00:00+01:00"}),
    ("sunday at 2:30", "bs", {"at": "2027-03-28T03:30:00+02:00"}),
    ("tomorrow at 9", "ny", {"at": "2027-03-13T09:00:00-05:00"}),
]


@pytest.mark.parametrize(("phrase", "now", "expected"), REMINDERS)
def test_reminder_phrase(phrase, now, expected):
    now, zone = NOWS[now]
    assert parse_reminder(phrase, now=now, tz=ZoneInfo(zone)) == expected
    body = {"title": "t", "due_at": "2030-01-01T00:00:00Z", "reminders": [expected]}
    assert len(parse_create(body).reminders) == 1  # the API takes it as it is


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
    ("Buy milk", "b", {"title": "Buy milk"}),
    (
        "Buy milk, eggs and bread tomorrow",
        "b",
        {
            "title": "Buy milk, eggs and bread",
            "due_at": "2026-12-03T09:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Submit report by friday 5pm !!",
        "b",
        {
            "title": "Submit report",
            "due_at": "2026-12-04T17:00:00+01:00",
            "timezone": "Europe/Berlin",
            "priority": "medium",
        },
    ),
    (
        "Standup every weekday at 9:30 #work p1",
        "b",
        {
            "title": "Standup",
            "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "basis": "due"},
            "due_at": "2026-12-03T09:30:00+01:00",
            "timezone": "Europe/Berlin",
            "priority": "high",
            "tags": ["work"],
        },
    ),
    (
        "Take out trash every tuesday evening",
        "b",
        {
            "title": "Take out trash",
            "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=TU", "basis": "due"},
            "due_at": "2026-12-08T19:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Dentist dec 24 at 10:00 remind me 1 hour before remind me 1 day before",
        "b",
        {
            "title": "Dentist",
            "due_at": "2026-12-24T10:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "PT1H"}, {"before": "P1D"}],
        },
    ),
    (
        "Renew passport in 2 weeks !low",
        "b",
        {
            "title": "Renew passport",
            "due_at": "2026-12-16T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "priority": "low",
        },
    ),
    (
        "Pay taxes every year on apr 30 #admin !!!",
        "b",
        {
            "title": "Pay taxes",
            "recurrence": {"rrule": "FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=30", "basis": "due"},
            "due_at": "2027-04-30T09:00:00+02:00",
            "timezone": "Europe/Berlin",
            "priority": "high",
            "tags": ["admin"],
        },
    ),
    (
        "Backup laptop every! 2 weeks",
        "b",
        {
            "title": "Backup laptop",
            "recurrence": {"rrule": "FREQ=WEEKLY;INTERVAL=2", "basis": "completion"},
            "due_at": "2026-12-03T09:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Call Anna next monday at 14:00 #work #calls",
        "b",
        {
            "title": "Call Anna",
            "due_at": "2026-12-07T14:00:00+01:00",
            "timezone": "Europe/Berlin",
            "tags": ["work", "calls"],
        },
    ),
    (
        "Review budget every last friday at 16:00",
        "b",
        {
            "title": "Review budget",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYDAY=-1FR", "basis": "due"},
            "due_at": "2026-12-25T16:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Team sync every other monday at 10",
        "b",
        {
            "title": "Team sync",
            "recurrence": {"rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "basis": "due"},
            "due_at": "2026-12-07T10:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    ("Write weekly report", "b", {"title": "Write weekly report"}),
    (
        "Write report weekly",
        "b",
        {
            "title": "Write report",
            "recurrence": {"rrule": "FREQ=WEEKLY", "basis": "due"},
            "due_at": "2026-12-03T09:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    ("Wear sun hat", "b", {"title": "Wear sun hat"}),
    ("Fix C# bug!! p3", "b", {"title": "Fix C# bug!!", "priority": "low"}),
    (
        "Meet at Joe's tomorrow",
        "b",
        {
            "title": "Meet at Joe's",
            "due_at": "2026-12-03T09:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Read chapter 3 on the 15th",
        "b",
        {
            "title": "Read chapter 3",
            "due_at": "2026-12-15T09:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    ("Buy 2 apples", "b", {"title": "Buy 2 apples"}),
    ('"Monday" blues playlist', "b", {"title": "Monday blues playlist"}),
    ("Pay invoice #42 !medium", "b", {"title": "Pay invoice #42", "priority": "medium"}),
    (
        "Send e-mail at 5pm",
        "b",
        {
            "title": "Send e-mail",
            "due_at": "2026-12-03T17:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Laundry daily at 20:00",
        "b",
        {
            "title": "Laundry",
            "recurrence": {"rrule": "FREQ=DAILY", "basis": "due"},
            "due_at": "2026-12-02T20:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Check oven in 30 minutes",
        "b",
        {"title": "Check oven", "due_at": "2026-12-02T19:00:00+01:00", "timezone": "Europe/Berlin"},
    ),
    (
        "Pay rent every 1st #home",
        "b",
        {
            "title": "Pay rent",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "basis": "due"},
            "due_at": "2027-01-01T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "tags": ["home"],
        },
    ),
    (
        "Call grandma every sunday at 11 remind me at due time",
        "b",
        {
            "title": "Call grandma",
            "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=SU", "basis": "due"},
            "due_at": "2026-12-06T11:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "PT0M"}],
        },
    ),
    (
        "Book flights 24 december 2027 p4",
        "b",
        {
            "title": "Book flights",
            "due_at": "2027-12-24T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "priority": "none",
        },
    ),
    (
        "Go to gym every mon, wed & fri at 7am",
        "b",
        {
            "title": "Go to gym",
            "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR", "basis": "due"},
            "due_at": "2026-12-04T07:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Water plants every 3 days at 8 p2 remind 30 min before",
        "b",
        {
            "title": "Water plants",
            "recurrence": {"rrule": "FREQ=DAILY;INTERVAL=3", "basis": "due"},
            "due_at": "2026-12-03T08:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "PT30M"}],
            "priority": "medium",
        },
    ),
    (
        "Book review every 2nd and 4th thursday",
        "b",
        {
            "title": "Book review",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYDAY=2TH,4TH", "basis": "due"},
            "due_at": "2026-12-10T09:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Renew car insurance every year on feb 29 remind 1 week before",
        "b",
        {
            "title": "Renew car insurance",
            "recurrence": {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "basis": "due"},
            "due_at": "2028-02-29T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "P1W"}],
        },
    ),
    (
        "Change clocks sunday at 2:30",
        "bs",
        {
            "title": "Change clocks",
            "due_at": "2027-03-28T03:30:00+02:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Pay card end of month",
        "j",
        {"title": "Pay card", "due_at": "2028-01-31T23:59:00+00:00", "timezone": "UTC"},
    ),
    (
        "remind me to pay rent every month on the 1st at 9, two days before",
        "b",
        {
            "title": "pay rent",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "basis": "due"},
            "due_at": "2027-01-01T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "P2D"}],
        },
    ),
    ("Buy gift, 2 apples", "b", {"title": "Buy gift, 2 apples"}),
    (
        "Call bob tomorrow, 1 hour before",
        "b",
        {
            "title": "Call bob",
            "due_at": "2026-12-03T09:00:00+01:00",
            "timezone": "Europe/Berlin",
            "reminders": [{"before": "PT1H"}],
        },
    ),
    (
        "Gym every mon-fri at 7am",
        "b",
        {
            "title": "Gym",
            "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "basis": "due"},
            "due_at": "2026-12-03T07:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Call bob tomorrow - urgent",
        "b",
        {
            "title": "Call bob - urgent",
            "due_at": "2026-12-03T09:00:00+01:00",
            "timezone": "Europe/Berlin",
        },
    ),
    (
        "Practice piano every day for 30 minutes",
        "b",
        {
            "title": "Practice piano for 30 minutes",
            "recurrence": {"rrule": "FREQ=DAILY", "basis": "due"},
            "due_at": "2026-12-03T09:00:00+01:00",
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
    ("d 2026-02-30", "b", "due", "2026-12-24"),
    ("d 2026-13-01", "b", "due", "2026-12-24"),
    ("d at 25", "b", "due", "at 5pm"),
    ("d 13pm", "b", "due", "at 5pm"),
    ("d 9:75", "b", "due", "9:30am"),
    ("d 12/24", "b", "due", "2026-12-24"),
    ("d next", "b", "due", "next week"),
    ("d in 3 parsecs", "b", "due", "in 3 days"),
    ("d tomorrow tomorrow", "b", "due", "tomorrow 9am"),
    ("d tomorrow at 9 at 10", "b", "due", "tomorrow at 17:30"),
    ("d yesterday-ish", "b", "due", "today"),
    ("d in 99999999 days", "b", "due", "in 3 days"),
    ("d 24 december 1850", "b", "due", "24 december 2027"),
    ("d ", "b", "due", "today"),
    ("d every monday", "b", "due", "next monday"),
    ("r every blah", "b", "recurrence", "every day"),
    ("r every feb 30", "b", "recurrence", "every year"),
    ("r every", "b", "recurrence", "every day"),
    ("r every 0 days", "b", "recurrence", "every 3 days"),
    ("r every 1000 days", "b", "recurrence", "every 3 days"),
    ("r every 6th friday", "b", "recurrence", "every last friday"),
    ("r every 24th workday", "b", "recurrence", "every 15th workday"),
    ("r every 32nd", "b", "recurrence", "every day"),
    ("r every last", "b", "recurrence", "every 1st"),
    ("r biweekly", "b", "recurrence", "every weekday"),
    ("r every day except sunday", "b", "recurrence", "every day at 9"),
    ("r every day until yesterday", "b", "recurrence", "every monday, wednesday"),
    ("r every day until 2026-01-01", "b", "recurrence", "every week until 2027-06-30"),
    ("r every day at 9 at 10", "b", "recurrence", "every day at 9"),
    ("r every day for 0 times", "b", "recurrence", "every day for 10 times"),
    ("r every day for 3 times until dec 31", "b", "recurrence", "every day for 10 times"),
    (
        "r every monday starting tomorrow starting friday",
        "b",
        "recurrence",
        "every day starting dec 1",
    ),
    ("r every 1st and monday", "b", "recurrence", "every monday"),
    ("r every 2nd-to-last", "b", "recurrence", "every 2nd-to-last weekday"),
    ("m 5 parsecs before", "b", "reminders.0", "2 days before"),
    ("m before", "b", "reminders.0", "1 day before"),
    ("m 2 days after", "b", "reminders.0", "2 days before"),
    ("m P", "b", "reminders.0", "30 minutes before"),
    ("m sometime", "b", "reminders.0", "at due time"),
    ("m 11 years before", "b", "reminders.0", "1 day before"),
    (
        "q remind me whenever",
        "b",
        "text",
        "Pay rent every month on the 1st at 9 #home !high remind 2 days before",
    ),
    (
        "q #home !high",
        "b",
        "text",
        "Pay rent every month on the 1st at 9 #home !high remind 2 days before",
    ),
    ("q Pay rent !urgent", "b", "text", "!high"),
    ("q Call mom tomorrow next friday", "b", "text", "next friday at noon"),
    ("q Gym every monday every friday", "b", "text", "every day"),
    ("q Deploy at 25:00", "b", "text", "at 5pm"),
    ("q Pay rent p1 !high", "b", "text", "!high"),
    ("q Check server every 6th friday", "b", "text", "every last friday"),
    ("q Meet 2026-02-30", "b", "text", "2026-12-24"),
    (
        "q Call bob remind 1 hour before",
        "b",
        "text",
        "Pay rent every month on the 1st at 9 #home !high remind 2 days before",
    ),
    ("r every day for 2 weeks until dec 31", "b", "recurrence", "every day starting dec 1"),
    ("r every day for 3 hours", "b", "recurrence", "every day for 10 times"),
    # never occurs: rejected before dateutil would search to the year 9999
    ("r FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30", "b", "recurrence", "FREQ=WEEKLY;BYDAY=MO"),
    ("r FREQ=DAILY;BYMONTH=4,6;BYMONTHDAY=31", "b", "recurrence", "FREQ=WEEKLY;BYDAY=MO"),
    ("r FREQ=YEARLY;BYMONTH=1;BYYEARDAY=100", "b", "recurrence", "FREQ=WEEKLY;BYDAY=MO"),
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


def test_a_malformed_rrule_gets_the_domain_error_on_the_given_field():
    for rule in ("FREQ=SECONDLY", "FREQ=WEEKLY;BYDAY=XX", "RRULE:FREQ=DAILY;COUNT=0"):
        with pytest.raises(ValidationFailed) as caught:
            parse_recurrence(rule, now=NOW_B, tz=ZoneInfo(BERLIN), field="tasks.3.recurrence")
        assert [e.field for e in caught.value.errors] == ["tasks.3.recurrence"]


def test_an_instant_with_an_offset_but_an_impossible_time_is_the_domain_error():
    with pytest.raises(ValidationFailed) as caught:
        parse_due("2026-12-24T25:00Z", now=NOW_B, tz=ZoneInfo(BERLIN), field="tasks.1.due")
    assert [e.field for e in caught.value.errors] == ["tasks.1.due"]


def test_not_understood_is_a_validation_error_naming_the_field():
    with pytest.raises(ValidationFailed) as caught:
        parse_due("the day after the party", now=NOW_B, tz=ZoneInfo(BERLIN), field="tasks.0.due")
    error = caught.value
    assert isinstance(error, PhraseNotUnderstood)
    assert error.phrase == "the day after the party"
    assert error.errors[0].field == "tasks.0.due"
    assert error.errors[0].message.startswith('could not understand "the day after the party"')
    assert 1 <= len(error.suggestions) <= 3


# --- properties -------------------------------------------------------------------------------

ZONE_NAMES = [BERLIN, NY, SYDNEY, "Asia/Kolkata", "America/Santiago", "UTC"]
zones = st.sampled_from(ZONE_NAMES)
nows = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2034, 12, 31), timezones=st.just(UTC)
)
PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(
    n=st.integers(1, 999), hour=st.integers(0, 23), minute=st.integers(0, 59), zone=zones, now=nows
)
def test_every_n_days_at_a_time_round_trips(n, hour, minute, zone, now):
    phrase = (
        f"every {n} days at {hour}:{minute:02d}" if n > 1 else f"every day at {hour}:{minute:02d}"
    )
    result = parse_recurrence(phrase, now=now, tz=ZoneInfo(zone))
    first = result.first_due
    wall = first.astimezone(ZoneInfo(zone))
    expected = "FREQ=DAILY" + (f";INTERVAL={n}" if n > 1 else "")
    if (wall.hour, wall.minute) != (hour, minute):  # the time fell in a DST gap: kept in the rule
        assert result.rrule == f"{expected};BYHOUR={hour};BYMINUTE={minute}"
        assert wall.replace(tzinfo=None) - datetime.combine(
            wall.date(), time(hour, minute)
        ) <= timedelta(hours=1)
    else:
        assert result.rrule == expected
    assert result.basis == "due"
    assert now <= first < now + timedelta(days=1, hours=1)  # today or tomorrow, never later
    after = following(result.rrule, zone, first, 1)[0]
    assert datetime.fromisoformat(after).date() - wall.date() == timedelta(days=n)


@PROPERTY
@given(
    days=st.lists(st.sampled_from(FULL_DAYS), min_size=1, max_size=7, unique=True),
    zone=zones,
    now=nows,
)
def test_every_listed_weekdays_hits_only_those_days(days, zone, now):
    phrase = "every " + (", ".join(days[:-1]) + " and " + days[-1] if len(days) > 1 else days[0])
    result = parse_recurrence(phrase, now=now, tz=ZoneInfo(zone))
    codes = [d[:2].upper() for d in days]
    assert result.rrule == "FREQ=WEEKLY;BYDAY=" + ",".join(codes)
    dates = [result.first_due.isoformat(), *following(result.rrule, zone, result.first_due, 6)]
    assert {FULL_DAYS[datetime.fromisoformat(d).weekday()] for d in dates} <= set(days)
    assert result.first_due - now < timedelta(days=7, hours=1)


UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}


@PROPERTY
@given(n=st.integers(1, 500), unit=st.sampled_from(sorted(UNIT_SECONDS)))
def test_n_units_before_is_the_matching_iso_duration(n, unit):
    reminder = parse_reminder(f"{n} {unit} before", now=NOW_B, tz=ZoneInfo(BERLIN))
    duration = parse_duration(reminder["before"], "before")
    assert (duration.days * 86400 + duration.exact.total_seconds()) == n * UNIT_SECONDS[unit]


@PROPERTY
@given(n=st.integers(1, 5000), unit=st.sampled_from(["minutes", "hours"]), zone=zones, now=nows)
def test_in_n_minutes_or_hours_is_exact_time(n, unit, zone, now):
    due = parse_due(f"in {n} {unit}", now=now, tz=ZoneInfo(zone))
    expected = (now + timedelta(seconds=n * UNIT_SECONDS[unit])).replace(second=0, microsecond=0)
    # compared in UTC: `==` across zones is False for a local time that occurs twice (PEP 495)
    assert due.astimezone(UTC) == expected
    assert due.tzinfo == ZoneInfo(zone)


# "may", "sun", "3rd", "morning" are title words unless a date phrase needs them ("may 3rd" is one)
VOCABULARY = "buy milk call bob fix the bike report sun hat 2 apples chapter 3rd floor morning run"
VOCABULARY = [*VOCABULARY.split(), "i", "C#", "wow!", "e-mail", "don't"]


@PROPERTY
@given(words=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=8))
def test_plain_words_stay_the_title(words):
    line = " ".join(words)
    assert parse_quick_add(line, now=NOW_B, tz=ZoneInfo(BERLIN)) == {"title": line}


TOKENS = """every at 9 9am monday last 2nd to day days in next dec 24 2027 ! , and starting until
for times before tomorrow 30 minutes 15:00 2026-12-24 other workday of #x p1 remind""".split()


@PROPERTY
@given(words=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=7))
def test_any_phrase_is_understood_or_rejected_never_a_crash(words):
    phrase = " ".join(words)
    for parse in PARSERS.values():
        try:
            result = parse(phrase, now=NOW_B, tz=ZoneInfo(BERLIN))
        except ValidationFailed as exc:
            assert exc.errors and all(e.message for e in exc.errors)
        else:
            assert result is not None


# --- the guide's tables are the code's answers -------------------------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "natural-language.md"
_ROW = re.compile(r"^\| `([^`]+)` \| (.+?) \|(?: (.+) \|)?$")


def test_the_guide_shows_what_the_code_answers():
    text = GUIDE.read_text()
    tz = ZoneInfo(BERLIN)
    checked = 0
    for line in text.splitlines():
        m = _ROW.match(line)
        if not m or m.group(1).startswith(("parse_", "#", "!", "p1", "remind", '"')):
            continue
        phrase, second, third = m.groups()
        if third is not None:  # phrase | `RRULE`[ (completion)] | first due or "—"
            result = parse_recurrence(phrase, now=NOW_B, tz=tz)
            basis = " (completion)" if result.basis == "completion" else ""
            assert second == f"`{result.rrule}`{basis}", phrase
            first = result.first_due.strftime("%a %Y-%m-%d %H:%M") if result.first_due else None
            assert third == (first or "— (the task's due)"), phrase
        elif second.startswith("`{"):  # reminder
            assert json.loads(second.strip("`")) == parse_reminder(phrase, now=NOW_B, tz=tz)
        else:  # due date
            assert second == parse_due(phrase, now=NOW_B, tz=tz).strftime("%a %Y-%m-%d %H:%M")
        checked += 1
    assert checked >= 100
    line = "Pay rent every month on the 1st at 9 #home !high remind 2 days before"
    body = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    assert parse_quick_add(line, now=NOW_B, tz=tz) == body


# --- quick add: `every …` that is not a known rule ----------------------------------------------

# A line whose `every …` reads as prose keeps it in the title, unchanged.
EVERY_AS_PROSE = [
    "read every chapter",
    "read every chapter of the book",
    "fix every bug",
    "every bug fixed",
    "meet every single person",
    "every time I go out buy milk",
    "call every other person",
    "every last one of them",
    "every one of us",
    "every second counts",
    "every step counts",
    "every file is backed up",
    "each chapter reread",
    "clean every room",
    "Everyday carry",
]

# A line whose `every …` reads as a rule the grammar does not know: 422 on `text`, quoting the
# phrase, with suggestions that are themselves rules the grammar reads.
# line, the phrase quoted, a suggestion expected (None: any that parses)
EVERY_NOT_UNDERSTOOD = [
    ("buy milk every blursday", "every blursday", "every thursday"),
    ("buy milk every blursday at 9", "every blursday", "every thursday"),
    ("every blursday buy milk", "every blursday", "every thursday"),
    ("water every! blursday", "every! blursday", "every! thursday"),
    ("every other blursday task", "every other blursday", "every other thursday"),
    ("every wensday standup", "every wensday", "every wednesday"),
    ("each janury 1 pay taxes", "each janury", None),
    ("check every 3 blursdays", "every 3 blursdays", "every 3 days"),
    ("every 3 things", "every 3 things", None),
    ("buy milk every 2 wks", "every 2 wks", "every 2 weeks"),
    ("every monday wensday", "every monday wensday", None),
    ("party every birthday", "every birthday", None),
    ("buy milk every", "every", None),
    ("buy milk every other", "every other", None),
    ("buy milk every second", "every second", None),
]


@pytest.mark.parametrize("line", EVERY_AS_PROSE)
def test_quick_add_keeps_every_in_prose(line):
    body = parse_quick_add(line, now=NOW_B, tz=ZoneInfo(BERLIN))
    assert body == {"title": line}


@pytest.mark.parametrize(("line", "phrase", "suggestion"), EVERY_NOT_UNDERSTOOD)
def test_quick_add_rejects_an_unknown_every_phrase(line, phrase, suggestion):
    with pytest.raises(PhraseNotUnderstood) as caught:
        parse_quick_add(line, now=NOW_B, tz=ZoneInfo(BERLIN))
    error = caught.value
    assert error.errors[0].field == "text"
    assert error.phrase == phrase
    assert f'could not understand "{phrase}"' in error.errors[0].message
    assert error.suggestions
    if suggestion is not None:
        assert suggestion in error.suggestions
    for suggested in error.suggestions:  # never a form the parser would refuse in turn
        parse_recurrence(suggested, now=NOW_B, tz=ZoneInfo(BERLIN))


@pytest.mark.parametrize(
    "line",
    [
        "buy milk every day",
        "buy milk every 2",  # "every 2": the 2nd of each month, as before
        "stretch every morning",
        "Water plants every 3 days at 8 p2 remind 30 min before",
        "pay every 15 remind 1 day before",
        'buy milk "every blursday"',  # quoted: title text
    ],
)
def test_quick_add_known_every_phrases_still_parse(line):
    body = parse_quick_add(line, now=NOW_B, tz=ZoneInfo(BERLIN))
    assert "every" not in body["title"] or '"' in line
    parse_create(body)

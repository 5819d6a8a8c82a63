"""The calendar feed's mapping (dueflow.adapters.ical) on tasks built by the pure lifecycle: each
series, parsed back with icalendar and expanded with recurring-ical-events, gives the dates the
lifecycle's next_instance gives (the recurrence function's path), including the cases the API
tests cannot reach directly: a rescheduled instance, COUNT partly used, completion-based series."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from dueflow.adapters import ical
from dueflow.domain import lifecycle
from dueflow.domain.task import Task
from dueflow.domain.validation import parse_create

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def task(**fields) -> Task:
    return lifecycle.new_task("alice", parse_create({"title": "t", **fields}), NOW)


def parsed(*tasks: Task, as_events: bool = False) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(ical.render(tasks, as_events=as_events))


def expand(cal: icalendar.Calendar, limit: int, name: str = "VTODO") -> list[datetime]:
    query = recurring_ical_events.of(cal, components=[name])
    found = itertools.islice(query.after(datetime(2000, 1, 1, tzinfo=UTC)), limit)
    return [c["DUE" if name == "VTODO" else "DTSTART"].dt.astimezone(UTC) for c in found]


def dueflow_dates(current: Task, limit: int) -> list[datetime]:
    """The due dates of `current` and the instances completing each one (at NOW) creates."""
    dates = []
    while current is not None and len(dates) < limit:
        dates.append(current.due_at)
        current = lifecycle.next_instance(current.with_changes(status="done"), NOW, NOW)
    return dates


def local(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def test_a_rescheduled_instance_is_an_override_and_the_series_keeps_its_times():
    series = task(
        due_at="2027-03-26T09:00:00+01:00",
        timezone="Europe/Berlin",
        recurrence={"rrule": "FREQ=DAILY"},
    )
    moved, _ = lifecycle.reschedule(series, local(2027, 3, 26, 15, 0), NOW)
    cal = parsed(moved)
    master, override = cal.walk("VTODO")
    assert str(master["UID"]) == str(override["UID"]) == series.series_id
    assert override["RECURRENCE-ID"].dt == datetime(2027, 3, 26, 9, tzinfo=BERLIN)
    expected = [
        local(2027, 3, 26, 15, 0),
        local(2027, 3, 27, 9, 0),
        local(2027, 3, 28, 9, 0),  # CEST from here: still 09:00 in Berlin
        local(2027, 3, 29, 9, 0),
    ]
    assert expand(cal, 4) == dueflow_dates(moved, 4) == expected
    assert expand(parsed(moved, as_events=True), 4, "VEVENT") == expected


def test_count_is_what_is_left_of_the_series():
    first = task(
        due_at="2027-03-26T09:00:00+01:00",
        timezone="Europe/Berlin",
        recurrence={"rrule": "FREQ=WEEKLY;COUNT=5"},
    )
    third = lifecycle.next_instance(
        lifecycle.next_instance(first.with_changes(status="done"), NOW, NOW).with_changes(
            status="done"
        ),
        NOW,
        NOW,
    )
    assert third.recurrence.index == 3
    assert "COUNT=3" in ical.series_rule(third).to_ical().decode()
    assert expand(parsed(third), 10) == dueflow_dates(third, 10)
    assert len(dueflow_dates(third, 10)) == 3


def test_a_completion_based_series_shows_only_its_current_instance():
    every = task(
        due_at="2027-03-26T09:00:00Z",
        recurrence={"rrule": "FREQ=DAILY;INTERVAL=3", "basis": "completion"},
    )
    [todo] = parsed(every).walk("VTODO")
    assert "RRULE" not in todo and str(todo["UID"]) == every.id
    assert expand(parsed(every), 5) == [every.due_at]


def test_reminders_no_trigger_duration_can_state_are_given_as_their_instant():
    due = task(
        due_at="2027-03-28T09:00:00+02:00",  # the first morning of summer time in Berlin
        timezone="Europe/Berlin",
        reminders=[{"before": "P1M"}, {"before": "PT24H"}, {"before": "P1D"}],
    )
    [todo] = parsed(due).walk("VTODO")
    triggers = [a["TRIGGER"] for a in todo.walk("VALARM")]
    assert triggers[0].dt == due.reminders[0].remind_at == local(2027, 2, 28, 9, 0)
    # 24 hours of clock time before is 08:00 the day before (the night lost an hour); a trigger
    # of -PT24H would be written -P1D, the calendar day: 09:00. So it is given as its instant.
    assert triggers[1].dt == due.reminders[1].remind_at == local(2027, 3, 27, 8, 0)
    assert triggers[2].dt == -timedelta(days=1) and triggers[2].params["RELATED"] == "END"
    assert due.reminders[2].remind_at == local(2027, 3, 27, 9, 0)


def test_text_round_trips_through_the_library_escaping():
    title = "Call Ann, Bob; then\\ write ✓"
    body = ical.render([task(title=title, description="line 1\nline 2, more")], as_events=False)
    assert b"SUMMARY:Call Ann\\, Bob\\; then\\\\ write" in body  # RFC 5545 §3.3.11 escapes
    [todo] = icalendar.Calendar.from_ical(body).walk("VTODO")
    assert str(todo["SUMMARY"]) == title
    assert str(todo["DESCRIPTION"]) == "line 1\nline 2, more"


def test_the_same_tasks_give_the_same_bytes():
    tasks = [
        task(
            due_at="2027-03-26T09:00:00+01:00",
            timezone="Europe/Berlin",
            recurrence={"rrule": "FREQ=MONTHLY;BYMONTHDAY=1"},
            tags=["home"],
        ),
        task(title="no due"),
    ]
    assert ical.render(tasks, as_events=False) == ical.render(tasks, as_events=False)
    assert b"BEGIN:VTIMEZONE" in ical.render(tasks, as_events=False)

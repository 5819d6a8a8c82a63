"""Tasks as an RFC 5545 calendar (the calendar feed), built with the icalendar library.

A task becomes a VTODO (or, for calendars that show no tasks, a VEVENT at its due time). A
recurring task is its series from the current instance on: DTSTART at the instance's place in the
series, the rule with COUNT reduced by the occurrences already past, UNTIL as an instant, EXDATEs;
when the instance was moved off that place (rescheduled), an override with RECURRENCE-ID says
where it is. The component's UID is the series' id, so completing an instance updates the one
series a calendar shows instead of adding a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event, Todo, vDuration, vRecur

from dueflow.domain import recurrence as rules
from dueflow.domain.durations import parse_duration, to_utc
from dueflow.domain.task import Reminder, Task

PRODID = "-//dueflow//calendar feed//EN"
#: RFC 5545 §3.8.1.9: 1 is the highest priority, 9 the lowest; 1-4 high, 5 medium, 6-9 low.
PRIORITY = {"low": 9, "medium": 5, "high": 1}  # "none" has no PRIORITY (0, undefined)
#: How often a calendar app should fetch the feed again (RFC 7986 REFRESH-INTERVAL), matching the
#: response's Cache-Control max-age: a change shows within minutes, not the hours apps default to.
REFRESH = timedelta(minutes=5)
# VTIMEZONE rules cover the feed's dates from this long before its earliest to this many years
# after its latest: what calendar apps expand, a kilobyte or two per zone rather than decades.
_ZONE_MARGIN = timedelta(days=366)
_ZONE_YEARS = 10


def render(tasks: Iterable[Task], *, as_events: bool) -> bytes:
    """The calendar of `tasks` (open ones): VTODOs, or with `as_events` a VEVENT per task with a
    due date. The bytes depend on the tasks alone, so their hash is a stable ETag."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("name", "dueflow")  # RFC 7986; X-WR-CALNAME for the apps that only read that
    cal.add("x-wr-calname", "dueflow")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", vDuration(REFRESH))  # what Apple and Outlook read
    instants: list[datetime] = []
    for task in tasks:
        if as_events and task.due_at is None:
            continue
        for component in components(task, as_events=as_events):
            cal.add_component(component)
        instants += _instants(task)
    if instants:  # zone rules from a year before the earliest date to years after the latest
        first = (min(instants) - _ZONE_MARGIN).date()
        cal.add_missing_timezones(first, date(max(instants).year + _ZONE_YEARS, 1, 1))
    return cal.to_ical()


def components(task: Task, *, as_events: bool = False) -> list[Todo | Event]:
    """The task's calendar components: one, or a series and the override moving its first
    instance when that instance was rescheduled."""
    kind = Event if as_events else Todo
    main = kind()
    main.add("uid", task.series_id if _repeats(task) else task.id)
    main.add("dtstamp", task.updated_at)  # no METHOD REQUEST: DTSTAMP is the last revision
    main.add("created", task.created_at)
    main.add("last-modified", task.updated_at)
    main.add("summary", task.title)
    if task.description:
        main.add("description", task.description)
    if task.priority in PRIORITY:
        main.add("priority", PRIORITY[task.priority])
    if task.tags:
        main.add("categories", list(task.tags))
    if as_events:
        main.add("status", "CONFIRMED")
        main.add("transp", "TRANSPARENT")  # a due time does not make the user busy
    else:
        main.add("status", "NEEDS-ACTION")
    if task.due_at is None:
        _add_alarms(main, task, as_events)
        return [main]
    if not _repeats(task):
        _set_time(main, _local(task.due_at, task.timezone), as_events)
        _add_alarms(main, task, as_events)
        return [main]
    anchor = task.recurrence.anchor or rules.local_wall_clock(task.due_at, task.timezone)
    start = _local(to_utc(anchor, task.timezone), task.timezone)
    _set_time(main, start, as_events)
    main.add("rrule", series_rule(task))
    if exdates := [_local(d, task.timezone) for d in task.recurrence.exdates if d > start]:
        main.add("exdate", exdates)
    _add_alarms(main, task, as_events)
    if to_utc(anchor, task.timezone) == task.due_at:
        return [main]
    moved = main.copy()  # this instance, moved: same UID, RECURRENCE-ID = where the rule puts it
    for name in ("RRULE", "EXDATE", "DTSTART", "DUE"):
        moved.pop(name, None)
    moved.add("recurrence-id", start)
    _set_time(moved, _local(task.due_at, task.timezone), as_events)
    for alarm in main.subcomponents:
        moved.add_component(alarm)
    return [main, moved]


def series_rule(task: Task) -> vRecur:
    """The series' rule as seen from the current instance: COUNT less the positions already
    past (EXDATEs count, as in RFC 5545), UNTIL as the UTC instant dueflow applies (a date UNTIL
    includes that whole local day, and RFC 5545 wants UTC with a zoned DTSTART)."""
    parts = rules.parse_rule(task.recurrence.rrule)
    rule = vRecur.from_ical(rules.canonical(parts))
    if "COUNT" in parts:
        rule["COUNT"] = [max(int(parts["COUNT"]) - task.recurrence.index + 1, 1)]
    if "UNTIL" in parts:
        rule["UNTIL"] = [rules.until_instant(parts, task.timezone)]
    return rule


def _repeats(task: Task) -> bool:
    """A series a calendar can expand: a rule on the due date. Completion-based series are not
    (each next date depends on when the task gets done), so only their current instance shows."""
    rec = task.recurrence
    return rec is not None and rec.basis == "due" and task.due_at is not None


def _set_time(component: Todo | Event, when: datetime, as_events: bool) -> None:
    component.add("dtstart", when)
    if not as_events:  # a VTODO's DUE; a VEVENT without DTEND ends when it starts (§3.6.1)
        component.add("due", when)


def _add_alarms(component: Todo | Event, task: Task, as_events: bool) -> None:
    for reminder in task.reminders:
        component.add_component(_alarm(task, reminder, as_events))


def _alarm(task: Task, reminder: Reminder, as_events: bool) -> Alarm:
    """DISPLAY alarm. A reminder "before" the due time is a trigger relative to it (DUE, a
    VTODO's end; an event's DTSTART), so each instance of a series has it; one "at" an instant
    is an absolute trigger at the time it fires (its snoozed time, if snoozed). RFC 5545
    durations have no months or years, and a trigger's time part of a day or more would be
    written as calendar days (P1D, not PT24H): such a reminder is given as its instant."""
    alarm = Alarm()
    alarm.add("uid", reminder.id)
    alarm.add("action", "DISPLAY")
    alarm.add("description", task.title)
    offset = _before(reminder)
    if offset is None:
        alarm.add("trigger", reminder.remind_at.astimezone(UTC))
    elif as_events:
        alarm.add("trigger", -offset)
    else:
        alarm.add("trigger", -offset, parameters={"RELATED": "END"})
    return alarm


def _before(reminder: Reminder) -> timedelta | None:
    if reminder.before is None:
        return None
    duration = parse_duration(reminder.before, "reminders")
    if duration.years or duration.months or duration.exact >= timedelta(days=1):
        return None
    return timedelta(days=duration.days) + duration.exact


def _local(instant: datetime, tz_name: str) -> datetime:
    """The instant in the task's zone: icalendar writes it with TZID (and UTC with Z)."""
    zone = UTC if tz_name == "UTC" else ZoneInfo(tz_name)
    return instant.astimezone(zone)


def _instants(task: Task) -> list[datetime]:
    """The task's instants written in its zone (none without a due date: alarms are in UTC)."""
    if task.due_at is None:
        return []
    found = [task.due_at, *(task.recurrence.exdates if task.recurrence else ())]
    if task.recurrence is not None and task.recurrence.anchor is not None:
        found.append(to_utc(task.recurrence.anchor, task.timezone))
    return found

"""Unit tests for dueflow.domain.reminder_schedule: reminder instants from what a client asked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from dueflow.domain.durations import parse_duration
from dueflow.domain.reminder_schedule import ReminderInput, inputs_of, schedule_reminders
from dueflow.domain.task import Task


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NOW, DUE, AT = utc(2026, 11, 1, 12), utc(2026, 12, 1, 9), utc(2026, 11, 30, 18)


def task(due_at=DUE, status="open", timezone="Europe/Berlin") -> Task:
    return Task(
        id="t1", user_id="u1", title="t", created_at=NOW, updated_at=NOW,
        due_at=due_at, status=status, timezone=timezone,
    )  # fmt: skip


def before(text: str) -> ReminderInput:
    return ReminderInput(before=parse_duration(text, "before"))


def test_instants_come_from_the_due_date_or_the_given_instant():
    # P1D before 10:00 Berlin (09:00 UTC) is the day before at the same wall-clock time
    day, at = schedule_reminders(task(), (before("P1D"), ReminderInput(at=AT)), (), NOW)
    assert (day.remind_at, day.before, day.at) == (utc(2026, 11, 30, 9), "P1D", None)
    assert (at.remind_at, at.before, at.at) == (AT, None, AT)
    assert day.status == at.status == "scheduled"
    assert day.id != at.id


def test_a_done_task_gets_canceled_reminders():
    (reminder,) = schedule_reminders(task(status="done"), (before("PT1H"),), (), NOW)
    assert reminder.status == "canceled"


def test_an_unmoved_reminder_is_kept_as_it_is_and_a_moved_one_keeps_its_id_and_re_arms():
    first = task()
    relative, absolute = schedule_reminders(first, (before("PT1H"), ReminderInput(at=AT)), (), NOW)
    sent = tuple(replace(r, status="sent", emitted_at=NOW) for r in (relative, absolute))
    moved = first.with_changes(due_at=utc(2026, 12, 2, 9))
    again_relative, again_absolute = schedule_reminders(moved, inputs_of(sent), sent, NOW)
    assert again_absolute == sent[1]  # same instant: untouched, still sent
    assert again_relative.id == relative.id
    assert again_relative.remind_at == utc(2026, 12, 2, 8)
    assert (again_relative.status, again_relative.emitted_at) == ("scheduled", None)


def test_inputs_of_gives_back_the_specs_and_can_keep_only_the_relative_ones():
    reminders = schedule_reminders(task(), (before("PT15M"), ReminderInput(at=AT)), (), NOW)
    assert inputs_of(reminders) == (before("PT15M"), ReminderInput(at=AT))
    assert inputs_of(reminders, relative_only=True) == (before("PT15M"),)

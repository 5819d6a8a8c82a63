"""When a task's reminders fire: each reminder's instant from what the client asked for (a
duration before the due date, or an instant). Pure: `now` is passed in.

lifecycle calls this whenever a task's reminders or the due date and time zone they hang on
change; the reminders function later claims what is due (service.reminders).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from dueflow.domain.durations import Duration, parse_duration
from dueflow.domain.task import Reminder, Task, new_id


@dataclass(frozen=True)
class ReminderInput:
    """One reminder as a client asks for it: `before` the due date, or `at` an instant."""

    before: Duration | None = None
    at: datetime | None = None


def schedule_reminders(
    task: Task, inputs: tuple[ReminderInput, ...], existing: tuple[Reminder, ...], now: datetime
) -> tuple[Reminder, ...]:
    """Reminders for `task`, keeping the id and status of an existing reminder with the same spec.

    A reminder whose time moves goes back to `scheduled` (if the task is open), so moving a due
    date re-arms its relative reminders.
    """
    pool = list(existing)
    out = []
    for spec in inputs:
        before = spec.before.text if spec.before is not None else None
        remind_at = (
            spec.at
            if spec.at is not None
            else spec.before.subtract_from(task.due_at, task.timezone)
        )
        fresh = Reminder(
            id=new_id(),
            remind_at=remind_at,
            before=before,
            at=spec.at,
            status="scheduled" if task.status == "open" else "canceled",
        )
        match = next((r for r in pool if r.same_spec(fresh)), None)
        if match is not None:
            pool.remove(match)
            moved = match.remind_at != remind_at
            fresh = replace(fresh, id=match.id) if moved else match
        out.append(fresh)
    return tuple(out)


def inputs_of(
    reminders: tuple[Reminder, ...], *, relative_only: bool = False
) -> tuple[ReminderInput, ...]:
    """What the client asked for to get these reminders (to schedule them again)."""
    return tuple(_as_input(r) for r in reminders if not relative_only or r.before is not None)


def _as_input(reminder: Reminder) -> ReminderInput:
    if reminder.before is not None:
        return ReminderInput(before=parse_duration(reminder.before, "reminders"))
    return ReminderInput(at=reminder.at)

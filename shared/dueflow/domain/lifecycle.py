"""What happens to a task: create, merge-patch, complete, reopen. Pure: `now` is passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from dueflow.domain.durations import parse_duration
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.task import Reminder, Task, new_id
from dueflow.domain.validation import ReminderInput


def new_task(user_id: str, fields: dict[str, Any], now: datetime) -> Task:
    """A new open task from validated create fields (see validation.parse_create)."""
    _check_consistency(fields["due_at"], fields["recurrence"], fields["reminders"])
    recurring = fields["recurrence"] is not None
    task = Task(
        id=new_id(),
        user_id=user_id,
        title=fields["title"],
        created_at=now,
        updated_at=now,
        description=fields["description"],
        priority=fields["priority"],
        tags=fields["tags"],
        due_at=fields["due_at"],
        timezone=fields["timezone"],
        recurrence=fields["recurrence"],
        series_id=new_id() if recurring else None,
        occurrence=1 if recurring else None,
    )
    return task.with_changes(reminders=schedule_reminders(task, fields["reminders"], (), now))


def apply_patch(task: Task, patch: dict[str, Any], now: datetime) -> tuple[Task, list[str]]:
    """Apply a validated merge patch; returns the new task and the names of fields that changed."""
    due_at = patch.get("due_at", task.due_at)
    recurrence = patch.get("recurrence", task.recurrence)
    reminder_inputs = patch.get("reminders")
    if reminder_inputs is None:
        reminder_inputs = tuple(_as_input(r) for r in task.reminders)
    _check_consistency(due_at, recurrence, reminder_inputs, patched=patch.keys())
    changes = {k: v for k, v in patch.items() if k != "reminders"}
    if recurrence is not None and task.series_id is None:
        changes.update(series_id=new_id(), occurrence=1)
    candidate = task.with_changes(**changes)
    reminders = schedule_reminders(candidate, reminder_inputs, task.reminders, now)
    candidate = candidate.with_changes(reminders=reminders)
    changed = [
        name
        for name in (
            "title",
            "description",
            "priority",
            "tags",
            "due_at",
            "timezone",
            "recurrence",
            "reminders",
        )
        if getattr(candidate, name) != getattr(task, name)
    ]
    if not changed:
        return task, []
    return candidate.with_changes(updated_at=now), changed


def complete(task: Task, now: datetime) -> tuple[Task, bool]:
    """Mark done and cancel pending reminders; (task, False) if it was already done."""
    if task.status == "done":
        return task, False
    reminders = tuple(
        replace(r, status="canceled") if r.status == "scheduled" else r for r in task.reminders
    )
    return task.with_changes(
        status="done", completed_at=now, updated_at=now, reminders=reminders
    ), True


def reopen(task: Task, now: datetime) -> tuple[Task, bool]:
    """Mark open again and reschedule canceled reminders that are still in the future."""
    if task.status == "open":
        return task, False
    reminders = tuple(
        replace(r, status="scheduled") if r.status == "canceled" and r.remind_at > now else r
        for r in task.reminders
    )
    return task.with_changes(
        status="open", completed_at=None, updated_at=now, reminders=reminders
    ), True


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
            fresh = Reminder(
                id=match.id,
                remind_at=remind_at,
                before=before,
                at=spec.at,
                status=fresh.status if moved else match.status,
            )
        out.append(fresh)
    return tuple(out)


def _check_consistency(due_at, recurrence, reminder_inputs, patched=()) -> None:
    errors = []
    if recurrence is not None and due_at is None:
        errors.append(FieldError("due_at", "a recurring task needs a due date"))
    for i, spec in enumerate(reminder_inputs):
        if spec.before is not None and due_at is None:
            field = (
                "due_at"
                if "due_at" in patched and "reminders" not in patched
                else f"reminders.{i}.before"
            )
            errors.append(FieldError(field, "a reminder relative to the due date needs a due date"))
    if errors:
        raise ValidationFailed(list(dict.fromkeys(errors)))


def _as_input(reminder: Reminder) -> ReminderInput:
    if reminder.before is not None:
        return ReminderInput(before=parse_duration(reminder.before, "reminders"))
    return ReminderInput(at=reminder.at)

"""What happens to a task: create, merge-patch, complete, reopen. Pure: `now` is passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dueflow.domain import recurrence as recurrence_rules
from dueflow.domain.errors import Conflict, FieldError, NotFound, ValidationFailed
from dueflow.domain.reminder_schedule import inputs_of, schedule_reminders
from dueflow.domain.task import EDITABLE_FIELDS, Recurrence, Task, new_id
from dueflow.domain.validation import UNSET, TaskFields, TaskPatch


def new_task(user_id: str, fields: TaskFields, now: datetime) -> Task:
    """A new open task from validated create fields (see validation.parse_create)."""
    _check_consistency(fields.due_at, fields.recurrence, fields.reminders, fields.timezone)
    recurrence = fields.recurrence
    recurring = recurrence is not None
    if recurring:
        recurrence = _anchored(recurrence, fields.due_at, fields.timezone, index=1)
    task = Task(
        id=new_id(),
        user_id=user_id,
        title=fields.title,
        created_at=now,
        updated_at=now,
        description=fields.description,
        priority=fields.priority,
        tags=fields.tags,
        due_at=fields.due_at,
        timezone=fields.timezone,
        recurrence=recurrence,
        series_id=new_id() if recurring else None,
        occurrence=1 if recurring else None,
    )
    if not fields.reminders:
        return task
    return task.with_changes(reminders=schedule_reminders(task, fields.reminders, (), now))


def apply_patch(task: Task, patch: TaskPatch, now: datetime) -> tuple[Task, list[str]]:
    """Apply a validated merge patch; returns the new task and the names of fields that changed."""
    due_at = task.due_at if patch.due_at is UNSET else patch.due_at
    recurrence = task.recurrence if patch.recurrence is UNSET else patch.recurrence
    timezone = task.timezone if patch.timezone is UNSET else patch.timezone
    if patch.reminders is UNSET:
        reminder_inputs = inputs_of(task.reminders)
    else:
        reminder_inputs = patch.reminders
    patched = patch.changes()
    _check_consistency(due_at, recurrence, reminder_inputs, timezone, patched=patched.keys())
    changes = {k: v for k, v in patched.items() if k != "reminders"}
    if recurrence is not None and task.series_id is None:
        changes.update(series_id=new_id(), occurrence=1)
    if recurrence is not None and (
        task.recurrence is None
        or due_at != task.due_at
        or timezone != task.timezone
        or recurrence.rrule != task.recurrence.rrule
    ):
        # the series is redefined from this instance on; COUNT keeps counting where it was
        index = task.recurrence.index if task.recurrence is not None else 1
        changes["recurrence"] = _anchored(recurrence, due_at, timezone, index=index)
    elif recurrence is not None:
        changes["recurrence"] = replace(
            recurrence, anchor=task.recurrence.anchor, index=task.recurrence.index
        )
    candidate = task.with_changes(**changes)
    reminders = task.reminders  # untouched unless their inputs move (keeps snoozes)
    if "reminders" in patched or due_at != task.due_at or timezone != task.timezone:
        reminders = schedule_reminders(candidate, reminder_inputs, task.reminders, now)
    candidate = candidate.with_changes(reminders=reminders)
    changed = [n for n in EDITABLE_FIELDS if _visible(candidate, n) != _visible(task, n)]
    if not changed:
        return task, []
    return candidate.with_changes(updated_at=now), changed


def next_instance(task: Task, completed_at: datetime, now: datetime) -> Task | None:
    """The series' next instance after `task` was completed at `completed_at`; None if it ended.

    basis "due": the first occurrence strictly after max(due_at, completed_at), so missed
    occurrences are skipped, not piled up. basis "completion": the rule re-anchored on the
    completion date at the instance's wall-clock time, one step on.
    """
    occurrence = _following(task, completed_at)
    if occurrence is None:
        return None
    recurrence = replace(task.recurrence, anchor=occurrence.anchor, index=occurrence.index)
    instance = Task(
        id=new_id(),
        user_id=task.user_id,
        title=task.title,
        created_at=now,
        updated_at=now,
        description=task.description,
        priority=task.priority,
        tags=task.tags,
        due_at=occurrence.due_at,
        timezone=task.timezone,
        recurrence=recurrence,
        series_id=task.series_id,
        occurrence=(task.occurrence or 1) + 1,
    )
    relative = inputs_of(task.reminders, relative_only=True)
    return instance.with_changes(reminders=schedule_reminders(instance, relative, (), now))


def reschedule(task: Task, due_at: datetime, now: datetime) -> tuple[Task, list[str]]:
    """Move one instance to `due_at`. Unlike a patch of `due_at`, which redefines a series from
    this instance on, the series keeps its anchor: the next instance after this one comes at the
    time the rule gives, as if this one had not moved."""
    if task.status != "open":
        raise Conflict("a completed task cannot be rescheduled; reopen it first")
    moved, changed = apply_patch(task, TaskPatch(due_at=due_at), now)
    if task.recurrence is not None and changed:
        moved = moved.with_changes(recurrence=task.recurrence)
    return moved, changed


def skip(task: Task, now: datetime) -> Task:
    """Move an open recurring task to its series' next occurrence without completing it."""
    if task.recurrence is None:
        raise ValidationFailed([FieldError("recurrence", "only a recurring task can be skipped")])
    if task.status != "open":
        raise Conflict("a completed task cannot be skipped; reopen it first")
    occurrence = _following(task, now)
    if occurrence is None:
        raise Conflict("the series has no further occurrence")
    moved = task.with_changes(
        due_at=occurrence.due_at,
        occurrence=(task.occurrence or 1) + 1,
        recurrence=replace(task.recurrence, anchor=occurrence.anchor, index=occurrence.index),
        updated_at=now,
    )
    inputs = inputs_of(task.reminders)
    return moved.with_changes(reminders=schedule_reminders(moved, inputs, task.reminders, now))


def _following(task: Task, completed_at: datetime) -> recurrence_rules.Occurrence | None:
    rec = task.recurrence
    anchor = rec.anchor or recurrence_rules.local_wall_clock(task.due_at, task.timezone)
    if rec.basis == "completion":
        day = recurrence_rules.local_wall_clock(completed_at, task.timezone).date()
        anchor = datetime.combine(day, anchor.time())
        after = recurrence_rules.to_utc(anchor, task.timezone)
    else:
        after = max(task.due_at, completed_at)
    return recurrence_rules.next_occurrence(
        rec.rrule, task.timezone, anchor, rec.index, after, rec.exdates
    )


def _visible(task: Task, name: str):
    value = getattr(task, name)  # the series position is not part of what a client sees
    return value.to_json() if name == "recurrence" and value is not None else value


def _anchored(recurrence: Recurrence, due_at: datetime, timezone: str, *, index: int) -> Recurrence:
    anchor = recurrence_rules.local_wall_clock(due_at, timezone)
    return replace(recurrence, anchor=anchor, index=index)


def snooze(task: Task, reminder_id: str, until: datetime, now: datetime) -> Task:
    """Fire one reminder again at `until` (after it was sent, or to postpone it)."""
    if task.status != "open":
        raise Conflict("the task is done: its reminders are canceled")
    if until <= now:
        raise ValidationFailed([FieldError("until", "must be in the future")])
    if not any(r.id == reminder_id for r in task.reminders):
        raise NotFound(f"no reminder {reminder_id}")
    reminders = tuple(
        replace(r, remind_at=until, status="scheduled", emitted_at=None)
        if r.id == reminder_id
        else r
        for r in task.reminders
    )
    return task.with_changes(reminders=reminders, updated_at=now)


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
        replace(r, status="scheduled", emitted_at=None)
        if r.status == "canceled" and r.remind_at > now
        else r
        for r in task.reminders
    )
    return task.with_changes(
        status="open", completed_at=None, updated_at=now, reminders=reminders
    ), True


def _check_consistency(due_at, recurrence, reminder_inputs, timezone, patched=()) -> None:
    errors = []
    if recurrence is not None and due_at is None:
        errors.append(FieldError("due_at", "a recurring task needs a due date"))
    elif recurrence is not None:
        try:
            recurrence_rules.check_rule(recurrence.rrule, due_at, timezone)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
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

"""What a reminder e-mail says. Pure: the notify function sends what this composes."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.timefmt import parse_instant, parse_timezone


@dataclass(frozen=True)
class ReminderDue:
    """The data of a dev.dueflow.reminder.due event, checked."""

    user_id: str
    task_id: str
    reminder_id: str
    remind_at: datetime
    title: str
    due_at: datetime | None
    timezone: str
    late: bool

    @functools.cached_property  # used several times per e-mail; the instance is frozen
    def key(self) -> str:
        """Names this reminder instance (a snoozed reminder is a new instance)."""
        return f"r-{self.reminder_id}-{self.remind_at.strftime('%Y%m%dT%H%M%SZ')}"

    @property
    def message_id(self) -> str:
        return f"<{self.key}@dueflow>"

    def as_dict(self) -> dict:
        return {
            "user_id": self.user_id,
            "task_id": self.task_id,
            "reminder_id": self.reminder_id,
            "remind_at": self.remind_at,
        }


MAX_BATCH = 1000  # reminders in one reminders.due event (the tick's batch is at most this)


def parse_reminder_due(data: object, where: str = "data") -> ReminderDue:
    """The data of a reminder.due event (or one item of a reminders.due batch, named `where`)."""
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError(where, "must be an object")])
    try:
        due_at = data.get("due_at")
        late = data.get("late", False)
        if not isinstance(late, bool):
            raise ValidationFailed([FieldError(f"{where}.late", "must be true or false")])
        return ReminderDue(
            user_id=_text(data, where, "user_id"),
            task_id=_uuid(data, where, "task_id"),
            reminder_id=_uuid(data, where, "reminder_id"),
            remind_at=parse_instant(data.get("remind_at"), f"{where}.remind_at"),
            title=_text(data, where, "title"),
            due_at=parse_instant(due_at, f"{where}.due_at") if due_at is not None else None,
            timezone=parse_timezone(data.get("timezone"), f"{where}.timezone"),
            late=late,
        )
    except KeyError as exc:
        raise ValidationFailed([FieldError(f"{where}.{exc.args[0]}", "is required")]) from None


def parse_reminders_due(data: object) -> list[ReminderDue]:
    """The reminders of a reminders.due event, checked as a whole: one bad item rejects the
    batch (nothing is sent), and every bad item is named. A reminder instance listed twice is
    kept once."""
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("data", "must be an object")])
    items = data.get("reminders")
    if not isinstance(items, list) or not items:
        raise ValidationFailed([FieldError("data.reminders", "must be a non-empty array")])
    if len(items) > MAX_BATCH:
        raise ValidationFailed(
            [FieldError("data.reminders", f"must have at most {MAX_BATCH} items")]
        )
    unknown = sorted(set(data) - {"reminders"})
    errors = [FieldError(f"data.{name}", "is not a known field") for name in unknown]
    dues: dict[str, ReminderDue] = {}
    for i, item in enumerate(items):
        try:
            due = parse_reminder_due(item, f"data.reminders[{i}]")
        except ValidationFailed as exc:
            errors += exc.errors
            continue
        dues.setdefault(due.key, due)
    if errors:
        raise ValidationFailed(errors)
    return list(dues.values())


def compose(due: ReminderDue, late: bool) -> tuple[str, str]:
    """Subject and plain-text body. Times are shown in the task's own time zone."""
    subject = f"Reminder: {due.title}"
    lines = [f"Reminder: {due.title}", ""]
    if due.due_at is not None:
        lines.append(f"Due {_local(due.due_at, due.timezone)}.")
    else:
        lines.append("This task has no due date.")
    if late:
        subject += " (late)"
        lines += [
            "",
            f"This reminder is late: it was meant for {_local(due.remind_at, due.timezone)}"
            ", but dueflow could not send it then.",
        ]
    lines += ["", "— dueflow"]
    return subject, "\n".join(lines) + "\n"


def _local(instant: datetime, tz_name: str) -> str:
    local = instant.astimezone(ZoneInfo(tz_name))
    return f"{local:%A, %-d %B %Y at %H:%M} {local.tzname()} ({tz_name})"


def _text(data: dict, where: str, name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise ValidationFailed([FieldError(f"{where}.{name}", "must be a non-empty string")])
    return value


def _uuid(data: dict, where: str, name: str) -> str:
    """An id as the database stores it (PostgreSQL would reject anything else with a 500)."""
    try:
        return str(uuid.UUID(_text(data, where, name)))
    except ValueError:
        raise ValidationFailed([FieldError(f"{where}.{name}", "must be a UUID")]) from None

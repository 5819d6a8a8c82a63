"""What a reminder e-mail says. Pure: the notify function sends what this composes."""

from __future__ import annotations

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

    @property
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


def parse_reminder_due(data: object) -> ReminderDue:
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("data", "must be an object")])
    try:
        due_at = data.get("due_at")
        late = data.get("late", False)
        if not isinstance(late, bool):
            raise ValidationFailed([FieldError("data.late", "must be true or false")])
        return ReminderDue(
            user_id=_text(data, "user_id"),
            task_id=_uuid(data, "task_id"),
            reminder_id=_uuid(data, "reminder_id"),
            remind_at=parse_instant(data.get("remind_at"), "data.remind_at"),
            title=_text(data, "title"),
            due_at=parse_instant(due_at, "data.due_at") if due_at is not None else None,
            timezone=parse_timezone(data.get("timezone"), "data.timezone"),
            late=late,
        )
    except KeyError as exc:
        raise ValidationFailed([FieldError(f"data.{exc.args[0]}", "is required")]) from None


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


def _text(data: dict, name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value:
        raise ValidationFailed([FieldError(f"data.{name}", "must be a non-empty string")])
    return value


def _uuid(data: dict, name: str) -> str:
    """An id as the database stores it (PostgreSQL would reject anything else with a 500)."""
    try:
        return str(uuid.UUID(_text(data, name)))
    except ValueError:
        raise ValidationFailed([FieldError(f"data.{name}", "must be a UUID")]) from None

"""The task aggregate: a task, its recurrence and its reminders, and their JSON form."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from dueflow.domain.timefmt import format_instant

PRIORITIES = ("none", "low", "medium", "high")  # index = rank: sorting puts high first
STATUSES = ("open", "done")
REMINDER_STATUSES = ("scheduled", "sent", "canceled", "failed")
EDITABLE_FIELDS = (
    "title",
    "description",
    "priority",
    "tags",
    "due_at",
    "timezone",
    "recurrence",
    "reminders",
)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Recurrence:
    rrule: str
    basis: str = "due"  # "due" | "completion"
    exdates: tuple[datetime, ...] = ()
    # Server-kept position in the series (see recurrence.next_occurrence): the wall-clock time of
    # this instance's occurrence and its place in the rule's expansion (what COUNT counts).
    anchor: datetime | None = None
    index: int = 1

    def to_json(self) -> dict:
        return {
            "rrule": self.rrule,
            "basis": self.basis,
            "exdates": [format_instant(d) for d in self.exdates],
        }

    def to_storage(self) -> dict:
        anchor = self.anchor.isoformat() if self.anchor is not None else None
        return {**self.to_json(), "anchor": anchor, "index": self.index}


@dataclass(frozen=True)
class Reminder:
    id: str
    remind_at: datetime
    before: str | None = None  # ISO 8601 duration before due_at, or
    at: datetime | None = None  # an absolute instant
    status: str = "scheduled"
    # server-kept: when a tick emitted reminder.due for the current remind_at (None: not yet)
    emitted_at: datetime | None = None

    def same_spec(self, other: Reminder) -> bool:
        return (self.before, self.at) == (other.before, other.at)

    def to_json(self) -> dict:
        spec = (
            {"before": self.before} if self.before is not None else {"at": format_instant(self.at)}
        )
        return {
            "id": self.id,
            **spec,
            "remind_at": format_instant(self.remind_at),
            "status": self.status,
        }


@dataclass(frozen=True)
class Task:
    id: str
    user_id: str
    title: str
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    status: str = "open"
    priority: str = "none"
    tags: tuple[str, ...] = ()
    due_at: datetime | None = None
    timezone: str = "UTC"
    recurrence: Recurrence | None = None
    reminders: tuple[Reminder, ...] = field(default=())
    series_id: str | None = None
    occurrence: int | None = None
    completed_at: datetime | None = None

    @property
    def priority_rank(self) -> int:
        return PRIORITIES.index(self.priority)

    def with_changes(self, **changes) -> Task:
        return replace(self, **changes)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "status": self.status,
            "priority": self.priority,
            "tags": list(self.tags),
            "due_at": format_instant(self.due_at),
            "timezone": self.timezone,
            "recurrence": self.recurrence.to_json() if self.recurrence else None,
            "reminders": [r.to_json() for r in self.reminders],
            "series_id": self.series_id,
            "occurrence": self.occurrence,
            "completed_at": format_instant(self.completed_at),
            "created_at": format_instant(self.created_at),
            "updated_at": format_instant(self.updated_at),
        }

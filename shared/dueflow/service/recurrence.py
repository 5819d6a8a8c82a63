"""The recurrence function's use case: a completed instance of a series begets the next one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from dueflow.domain import events, lifecycle
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.timefmt import parse_instant
from dueflow.service.outcome import Outcome, done, duplicate
from dueflow.service.ports import UnitOfWorkFactory
from dueflow.service.tasks import utcnow


class RecurrenceService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Callable[[], datetime] = utcnow,
        on_commit: Callable[[], None] = lambda: None,
    ):
        self.uow_factory = uow_factory
        self.clock = clock
        self.on_commit = on_commit

    def on_task_completed(self, data: object) -> Outcome:
        """Create the next instance for a `dev.dueflow.task.completed` event; says what it did.

        Idempotent: the instance's (series_id, occurrence) is unique, so a redelivered or
        out-of-order event, or two racing completions, cannot create a second one."""
        user_id, task_id, completed_at = _completion(data)
        with self.uow_factory() as uow:
            task = uow.tasks.get(user_id, task_id)
            if task is None:
                return done("task gone")
            if task.recurrence is None or task.due_at is None:
                return done("not recurring")
            if task.status != "done":
                return done("reopened since: no next instance")  # the completion was undone
            now = self.clock()
            instance = lifecycle.next_instance(task, completed_at, now)
            if instance is None:
                return done("series ended")
            if not uow.tasks.add_if_absent(instance):
                return duplicate("next instance exists")
            uow.outbox.add(events.task_event(events.TASK_CREATED, instance, now), now)
            uow.commit()
        self.on_commit()
        return done("next instance created")


def _completion(data: object) -> tuple[str, str, datetime]:
    try:
        task = data["task"]
        user_id, task_id, completed_at = data["user_id"], task["id"], task["completed_at"]
    except (TypeError, KeyError):
        raise ValidationFailed([FieldError("data", "not a task.completed payload")]) from None
    if not isinstance(user_id, str) or not user_id:
        raise ValidationFailed([FieldError("data.user_id", "must be a non-empty string")])
    try:
        task_id = str(uuid.UUID(task_id))
    except (ValueError, TypeError, AttributeError):
        raise ValidationFailed([FieldError("data.task.id", "must be a UUID")]) from None
    return user_id, task_id, parse_instant(completed_at, "data.task.completed_at")

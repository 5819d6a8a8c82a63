"""The CloudEvents dueflow emits, built as plain structured-mode dicts (the outbox stores them).

Adapters turn these into HTTP or Kafka messages; the domain needs no CloudEvents library.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from dueflow.domain.task import Task
from dueflow.domain.timefmt import format_instant

TASKS_SOURCE = "/dueflow/tasks"
TASK_CREATED = "dev.dueflow.task.created"
TASK_UPDATED = "dev.dueflow.task.updated"
TASK_COMPLETED = "dev.dueflow.task.completed"
TASK_REOPENED = "dev.dueflow.task.reopened"
TASK_DELETED = "dev.dueflow.task.deleted"
SCHEMA_VERSION = 1


def dataschema(event_type: str, version: int = SCHEMA_VERSION) -> str:
    """The versioned schema id; the JSON Schema files in dueflow/schemas/events carry it as $id."""
    return f"urn:dueflow:schema:{event_type}:{version}"


def task_event(
    event_type: str, task: Task, now: datetime, changed: list[str] | None = None
) -> dict:
    """A task lifecycle event. Data carries the task and its owner's id, never tokens or e-mail."""
    data: dict = {"user_id": task.user_id, "task": task.to_json()}
    if event_type == TASK_UPDATED:
        data["changed"] = list(changed or [])
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": TASKS_SOURCE,
        "type": event_type,
        "subject": task.id,
        "time": format_instant(now),
        "datacontenttype": "application/json",
        "dataschema": dataschema(event_type),
        "partitionkey": task.id,  # Kafka record key: per-task order survives partitioning
        "data": data,
    }

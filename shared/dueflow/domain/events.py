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
REMINDERS_SOURCE = "/dueflow/reminders"
NOTIFY_SOURCE = "/dueflow/notify"
REMINDER_DUE = "dev.dueflow.reminder.due"
REMINDERS_DUE = "dev.dueflow.reminders.due"  # a batch of reminder.due data: see reminders_due_event
NOTIFICATION_SENT = "dev.dueflow.notification.sent"
NOTIFICATION_FAILED = "dev.dueflow.notification.failed"
NOTIFICATIONS_RECORDED = "dev.dueflow.notifications.recorded"  # the outcomes of one batch
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
    return envelope(event_type, TASKS_SOURCE, task.id, now, data)


TASK_TYPES = (TASK_CREATED, TASK_UPDATED, TASK_COMPLETED, TASK_REOPENED, TASK_DELETED)


def live_change(event: dict) -> dict | None:
    """What the live feed tells a task's owner about a task event, or None for other events:
    `user_id` (whose stream), and the SSE message's data `{"type", "id", "time", "task_id",
    "data"}` where `data` is the task as the API returns it, or `{"id"}` for a deletion."""
    if event.get("type") not in TASK_TYPES:
        return None
    task = event["data"]["task"]
    data = {"id": task["id"]} if event["type"] == TASK_DELETED else task
    return {
        "user_id": event["data"]["user_id"],
        "message": {
            "type": event["type"],
            "id": event["id"],
            "time": event["time"],
            "task_id": task["id"],
            "data": data,
        },
    }


def reminder_due_event(due: dict, now: datetime, late: bool) -> dict:
    """A reminder whose time has come. `due` holds user_id, task_id, reminder_id, remind_at,
    title, due_at and timezone as the tick read them; the address is looked up when sending."""
    return envelope(
        REMINDER_DUE, REMINDERS_SOURCE, due["task_id"], now, reminder_due_data(due, late)
    )


def reminders_due_event(dues: list[tuple[dict, bool]], now: datetime) -> dict:
    """Several reminders whose time has come, each as reminder.due data (with its `late` flag).

    One event per batch, not per reminder: a storm of 10,000 reminders due in the same minute
    is 100 deliveries through the broker, not 10,000 (docs/performance.md). The batch is its
    own partition: nothing orders it after another batch."""
    batch_id = str(uuid.uuid4())
    data = {"reminders": [reminder_due_data(due, late) for due, late in dues]}
    return envelope(REMINDERS_DUE, REMINDERS_SOURCE, batch_id, now, data)


def reminder_due_data(due: dict, late: bool) -> dict:
    return {
        "user_id": due["user_id"],
        "task_id": due["task_id"],
        "reminder_id": due["reminder_id"],
        "remind_at": format_instant(due["remind_at"]),
        "title": due["title"],
        "due_at": format_instant(due["due_at"]),
        "timezone": due["timezone"],
        "late": late,
    }


def notification_event(
    event_type: str, due: dict, backend: str, now: datetime, error: str | None = None
) -> dict:
    """The outcome of e-mailing one reminder instance (sent, or failed for good)."""
    data = {key: due[key] for key in ("user_id", "task_id", "reminder_id")}
    data["remind_at"] = format_instant(due["remind_at"])
    data["backend"] = backend
    if event_type == NOTIFICATION_FAILED:
        data["error"] = (error or "unknown error")[:500]
    return envelope(event_type, NOTIFY_SOURCE, due["task_id"], now, data)


def notifications_recorded_event(outcomes: list[dict], backend: str, now: datetime) -> dict:
    """The outcomes of e-mailing one batch (reminders.due): one entry per reminder instance
    sent or failed for good, in the batch's order. Instances skipped (stale, or recorded by an
    earlier delivery) are not repeated: each instance appears in at most one such event."""
    items = []
    for outcome in outcomes:
        item = {key: outcome[key] for key in ("user_id", "task_id", "reminder_id")}
        item["remind_at"] = format_instant(outcome["remind_at"])
        item["status"] = outcome["status"]
        if outcome["status"] == "failed":
            item["error"] = (outcome.get("error") or "unknown error")[:500]
        items.append(item)
    batch_id = str(uuid.uuid4())
    data = {"backend": backend, "notifications": items}
    return envelope(NOTIFICATIONS_RECORDED, NOTIFY_SOURCE, batch_id, now, data)


def envelope(event_type: str, source: str, task_id: str, now: datetime, data: dict) -> dict:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "subject": task_id,
        "time": format_instant(now),
        "datacontenttype": "application/json",
        "dataschema": dataschema(event_type),
        "partitionkey": task_id,  # Kafka record key: per-task order survives partitioning
        "data": data,
    }

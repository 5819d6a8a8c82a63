"""Which Dapr jobs a task change puts and deletes, when reminders fire as Dapr jobs
(DUEFLOW_REMINDER_JOBS=dapr, docs/reminders.md).

Each scheduled reminder of an open task is one job, named after the reminder (`reminder-<id>`)
and due at its `remind_at`. A job is put (scheduled, replacing any job of that name) when the
reminder appears or its `remind_at` moves, and deleted when the reminder goes away, leaves
`scheduled` or its task leaves `open`. The name is the reminder's, so putting it again replaces
it: a retried or repeated put is harmless, and a move never leaves the old instant behind.

The changes are commands for the Dapr scheduler, written to the outbox in the change's own
transaction as CloudEvent-shaped rows of their own types: the reminders function's job relay
delivers them through the Dapr SDK; no other relay ever sends them to the event sink. A row is
partitioned by the job's name, so a reminder's puts and deletes reach the scheduler in order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from dueflow.domain.task import Task
from dueflow.domain.timefmt import format_instant

JOBS_SOURCE = "/dueflow/reminder-jobs"
JOB_PUT = "dev.dueflow.reminder.job.put"
JOB_DELETE = "dev.dueflow.reminder.job.delete"
JOB_TYPES = (JOB_PUT, JOB_DELETE)
JOB_PREFIX = "reminder-"


@dataclass(frozen=True)
class JobChange:
    """Put job `name` due at `due_at` (with `task_id` and `remind_at` as its data), or delete
    it (`due_at` None)."""

    name: str
    reminder_id: str
    task_id: str
    due_at: datetime | None = None

    @property
    def is_put(self) -> bool:
        return self.due_at is not None


def job_name(reminder_id: str) -> str:
    return f"{JOB_PREFIX}{reminder_id}"


def reminder_of(name: str) -> str | None:
    """The reminder id a job name stands for; None for a name that is not a reminder job's."""
    if not name.startswith(JOB_PREFIX):
        return None
    try:
        return str(uuid.UUID(name[len(JOB_PREFIX) :]))
    except ValueError:
        return None


def _wanted(task: Task | None) -> dict[str, datetime]:
    """reminder id -> remind_at of the reminders that should have a job."""
    if task is None or task.status != "open":
        return {}
    return {r.id: r.remind_at for r in task.reminders if r.status == "scheduled"}


def job_changes(previous: Task | None, current: Task | None) -> list[JobChange]:
    """The jobs to put and delete when `previous` (None: the task is new) becomes `current`
    (None: the task is deleted), deletes first, each group in reminder order."""
    before, after = _wanted(previous), _wanted(current)
    task_id = (current or previous).id if (current or previous) else ""
    deletes = [JobChange(job_name(rid), rid, task_id) for rid in sorted(before) if rid not in after]
    puts = [
        JobChange(job_name(rid), rid, task_id, at)
        for rid, at in sorted(after.items())
        if before.get(rid) != at
    ]
    return deletes + puts


def job_command(change: JobChange, now: datetime) -> dict:
    """The outbox row (a CloudEvent-shaped dict) that asks the job relay for `change`."""
    data: dict = {"name": change.name, "reminder_id": change.reminder_id, "task_id": change.task_id}
    if change.is_put:
        data["due_time"] = format_instant(change.due_at)
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": JOBS_SOURCE,
        "type": JOB_PUT if change.is_put else JOB_DELETE,
        "time": format_instant(now),
        "partitionkey": change.name,
        "datacontenttype": "application/json",
        "data": data,
    }

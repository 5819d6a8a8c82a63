"""Task storage that also schedules each reminder as a Dapr job: while a job relay runs (the
reminders function with DUEFLOW_REMINDER_JOBS=dapr holds its lease), every write of a task
aggregate appends, in the same transaction, the job puts and deletes that
`dueflow.domain.reminder_jobs` derives from the change. Every writer of tasks (the API, commands,
recurrence, the assistant) goes through the repository, so none can forget a job, and none needs
a setting of its own: they follow the job relay's lease (`JobRelayWatch`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.outbox_store import Outbox
from dueflow.adapters.db.schema import leases
from dueflow.adapters.db.task_store import TaskRepository
from dueflow.domain.reminder_jobs import job_changes, job_command
from dueflow.domain.task import Task


class JobSchedulingTasks(TaskRepository):
    """A TaskRepository whose writes also write their reminder jobs' commands to the outbox."""

    def __init__(self, conn: Connection, outbox: Outbox, clock: Callable[[], datetime]):
        super().__init__(conn)
        self.outbox, self.clock = outbox, clock

    def add(self, task: Task) -> None:
        super().add(task)
        self._schedule(None, task)

    def update(self, task: Task, previous: Task) -> None:
        super().update(task, previous)
        self._schedule(previous, task)

    def delete(self, task: Task) -> None:
        super().delete(task)
        self._schedule(task, None)

    def job_commands(self, previous: Task | None, current: Task | None, now: datetime) -> list:
        return [job_command(c, now) for c in job_changes(previous, current)]

    def _schedule(self, previous: Task | None, current: Task | None) -> None:
        now = self.clock()
        if commands := self.job_commands(previous, current, now):
            self.outbox.add_many(commands, now)


class JobRelayWatch:
    """Whether a job relay runs somewhere (its lease `lease_name` is held and fresh), read at
    most every `every` seconds per process: a task write then costs no extra statement. Jobs are
    written only while one runs, so the outbox never fills with commands nobody delivers (no
    Dapr, or reminders back in tick-only mode); a reminder written in the seconds before a
    writer notices a new relay has no job and goes out with the tick, the safety net."""

    def __init__(self, lease_name: str, every: float = 10.0):
        self.lease_name, self.every = lease_name, every
        self._lock = threading.Lock()
        self._known: bool = False
        self._read_at: float | None = None

    def __call__(self, conn: Connection) -> bool:
        """Read on `conn`, the caller's (no second connection: the pool budget stays)."""
        with self._lock:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self.every:
                expires = conn.execute(
                    sa.select(leases.c.expires_at).where(leases.c.name == self.lease_name)
                ).scalar_one_or_none()
                self._known = expires is not None and expires > datetime.now(UTC)
                self._read_at = now
            return self._known

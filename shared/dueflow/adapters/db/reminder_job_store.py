"""Task storage that also schedules each reminder as a Dapr job (DUEFLOW_REMINDER_JOBS=dapr):
every write of a task aggregate appends, in the same transaction, the job puts and deletes that
`dueflow.domain.reminder_jobs` derives from the change. Every writer of tasks (the API, commands,
recurrence, the assistant) goes through the repository, so none can forget a job."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Connection

from dueflow.adapters.db.outbox_store import Outbox
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

    def _schedule(self, previous: Task | None, current: Task | None) -> None:
        if changes := job_changes(previous, current):
            now = self.clock()
            self.outbox.add_many([job_command(c, now) for c in changes], now)

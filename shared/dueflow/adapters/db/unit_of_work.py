"""One database transaction holding the repositories a use case needs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Connection, Engine

from dueflow.adapters.db.calendar_token_store import CalendarTokens
from dueflow.adapters.db.change_log import ChangeLog
from dueflow.adapters.db.command_store import Commands
from dueflow.adapters.db.dead_letter_store import DeadLetters
from dueflow.adapters.db.engine import read_only, writer
from dueflow.adapters.db.outbox_store import Outbox
from dueflow.adapters.db.reminder_store import Reminders
from dueflow.adapters.db.task_store import TaskRepository
from dueflow.adapters.db.user_store import Users
from dueflow.domain.task import Task

TRANSACTION_STATUS_IDLE = 0  # psycopg2's connection.info.transaction_status: no transaction


class UnitOfWork:
    """`with uow:` opens a transaction; `commit()` makes it durable; leaving without commit rolls
    back, so a failed request writes nothing.

    A read-only one (`write=False`) runs each statement on its own on PostgreSQL (autocommit, see
    `engine.read_only`): a read that must see one snapshot across statements uses `write=True`.
    It opens no transaction up front: SQLAlchemy begins one at its first statement (on SQLite,
    BEGIN: later statements share its snapshot), and a one-statement read on the DB-API cursor
    (`direct.DirectSelect`) needs none, which saved a read request 30-45 µs of CPU on SQLite."""

    def __init__(
        self,
        engine: Engine,
        *,
        write: bool,
        reminder_jobs: Callable[[Connection], bool] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._engine = writer(engine) if write else engine
        self._write = write
        self._reminder_jobs, self._clock = reminder_jobs, clock

    def __enter__(self) -> UnitOfWork:
        self.conn = self._engine.connect()
        if not self._write:
            read_only(self.conn)
        self._tx = self.conn.begin() if self._write else None
        self.outbox = Outbox(self.conn)
        if self._reminder_jobs is not None and self._reminder_jobs(self.conn):  # a job relay runs
            from dueflow.adapters.db.reminder_job_store import JobSchedulingTasks

            self.tasks = JobSchedulingTasks(self.conn, self.outbox, self._clock)
        else:
            self.tasks = TaskRepository(self.conn)
        self.users = Users(self.conn)
        self.reminders = Reminders(self.conn)
        self.commands = Commands(self.conn)
        self.dead_letters = DeadLetters(self.conn)
        self.changes = ChangeLog(self.conn)
        self.calendar_tokens = CalendarTokens(self.conn)
        return self

    def add_task(self, task: Task, events: list[dict], now: datetime) -> None:
        """A new task and its events (outbox, change log), written last in this unit.

        PostgreSQL: one statement, whatever ran before it in the unit (a command's dedupe claim,
        the reminder-job relay's lease read): the task's rows, the reminder jobs' commands when
        a job relay runs (`tasks.job_commands`), the events' outbox rows and their change log
        rows. When nothing ran yet the statement runs on its own (autocommit): a create is then
        one round trip instead of three (BEGIN, the statement, COMMIT). A statement is atomic,
        so the unit stays all or nothing either way. SQLite has no data-modifying CTEs: there
        the same rows go in statement by statement, in the unit's transaction."""
        if self.conn.dialect.name != "postgresql":
            self.tasks.add(task)  # the jobs' commands too, as every write of the repository
            self.outbox.add_many(events, now)
            return
        dbapi = self.conn.connection.dbapi_connection
        if not dbapi.autocommit and dbapi.info.transaction_status == TRANSACTION_STATUS_IDLE:
            dbapi.autocommit = True  # commit() then sends nothing; `_checkin` clears the flag
        # the jobs' commands before the events, in the order `tasks.add` writes them
        self.outbox.add_many(self.tasks.job_commands(None, task, now) + events, now, task=task)

    def commit(self) -> None:
        if self._tx is None:  # read-only: what SQLAlchemy began, if anything
            self.conn.commit()
        else:
            self._tx.commit()

    def __exit__(self, *exc) -> None:
        if self._tx is not None and self._tx.is_active:
            self._tx.rollback()
        self.conn.close()  # rolls back what a read-only unit's first statement began


class UnitOfWorkFactory:
    """`reminder_jobs`: asked by each write unit whether task writes also schedule their
    reminders as Dapr jobs (through the outbox, timed by `clock`, the services' clock)."""

    def __init__(
        self,
        engine: Engine,
        *,
        reminder_jobs: Callable[[Connection], bool] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.engine = engine
        self.reminder_jobs, self.clock = reminder_jobs, clock

    def __call__(self, *, write: bool = True) -> UnitOfWork:
        jobs = self.reminder_jobs if write else None
        return UnitOfWork(self.engine, write=write, reminder_jobs=jobs, clock=self.clock)

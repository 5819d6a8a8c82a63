"""One database transaction holding the repositories a use case needs."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from dueflow.adapters.db.calendar_token_store import CalendarTokens
from dueflow.adapters.db.command_store import Commands
from dueflow.adapters.db.dead_letter_store import DeadLetters
from dueflow.adapters.db.engine import writer
from dueflow.adapters.db.outbox_store import Outbox
from dueflow.adapters.db.reminder_store import Reminders
from dueflow.adapters.db.task_store import TaskRepository
from dueflow.adapters.db.user_store import Users


class UnitOfWork:
    """`with uow:` opens a transaction; `commit()` makes it durable; leaving without commit rolls
    back, so a failed request writes nothing."""

    def __init__(self, engine: Engine, *, write: bool):
        self._engine = writer(engine) if write else engine

    def __enter__(self) -> UnitOfWork:
        self.conn = self._engine.connect()
        self._tx = self.conn.begin()
        self.tasks = TaskRepository(self.conn)
        self.outbox = Outbox(self.conn)
        self.users = Users(self.conn)
        self.reminders = Reminders(self.conn)
        self.commands = Commands(self.conn)
        self.dead_letters = DeadLetters(self.conn)
        self.calendar_tokens = CalendarTokens(self.conn)
        return self

    def commit(self) -> None:
        self._tx.commit()

    def __exit__(self, *exc) -> None:
        if self._tx.is_active:
            self._tx.rollback()
        self.conn.close()


class UnitOfWorkFactory:
    def __init__(self, engine: Engine):
        self.engine = engine

    def __call__(self, *, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

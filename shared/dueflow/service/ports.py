"""The ports: what the use cases need from the outside world, as small interfaces.

Services depend on these Protocols only; `dueflow.bootstrap` (the one composition root) plugs in
the adapters (SQLAlchemy stores, e-mail backends, the outbox relay, Prometheus), and the service
tests plug in in-memory fakes. Nothing here imports an adapter, a framework or a driver.

`Email` and its two errors live here because they are the contract between notify and every
backend: `TransientEmailError` (answer 5xx so the broker redelivers later) and
`PermanentEmailError` (mark the reminder failed). Anything an operator can fix without changing
the message (credentials, TLS, a server that is down) is transient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # the domain types of the signatures; nothing is imported at run time
    from dueflow.domain.listing import ListQuery
    from dueflow.domain.task import Task

#: Where a service reads "now" (the system clock in production, a settable one in tests).
Clock = Callable[[], datetime]
#: Called after each commit that wrote events: wakes the event publisher (the outbox relay).
CommitHook = Callable[[], None]


# -- e-mail ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Email:
    to: str  # one address
    sender: str  # From, may be "Name <addr>"
    subject: str
    text: str  # plain-text body (UTF-8, may contain non-ASCII)
    message_id: str  # "<...@dueflow>", stable per reminder instance so receivers can deduplicate
    key: str  # filesystem-safe idempotency key, e.g. "r-<uuid>-20261201T080000Z"


class EmailError(Exception):
    """Sending failed."""


class TransientEmailError(EmailError):
    """May succeed later unchanged: the caller answers 5xx so the broker retries."""


class PermanentEmailError(EmailError):
    """Will never succeed as is: the caller marks the reminder failed."""


class EmailBackend(Protocol):
    name: str  # "files" | "smtp" | "sendgrid" | "dapr": recorded with each outcome

    def send(self, email: Email) -> None:
        """Send one e-mail or raise TransientEmailError / PermanentEmailError."""


@runtime_checkable
class BatchEmailBackend(EmailBackend, Protocol):
    """A backend that sends a batch its own way (one connection, one login)."""

    def send_many(self, emails: list[Email]) -> list[EmailError | None]:
        """Each e-mail's outcome in order: None (sent) or the error it met; the list may be
        shorter than `emails` when the rest was not tried (after a transient failure)."""


# -- storage: one transaction holding the stores a use case needs ------------------------------


class TaskStore(Protocol):
    """Whole task aggregates (the task, its tags, its reminders) of one user."""

    def get(self, user_id: str, task_id: str, *, for_update: bool = False) -> Task | None: ...
    def add(self, task: Task) -> None: ...
    def add_if_absent(self, task: Task) -> bool: ...
    def update(self, task: Task, previous: Task) -> None: ...
    def delete(self, task: Task) -> None: ...
    def list(
        self, user_id: str, query: ListQuery, now: datetime
    ) -> tuple[list[Task], str | None]: ...
    def tag_counts(self, user_id: str) -> list[tuple[str, int]]: ...
    def open_tasks(self, user_id: str) -> list[Task]: ...


class OutboxStore(Protocol):
    """Events appended in the caller's transaction; the event publisher delivers them."""

    def add(self, event: dict, now: datetime) -> None: ...
    def add_many(self, events: list[dict], now: datetime) -> None: ...


class UserStore(Protocol):
    def remember(self, user_id: str, email: str | None, now: datetime) -> None: ...
    def email(self, user_id: str) -> str | None: ...
    def profile(self, user_id: str, *, for_update: bool = False) -> dict | None: ...
    def update_profile(self, user_id: str, changes: dict, now: datetime) -> None: ...


class ReminderStore(Protocol):
    """Due reminders for the tick; reminder state and outcomes for notify."""

    def claim_due(
        self,
        now: datetime,
        limit: int,
        reemit_before: datetime | None = None,
        reminder_id: str | None = None,
    ) -> list[dict]: ...
    def mark_emitted(self, reminder_ids: list[str], now: datetime) -> None: ...
    def lock_many(self, reminder_ids: list[str]) -> dict[str, dict]: ...
    def notified_many(self, instances: list[tuple[str, datetime]]) -> dict[tuple, str]: ...
    def record_notifications(self, outcomes: list[dict], backend: str, now: datetime) -> None: ...
    def concurrent_writers(self) -> bool: ...
    def insert_notifications(self, outcomes: list[dict], backend: str, now: datetime) -> None: ...


class CommandLog(Protocol):
    """Command CloudEvents applied, by (source, id)."""

    def claim(self, source: str, event_id: str, now: datetime) -> bool: ...


@dataclass(frozen=True)
class Change:
    """One task change in the live feed's log: its position (global, increasing), whose it is,
    the CloudEvent type, and the SSE message's data as JSON text (None when read without it:
    a tail with no stream to send it to reads only positions and owners)."""

    id: int
    user_id: str
    event_type: str
    message: str | None


@dataclass(frozen=True)
class ChangesRead:
    """Changes read after a position, and who could still be writing then: `xmin` and `xmax`,
    the bounds of the snapshot they were read in, and `fence`, a transaction id drawn after it
    (above every writer started before the read). All three equal: no writer was in flight. All
    0 where writes are serialized, as on SQLite."""

    changes: list[Change]
    xmin: int
    xmax: int
    fence: int


class ChangeLogStore(Protocol):
    """The live feed's durable change log (the outbox appends to it with each task event) and
    its tickets."""

    def after(
        self, position: int, limit: int, user_id: str | None = None, through: int | None = None
    ) -> list[Change]: ...
    def read(self, position: int, limit: int, messages: bool = True) -> ChangesRead: ...
    def head(self) -> int: ...
    def fence(self) -> int: ...
    def oldest_writer(self) -> int: ...
    def horizon(self) -> int: ...
    def prune(self, before: datetime, now: datetime) -> int: ...
    def add_ticket(self, ticket_hash: str, user_id: str, expires_at: datetime) -> None: ...
    def ticket_user(self, ticket_hash: str, now: datetime) -> str | None: ...


class DeadLetterStore(Protocol):
    def add(self, record: dict) -> bool: ...
    def list(self, *, include_replayed: bool = False, limit: int = 100) -> list[dict]: ...
    def mark_replayed(self, letter_id: int, now: datetime | None) -> None: ...


class CalendarTokenStore(Protocol):
    """Each user's one calendar feed token, kept as its hash."""

    def replace(self, user_id: str, token_hash: str, now: datetime) -> None: ...
    def revoke(self, user_id: str) -> None: ...
    def owner(self, token_hash: str) -> str | None: ...


class UnitOfWork(Protocol):
    """`with uow:` opens a transaction; `commit()` makes it durable; leaving without commit rolls
    back, so a failed use case writes nothing."""

    tasks: TaskStore
    outbox: OutboxStore
    users: UserStore
    reminders: ReminderStore
    commands: CommandLog
    dead_letters: DeadLetterStore
    changes: ChangeLogStore
    calendar_tokens: CalendarTokenStore

    def __enter__(self) -> UnitOfWork: ...
    def __exit__(self, *exc: object) -> None: ...
    def add_task(self, task: Task, events: list[dict], now: datetime) -> None:
        """A new task and its events, the unit's last write (`tasks.add`, `outbox.add_many`:
        an adapter may write them in one statement)."""

    def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


# -- metrics -----------------------------------------------------------------------------------


class ServiceMetrics(Protocol):
    """What the use cases count; the composition root plugs in Prometheus."""

    def email(self, backend: str, outcome: str) -> None:
        """One reminder e-mail's outcome: sent, failed (for good) or retry (transient)."""

    def reminder_lateness(self, seconds: float) -> None:
        """A reminder e-mail went out `seconds` after its time."""

    def dead_letter_stored(self) -> None:
        """The deadletter function stored a new dead letter."""

    def reminders_reemitted(self, count: int) -> None:
        """The tick emitted `count` reminders again that were emitted before but never sent."""


class NoMetrics:
    """Counts nothing: the default of a service built without metrics (tests, tools)."""

    def email(self, backend: str, outcome: str) -> None:
        pass

    def reminder_lateness(self, seconds: float) -> None:
        pass

    def dead_letter_stored(self) -> None:
        pass

    def reminders_reemitted(self, count: int) -> None:
        pass


__all__ = [
    "BatchEmailBackend",
    "Change",
    "ChangesRead",
    "ChangeLogStore",
    "CalendarTokenStore",
    "Clock",
    "CommandLog",
    "CommitHook",
    "DeadLetterStore",
    "Email",
    "EmailBackend",
    "EmailError",
    "NoMetrics",
    "OutboxStore",
    "PermanentEmailError",
    "ReminderStore",
    "ServiceMetrics",
    "TaskStore",
    "TransientEmailError",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "UserStore",
]

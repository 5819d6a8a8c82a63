"""In-memory fakes of the ports (`dueflow.service.ports`), cosmicpython style: the services run
against them in microseconds, so their behaviour is checked without a database. The real stores
are checked against PostgreSQL and SQLite in tests/integration and tests/functions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest

from dueflow.domain import events
from dueflow.domain.task import Task
from dueflow.service.ports import Email, EmailError
from tests.support.clock import Clock


@dataclass
class FakeDatabase:
    """What the fake stores keep; a unit of work changes a copy and writes it back on commit."""

    tasks: dict[str, Task] = field(default_factory=dict)
    outbox: list[dict] = field(default_factory=list)
    users: dict[str, str | None] = field(default_factory=dict)
    notifications: dict[tuple[str, datetime], dict] = field(default_factory=dict)
    commands: set[tuple[str, str]] = field(default_factory=set)
    dead_letters: list[dict] = field(default_factory=list)
    commits: int = 0

    def copy(self) -> FakeDatabase:
        return FakeDatabase(
            dict(self.tasks),
            list(self.outbox),
            dict(self.users),
            dict(self.notifications),
            set(self.commands),
            [dict(d) for d in self.dead_letters],
            self.commits,
        )

    def events(self, event_type: str | None = None) -> list[dict]:
        return [e for e in self.outbox if event_type is None or e["type"] == event_type]


class FakeTasks:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def get(self, user_id, task_id, *, for_update=False):
        task = self.db.tasks.get(task_id)
        return task if task is not None and task.user_id == user_id else None

    def add(self, task):
        self.db.tasks[task.id] = task

    def add_if_absent(self, task):
        if any(
            t.series_id == task.series_id and t.occurrence == task.occurrence
            for t in self.db.tasks.values()
        ):
            return False
        self.add(task)
        return True

    def update(self, task, previous):
        self.db.tasks[task.id] = task

    def delete(self, task):
        del self.db.tasks[task.id]

    def list(self, user_id, query, now):
        found = [
            t for t in self.db.tasks.values() if t.user_id == user_id and t.status in query.statuses
        ]
        return sorted(found, key=lambda t: t.created_at)[: query.limit], None

    def tag_counts(self, user_id):
        counts = Counter(
            tag
            for t in self.db.tasks.values()
            if t.user_id == user_id and t.status == "open"
            for tag in t.tags
        )
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


class FakeOutbox:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def add(self, event, now):
        self.add_many([event], now)

    def add_many(self, events, now):
        self.db.outbox.extend(events)


class FakeUsers:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def remember(self, user_id, email, now):
        if email is not None or user_id not in self.db.users:
            self.db.users[user_id] = email

    def email(self, user_id):
        return self.db.users.get(user_id)


class FakeReminders:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def _all(self):
        for task in self.db.tasks.values():
            for reminder in task.reminders:
                yield task, reminder

    def _change(self, reminder_id, **changes):
        for task, reminder in list(self._all()):
            if reminder.id == reminder_id:
                reminders = tuple(
                    replace(r, **changes) if r.id == reminder_id else r for r in task.reminders
                )
                self.db.tasks[task.id] = task.with_changes(reminders=reminders)

    def claim_due(self, now, limit, reemit_before=None, reminder_id=None):
        """As the database's: never emitted, or emitted before `reemit_before` and not sent,
        unless reminder events written before then still wait in the outbox (this fake's outbox
        delivers nothing, so they always wait)."""
        if reemit_before is not None and any(
            e["type"] in (events.REMINDER_DUE, events.REMINDERS_DUE)
            and datetime.fromisoformat(e["time"]) < reemit_before
            for e in self.db.outbox
        ):
            reemit_before = None
        due = [
            {
                "reminder_id": r.id,
                "remind_at": r.remind_at,
                "user_id": t.user_id,
                "task_id": t.id,
                "title": t.title,
                "due_at": t.due_at,
                "timezone": t.timezone,
                "reemitted": r.emitted_at is not None,
            }
            for t, r in self._all()
            if r.status == "scheduled"
            and (
                r.emitted_at is None or (reemit_before is not None and r.emitted_at < reemit_before)
            )
            and r.remind_at <= now
            and t.status == "open"
            and reminder_id in (None, r.id)
        ]
        return sorted(due, key=lambda d: d["remind_at"])[:limit]

    def mark_emitted(self, reminder_ids, now):
        for rid in reminder_ids:
            self._change(rid, emitted_at=now)

    def lock_many(self, reminder_ids):
        return {
            r.id: {
                "id": r.id,
                "task_id": t.id,
                "remind_at": r.remind_at,
                "status": r.status,
                "user_id": t.user_id,
                "email": self.db.users.get(t.user_id),
                "task_status": t.status,
            }
            for t, r in self._all()
            if r.id in reminder_ids
        }

    def notified_many(self, instances):
        known = self.db.notifications
        return {i: known[i]["status"] for i in instances if i in known}

    def concurrent_writers(self):
        return False  # one writer, like SQLite: notify records a batch's outcomes at its end

    def insert_notifications(self, outcomes, backend, now):
        for o in outcomes:
            self.db.notifications[(o["reminder_id"], o["remind_at"])] = {**o, "backend": backend}

    def record_notifications(self, outcomes, backend, now):
        for o in outcomes:
            self.db.notifications[(o["reminder_id"], o["remind_at"])] = {**o, "backend": backend}
            self._change(o["reminder_id"], status=o["status"])


class FakeCommands:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def claim(self, source, event_id, now):
        if (source, event_id) in self.db.commands:
            return False
        self.db.commands.add((source, event_id))
        return True


class FakeDeadLetters:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def add(self, record):
        key = (record["event_source"], record["event_id"], record["error_dest"])
        for letter in self.db.dead_letters:
            same = (letter["event_source"], letter["event_id"], letter["error_dest"]) == key
            if same and letter.get("replayed_at") is None:
                return False
        self.db.dead_letters.append({**record, "id": len(self.db.dead_letters) + 1})
        return True

    def list(self, *, include_replayed=False, limit=100):
        letters = [d for d in self.db.dead_letters if include_replayed or not d.get("replayed_at")]
        return letters[:limit]

    def mark_replayed(self, letter_id, now):
        for letter in self.db.dead_letters:
            if letter["id"] == letter_id:
                letter["replayed_at"] = now


class FakeUnitOfWork:
    def __init__(self, db: FakeDatabase):
        self.db = db

    def __enter__(self):
        self.work = self.db.copy()
        self.tasks = FakeTasks(self.work)
        self.outbox = FakeOutbox(self.work)
        self.users = FakeUsers(self.work)
        self.reminders = FakeReminders(self.work)
        self.commands = FakeCommands(self.work)
        self.dead_letters = FakeDeadLetters(self.work)
        return self

    def add_task(self, task, events, now):
        self.tasks.add(task)
        self.outbox.add_many(events, now)

    def commit(self):
        self.work.commits += 1
        vars(self.db).update(vars(self.work.copy()))

    def __exit__(self, *exc):
        pass  # without commit, the copy is dropped: a rollback


class FakeUnitOfWorkFactory:
    def __init__(self):
        self.db = FakeDatabase()

    def __call__(self, *, write: bool = True) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.db)


class FakeEmailBackend:
    """Records what it sent; `fail` maps a recipient to the error its e-mail meets."""

    name = "fake"

    def __init__(self):
        self.sent: list[Email] = []
        self.fail: dict[str, EmailError] = {}

    def send(self, email: Email) -> None:
        if (error := self.fail.get(email.to)) is not None:
            raise error
        self.sent.append(email)


class RecordingMetrics:
    def __init__(self):
        self.emails: Counter = Counter()
        self.lateness: list[float] = []
        self.dead_letters = 0

    def email(self, backend, outcome):
        self.emails[(backend, outcome)] += 1

    def reminder_lateness(self, seconds):
        self.lateness.append(seconds)

    def dead_letter_stored(self):
        self.dead_letters += 1


@pytest.fixture
def uow() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def mailer() -> FakeEmailBackend:
    return FakeEmailBackend()

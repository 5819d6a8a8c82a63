"""What the tests of the event functions (recurrence, reminders, notify) share: the tasks they
create, deliveries (a PingSource tick), the tasks API through the test client, what the database
and the .eml directory hold, and the fixture `one_event_per_reminder` (autouse where imported: the
tick emits one dev.dueflow.reminder.due per reminder). The fixtures `mode` and `smtp_server`
are in tests/functions/conftest.py."""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dueflow import bootstrap
from dueflow.adapters.db.schema import notifications, reminders, tasks
from dueflow.domain import events as ev
from dueflow.domain.timefmt import format_instant
from tests.conftest import auth
from tests.support.clock import T0
from tests.support.events import deliver, outcome
from tests.support.smtp import Collector

ALICE_MAIL = "alice.smith@example.org"
RECURRING = {
    "title": "Water the plants",
    "description": "Both balconies",
    "priority": "high",
    "tags": ["garden", "home"],
    "due_at": "2026-12-02T08:00:00Z",  # Wednesday 09:00 in Berlin
    "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=WEEKLY"},
    "reminders": [{"before": "PT1H"}, {"before": "P1D"}, {"at": "2026-12-01T20:00:00Z"}],
}
# due at 09:00 CET; its reminder is due at T0 (07:00Z), a second one half an hour later
RENT = {
    "title": "Pay rent",
    "due_at": "2026-12-01T08:00:00Z",
    "timezone": "Europe/Berlin",
    "reminders": [{"before": "PT1H"}, {"before": "PT30M"}],
}
PING_SOURCE = "/apis/v1/namespaces/dueflow/pingsources/reminders-tick"


@pytest.fixture(autouse=True)
def one_event_per_reminder(monkeypatch):
    monkeypatch.setenv("DUEFLOW_REMINDER_EVENT_BATCH", "1")


# -- deliveries --------------------------------------------------------------------------------


def ping(mode: str, event_client) -> str:
    """A PingSource tick delivered to the reminders function; returns its outcome."""
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": PING_SOURCE,
        "type": "dev.knative.sources.ping",
        "time": format_instant(datetime.now(UTC)),
    }
    return outcome(deliver(event_client("reminders"), event, mode))


# -- the tasks API ------------------------------------------------------------------------------


def api(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json


def headers(user: str = "alice", mail: str | None = ALICE_MAIL) -> dict:
    return auth(user, email=mail)


def create(client, body: dict, user: str = "alice", mail: str | None = ALICE_MAIL) -> dict:
    return api(client.post("/tasks", json=body, headers=headers(user, mail)), 201)


def act(client, task_id: str, action: str, user: str = "alice") -> dict:
    return api(client.post(f"/tasks/{task_id}/{action}", headers=headers(user)))


def get(client, task_id: str, user: str = "alice") -> dict:
    return api(client.get(f"/tasks/{task_id}", headers=headers(user)))


def snooze(client, task_id: str, reminder_id: str, body, user: str = "alice"):
    return client.post(
        f"/tasks/{task_id}/reminders/{reminder_id}/snooze", json=body, headers=headers(user)
    )


def reminder(task: dict, before: str | None = None, at: str | None = None) -> dict:
    [found] = [
        r for r in task["reminders"] if r.get("before") == before and r.get("at", None) == at
    ]
    return found


# -- what the database holds ---------------------------------------------------------------------


def outbox(engine, event_type: str | None = None) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payload FROM outbox ORDER BY seq")).scalars().all()
    found = [json.loads(row) for row in rows]
    return [e for e in found if event_type is None or e["type"] == event_type]


def outbox_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one()


def series(engine, series_id: str) -> list[tuple[int, str]]:
    """(occurrence, id) of every instance of a series, in order."""
    stmt = (
        sa.select(tasks.c.occurrence, tasks.c.id)
        .where(tasks.c.series_id == series_id)
        .order_by(tasks.c.occurrence)
    )
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt)]


def notification_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(notifications)).mappings()]


def emitted_count(engine) -> int:
    with engine.connect() as conn:
        stmt = sa.select(sa.func.count()).where(reminders.c.emitted_at.is_not(None))
        return conn.execute(stmt).scalar_one()


def mails(mail_dir) -> list[email.message.EmailMessage]:
    paths = sorted(mail_dir.glob("*.eml")) if mail_dir.exists() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in paths]


def text_of(message: email.message.EmailMessage) -> str:
    return message.get_content().replace("\r\n", "\n")


# -- scenario helpers ----------------------------------------------------------------------------


def completion(client, engine, task_id: str) -> dict:
    """Complete a task through the API; returns the task.completed event it wrote."""
    act(client, task_id, "complete")
    mine = [e for e in outbox(engine, ev.TASK_COMPLETED) if e["subject"] == task_id]
    assert mine, "no task.completed event"
    return mine[-1]


def emit_rent(client, engine, event_client, mode: str, mail: str | None = ALICE_MAIL):
    """Create the "Pay rent" task and tick at T0: returns the task and its reminder.due event."""
    task = create(client, RENT, mail=mail)
    assert ping(mode, event_client) == "emitted 1"
    [due] = outbox(engine, ev.REMINDER_DUE)
    assert due["data"]["reminder_id"] == reminder(task, "PT1H")["id"]
    return task, due


class CountingCollector(Collector):
    """A Collector that also counts RCPT commands (attempts, accepted or not)."""

    def __init__(self, rcpt_reply: str | None = None):
        super().__init__(rcpt_reply)
        self.rcpt_attempts = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts += 1
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def tasks_with_reminders(count: int, prefix: str) -> None:
    """`count` tasks with ten due reminders each, created through the task service."""
    service = bootstrap.runtime().tasks
    for i in range(count):
        minutes_ago = [(T0 - timedelta(minutes=m + 1)).isoformat() for m in range(10)]
        service.create(
            "alice",
            {"title": f"{prefix} {i}", "reminders": [{"at": at} for at in minutes_ago]},
        )

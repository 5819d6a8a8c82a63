"""The reminder-batch scenario the notify tests share: six tasks of five users with one reminder
each due at T0, the dev.dueflow.reminders.due batch the tick emits for them, what the database
records of it, and SMTP servers that record (or fail) each message."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter

import sqlalchemy as sa

from dueflow.adapters.db.schema import reminders
from dueflow.domain import events as ev
from dueflow.domain.timefmt import format_instant
from tests.support.clock import T0
from tests.support.event_functions import (
    ALICE_MAIL,
    RENT,
    create,
    notification_rows,
    outbox,
    ping,
)
from tests.support.event_schemas import validate_event
from tests.support.events import as_http
from tests.support.smtp import Collector

# -- the scenario: six tasks of five users, one reminder of each due at T0 -----------------------

BOB_MAIL = "bob@example.com"
CAROL_MAIL = "carol@example.net"
DAVE_MAIL = "dave@example.com"
ERIN_MAIL = "erin@example.org"
TASKS = {
    # name: (user, address, task); rent's PT30M reminder (07:30Z) is not due yet
    "rent": ("alice", ALICE_MAIL, RENT),
    "mum": (
        "alice",
        ALICE_MAIL,
        {"title": "Call mum", "reminders": [{"at": "2026-12-01T06:59:00Z"}]},
    ),
    "bob": (
        "bob",
        BOB_MAIL,
        {
            "title": "Dentist",
            "timezone": "America/New_York",
            "due_at": "2026-12-01T14:00:00Z",
            "reminders": [{"at": "2026-12-01T06:30:00Z"}],  # half an hour before the tick: late
        },
    ),
    "carol": (
        "carol",
        CAROL_MAIL,
        {
            "title": "Flight to Osaka",
            "timezone": "Asia/Tokyo",
            "due_at": "2026-12-01T10:00:00Z",
            "reminders": [{"before": "PT3H"}],
        },
    ),
    "dave": (
        "dave",
        DAVE_MAIL,
        {
            "title": "Réunion « café » ☕",
            "timezone": "Europe/Paris",
            "due_at": "2026-12-01T09:00:00Z",
            "reminders": [{"before": "PT2H"}],
        },
    ),
    "erin": (
        "erin",
        ERIN_MAIL,
        {
            "title": "Call the Auckland office",
            "timezone": "Pacific/Auckland",
            "due_at": "2026-12-01T20:00:00Z",
            "reminders": [{"at": "2026-12-01T06:58:30Z"}],  # 90 s before the tick: not late
        },
    ),
}
#: What each e-mail says about the due date: in the task's own zone.
DUE_LINE = {
    "rent": "Due Tuesday, 1 December 2026 at 09:00 CET (Europe/Berlin).",
    "mum": "This task has no due date.",
    "bob": "Due Tuesday, 1 December 2026 at 09:00 EST (America/New_York).",
    "carol": "Due Tuesday, 1 December 2026 at 19:00 JST (Asia/Tokyo).",
    "dave": "Due Tuesday, 1 December 2026 at 10:00 CET (Europe/Paris).",
    "erin": "Due Wednesday, 2 December 2026 at 09:00 NZDT (Pacific/Auckland).",
}
ALL_SENT = "6 sent, 0 failed, 0 skipped"
ALL_SKIPPED = "0 sent, 0 failed, 6 skipped"


class Scenario:
    """The tasks of TASKS as the API made them, and the one reminders.due batch the tick wrote."""

    def __init__(self, tasks: dict[str, dict], batch: dict, addresses: dict[str, str | None]):
        self.tasks = tasks
        self.batch = batch
        self.items: list[dict] = batch["data"]["reminders"]
        self.addresses = addresses  # name -> the address the user's profile holds
        self.name_of = {item["reminder_id"]: self._name(item) for item in self.items}

    def _name(self, item: dict) -> str:
        [name] = [n for n, t in self.tasks.items() if t["id"] == item["task_id"]]
        return name

    def rid(self, name: str) -> str:
        return due_reminder(self.tasks[name])["id"]

    def item(self, name: str) -> dict:
        [found] = [i for i in self.items if i["reminder_id"] == self.rid(name)]
        return found

    def message_id(self, name: str) -> str:
        return message_id(self.item(name))


def due_reminder(task: dict) -> dict:
    [due] = [r for r in task["reminders"] if r["remind_at"] <= format_instant(T0)]
    return due


def message_id(item: dict) -> str:
    stamp = item["remind_at"].replace("-", "").replace(":", "")
    return f"<r-{item['reminder_id']}-{stamp}@dueflow>"


def emit_batch(client, engine, event_client, mode: str, without_mail=(), extra=()) -> Scenario:
    """Create the tasks of TASKS (and `extra`, (name, user, address, task) each) through the API,
    the users in `without_mail` with no e-mail claim, and tick at T0: one batch of them all."""
    specs = dict(TASKS)
    specs.update({name: (user, mail, body) for name, user, mail, body in extra})
    tasks, addresses = {}, {}
    for name, (user, mail, body) in specs.items():
        address = None if user in without_mail else mail
        tasks[name] = create(client, body, user=user, mail=address)
        addresses[name] = address
    assert ping(mode, event_client) == f"emitted {len(specs)}"
    [batch] = outbox(engine, ev.REMINDERS_DUE)
    assert outbox(engine, ev.REMINDER_DUE) == []
    return Scenario(tasks, batch, addresses)


def batch_event(items: list[dict]) -> dict:
    """A reminders.due event for `items`, as the tick builds one (its own batch id)."""
    event = ev.envelope(
        ev.REMINDERS_DUE, ev.REMINDERS_SOURCE, str(uuid.uuid4()), T0, {"reminders": items}
    )
    return json.loads(json.dumps(event))


def single_event(item: dict) -> dict:
    """The dev.dueflow.reminder.due event the tick emits for `item` with a batch size of 1."""
    return ev.envelope(ev.REMINDER_DUE, ev.REMINDERS_SOURCE, item["task_id"], T0, dict(item))


def recorded(engine) -> list[dict]:
    """The notifications.recorded events written so far, each checked against its schema."""
    found = outbox(engine, ev.NOTIFICATIONS_RECORDED)
    for event in found:
        validate_event(event)
        assert event["source"] == ev.NOTIFY_SOURCE
        assert event["subject"] == event["partitionkey"]
        assert event["dataschema"] == ev.dataschema(ev.NOTIFICATIONS_RECORDED)
    return found


def listed(item: dict, status: str = "sent", **extra) -> dict:
    """An entry of notifications.recorded for a batch item."""
    keys = ("user_id", "task_id", "reminder_id", "remind_at")
    return {**{k: item[k] for k in keys}, "status": status, **extra}


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(reminders.c.id, reminders.c.status)).all())


def rows_by_reminder(engine) -> dict[str, dict]:
    rows = notification_rows(engine)
    by_reminder = {row["reminder_id"]: row for row in rows}
    assert len(by_reminder) == len(rows)
    return by_reminder


def assert_nothing_recorded(engine, scenario: Scenario) -> None:
    assert notification_rows(engine) == []
    assert outbox(engine, ev.NOTIFICATIONS_RECORDED) == []
    assert outbox(engine, ev.NOTIFICATION_SENT) + outbox(engine, ev.NOTIFICATION_FAILED) == []
    current = statuses(engine)
    assert {current[i["reminder_id"]] for i in scenario.items} == {"scheduled"}


def deliver_all_at_once(event_client, requests: list[tuple[dict, str]]) -> list:
    """Deliver each (event, mode) from its own thread (a broker's parallel deliveries), all
    released together; returns the responses in the order given."""
    barrier = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)
    errors: list[BaseException] = []

    def run(i: int, event: dict, how: str) -> None:
        try:
            notify = event_client("notify")  # one client per thread
            headers_, body = as_http(event, how)
            barrier.wait(timeout=30)
            answers[i] = notify.post("/", headers=headers_, data=body)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(i, event, how))
        for i, (event, how) in enumerate(requests)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(a is not None for a in answers), "a delivery did not finish"
    return answers


def counts(result: str) -> tuple[int, int, int]:
    """(sent, failed, skipped) from notify's answer to a batch."""
    sent, failed, skipped = (int(part.split()[0]) for part in result.split(", "))
    assert result == f"{sent} sent, {failed} failed, {skipped} skipped"
    return sent, failed, skipped


# -- SMTP servers --------------------------------------------------------------------------------


class SmtpRecorder(Collector):
    """A Collector that also counts SMTP sessions (smtplib greets once per connection with EHLO)
    and RCPT attempts, and can refuse one address with a permanent 550."""

    def __init__(self, refuse: str | None = None, delay: float = 0.0):
        super().__init__()
        self.refuse = refuse
        self.delay = delay
        self.connections = 0
        self.rcpt_attempts: list[str] = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts.append(address)
        if address == self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow server: the batch holds its locks longer
        return await super().handle_DATA(server, session, envelope)

    def message_ids(self) -> Counter:
        return Counter(d.message["Message-ID"] for d in self.delivered)


class FlakyRecorder(SmtpRecorder):
    """Accepts `accept` messages, then fails every later one transiently until `recover()`:
    with a 451 reply to DATA, or by dropping the connection in the middle of DATA."""

    def __init__(self, accept: int, how: str):
        super().__init__()
        self.accept, self.how = accept, how
        self.failing = True

    def recover(self) -> None:
        self.failing = False

    async def handle_DATA(self, server, session, envelope):
        if self.failing and len(self.delivered) >= self.accept:
            if self.how == "451":
                return "451 4.3.0 Mail server temporarily busy, try again later"
            server.transport.close()  # the server went away mid-transaction
            return "421 4.3.0 closing"
        return await super().handle_DATA(server, session, envelope)


def use_smtp(reconfigure, port: int) -> None:
    reconfigure(DUEFLOW_EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}")

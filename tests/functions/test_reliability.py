"""Reliability of the reminder path (issue 17), through functions-framework's test client on SQLite
and PostgreSQL: a reminder whose event was lost (dead-lettered) is emitted again by the tick after
DUEFLOW_REMINDER_REEMIT_AFTER and sent once, and replaying the dead letter afterwards sends
nothing. (A crash mid-batch is in tests/e2e/test_faults.py: it needs a process to kill.)

Helpers come from tests/support (event_functions, reminder_batches), fixtures from conftest.py.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from prometheus_client import REGISTRY

from dueflow.adapters.db.schema import notifications
from dueflow.adapters.outbox_relay import OutboxRelay
from dueflow.domain import events as ev
from tests.support import reminder_batches as batches
from tests.support.clock import T0
from tests.support.event_functions import (
    ALICE_MAIL,
    emit_rent,
    get,
    mails,
    notification_rows,
    one_event_per_reminder,  # noqa: F401 (autouse)
    outbox,
    ping,
)
from tests.support.events import deliver, outcome

REEMIT_AFTER = 300  # the default of DUEFLOW_REMINDER_REEMIT_AFTER


def _reminder_status(client, task: dict) -> str:
    return next(r for r in get(client, task["id"])["reminders"] if r["before"] == "PT1H")["status"]


def _overdue(engine, clock) -> float | None:
    """The gauge as the outbox relay of any function measures it (DUEFLOW_REMINDER_REEMIT_AFTER
    ago); no relay runs in these tests (no K_SINK), so one measures here."""
    relay = OutboxRelay(engine, lambda _event: None, clock=clock, reminders_overdue_after=300)
    relay.measure()
    return REGISTRY.get_sample_value("dueflow_reminders_overdue")


def _reemitted() -> float:
    return REGISTRY.get_sample_value("dueflow_reminders_reemitted_total") or 0.0


def test_a_lost_reminder_is_emitted_again_after_the_bound_and_sent_once(
    client, engine, clock, event_client, mail_dir, mode
):
    task, lost = emit_rent(client, engine, event_client, mode)
    _relayed_and_lost(engine)  # out of the outbox, then dead-lettered: never e-mailed
    assert _overdue(engine, clock) == 0
    before = _reemitted()

    clock.advance(seconds=REEMIT_AFTER - 1)  # still within the bound: no second event
    assert ping(mode, event_client) == "emitted 0"
    clock.advance(seconds=2)  # emitted more than the bound ago, still scheduled: again
    assert ping(mode, event_client) == "emitted 1"
    assert _reemitted() == before + 1
    assert _overdue(engine, clock) == 1  # due 301 s ago and not sent: what the alert watches

    again = outbox(engine, ev.REMINDER_DUE)[-1]
    assert again["id"] != lost["id"]
    assert again["data"] == {**lost["data"], "late": True}  # 301 s after its time
    assert ping(mode, event_client) == "emitted 0"  # emitted just now: not yet again

    notify = event_client("notify")
    assert outcome(deliver(notify, again, mode)) == "sent"
    assert _reminder_status(client, task) == "sent"
    # the dead letter replayed later: harmless
    assert outcome(deliver(notify, lost, mode)) == "already sent"
    [message] = mails(mail_dir)
    assert message["To"] == ALICE_MAIL
    assert len(notification_rows(engine)) == 1

    clock.advance(seconds=REEMIT_AFTER * 2)  # sent reminders are never emitted again
    assert ping(mode, event_client) == "emitted 0"
    assert _overdue(engine, clock) == 0


def test_the_bound_is_a_setting(client, engine, clock, event_client, reconfigure, mode):
    reconfigure(DUEFLOW_REMINDER_REEMIT_AFTER="30")
    emit_rent(client, engine, event_client, mode)
    _relayed_and_lost(engine)
    clock.advance(seconds=29)
    assert ping(mode, event_client) == "emitted 0"
    clock.advance(seconds=2)
    assert ping(mode, event_client) == "emitted 1"


def test_nothing_is_emitted_again_while_reminder_events_wait_in_the_outbox(
    client, engine, clock, event_client, mode
):
    """The sink is down: the first event still waits for the relay, and a second one behind the
    same sink would only grow the backlog. Once it has left the outbox, the bound applies."""
    emit_rent(client, engine, event_client, mode)
    clock.advance(seconds=REEMIT_AFTER * 3)
    assert ping(mode, event_client) == "emitted 0"
    assert _overdue(engine, clock) == 1
    _relayed_and_lost(engine)
    assert ping(mode, event_client) == "emitted 1"


def _relayed_and_lost(engine) -> None:
    """What the relay does with delivered events (deletes them); the Broker then dead-letters
    them, which leaves no trace in dueflow's tables but the dead letter."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM outbox"))


# -- notify: an accepted e-mail is recorded before the next one is sent ---------------------------


class RecordsBeforeNext(batches.SmtpRecorder):
    """Looks into the database as each message arrives: how many outcomes were committed
    (seen from a connection of its own) before this message was sent."""

    def __init__(self, database_url: str):
        super().__init__()
        self.engine = sa.create_engine(database_url)
        self.committed_before: list[int] = []

    async def handle_DATA(self, server, session, envelope):
        with self.engine.connect() as conn:
            self.committed_before.append(
                conn.execute(sa.text("SELECT count(*) FROM notifications")).scalar_one()
            )
        return await super().handle_DATA(server, session, envelope)


def test_each_accepted_smtp_email_is_committed_before_the_next_is_sent(
    client, engine, clock, event_client, reconfigure, smtp_server, database_url, mode
):
    reconfigure(DUEFLOW_REMINDER_EVENT_BATCH=None)  # the default: batches of 100
    server = RecordsBeforeNext(database_url)
    batches.use_smtp(reconfigure, smtp_server(server))
    s = batches.emit_batch(client, engine, event_client, mode)

    assert outcome(deliver(event_client("notify"), s.batch, mode)) == batches.ALL_SENT

    server.engine.dispose()
    if engine.dialect.name == "postgresql":
        assert server.committed_before == [0, 1, 2, 3, 4, 5]  # a crash re-sends one at most
    else:  # one writer: the batch's outcomes are committed together, after the last e-mail
        assert server.committed_before == [0] * 6
    [event] = batches.recorded(engine)  # still one event for the batch, listing all six
    assert len(event["data"]["notifications"]) == 6
    assert {batches.statuses(engine)[i["reminder_id"]] for i in s.items} == {"sent"}


def test_a_redelivery_finishes_what_a_crashed_delivery_recorded(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    """The state a crash leaves (SIGKILL in tests/e2e/test_faults.py): two e-mails accepted
    and their rows committed, the batch's own transaction gone. The redelivery sends the other
    four, sets all six reminders `sent` and lists all six in its one event."""
    reconfigure(DUEFLOW_REMINDER_EVENT_BATCH=None)  # the default: batches of 100
    server = batches.SmtpRecorder()
    batches.use_smtp(reconfigure, smtp_server(server))
    s = batches.emit_batch(client, engine, event_client, mode)
    crashed = s.items[:2]
    with engine.begin() as conn:
        conn.execute(
            notifications.insert(),
            [
                {
                    "reminder_id": item["reminder_id"],
                    "remind_at": datetime.fromisoformat(item["remind_at"]),
                    "user_id": item["user_id"],
                    "status": "sent",
                    "backend": "smtp",
                    "created_at": T0,
                }
                for item in crashed
            ],
        )

    assert outcome(deliver(event_client("notify"), s.batch, mode)) == batches.ALL_SENT

    assert len(server.delivered) == 4
    assert {m.message["Message-ID"] for m in server.delivered}.isdisjoint(
        {s.message_id(s.name_of[i["reminder_id"]]) for i in crashed}
    )
    assert {batches.statuses(engine)[i["reminder_id"]] for i in s.items} == {"sent"}
    [event] = batches.recorded(engine)
    assert sorted(n["reminder_id"] for n in event["data"]["notifications"]) == sorted(
        i["reminder_id"] for i in s.items
    )
    assert len(notification_rows(engine)) == 6
    assert outcome(deliver(event_client("notify"), s.batch, mode)) == batches.ALL_SKIPPED

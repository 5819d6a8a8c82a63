"""Reliability of the reminder path (issue 17), through functions-framework's test client on SQLite
and PostgreSQL: a reminder whose event was lost (dead-lettered) is emitted again by the tick after
DUEFLOW_REMINDER_REEMIT_AFTER and sent once, and replaying the dead letter afterwards sends
nothing. (A crash mid-batch is in tests/e2e/test_faults.py: it needs a process to kill.)

Helpers and fixtures come from test_event_functions.py and test_reminder_batches.py.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from dueflow.adapters.outbox_relay import OutboxRelay
from dueflow.domain import events as ev
from tests.functions import test_event_functions as single
from tests.functions.test_event_functions import (
    ALICE_MAIL,
    deliver,
    emit_rent,
    get,
    mails,
    notification_rows,
    outbox,
    outcome,
    ping,
)

mode = single.mode
REEMIT_AFTER = 300  # the default of DUEFLOW_REMINDER_REEMIT_AFTER


@pytest.fixture(autouse=True)
def one_event_per_reminder(monkeypatch):
    monkeypatch.setenv("DUEFLOW_REMINDER_EVENT_BATCH", "1")


def _reminder_status(client, task: dict) -> str:
    return next(r for r in get(client, task["id"])["reminders"] if r["before"] == "PT1H")[
        "status"
    ]


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

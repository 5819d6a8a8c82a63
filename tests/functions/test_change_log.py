"""The live feed's change log (migration 0006): every path that changes a task writes exactly one
row per change, in the change's own transaction, with the task as the API returns it (or `{"id"}`
for a deletion): the tasks API, the assistant's use cases, the commands function and the
recurrence function; a change that rolls back writes none. Retention and the prune horizon.
Every test runs on SQLite and on PostgreSQL, against the functions as functions-framework serves
them."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dueflow import bootstrap
from dueflow.adapters.db.change_log import ChangeLog
from dueflow.adapters.db.unit_of_work import UnitOfWork
from dueflow.domain import events as ev
from dueflow.service.live import LiveService
from tests.conftest import auth
from tests.functions.conftest import T0
from tests.support.events import deliver, outcome

RECURRING = {
    "title": "Water the plants",
    "due_at": "2026-12-02T08:00:00Z",
    "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=WEEKLY"},
    "reminders": [{"before": "P1D"}],
}


def changes(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM task_changes ORDER BY id")).mappings().all()
    return [dict(row) for row in rows]


def task_events(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payload FROM outbox ORDER BY seq")).scalars().all()
    return [e for e in map(json.loads, rows) if e["type"] in ev.TASK_TYPES]


def assert_one_row_per_task_event(engine) -> list[dict]:
    """The change log holds exactly the outbox's task events, in order, each as the feed says."""
    logged, emitted = changes(engine), task_events(engine)
    assert [c["event_id"] for c in logged] == [e["id"] for e in emitted]
    for row, event in zip(logged, emitted, strict=True):
        task = event["data"]["task"]
        assert row["user_id"] == event["data"]["user_id"]
        assert row["task_id"] == task["id"] == event["subject"]
        assert row["event_type"] == event["type"]
        assert row["event_time"] == event["time"]
        want = {"id": task["id"]} if event["type"] == ev.TASK_DELETED else task
        assert json.loads(row["data"]) == want
    assert [c["id"] for c in logged] == sorted({c["id"] for c in logged})  # increasing, unique
    return logged


def api(client, method: str, path: str, user: str = "alice", **kwargs):
    response = client.open(path, method=method, headers=auth(user), **kwargs)
    assert response.status_code < 300, response.get_data(as_text=True)
    return response.json


def command(kind: str, data: dict) -> dict:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/chat-assistant",
        "type": f"dev.dueflow.command.task.{kind}",
        "datacontenttype": "application/json",
        "data": data,
    }


def test_every_api_change_writes_one_row_with_the_task_the_api_returns(client, engine, clock):
    task = api(client, "POST", "/tasks", json=RECURRING)
    tid = task["id"]
    updated = api(client, "PATCH", f"/tasks/{tid}", json={"title": "Water the ferns"})
    api(client, "PATCH", f"/tasks/{tid}", json={"title": "Water the ferns"})  # no change, no row
    snoozed = api(
        client,
        "POST",
        f"/tasks/{tid}/reminders/{task['reminders'][0]['id']}/snooze",
        json={"for": "PT10M"},
    )
    skipped = api(client, "POST", f"/tasks/{tid}/skip")
    done = api(client, "POST", f"/tasks/{tid}/complete")
    api(client, "POST", f"/tasks/{tid}/complete")  # idempotent: no second row
    reopened = api(client, "POST", f"/tasks/{tid}/reopen")
    client.delete(f"/tasks/{tid}", headers=auth())
    api(client, "POST", "/tasks", user="bob", json={"title": "Bob's"})

    rows = assert_one_row_per_task_event(engine)
    assert [(r["user_id"], r["event_type"]) for r in rows] == [
        ("alice", ev.TASK_CREATED),
        ("alice", ev.TASK_UPDATED),
        ("alice", ev.TASK_UPDATED),
        ("alice", ev.TASK_UPDATED),
        ("alice", ev.TASK_COMPLETED),
        ("alice", ev.TASK_REOPENED),
        ("alice", ev.TASK_DELETED),
        ("bob", ev.TASK_CREATED),
    ]
    answers = [task, updated, snoozed, skipped, done, reopened, {"id": tid}]
    assert [json.loads(r["data"]) for r in rows[:7]] == answers  # exactly what the API answered


def test_assistant_commands_and_recurrence_write_their_rows(client, engine, clock, event_client):
    assistant = bootstrap.runtime().assistant
    added = assistant.add("alice", {"title": "From the chat", "due": "2026-12-03T09:00:00Z"})
    assistant.update("alice", added.id, {"priority": "high"})

    commands = event_client("commands")
    response = deliver(commands, command("create", {**RECURRING, "user_id": "carol"}), "binary")
    carols = outcome(response).removeprefix("created ")
    done = command("complete", {"user_id": "carol", "id": carols})
    assert outcome(deliver(commands, done, "binary")) == f"completed {carols}"
    assert outcome(deliver(commands, done, "binary")) == "duplicate: already applied"

    [completed] = [e for e in task_events(engine) if e["type"] == ev.TASK_COMPLETED]
    recurrence = event_client("recurrence")
    assert outcome(deliver(recurrence, completed, "structured")) == "next instance created"
    assert outcome(deliver(recurrence, completed, "structured")) == "next instance exists"

    rows = assert_one_row_per_task_event(engine)
    assert [(r["user_id"], r["event_type"]) for r in rows] == [
        ("alice", ev.TASK_CREATED),
        ("alice", ev.TASK_UPDATED),
        ("carol", ev.TASK_CREATED),
        ("carol", ev.TASK_COMPLETED),
        ("carol", ev.TASK_CREATED),  # the series' next instance
    ]
    assert json.loads(rows[-1]["data"])["series_id"] == json.loads(rows[2]["data"])["series_id"]


def test_a_rolled_back_change_writes_no_row(client, engine, clock):
    tid = api(client, "POST", "/tasks", json={"title": "Kept"})["id"]
    before = changes(engine)
    response = client.patch(f"/tasks/{tid}", json={"priority": "urgent!"}, headers=auth())
    assert response.status_code == 422  # refused before any write
    with UnitOfWork(engine, write=True) as uow:  # appended, then the transaction rolls back
        uow.outbox.add(ev.task_event(ev.TASK_UPDATED, _task(uow, tid), T0, ["title"]), T0)
        assert uow.changes.count() == len(before) + 1
    assert changes(engine) == before
    assert_one_row_per_task_event(engine)


def _task(uow, task_id: str):
    return uow.tasks.get("alice", task_id)


def test_other_events_are_not_the_live_feeds(engine):
    with UnitOfWork(engine, write=True) as uow:
        event = ev.envelope(ev.REMINDER_DUE, ev.REMINDERS_SOURCE, str(uuid.uuid4()), T0, {})
        uow.outbox.add(event, T0)
        uow.commit()
    assert changes(engine) == []


def test_retention_prunes_old_changes_and_raises_the_horizon(client, engine, clock):
    service = LiveService(bootstrap.runtime().uow, timedelta(hours=24), clock=clock)
    old = api(client, "POST", "/tasks", json={"title": "Old"})["id"]
    clock.advance(hours=23)
    api(client, "PATCH", f"/tasks/{old}", json={"title": "Older"})
    first, second = (r["id"] for r in changes(engine))
    assert service.can_resume(0) and service.can_resume(second)
    assert not service.can_resume(second + 1)  # a position this log never gave out
    assert service.prune() == 0  # nothing is a day old yet

    clock.advance(hours=2)
    assert service.prune() == 1  # the creation, 25 h ago
    assert [r["id"] for r in changes(engine)] == [second]
    with engine.connect() as conn:
        assert ChangeLog(conn).horizon() == first
    assert not service.can_resume(0)  # the creation is gone: a reset
    assert service.can_resume(first) and service.can_resume(second)
    assert [c.id for c in service.replay("alice", first)] == [second]

    clock.advance(hours=24)
    assert service.prune() == 1
    assert changes(engine) == []
    assert service.head() == second  # positions never go back, even with the log empty
    assert service.can_resume(second) and not service.can_resume(first)


def test_tickets_are_bound_to_their_user_and_expire(function_env, clock):
    service = LiveService(bootstrap.runtime().uow, timedelta(hours=24), clock=clock)
    ticket, expires_in = service.issue_ticket("alice")
    assert expires_in == 60
    assert service.ticket_user(ticket) == "alice"
    assert service.ticket_user(ticket + "x") is None
    assert service.ticket_user("") is None
    clock.advance(seconds=59)
    assert service.ticket_user(ticket) == "alice"
    clock.advance(seconds=1)
    assert service.ticket_user(ticket) is None
    service.prune()  # expired tickets go with the old changes
    clock.set(T0)
    assert service.ticket_user(ticket) is None


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", "٣", "9" * 30])
def test_a_position_that_is_not_an_id_is_refused(raw):
    from dueflow.domain.errors import ValidationFailed
    from dueflow.service.live import parse_position

    with pytest.raises(ValidationFailed) as failed:
        parse_position(raw)
    assert failed.value.errors[0].field == "last_event_id"
    assert parse_position(" 42 ") == 42 and parse_position(None) is None

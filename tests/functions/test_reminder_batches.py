"""Reminder batches end to end: the reminders tick emits due reminders DUEFLOW_REMINDER_EVENT_BATCH
to a dev.dueflow.reminders.due event (default 100), and the notify function e-mails a batch in one
transaction, recording the outcomes in one dev.dueflow.notifications.recorded event.

Built like test_event_functions.py, with its helpers (tests/support/event_functions.py): every test
runs on SQLite and on PostgreSQL, every delivery goes through functions-framework's test client in
binary and in structured mode, the clock is frozen at T0, and e-mail goes to the `eml` backend
(one .eml file per message) or to a real aiosmtpd server on 127.0.0.1. The batches delivered are
the ones the tick wrote to the outbox (or slices of them), not events written by hand.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dueflow import bootstrap
from dueflow.adapters.db.schema import reminders, tasks
from dueflow.domain import events as ev
from dueflow.domain.timefmt import format_instant
from tests.support.clock import T0
from tests.support.event_functions import (
    ALICE_MAIL,
    RENT,
    act,
    api,
    create,
    emitted_count,
    get,
    headers,
    mails,
    notification_rows,
    outbox,
    outbox_count,
    ping,
    snooze,
    tasks_with_reminders,
    text_of,
)
from tests.support.event_schemas import validate_event
from tests.support.events import deliver, outcome
from tests.support.http import free_port
from tests.support.reminder_batches import (
    ALL_SENT,
    ALL_SKIPPED,
    BOB_MAIL,
    CAROL_MAIL,
    DAVE_MAIL,
    DUE_LINE,
    ERIN_MAIL,
    TASKS,
    FlakyRecorder,
    SmtpRecorder,
    assert_nothing_recorded,
    batch_event,
    counts,
    deliver_all_at_once,
    emit_batch,
    listed,
    message_id,
    recorded,
    rows_by_reminder,
    single_event,
    statuses,
    use_smtp,
)
from tests.support.tasks_api import assert_problem


@pytest.fixture(autouse=True)
def default_event_batch(monkeypatch):
    """The tick's default: batches of 100 (whatever the shell running the tests has set)."""
    monkeypatch.delenv("DUEFLOW_REMINDER_EVENT_BATCH", raising=False)


# =============================================================================================
# the tick: due reminders go out in batches
# =============================================================================================


def due_in_database(engine) -> dict[str, dict]:
    """Every reminder due by T0, with its task's title, as the database holds them."""
    stmt = (
        sa.select(reminders.c.id, reminders.c.task_id, reminders.c.remind_at, tasks.c.title)
        .join(tasks, tasks.c.id == reminders.c.task_id)
        .where(reminders.c.remind_at <= T0)
    )
    with engine.connect() as conn:
        return {row["id"]: dict(row) for row in conn.execute(stmt).mappings()}


def assert_batches_cover(engine, batches: list[dict], sizes: list[int]) -> None:
    """The batches validate, have the given sizes and list every due reminder exactly once, with
    the data the single-event contract gives it, oldest first."""
    assert [len(b["data"]["reminders"]) for b in batches] == sizes
    for batch in batches:
        validate_event(batch)
        assert batch["type"] == ev.REMINDERS_DUE and batch["source"] == ev.REMINDERS_SOURCE
        assert batch["subject"] == batch["partitionkey"]
        assert batch["time"] == format_instant(T0)
        assert batch["dataschema"] == ev.dataschema(ev.REMINDERS_DUE)
        assert set(batch["data"]) == {"reminders"}
    ids = [b["subject"] for b in batches]
    assert len(set(ids)) == len(ids), "each batch is its own partition"
    items = [item for b in batches for item in b["data"]["reminders"]]
    due = due_in_database(engine)
    assert not set(ids) & {d["task_id"] for d in due.values()}
    emitted = Counter(item["reminder_id"] for item in items)
    assert set(emitted) == set(due) and set(emitted.values()) == {1}
    remind_ats = [item["remind_at"] for item in items]
    assert remind_ats == sorted(remind_ats), "oldest first"
    for item in items:
        row = due[item["reminder_id"]]
        late = T0 - row["remind_at"] > timedelta(seconds=120)  # DUEFLOW_REMINDER_LATE_AFTER
        assert item == {
            "user_id": "alice",
            "task_id": row["task_id"],
            "reminder_id": item["reminder_id"],
            "remind_at": format_instant(row["remind_at"]),
            "title": row["title"],
            "due_at": None,
            "timezone": "UTC",
            "late": late,
        }


def test_tick_emits_due_reminders_in_batches_of_100(client, engine, clock, event_client, mode):
    tasks_with_reminders(25, "storm")  # 250 reminders due, 1 to 10 minutes ago
    create(client, {**RENT, "reminders": [{"before": "PT30M"}]})  # due at 07:30: not yet

    assert ping(mode, event_client) == "emitted 250"

    batches = outbox(engine, ev.REMINDERS_DUE)
    assert_batches_cover(engine, batches, [100, 100, 50])
    lates = Counter(i["late"] for b in batches for i in b["data"]["reminders"])
    assert lates == {True: 200, False: 50}  # 1 and 2 minutes ago are within the 120 s
    assert outbox(engine, ev.REMINDER_DUE) == []
    assert emitted_count(engine) == 250

    assert ping(mode, event_client) == "emitted 0"
    assert len(outbox(engine, ev.REMINDERS_DUE)) == 3
    clock.advance(minutes=30)
    assert ping(mode, event_client) == "emitted 1"
    [*_, newest] = outbox(engine, ev.REMINDERS_DUE)
    assert [i["title"] for i in newest["data"]["reminders"]] == ["Pay rent"]


def test_tick_follows_the_event_batch_setting(
    client, engine, clock, event_client, reconfigure, mode
):
    reconfigure(DUEFLOW_REMINDER_EVENT_BATCH="7")
    tasks_with_reminders(25, "storm")

    assert ping(mode, event_client) == "emitted 250"

    batches = outbox(engine, ev.REMINDERS_DUE)
    assert len(batches) == math.ceil(250 / 7) == 36
    assert_batches_cover(engine, batches, [7] * 35 + [5])
    assert outbox(engine, ev.REMINDER_DUE) == []


def test_event_batch_of_one_is_the_single_event_contract(
    client, engine, clock, event_client, reconfigure, mode
):
    reconfigure(DUEFLOW_REMINDER_EVENT_BATCH="1")
    tasks_with_reminders(25, "storm")

    assert ping(mode, event_client) == "emitted 250"

    assert outbox(engine, ev.REMINDERS_DUE) == []
    singles = outbox(engine, ev.REMINDER_DUE)
    assert Counter(e["data"]["reminder_id"] for e in singles) == Counter(
        dict.fromkeys(due_in_database(engine), 1)
    )
    for event in singles:
        validate_event(event)
        assert event["subject"] == event["partitionkey"] == event["data"]["task_id"]


def test_event_batch_is_at_most_1000(engine, clock, reconfigure):
    reconfigure(DUEFLOW_REMINDER_EVENT_BATCH="5000", DUEFLOW_REMINDER_BATCH="2000")
    rt = bootstrap.runtime()
    tasks_with_reminders(100, "storm")
    rt.tasks.create("alice", {"title": "one more", "reminders": [{"at": T0.isoformat()}]})

    assert rt.reminders.tick() == 1001

    batches = outbox(engine, ev.REMINDERS_DUE)
    assert [len(b["data"]["reminders"]) for b in batches] == [1000, 1]
    for batch in batches:
        validate_event(batch)


# =============================================================================================
# notify: a batch is e-mailed once per reminder instance
# =============================================================================================


def test_batch_emails_each_reminder_once(client, engine, clock, event_client, mail_dir, mode):
    s = emit_batch(client, engine, event_client, mode)
    validate_event(s.batch)
    assert {i["reminder_id"]: i["late"] for i in s.items} == {
        s.rid(name): name == "bob" for name in TASKS
    }
    # carol's token now carries another address: mail goes where her profile says when sending
    api(client.get("/tasks", headers=headers("carol", "carol@new.example")))
    s.addresses["carol"] = "carol@new.example"
    notify = event_client("notify")

    assert outcome(deliver(notify, s.batch, mode)) == ALL_SENT

    by_id = {m["Message-ID"]: m for m in mails(mail_dir)}
    assert set(by_id) == {s.message_id(name) for name in TASKS}
    for name, (_, _, body) in TASKS.items():
        message = by_id[s.message_id(name)]
        assert message["To"] == s.addresses[name], name
        assert message["From"].addresses[0].addr_spec == "reminders@dueflow.test"
        late = name == "bob"
        assert message["Subject"] == f"Reminder: {body['title']}" + (" (late)" if late else "")
        text = text_of(message)
        assert text.startswith(f"Reminder: {body['title']}\n"), name
        assert DUE_LINE[name] in text, name
        assert ("This reminder is late" in text) is late, name
    assert "it was meant for Tuesday, 1 December 2026 at 01:30 EST (America/New_York)" in text_of(
        by_id[s.message_id("bob")]
    ).replace("\n", " ")

    rows = rows_by_reminder(engine)
    assert set(rows) == {s.rid(name) for name in TASKS}
    for item in s.items:
        row = rows[item["reminder_id"]]
        assert (row["status"], row["backend"], row["error"]) == ("sent", "eml", None)
        assert row["user_id"] == item["user_id"]
        assert format_instant(row["remind_at"]) == item["remind_at"]
    rent = get(client, s.tasks["rent"]["id"])
    assert [(r["before"], r["status"]) for r in rent["reminders"]] == [
        ("PT1H", "sent"),
        ("PT30M", "scheduled"),
    ]
    for name in ("mum", "carol", "erin"):
        task = get(client, s.tasks[name]["id"], user=TASKS[name][0])
        assert [r["status"] for r in task["reminders"]] == ["sent"], name
    [event] = recorded(engine)
    assert event["subject"] not in {t["id"] for t in s.tasks.values()}
    assert event["time"] == format_instant(T0)
    assert event["data"] == {"backend": "eml", "notifications": [listed(i) for i in s.items]}
    assert outbox(engine, ev.NOTIFICATION_SENT) + outbox(engine, ev.NOTIFICATION_FAILED) == []

    files = {p.name: (p.read_bytes(), p.stat().st_ino) for p in mail_dir.glob("*")}
    before = outbox_count(engine)
    for _ in range(3):
        assert outcome(deliver(notify, s.batch, mode)) == ALL_SKIPPED
    assert {p.name: (p.read_bytes(), p.stat().st_ino) for p in mail_dir.glob("*")} == files
    assert len(notification_rows(engine)) == 6
    assert outbox_count(engine) == before
    assert len(recorded(engine)) == 1


def test_concurrent_deliveries_of_a_batch_send_each_email_once(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    server = SmtpRecorder(delay=0.02)
    use_smtp(reconfigure, smtp_server(server))
    s = emit_batch(client, engine, event_client, mode)

    answers = deliver_all_at_once(event_client, [(s.batch, mode)] * 4)

    assert sorted(outcome(a) for a in answers) == [ALL_SKIPPED] * 3 + [ALL_SENT]
    assert server.message_ids() == Counter({s.message_id(name): 1 for name in TASKS})
    assert server.connections == 1
    assert len(notification_rows(engine)) == 6
    [event] = recorded(engine)
    assert event["data"]["backend"] == "smtp"
    assert sorted(n["reminder_id"] for n in event["data"]["notifications"]) == sorted(
        s.rid(name) for name in TASKS
    )


def test_overlapping_batches_delivered_together_email_each_reminder_once(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    """Two batches sharing two reminders, listed in opposite orders, both in flight at once:
    each waits for the other's locks (taken in one order), neither deadlocks."""
    server = SmtpRecorder(delay=0.05)
    use_smtp(reconfigure, smtp_server(server))
    s = emit_batch(client, engine, event_client, mode)
    first = batch_event(s.items[:4])
    second = batch_event(list(reversed(s.items[2:])))
    other_mode = "structured" if mode == "binary" else "binary"

    answers = deliver_all_at_once(event_client, [(first, mode), (second, other_mode)])

    results = [counts(outcome(a)) for a in answers]  # a deadlock would be a 503
    assert sum(sent for sent, _, _ in results) == 6
    assert sum(skipped for _, _, skipped in results) == 2
    assert {failed for _, failed, _ in results} == {0}
    assert server.message_ids() == Counter({s.message_id(name): 1 for name in TASKS})
    events = recorded(engine)
    assert len(events) == 2
    listed_ids = Counter(n["reminder_id"] for e in events for n in e["data"]["notifications"])
    assert listed_ids == Counter({s.rid(name): 1 for name in TASKS})
    assert len(notification_rows(engine)) == 6
    assert {statuses(engine)[i["reminder_id"]] for i in s.items} == {"sent"}


def test_user_without_an_email_address_fails_that_reminder_only(
    client, engine, clock, event_client, mail_dir, mode
):
    s = emit_batch(client, engine, event_client, mode, without_mail={"dave"})
    notify = event_client("notify")

    assert outcome(deliver(notify, s.batch, mode)) == "5 sent, 1 failed, 0 skipped"

    assert {m["Message-ID"] for m in mails(mail_dir)} == {
        s.message_id(name) for name in TASKS if name != "dave"
    }
    assert all(m["To"] for m in mails(mail_dir))
    rows = rows_by_reminder(engine)
    failed = rows[s.rid("dave")]
    assert failed["status"] == "failed" and failed["user_id"] == "dave"
    assert "no e-mail address" in failed["error"] and "@" not in failed["error"]
    assert {rows[s.rid(n)]["status"] for n in TASKS if n != "dave"} == {"sent"}
    task = get(client, s.tasks["dave"]["id"], user="dave")
    assert [r["status"] for r in task["reminders"]] == ["failed"]
    [event] = recorded(engine)
    assert event["data"]["notifications"] == [
        listed(i, "failed", error=failed["error"]) if i == s.item("dave") else listed(i)
        for i in s.items
    ]

    assert outcome(deliver(notify, s.batch, mode)) == ALL_SKIPPED
    assert outcome(deliver(notify, single_event(s.item("dave")), mode)) == "already failed"
    assert len(mails(mail_dir)) == 5 and len(notification_rows(engine)) == 6
    assert len(recorded(engine)) == 1


def test_stale_items_are_skipped_and_the_rest_sent(
    client, engine, clock, event_client, mail_dir, mode
):
    fresh = [
        (f"fresh {i}", "alice", ALICE_MAIL, {"title": f"Fresh {i}", "reminders": [{"at": at}]})
        for i, at in enumerate(["2026-12-01T06:50:00Z", "2026-12-01T06:55:00Z"])
    ]
    s = emit_batch(client, engine, event_client, mode, extra=fresh)
    clock.advance(seconds=30)  # after the tick, before the delivery:
    act(client, s.tasks["rent"]["id"], "complete")  # the task is done
    assert client.delete(f"/tasks/{s.tasks['mum']['id']}", headers=headers()).status_code == 204
    api(snooze(client, s.tasks["bob"]["id"], s.rid("bob"), {"for": "PT10M"}, user="bob"))
    carol_task = s.tasks["carol"]["id"]  # done and reopened: its past reminder stays canceled
    api(client.post(f"/tasks/{carol_task}/complete", headers=headers("carol", CAROL_MAIL)))
    api(client.post(f"/tasks/{carol_task}/reopen", headers=headers("carol", CAROL_MAIL)))
    api(  # a new due date moves the relative reminder
        client.patch(
            f"/tasks/{s.tasks['dave']['id']}",
            json={"due_at": "2026-12-01T10:00:00Z"},
            headers=headers("dave", DAVE_MAIL),
        )
    )
    api(  # the reminder is removed
        client.patch(
            f"/tasks/{s.tasks['erin']['id']}",
            json={"reminders": []},
            headers=headers("erin", ERIN_MAIL),
        )
    )

    result = outcome(deliver(event_client("notify"), s.batch, mode))

    assert result == "2 sent, 0 failed, 6 skipped"
    assert {m["Message-ID"] for m in mails(mail_dir)} == {
        s.message_id("fresh 0"),
        s.message_id("fresh 1"),
    }
    assert set(rows_by_reminder(engine)) == {s.rid("fresh 0"), s.rid("fresh 1")}
    [event] = recorded(engine)
    assert event["data"]["notifications"] == [
        listed(s.item("fresh 0")),
        listed(s.item("fresh 1")),
    ]
    current = statuses(engine)
    assert current[s.rid("rent")] == current[s.rid("carol")] == "canceled"
    assert current[s.rid("bob")] == current[s.rid("dave")] == "scheduled"
    assert s.rid("mum") not in current and s.rid("erin") not in current
    snoozed = get(client, s.tasks["bob"]["id"], user="bob")["reminders"][0]
    assert snoozed["remind_at"] == "2026-12-01T07:10:30Z"
    assert outcome(deliver(event_client("notify"), s.batch, mode)) == "0 sent, 0 failed, 8 skipped"


# -- a bad batch is rejected whole ----------------------------------------------------------------


def _item(index: int, **changes):
    def mutate(items: list[dict]) -> dict:
        changed = [dict(i) for i in items]
        for key, value in changes.items():
            if value is ...:
                del changed[index][key]
            else:
                changed[index][key] = value
        return {"reminders": changed}

    return mutate


def _two_bad_items(items: list[dict]) -> dict:
    data = _item(0, user_id=...)(items)
    return _item(5, timezone="Europe/Atlantis")(data["reminders"])


INVALID_BATCHES = [
    ("data null", lambda items: None, ["data"]),
    ("data a list of the items", lambda items: items, ["data"]),
    ("data a string", lambda items: "reminders", ["data"]),
    ("no reminders", lambda items: {}, ["data.reminders"]),
    ("reminders an object", lambda items: {"reminders": items[0]}, ["data.reminders"]),
    ("no items", lambda items: {"reminders": []}, ["data.reminders"]),
    ("1001 items", lambda items: {"reminders": (items * 167)[:1001]}, ["data.reminders"]),
    (
        "an item not an object",
        lambda items: {"reminders": [*items[:5], "r"]},
        ["data.reminders[5]"],
    ),
    (
        "reminder_id not a uuid",
        _item(1, reminder_id="not-a-uuid"),
        ["data.reminders[1].reminder_id"],
    ),
    ("task_id not a uuid", _item(4, task_id="task-4"), ["data.reminders[4].task_id"]),
    ("unknown time zone", _item(2, timezone="Mars/Olympus"), ["data.reminders[2].timezone"]),
    ("no title", _item(3, title=...), ["data.reminders[3].title"]),
    ("no reminder_id", _item(0, reminder_id=...), ["data.reminders[0].reminder_id"]),
    ("naive remind_at", _item(5, remind_at="2026-12-01T07:00:00"), ["data.reminders[5].remind_at"]),
    ("late a string", _item(0, late="yes"), ["data.reminders[0].late"]),
    (
        "two bad items",
        _two_bad_items,
        ["data.reminders[0].user_id", "data.reminders[5].timezone"],
    ),
    (
        "unknown top-level key",
        lambda items: {"reminders": items, "batch_id": "b-1"},
        ["data.batch_id"],
    ),
    (
        "unknown key and a bad item",
        lambda items: {**_item(2, due_at="tomorrow")(items), "extra": 1},
        ["data.extra", "data.reminders[2].due_at"],
    ),
]


def test_invalid_batch_is_422_naming_each_bad_item_and_sends_nothing(
    client, engine, clock, event_client, mail_dir, mode
):
    s = emit_batch(client, engine, event_client, mode)
    notify = event_client("notify")
    before = outbox_count(engine)

    for case, make, fields in INVALID_BATCHES:
        event = {**s.batch, "id": str(uuid.uuid4()), "data": make([dict(i) for i in s.items])}
        response = deliver(notify, event, mode)
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == fields, case

    assert mails(mail_dir) == []
    assert_nothing_recorded(engine, s)
    assert outbox_count(engine) == before
    # the largest batch allowed, every instance listed many times: each e-mailed once
    largest = {**s.batch, "id": "largest", "data": {"reminders": (s.items * 167)[:1000]}}
    assert outcome(deliver(notify, largest, mode)) == ALL_SENT
    assert len(mails(mail_dir)) == 6 and len(notification_rows(engine)) == 6
    [event] = recorded(engine)
    assert event["data"]["notifications"] == [listed(i) for i in s.items]


# -- the two contracts side by side -------------------------------------------------------------


def test_single_and_batch_events_of_one_instance_send_one_email(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    """A reminder.due (DUEFLOW_REMINDER_EVENT_BATCH=1, or an old dead letter replayed) and a
    reminders.due that list the same instance: whichever comes second sends nothing."""
    server = SmtpRecorder()
    use_smtp(reconfigure, smtp_server(server))
    s = emit_batch(client, engine, event_client, mode)
    notify = event_client("notify")

    assert outcome(deliver(notify, single_event(s.item("rent")), mode)) == "sent"
    assert outcome(deliver(notify, s.batch, mode)) == "5 sent, 0 failed, 1 skipped"
    for name in TASKS:
        assert outcome(deliver(notify, single_event(s.item(name)), mode)) == "already sent"

    assert server.message_ids() == Counter({s.message_id(name): 1 for name in TASKS})
    [sent] = outbox(engine, ev.NOTIFICATION_SENT)
    assert sent["data"]["reminder_id"] == s.rid("rent")
    [event] = recorded(engine)
    assert event["data"]["notifications"] == [
        listed(i) for i in s.items if i["reminder_id"] != s.rid("rent")
    ]
    assert len(notification_rows(engine)) == 6


# =============================================================================================
# notify over SMTP: one connection per batch; permanent and transient failures
# =============================================================================================


def test_batch_goes_over_one_smtp_connection(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    server = SmtpRecorder()
    use_smtp(reconfigure, smtp_server(server))
    s = emit_batch(client, engine, event_client, mode)
    notify = event_client("notify")

    assert outcome(deliver(notify, s.batch, mode)) == ALL_SENT

    assert server.connections == 1
    assert server.message_ids() == Counter({s.message_id(name): 1 for name in TASKS})
    by_id = {d.message["Message-ID"]: d for d in server.delivered}
    for name in TASKS:
        got = by_id[s.message_id(name)]
        assert got.rcpt_tos == [s.addresses[name]] and got.mail_from == "reminders@dueflow.test"
        assert DUE_LINE[name] in text_of(got.message)
    [event] = recorded(engine)
    assert event["data"]["backend"] == "smtp"

    assert outcome(deliver(notify, s.batch, mode)) == ALL_SKIPPED
    assert server.connections == 1 and len(server.delivered) == 6  # not even connected


def test_smtp_down_is_503_then_the_redelivery_sends_all_once(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    port = free_port()
    use_smtp(reconfigure, port)
    s = emit_batch(client, engine, event_client, mode)
    notify = event_client("notify")

    down = deliver(notify, s.batch, mode)

    body = assert_problem(down, 503)
    assert down.headers["Retry-After"] == "1"
    assert "TransientEmailError" in body["detail"]
    assert_nothing_recorded(engine, s)

    server = SmtpRecorder()
    smtp_server(server, port=port)  # the mail server is back
    assert outcome(deliver(notify, s.batch, mode)) == ALL_SENT
    assert outcome(deliver(notify, s.batch, mode)) == ALL_SKIPPED

    assert server.message_ids() == Counter({s.message_id(name): 1 for name in TASKS})
    assert server.connections == 1
    [event] = recorded(engine)
    assert event["data"]["notifications"] == [listed(i) for i in s.items]


def test_refused_recipient_fails_that_reminder_and_the_rest_are_sent(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    server = SmtpRecorder(refuse=BOB_MAIL)
    use_smtp(reconfigure, smtp_server(server))
    s = emit_batch(client, engine, event_client, mode)
    notify = event_client("notify")

    assert outcome(deliver(notify, s.batch, mode)) == "5 sent, 1 failed, 0 skipped"

    assert server.message_ids() == Counter(
        {s.message_id(name): 1 for name in TASKS if name != "bob"}
    )
    assert server.connections == 1  # a refused recipient does not cost the connection
    rows = rows_by_reminder(engine)
    refused = rows[s.rid("bob")]
    assert (refused["status"], refused["backend"]) == ("failed", "smtp")
    assert "550" in refused["error"] and "@" not in refused["error"]
    assert {rows[s.rid(n)]["status"] for n in TASKS if n != "bob"} == {"sent"}
    task = get(client, s.tasks["bob"]["id"], user="bob")
    assert [r["status"] for r in task["reminders"]] == ["failed"]
    [event] = recorded(engine)
    [entry] = [n for n in event["data"]["notifications"] if n["status"] == "failed"]
    assert entry == listed(s.item("bob"), "failed", error=refused["error"][:500])

    attempts = len(server.rcpt_attempts)
    assert outcome(deliver(notify, s.batch, mode)) == ALL_SKIPPED
    assert len(server.rcpt_attempts) == attempts == 6  # bob's was not tried again


@pytest.mark.parametrize("how", ["451", "disconnect"])
def test_transient_failure_mid_batch_keeps_what_was_sent_and_the_retry_sends_the_rest(
    client, engine, clock, event_client, reconfigure, smtp_server, mode, how
):
    server = FlakyRecorder(accept=3, how=how)
    use_smtp(reconfigure, smtp_server(server))
    s = emit_batch(client, engine, event_client, mode)
    notify = event_client("notify")
    first, rest = s.items[:3], s.items[3:]

    failed = deliver(notify, s.batch, mode)

    assert_problem(failed, 503)
    assert failed.headers["Retry-After"] == "1"
    assert server.message_ids() == Counter({message_id(i): 1 for i in first})
    rows = rows_by_reminder(engine)
    assert set(rows) == {i["reminder_id"] for i in first}
    assert {row["status"] for row in rows.values()} == {"sent"}
    [event] = recorded(engine)
    assert event["data"]["notifications"] == [listed(i) for i in first]
    current = statuses(engine)
    assert [current[i["reminder_id"]] for i in s.items] == ["sent"] * 3 + ["scheduled"] * 3

    server.recover()
    clock.advance(minutes=30)  # the broker's retries took half an hour: the rest is late now
    assert outcome(deliver(notify, s.batch, mode)) == "3 sent, 0 failed, 3 skipped"
    assert outcome(deliver(notify, s.batch, mode)) == ALL_SKIPPED

    assert server.message_ids() == Counter({s.message_id(name): 1 for name in TASKS})
    late = {
        d.message["Message-ID"]: d.message["Subject"].endswith("(late)") for d in server.delivered
    }
    assert late == {message_id(i): i in rest or i["late"] for i in s.items}
    assert len(notification_rows(engine)) == 6
    events = recorded(engine)
    assert [e["data"]["notifications"] for e in events] == [
        [listed(i) for i in first],
        [listed(i) for i in rest],
    ]


# =============================================================================================
# known bugs
# =============================================================================================


def test_eml_directory_that_cannot_be_written_is_503_and_records_nothing(
    client, engine, clock, event_client, reconfigure, tmp_path, mode
):
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a directory")
    reconfigure(DUEFLOW_EML_DIR=str(blocker / "eml"))
    s = emit_batch(client, engine, event_client, mode)

    response = deliver(event_client("notify"), s.batch, mode)

    assert_problem(response, 503)  # the outcome: "6 sent, 0 failed, 0 skipped"
    assert_nothing_recorded(engine, s)


QUOTED_MAIL = '"quinn smith"@example.com'  # a quoted local part (RFC 5321): legal, if rare


def test_refusal_of_an_address_with_a_quoted_local_part_names_no_address(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    server = SmtpRecorder(refuse=QUOTED_MAIL)
    use_smtp(reconfigure, smtp_server(server))
    task = {"title": "Quinn's call", "reminders": [{"at": "2026-12-01T06:40:00Z"}]}
    s = emit_batch(
        client, engine, event_client, mode, extra=[("quinn", "quinn", QUOTED_MAIL, task)]
    )

    result = outcome(deliver(event_client("notify"), s.batch, mode))

    assert result == "6 sent, 1 failed, 0 skipped"
    assert server.rcpt_attempts.count(QUOTED_MAIL) == 1
    error = rows_by_reminder(engine)[s.rid("quinn")]["error"]
    assert "550" in error
    assert "@" not in error and "quinn smith" not in error, error
    [event] = recorded(engine)  # validates: no @ in any error

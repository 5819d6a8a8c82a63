"""The event functions (recurrence, reminders, notify) as functions-framework serves them, driven
by real deliveries: CloudEvents in binary mode (ce-* headers + JSON body) and in structured mode
(application/cloudevents+json), Dapr binding POSTs, and Dapr's OPTIONS probe.

Events are not written by hand where the system can make them: the tasks API (`client`) and the
reminders tick write them to the outbox, and the tests deliver those payloads. Every test runs on
SQLite and on PostgreSQL; every test that delivers an event runs in both CloudEvents modes. Time
is a frozen clock shared by the four services (see conftest.py); e-mail goes to the `eml`
backend (one .eml file per message) unless the test is about SMTP or SendGrid, which run against
a real aiosmtpd server and an HTTP fake of the SendGrid API on 127.0.0.1.

The reminders tick runs here with DUEFLOW_REMINDER_EVENT_BATCH=1: one dev.dueflow.reminder.due
event per reminder, the single-event contract notify keeps serving. The batches the tick emits
by default (dev.dueflow.reminders.due) are tested in test_reminder_batches.py.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dueflow import bootstrap
from dueflow.domain import events as ev
from dueflow.domain.timefmt import format_instant
from tests.support.clock import T0
from tests.support.event_functions import (
    ALICE_MAIL,
    PING_SOURCE,
    RECURRING,
    RENT,
    CountingCollector,
    act,
    api,
    completion,
    create,
    emit_rent,
    emitted_count,
    get,
    headers,
    mails,
    notification_rows,
    one_event_per_reminder,  # noqa: F401 (autouse)
    outbox,
    outbox_count,
    ping,
    reminder,
    series,
    snooze,
    tasks_with_reminders,
    text_of,
)
from tests.support.events import as_http, deliver, outcome
from tests.support.http import FakeHTTP, free_port
from tests.support.smtp import Collector
from tests.support.tasks_api import assert_problem, task_count

# =============================================================================================
# recurrence: dev.dueflow.task.completed -> the series' next instance
# =============================================================================================


def test_completion_creates_the_next_instance(client, engine, clock, event_client, mode):
    first = create(client, RECURRING)
    completed = completion(client, engine, first["id"])
    assert completed["data"]["task"]["completed_at"] == format_instant(T0)

    response = deliver(event_client("recurrence"), completed, mode)

    assert outcome(response) == "next instance created"
    assert [occ for occ, _ in series(engine, first["series_id"])] == [1, 2]
    [(_, instance_id)] = [s for s in series(engine, first["series_id"]) if s[0] == 2]
    instance = get(client, instance_id)
    assert instance["id"] != first["id"]
    for field in ("series_id", "title", "description", "priority", "tags", "timezone"):
        assert instance[field] == first[field], field
    assert (
        instance["recurrence"]
        == first["recurrence"]
        == {
            "rrule": "FREQ=WEEKLY",
            "basis": "due",
            "exdates": [],
        }
    )
    assert instance["occurrence"] == 2 and instance["status"] == "open"
    assert instance["due_at"] == "2026-12-09T08:00:00Z"  # a week on, 09:00 in Berlin again
    assert instance["completed_at"] is None
    assert instance["created_at"] == instance["updated_at"] == format_instant(T0)
    # relative reminders are made anew for the new due date; the absolute one is not copied
    assert [(r["before"], r["remind_at"], r["status"]) for r in instance["reminders"]] == [
        ("PT1H", "2026-12-09T07:00:00Z", "scheduled"),
        ("P1D", "2026-12-08T08:00:00Z", "scheduled"),
    ]
    assert all("at" not in r for r in instance["reminders"])
    old_ids = {r["id"] for r in first["reminders"]}
    assert not old_ids & {r["id"] for r in instance["reminders"]}
    # the original is untouched: still done, occurrence 1
    assert get(client, first["id"])["status"] == "done"
    assert get(client, first["id"])["occurrence"] == 1

    created = [e for e in outbox(engine, ev.TASK_CREATED) if e["subject"] == instance_id]
    assert len(created) == 1
    assert created[0]["source"] == ev.TASKS_SOURCE
    assert created[0]["data"] == {"user_id": "alice", "task": instance}


def test_redelivery_and_a_second_completion_make_one_instance(
    client, engine, clock, event_client, mode
):
    first = create(client, RECURRING)
    completed = completion(client, engine, first["id"])
    recurrence = event_client("recurrence")

    outcomes = [outcome(deliver(recurrence, completed, mode)) for _ in range(3)]
    assert outcomes == ["next instance created"] + ["next instance exists"] * 2

    clock.advance(minutes=5)
    act(client, first["id"], "reopen")
    clock.advance(minutes=5)
    again = completion(client, engine, first["id"])
    assert again["id"] != completed["id"]
    assert again["data"]["task"]["completed_at"] == format_instant(T0 + timedelta(minutes=10))
    assert outcome(deliver(recurrence, again, mode)) == "next instance exists"

    assert [occ for occ, _ in series(engine, first["series_id"])] == [1, 2]
    assert len(outbox(engine, ev.TASK_CREATED)) == 2  # the first instance's and the second's


def test_out_of_order_completions_make_one_instance_per_occurrence(
    client, engine, clock, event_client, mode
):
    """Instance 2's completion arrives before an earlier completion of instance 1 ever does."""
    recurrence = event_client("recurrence")
    first = create(client, RECURRING)
    early = completion(client, engine, first["id"])  # delayed in the broker
    act(client, first["id"], "reopen")
    clock.advance(minutes=1)
    late = completion(client, engine, first["id"])
    assert outcome(deliver(recurrence, late, mode)) == "next instance created"
    [_, (_, second_id)] = series(engine, first["series_id"])
    second_done = completion(client, engine, second_id)

    assert outcome(deliver(recurrence, second_done, mode)) == "next instance created"
    assert outcome(deliver(recurrence, early, mode)) == "next instance exists"
    assert outcome(deliver(recurrence, late, mode)) == "next instance exists"
    assert outcome(deliver(recurrence, second_done, mode)) == "next instance exists"

    instances = series(engine, first["series_id"])
    assert [occ for occ, _ in instances] == [1, 2, 3]
    assert len({task_id for _, task_id in instances}) == 3
    assert get(client, instances[2][1])["due_at"] == "2026-12-16T08:00:00Z"


def test_completed_task_that_does_not_recur(client, engine, clock, event_client, mode):
    task = create(client, {"title": "Once", "due_at": "2026-12-02T08:00:00Z"})
    completed = completion(client, engine, task["id"])
    before = outbox_count(engine)

    assert outcome(deliver(event_client("recurrence"), completed, mode)) == "not recurring"
    assert task_count(engine) == 1 and outbox_count(engine) == before


def test_completed_then_deleted_task(client, engine, clock, event_client, mode):
    task = create(client, RECURRING)
    completed = completion(client, engine, task["id"])
    assert client.delete(f"/tasks/{task['id']}", headers=headers()).status_code == 204
    before = outbox_count(engine)

    assert outcome(deliver(event_client("recurrence"), completed, mode)) == "task gone"
    assert task_count(engine) == 0 and outbox_count(engine) == before


def test_exhausted_count_series_makes_no_instance(client, engine, clock, event_client, mode):
    recurrence = event_client("recurrence")
    first = create(client, {**RECURRING, "recurrence": {"rrule": "FREQ=DAILY;COUNT=2"}})
    assert outcome(deliver(recurrence, completion(client, engine, first["id"]), mode)) == (
        "next instance created"
    )
    [_, (_, last_id)] = series(engine, first["series_id"])
    assert get(client, last_id)["due_at"] == "2026-12-03T08:00:00Z"
    last_done = completion(client, engine, last_id)
    before = outbox_count(engine)

    assert outcome(deliver(recurrence, last_done, mode)) == "series ended"
    assert [occ for occ, _ in series(engine, first["series_id"])] == [1, 2]
    assert outbox_count(engine) == before


def _without_task_id(data):
    del data["task"]["id"]


def _bad_completed_at(data):
    data["task"]["completed_at"] = "yesterday at noon"


def _naive_completed_at(data):
    data["task"]["completed_at"] = "2026-12-01T07:00:00"


def _no_user(data):
    del data["user_id"]


def _task_not_an_object(data):
    data["task"] = "water the plants"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_without_task_id, "data"),
        (_bad_completed_at, "data.task.completed_at"),
        (_naive_completed_at, "data.task.completed_at"),
        (_no_user, "data"),
        (_task_not_an_object, "data"),
    ],
)
def test_malformed_completion_is_422_and_writes_nothing(
    client, engine, clock, event_client, mode, mutate, field
):
    task = create(client, RECURRING)
    event = completion(client, engine, task["id"])
    mutate(event["data"])
    before = (task_count(engine), outbox_count(engine))

    body = assert_problem(deliver(event_client("recurrence"), event, mode), 422)

    assert [e["field"] for e in body["errors"]] == [field]
    assert (task_count(engine), outbox_count(engine)) == before


@pytest.mark.parametrize("data", [None, [], "task.completed"])
def test_completion_without_an_object_is_422(client, engine, clock, event_client, mode, data):
    event = ev.envelope(ev.TASK_COMPLETED, ev.TASKS_SOURCE, str(uuid.uuid4()), T0, {})
    event["data"] = data
    assert_problem(deliver(event_client("recurrence"), event, mode), 422)
    assert task_count(engine) == 0


def test_completion_with_a_task_id_that_is_no_uuid_is_never_retried(
    request, client, engine, clock, event_client, mode
):
    """A task id that cannot name any task is a bad event: a 4xx, never a 5xx (endless retries)."""
    task = create(client, RECURRING)
    event = completion(client, engine, task["id"])
    event["data"]["task"]["id"] = "not-a-uuid"
    before = (task_count(engine), outbox_count(engine))

    response = deliver(event_client("recurrence"), event, mode)

    assert response.status_code < 500, response.get_data(as_text=True)
    assert (task_count(engine), outbox_count(engine)) == before


def test_recurrence_rejects_other_event_types(client, engine, clock, event_client, mode):
    create(client, RECURRING)
    [created] = outbox(engine, ev.TASK_CREATED)
    body = assert_problem(deliver(event_client("recurrence"), created, mode), 400)
    assert ev.TASK_CREATED in body["detail"]
    assert task_count(engine) == 1


@pytest.mark.parametrize("function", ["recurrence", "reminders", "notify"])
def test_database_down_is_503_so_the_sender_retries(
    client, engine, clock, event_client, reconfigure, mode, function
):
    if function == "recurrence":
        event = completion(client, engine, create(client, RECURRING)["id"])
    elif function == "notify":
        _, event = emit_rent(client, engine, event_client, mode)
    else:
        event = {
            "specversion": "1.0",
            "id": "tick-1",
            "source": PING_SOURCE,
            "type": "dev.knative.sources.ping",
        }
    reconfigure(DATABASE_URL="postgresql+psycopg2://nobody@127.0.0.1:1/none")

    response = deliver(event_client(function), event, mode)

    body = assert_problem(response, 503)
    assert response.headers["Retry-After"] == "1"
    assert "OperationalError" in body["detail"]
    ready = event_client(function).get("/readyz")
    assert_problem(ready, 503)


# =============================================================================================
# reminders: every delivery is a tick that emits dev.dueflow.reminder.due once per due reminder
# =============================================================================================


def test_tick_emits_each_due_reminder_once(client, engine, clock, event_client, mode):
    rent = create(client, RENT)
    mum = create(
        client, {"title": "Call mum", "reminders": [{"at": "2026-12-01T06:59:00Z"}]}
    )  # no due date, UTC
    done = create(
        client,
        {
            "title": "Done already",
            "due_at": "2026-12-01T08:00:00Z",
            "reminders": [{"before": "PT2H"}],
        },
    )
    act(client, done["id"], "complete")
    bobs = create(
        client,
        {
            "title": "Bob's",
            "timezone": "America/New_York",
            "due_at": "2026-12-01T14:00:00Z",
            "reminders": [{"at": "2026-12-01T06:30:00Z"}],
        },
        user="bob",
        mail="bob@example.com",
    )

    assert ping(mode, event_client) == "emitted 3"

    emitted = outbox(engine, ev.REMINDER_DUE)
    by_reminder = {e["data"]["reminder_id"]: e for e in emitted}
    assert len(by_reminder) == len(emitted) == 3
    expected = {
        reminder(rent, "PT1H")["id"]: {
            "user_id": "alice",
            "task_id": rent["id"],
            "remind_at": "2026-12-01T07:00:00Z",
            "title": "Pay rent",
            "due_at": "2026-12-01T08:00:00Z",
            "timezone": "Europe/Berlin",
            "late": False,
        },
        reminder(mum, at="2026-12-01T06:59:00Z")["id"]: {
            "user_id": "alice",
            "task_id": mum["id"],
            "remind_at": "2026-12-01T06:59:00Z",
            "title": "Call mum",
            "due_at": None,
            "timezone": "UTC",
            "late": False,  # one minute: a minute-granular PingSource is that late by design
        },
        reminder(bobs, at="2026-12-01T06:30:00Z")["id"]: {
            "user_id": "bob",
            "task_id": bobs["id"],
            "remind_at": "2026-12-01T06:30:00Z",
            "title": "Bob's",
            "due_at": "2026-12-01T14:00:00Z",
            "timezone": "America/New_York",
            "late": True,
        },
    }
    assert set(by_reminder) == set(expected)
    for reminder_id, data in expected.items():
        event = by_reminder[reminder_id]
        assert event["data"] == {**data, "reminder_id": reminder_id}
        assert event["source"] == ev.REMINDERS_SOURCE
        assert event["subject"] == event["partitionkey"] == data["task_id"]
        assert event["time"] == format_instant(T0)
        assert event["dataschema"] == ev.dataschema(ev.REMINDER_DUE)
    # emitted is not sent: the API still shows them scheduled
    assert reminder(get(client, rent["id"]), "PT1H")["status"] == "scheduled"

    assert ping(mode, event_client) == "emitted 0"
    assert len(outbox(engine, ev.REMINDER_DUE)) == 3

    clock.set(T0 + timedelta(minutes=30))  # the rent's second reminder (PT30M) is due now
    assert ping(mode, event_client) == "emitted 1"
    [newest] = outbox(engine, ev.REMINDER_DUE)[3:]
    assert newest["data"]["reminder_id"] == reminder(rent, "PT30M")["id"]
    assert newest["data"]["late"] is False
    assert ping(mode, event_client) == "emitted 0"


def test_future_reminders_and_done_tasks_are_not_emitted(client, engine, clock, event_client, mode):
    create(client, {**RENT, "reminders": [{"before": "PT59M"}]})  # 07:01Z: a minute from now
    done = create(client, {**RENT, "title": "Done", "reminders": [{"before": "PT2H"}]})
    act(client, done["id"], "complete")

    assert ping(mode, event_client) == "emitted 0"
    assert outbox(engine, ev.REMINDER_DUE) == [] and emitted_count(engine) == 0

    clock.advance(minutes=1)
    assert ping(mode, event_client) == "emitted 1"
    [due] = outbox(engine, ev.REMINDER_DUE)
    assert due["data"]["title"] == "Pay rent"


@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_dapr_cron_binding_and_options_probe(client, engine, clock, event_client, content_type):
    rent = create(client, RENT)
    reminders_fn = event_client("reminders")

    probe = reminders_fn.options("/reminders-tick")
    assert probe.status_code == 200

    kwargs = {"content_type": content_type} if content_type else {}
    response = reminders_fn.post("/reminders-tick", data=b"", **kwargs)
    assert outcome(response) == "emitted 1"
    [due] = outbox(engine, ev.REMINDER_DUE)
    assert due["data"]["reminder_id"] == reminder(rent, "PT1H")["id"]
    assert outcome(reminders_fn.post("/reminders-tick", data=b"", **kwargs)) == "emitted 0"


def test_catch_up_after_downtime_marks_old_reminders_late(
    client, engine, clock, event_client, mode
):
    rent = create(client, {**RENT, "reminders": [{"before": "PT1H"}, {"before": "PT1M"}]})
    clock.set(T0 + timedelta(hours=1))  # the ticker was down from 07:00 to 08:00

    assert ping(mode, event_client) == "emitted 2"

    late = {e["data"]["reminder_id"]: e["data"]["late"] for e in outbox(engine, ev.REMINDER_DUE)}
    assert late == {
        reminder(rent, "PT1H")["id"]: True,  # an hour late
        reminder(rent, "PT1M")["id"]: False,  # one minute: within DUEFLOW_REMINDER_LATE_AFTER
    }


def test_racing_ticks_emit_every_reminder_exactly_once(engine, clock):
    """Two ticks (replicas, or a slow tick overlapping the next) claim the same due reminders."""
    rt = bootstrap.runtime()
    rt.reminders.batch_size = 50
    rounds, per_round = 6, 300
    for round_no in range(rounds):
        tasks_with_reminders(per_round // 10, f"round {round_no}")
        barrier = threading.Barrier(2)
        results: list[int] = []
        errors: list[BaseException] = []

        def run(barrier=barrier, results=results, errors=errors):
            try:
                barrier.wait(timeout=30)
                results.append(rt.reminders.tick())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert sum(results) == per_round, (round_no, results)

    emitted = Counter(e["data"]["reminder_id"] for e in outbox(engine, ev.REMINDER_DUE))
    assert len(emitted) == rounds * per_round
    assert set(emitted.values()) == {1}
    assert emitted_count(engine) == rounds * per_round
    assert rt.reminders.tick() == 0


def test_claiming_many_reminders_costs_a_few_statements_per_batch(engine, clock):
    rt = bootstrap.runtime()
    tasks_with_reminders(200, "bulk")  # 2,000 due reminders
    rt.reminders.batch_size = 250
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    sa.event.listen(rt.engine, "before_cursor_execute", count)
    try:
        assert rt.reminders.tick() == 2000
    finally:
        sa.event.remove(rt.engine, "before_cursor_execute", count)

    batches = 2000 // 250 + 1  # eight full batches, then an empty claim ends the tick
    queries = [s for s in statements if s not in ("BEGIN", "COMMIT", "ROLLBACK")]
    assert len(queries) <= 3 * batches + 2, Counter(statements)
    assert Counter(queries) == {"SELECT": batches, "INSERT": batches - 1, "UPDATE": batches - 1}
    assert len(outbox(engine, ev.REMINDER_DUE)) == 2000


@pytest.fixture
def crash_on_second_batch(engine):
    """A DB-level failure: the outbox refuses reminder.due rows once 50 are in it, so the first
    batch of a tick commits and the second one fails mid-transaction (as if the process died
    between claiming and emitting). Removed after the test."""
    guard = "(SELECT count(*) FROM outbox WHERE event_type = 'dev.dueflow.reminder.due') >= 50"
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER test_crash BEFORE INSERT ON outbox "
                f"WHEN NEW.event_type = 'dev.dueflow.reminder.due' AND {guard} "
                "BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION test_crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.event_type = 'dev.dueflow.reminder.due' AND {guard} THEN "
                "RAISE EXCEPTION 'simulated crash'; END IF; RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER test_crash BEFORE INSERT ON outbox "
                "FOR EACH ROW EXECUTE FUNCTION test_crash()"
            )

    def remove():
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS test_crash")
            else:
                conn.exec_driver_sql("DROP TRIGGER IF EXISTS test_crash ON outbox")
                conn.exec_driver_sql("DROP FUNCTION IF EXISTS test_crash()")

    yield remove
    remove()


def test_crash_between_claim_and_emit_loses_nothing(
    client, engine, clock, event_client, reconfigure, crash_on_second_batch, mode
):
    reconfigure(DUEFLOW_REMINDER_BATCH="50")
    tasks_with_reminders(12, "crash")  # 120 due reminders
    tick = event_client("reminders")
    event = {
        "specversion": "1.0",
        "id": "t1",
        "source": PING_SOURCE,
        "type": "dev.knative.sources.ping",
    }

    failed = deliver(tick, event, mode)

    assert_problem(failed, 500)  # the sender retries; the next tick would catch up anyway
    assert len(outbox(engine, ev.REMINDER_DUE)) == 50  # the first batch committed
    assert emitted_count(engine) == 50  # the failed batch is not marked emitted

    crash_on_second_batch()  # the database is healthy again
    assert outcome(deliver(tick, {**event, "id": "t2"}, mode)) == "emitted 70"

    emitted = Counter(e["data"]["reminder_id"] for e in outbox(engine, ev.REMINDER_DUE))
    assert len(emitted) == 120 and set(emitted.values()) == {1}
    assert emitted_count(engine) == 120
    assert outcome(deliver(tick, {**event, "id": "t3"}, mode)) == "emitted 0"


# =============================================================================================
# notify: dev.dueflow.reminder.due -> one e-mail per reminder instance
# =============================================================================================


def test_reminder_is_emailed_once(client, engine, clock, event_client, mail_dir, mode):
    task, due = emit_rent(client, engine, event_client, mode)
    rid = due["data"]["reminder_id"]
    notify = event_client("notify")

    assert outcome(deliver(notify, due, mode)) == "sent"

    [message] = mails(mail_dir)
    assert message["To"] == ALICE_MAIL
    assert message["From"].addresses[0].addr_spec == "reminders@dueflow.test"
    assert message["Subject"] == "Reminder: Pay rent"
    assert message["Message-ID"] == f"<r-{rid}-20261201T070000Z@dueflow>"
    body = text_of(message)
    assert "Due Tuesday, 1 December 2026 at 09:00 CET (Europe/Berlin)." in body
    assert "late" not in body and "late" not in message["Subject"]
    after = get(client, task["id"])
    assert reminder(after, "PT1H")["status"] == "sent"
    assert reminder(after, "PT30M")["status"] == "scheduled"
    [sent] = outbox(engine, ev.NOTIFICATION_SENT)
    assert sent["source"] == ev.NOTIFY_SOURCE and sent["subject"] == task["id"]
    assert sent["data"] == {
        "user_id": "alice",
        "task_id": task["id"],
        "reminder_id": rid,
        "remind_at": "2026-12-01T07:00:00Z",
        "backend": "eml",
    }

    for _ in range(3):
        assert outcome(deliver(notify, due, mode)) == "already sent"
    assert len(mails(mail_dir)) == 1
    assert len(outbox(engine, ev.NOTIFICATION_SENT)) == 1
    assert [(n["reminder_id"], n["status"]) for n in notification_rows(engine)] == [(rid, "sent")]


def test_concurrent_deliveries_send_one_email(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    collector = CountingCollector()
    port = smtp_server(collector)
    reconfigure(DUEFLOW_EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}")
    _, due = emit_rent(client, engine, event_client, mode)
    headers_, body = as_http(due, mode)
    barrier = threading.Barrier(4)
    answers: list = []

    def run():
        notify = event_client("notify")  # one client per thread, as four broker connections
        barrier.wait(timeout=30)
        answers.append(notify.post("/", headers=headers_, data=body))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(outcome(a) for a in answers) == ["already sent"] * 3 + ["sent"]
    assert len(collector.delivered) == 1
    assert collector.delivered[0].rcpt_tos == [ALICE_MAIL]
    assert len(outbox(engine, ev.NOTIFICATION_SENT)) == 1


def test_late_reminder_email_says_it_is_late(client, engine, clock, event_client, mail_dir, mode):
    create(client, RENT)
    clock.set(T0 + timedelta(hours=1, minutes=5))  # catch-up tick after downtime
    assert ping(mode, event_client) == "emitted 2"
    due = next(e for e in outbox(engine, ev.REMINDER_DUE) if e["data"]["late"])
    assert due["data"]["remind_at"] == "2026-12-01T07:00:00Z"

    assert outcome(deliver(event_client("notify"), due, mode)) == "sent"

    [message] = mails(mail_dir)
    assert message["Subject"] == "Reminder: Pay rent (late)"
    assert (
        "This reminder is late: it was meant for Tuesday, 1 December 2026 at 08:00 CET "
        "(Europe/Berlin)" in text_of(message).replace("\n", " ")
    )


def test_reminder_delayed_by_retries_is_sent_as_late(
    client, engine, clock, event_client, mail_dir, mode
):
    _, due = emit_rent(client, engine, event_client, mode)
    assert due["data"]["late"] is False
    clock.advance(minutes=30)  # the broker's retries took half an hour

    assert outcome(deliver(event_client("notify"), due, mode)) == "sent"
    [message] = mails(mail_dir)
    assert message["Subject"] == "Reminder: Pay rent (late)"


@pytest.mark.parametrize("change", ["complete", "delete", "snooze"])
def test_stale_reminder_is_not_emailed(client, engine, clock, event_client, mail_dir, mode, change):
    task, due = emit_rent(client, engine, event_client, mode)
    rid = due["data"]["reminder_id"]
    clock.advance(seconds=30)
    if change == "complete":
        act(client, task["id"], "complete")
    elif change == "delete":
        assert client.delete(f"/tasks/{task['id']}", headers=headers()).status_code == 204
    else:
        api(snooze(client, task["id"], rid, {"for": "PT10M"}))

    result = outcome(deliver(event_client("notify"), due, mode))

    assert result.startswith("stale")
    assert mails(mail_dir) == []
    assert notification_rows(engine) == []
    assert outbox(engine, ev.NOTIFICATION_SENT) + outbox(engine, ev.NOTIFICATION_FAILED) == []
    if change == "complete":
        assert reminder(get(client, task["id"]), "PT1H")["status"] == "canceled"
    if change == "snooze":
        snoozed = reminder(get(client, task["id"]), "PT1H")
        assert snoozed["status"] == "scheduled"
        assert snoozed["remind_at"] == "2026-12-01T07:10:30Z"


def test_smtp_down_is_retried_then_sent_once(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    port = free_port()
    reconfigure(DUEFLOW_EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}")
    task, due = emit_rent(client, engine, event_client, mode)
    notify = event_client("notify")

    down = deliver(notify, due, mode)

    body = assert_problem(down, 503)
    assert down.headers["Retry-After"] == "1"
    assert "TransientEmailError" in body["detail"]
    assert notification_rows(engine) == []
    assert outbox(engine, ev.NOTIFICATION_SENT) + outbox(engine, ev.NOTIFICATION_FAILED) == []
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "scheduled"

    collector = Collector()
    smtp_server(collector, port=port)  # the mail server is back
    assert outcome(deliver(notify, due, mode)) == "sent"
    assert outcome(deliver(notify, due, mode)) == "already sent"

    [got] = collector.delivered
    assert got.rcpt_tos == [ALICE_MAIL]
    assert got.message["Subject"] == "Reminder: Pay rent"
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "sent"
    assert len(outbox(engine, ev.NOTIFICATION_SENT)) == 1


def test_refused_recipient_fails_for_good(
    client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    collector = CountingCollector(rcpt_reply="550 No such user here")
    port = smtp_server(collector)
    reconfigure(DUEFLOW_EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}")
    task, due = emit_rent(client, engine, event_client, mode)
    notify = event_client("notify")

    assert outcome(deliver(notify, due, mode)) == "failed"

    assert reminder(get(client, task["id"]), "PT1H")["status"] == "failed"
    [failed] = outbox(engine, ev.NOTIFICATION_FAILED)
    assert failed["data"]["backend"] == "smtp"
    assert failed["data"]["reminder_id"] == due["data"]["reminder_id"]
    assert "550" in failed["data"]["error"]
    assert outbox(engine, ev.NOTIFICATION_SENT) == []
    [row] = notification_rows(engine)
    assert (row["status"], row["backend"]) == ("failed", "smtp") and "550" in row["error"]

    assert outcome(deliver(notify, due, mode)) == "already failed"
    assert collector.rcpt_attempts == 1 and collector.delivered == []


def test_user_without_an_email_claim_fails(client, engine, clock, event_client, mail_dir, mode):
    task, due = emit_rent(client, engine, event_client, mode, mail=None)

    assert outcome(deliver(event_client("notify"), due, mode)) == "failed"

    assert mails(mail_dir) == []
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "failed"
    [failed] = outbox(engine, ev.NOTIFICATION_FAILED)
    assert "no e-mail address" in failed["data"]["error"]


def test_sendgrid_receives_the_v3_request_once(
    client, engine, clock, event_client, reconfigure, mode
):
    fake = FakeHTTP()
    try:
        fake.answer(202)
        reconfigure(
            DUEFLOW_EMAIL_BACKEND="sendgrid",
            SENDGRID_API_KEY="SG.test-key",
            DUEFLOW_SENDGRID_HOST=f"http://127.0.0.1:{fake.port}",
        )
        _, due = emit_rent(client, engine, event_client, mode)
        notify = event_client("notify")

        assert outcome(deliver(notify, due, mode)) == "sent"
        assert outcome(deliver(notify, due, mode)) == "already sent"
    finally:
        fake.close()

    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/v3/mail/send")
    assert req.headers["Authorization"] == "Bearer SG.test-key"
    rid = due["data"]["reminder_id"]
    assert req.json() == {
        "from": {"email": "reminders@dueflow.test", "name": "dueflow"},
        "subject": "Reminder: Pay rent",
        "personalizations": [{"to": [{"email": ALICE_MAIL}]}],
        "content": [
            {
                "type": "text/plain",
                "value": "Reminder: Pay rent\n\n"
                "Due Tuesday, 1 December 2026 at 09:00 CET (Europe/Berlin).\n\n— dueflow\n",
            }
        ],
        "headers": {"Message-ID": f"<r-{rid}-20261201T070000Z@dueflow>"},
    }
    [sent] = outbox(engine, ev.NOTIFICATION_SENT)
    assert sent["data"]["backend"] == "sendgrid"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("reminder_id", ..., "data.reminder_id"),
        ("reminder_id", "", "data.reminder_id"),
        ("remind_at", "soon", "data.remind_at"),
        ("remind_at", "2026-12-01T07:00:00", "data.remind_at"),
        ("title", "", "data.title"),
        ("user_id", 42, "data.user_id"),
    ],
)
def test_malformed_reminder_due_is_422_and_sends_nothing(
    client, engine, clock, event_client, mail_dir, mode, field, value, error
):
    task, due = emit_rent(client, engine, event_client, mode)
    if value is ...:
        del due["data"][field]
    else:
        due["data"][field] = value

    body = assert_problem(deliver(event_client("notify"), due, mode), 422)

    assert [e["field"] for e in body["errors"]] == [error]
    assert mails(mail_dir) == [] and notification_rows(engine) == []
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "scheduled"


@pytest.mark.parametrize("data", [None, [], "reminder"])
def test_reminder_due_without_an_object_is_422(client, engine, clock, event_client, mode, data):
    event = ev.envelope(ev.REMINDER_DUE, ev.REMINDERS_SOURCE, str(uuid.uuid4()), T0, {})
    event["data"] = data
    body = assert_problem(deliver(event_client("notify"), event, mode), 422)
    assert [e["field"] for e in body["errors"]] == ["data"]


def test_reminder_due_with_an_unknown_time_zone_is_never_retried(
    client, engine, clock, event_client, mail_dir, mode
):
    task, due = emit_rent(client, engine, event_client, mode)
    due["data"]["timezone"] = "Mars/Olympus"

    response = deliver(event_client("notify"), due, mode)

    assert response.status_code < 500, response.get_data(as_text=True)
    assert mails(mail_dir) == [] and notification_rows(engine) == []


def test_reminder_due_with_a_reminder_id_that_is_no_uuid_is_never_retried(
    request, client, engine, clock, event_client, mail_dir, mode
):
    _, due = emit_rent(client, engine, event_client, mode)
    due["data"]["reminder_id"] = "not-a-uuid"

    response = deliver(event_client("notify"), due, mode)

    assert response.status_code < 500, response.get_data(as_text=True)
    assert mails(mail_dir) == [] and notification_rows(engine) == []


# -- notify racing an edit of the same task ------------------------------------------------------


def wait_until_blocked(engine, timeout: float = 10) -> None:
    """Until a session waits for a row lock (PostgreSQL); SQLite writers queue on the database
    lock, which no view shows: there, a short pause."""
    if engine.dialect.name != "postgresql":
        threading.Event().wait(0.5)
        return
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    with engine.connect() as conn:
        while datetime.now(UTC) < deadline:
            waiting = conn.execute(query).scalar_one()
            conn.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting:
                return
            threading.Event().wait(0.02)
    raise AssertionError("no session is waiting for a lock")


def test_reminder_due_while_the_task_is_being_edited_is_still_sent(
    request, client, engine, clock, event_client, mail_dir, mode
):
    """An edit that leaves the reminder as it is (a new title) commits while notify waits."""
    from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory

    task, due = emit_rent(client, engine, event_client, mode)
    answers: list = []
    worker = threading.Thread(
        target=lambda: answers.append(deliver(event_client("notify"), due, mode))
    )
    edit = UnitOfWorkFactory(engine)()
    with edit:  # what PATCH /tasks/{id} {"title": ...} does, held open while notify starts
        current = edit.tasks.get("alice", task["id"], for_update=True)
        edit.tasks.update(current.with_changes(title="Pay the rent"), current)
        worker.start()
        wait_until_blocked(engine)
        edit.commit()
    worker.join(timeout=60)

    assert outcome(answers[0]) == "sent"
    assert len(mails(mail_dir)) == 1
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "sent"


class HoldingCollector(Collector):
    """An SMTP handler that holds each message (DATA) until `release` is set."""

    def __init__(self):
        super().__init__()
        self.receiving, self.release = threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.receiving.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def test_edit_while_the_email_is_sent_keeps_the_reminder_sent(
    request, client, engine, clock, event_client, reconfigure, smtp_server, mode
):
    collector = HoldingCollector()
    port = smtp_server(collector)
    reconfigure(DUEFLOW_EMAIL_BACKEND="smtp", SMTP_URL=f"smtp://127.0.0.1:{port}")
    task, due = emit_rent(client, engine, event_client, mode)
    answers: dict = {}

    def send():
        answers["notify"] = deliver(event_client("notify"), due, mode)

    def edit():
        answers["patch"] = client.patch(
            f"/tasks/{task['id']}", json={"title": "Pay the rent"}, headers=headers()
        )

    sender, editor = threading.Thread(target=send), threading.Thread(target=edit)
    sender.start()
    assert collector.receiving.wait(timeout=30)  # notify holds the reminder while it sends
    editor.start()
    wait_until_blocked(engine)
    collector.release.set()
    sender.join(timeout=60)
    editor.join(timeout=60)

    assert outcome(answers["notify"]) == "sent"
    assert api(answers["patch"])["title"] == "Pay the rent"
    assert len(collector.delivered) == 1
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "sent"


# =============================================================================================
# snooze and skip through the API
# =============================================================================================


@pytest.mark.parametrize(
    "body", [{"for": "PT10M"}, {"until": "2026-12-01T08:15:00+01:00"}], ids=["for", "until"]
)
def test_snooze_reminds_again(client, engine, clock, event_client, mail_dir, mode, body):
    task, due = emit_rent(client, engine, event_client, mode)
    rid = due["data"]["reminder_id"]
    notify = event_client("notify")
    assert outcome(deliver(notify, due, mode)) == "sent"
    clock.set(T0 + timedelta(minutes=5))

    snoozed = api(snooze(client, task["id"], rid, body))

    assert reminder(snoozed, "PT1H") == {
        "id": rid,
        "before": "PT1H",
        "remind_at": "2026-12-01T07:15:00Z",
        "status": "scheduled",
    }
    assert reminder(snoozed, "PT30M") == reminder(task, "PT30M")
    assert snoozed["due_at"] == task["due_at"]
    updated = outbox(engine, ev.TASK_UPDATED)[-1]
    assert updated["data"]["changed"] == ["reminders"]
    assert get(client, task["id"]) == snoozed

    assert ping(mode, event_client) == "emitted 0"  # not yet
    clock.set(T0 + timedelta(minutes=15))
    # due now: the snoozed reminder, and the PT30M one (07:30) is not
    assert ping(mode, event_client) == "emitted 1"
    again = outbox(engine, ev.REMINDER_DUE)[-1]
    assert again["data"]["reminder_id"] == rid
    assert again["data"]["remind_at"] == "2026-12-01T07:15:00Z"
    assert again["data"]["late"] is False

    assert outcome(deliver(notify, again, mode)) == "sent"
    assert outcome(deliver(notify, due, mode)) == "stale: reminder moved or canceled"
    assert sorted(m["Message-ID"] for m in mails(mail_dir)) == [
        f"<r-{rid}-20261201T070000Z@dueflow>",
        f"<r-{rid}-20261201T071500Z@dueflow>",
    ]
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "sent"
    assert len(outbox(engine, ev.NOTIFICATION_SENT)) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"for": "ten minutes"}, "for"),
        ({"for": "PT0M"}, "for"),
        ({"for": "-PT10M"}, "for"),
        ({"for": 600}, "for"),
        ({"until": "tomorrow"}, "until"),
        ({"until": "2026-12-01T09:00:00"}, "until"),  # no offset
        ({"until": "2026-12-01T06:00:00Z"}, "until"),  # in the past
        ({"until": "2026-12-01T07:00:00Z"}, "until"),  # now
        ({}, ""),
        ({"for": "PT10M", "until": "2026-12-01T09:00:00Z"}, ""),
        ({"later": "PT10M"}, ""),
        (["PT10M"], ""),
    ],
)
def test_snooze_with_a_bad_body_is_422(client, engine, clock, body, field):
    task = create(client, RENT)
    rid = reminder(task, "PT1H")["id"]
    before = outbox_count(engine)

    problem = assert_problem(snooze(client, task["id"], rid, body), 422)

    assert [e["field"] for e in problem["errors"]] == [field]
    if field == "":  # the body as a whole: the message says what to send
        assert '"for"' in problem["errors"][0]["message"]
        assert '"until"' in problem["errors"][0]["message"]
    assert get(client, task["id"]) == task and outbox_count(engine) == before


def test_snooze_unknown_reminder_is_404_and_done_task_409(client, engine, clock):
    task = create(client, RENT)
    other = create(client, {**RENT, "title": "Other"})
    rid = reminder(task, "PT1H")["id"]

    assert_problem(snooze(client, task["id"], str(uuid.uuid4()), {"for": "PT10M"}), 404)
    assert_problem(snooze(client, task["id"], reminder(other, "PT1H")["id"], {"for": "PT10M"}), 404)
    assert_problem(snooze(client, task["id"], rid, {"for": "PT10M"}, user="bob"), 404)
    assert_problem(snooze(client, str(uuid.uuid4()), rid, {"for": "PT10M"}), 404)

    act(client, task["id"], "complete")
    before = outbox_count(engine)
    assert_problem(snooze(client, task["id"], rid, {"for": "PT10M"}), 409)
    assert reminder(get(client, task["id"]), "PT1H")["status"] == "canceled"
    assert outbox_count(engine) == before


def test_skip_moves_a_recurring_task_to_its_next_occurrence(client, engine, clock):
    task = create(client, RECURRING)

    skipped = api(client.post(f"/tasks/{task['id']}/skip", headers=headers()))

    assert skipped["id"] == task["id"] and skipped["series_id"] == task["series_id"]
    assert skipped["due_at"] == "2026-12-09T08:00:00Z"
    assert skipped["occurrence"] == 2 and skipped["status"] == "open"
    assert [(r.get("before"), r["remind_at"], r["status"]) for r in skipped["reminders"]] == [
        ("PT1H", "2026-12-09T07:00:00Z", "scheduled"),
        ("P1D", "2026-12-08T08:00:00Z", "scheduled"),
        (None, "2026-12-01T20:00:00Z", "scheduled"),  # absolute: stays where it was
    ]
    assert get(client, task["id"]) == skipped
    updated = outbox(engine, ev.TASK_UPDATED)[-1]
    assert updated["data"]["changed"] == ["due_at", "reminders"]
    assert updated["data"]["task"] == skipped

    again = api(client.post(f"/tasks/{task['id']}/skip", headers=headers()))
    assert again["due_at"] == "2026-12-16T08:00:00Z" and again["occurrence"] == 3


def test_skip_a_task_that_does_not_recur_is_422(client, engine, clock):
    task = create(client, {"title": "Once", "due_at": "2026-12-02T08:00:00Z"})
    problem = assert_problem(client.post(f"/tasks/{task['id']}/skip", headers=headers()), 422)
    assert [e["field"] for e in problem["errors"]] == ["recurrence"]
    assert get(client, task["id"]) == task


def test_skip_past_the_end_of_a_series_is_409(client, engine, clock):
    task = create(client, {**RECURRING, "recurrence": {"rrule": "FREQ=DAILY;COUNT=2"}})
    last = api(client.post(f"/tasks/{task['id']}/skip", headers=headers()))
    assert last["occurrence"] == 2 and last["due_at"] == "2026-12-03T08:00:00Z"
    before = outbox_count(engine)

    assert_problem(client.post(f"/tasks/{task['id']}/skip", headers=headers()), 409)
    assert get(client, task["id"]) == last and outbox_count(engine) == before


def test_skip_a_done_task_is_409(client, engine, clock):
    task = create(client, RECURRING)
    done = act(client, task["id"], "complete")
    assert_problem(client.post(f"/tasks/{task['id']}/skip", headers=headers()), 409)
    assert get(client, task["id"]) == done


def test_skip_after_the_next_instance_exists_is_not_a_server_error(
    client, engine, clock, event_client, mode
):
    task = create(client, RECURRING)
    completed = completion(client, engine, task["id"])
    assert outcome(deliver(event_client("recurrence"), completed, mode)) == (
        "next instance created"
    )
    act(client, task["id"], "reopen")

    response = client.post(f"/tasks/{task['id']}/skip", headers=headers())

    assert response.status_code < 500, response.get_data(as_text=True)

"""Reminders as Dapr jobs (DUEFLOW_REMINDER_JOBS=dapr), end to end against a fake sidecar at the
protocol level (tests/support/dapr_sidecar.py: a real gRPC server from the SDK's own stubs):

- every reminder change (create, due date, reminders, snooze, completion, reopen, deletion)
  schedules, moves or deletes its job, through the outbox and the reminders function's job
  relay, with the job's name, due time and data as the SDK sends them;
- a job's callback (POST /job/<name>) emits that one reminder through the tick's event, and a job
  delivered twice or late, or after the tick, makes one e-mail (a real SMTP server);
- a sidecar down when the change commits: the job is scheduled once it is back.

Functions are served by functions-framework's test client; the clock is frozen at T0.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa

from dueflow import bootstrap
from dueflow.domain import events as ev
from dueflow.domain.reminder_jobs import JOB_TYPES
from tests.conftest import DIALECTS, ROOT
from tests.functions.conftest import T0
from tests.support.dapr_sidecar import FakeSidecar, JobRecord, client_post
from tests.support.event_functions import (
    ALICE_MAIL,
    RENT,
    act,
    api,
    create,
    get,
    headers,
    outbox,
    ping,
    snooze,
)
from tests.support.events import deliver
from tests.support.polling import wait_until
from tests.support.smtp import Collector

PT1H_AT, PT30M_AT = "2026-12-01T07:00:00Z", "2026-12-01T07:30:00Z"


@pytest.fixture
def jobs_on(reconfigure, engine, sidecar, smtp_server) -> Collector:
    """Reminder jobs on (the reminders function's job relay running), the fake sidecar named in
    the environment, e-mail to a real SMTP server (its collector)."""
    collector = Collector()
    port = smtp_server(collector)
    reconfigure(
        DUEFLOW_REMINDER_JOBS="dapr",
        DUEFLOW_DAPR_TIMEOUT="2",
        DUEFLOW_EMAIL_BACKEND="smtp",
        SMTP_URL=f"smtp://127.0.0.1:{port}",
    )
    # the reminders function runs the job relay: task writers follow its lease
    assert bootstrap.runtime().start_job_relay() is not None
    assert wait_until(lambda: job_relay_holds_its_lease(engine))
    return collector


def job_relay_holds_its_lease(engine) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text("SELECT count(*) FROM leases WHERE name = 'reminder-jobs-relay'")
            ).scalar_one()
            == 1
        )


def job_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE event_type IN (:a, :b)"),
            {"a": JOB_TYPES[0], "b": JOB_TYPES[1]},
        ).scalar_one()


def flush_jobs(engine, timeout: float = 15.0) -> None:
    """Let the reminders function's job relay (its thread) deliver every job command waiting."""
    relay = bootstrap.runtime().start_job_relay()
    assert relay is not None, "the job relay runs with DUEFLOW_REMINDER_JOBS=dapr"
    deadline = time.monotonic() + timeout
    while job_rows(engine) and time.monotonic() < deadline:
        relay.kick()
        time.sleep(0.05)
    assert job_rows(engine) == 0, "job commands still wait in the outbox"


def attempts(engine) -> int:
    """The most delivery attempts of a job command waiting in the outbox."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT coalesce(max(attempts), 0) FROM outbox WHERE event_type = :t"),
            {"t": JOB_TYPES[0]},
        ).scalar_one()


def jobs(sidecar: FakeSidecar) -> dict[str, str]:
    return {name: job.due_time for name, job in sidecar.jobs.items()}


def ids(task: dict) -> dict[str, str]:
    return {r.get("before") or r.get("at"): r["id"] for r in task["reminders"]}


def name(reminder_id: str) -> str:
    return f"reminder-{reminder_id}"


def patch(client, task_id: str, body: dict) -> dict:
    return api(client.patch(f"/tasks/{task_id}", json=body, headers=headers()))


def test_jobs_follow_every_reminder_change(client, engine, clock, jobs_on, sidecar):
    task = create(client, RENT)
    rid = ids(task)
    flush_jobs(engine)

    assert jobs(sidecar) == {name(rid["PT1H"]): PT1H_AT, name(rid["PT30M"]): PT30M_AT}
    job = sidecar.jobs[name(rid["PT1H"])]
    assert job.overwrite is True  # scheduling again replaces: idempotent
    assert job.max_retries == 3
    assert job.data == {"reminder_id": rid["PT1H"], "task_id": task["id"], "due_time": PT1H_AT}

    # the due date moves: both jobs move with it (same names, new due times)
    patch(client, task["id"], {"due_at": "2026-12-01T10:00:00Z"})
    flush_jobs(engine)
    assert jobs(sidecar) == {
        name(rid["PT1H"]): "2026-12-01T09:00:00Z",
        name(rid["PT30M"]): "2026-12-01T09:30:00Z",
    }

    # a reminder goes away: its job is deleted; the one kept is not scheduled again
    before = len(sidecar.rpcs("ScheduleJob"))
    task = patch(client, task["id"], {"reminders": [{"before": "PT1H"}]})
    flush_jobs(engine)
    assert jobs(sidecar) == {name(rid["PT1H"]): "2026-12-01T09:00:00Z"}
    assert [r.name for r in sidecar.rpcs("DeleteJob")] == [name(rid["PT30M"])]
    assert len(sidecar.rpcs("ScheduleJob")) == before

    # snoozed: the job moves to the snooze's end
    response = snooze(client, task["id"], rid["PT1H"], {"until": "2026-12-01T09:20:00Z"})
    api(response)
    flush_jobs(engine)
    assert jobs(sidecar) == {name(rid["PT1H"]): "2026-12-01T09:20:00Z"}

    # completed: no job; reopened: the job again
    act(client, task["id"], "complete")
    flush_jobs(engine)
    assert jobs(sidecar) == {}
    act(client, task["id"], "reopen")
    flush_jobs(engine)
    reopened = get(client, task["id"])
    [again] = reopened["reminders"]
    assert jobs(sidecar) == {name(again["id"]): again["remind_at"]}

    # deleted: no job
    assert client.delete(f"/tasks/{task['id']}", headers=headers()).status_code == 204
    flush_jobs(engine)
    assert jobs(sidecar) == {}
    # nothing of this went to the event sink: the job commands are the job relay's alone
    assert {e["type"] for e in outbox(engine)} <= {
        ev.TASK_CREATED,
        ev.TASK_UPDATED,
        ev.TASK_COMPLETED,
        ev.TASK_REOPENED,
        ev.TASK_DELETED,
    }


def emails_after_fire(event_client, engine, mode: str) -> None:
    """Deliver every reminder event the reminders function wrote to notify (as the Broker
    would, once each), then drop them from the outbox."""
    notify = event_client("notify")
    for event in outbox(engine, ev.REMINDER_DUE) + outbox(engine, ev.REMINDERS_DUE):
        assert 200 <= deliver(notify, event, mode).status_code < 300
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM outbox WHERE event_type IN (:a, :b)"),
            {"a": ev.REMINDER_DUE, "b": ev.REMINDERS_DUE},
        )


@pytest.mark.parametrize("mode", ["binary"])
def test_a_job_delivered_twice_or_late_or_after_the_tick_sends_one_email(
    client, engine, clock, event_client, jobs_on, sidecar, mode
):
    task = create(client, RENT)
    rid = ids(task)
    flush_jobs(engine)
    reminders = client_post(event_client("reminders"))

    clock.set(T0)  # the job is due: the scheduler calls back
    assert sidecar.fire(reminders, name(rid["PT1H"])) == 200
    [due] = outbox(engine, ev.REMINDERS_DUE)  # the tick's own event, for this reminder alone
    assert [r["reminder_id"] for r in due["data"]["reminders"]] == [rid["PT1H"]]
    assert due["data"]["reminders"][0]["late"] is False
    emails_after_fire(event_client, engine, mode)

    # delivered again (at least once), then late, then the tick: nothing more to emit
    sidecar.jobs[name(rid["PT1H"])] = _job(task, rid["PT1H"])  # the scheduler retries it
    assert sidecar.fire(reminders, name(rid["PT1H"])) == 200
    clock.advance(minutes=20)
    assert sidecar.fire(reminders, name(rid["PT1H"])) == 200
    assert outbox(engine, ev.REMINDERS_DUE) == []
    # the tick claims only the other reminder, due at 07:30 (now 07:20: not yet)
    assert ping(mode, event_client) == "emitted 0"
    emails_after_fire(event_client, engine, mode)

    [mail] = jobs_on.delivered
    assert mail.rcpt_tos == [ALICE_MAIL]
    assert mail.message["Subject"] == "Reminder: Pay rent"
    assert get(client, task["id"])["reminders"][0]["status"] == "sent"


def _job(task: dict, reminder_id: str):
    """The job as it was scheduled, put back as a redelivery would find it."""
    data = {"reminder_id": reminder_id, "task_id": task["id"], "due_time": PT1H_AT}
    return JobRecord(name(reminder_id), PT1H_AT, data, True, 3)


def test_the_tick_first_then_the_job_sends_one_email(
    client, engine, clock, event_client, jobs_on, sidecar
):
    task = create(client, RENT)
    rid = ids(task)
    flush_jobs(engine)
    clock.set(T0 + timedelta(minutes=1))

    assert ping("binary", event_client) == "emitted 1"  # the safety net got there first
    emails_after_fire(event_client, engine, "binary")
    assert sidecar.fire(client_post(event_client("reminders")), name(rid["PT1H"])) == 200

    assert outbox(engine, ev.REMINDERS_DUE) == []
    assert len(jobs_on.delivered) == 1


def test_a_job_that_names_no_reminder_is_refused(client, engine, clock, event_client, jobs_on):
    reminders = event_client("reminders")
    answer = reminders.post("/job/backup-db", data=b"{}", content_type="application/json")
    assert answer.status_code == 422
    assert answer.mimetype == "application/problem+json"
    assert outbox(engine) == []  # not taken for a tick either


def test_sidecar_down_at_commit_time_schedules_the_job_once_it_is_back(
    client, engine, clock, jobs_on, sidecar
):
    first = create(client, {"title": "Warm-up", "reminders": [{"at": "2026-12-03T08:00:00Z"}]})
    flush_jobs(engine)  # the relay's SDK client is connected
    sidecar.stop()

    task = create(client, RENT)  # commits: the API does not wait for the sidecar
    bootstrap.runtime().start_job_relay().kick()
    assert wait_until(lambda: attempts(engine) >= 2)  # tried, failed, kept to be retried
    assert job_rows(engine) == 2

    sidecar.start()  # back, on the same ports
    flush_jobs(engine)
    rid = ids(task)
    assert jobs(sidecar) == {
        name(ids(first)["2026-12-03T08:00:00Z"]): "2026-12-03T08:00:00Z",
        name(rid["PT1H"]): PT1H_AT,
        name(rid["PT30M"]): PT30M_AT,
    }


def test_a_pre_stable_sidecar_gets_the_alpha1_jobs_api(client, engine, clock, jobs_on, sidecar):
    sidecar.alpha_only = True
    task = create(client, RENT)
    flush_jobs(engine)
    assert set(jobs(sidecar)) == {name(r) for r in ids(task).values()}


def test_a_refused_job_stays_in_the_outbox(client, engine, clock, jobs_on, sidecar):
    sidecar.fail_with = grpc.StatusCode.INVALID_ARGUMENT
    create(client, RENT)
    bootstrap.runtime().start_job_relay().kick()
    assert wait_until(lambda: attempts(engine) >= 1)
    assert job_rows(engine) == 2
    with engine.connect() as conn:
        errors = conn.execute(
            sa.text("SELECT last_error FROM outbox WHERE event_type = :t"), {"t": JOB_TYPES[0]}
        ).scalars()
        assert all("INVALID_ARGUMENT" in e for e in errors)
    sidecar.fail_with = None
    flush_jobs(engine)
    assert len(sidecar.jobs) == 2


def test_no_job_relay_no_job_commands(client, engine, clock, event_env, sidecar):
    create(client, RENT)
    assert job_rows(engine) == 0
    assert bootstrap.runtime().start_job_relay() is None
    assert sidecar.calls == []
    assert json.dumps(outbox(engine))  # only the task event
    assert [e["type"] for e in outbox(engine)] == [ev.TASK_CREATED]


# -- the real server: functions-framework (gunicorn), the SDK in its own process -----------------


# PostgreSQL only (the served process and the test share the database): `make test` runs it,
# `make check` (DUEFLOW_TEST_DIALECTS=sqlite) starts no PostgreSQL server for it
@pytest.mark.skipif("postgresql" not in DIALECTS, reason="needs PostgreSQL: runs in make test")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_served_reminders_function_schedules_and_takes_jobs_over_http(
    function_env, engine, sidecar, tmp_path
):
    """`reminders` as its container runs it (the functions-framework CLI): its job relay
    schedules through the SDK to the fake sidecar, and the sidecar's POST /job/<name> over
    HTTP emits that reminder; a second delivery emits nothing."""
    from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
    from dueflow.service.tasks import TaskService
    from tests.support.dapr_sidecar import over_http
    from tests.support.served_function import served_function

    env = {**function_env, **sidecar.env(), "DUEFLOW_REMINDER_JOBS": "dapr"}
    env["PYTHONPATH"] = str(ROOT / "shared")
    with served_function("reminders", env, tmp_path / "reminders.log") as url:
        assert wait_until(lambda: job_relay_holds_its_lease(engine))
        soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        writer = TaskService(UnitOfWorkFactory(engine, reminder_jobs=lambda _conn: True))
        task = writer.create(
            "alice",
            {"title": "Exact", "due_at": (soon + timedelta(hours=1)).isoformat(),
             "reminders": [{"at": soon.isoformat()}]},
        )  # fmt: skip
        job = name(task.reminders[0].id)
        assert sidecar.wait_for(lambda s: job in s.jobs), "the served relay scheduled no job"
        assert sidecar.jobs[job].due_time == soon.strftime("%Y-%m-%dT%H:%M:%SZ")

        time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
        post = over_http(url)
        assert sidecar.fire(post, job) == 200
        assert sidecar.fire(post, job) == 200  # at least once: the second finds it claimed

    [due] = outbox(engine, ev.REMINDERS_DUE)
    assert [r["reminder_id"] for r in due["data"]["reminders"]] == [task.reminders[0].id]

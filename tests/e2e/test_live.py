"""The live feed end to end: two `live` processes, started as their container starts them, on one
PostgreSQL with the tasks, commands and recurrence functions as functions-framework serves them;
httpx streaming responses as the SSE client (tests/support/sse.py). Every change, made through
the API, a task command or the recurrence function, reaches exactly its owner's streams on both
processes; a stream resumed after a disconnect (on the other process) loses nothing and repeats
nothing; a position older than the retention gets one reset; bad credentials are refused before
the stream. Tickets expiring, heartbeats and the end of a stream run on a live app served in
this process on a settable clock (no sleeping through the 60 s)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import requests
import sqlalchemy as sa
import uvicorn

from dueflow import bootstrap
from dueflow.adapters.db.engine import make_engine, migrate
from dueflow.service.live import LiveService
from tests.conftest import SECRET, auth, token
from tests.functions.conftest import Clock
from tests.support.served_function import free_port, served_asgi_function, served_function
from tests.support.sse import SSEStream

pytestmark = pytest.mark.e2e
RECURRING = {
    "title": "Water the plants",
    "due_at": "2026-12-02T08:00:00Z",
    "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=WEEKLY"},
}


@pytest.fixture(scope="module")
def stack(postgres, tmp_path_factory):
    """(database URL, {function: base URL}) with live1 and live2 two `live` processes."""
    url = postgres.create_database(f"live_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    logs = tmp_path_factory.mktemp("live")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DUEFLOW_JWT_SECRET": SECRET,
        "DUEFLOW_ENV": "test",
        "DUEFLOW_AUTO_MIGRATE": "0",
        "DUEFLOW_METRICS_PORT": "0",
        # a NOTIFY wakes the tails: polling every 30 s would make any missed wake-up a timeout
        "DUEFLOW_LIVE_POLL": "30",
    }
    env.pop("K_SINK", None)
    with ExitStack() as stack:
        bases = {
            name: stack.enter_context(served_function(name, env, logs / f"{name}.log"))
            for name in ("tasks", "commands", "recurrence")
        }
        for name in ("live1", "live2"):
            bases[name] = stack.enter_context(
                served_asgi_function("live", env, logs / f"{name}.log")
            )
        yield url, bases


def api(base: str, method: str, path: str, user: str, body=None) -> dict:
    response = requests.request(method, base + path, json=body, headers=auth(user), timeout=10)
    assert response.status_code < 300, response.text
    return response.json() if response.content else {}


def command(base: str, kind: str, data: dict) -> str:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-source": "/chat-assistant",
        "ce-type": f"dev.dueflow.command.task.{kind}",
        "content-type": "application/json",
    }
    response = requests.post(base, data=json.dumps(data), headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["outcome"]


def outbox_event(url: str, event_type: str, subject: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT payload FROM outbox ORDER BY seq")).scalars()
            found = [e for e in map(json.loads, rows) if e["type"] == event_type]
    finally:
        engine.dispose()
    [event] = [e for e in found if e["subject"] == subject]
    return event


def logged(url: str, user: str, after: int = 0) -> list[tuple[str, str]]:
    """(position, CloudEvent id) of the user's changes in the log, in order."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, event_id FROM task_changes WHERE user_id = :u AND id > :a "
                    "ORDER BY id"
                ),
                {"u": user, "a": after},
            ).all()
    finally:
        engine.dispose()
    return [(str(r.id), r.event_id) for r in rows]


def opened(base: str, user: str, **kwargs) -> SSEStream:
    """A stream of `user`'s changes, past its first message (the position it starts from)."""
    stream = SSEStream(f"{base}/live", headers=auth(user), **kwargs)
    assert stream.status == 200, stream.body
    assert stream.content_type.startswith("text/event-stream")
    return stream


def test_changes_reach_exactly_their_owners_streams_on_both_processes(stack):
    url, base = stack
    streams = {
        (user, live): opened(base[live], user)
        for user in ("alice", "bob")
        for live in ("live1", "live2")
    }
    starts = {key: s.next() for key, s in streams.items()}
    for start in starts.values():  # an id-only first message: where a reconnect resumes
        assert start.data is None and start.id.isdigit() and start.retry == 1000
    try:
        plants = api(base["tasks"], "POST", "/tasks", "alice", RECURRING)
        mine = api(base["tasks"], "POST", "/tasks", "bob", {"title": "Bob's only"})
        by_command = command(
            base["commands"], "create", {"user_id": "alice", "title": "From the chat"}
        ).removeprefix("created ")
        api(base["tasks"], "POST", f"/tasks/{plants['id']}/complete", "alice")
        completed = outbox_event(url, "dev.dueflow.task.completed", plants["id"])
        next_one = requests.post(
            base["recurrence"],
            data=json.dumps(completed),
            headers={"content-type": "application/cloudevents+json"},
            timeout=10,
        )
        assert next_one.json()["outcome"] == "next instance created"
        api(base["tasks"], "DELETE", f"/tasks/{mine['id']}", "bob")

        received = {}
        for (user, live), stream in streams.items():
            want = logged(url, user)
            got = stream.changes(len(want))
            assert [(m.id, m.json()["id"]) for m in got] == want
            assert stream.quiet() == []  # nothing more: nobody else's changes
            for message in got:
                body = message.json()
                assert set(body) == {"type", "id", "time", "task_id", "data"}
                assert message.event == body["type"]
            received[user, live] = [m.json() for m in got]
        assert received["alice", "live1"] == received["alice", "live2"]
        kinds = [(m["type"].rsplit(".", 1)[1], m["task_id"]) for m in received["alice", "live1"]]
        instance = kinds[-1][1]
        assert kinds == [
            ("created", plants["id"]),
            ("created", by_command),
            ("completed", plants["id"]),
            ("created", instance),  # the recurrence function's next instance
        ]
        assert instance not in (plants["id"], by_command)
        assert [m["type"].rsplit(".", 1)[1] for m in received["bob", "live2"]] == [
            "created",
            "deleted",
        ]
    finally:
        for stream in streams.values():
            stream.close()


def test_a_deletion_carries_the_id_and_an_update_the_task_as_the_api_returns_it(stack):
    _url, base = stack
    with opened(base["live2"], "dora") as stream:
        stream.next()
        task = api(base["tasks"], "POST", "/tasks", "dora", {"title": "Short-lived"})
        patched = api(base["tasks"], "PATCH", f"/tasks/{task['id']}", "dora", {"title": "Gone"})
        api(base["tasks"], "DELETE", f"/tasks/{task['id']}", "dora")
        created, updated, deleted = (m.json() for m in stream.changes(3))
    assert created["data"] == task and updated["data"] == patched
    assert deleted == {
        "type": "dev.dueflow.task.deleted",
        "id": deleted["id"],
        "time": deleted["time"],
        "task_id": task["id"],
        "data": {"id": task["id"]},
    }


@pytest.mark.parametrize("how", ["header", "query"])
def test_resume_on_the_other_process_loses_nothing_and_repeats_nothing(stack, how):
    url, base = stack
    user = f"erin-{how}"
    with opened(base["live1"], user) as first:
        first.next()
        for n in range(3):
            api(base["tasks"], "POST", "/tasks", user, {"title": f"Seen {n}"})
        seen = first.changes(3)
    last = seen[-1].id
    for n in range(4):  # while disconnected
        api(base["tasks"], "POST", "/tasks", user, {"title": f"Missed {n}"})
    resume = (
        {"headers": {**auth(user), "Last-Event-ID": last}}
        if how == "header"
        else {"headers": auth(user), "params": {"last_event_id": last}}
    )
    with SSEStream(f"{base['live2']}/live", **resume) as second:
        missed = second.changes(4)
        api(base["tasks"], "POST", "/tasks", user, {"title": "Live again"})
        [again] = second.changes(1)
        assert second.quiet() == []
    every = [(m.id, m.json()["id"]) for m in [*seen, *missed, again]]
    assert every == logged(url, user)
    assert [m.json()["data"]["title"] for m in missed] == [f"Missed {n}" for n in range(4)]


def test_the_header_position_wins_over_the_urls(stack):
    url, base = stack
    for n in range(2):
        api(base["tasks"], "POST", "/tasks", "fay", {"title": f"Task {n}"})
    (first, _), (second, second_event) = logged(url, "fay")
    headers = {**auth("fay"), "Last-Event-ID": first}
    with SSEStream(f"{base['live1']}/live", headers=headers, params={"last_event_id": "0"}) as s:
        [only] = s.changes(1)
        assert (only.id, only.json()["id"]) == (second, second_event)
        assert s.quiet() == []


def test_a_position_older_than_the_retention_gets_one_reset(stack):
    url, base = stack
    for n in range(2):
        api(base["tasks"], "POST", "/tasks", "gil", {"title": f"Old {n}"})
    (oldest, _), _ = logged(url, "gil")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:  # two days pass for these changes
            conn.execute(
                sa.text("UPDATE task_changes SET created_at = :t WHERE user_id = 'gil'"),
                {"t": datetime.now(UTC) - timedelta(days=2)},
            )
        from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory

        assert LiveService(UnitOfWorkFactory(engine), timedelta(days=1)).prune() >= 2
    finally:
        engine.dispose()
    for position in (oldest, "999999999"):  # too old, and never given out
        headers = {**auth("gil"), "Last-Event-ID": position}
        with SSEStream(f"{base['live2']}/live", headers=headers) as stream:
            reset = stream.next()
            assert reset.event == "reset" and json.loads(reset.data)["type"] == "reset"
            assert int(reset.id) > int(oldest)
            api(base["tasks"], "POST", "/tasks", "gil", {"title": "After the reset"})
            [after] = stream.changes(1)
            assert after.json()["data"]["title"] == "After the reset"
            assert int(after.id) > int(reset.id)
            assert stream.quiet() == []


def test_tickets_open_a_stream_on_any_process_bound_to_their_user(stack):
    url, base = stack
    answer = requests.post(f"{base['live1']}/live/tickets", headers=auth("hal"), timeout=10)
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    ticket = answer.json()
    assert set(ticket) == {"ticket", "expires_in"} and ticket["expires_in"] == 60
    stream = SSEStream(f"{base['live2']}/live", params={"ticket": ticket["ticket"]})
    with stream:
        assert stream.status == 200
        stream.next()
        api(base["tasks"], "POST", "/tasks", "ida", {"title": "Not hal's"})
        api(base["tasks"], "POST", "/tasks", "hal", {"title": "Hal's"})
        [mine] = stream.changes(1)
        assert mine.json()["data"]["title"] == "Hal's"
        assert stream.quiet() == []


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({}, "a bearer token"),
        ({"headers": {"Authorization": "Bearer nonsense"}}, ""),
        ({"headers": {"Authorization": f"Bearer {token('x', secret='wrong' * 8)}"}}, ""),
        ({"headers": {"Authorization": f"Bearer {token('x', ttl=-120)}"}}, ""),
        ({"params": {"ticket": "not-a-ticket"}}, "ticket is unknown or expired"),
    ],
)
def test_bad_credentials_are_401_problems_before_any_stream(stack, kwargs, detail):
    _url, base = stack
    for live in ("live1", "live2"):
        with SSEStream(f"{base[live]}/live", **kwargs) as stream:
            assert stream.status == 401
            assert stream.content_type == "application/problem+json"
            problem = stream.json_body()
            assert problem["status"] == 401 and detail in problem["detail"]
            assert stream.messages.empty()
    refused = requests.post(f"{base['live1']}/live/tickets", timeout=10, **kwargs)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


def test_bad_positions_and_routes_are_problems(stack):
    _url, base = stack
    with SSEStream(
        f"{base['live1']}/live", headers={**auth(), "Last-Event-ID": "yesterday"}
    ) as stream:
        assert stream.status == 400
        assert stream.json_body()["errors"][0]["field"] == "Last-Event-ID"
    answer = requests.get(
        f"{base['live1']}/live", params={"last_event_id": "-3"}, headers=auth(), timeout=10
    )
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "last_event_id"
    for method, path, status in [
        ("GET", "/elsewhere", 404),
        ("POST", "/live", 405),
        ("GET", "/live/tickets", 405),
    ]:
        answer = requests.request(method, base["live2"] + path, headers=auth(), timeout=10)
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == status
    assert requests.get(f"{base['live1']}/healthz", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{base['live1']}/readyz", timeout=10).json()["status"] == "ready"


# -- on a settable clock: tickets expiring, heartbeats, the end of a stream ----------------------


@contextmanager
def live_in_process(database_url: str, clock: Clock, **env: str):
    """The live app served by uvicorn on a thread of this process, on `clock`."""
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DUEFLOW_JWT_SECRET": SECRET,
            "DUEFLOW_ENV": "test",
            "DUEFLOW_AUTO_MIGRATE": "0",
            "DUEFLOW_METRICS_PORT": "0",
            **env,
        }
    )
    bootstrap.configure(clock=clock)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(bootstrap.live_app(), port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the live app did not start"
            time.sleep(0.05)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        bootstrap.reset()


def test_a_ticket_expires_after_60_seconds(stack):
    url, base = stack
    clock = Clock(datetime.now(UTC))
    with live_in_process(url, clock) as live:
        ticket = requests.post(f"{live}/live/tickets", headers=auth("jo"), timeout=10).json()
        clock.advance(seconds=59)
        with SSEStream(f"{live}/live", params={"ticket": ticket["ticket"]}) as stream:
            assert stream.status == 200
        clock.advance(seconds=1)
        with SSEStream(f"{live}/live", params={"ticket": ticket["ticket"]}) as stream:
            assert stream.status == 401
            assert stream.json_body()["detail"] == "the ticket is unknown or expired"
        # the other process (the system clock) still takes it: any replica checks a ticket
        with SSEStream(f"{base['live1']}/live", params={"ticket": ticket["ticket"]}) as stream:
            assert stream.status == 200


def test_heartbeats_and_a_clean_end_with_a_retry_hint(stack):
    url, base = stack
    clock = Clock(datetime.now(UTC))
    settings = {"DUEFLOW_LIVE_HEARTBEAT": "1", "DUEFLOW_LIVE_MAX_STREAM": "2.5"}
    with live_in_process(url, clock, **settings) as live:
        stream = SSEStream(f"{live}/live", headers=auth("kim"))
        with stream:
            start = stream.next()
            api(base["tasks"], "POST", "/tasks", "kim", {"title": "Before the end"})
            [change] = stream.changes(1)
            assert stream.ended.wait(10), "the stream did not end"
            [end] = stream.quiet(0.2)
            assert end.retry == 1000 and end.data is None and end.id == change.id
            assert int(change.id) > int(start.id)
            assert len([c for c in stream.comments if c.startswith("ping")]) >= 1
            assert stream.comments[-1] == "stream ends: reconnect with Last-Event-ID"


# -- the `make run` stack (SQLite, polling; the local broker delivers to recurrence) -------------


def test_make_run_serves_the_live_feed(tmp_path):
    from dueflow.config import DEV_JWT_SECRET
    from tests.support.local_stack import running_stack

    with running_stack(tmp_path, DUEFLOW_METRICS_PORT="0") as (base, _proc, env):
        live = f"http://127.0.0.1:{env['DUEFLOW_LIVE_PORT']}"
        headers = {"Authorization": f"Bearer {token('lee', secret=DEV_JWT_SECRET)}"}
        others = {"Authorization": f"Bearer {token('max', secret=DEV_JWT_SECRET)}"}
        ticket = requests.post(f"{live}/live/tickets", headers=headers, timeout=10).json()
        with (
            SSEStream(f"{live}/live", params={"ticket": ticket["ticket"]}) as mine,
            SSEStream(f"{live}/live", headers=others) as theirs,
        ):
            mine.next(), theirs.next()
            created = requests.post(f"{base}/tasks", json=RECURRING, headers=headers, timeout=10)
            task = created.json()
            done = requests.post(f"{base}/tasks/{task['id']}/complete", headers=headers, timeout=10)
            assert done.status_code == 200
            # the local broker delivers task.completed to recurrence: the next instance
            kinds = [m.event for m in mine.changes(3, timeout=30)]
            assert kinds == [
                "dev.dueflow.task.created",
                "dev.dueflow.task.completed",
                "dev.dueflow.task.created",
            ]
            assert theirs.quiet(1.0) == []


def test_an_unreachable_database_is_a_503_problem_not_a_broken_stream():
    down = f"postgresql+psycopg2://dueflow@127.0.0.1:{free_port()}/dueflow"  # nobody listens
    with live_in_process(down, Clock(datetime.now(UTC))) as live:
        answer = requests.post(f"{live}/live/tickets", headers=auth("ann"), timeout=30)
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert answer.headers["content-type"] == "application/problem+json"
        with SSEStream(f"{live}/live", headers=auth("ann")) as stream:
            assert stream.status == 503  # the tail never read the log: no stream to offer
            assert stream.json_body()["status"] == 503
        assert requests.get(f"{live}/readyz", timeout=30).status_code == 503

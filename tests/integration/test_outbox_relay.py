"""The outbox relay against a real HTTP sink, on SQLite and on PostgreSQL.

The sink is a real HTTP server (tests/support/http.py) on 127.0.0.1 that records every request
(headers and body) and answers what the test tells it to. The relay is driven synchronously
with ``run_once()`` and an injected clock, so backoff and lease expiry are tested without
sleeping; section 6 runs the real relay thread (through the tasks function) against a sink that
hangs, and section 8 runs it to see a NOTIFY from another engine wake it (PostgreSQL) and to stop
it with a delivery in flight.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dueflow import bootstrap
from dueflow.adapters.db.engine import make_engine
from dueflow.adapters.db.schema import leases, outbox
from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
from dueflow.adapters.outbox_relay import LEASE_NAME, PROBE_MAX, HttpSink, OutboxRelay
from dueflow.domain import events
from dueflow.service.tasks import TaskService
from tests.conftest import auth
from tests.support.clock import Clock
from tests.support.event_schemas import validate_event
from tests.support.http import Answer, RecordingServer, Request
from tests.support.polling import wait_until
from tests.support.sink import Received

EMAIL = "alice@example.com"
LEASE_SECONDS = 15
JITTER = (0.8, 1.2)  # the relay multiplies each backoff by a random factor in this range
EPS = timedelta(milliseconds=5)  # database timestamps keep microseconds; allow rounding


# -- the sink: tests/support/sink.py (the fixture `sink`: conftest.py) ---------------------------
def closed_port_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# -- clock, service, outbox helpers ---------------------------------------------------------------
@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
def service(engine, clock) -> TaskService:
    return TaskService(UnitOfWorkFactory(engine), clock=clock)


def outbox_rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.select(outbox).order_by(outbox.c.seq)).all()


def outbox_ids(engine) -> list[str]:
    return [row.event_id for row in outbox_rows(engine)]


def lease_holder(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(leases.c.holder).where(leases.c.name == LEASE_NAME)).scalar()


def backoff_bounds(attempts: int, max_backoff: float) -> tuple[float, float]:
    base = min(max_backoff, 0.5 * 2**attempts)
    return base * JITTER[0], base * JITTER[1]


# -- 1. the lifecycle, end to end -----------------------------------------------------------------
def test_lifecycle_events_are_delivered_in_order_as_binary_cloudevents(client, engine, sink):
    assert "K_SINK" not in os.environ
    headers = auth()
    bearer = headers["Authorization"].removeprefix("Bearer ")

    created = client.post(
        "/tasks",
        json={"title": "Write report", "tags": ["work"], "priority": "high"},
        headers=headers,
    )
    assert created.status_code == 201, created.json
    task_id = created.json["id"]
    steps = [
        client.patch(f"/tasks/{task_id}", json={"title": "Write the report"}, headers=headers),
        client.post(f"/tasks/{task_id}/complete", headers=headers),
        client.post(f"/tasks/{task_id}/reopen", headers=headers),
        client.delete(f"/tasks/{task_id}", headers=headers),
    ]
    assert [r.status_code for r in steps] == [200, 200, 200, 204]
    assert bootstrap.runtime().relay is None  # K_SINK unset: nothing relays during requests
    assert sink.requests() == []

    rows = outbox_rows(engine)
    types = [
        events.TASK_CREATED,
        events.TASK_UPDATED,
        events.TASK_COMPLETED,
        events.TASK_REOPENED,
        events.TASK_DELETED,
    ]
    assert [row.event_type for row in rows] == types
    assert all(row.partition_key == task_id and row.attempts == 0 for row in rows)
    stored = [json.loads(row.payload) for row in rows]

    relay = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=Clock(datetime.now(UTC)))
    assert relay.run_once() == 5

    received = sink.requests()
    assert [r.ce_id for r in received] == [row.event_id for row in rows]
    for r, event_type, original in zip(received, types, stored, strict=True):
        h = r.headers
        assert r.accepted
        assert h["ce-specversion"] == "1.0"
        assert h["ce-type"] == event_type
        assert h["ce-source"] == "/dueflow/tasks"
        assert h["ce-subject"] == task_id
        assert h["ce-partitionkey"] == task_id
        assert h["ce-dataschema"] == f"urn:dueflow:schema:{event_type}:1"
        assert h["ce-time"].endswith("Z")
        assert h["content-type"].split(";")[0].strip() == "application/json"
        # binary mode: the body is the data alone, not a structured envelope
        body = json.loads(r.body)
        assert set(body) >= {"user_id", "task"} and "specversion" not in body

        ce = r.structured()
        validate_event(ce)
        assert ce == original  # what the sink got is exactly what the outbox stored
        assert ce["data"]["task"]["id"] == task_id
        assert ce["data"]["user_id"] == "alice"

        everything = r.body.decode() + json.dumps(h)
        assert EMAIL not in everything
        assert bearer not in everything

    datas = [r.structured()["data"] for r in received]
    assert datas[0]["task"]["title"] == "Write report"
    assert datas[1]["task"]["title"] == "Write the report" and "title" in datas[1]["changed"]
    assert datas[2]["task"]["status"] == "done"
    assert datas[3]["task"]["status"] == "open"
    assert datas[4]["task"]["title"] == "Write the report"

    assert outbox_rows(engine) == []
    assert relay.backlog() == 0
    assert relay.run_once() == 0
    assert len(sink.requests()) == 5


# -- 2. sink down: nothing lost, backoff grows, order kept ----------------------------------------
def test_sink_down_keeps_rows_probes_often_and_delivers_in_order_when_back(
    engine, service, clock, sink
):
    """A sink that is down (connection refused, 503) is not waited out with growing backoff:
    the relay probes it with one event, at most PROBE_MAX apart, and the first success lets
    everything go (issue 17: a broker's return is found within a second)."""
    task = service.create("alice", {"title": "v0"})
    service.update("alice", task.id, {"title": "v1"})
    service.update("alice", task.id, {"title": "v2"})
    other = service.create("bob", {"title": "another task"})
    ids = outbox_ids(engine)
    assert len(ids) == 4

    http = HttpSink(closed_port_url(), timeout=2)
    relay = OutboxRelay(engine, http, max_backoff=60, clock=clock)
    due_times: list[datetime] = []

    def fail_once_more(expected_attempts: int) -> None:
        failed_at = clock()
        assert relay.run_once() == 0
        rows = outbox_rows(engine)
        assert [row.event_id for row in rows] == ids  # nothing lost, nothing reordered
        head = rows[0]
        assert head.attempts == expected_attempts and head.last_error
        behind = [row for row in rows[1:] if row.partition_key == task.id]
        assert all(row.attempts == 0 and row.last_error is None for row in behind)
        delay = (head.next_attempt_at - failed_at).total_seconds()
        assert 0 < delay <= PROBE_MAX + 0.001, (expected_attempts, delay)  # not 60 s
        due_times.append(head.next_attempt_at)
        # not retried before it is due: same clock, no new attempt, nothing else goes out
        assert relay.run_once() == 0
        assert outbox_rows(engine)[0].attempts == expected_attempts

    # closed port: connection refused; both tasks were tried at first, then only a probe
    first = clock()
    assert relay.run_once() == 0
    assert {r.attempts for r in outbox_rows(engine) if r.event_id in (ids[0], ids[3])} == {1}
    clock.set(max(r.next_attempt_at for r in outbox_rows(engine)) + EPS)
    assert relay.run_once() == 0  # one probe: the oldest due event
    assert [r.attempts for r in outbox_rows(engine)] == [2, 0, 0, 1]
    assert (clock() - first).total_seconds() <= 2 * PROBE_MAX + 0.01

    # a sink that answers 503 is down too
    sink.down(503)
    http.url = sink.url
    clock.set(outbox_rows(engine)[0].next_attempt_at + EPS)
    assert relay.run_once() == 0
    assert [r.ce_id for r in sink.requests()] == [ids[0]]  # a probe: only the head was tried
    assert [r.status for r in sink.requests()] == [503]
    assert outbox_rows(engine)[0].attempts == 3

    # a change committed while the sink is down queues behind the failed head
    service.update("alice", task.id, {"title": "v3"})
    ids = outbox_ids(engine)
    assert len(ids) == 5
    clock.set(outbox_rows(engine)[0].next_attempt_at + EPS)
    fail_once_more(4)
    assert due_times == sorted(due_times)  # next_attempt_at moves forward

    # the sink comes back: the next probe succeeds and the same pass sends the rest at once
    # (bob's event was postponed by its failure: due now too)
    sink.up()
    clock.set(due_times[-1] + EPS)
    assert relay.run_once() == 5
    accepted = sink.accepted()
    titles = [
        r.structured()["data"]["task"]["title"]
        for r in accepted
        if r.structured()["subject"] == task.id
    ]
    assert titles == ["v0", "v1", "v2", "v3"]
    assert sorted(sink.accepted_ids()) == sorted(ids)
    assert any(r.structured()["subject"] == other.id for r in accepted)
    for r in accepted:
        validate_event(r.structured())
    assert outbox_rows(engine) == []


def test_a_rejected_event_backs_off_but_does_not_stop_the_others(engine, service, clock, sink):
    """A 4xx is about the event, not the sink: that event backs off (growing, up to
    max_backoff) while the other tasks' events go on at once, and no probing starts."""
    bad = service.create("alice", {"title": "rejected"})
    relay = OutboxRelay(engine, HttpSink(sink.url, timeout=2), max_backoff=60, clock=clock)
    sink.answer(400)
    assert relay.run_once() == 0
    service.create("bob", {"title": "fine"})
    assert relay.run_once() == 1  # bob's goes out in the very next pass: no probing
    delays = []
    for attempts in (2, 3):
        (head,) = outbox_rows(engine)
        assert head.partition_key == bad.id and head.attempts == attempts - 1
        failed_at = clock.set(head.next_attempt_at + EPS)
        sink.answer(400)
        assert relay.run_once() == 0
        (head,) = outbox_rows(engine)
        delays.append((head.next_attempt_at - failed_at).total_seconds())
    low, high = backoff_bounds(3, 60)
    assert low - 0.01 <= delays[-1] <= high + 0.01 and delays[-1] > PROBE_MAX


def test_backoff_is_capped_near_max_backoff(engine, service, clock, sink):
    service.create("alice", {"title": "capped"})
    sink.down(400)  # the event is rejected: its own backoff, up to max_backoff
    relay = OutboxRelay(engine, HttpSink(sink.url, timeout=2), max_backoff=2.0, clock=clock)
    for attempts in range(1, 9):
        failed_at = clock()
        assert relay.run_once() == 0
        (head,) = outbox_rows(engine)
        assert head.attempts == attempts
        delay = (head.next_attempt_at - failed_at).total_seconds()
        low, high = backoff_bounds(attempts, 2.0)
        assert low - 0.01 <= delay <= high + 0.01
        clock.set(head.next_attempt_at + EPS)


def test_backoff_never_exceeds_max_backoff(engine, service, clock):
    service.create("alice", {"title": "capped"})
    relay = OutboxRelay(
        engine, HttpSink(closed_port_url(), timeout=2), max_backoff=1.0, clock=clock
    )
    waits = []
    for _ in range(30):  # at the cap each wait exceeds it with probability 1/2
        failed_at = clock()
        assert relay.run_once() == 0
        (head,) = outbox_rows(engine)
        waits.append((head.next_attempt_at - failed_at).total_seconds())
        clock.set(head.next_attempt_at + EPS)
    assert max(waits) <= 1.0 + 1e-3, waits


# -- 3. ordering across many events and passes ----------------------------------------------------
def test_many_events_arrive_in_order_across_batches(engine, service, clock, sink):
    task = service.create("alice", {"title": "v-start"})
    for i in range(50):
        service.update("alice", task.id, {"title": f"v{i}"})
    ids = outbox_ids(engine)
    assert len(ids) == 51

    relay = OutboxRelay(engine, HttpSink(sink.url, timeout=2), batch_size=10, clock=clock)
    passes = []
    for _ in range(20):
        delivered = relay.run_once()
        passes.append(delivered)
        if delivered == 0:
            break
    assert passes == [10, 10, 10, 10, 10, 1, 0]

    received = sink.requests()
    assert [r.ce_id for r in received] == ids
    assert len({r.ce_id for r in received}) == 51
    titles = [r.structured()["data"]["task"]["title"] for r in received]
    assert titles == ["v-start"] + [f"v{i}" for i in range(50)]
    assert [r.headers["ce-type"] for r in received] == [events.TASK_CREATED] + [
        events.TASK_UPDATED
    ] * 50
    assert outbox_rows(engine) == []


# -- 4. the lease ---------------------------------------------------------------------------------
def test_only_the_lease_holder_relays_until_its_lease_expires(engine, service, clock, sink):
    t0 = clock()
    a = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock)
    b = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock)
    task = service.create("alice", {"title": "e1"})

    assert a.run_once() == 1  # A takes the lease (until t0 + 15 s)
    assert lease_holder(engine) == a.holder
    service.update("alice", task.id, {"title": "e2"})
    e2 = outbox_ids(engine)

    for offset in (1, 5, LEASE_SECONDS - 1):  # A's lease is valid: B delivers nothing
        clock.set(t0 + timedelta(seconds=offset))
        assert b.run_once() == 0
        assert len(sink.requests()) == 1
        assert outbox_ids(engine) == e2
        assert lease_holder(engine) == a.holder

    clock.set(t0 + timedelta(seconds=LEASE_SECONDS + 1))  # A never renewed: the lease expired
    assert b.run_once() == 1
    assert lease_holder(engine) == b.holder
    assert sink.accepted_ids()[1:] == e2

    service.update("alice", task.id, {"title": "e3"})
    e3 = outbox_ids(engine)
    clock.advance(1)
    assert a.run_once() == 0  # now A is the one locked out
    assert outbox_ids(engine) == e3
    clock.advance(1)
    assert b.run_once() == 1

    # the holder renews on every pass: B ran at t0+18, so its lease lasts until t0+33
    renewed_at = clock.advance(10)  # t0 + 28
    assert b.run_once() == 0  # nothing to send, but the lease is renewed to t0 + 43
    service.update("alice", task.id, {"title": "e4"})
    e4 = outbox_ids(engine)
    clock.set(renewed_at + timedelta(seconds=LEASE_SECONDS - 1))  # past the old expiry
    assert a.run_once() == 0
    assert outbox_ids(engine) == e4
    clock.set(renewed_at + timedelta(seconds=LEASE_SECONDS + 1))
    assert a.run_once() == 1
    assert lease_holder(engine) == a.holder

    titles = [r.structured()["data"]["task"]["title"] for r in sink.requests()]
    assert titles == ["e1", "e2", "e3", "e4"]  # each exactly once, in order
    assert outbox_rows(engine) == []


def test_a_batch_outlasting_the_lease_is_not_relayed_twice(engine, service, clock, sink):
    task = service.create("alice", {"title": "e0"})
    for i in range(1, 6):
        service.update("alice", task.id, {"title": f"e{i}"})
    ids = outbox_ids(engine)
    http = HttpSink(sink.url, timeout=2)
    b = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock)
    b_passes: list[int] = []

    def slow_sink(event: dict) -> None:
        """A's sink: every delivery takes 6 s; B (another replica) polls meanwhile."""
        http(event)
        clock.advance(6)
        if not b_passes and clock() > start + timedelta(seconds=LEASE_SECONDS):
            b_passes.append(b.run_once())

    a = OutboxRelay(engine, slow_sink, clock=clock)
    start = clock()
    a.run_once()
    b.run_once()

    received = sink.accepted_ids()
    positions = [ids.index(i) for i in received]
    assert positions == sorted(positions), "events went out of order"
    assert received == ids, "events were delivered twice without any crash"


# -- 5. at-least-once: redelivery after a crash or a lost answer ----------------------------------
class ProcessCrash(BaseException):
    """Stands for the relay process dying (not an Exception: the relay must not handle it)."""


def test_crash_between_delivery_and_delete_redelivers_the_event(engine, service, clock, sink):
    task = service.create("alice", {"title": "e1"})
    service.update("alice", task.id, {"title": "e2"})
    service.update("alice", task.id, {"title": "e3"})
    ids = outbox_ids(engine)
    http = HttpSink(sink.url, timeout=2)

    def accept_then_die(event: dict) -> None:
        http(event)  # the sink accepted the event ...
        raise ProcessCrash()  # ... and the process died before deleting its outbox row

    crashed = OutboxRelay(engine, accept_then_die, clock=clock)
    with pytest.raises(ProcessCrash):
        crashed.run_once()
    assert sink.accepted_ids() == [ids[0]]
    assert outbox_ids(engine) == ids  # the row is still there

    restarted = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock)
    assert restarted.run_once() == 0  # the dead process's lease has not expired yet
    clock.advance(LEASE_SECONDS + 1)
    assert restarted.run_once() == 3

    received = sink.accepted()
    assert [r.ce_id for r in received] == [ids[0], ids[0], ids[1], ids[2]]
    # the redelivery is the same event: same source + id (consumers de-duplicate on those)
    assert received[0].structured() == received[1].structured()
    assert received[0].headers["ce-source"] == received[1].headers["ce-source"]
    assert outbox_rows(engine) == []


def test_lost_answer_from_the_sink_redelivers_the_event(engine, service, clock, sink):
    task = service.create("alice", {"title": "e1"})
    service.update("alice", task.id, {"title": "e2"})
    ids = outbox_ids(engine)
    sink.plan.append((202, 2.0))  # accepts the first event but answers after the timeout
    relay = OutboxRelay(engine, HttpSink(sink.url, timeout=0.5), clock=clock)

    assert relay.run_once() == 0
    (head, _) = outbox_rows(engine)
    assert head.event_id == ids[0] and head.attempts == 1
    assert "Timeout" in head.last_error
    clock.set(head.next_attempt_at + EPS)
    assert relay.run_once() == 2
    received = sink.requests()
    assert [r.ce_id for r in received] == [ids[0], ids[0], ids[1]]
    assert received[0].structured() == received[1].structured()
    assert outbox_rows(engine) == []


# -- 6. a change never waits on the sink ----------------------------------------------------------
def test_requests_do_not_wait_on_a_hanging_sink(client, engine, sink):
    sink.default = (202, 3.0)  # the sink takes 3 s to answer (the relay's timeout is 5 s)
    os.environ["K_SINK"] = sink.url
    # two tasks are two partitions, which the relay may send at once and in either order; one
    # delivery at a time keeps the order across them that the assertions below check
    os.environ["DUEFLOW_OUTBOX_CONCURRENCY"] = "1"
    bootstrap.reset()

    first = client.post("/tasks", json={"title": "first"}, headers=auth())
    assert first.status_code == 201, first.json
    assert bootstrap.runtime().relay is not None
    # the relay thread is (or soon will be) stuck on the first event; requests still go through
    second = client.post("/tasks", json={"title": "second"}, headers=auth())
    assert second.status_code == 201, second.json

    assert wait_until(lambda: len(sink.accepted()) >= 2 and not outbox_rows(engine))
    received = sink.accepted()
    assert [r.headers["ce-subject"] for r in received] == [first.json["id"], second.json["id"]]
    assert [r.headers["ce-type"] for r in received] == [events.TASK_CREATED] * 2
    for r in received:
        validate_event(r.structured())


# -- 7. partitions go out concurrently, each in order ---------------------------------------------
class PartitionSink(RecordingServer):
    """A real HTTP sink for the concurrency tests. It counts the requests in flight and holds each
    one until `gate` are in flight at once or `hold` seconds have passed (so a test sees how many
    deliveries overlap and cannot hang), then waits a random `jitter`, and answers 503 for the
    partitions in `failing`, 202 otherwise. Requests are recorded as they arrive."""

    def __init__(self, *, gate: int = 1, hold: float = 0.0, jitter: float = 0.0) -> None:
        self.gate, self.hold, self.jitter = gate, hold, jitter
        self.failing: set[str] = set()
        self.received: list[Received] = []
        self.in_flight = self.max_in_flight = 0
        self._cond = threading.Condition()
        super().__init__(self._answer)

    def _answer(self, request: Request) -> Answer:
        headers = request.lower_headers()
        status = 503 if headers.get("ce-partitionkey") in self.failing else 202
        with self._cond:
            self.received.append(Received(headers, request.body, status))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._cond.notify_all()
            # once `gate` were in flight together, all go: the first to leave must not
            # shut the gate on the others before they wake
            self._cond.wait_for(lambda: self.max_in_flight >= self.gate, timeout=self.hold)
        if self.jitter:
            time.sleep(random.uniform(0, self.jitter))
        with self._cond:
            self.in_flight -= 1
        return Answer(status)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def requests(self) -> list[Received]:
        with self._cond:
            return list(self.received)

    def accepted_ids(self) -> list[str]:
        return [r.ce_id for r in self.requests() if r.accepted]


@pytest.fixture
def partition_sink() -> Iterator[Callable[..., PartitionSink]]:
    started: list[PartitionSink] = []

    def start(**kwargs) -> PartitionSink:
        started.append(PartitionSink(**kwargs))
        return started[-1]

    yield start
    for s in started:
        s.close()


def ids_by_partition(engine) -> dict[str, list[str]]:
    """The outbox's event ids per partition (task id), in sequence order."""
    partitions: dict[str, list[str]] = {}
    for row in outbox_rows(engine):
        partitions.setdefault(row.partition_key, []).append(row.event_id)
    return partitions


def received_by_partition(received: list[Received]) -> dict[str, list[str]]:
    partitions: dict[str, list[str]] = {}
    for r in received:
        partitions.setdefault(r.headers["ce-partitionkey"], []).append(r.ce_id)
    return partitions


def run_until_idle(relay: OutboxRelay, limit: int = 50) -> list[int]:
    passes = []
    for _ in range(limit):
        passes.append(relay.run_once())
        if passes[-1] == 0:
            return passes
    raise AssertionError(f"the relay never ran out of events: {passes}")


@pytest.mark.parametrize(
    ("concurrency", "overlap", "hold"), [(1, 1, 0.25), (2, 2, 0.25), (8, 4, 5.0)]
)
def test_partitions_are_delivered_concurrently_up_to_the_limit(
    engine, service, clock, partition_sink, concurrency, overlap, hold
):
    tasks = [service.create("alice", {"title": f"task {i}"}) for i in range(4)]
    # each request waits until all four are in flight at once, or `hold` seconds: only as long
    # as it takes the four to arrive when the relay sends them together
    sink = partition_sink(gate=len(tasks), hold=hold)
    relay = OutboxRelay(engine, HttpSink(sink.url, timeout=5), concurrency=concurrency, clock=clock)

    assert relay.run_once() == 4

    assert sink.max_in_flight == overlap  # min(concurrency, partitions)
    assert sorted(r.headers["ce-subject"] for r in sink.requests()) == sorted(t.id for t in tasks)
    assert outbox_rows(engine) == []


def test_order_within_each_task_is_kept_under_concurrency(engine, service, clock, partition_sink):
    tasks = [service.create("alice", {"title": f"t{i} v0"}) for i in range(12)]
    for version in range(1, 5):  # interleaved: every batch holds many partitions
        for i, task in enumerate(tasks):
            service.update("alice", task.id, {"title": f"t{i} v{version}"})
    expected = ids_by_partition(engine)
    assert len(expected) == 12 and all(len(ids) == 5 for ids in expected.values())

    sink = partition_sink(jitter=0.015)  # answers come back in random order
    relay = OutboxRelay(
        engine, HttpSink(sink.url, timeout=5), batch_size=16, concurrency=8, clock=clock
    )
    deletes: list[str] = []

    def count_deletes(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM OUTBOX"):
            deletes.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count_deletes)
    try:
        passes = run_until_idle(relay)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count_deletes)

    assert passes == [16, 16, 16, 12, 0]
    assert len(deletes) == 4  # one DELETE per pass for all the rows it delivered
    assert sink.max_in_flight > 1
    received = sink.requests()
    assert all(r.accepted for r in received)
    assert received_by_partition(received) == expected  # per task: each once, in order
    assert len(received) == len({r.ce_id for r in received}) == 60  # nothing twice
    for i, task in enumerate(tasks):
        titles = [
            r.structured()["data"]["task"]["title"]
            for r in received
            if r.headers["ce-subject"] == task.id
        ]
        assert titles == [f"t{i} v{v}" for v in range(5)]
    assert outbox_rows(engine) == []
    assert relay.run_once() == 0 and len(sink.requests()) == 60


def test_a_failing_partition_holds_back_only_its_own_later_rows(
    engine, service, clock, partition_sink
):
    stuck = service.create("alice", {"title": "stuck v0"})  # lowest seqs: first in every batch
    for v in range(1, 3):
        service.update("alice", stuck.id, {"title": f"stuck v{v}"})
    others = [service.create("alice", {"title": f"other{i} v0"}) for i in range(2)]
    for i, task in enumerate(others):
        for v in range(1, 3):
            service.update("alice", task.id, {"title": f"other{i} v{v}"})
    expected = ids_by_partition(engine)
    sink = partition_sink()
    sink.failing.add(stuck.id)
    relay = OutboxRelay(
        engine, HttpSink(sink.url, timeout=5), batch_size=4, concurrency=8, clock=clock
    )

    # first pass: the stuck head fails; the two other tasks' rows in the batch go out
    assert relay.run_once() == 1  # batch of 4 = stuck's 3 rows + others[0]'s first row
    rows = outbox_rows(engine)
    stuck_rows = [row for row in rows if row.partition_key == stuck.id]
    assert [row.event_id for row in stuck_rows] == expected[stuck.id]  # all kept, in order
    assert stuck_rows[0].attempts == 1 and "503" in stuck_rows[0].last_error
    assert all(row.attempts == 0 and row.last_error is None for row in stuck_rows[1:])
    # the backing-off partition no longer takes room in a batch: the others drain at once
    assert run_until_idle(relay) == [4, 1, 0]
    assert [r.ce_id for r in sink.requests() if r.headers["ce-subject"] == stuck.id] == expected[
        stuck.id
    ][:1]  # only the head was tried, once
    assert [row.event_id for row in outbox_rows(engine)] == expected[stuck.id]

    # a new event of another task goes out while `stuck` is still backing off
    service.update("alice", others[0].id, {"title": "other0 v3"})
    assert relay.run_once() == 1
    assert len([r for r in sink.requests() if r.headers["ce-subject"] == stuck.id]) == 1

    # the sink takes `stuck` again: once its head is due, its three rows go out in order
    sink.failing.clear()
    clock.set(stuck_rows[0].next_attempt_at + EPS)
    assert run_until_idle(relay) == [3, 0]
    accepted = [r for r in sink.requests() if r.accepted]
    assert received_by_partition(accepted)[stuck.id] == expected[stuck.id]
    for task in others:
        assert received_by_partition(accepted)[task.id][:3] == expected[task.id]
    assert len(accepted) == len({r.ce_id for r in accepted}) == 10  # nothing twice
    assert outbox_rows(engine) == []


def test_http_sink_keeps_one_session_per_thread():
    http = HttpSink(closed_port_url(), timeout=1)
    mine = http.session
    theirs: list = []
    thread = threading.Thread(target=lambda: theirs.extend([http.session, http.session]))
    thread.start()
    thread.join()
    assert http.session is mine
    assert theirs[0] is theirs[1] and theirs[0] is not mine


# -- 8. stop() hands the lease over; PostgreSQL wakes the holder on NOTIFY ------------------------
def test_stop_releases_the_lease_for_the_next_relay(engine, service, clock, sink):
    a = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock)
    b = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock)
    task = service.create("alice", {"title": "e1"})
    assert a.run_once() == 1
    service.update("alice", task.id, {"title": "e2"})
    assert b.run_once() == 0  # A holds the lease
    assert lease_holder(engine) == a.holder

    b.stop()  # not the holder: A's lease stays
    assert lease_holder(engine) == a.holder
    assert OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock).run_once() == 0

    a.stop()  # the clock has not moved: without the release B would wait out the 15 s TTL
    c = OutboxRelay(engine, HttpSink(sink.url, timeout=2), clock=clock)
    assert c.run_once() == 1
    assert lease_holder(engine) == c.holder
    assert [r.structured()["data"]["task"]["title"] for r in sink.accepted()] == ["e1", "e2"]
    assert outbox_rows(engine) == []


def listeners_since(engine, since: datetime) -> int:
    """Server sessions that ran LISTEN on the relay's channel after `since`."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND query = 'LISTEN dueflow_outbox' AND query_start > :since"
            ),
            {"since": since},
        ).scalar_one()


def test_a_commit_through_another_engine_wakes_the_relay_at_once(engine, database_url, sink):
    if engine.dialect.name != "postgresql":
        pytest.skip(
            "LISTEN/NOTIFY is PostgreSQL's; on SQLite a relay polls, and a commit in "
            "its own process kicks it"
        )
    with engine.connect() as conn:
        started = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    # two replicas that poll only every 30 s; the kicks make them pass once now, so that one
    # takes the lease (the holder is the one that listens) instead of at its first poll
    relays = [
        OutboxRelay(engine, HttpSink(sink.url, timeout=5), poll_interval=30) for _ in range(2)
    ]
    other = None
    try:
        for relay in relays:
            relay.start()
            relay.kick()
        assert wait_until(lambda: listeners_since(engine, started) >= 1, timeout=5)
        # another process: its own engine, no relay and no kick of these
        other = make_engine(database_url)
        writer_service = TaskService(UnitOfWorkFactory(other))

        for n, title in enumerate(["first", "second"], start=1):
            committed = time.monotonic()
            writer_service.create("alice", {"title": title})
            assert wait_until(lambda n=n: len(sink.accepted()) >= n, timeout=5)
            assert time.monotonic() - committed < 2.0  # the NOTIFY, not the 30 s poll
        assert wait_until(lambda: not outbox_rows(engine), timeout=5)
        assert [r.structured()["data"]["task"]["title"] for r in sink.accepted()] == [
            "first",
            "second",
        ]  # each once
    finally:
        for relay in relays:
            relay.stop()
        if other is not None:
            other.dispose()


def test_stop_keeps_the_lease_while_its_relay_is_still_delivering(engine, service, partition_sink):
    if engine.dialect.name != "sqlite":
        pytest.skip("the same on every dialect; runs once (stop() waits 10 s for its thread)")
    release = threading.Event()
    sink = partition_sink()
    http = HttpSink(sink.url, timeout=5)
    holding: list[str] = []

    def hanging_sink(event: dict) -> None:
        """A's sink: its first delivery hangs (as a slow Broker would) until the test ends."""
        if not holding:
            holding.append(event["id"])
            release.wait(30)
        http(event)

    task = service.create("alice", {"title": "e1"})
    service.update("alice", task.id, {"title": "e2"})
    a = OutboxRelay(engine, hanging_sink, poll_interval=30)
    thread = None
    try:
        a.start()
        a.kick()
        assert wait_until(lambda: bool(holding), timeout=5)
        thread = a._thread
        a.stop()  # gives up waiting for the thread after 10 s
        assert thread.is_alive()  # A is still delivering e1
        b = OutboxRelay(engine, HttpSink(sink.url, timeout=5))
        assert b.run_once() == 0, "B relayed while A was still delivering"
    finally:
        release.set()
        if thread is not None:
            thread.join(timeout=10)

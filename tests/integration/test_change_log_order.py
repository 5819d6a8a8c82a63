"""The live feed's tail never skips a change although writers are not serialized (issue 16): on
PostgreSQL two transactions draw change ids 5 and 6, 6 commits first, and the tail holds 6 back
until 5 is final, then delivers both in id order. Two real concurrent transactions, each writing
its task event through the outbox (the one door every task change goes through). On SQLite one
write transaction runs at a time, so the second writer cannot even start before the first ends."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dueflow.adapters.db.unit_of_work import UnitOfWork
from dueflow.adapters.live_tail import Hub
from dueflow.domain import events as ev
from dueflow.domain.task import Task
from dueflow.service.live import LiveService

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
def pg(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("concurrent writers: SQLite runs one write transaction at a time")
    return engine


def _created(title: str) -> dict:
    task = Task(id=str(uuid.uuid4()), user_id="alice", title=title, created_at=NOW, updated_at=NOW)
    return ev.task_event(ev.TASK_CREATED, task, NOW)


def _writer(engine) -> UnitOfWork:
    return UnitOfWork(engine, write=True).__enter__()


def _append(uow: UnitOfWork, title: str) -> int:
    """Write a task event in `uow`'s open transaction; the change id it drew."""
    uow.outbox.add(_created(title), NOW)
    return uow.changes.after(0, 1000)[-1].id  # its own uncommitted row is the highest it sees


def _service(engine) -> LiveService:
    return LiveService(lambda write=True: UnitOfWork(engine, write=write), timedelta(hours=1))


class TailDriver:
    """What the live tail thread does per pass: read, keep what is not final yet, publish."""

    def __init__(self, service: LiveService, position: int = 0):
        self.service, self.position, self.settling, self.published = service, position, None, []

    def passes(self, n: int = 3) -> list[int]:
        for _ in range(n):
            changes, self.settling = self.service.tail(self.position, self.settling)
            if changes:
                self.position = changes[-1].id
                self.published += [c.id for c in changes]
        return self.published


def test_a_lower_id_committed_last_is_not_skipped(pg):
    tail = TailDriver(_service(pg))
    first = _writer(pg)
    low = _append(first, "drawn first, committed last")
    second = _writer(pg)
    high = _append(second, "drawn second, committed first")
    assert low < high
    second.commit()
    second.__exit__(None, None, None)

    assert tail.passes() == []  # 6 is visible, but 5 may still commit: 6 waits
    first.commit()
    first.__exit__(None, None, None)
    assert tail.passes() == [low, high]


def test_an_older_transaction_drawing_the_higher_id_does_not_let_it_through(pg):
    """The writer that started first (the lower transaction id) draws the higher change id: a
    tail that released every row whose transaction id is below the snapshot's xmin would send
    it while the lower change id is still in flight, and never send that one."""
    tail = TailDriver(_service(pg))
    older = _writer(pg)
    older.outbox.add(ev.envelope(ev.REMINDER_DUE, ev.REMINDERS_SOURCE, "t", NOW, {}), NOW)
    younger = _writer(pg)
    low = _append(younger, "drawn first by the younger transaction")
    high = _append(older, "drawn second by the older transaction")
    assert low < high
    older.commit()
    older.__exit__(None, None, None)

    assert tail.passes() == []
    younger.commit()
    younger.__exit__(None, None, None)
    assert tail.passes() == [low, high]


def test_a_rolled_back_writer_releases_the_changes_after_it(pg):
    tail = TailDriver(_service(pg))
    doomed = _writer(pg)
    _append(doomed, "rolled back")
    kept = _writer(pg)
    high = _append(kept, "kept")
    kept.commit()
    kept.__exit__(None, None, None)
    assert tail.passes() == []
    doomed.__exit__(None, None, None)  # rolls back
    assert tail.passes() == [high]


def test_a_tail_starts_after_the_writers_in_flight_end(pg):
    """Where a new tail starts (its first position) must not be above a change still in flight:
    the head waits for the writers running when it was read."""
    service = _service(pg)
    first = _writer(pg)
    low = _append(first, "in flight")
    second = _writer(pg)
    high = _append(second, "committed")
    second.commit()
    second.__exit__(None, None, None)

    head: list[int] = []
    reader = threading.Thread(target=lambda: head.append(service.head()))
    reader.start()
    reader.join(timeout=0.3)
    assert reader.is_alive() and head == []  # still waiting for `first`
    first.commit()
    first.__exit__(None, None, None)
    reader.join(timeout=10)
    assert head == [high]
    assert [c.id for c in service.replay("alice", 0, through=head[0])] == [low, high]


def test_nothing_in_flight_delivers_at_once(engine):
    """The common case on both databases: no other writer, no waiting."""
    tail = TailDriver(_service(engine))
    with UnitOfWork(engine, write=True) as uow:
        one = _append(uow, "one")
        two = _append(uow, "two")
        uow.commit()
    assert tail.passes(1) == [one, two]


def test_a_tail_with_no_stream_open_reads_positions_only_and_a_stream_opened_since_replays(
    engine,
):
    """With no stream open the tail reads ids and owners only (no message for nobody). A stream
    that opens between such a read and its publish is not sent the bare ids: it is told to read
    them from the log, up to the tail's new position, as a stream that fell behind is."""
    service = _service(engine)
    with UnitOfWork(engine, write=True) as uow:
        low = _append(uow, "written while nobody listened")
        uow.commit()
    changes, settling = service.tail(0, None, messages=False)
    assert settling is None
    assert [(c.id, c.user_id, c.message) for c in changes] == [(low, "alice", None)]

    hub = Hub()
    hub.start(0)
    assert hub.idle()
    sub = hub.subscribe("alice")  # opened after the read, before its publish
    assert not hub.idle()
    hub.publish(changes)
    assert sub.lagging and not sub.pending and hub.position == low
    [again] = service.replay("alice", 0, hub.position)
    assert again.id == low
    assert json.loads(again.message)["type"] == ev.TASK_CREATED

    full, _ = service.tail(0, None)  # a stream open: the messages are read with the changes
    assert [json.loads(c.message)["id"] for c in full] == [json.loads(again.message)["id"]]

"""SQLite: the write transactions of one process take turns on the process's queue
(adapters/db/write_queue), not in SQLite's busy handler; whatever ends a transaction gives the
turn to the next writer. The writers here wait in SQLite's busy handler briefly or not at all,
so a turn not taken shows as "database is locked"."""

from __future__ import annotations

import os
import sqlite3
import threading

import pytest
import sqlalchemy as sa

from dueflow.adapters.db.engine import make_engine, migrate, writer
from dueflow.adapters.db.write_queue import QueuedConnection, write_queue


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM leases")).scalar_one()


def _lease(name: str) -> sa.TextClause:
    return sa.text(
        f"INSERT INTO leases (name, holder, expires_at) VALUES ('{name}', 'x', '2030-01-01')"
    )


def _immediate(engine, busy_ms: int = 0):
    """A writer's connection (BEGIN IMMEDIATE) that waits in SQLite's busy handler `busy_ms` at
    most (none by default)."""
    conn = writer(engine).connect()
    conn.connection.dbapi_connection.execute(f"PRAGMA busy_timeout={busy_ms}")
    return conn


def test_writers_of_a_process_wait_their_turn_instead_of_failing_busy(engine):
    """While one thread's write transaction is open, another's waits on the queue and goes on
    once the first commits: with SQLite's busy wait alone (100 ms here) it would have failed
    "locked" meanwhile. (The turn is given on right before the first's COMMIT: the second's
    BEGIN IMMEDIATE may meet that COMMIT in SQLite, for a fraction of a millisecond.)"""
    first = _immediate(engine)
    first.execute(_lease("first"))  # BEGIN IMMEDIATE: the write lock and the queue's turn
    started, results = threading.Event(), []

    def second_writer() -> None:
        started.set()
        try:
            with _immediate(engine, busy_ms=100) as conn:
                conn.execute(_lease("second"))
                conn.commit()
            results.append("committed")
        except sa.exc.OperationalError as exc:
            results.append(str(exc))

    thread = threading.Thread(target=second_writer)
    thread.start()
    started.wait(5)
    thread.join(0.2)
    assert thread.is_alive() and results == []  # waiting for its turn, not failing
    first.commit()
    first.close()
    thread.join(5)
    assert results == ["committed"]
    assert _count(engine) == 2


@pytest.mark.parametrize("end", ["rollback", "close", "invalidate"])
def test_every_way_a_transaction_ends_gives_the_turn_on(engine, end):
    conn = _immediate(engine)
    conn.execute(_lease("left"))
    if end == "rollback":
        conn.rollback()
    elif end == "close":
        conn.close()  # back to the pool: SQLAlchemy rolls back
    else:
        conn.invalidate()  # the DB-API connection is closed, not rolled back
    with _immediate(engine) as other:  # would wait forever if the turn were still taken
        other.execute(_lease("next"))
        other.commit()
    assert _count(engine) == 1
    conn.close()


def test_a_failed_begin_gives_the_turn_on(engine):
    """Another process holds SQLite's lock (a plain connection: no queue of ours), so BEGIN
    IMMEDIATE fails at once here; the next writer of this process still gets its turn."""
    database = engine.url.database
    other_process = sqlite3.connect(database, isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")
    with pytest.raises(sa.exc.OperationalError, match="locked"), _immediate(engine) as conn:
        conn.execute(_lease("refused"))
    other_process.execute("ROLLBACK")
    other_process.close()
    assert write_queue(database).thread is None
    with _immediate(engine) as conn:
        conn.execute(_lease("after"))
        conn.commit()
    assert _count(engine) == 1


def test_a_second_write_transaction_in_the_same_thread_fails_as_before_not_forever(engine):
    """A thread that opens a write transaction while its own first one is open, on another
    connection, is not queued behind itself: SQLite's busy timeout ends it with an error."""
    with _immediate(engine) as first:
        first.execute(_lease("first"))
        with pytest.raises(sa.exc.OperationalError, match="locked"), _immediate(engine) as nested:
            nested.execute(_lease("nested"))
        first.commit()
    assert _count(engine) == 1


def test_reads_do_not_queue(engine):
    """A read-only connection (deferred BEGIN) reads while a write transaction is open."""
    with _immediate(engine) as first:
        first.execute(_lease("first"))
        with engine.connect() as reader:
            assert reader.execute(sa.text("SELECT count(*) FROM leases")).scalar_one() == 0
        first.commit()


def test_a_turn_is_waited_for_no_longer_than_the_busy_timeout(engine):
    """A writer whose turn does not come within its connection's busy timeout goes to SQLite,
    whose busy handler then fails it "locked", as before there was a queue (not a wait forever
    behind a transaction that never ends)."""
    first = _immediate(engine)
    first.execute(_lease("first"))
    failures: list[str] = []

    def impatient_writer() -> None:  # another thread: this one has its turn
        conn = QueuedConnection(engine.url.database, timeout=0.05, isolation_level=None)
        try:
            conn.begin_write()
        except sqlite3.OperationalError as exc:
            failures.append(str(exc))
        finally:
            conn.close()

    thread = threading.Thread(target=impatient_writer)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and failures == ["database is locked"]
    first.commit()
    first.close()
    with _immediate(engine) as conn:
        conn.execute(_lease("after"))
        conn.commit()
    assert _count(engine) == 2


def test_a_forked_child_does_not_inherit_a_turn_its_parent_held(engine):
    """gunicorn forks its workers: a turn taken in the parent (by a thread the child does not
    have) must not keep the child's writers waiting."""
    held = write_queue(engine.url.database)
    assert held.enter(timeout=1)
    try:
        child = os.fork()
        if child == 0:  # the child: its own queue, free
            os._exit(0 if write_queue(engine.url.database).enter(timeout=0.5) else 1)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        held.leave()

"""SQLite: the write transactions of one process take turns on a lock of their own.

SQLite has one write lock per database, and a writer that finds it taken does not queue for it:
its busy handler sleeps and tries again, 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 ms and then
100 ms at a time, while any writer that comes later may take the lock in between. At 200 creates/s
the request threads of one `tasks` process held the lock for much of each second, and a create
that lost a few of these races waited 50-500 ms: most of the create's p99 on SQLite (in the long
waits, another thread of the same process held the lock 98% of the time; docs/performance.md,
"Tails: the evidence"). So the writers of one process queue on a lock of their own before BEGIN
IMMEDIATE, and each is woken as soon as the one before it ends. Between processes SQLite's busy
handler still decides: their writes are few (the relay's delete per pass, leases, ticks)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time


class WriteQueue:
    """The write transactions of one process on one SQLite database, one at a time.

    No turn is held by a thread that waits for the GIL, which under load is up to the 5 ms
    switch interval each time: a writer takes the turn while it holds the GIL, right before its
    BEGIN IMMEDIATE (a waiter is woken when the turn is given on and tries again, rather than
    being handed a turn it could not use yet), and gives it on right before its COMMIT, not
    after the GIL is back. A turn held across those waits made the p90 at 200 creates/s about
    twice SQLite's own (docs/performance.md)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._given_on = threading.Condition(threading.Lock())
        self.thread: int | None = None  # the thread whose write transaction is open

    def enter(self, timeout: float) -> bool:
        """Wait for this process's write transaction before this one to end, `timeout` seconds
        at most; False (not queued) when it did not end by then, or when this thread has one
        open already, on another connection: SQLite's busy handler then decides, and its busy
        timeout ends the wait with an error, as before there was a queue."""
        me = threading.get_ident()
        if self.thread == me:
            return False
        deadline = None
        while not self._lock.acquire(blocking=False):
            with self._given_on:
                if not self._lock.locked():
                    continue  # given on meanwhile: try again
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._given_on.wait(left)
        self.thread = me
        return True

    def leave(self) -> None:
        self.thread = None
        self._lock.release()
        with self._given_on:
            self._given_on.notify()


_QUEUES: dict[str, WriteQueue] = {}
_QUEUES_LOCK = threading.Lock()


def _forget_queues() -> None:
    """In a forked child: the parent's threads are gone, so must be any turn one of them held
    (gunicorn forks its workers from a process that may have written)."""
    global _QUEUES_LOCK
    _QUEUES.clear()
    _QUEUES_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_queues)


def write_queue(database: str) -> WriteQueue:
    """The process's queue for the SQLite database file `database` (one for all its engines)."""
    return _queue(os.path.realpath(database))


def _queue(key: str) -> WriteQueue:
    found = _QUEUES.get(key)
    if found is None:
        with _QUEUES_LOCK:
            found = _QUEUES.setdefault(key, WriteQueue())
    return found


class QueuedConnection(sqlite3.Connection):
    """A pysqlite connection whose write transactions take their turn in the process's
    `WriteQueue` for the database file, from BEGIN IMMEDIATE until COMMIT, ROLLBACK or close."""

    def __init__(self, database, *args, timeout: float = 5.0, **kwargs):
        super().__init__(database, *args, timeout=timeout, **kwargs)
        self._timeout = timeout  # SQLite's busy timeout: a turn is waited for as long
        path = os.fspath(database) if isinstance(database, str | os.PathLike) else ""
        # a file, not ":memory:" (each connection its own database) nor a URI (not used here)
        named = path not in ("", ":memory:") and not path.startswith("file:")
        # the file's queue is looked up at each write, not kept: after a fork, the child's
        self._key = os.path.realpath(path) if named else None
        self._queue: WriteQueue | None = None  # while this connection has the turn

    def begin_write(self) -> None:
        """BEGIN IMMEDIATE, in this process's turn."""
        if self._key is not None and self._queue is None:
            queue = _queue(self._key)
            if queue.enter(self._timeout):
                self._queue = queue
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._leave()
            raise

    def commit(self) -> None:
        # the turn is given on first (see WriteQueue): the next writer's BEGIN IMMEDIATE then
        # meets this COMMIT at most, a fraction of a millisecond in SQLite's busy handler; a
        # failed COMMIT leaves the transaction open, and SQLite's lock with it, until rollback
        self._leave()
        super().commit()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._leave()

    def __del__(self) -> None:  # a connection dropped without close must not hold the turn
        if getattr(self, "_queue", None) is not None:
            self._leave()

    def _leave(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.leave()

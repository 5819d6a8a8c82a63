"""One tail of the change log per `live` process, fanning out to the process's open streams.

Every replica serves every user: a Broker Trigger would deliver each event to one pod only, so
instead each process reads the durable change log itself (docs/architecture.md says why). One
thread per process reads every change after its position, in id order, and hands each batch to
the event loop, where the `Hub` appends each change to the streams of its owner: one query per
wake-up for the whole process, not one per stream. A change is published once it is final (no
lower id can still commit, see dueflow.service.live.settle). On PostgreSQL a listener thread
wakes the tail on each NOTIFY of the change log's trigger; polling every `poll_interval` seconds
goes on underneath (and is all there is on SQLite), so a missed notification delays, never loses.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque

from sqlalchemy.engine import Engine

from dueflow.adapters.db.listen import listen
from dueflow.service.live import SETTLE_WAIT_S, LiveService, Settling
from dueflow.service.ports import Change

log = logging.getLogger("dueflow.live")
CHANNEL = "dueflow_changes"  # the NOTIFY channel of migration 0006's trigger


class Subscriber:
    """One open stream: the changes waiting to be sent, and its wake-up."""

    __slots__ = ("user_id", "pending", "wake", "lagging")

    def __init__(self, user_id: str):
        self.user_id = user_id
        self.pending: deque[Change] = deque()
        self.wake = asyncio.Event()
        self.lagging = False  # changes were dropped: the stream reads them from the log again


class Hub:
    """The open streams of this process by user; used on the event loop only."""

    def __init__(self, max_pending: int = 1000):
        self.max_pending = max_pending  # a stream this far behind reads from the log instead
        self.position: int | None = None  # the tail's position, once it has read the log
        self.ready = asyncio.Event()
        self._streams: dict[str, set[Subscriber]] = {}

    def subscribe(self, user_id: str) -> Subscriber:
        sub = Subscriber(user_id)
        self._streams.setdefault(user_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        streams = self._streams.get(sub.user_id)
        if streams is not None:
            streams.discard(sub)
            if not streams:
                del self._streams[sub.user_id]

    def open_streams(self) -> int:
        return sum(len(s) for s in self._streams.values())

    def idle(self) -> bool:
        """No stream open (read by the tail's thread: one atomic look at the dict)."""
        return not self._streams

    def start(self, position: int) -> None:
        self.position = position
        self.ready.set()

    def publish(self, changes: list[Change]) -> None:
        """A batch the tail read, in id order: to each open stream of each change's owner. A
        change read without its message (the tail saw no stream open when it read, and one
        opened since) makes its owner's streams read it from the log, as a lagging one does."""
        for change in changes:
            for sub in self._streams.get(change.user_id, ()):
                if change.message is None or len(sub.pending) >= self.max_pending:
                    sub.lagging = True
                    sub.pending.clear()
                elif not sub.lagging:
                    sub.pending.append(change)
                sub.wake.set()
        self.position = changes[-1].id


class Tail:
    """The thread that reads the change log after its position and publishes to the hub; it
    also prunes the log every `prune_interval` seconds (any replica may: pruning is idempotent)."""

    def __init__(
        self,
        service: LiveService,
        engine: Engine,
        hub: Hub,
        loop: asyncio.AbstractEventLoop,
        *,
        poll_interval: float = 1.0,
        prune_interval: float = 300.0,
        min_gap: float = 0.003,
        idle_gap: float = 0.1,
    ):
        self.service, self.engine, self.hub, self.loop = service, engine, hub, loop
        self.poll_interval, self.prune_interval = poll_interval, prune_interval
        # at least this long between passes: the NOTIFYs of a burst of writes (one per commit)
        # become one query, not one each (its cost per change was the live process's CPU)
        self.min_gap = min_gap
        # with no stream open in this process, at least this long: the tail then only keeps its
        # position (where a new stream starts), and following every commit cost this process
        # and the database about 1 ms of CPU per task write (docs/performance.md)
        self.idle_gap = idle_gap
        self.position: int | None = None
        self.settling: Settling | None = None  # changes read, waiting for writers to end
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pruned_at: float | None = None

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._loop, name="live-tail", daemon=True)]
        if self.engine.dialect.name == "postgresql":
            self._threads.append(
                threading.Thread(target=self._listen, name="live-listen", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def run_once(self) -> int:
        """Read and publish everything after the position; how many changes were read."""
        if self.position is None:
            self.position = self.service.head()
            self.loop.call_soon_threadsafe(self.hub.start, self.position)
        read = 0
        while not self._stop.is_set():
            # no stream open: positions and owners only (no message built for nobody)
            messages = not self.hub.idle()
            changes, self.settling = self.service.tail(self.position, self.settling, messages)
            if not changes:
                break
            self.position = changes[-1].id
            read += len(changes)
            self.loop.call_soon_threadsafe(self.hub.publish, changes)
            if len(changes) < self.service.batch:
                break
        return read

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self._prune_when_due()
            except Exception:
                log.exception("live tail pass failed; retrying")
            idle = self.hub.idle()
            if self.settling:  # changes read but not final yet: their writers end in ms
                self._stop.wait(self.idle_gap if idle else SETTLE_WAIT_S)
                continue
            self._stop.wait(self.idle_gap if idle else self.min_gap)
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _prune_when_due(self) -> None:
        now = time.monotonic()
        if self._pruned_at is None or now - self._pruned_at >= self.prune_interval:
            self._pruned_at = now
            gone = self.service.prune()
            if gone:
                log.info("pruned %d changes older than the retention", gone)

    def _listen(self) -> None:
        """Wake the tail on each NOTIFY of the change log (PostgreSQL), from any process."""
        while not self._stop.is_set():
            try:
                listen(self.engine, CHANNEL, self._wake.set, lambda: not self._stop.is_set())
            except Exception:
                log.warning("live LISTEN failed; polling until it reconnects", exc_info=True)
                self._stop.wait(1.0)

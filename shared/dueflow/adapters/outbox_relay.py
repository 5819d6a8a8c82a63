"""Delivers outbox rows, in order, to the event sink (K_SINK) as binary-mode HTTP CloudEvents.

A change commits its event into the outbox in the same transaction, so nothing waits on the sink
and nothing is lost to it: rows stay until the sink accepts them, retried with capped exponential
backoff. Order: rows go out by sequence within a partition (the task id), and a failing row
holds back the ones after it; different partitions go out concurrently (DUEFLOW_OUTBOX_CONCURRENCY
deliveries at a time). One process at a time relays (a lease row), so replicas cannot reorder
events between them. On PostgreSQL every relay LISTENs for the NOTIFY that each outbox insert
sends (migration 0004), so the holder wakes as soon as any replica commits an event; elsewhere it
polls every DUEFLOW_OUTBOX_POLL seconds, and a commit in its own process kicks it.

Each event goes out as stored, its `traceparent` extension (the span that wrote it) included; the
delivery itself is a span under that one, and the HTTP `traceparent` header names it, so the
Broker's own spans, when it traces, hang below the relay's.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from dueflow import metrics, observability
from dueflow.adapters.db.dead_letter_store import DeadLetters
from dueflow.adapters.db.engine import read_only, writer
from dueflow.adapters.db.listen import listen
from dueflow.adapters.db.outbox_store import Outbox, RowKinds
from dueflow.adapters.db.reminder_store import Reminders
from dueflow.adapters.http_sink import DeliveryError, HttpSink
from dueflow.adapters.relay_lease import LEASE_NAME, LEASE_TTL, Lease
from dueflow.domain.reminder_jobs import JOB_TYPES

__all__ = ["LEASE_NAME", "LEASE_TTL", "DeliveryError", "HttpSink", "OutboxRelay"]

log = logging.getLogger("dueflow.outbox")
# While the sink is down the relay sends one event at a time as a probe, 0.25 s after the last
# failure and doubling up to PROBE_MAX: a returning Broker is found within a second, and the
# backlog then drains at full speed (a 30 s outage's backlog within 5 s, docs/operations.md).
PROBE_FIRST, PROBE_MAX = 0.25, 1.0
#: the event sink's rows: all but the reminder jobs' commands (the reminders function's job relay
#: delivers those to its Dapr sidecar, docs/reminders.md)
EVENTS = RowKinds(excluded=JOB_TYPES)
#: the job relay's rows (the reminders function, DUEFLOW_REMINDER_JOBS=dapr)
JOBS = RowKinds(only=JOB_TYPES)
CHANNEL = "dueflow_outbox"  # NOTIFYed by the outbox insert trigger (migration 0004)
# Seconds between two measurements of the backlog gauges (3 or 4 COUNTs per process): far below
# any scrape interval, and not the 10 a second of the poll interval times every process, which
# made them most of the database's statements while the functions sat idle (docs/performance.md).
MEASURE_INTERVAL = 2.0
# Seconds at least between two passes: a stream of commits (one NOTIFY or kick each) then costs
# a pass per few events, not one each; a pass's reads and writes were most of the relay's CPU
# per event under a stream of creates (docs/performance.md). An event waits this long at most.
MIN_GAP = 0.01


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        sink: Callable[[dict], None],
        *,
        batch_size: int = 100,
        max_backoff: float = 30.0,
        poll_interval: float = 1.0,
        concurrency: int = 8,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        reminders_overdue_after: float | None = None,
        kinds: RowKinds = EVENTS,
        lease_name: str = LEASE_NAME,
        min_gap: float = MIN_GAP,
    ):
        self.engine = writer(engine)
        self.reader = engine
        self.sink = sink
        self.batch_size, self.max_backoff, self.poll_interval = (
            batch_size,
            max_backoff,
            poll_interval,
        )
        self.clock = clock
        # measure() also counts reminders due longer than this ago and still unsent
        self.reminders_overdue_after = reminders_overdue_after
        self.concurrency = max(1, concurrency)
        self.min_gap = min_gap
        self._pool: ThreadPoolExecutor | None = None
        self._lease_lock = threading.Lock()
        self.holder = uuid.uuid4().hex
        self.kinds = kinds  # the rows this relay delivers (the others have their own relay)
        self._lease = Lease(self.engine, self.reader, self.holder, lease_name)
        self._measured_at: datetime | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._holding = threading.Event()  # this relay holds the lease (so it listens)
        self._lease_tried = False  # until the first try, a kick means "try now"
        self._probe_delay: float | None = None  # set while the sink is down
        self._probe_at: datetime | None = None  # when the next probe is due while it is down

    def run_once(self) -> int:
        """Deliver what is due now, in order; returns how many events were delivered.

        While the sink is down (the last pass met only failures of the sink itself, not
        rejections of an event), a pass sends a single event as a probe, and only when the
        probe is due; the first success ends that, makes every postponed event due at once and
        wakes the next pass, so the backlog drains without waiting out per-event backoffs."""
        if not self._take_lease():
            return 0
        if self._probe_at is not None and self.clock() < self._probe_at:
            return 0
        lease_taken = now = self.clock()
        # a read: on SQLite a deferred BEGIN, not the writers' BEGIN IMMEDIATE, which made each
        # pass queue for the write lock and hold it from the request writers meanwhile
        with self.reader.connect() as conn:
            read_only(conn)  # one statement: no BEGIN before it, no ROLLBACK after
            rows = Outbox(conn).waiting(now, self.batch_size, self.kinds)
        partitions: dict[str | None, list] = {}
        held: set[str | None] = set()  # partitions whose head is backing off
        for row in rows:
            if row.partition_key in held:
                continue
            if row.next_attempt_at > now:
                held.add(row.partition_key)  # its head is backing off: keep the partition's order
                continue
            partitions.setdefault(row.partition_key, []).append(row)
        lease = _LeaseClock(lease_taken)
        groups = list(partitions.values())
        if self._probe_delay is not None and groups:
            groups = [groups[0][:1]]  # the probe: the oldest due event
        if len(groups) <= 1 or self.concurrency == 1:
            done = [self._deliver_in_order(group, lease) for group in groups]
        else:
            done = list(self._executor().map(lambda g: self._deliver_in_order(g, lease), groups))
        # the writes of a pass happen here, on one connection: the delivery threads only send
        for _, failed in done:
            if failed is not None:
                self._postpone(*failed)
        delivered = [seq for seqs, _ in done for seq in seqs]
        if delivered:
            with self.engine.connect() as conn:
                read_only(conn)  # one statement, autocommitted: no BEGIN and COMMIT round trips
                Outbox(conn).delete(delivered)
                conn.commit()  # SQLite's transaction (PostgreSQL: nothing to send)
        if self._track_sink(bool(delivered), any(f is not None and f[3] for _, f in done), now):
            return len(delivered) + self.run_once()  # the probe went through: drain now
        return len(delivered)

    def _track_sink(self, delivered: bool, sink_failed: bool, now: datetime) -> bool:
        """Enter, stay in or leave the probing state after a pass (see run_once); True when
        the pass's probe went through (the sink is back)."""
        if delivered and self._probe_delay is not None:
            self._probe_delay = self._probe_at = None
            log.info("event sink answers again; draining the outbox")
            with self.engine.begin() as conn:  # what waited out the outage is due now
                Outbox(conn).make_due(now, self.kinds)
            return True
        if sink_failed and not delivered:
            if self._probe_delay is None:
                metrics.OUTBOX_SINK_DOWN.inc()
                log.warning("event sink down; probing it with one event at a time")
            self._probe_delay = min(PROBE_MAX, 2 * (self._probe_delay or PROBE_FIRST / 2))
            self._probe_at = self.clock() + timedelta(seconds=self._probe_delay)
        return False

    def _deliver_in_order(self, rows: list, lease: _LeaseClock) -> tuple[list[int], tuple | None]:
        """One partition's rows, in order, until one fails; returns the delivered seqs and the
        failed row's (seq, attempts, error, sink_down), if any."""
        delivered: list[int] = []
        for row in rows:
            if not self._keep_lease(lease):
                break
            try:
                self._send(json.loads(row.payload), row.seq, row.attempts)
            except Exception as exc:  # any failure: keep the row, retry later
                metrics.OUTBOX_DELIVERIES.labels("failed").inc()
                sink_down = getattr(exc, "sink_down", False)
                return delivered, (row.seq, row.attempts + 1, str(exc), sink_down)
            metrics.OUTBOX_DELIVERIES.labels("ok").inc()
            delivered.append(row.seq)
        return delivered, None

    def _keep_lease(self, lease: _LeaseClock) -> bool:
        """A slow sink must not outlive the lease: renew it when half of it is used, or stop
        if another relay took it meanwhile."""
        with self._lease_lock:
            if lease.lost:
                return False
            if self.clock() - lease.taken > LEASE_TTL / 2:
                if not self._take_lease():
                    lease.lost = True
                    return False
                lease.taken = self.clock()
            return True

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="outbox-send")
        return self._pool

    def backlog(self) -> int:
        with self.engine.connect() as conn:
            return Outbox(conn).count()

    def measure(self) -> tuple[int, float, int]:
        """Set the backlog gauges: events waiting, the oldest one's age in seconds, dead letters
        not replayed (and reminders overdue, when `reminders_overdue_after` is set). The relay
        measures because it is the one loop every function runs on a connection of its own:
        the pod's connection budget (docs/architecture.md) stays."""
        with self.engine.connect() as conn:
            waiting, oldest = Outbox(conn).backlog()
            letters = DeadLetters(conn).pending()
            if self.reminders_overdue_after is not None:
                bound = timedelta(seconds=self.reminders_overdue_after)
                overdue = Reminders(conn).count_overdue(self.clock() - bound)
                metrics.set_reminders_overdue(overdue)
        now = self.clock()
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        metrics.set_backlog(waiting, age, letters)
        self._measured_at = now
        return waiting, age, letters

    def _send(self, event: dict, seq: int, attempts: int) -> None:
        attributes = {
            "cloudevents.event_id": str(event.get("id")),
            "cloudevents.event_type": str(event.get("type")),
            "cloudevents.event_source": str(event.get("source")),
            "dueflow.outbox.seq": seq,
            "dueflow.outbox.attempts": attempts,
        }
        carrier = observability.trace_carrier(event)
        name = f"publish {event.get('type')}"
        with observability.child_span(name, carrier, "PRODUCER", attributes):
            self.sink(event)

    def kick(self) -> None:
        """Wake the relay thread now (after a commit) instead of at its next poll: only while
        it holds the lease, since another relay delivers otherwise (woken by NOTIFY on
        PostgreSQL); a relay waiting for the lease finds out at its next poll."""
        if self._holding.is_set() or not self._lease_tried:
            self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="outbox-relay", daemon=True)
            self._thread.start()
        if self._listener is None and self.engine.dialect.name == "postgresql":
            self._listener = threading.Thread(
                target=self._listen, name="outbox-listen", daemon=True
            )
            self._listener.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        still_delivering = False
        if self._thread is not None:
            self._thread.join(timeout=10)
            still_delivering = self._thread.is_alive()
            self._thread = None
        if self._listener is not None:
            self._listener.join(timeout=5)
            self._listener = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if still_delivering:
            return  # a delivery still in flight keeps the lease: giving it up could send twice
        try:
            self._release_lease()
        except Exception:  # the database may be gone already: the lease then simply expires
            log.debug("could not release the relay lease", exc_info=True)

    def _listen(self) -> None:
        """Wake the relay on each NOTIFY of the outbox trigger, from any process (PostgreSQL).

        Only while this relay holds the lease: the others could not deliver anyway, so the
        whole deployment spends one connection on listening, not one per pod. Polling goes on
        underneath: a missed notification (reconnect) delays, never loses."""
        while not self._stop.is_set():
            if not self._holding.wait(1.0):
                continue
            try:
                listen(
                    self.reader,
                    CHANNEL,
                    self._wake.set,
                    lambda: not self._stop.is_set() and self._holding.is_set(),
                )
            except Exception:
                log.warning("outbox LISTEN failed; polling until it reconnects", exc_info=True)
                self._stop.wait(1.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.poll_interval)
            self._wake.clear()
            try:
                while self.run_once() == self.batch_size and not self._stop.is_set():
                    pass
                if self._measure_due():
                    self.measure()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
            self._stop.wait(self.min_gap)

    def _measure_due(self) -> bool:
        # at most every MEASURE_INTERVAL: commits kick the relay, and a burst of them must not
        # turn into a burst of COUNT(*)s over the outbox; nor must the poll, in every process
        last = self._measured_at
        interval = max(self.poll_interval, MEASURE_INTERVAL)
        return last is None or (self.clock() - last).total_seconds() >= interval

    def _postpone(self, seq: int, attempts: int, error: str, sink_down: bool = False) -> None:
        # jitter first, then the cap: DUEFLOW_OUTBOX_MAX_BACKOFF is the longest wait; when the
        # sink is down, the relay's probing paces the retries, so the event waits PROBE_MAX at
        # most and goes out as soon as the sink answers again
        cap = min(self.max_backoff, PROBE_MAX) if sink_down else self.max_backoff
        delay = min(cap, 0.5 * 2 ** min(attempts, 20) * random.uniform(0.8, 1.2))
        log.warning(
            "event delivery failed; will retry",
            extra={
                "seq": seq,
                "attempts": attempts,
                "retry_in_s": round(delay, 2),
                "error": error[:300],
            },
        )
        with self.engine.begin() as conn:
            Outbox(conn).postpone(seq, attempts, error, self.clock() + timedelta(seconds=delay))

    def _release_lease(self) -> None:
        """On a clean stop, let another replica take over at once instead of after the TTL."""
        self._holding.clear()
        self._lease.release(self.clock())

    def _take_lease(self) -> bool:
        held = self._try_lease()
        self._lease_tried = True
        if held:
            self._holding.set()
        else:
            self._holding.clear()
        return held

    def _try_lease(self) -> bool:
        return self._lease.take(self.clock())


class _LeaseClock:
    """When this pass last took or renewed the lease, shared by its delivery threads."""

    def __init__(self, taken: datetime):
        self.taken, self.lost = taken, False

"""Delivers outbox rows, in order, to the event sink (K_SINK) as binary-mode HTTP CloudEvents.

A change commits its event into the outbox in the same transaction, so nothing waits on the sink
and nothing is lost to it: rows stay until the sink accepts them, retried with capped exponential
backoff. Order: rows go out by sequence, and a failing row holds back the ones after it. One
process at a time relays (a lease row), so replicas cannot reorder events between them.

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
from datetime import UTC, datetime, timedelta

import requests
import sqlalchemy as sa
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from opentelemetry import propagate
from opentelemetry.trace import SpanKind
from sqlalchemy.engine import Engine

from dueflow import metrics, observability
from dueflow.adapters.db.engine import writer
from dueflow.adapters.db.schema import dead_letters, leases, outbox

log = logging.getLogger("dueflow.outbox")
LEASE_NAME, LEASE_TTL = "outbox-relay", timedelta(seconds=15)


class DeliveryError(Exception):
    """The sink did not accept an event (it will be retried)."""


class HttpSink:
    """POSTs one CloudEvent (binary mode) and requires a 2xx answer."""

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout
        self.session = requests.Session()

    def __call__(self, event: dict) -> None:
        attributes = {k: v for k, v in event.items() if k != "data"}
        headers, body = to_binary(CloudEvent(attributes, event.get("data")))
        propagate.inject(headers)  # transport context: the relay's span (ce-traceparent stays)
        try:
            response = self.session.post(self.url, headers=headers, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"sink answered {response.status_code}: {response.text[:200]}")


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        sink: Callable[[dict], None],
        *,
        batch_size: int = 100,
        max_backoff: float = 30.0,
        poll_interval: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
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
        self.holder = uuid.uuid4().hex
        self._measured_at: datetime | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Deliver what is due now, in order; returns how many events were delivered."""
        if not self._take_lease():
            return 0
        lease_taken = now = self.clock()
        waiting = outbox.alias("waiting")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    outbox.c.seq,
                    outbox.c.partition_key,
                    outbox.c.payload,
                    outbox.c.attempts,
                    outbox.c.next_attempt_at,
                )
                .where(
                    ~sa.exists().where(  # skip partitions whose head is backing off
                        waiting.c.partition_key == outbox.c.partition_key,
                        waiting.c.next_attempt_at > now,
                    )
                )
                .order_by(outbox.c.seq)
                .limit(self.batch_size)
            ).all()
        delivered = 0
        held: set[str | None] = set()  # partitions whose head failed or is backing off
        for row in rows:
            if row.partition_key in held:
                continue
            if row.next_attempt_at > now:
                held.add(row.partition_key)  # its head is backing off: keep the partition's order
                continue
            if self.clock() - lease_taken > LEASE_TTL / 2:
                # a slow sink must not outlive the lease: renew it, or stop if another took it
                if not self._take_lease():
                    break
                lease_taken = self.clock()
            try:
                self._send(json.loads(row.payload), row.seq, row.attempts)
            except Exception as exc:  # any failure: keep the row, retry later
                metrics.OUTBOX_DELIVERIES.labels("failed").inc()
                self._postpone(row.seq, row.attempts + 1, str(exc))
                held.add(row.partition_key)
                continue
            metrics.OUTBOX_DELIVERIES.labels("ok").inc()
            with self.engine.begin() as conn:
                conn.execute(outbox.delete().where(outbox.c.seq == row.seq))
            delivered += 1
        return delivered

    def backlog(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()

    def measure(self) -> tuple[int, float, int]:
        """Set the backlog gauges: events waiting, the oldest one's age in seconds, and dead
        letters not replayed. The relay measures because it is the one loop every function runs
        on a connection of its own: the pod's connection budget (docs/architecture.md) stays."""
        with self.engine.connect() as conn:
            waiting, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).select_from(outbox)
            ).one()
            letters = conn.execute(
                sa.select(sa.func.count())
                .select_from(dead_letters)
                .where(dead_letters.c.replayed_at.is_(None))
            ).scalar_one()
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
        with observability.child_span(name, carrier, SpanKind.PRODUCER, attributes):
            self.sink(event)

    def kick(self) -> None:
        """Wake the relay thread now (after a commit) instead of at its next poll."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="outbox-relay", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

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

    def _measure_due(self) -> bool:
        # at most once per poll interval: commits kick the relay, and a burst of them must not
        # turn into a burst of COUNT(*)s over the outbox
        last = self._measured_at
        return last is None or (self.clock() - last).total_seconds() >= self.poll_interval

    def _postpone(self, seq: int, attempts: int, error: str) -> None:
        # jitter first, then the cap: DUEFLOW_OUTBOX_MAX_BACKOFF is the longest wait
        delay = min(self.max_backoff, 0.5 * 2 ** min(attempts, 20) * random.uniform(0.8, 1.2))
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
            conn.execute(
                outbox.update()
                .where(outbox.c.seq == seq)
                .values(
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt_at=self.clock() + timedelta(seconds=delay),
                )
            )

    def _take_lease(self) -> bool:
        now = self.clock()
        # A read first: processes that do not hold the lease poll often and must not queue for
        # SQLite's write lock (or write a row on PostgreSQL) just to learn that another does.
        with self.reader.connect() as conn:
            current = conn.execute(
                sa.select(leases.c.holder, leases.c.expires_at).where(leases.c.name == LEASE_NAME)
            ).first()
        if current is not None and current.holder != self.holder and current.expires_at >= now:
            return False
        if current is not None and current.holder == self.holder and (
            current.expires_at - now > LEASE_TTL * 2 / 3
        ):
            return True  # ours and fresh: renewing on every pass would write ten times a second
        values = {"holder": self.holder, "expires_at": now + LEASE_TTL}
        with self.engine.begin() as conn:
            taken = conn.execute(
                leases.update()
                .where(
                    leases.c.name == LEASE_NAME,
                    sa.or_(leases.c.holder == self.holder, leases.c.expires_at < now),
                )
                .values(**values)
            ).rowcount
            if taken:
                return True
            exists = conn.execute(
                sa.select(leases.c.name).where(leases.c.name == LEASE_NAME)
            ).first()
            if exists:
                return False
            conn.execute(leases.insert().values(name=LEASE_NAME, **values))
            return True

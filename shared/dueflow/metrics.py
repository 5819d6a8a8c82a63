"""Prometheus metrics of every function, served by each process on DUEFLOW_METRICS_PORT.

Labels stay few on purpose: routes are rule templates (never raw paths), event types are known
types or "other", outcomes a handful of words. Every distinct label value is a time series of its
own, so a task id, a user or a sender-chosen string in a label would grow Prometheus without bound.
"""

from __future__ import annotations

import logging
import threading

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("dueflow.metrics")

HTTP_REQUESTS = Counter(
    "dueflow_http_requests",
    "Requests to the tasks API by route template, method and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "dueflow_http_request_duration_seconds",
    "Time the tasks API took to answer, by route template and method",
    ["route", "method"],
)
EVENTS_HANDLED = Counter(
    "dueflow_events_handled",
    "Events delivered to an event function, by function, event type and outcome",
    ["function", "type", "outcome"],
)
EVENT_DURATION = Histogram(
    "dueflow_event_duration_seconds",
    "Time an event function took to handle one delivery, by function and event type",
    ["function", "type"],
)
OUTBOX_DELIVERIES = Counter(
    "dueflow_outbox_deliveries",
    "Attempts of the outbox relay to hand an event to the sink (K_SINK), by outcome",
    ["outcome"],
)
# 60 s is the PingSource's tick: a bucket edge there separates "on time" from "a tick late".
REMINDER_LATENESS = Histogram(
    "dueflow_reminder_lateness_seconds",
    "Seconds between a reminder's time and its e-mail being sent",
    buckets=(1, 5, 15, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600, float("inf")),
)
EMAILS = Counter(
    "dueflow_emails",
    "Reminder e-mails by backend and outcome (sent, failed for good, retry: a transient error)",
    ["backend", "outcome"],
)
DEAD_LETTERS = Counter(
    "dueflow_dead_letters",
    "Events the deadletter function stored (duplicates of a stored one not counted)",
)
REMINDERS_REEMITTED = Counter(
    "dueflow_reminders_reemitted",
    "Reminders the tick emitted again: emitted before, still not sent after "
    "DUEFLOW_REMINDER_REEMIT_AFTER",
)
OUTBOX_SINK_DOWN = Counter(
    "dueflow_outbox_sink_down",
    "Times the outbox relay found the sink down (unreachable, 5xx or 429) and began probing it",
)

# Measured from the database by the outbox relay, like the backlog gauges below; registered on
# its first measurement.
REMINDERS_OVERDUE = Gauge(
    "dueflow_reminders_overdue",
    "Reminders of open tasks due longer than DUEFLOW_REMINDER_REEMIT_AFTER ago and not yet sent",
    registry=None,
)

# Measured from the database by the outbox relay. Registered on the first measurement, so a
# process whose relay never measured (no K_SINK) reports nothing rather than a false zero.
OUTBOX_BACKLOG = Gauge(
    "dueflow_outbox_backlog", "Events in the outbox waiting for delivery", registry=None
)
OUTBOX_OLDEST_AGE = Gauge(
    "dueflow_outbox_oldest_age_seconds",
    "Age of the oldest event waiting in the outbox (0 when empty)",
    registry=None,
)
DEAD_LETTERS_PENDING = Gauge(
    "dueflow_dead_letters_pending", "Stored dead letters not yet replayed", registry=None
)
MEASURED = (OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, DEAD_LETTERS_PENDING)

_lock = threading.Lock()
_measured = False
_overdue_measured = False
_served_on: int | None = None


def set_backlog(backlog: int, oldest_age: float, dead_letters: int) -> None:
    global _measured
    with _lock:
        if not _measured:
            for gauge in MEASURED:
                REGISTRY.register(gauge)
            _measured = True
    OUTBOX_BACKLOG.set(backlog)
    OUTBOX_OLDEST_AGE.set(max(0.0, oldest_age))
    DEAD_LETTERS_PENDING.set(dead_letters)


def set_reminders_overdue(count: int) -> None:
    global _overdue_measured
    with _lock:
        if not _overdue_measured:
            REGISTRY.register(REMINDERS_OVERDUE)
            _overdue_measured = True
    REMINDERS_OVERDUE.set(count)


def serve(port: int) -> int | None:
    """Start this process's metrics endpoint on `port` (once per process; 0: off). Returns the
    port it serves on, or None.

    A port already taken is logged and left alone: a second gunicorn worker, or another function
    on the same host, must go on answering requests without metrics rather than fail."""
    global _served_on
    with _lock:
        if _served_on is not None or port == 0:
            return _served_on
        try:
            start_http_server(port)
        except OSError as exc:
            log.warning(
                "metrics endpoint not started: port unavailable",
                extra={"port": port, "error": str(exc)},
            )
            return None
        _served_on = port
    log.info("metrics endpoint started", extra={"port": port})
    return port


class PrometheusServiceMetrics:
    """The services' metrics port (`dueflow.service.ports.ServiceMetrics`) on these counters."""

    def email(self, backend: str, outcome: str) -> None:
        EMAILS.labels(backend, outcome).inc()

    def reminder_lateness(self, seconds: float) -> None:
        REMINDER_LATENESS.observe(seconds)

    def dead_letter_stored(self) -> None:
        DEAD_LETTERS.inc()

    def reminders_reemitted(self, count: int) -> None:
        REMINDERS_REEMITTED.inc(count)

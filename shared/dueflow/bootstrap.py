"""The one place that builds adapters from config and wires them into services and entry points."""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dueflow import config, logs, metrics, observability
from dueflow.adapters.auth import AuthSettings
from dueflow.adapters.db.engine import make_engine, migrate
from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
from dueflow.adapters.email import backend_from_config
from dueflow.adapters.http.api import TasksApi
from dueflow.adapters.http.event_function import EventFunction
from dueflow.adapters.outbox_relay import HttpSink, OutboxRelay
from dueflow.domain import events
from dueflow.service.commands import KINDS, PREFIX, RAW_RECORD, CommandService
from dueflow.service.dead_letters import DeadLetterService
from dueflow.service.notify import NotifyService
from dueflow.service.recurrence import RecurrenceService
from dueflow.service.reminders import ReminderService
from dueflow.service.tasks import TaskService

log = logging.getLogger("dueflow.bootstrap")
PING = "dev.knative.sources.ping"
# Event types the default-handler functions count under their own name (see EventFunction).
COMMAND_TYPES = frozenset([*(PREFIX + kind for kind in KINDS), RAW_RECORD])
EMITTED_TYPES = frozenset(
    [
        events.TASK_CREATED,
        events.TASK_UPDATED,
        events.TASK_COMPLETED,
        events.TASK_REOPENED,
        events.TASK_DELETED,
        events.REMINDER_DUE,
        events.NOTIFICATION_SENT,
        events.NOTIFICATION_FAILED,
    ]
)


@dataclass
class Runtime:
    engine: Engine
    relay: OutboxRelay | None
    tasks: TaskService
    recurrence: RecurrenceService
    reminders: ReminderService
    notify: NotifyService
    commands: CommandService
    dead_letters: DeadLetterService

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        self.engine.dispose()


_lock = threading.Lock()
_runtime: Runtime | None = None
_api: TasksApi | None = None


def check_config(*, needs_auth: bool = True) -> None:
    """Fail at start, not at the first request, when the configuration cannot work."""
    if needs_auth:
        config.auth()
    config.metrics_port()
    logs.configure(config.log_level())


def runtime() -> Runtime:
    """The process-wide runtime, built on first use (never at import: keeps cold starts short)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = _build_runtime()
        return _runtime


def tasks_api() -> TasksApi:
    global _api
    rt = runtime()
    with _lock:
        if _api is None:
            auth = config.auth()
            _api = TasksApi(
                rt.tasks,
                AuthSettings(auth.jwt_secret, auth.jwks_url, auth.audience, auth.issuer),
                config.cors_origins(),
                ready=lambda: _ping(rt.engine),
            )
        return _api


def reset() -> None:
    """Drop the runtime (tests, and the local runner between configurations)."""
    global _runtime, _api
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime, _api = None, None


def _build_runtime() -> Runtime:
    logs.configure(config.log_level())
    # Here, not at import: functions-framework imports the function in gunicorn's master, and the
    # metrics server's thread would not survive the fork into the worker that serves.
    metrics.serve(config.metrics_port())
    observability.configure_tracing()
    engine = make_engine(config.database_url())
    if config.auto_migrate():
        migrate(engine)
    relay = None
    if (sink := config.sink_url()) is not None:
        relay = OutboxRelay(
            engine,
            HttpSink(sink, config.sink_timeout()),
            batch_size=config.outbox_batch_size(),
            max_backoff=config.outbox_max_backoff(),
            poll_interval=config.outbox_poll_interval(),
        )
        relay.start()
    else:
        log.warning("K_SINK is not set: events stay in the outbox until a sink is configured")
    uow = UnitOfWorkFactory(engine)
    kick = relay.kick if relay else lambda: None
    email_backend = functools.cache(backend_from_config)
    tasks = TaskService(uow, on_commit=kick)
    return Runtime(
        engine,
        relay,
        tasks=tasks,
        recurrence=RecurrenceService(uow, on_commit=kick),
        reminders=ReminderService(
            uow,
            batch_size=config.reminder_batch_size(),
            late_after=config.reminder_late_after(),
            on_commit=kick,
        ),
        commands=CommandService(tasks),
        dead_letters=DeadLetterService(uow),
        notify=NotifyService(
            uow,
            email_backend,
            config.email_sender(),
            late_after=config.reminder_late_after(),
            on_commit=kick,
        ),
    )


def event_function(name: str) -> EventFunction:
    """The event function `name` (recurrence, reminders or notify) wired to the runtime."""
    rt = runtime()
    ready = functools.partial(_ping, rt.engine)
    if name == "recurrence":
        handle = {events.TASK_COMPLETED: lambda d: rt.recurrence.on_task_completed(d.data)}
        return EventFunction(name, handle, ready)
    if name == "notify":
        return EventFunction(
            name, {events.REMINDER_DUE: lambda d: rt.notify.on_reminder_due(d.data)}, ready
        )
    if name == "reminders":
        # any delivery is a tick: a PingSource event, a Dapr cron POST, the local ticker
        return EventFunction(
            name,
            {},
            ready,
            default=lambda _d: f"emitted {rt.reminders.tick()}",
            known_types=[PING],
        )
    if name == "commands":
        # every delivery: command events, raw Kafka records, Dapr Kafka binding POSTs
        return EventFunction(name, {}, ready, default=rt.commands.handle, known_types=COMMAND_TYPES)
    if name == "deadletter":
        return EventFunction(
            name,
            {},
            ready,
            default=rt.dead_letters.store,
            known_types=EMITTED_TYPES | COMMAND_TYPES | {PING},
        )
    raise ValueError(f"no event function {name!r}")


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))

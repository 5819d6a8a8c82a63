"""The one place that builds adapters from config and wires them into services and entry points.

A cold start pays only for what its function uses. Importing this module imports no adapter and
no service: the runtime builds each service, importing its modules, when a function first needs
it (notify never loads the tasks API or JWT, tasks never an e-mail backend), and the outbox relay
(requests, the CloudEvents encoder) starts once the first response has gone out.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dueflow import config, logs

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from starlette.applications import Starlette
    from werkzeug.wrappers import Request, Response

    from dueflow.adapters.http.api import TasksApi
    from dueflow.adapters.http.event_function import EventFunction
    from dueflow.adapters.outbox_relay import OutboxRelay
    from dueflow.service.assistant import AssistantService
    from dueflow.service.commands import CommandService
    from dueflow.service.dead_letters import DeadLetterService
    from dueflow.service.notify import NotifyService
    from dueflow.service.recurrence import RecurrenceService
    from dueflow.service.reminders import ReminderService
    from dueflow.service.tasks import TaskService

log = logging.getLogger("dueflow.bootstrap")
PING = "dev.knative.sources.ping"
EVENT_FUNCTIONS = ("recurrence", "notify", "reminders", "commands", "deadletter")
#: Longest wait of the outbox relay for the first response to go out before it starts anyway
#: (a first request that runs long, such as a tick catching up, must not hold back its events).
RELAY_START_DELAY = 1.0


class Runtime:
    """One process's engine, outbox relay and services, each service built on first use."""

    def __init__(self, engine: Engine, sink_url: str | None):
        from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory

        self.engine = engine
        self.uow = UnitOfWorkFactory(engine)
        self._sink_url = sink_url
        self._lock = threading.RLock()  # services
        self._relay_lock = threading.Lock()
        self._built: dict[str, Any] = {}
        self._relay: OutboxRelay | None = None
        self._closed = False
        self._responded = threading.Event()  # the first response has gone out
        self._starter: threading.Thread | None = None
        if sink_url is not None:
            self._starter = threading.Thread(
                target=self._start_relay_soon, name="outbox-relay-start", daemon=True
            )
            self._starter.start()

    # -- the outbox relay -------------------------------------------------------------------------
    @property
    def relay(self) -> OutboxRelay | None:
        """The outbox relay once started; None before, and always without K_SINK."""
        return self._relay

    def kick(self) -> None:
        """After a commit: wake the relay (a relay started later delivers the event anyway)."""
        if (relay := self._relay) is not None:
            relay.kick()

    def after_response(self, response: Response) -> Response:
        """`response`, set to start the relay once it has been sent: the import and start of the
        relay stay off the path of a cold start's first answer (a readiness probe's, or a real
        request's, whose events the relay then delivers at once)."""
        if self._starter is not None and not self._responded.is_set():
            response.call_on_close(self._responded.set)
        return response

    def _start_relay_soon(self) -> None:
        self._responded.wait(RELAY_START_DELAY)
        try:
            self.start_relay()
        except Exception:  # the next start_relay() tries again
            log.exception("the outbox relay did not start")

    def start_relay(self) -> OutboxRelay | None:
        """Start the outbox relay now unless it runs already; None without K_SINK."""
        with self._relay_lock:
            if self._relay is None and self._sink_url is not None and not self._closed:
                from dueflow.adapters.outbox_relay import HttpSink, OutboxRelay

                relay = OutboxRelay(
                    self.engine,
                    HttpSink(self._sink_url, config.sink_timeout()),
                    batch_size=config.outbox_batch_size(),
                    max_backoff=config.outbox_max_backoff(),
                    poll_interval=config.outbox_poll_interval(),
                    concurrency=config.outbox_concurrency(),
                )
                relay.start()
                _stop_relay_at_exit()
                self._relay = relay  # commits from now on wake it (`kick`)
                relay.kick()  # and a pass at once for those before: the first request's events
            return self._relay

    # -- services, each built (and its modules imported) on first use ---------------------------
    @property
    def tasks(self) -> TaskService:
        return self._service("tasks", _tasks_service)

    @property
    def recurrence(self) -> RecurrenceService:
        return self._service("recurrence", _recurrence_service)

    @property
    def reminders(self) -> ReminderService:
        return self._service("reminders", _reminder_service)

    @property
    def notify(self) -> NotifyService:
        return self._service("notify", _notify_service)

    @property
    def commands(self) -> CommandService:
        return self._service("commands", _command_service)

    @property
    def dead_letters(self) -> DeadLetterService:
        return self._service("dead_letters", _dead_letter_service)

    @property
    def assistant(self) -> AssistantService:
        return self._service("assistant", _assistant_service)

    def _service(self, name: str, build: Callable[[Runtime], Any]) -> Any:
        with self._lock:
            if name not in self._built:
                self._built[name] = build(self)
            return self._built[name]

    def event_function(self, name: str) -> EventFunction:
        """The event function `name` (one of EVENT_FUNCTIONS) wired to this runtime."""
        if name not in EVENT_FUNCTIONS:
            raise ValueError(f"no event function {name!r}")
        return self._service(f"function {name}", functools.partial(_event_function, name=name))

    def ready(self) -> None:
        """Raise when the database cannot be reached (the readiness probe)."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        with self._relay_lock:
            self._closed = True  # no relay starts from now on
        self._responded.set()
        if self._starter is not None:
            self._starter.join(timeout=10)
        if self._relay is not None:
            self._relay.stop()
        self.engine.dispose()


_lock = threading.Lock()
_runtime: Runtime | None = None
_api: TasksApi | None = None


@functools.cache  # registered once per process
def _stop_relay_at_exit() -> None:
    """On a clean exit (gunicorn's worker on SIGTERM, when Knative scales the pod down), stop
    the relay: it gives its lease back, so another pod's relay takes over at once, not after
    the lease's 15 s."""

    def stop() -> None:
        runtime = _runtime
        if runtime is not None and (relay := runtime.relay) is not None:
            relay.stop()

    atexit.register(stop)


def check_config(*, needs_auth: bool = True) -> None:
    """Fail at start, not at the first request, when the configuration cannot work."""
    if needs_auth:
        config.auth()
    config.metrics_port()
    logs.configure(config.log_level())


def runtime() -> Runtime:
    """The process-wide runtime with its outbox relay running, built on first use (never at
    import: keeps cold starts short)."""
    rt = _serving_runtime()
    rt.start_relay()
    return rt


def _serving_runtime() -> Runtime:
    """The process-wide runtime, as the entry points use it: its relay starts after the first
    response (`Runtime.after_response`)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = _build_runtime()
        return _runtime


def tasks_api() -> TasksApi:
    global _api
    rt = _serving_runtime()
    with _lock:
        if _api is None:
            from dueflow.adapters.auth import AuthSettings
            from dueflow.adapters.http.api import TasksApi

            auth = config.auth()
            _api = TasksApi(
                rt.tasks,
                AuthSettings(auth.jwt_secret, auth.jwks_url, auth.audience, auth.issuer),
                config.cors_origins(),
                ready=rt.ready,
            )
        return _api


def assistant_app(threads: int = 5) -> Starlette:
    """The assistant function's ASGI app (the MCP server), wired from config; the runtime and
    its outbox relay start with the first tool call; `threads` tool calls at once."""
    from dueflow.adapters.auth import AuthSettings
    from dueflow.adapters.mcp.server import create_app

    auth = config.auth()
    return create_app(
        lambda: runtime().assistant,
        AuthSettings(auth.jwt_secret, auth.jwks_url, auth.audience, auth.issuer),
        issuer_url=config.mcp_issuer_url(),
        resource_url=config.mcp_resource_url(),
        allowed_hosts=config.mcp_allowed_hosts(),
        allowed_origins=config.mcp_allowed_origins(),
        ready=lambda: _serving_runtime().ready(),
        threads=threads,
    )


def event_function(name: str) -> EventFunction:
    """The event function `name` (recurrence, reminders, notify, commands or deadletter)."""
    return _serving_runtime().event_function(name)


def handle_api(request: Request) -> Response:
    """The tasks function's entry point: answer `request` with the tasks API."""
    api = tasks_api()
    return _serving_runtime().after_response(api.handle(request))


def handle_event(name: str, request: Request) -> Response:
    """An event function's entry point: answer `request` with the event function `name`."""
    rt = _serving_runtime()
    return rt.after_response(rt.event_function(name).handle(request))


def reset() -> None:
    """Drop the runtime (tests, and the local runner between configurations)."""
    global _runtime, _api
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime, _api = None, None


def _build_runtime() -> Runtime:
    from dueflow import metrics, observability
    from dueflow.adapters.db.engine import make_engine, migrate

    logs.configure(config.log_level())
    # Here, not at import: functions-framework imports the function in gunicorn's master, and the
    # metrics server's thread would not survive the fork into the worker that serves.
    metrics.serve(config.metrics_port())
    observability.configure_tracing()
    engine = make_engine(config.database_url())
    if config.auto_migrate():
        migrate(engine)
    if (sink := config.sink_url()) is None:
        log.warning("K_SINK is not set: events stay in the outbox until a sink is configured")
    return Runtime(engine, sink)


def _tasks_service(rt: Runtime) -> TaskService:
    from dueflow.service.tasks import TaskService

    return TaskService(rt.uow, on_commit=rt.kick)


def _assistant_service(rt: Runtime) -> AssistantService:
    from dueflow.service.assistant import AssistantService

    return AssistantService(rt.tasks)


def _recurrence_service(rt: Runtime) -> RecurrenceService:
    from dueflow.service.recurrence import RecurrenceService

    return RecurrenceService(rt.uow, on_commit=rt.kick)


def _reminder_service(rt: Runtime) -> ReminderService:
    from dueflow.service.reminders import ReminderService

    return ReminderService(
        rt.uow,
        batch_size=config.reminder_batch_size(),
        event_batch=config.reminder_event_batch(),
        late_after=config.reminder_late_after(),
        on_commit=rt.kick,
    )


def _notify_service(rt: Runtime) -> NotifyService:
    from dueflow.adapters.email import backend_from_config
    from dueflow.service.notify import NotifyService

    return NotifyService(
        rt.uow,
        functools.cache(backend_from_config),  # built on first send
        config.email_sender(),
        late_after=config.reminder_late_after(),
        on_commit=rt.kick,
    )


def _command_service(rt: Runtime) -> CommandService:
    from dueflow.service.commands import CommandService

    return CommandService(rt.tasks)


def _dead_letter_service(rt: Runtime) -> DeadLetterService:
    from dueflow.service.dead_letters import DeadLetterService

    return DeadLetterService(rt.uow)


def _event_function(rt: Runtime, name: str) -> EventFunction:
    """Built with its service on the first request (a readiness probe's, on Knative)."""
    from dueflow.adapters.http.event_function import EventFunction
    from dueflow.domain import events

    if name == "recurrence":
        recurrence = rt.recurrence
        handle = {events.TASK_COMPLETED: lambda d: recurrence.on_task_completed(d.data)}
        return EventFunction(name, handle, rt.ready)
    if name == "notify":
        from dueflow.adapters.email import TransientEmailError

        notify = rt.notify
        handle = {
            events.REMINDERS_DUE: lambda d: notify.on_reminders_due(d.data),
            events.REMINDER_DUE: lambda d: notify.on_reminder_due(d.data),
        }
        return EventFunction(name, handle, rt.ready, transient=[TransientEmailError])
    if name == "reminders":
        reminders = rt.reminders
        # any delivery is a tick: a PingSource event, a Dapr cron POST, the local ticker
        return EventFunction(
            name,
            {},
            rt.ready,
            default=lambda _d: f"emitted {reminders.tick()}",
            known_types=[PING],
        )
    if name == "commands":
        # every delivery: command events, raw Kafka records, Dapr Kafka binding POSTs
        return EventFunction(
            name, {}, rt.ready, default=rt.commands.handle, known_types=_command_types()
        )
    if name == "deadletter":
        emitted = {
            events.TASK_CREATED,
            events.TASK_UPDATED,
            events.TASK_COMPLETED,
            events.TASK_REOPENED,
            events.TASK_DELETED,
            events.REMINDER_DUE,
            events.REMINDERS_DUE,
            events.NOTIFICATION_SENT,
            events.NOTIFICATION_FAILED,
            events.NOTIFICATIONS_RECORDED,
        }
        return EventFunction(
            name,
            {},
            rt.ready,
            default=rt.dead_letters.store,
            known_types=emitted | _command_types() | {PING},
        )
    raise ValueError(f"no event function {name!r}")


def _command_types() -> frozenset[str]:
    """The event types of task commands (counted under their own name, see EventFunction)."""
    from dueflow.service.commands import KINDS, PREFIX, RAW_RECORD

    return frozenset([*(PREFIX + kind for kind in KINDS), RAW_RECORD])

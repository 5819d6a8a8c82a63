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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dueflow import config, logs

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from starlette.applications import Starlette
    from werkzeug.wrappers import Request, Response

    from dueflow.adapters.http.api import TasksApi
    from dueflow.adapters.http.event_function import EventFunction, Routes
    from dueflow.adapters.outbox_relay import OutboxRelay
    from dueflow.service.assistant import AssistantService
    from dueflow.service.commands import CommandService
    from dueflow.service.dead_letters import DeadLetterService
    from dueflow.service.live import LiveService
    from dueflow.service.notify import NotifyService
    from dueflow.service.ports import Clock, EmailBackend, ServiceMetrics
    from dueflow.service.recurrence import RecurrenceService
    from dueflow.service.reminders import ReminderService
    from dueflow.service.tasks import TaskService

log = logging.getLogger("dueflow.bootstrap")
#: Longest wait of the outbox relay for the first response to go out before it starts anyway
#: (a first request that runs long, such as a tick catching up, must not hold back its events).
RELAY_START_DELAY = 1.0


@dataclass(frozen=True)
class Overrides:
    """What a test (or a tool) plugs in instead of what the configuration describes: the rest of
    the runtime is still built from the environment."""

    clock: Clock | None = None  # every service's "now"
    email_backend: EmailBackend | None = None  # notify's backend instead of DUEFLOW_EMAIL_BACKEND's
    engine: Engine | None = None  # instead of DATABASE_URL's (the caller disposes of it)
    sink: Callable[[dict], None] | None = None  # the relay's event sink instead of POSTs to K_SINK
    # the job relay's sink instead of the Dapr sidecar's Jobs API (DUEFLOW_REMINDER_JOBS=dapr)
    job_sink: Callable[[dict], None] | None = None


class Runtime:
    """One process's engine, outbox relay and services, each service built on first use."""

    def __init__(
        self,
        engine: Engine,
        sink_url: str | None,
        overrides: Overrides = Overrides(),  # noqa: B008 - frozen, so a shared default is safe
    ):
        from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
        from dueflow.relay_lifecycle import RelayLifecycle
        from dueflow.service.tasks import utcnow

        self.engine = engine
        self.clock: Clock = overrides.clock or utcnow
        self.uow = UnitOfWorkFactory(engine, reminder_jobs=_job_relay_watch(), clock=self.clock)
        self._job_relay: RelayLifecycle | None = None  # the reminders function's, with jobs on
        self._overrides = overrides
        self._lock = threading.RLock()  # services
        self._built: dict[str, Any] = {}
        make_sink: Callable[[], Callable[[dict], None]] | None = None
        if (given := overrides.sink) is not None:

            def make_sink() -> Callable[[dict], None]:
                return given

        elif sink_url is not None:
            make_sink = functools.partial(_http_sink, sink_url)
        self._relay = RelayLifecycle(
            engine, make_sink, start_delay=RELAY_START_DELAY, on_start=_relay_started
        )

    def email_backend(self) -> EmailBackend:
        """notify's e-mail backend, built (and its module imported) on the first send."""
        if self._overrides.email_backend is not None:
            return self._overrides.email_backend
        return self._service("email backend", lambda _rt: email_backend())

    # -- the outbox relay (see dueflow.relay_lifecycle) -------------------------------------------
    @property
    def relay(self) -> OutboxRelay | None:
        """The outbox relay once started; None before, and always without K_SINK."""
        return self._relay.relay

    def kick(self) -> None:
        """After a commit: wake the relay."""
        self._relay.kick()

    def after_response(self, response: Response) -> Response:
        """`response`, set to start the relay once it has been sent."""
        return self._relay.after_response(response)

    def start_relay(self) -> OutboxRelay | None:
        """Start the outbox relay now unless it runs already; None without K_SINK."""
        return self._relay.start()

    @property
    def job_relay(self) -> OutboxRelay | None:
        """The reminder job relay once started (the reminders function, jobs on)."""
        return self._job_relay.relay if self._job_relay is not None else None

    def start_job_relay(self) -> OutboxRelay | None:
        """The reminders function with DUEFLOW_REMINDER_JOBS=dapr: start the relay that delivers
        the outbox's reminder job commands to the Dapr sidecar's Jobs API (a lease of its own:
        one such relay at a time, and only in the function the jobs call back). None when
        reminder jobs are off."""
        if not config.reminder_jobs():
            return None
        with self._lock:
            if self._job_relay is None:
                from dueflow.adapters.outbox_relay import JOBS
                from dueflow.adapters.relay_lease import JOBS_LEASE
                from dueflow.relay_lifecycle import RelayLifecycle

                self._job_relay = RelayLifecycle(
                    self.engine,
                    self._make_job_sink,
                    start_delay=0,
                    relay_options={"kinds": JOBS, "lease_name": JOBS_LEASE},
                )
        return self._job_relay.start()

    def _make_job_sink(self) -> Callable[[dict], None]:
        if (given := self._overrides.job_sink) is not None:
            return given
        from dueflow.adapters.dapr_sidecar import DaprJobs

        return DaprJobs(_sidecar())

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
    def live(self) -> LiveService:
        return self._service("live", _live_service)

    @property
    def assistant(self) -> AssistantService:
        return self._service("assistant", _assistant_service)

    def _service(self, name: str, build: Callable[[Runtime], Any]) -> Any:
        with self._lock:
            if name not in self._built:
                self._built[name] = build(self)
            return self._built[name]

    def event_function(self, name: str, routes: Callable[[Runtime], Routes]) -> EventFunction:
        """The event function `name` with the routing table `routes` builds from this runtime
        (the table is in the function's main.py), built with its services on first use."""

        def build(rt: Runtime) -> EventFunction:
            from dueflow.adapters.http.event_function import EventFunction

            return EventFunction(name, routes(rt), rt.ready)

        return self._service(f"function {name}", build)

    def ready(self) -> None:
        """Raise when the database cannot be reached (the readiness probe)."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        self._relay.close()
        if self._job_relay is not None:
            self._job_relay.close()
        if self._overrides.engine is None:  # an engine handed in belongs to its owner
            self.engine.dispose()


_lock = threading.Lock()
_runtime: Runtime | None = None
_api: TasksApi | None = None
_overrides = Overrides()


def _relay_started() -> None:
    """The first request is served (or took long) and the relay runs: the process has loaded
    what it serves with."""
    _stop_relay_at_exit()
    settle_heap()


@functools.cache  # registered once per process
def _stop_relay_at_exit() -> None:
    """On a clean exit (gunicorn's worker on SIGTERM, when Knative scales the pod down), stop
    the relay: it gives its lease back, so another pod's relay takes over at once, not after
    the lease's 15 s."""

    def stop() -> None:
        runtime = _runtime
        if runtime is not None and (relay := runtime.relay) is not None:
            relay.stop()
        if runtime is not None and (jobs := runtime.job_relay) is not None:
            jobs.stop()

    atexit.register(stop)


@functools.cache  # once per process
def settle_heap() -> None:
    """Move every object alive now (modules, tables, compiled statements: what the process
    keeps for its life) out of the cyclic collector's reach (`gc.freeze`). A full collection
    then walks only what requests created since, not the whole process: under load those full
    collections paused a `tasks` process for 130-430 ms (bench/gcprobe, docs/performance.md)."""
    import gc

    gc.collect()
    gc.freeze()


@functools.cache  # once per process
def freeze_heap_at_fork() -> None:
    """Freeze the heap (`gc.freeze`) right before this process forks: functions-framework loads
    the function in gunicorn's master, which then forks the worker that serves. Frozen, the
    objects the worker inherits are never walked by its collector, so the pages holding them
    stay shared with the master instead of being copied into the worker (Python's recipe for
    pre-fork servers; gunicorn's own hooks are out of reach, as functions-framework builds its
    configuration)."""
    import gc
    import os

    os.register_at_fork(before=gc.freeze)


def check_config(function: str) -> None:
    """Fail at start, not at the first request or the first e-mail, when the configuration of
    `function` (tasks, recurrence, reminders, notify, commands, deadletter) cannot work: every
    setting it will read is read, and parsed, now."""
    if function not in _FUNCTION_SETTINGS:
        raise ValueError(f"no function {function!r}")
    freeze_heap_at_fork()  # this runs in gunicorn's master, before it forks the worker
    logs.configure(config.log_level())
    config.database_url()
    config.auto_migrate()
    config.metrics_port()
    # every function relays the outbox (K_SINK)
    config.sink_timeout()
    config.outbox_batch_size()
    config.outbox_max_backoff()
    config.outbox_poll_interval()
    config.outbox_concurrency()
    # any function may read its secrets from the Dapr secret store
    config.dapr_secret_store()
    for setting in _FUNCTION_SETTINGS[function]:
        setting()


#: what each function reads besides the database, the metrics port and the relay's settings
_FUNCTION_SETTINGS: dict[str, tuple[Callable[[], object], ...]] = {
    # bearer JWTs; browsers' origins; the origin calendar feed URLs name
    "tasks": (config.auth, config.cors_origins, config.public_url),
    "recurrence": (),
    "reminders": (
        config.reminder_batch_size,
        config.reminder_event_batch,
        config.reminder_late_after,
        config.reminder_reemit_after,
        config.reminder_jobs,
        config.dapr_grpc_port,  # the job relay's sidecar (DUEFLOW_REMINDER_JOBS=dapr)
        config.dapr_timeout,
    ),
    "notify": (config.email, config.email_sender, config.reminder_late_after),
    "commands": (),  # producers are trusted by Kafka topic ACLs: no auth
    "deadletter": (),
    # bearer JWTs; the change log's retention, heartbeats, stream length, poll interval
    "live": (
        config.auth,
        config.live_retention,
        config.live_heartbeat,
        config.live_max_stream,
        config.live_poll,
    ),
    # bearer JWTs, and the MCP endpoint's issuer, URL and host/origin allowlists
    "assistant": (
        config.auth,
        config.mcp_issuer_url,
        config.mcp_resource_url,
        config.mcp_allowed_hosts,
        config.mcp_allowed_origins,
    ),
    # static files and the OIDC client settings it serves
    "web": (config.oidc, config.environment),
}


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
    if (built := _runtime) is not None:  # every request after the first: no lock to take
        return built
    with _lock:
        if _runtime is None:
            _runtime = build_runtime(_overrides)
        return _runtime


def tasks_api() -> TasksApi:
    global _api
    if (built := _api) is not None:  # every request after the first: no lock to take
        return built
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
                public_url=config.public_url(),
            )
        return _api


def assistant_app(threads: int = 5) -> Starlette:
    """The assistant function's ASGI app (the MCP server), wired from config; the runtime and
    its outbox relay start with the first tool call; `threads` tool calls at once."""
    from dueflow import observability
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
        tracing=observability.configure_tracing(),
    )


def live_app(threads: int = 2) -> Starlette:
    """The live function's ASGI app, wired from config: at start it builds the runtime (without
    the outbox relay: live writes no events) and its tail of the change log."""
    from dueflow.adapters.http.live import create_app
    from dueflow.adapters.live_tail import Tail

    def make_tail(service, hub, loop) -> Tail:
        engine = _serving_runtime().engine
        return Tail(service, engine, hub, loop, poll_interval=config.live_poll())

    return create_app(
        lambda: _serving_runtime().live,
        make_tail,
        _auth_settings(),
        ready=lambda: _serving_runtime().ready(),
        heartbeat=config.live_heartbeat(),
        max_stream=config.live_max_stream(),
        threads=threads,
    )


def _auth_settings():
    """The bearer-token settings of the public functions (tasks, assistant, live)."""
    from dueflow.adapters.auth import AuthSettings

    auth = config.auth()
    return AuthSettings(auth.jwt_secret, auth.jwks_url, auth.audience, auth.issuer)


def handle_api(request: Request) -> Response:
    """The tasks function's entry point: answer `request` with the tasks API."""
    api = tasks_api()
    return _serving_runtime().after_response(api.handle(request))


def serve_api_directly(app: Any, traced: bool) -> None:
    """Let the tasks function's Flask `app` answer the API from WSGI, without Flask's dispatch
    (`adapters.http.wsgi`), unless its requests are `traced` through Flask's instrumentation."""
    from dueflow.adapters.http.wsgi import ApiWsgi, serves_directly

    if serves_directly(traced):
        app.wsgi_app = ApiWsgi(handle_api)


def handle_event(name: str, routes: Callable[[Runtime], Routes], request: Request) -> Response:
    """An event function's entry point: answer `request` with the event function `name`, whose
    routing table `routes` builds (see functions/<name>/main.py)."""
    rt = _serving_runtime()
    return rt.after_response(rt.event_function(name, routes).handle(request))


def configure(**overrides: Any) -> None:
    """Build the process-wide runtime with these `Overrides` from now on (the current one is
    dropped): how tests pass a frozen clock, a fake e-mail backend or a recording sink to the
    functions that functions-framework serves."""
    global _overrides
    replaced = Overrides(**overrides)
    reset()
    with _lock:
        _overrides = replaced


def reset() -> None:
    """Drop the runtime and any overrides (tests, and the local runner between configurations)."""
    global _runtime, _api, _overrides
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime, _api, _overrides = None, None, Overrides()


def build_runtime(overrides: Overrides = Overrides()) -> Runtime:  # noqa: B008 - frozen
    """A runtime built from the environment, with `overrides` plugged in instead."""
    from dueflow import metrics, observability

    logs.configure(config.log_level())
    # Here, not at import: functions-framework imports the function in gunicorn's master, and the
    # metrics server's thread would not survive the fork into the worker that serves.
    metrics.serve(config.metrics_port())
    observability.configure_tracing()
    load_dapr_secrets()
    engine = overrides.engine
    if engine is None:
        from dueflow.adapters.db.engine import make_engine, migrate

        engine = make_engine(config.database_url())
        if config.auto_migrate():
            migrate(engine)
    sink = config.sink_url()
    if sink is None and overrides.sink is None:
        log.warning("K_SINK is not set: events stay in the outbox until a sink is configured")
    return Runtime(engine, sink, overrides)


def _job_relay_watch() -> Callable[[Any], bool]:
    """Whether task writes schedule reminder jobs: while the job relay's lease is held."""
    from dueflow.adapters.db.reminder_job_store import JobRelayWatch
    from dueflow.adapters.relay_lease import JOBS_LEASE

    return JobRelayWatch(JOBS_LEASE)


def _sidecar() -> Any:
    """A Dapr SDK client for the sidecar (built, and the SDK imported, on first use)."""
    from dueflow.adapters.dapr_sidecar import SidecarClient

    return SidecarClient(config.dapr_grpc_port(), config.dapr_timeout())


def load_dapr_secrets() -> None:
    """With DUEFLOW_DAPR_SECRET_STORE: read DUEFLOW_DAPR_SECRET from that Dapr secret store
    once, at start, and set each of its keys as the setting of that name (database-url ->
    DATABASE_URL) that the environment does not set already. Without it: nothing (and no SDK)."""
    import os

    store = config.dapr_secret_store()
    if store is None:
        return
    from dueflow.adapters.dapr_sidecar import read_secrets

    sidecar = _sidecar()
    try:
        secrets = read_secrets(sidecar, store, config.dapr_secret_name())
    finally:
        sidecar.close()
    for key, value in secrets.items():
        os.environ.setdefault(key.upper().replace("-", "_"), value)
    log.info("settings from the Dapr secret store", extra={"store": store, "keys": len(secrets)})


def email_backend() -> EmailBackend:
    """The e-mail backend DUEFLOW_EMAIL_BACKEND names, built from the environment."""
    from dueflow.adapters.email import build_backend

    return build_backend(config.email())


def _tasks_service(rt: Runtime) -> TaskService:
    from dueflow.service.tasks import TaskService

    return TaskService(rt.uow, clock=rt.clock, on_commit=rt.kick)


def _assistant_service(rt: Runtime) -> AssistantService:
    from dueflow.service.assistant import AssistantService

    return AssistantService(rt.tasks)


def _live_service(rt: Runtime) -> LiveService:
    from datetime import timedelta

    from dueflow.service.live import LiveService

    return LiveService(rt.uow, timedelta(seconds=config.live_retention()), clock=rt.clock)


def _recurrence_service(rt: Runtime) -> RecurrenceService:
    from dueflow.service.recurrence import RecurrenceService

    return RecurrenceService(rt.uow, clock=rt.clock, on_commit=rt.kick)


def _reminder_service(rt: Runtime) -> ReminderService:
    from dueflow.service.reminders import ReminderService

    return ReminderService(
        rt.uow,
        batch_size=config.reminder_batch_size(),
        event_batch=config.reminder_event_batch(),
        late_after=config.reminder_late_after(),
        reemit_after=config.reminder_reemit_after(),
        clock=rt.clock,
        on_commit=rt.kick,
        metrics=_service_metrics(),
    )


def _notify_service(rt: Runtime) -> NotifyService:
    # the e-mail package (its backend table, the MIME builder) comes with the service; the
    # chosen backend's own module, and its SDK, on the first send (`Runtime.email_backend`)
    import dueflow.adapters.email  # noqa: F401
    from dueflow.service.notify import NotifyService

    return NotifyService(
        rt.uow,
        rt.email_backend,
        config.email_sender(),
        late_after=config.reminder_late_after(),
        clock=rt.clock,
        on_commit=rt.kick,
        metrics=_service_metrics(),
    )


def _command_service(rt: Runtime) -> CommandService:
    from dueflow.service.commands import CommandService

    return CommandService(rt.tasks)


def _dead_letter_service(rt: Runtime) -> DeadLetterService:
    from dueflow.service.dead_letters import DeadLetterService

    return DeadLetterService(rt.uow, clock=rt.clock, metrics=_service_metrics())


def _service_metrics() -> ServiceMetrics:
    from dueflow.metrics import PrometheusServiceMetrics

    return PrometheusServiceMetrics()


def _http_sink(url: str) -> Callable[[dict], None]:
    from dueflow.adapters.http_sink import HttpSink

    return HttpSink(url, config.sink_timeout())

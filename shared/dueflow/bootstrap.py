"""The one place that builds adapters from config and wires them into services and entry points."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dueflow import config, logs
from dueflow.adapters.auth import AuthSettings
from dueflow.adapters.db.engine import make_engine, migrate
from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
from dueflow.adapters.http.api import TasksApi
from dueflow.adapters.outbox_relay import HttpSink, OutboxRelay
from dueflow.service.tasks import TaskService

log = logging.getLogger("dueflow.bootstrap")


@dataclass
class Runtime:
    engine: Engine
    relay: OutboxRelay | None
    tasks: TaskService

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        self.engine.dispose()


_lock = threading.Lock()
_runtime: Runtime | None = None
_api: TasksApi | None = None


def check_config() -> None:
    """Fail at start, not at the first request, when the configuration cannot work."""
    config.auth()
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
    tasks = TaskService(UnitOfWorkFactory(engine), on_commit=relay.kick if relay else lambda: None)
    return Runtime(engine, relay, tasks)


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))

"""The composition root's overrides: a runtime built from the environment with a clock, an e-mail
backend, an engine and an event sink handed in reaches every service with them, and leaves the
engine it was given to its owner."""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from dueflow import bootstrap
from dueflow.adapters.db.engine import make_engine, migrate
from dueflow.domain import events

T0 = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


class Mailer:
    name = "recording"

    def send(self, email) -> None:  # never called here: the backend is only handed through
        raise AssertionError("no e-mail expected")


def test_overrides_reach_the_services_and_the_relay(tmp_path, monkeypatch):
    monkeypatch.setenv("DUEFLOW_METRICS_PORT", "0")
    monkeypatch.delenv("K_SINK", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'dueflow.db'}")
    migrate(engine)
    received: list[dict] = []
    mailer = Mailer()
    overrides = bootstrap.Overrides(
        clock=lambda: T0, email_backend=mailer, engine=engine, sink=received.append
    )
    rt = bootstrap.build_runtime(overrides)
    try:
        task = rt.tasks.create("alice", {"title": "Call Bob"})
        assert (task.created_at, rt.reminders.clock(), rt.notify.clock()) == (T0, T0, T0)
        assert rt.notify.backend() is mailer
        assert rt.start_relay() is not None  # a sink handed in relays without K_SINK
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(e["type"], e["data"]["task"]["id"]) for e in received] == [
            (events.TASK_CREATED, task.id)
        ]
    finally:
        rt.close()
    with engine.connect() as conn:  # not disposed of by the runtime: it belongs to the test
        assert conn.execute(sa.text("SELECT count(*) FROM tasks")).scalar() == 1
    engine.dispose()


def test_configure_builds_the_process_runtime_with_overrides(function_env):
    frozen = lambda: T0  # noqa: E731
    bootstrap.configure(clock=frozen)
    assert bootstrap.runtime().tasks.clock is frozen
    bootstrap.reset()  # drops the overrides with the runtime
    assert bootstrap.runtime().tasks.clock is not frozen


def test_the_heap_is_frozen_once_the_relay_has_started(tmp_path, monkeypatch):
    """What the process keeps for its life (modules, tables, compiled statements) is out of the
    cyclic collector's reach once the first request is served and the relay started, so full
    collections under load walk only what requests made since (docs/performance.md)."""
    monkeypatch.setenv("DUEFLOW_METRICS_PORT", "0")
    engine = make_engine(f"sqlite:///{tmp_path / 'dueflow.db'}")
    migrate(engine)
    gc.unfreeze()
    bootstrap.settle_heap.cache_clear()  # once per process: as in a process of its own
    rt = bootstrap.build_runtime(bootstrap.Overrides(engine=engine, sink=lambda _event: None))
    try:
        rt.tasks.create("alice", {"title": "Call Bob"})
        assert gc.get_freeze_count() == 0  # nothing frozen while the process starts
        assert rt.start_relay() is not None
        assert gc.get_freeze_count() > 10_000  # the modules and tables, at least
    finally:
        rt.close()
        gc.unfreeze()  # the rest of the test session collects as before
        engine.dispose()

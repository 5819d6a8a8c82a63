"""DUEFLOW_METRICS_PORT and the per-process metrics endpoint: on by default, off with 0, started
once, and a taken port (a second gunicorn worker) is logged instead of failing the process.

`metrics._served_on` is the once-per-process state; each test starts from "not serving" and
monkeypatch puts the state back, so the endpoint the integration tests start is unaffected."""

from __future__ import annotations

import logging
import socket

import pytest
import requests

from dueflow import config, metrics
from dueflow.config import ConfigError


@pytest.fixture(autouse=True)
def _not_serving(monkeypatch):
    monkeypatch.setattr(metrics, "_served_on", None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_port_defaults_to_9464_and_0_turns_it_off(monkeypatch):
    monkeypatch.delenv("DUEFLOW_METRICS_PORT", raising=False)
    assert config.metrics_port() == 9464
    monkeypatch.setenv("DUEFLOW_METRICS_PORT", "0")
    assert config.metrics_port() == 0
    assert metrics.serve(0) is None
    for bad in ("http", "-1", "70000"):
        monkeypatch.setenv("DUEFLOW_METRICS_PORT", bad)
        with pytest.raises(ConfigError):
            config.metrics_port()


def test_the_endpoint_starts_once_and_serves_prometheus_text():
    port = free_port()
    assert metrics.serve(port) == port
    assert metrics.serve(free_port()) == port  # once per process: later calls change nothing
    metrics.EMAILS.labels("eml", "sent").inc(0)
    answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert 'dueflow_emails_total{backend="eml",outcome="sent"}' in answer.text


def test_a_taken_port_is_logged_and_the_process_goes_on(caplog):
    logger = logging.getLogger("dueflow.metrics")
    logger.addHandler(caplog.handler)  # logs.configure stops dueflow's propagating to the root
    try:
        with socket.socket() as taken:
            taken.bind(("0.0.0.0", 0))
            taken.listen()
            port = taken.getsockname()[1]
            assert metrics.serve(port) is None
    finally:
        logger.removeHandler(caplog.handler)
    # once, or twice when the root logger also propagates it to caplog
    records = {(r.levelname, r.port) for r in caplog.records if r.name == "dueflow.metrics"}
    assert records == {("WARNING", port)}

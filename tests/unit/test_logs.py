"""dueflow.logs: JSON lines by default (containers), one readable line per record with
DUEFLOW_LOG_FORMAT=text (`make run`), where idle reminder ticks and answered probes stay silent."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

import hypothesis
import pytest
from hypothesis import strategies as st

from dueflow import config, logs


@pytest.fixture
def dueflow_logger():
    """The `dueflow` logger without handlers for the test; its own restored afterwards."""
    logger = logging.getLogger("dueflow")
    saved, propagate, level = logger.handlers[:], logger.propagate, logger.level
    logger.handlers.clear()
    yield logger
    logger.handlers[:] = saved
    logger.propagate, logger.level = propagate, level


def _event(logger: logging.Logger, outcome: str, status: int = 200) -> None:
    logger.getChild("edge").info(
        "event",
        extra={
            "function": "reminders",
            "ce_type": "dev.knative.sources.ping",
            "status": status,
            "outcome": outcome,
        },
    )


def test_json_is_the_default(dueflow_logger, capsys):
    os.environ.pop("DUEFLOW_LOG_FORMAT", None)
    logs.configure("INFO")
    dueflow_logger.getChild("api").info("request", extra={"path": "/tasks", "status": 201})
    _event(dueflow_logger, "emitted 0")
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["message"] for e in entries] == ["request", "event"], "JSON keeps every record"
    assert entries[0]["severity"] == "INFO" and entries[0]["path"] == "/tasks"


def test_text_is_one_line_with_function_level_and_message(dueflow_logger, capsys):
    os.environ.update({"DUEFLOW_LOG_FORMAT": "text", "K_SERVICE": "tasks"})
    logs.configure("INFO")
    dueflow_logger.getChild("api").warning("request", extra={"path": "/tasks", "status": 201})
    (line,) = capsys.readouterr().err.splitlines()
    _time, function, level, message, *fields = line.split()
    assert (function, level, message) == ("tasks", "WARNING", "request")
    assert fields == ["path=/tasks", "status=201"]


def test_text_names_the_records_function_and_keeps_tracebacks(dueflow_logger, capsys):
    os.environ.update({"DUEFLOW_LOG_FORMAT": "text", "K_SERVICE": "notify"})
    logs.configure("INFO")
    try:
        raise RuntimeError("mail server gone")
    except RuntimeError:
        dueflow_logger.exception("send failed", extra={"function": "notify-batch"})
    first, *rest = capsys.readouterr().err.splitlines()
    assert first.split()[1:4] == ["notify-batch", "ERROR", "send"]
    assert rest[0].startswith("Traceback") and "RuntimeError: mail server gone" in rest[-1]


def test_text_leaves_out_idle_ticks_and_answered_probes_only(dueflow_logger, capsys):
    os.environ["DUEFLOW_LOG_FORMAT"] = "text"
    logs.configure("INFO")
    _event(dueflow_logger, "emitted 0")
    _event(dueflow_logger, "emitted 3")
    _event(dueflow_logger, "transient failure", status=503)
    api = dueflow_logger.getChild("api")
    api.info("request", extra={"path": "/readyz", "status": 200})
    api.info("request", extra={"path": "/readyz", "status": 503})
    api.info("request", extra={"path": "/tasks", "status": 200})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    assert "outcome=emitted 3" in lines[0] and "status=503" in lines[1]
    assert "path=/readyz status=503" in lines[2] and "path=/tasks" in lines[3]


def test_an_unknown_format_is_refused():
    os.environ["DUEFLOW_LOG_FORMAT"] = "xml"
    with pytest.raises(config.ConfigError, match="DUEFLOW_LOG_FORMAT"):
        config.log_format()


@hypothesis.given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_a_lines_time_is_isoformat_to_the_millisecond(created):
    """The time prefix is formatted once per second; the line's time stays what
    `datetime.isoformat` writes, rounding included."""
    expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    assert logs._timestamp(created) == expected
    assert logs._timestamp(created) == expected  # the second time from the cached second


def test_a_json_line_leaves_out_where_it_was_logged_and_keeps_its_fields(dueflow_logger, capsys):
    logs.configure(fmt="json")
    dueflow_logger.getChild("http").info("request", extra={"status": 200, "path": "/tasks"})
    line = json.loads(capsys.readouterr().err)
    assert line["status"] == 200 and line["path"] == "/tasks" and line["logger"] == "dueflow.http"
    assert not {"lineno", "pathname", "threadName"} & set(line)

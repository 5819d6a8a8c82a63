"""Structured JSON logs, one object per line, carrying the current request id and, inside a
trace, its trace and span ids (so a log line leads to its trace and back). For people (`make run`,
DUEFLOW_LOG_FORMAT=text) the same records as one readable line each, without the routine ones: a
reminder tick that found nothing due, a probe that answered."""

from __future__ import annotations

import contextvars
import json
import logging
import math
import re
import sys
from datetime import UTC, datetime

from dueflow import config, observability

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# One encoder for every line (`json.dumps(default=...)` builds a new one per call).
_ENCODER = json.JSONEncoder(default=str)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _timestamp(record.created),
            "severity": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (rid := request_id.get()) is not None:
            entry["request_id"] = rid
        if (ids := observability.current_ids()) is not None:
            entry["trace_id"], entry["span_id"] = ids
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """`created` as ISO 8601 UTC with milliseconds (`2026-12-03T04:00:00.123+00:00`); the part
    up to the second is formatted once per second (a request's log line wrote it each time)."""
    global _second
    whole = math.floor(created)
    micros = round((created - whole) * 1e6)  # rounded as datetime.fromtimestamp rounds
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    second, prefix = _second
    if whole != second:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, prefix)
    return f"{prefix}.{micros // 1000:03d}+00:00"


_PING = "dev.knative.sources.ping"
_NONZERO = re.compile(r"[1-9]")
_PROBES = ("/healthz", "/readyz")


class TextFormatter(logging.Formatter):
    """`12:00:01 tasks INFO request method=GET path=/tasks status=200 duration_ms=3.1`: time,
    function, level, message and the record's fields, one line (a traceback follows it)."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        function = getattr(record, "function", None) or config.service_name()
        fields = " ".join(
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD and key != "function"
        )
        line = f"{time} {function:<10} {record.levelname:<7} {record.getMessage()}"
        line = f"{line} {fields}" if fields else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def routine(record: logging.LogRecord) -> bool:
    """A record people need not read: a reminder tick handled without finding anything due (its
    outcome counts no reminder), or a health or readiness probe answered."""
    if not 200 <= getattr(record, "status", 0) < 300:
        return False
    if getattr(record, "ce_type", None) == _PING:
        return not _NONZERO.search(str(getattr(record, "outcome", "")))
    return getattr(record, "path", None) in _PROBES


def configure(level: str = "INFO", fmt: str | None = None) -> None:
    """Send dueflow's logs to stderr, as JSON or as text (`fmt`, default DUEFLOW_LOG_FORMAT);
    idempotent; leaves other handlers alone."""
    # What no dueflow line shows and every record would look up (the logging HOWTO's
    # "Optimization": the caller's file and line, the thread's and the multiprocessing process's
    # names): about 5 µs of a request's log line. `process` stays: gunicorn's lines show it.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logger = logging.getLogger("dueflow")
    logger.setLevel(level)
    formatter = TextFormatter() if (fmt or config.log_format()) == "text" else JsonFormatter()
    if not any(isinstance(h.formatter, JsonFormatter | TextFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        if isinstance(formatter, TextFormatter):
            handler.addFilter(lambda record: not routine(record))
        logger.addHandler(handler)
        logger.propagate = False

"""The outbox carries trace context: an event written inside a span is stored with that span as its
`traceparent` extension, and the relay sends it as `ce-traceparent` (binary mode), unchanged.

The span here comes from a local SDK tracer provider (no global one is set), and the sink is a fake
HTTP session that records what the relay posts, so no network is involved.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider

from dueflow.adapters.db.engine import make_engine, migrate
from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
from dueflow.adapters.outbox_relay import HttpSink, OutboxRelay
from dueflow.service.tasks import TaskService
from tests.support.event_schemas import validate_event

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Answer:
    status_code, text = 202, ""


class RecordingSession:
    def __init__(self) -> None:
        self.posts: list[dict] = []

    def post(self, url, headers, data, timeout):
        self.posts.append({"url": url, "headers": dict(headers), "body": data})
        return Answer()


def recording_sink() -> tuple[HttpSink, RecordingSession]:
    sink = HttpSink("http://sink.invalid/", timeout=1)
    sink.session = session = RecordingSession()
    return sink, session


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'dueflow.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


def test_http_sink_sends_the_events_trace_context_as_ce_extensions():
    sink, session = recording_sink()
    event = {
        "specversion": "1.0",
        "id": "6b0c4a5e-0c2f-4a59-9d0b-8f8f6f3c1a11",
        "source": "/dueflow/tasks",
        "type": "dev.dueflow.task.completed",
        "traceparent": TRACEPARENT,
        "tracestate": "congo=t61rcWkgMzE",
        "data": {"user_id": "alice"},
    }
    sink(event)
    [post] = session.posts
    assert post["headers"]["ce-traceparent"] == TRACEPARENT
    assert post["headers"]["ce-tracestate"] == "congo=t61rcWkgMzE"


def test_an_event_written_in_a_span_is_relayed_with_that_span_as_traceparent(engine):
    tracer = TracerProvider().get_tracer("test")
    service = TaskService(UnitOfWorkFactory(engine))
    with tracer.start_as_current_span("POST /tasks") as span:
        task = service.create("alice", {"title": "Traced"})
    context = span.get_span_context()
    expected = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    with engine.connect() as conn:
        [payload] = conn.execute(sa.text("SELECT payload FROM outbox")).scalars().all()
    stored = json.loads(payload)
    assert stored["traceparent"] == expected and "tracestate" not in stored
    validate_event(stored)  # the schema allows the extension

    sink, session = recording_sink()
    assert OutboxRelay(engine, sink).run_once() == 1
    [post] = session.posts
    assert post["headers"]["ce-id"] == stored["id"] and post["headers"]["ce-subject"] == task.id
    assert post["headers"]["ce-traceparent"] == expected
    # the delivery's own span names the HTTP hop; with no tracer provider set, the no-op tracer
    # hands the event's context on, so the trace goes on through a Broker that traces
    assert post["headers"]["traceparent"] == expected


def test_an_event_written_outside_a_trace_has_no_traceparent(engine):
    TaskService(UnitOfWorkFactory(engine)).create("alice", {"title": "Untraced"})
    with engine.connect() as conn:
        [payload] = conn.execute(sa.text("SELECT payload FROM outbox")).scalars().all()
    assert "traceparent" not in json.loads(payload)

    sink, session = recording_sink()
    assert OutboxRelay(engine, sink).run_once() == 1
    assert not any(k in session.posts[0]["headers"] for k in ("ce-traceparent", "traceparent"))

"""Observability end to end, on SQLite and PostgreSQL.

Metrics: requests through the tasks function and deliveries to the event functions (through
functions-framework's test client), then the real metrics endpoint that the process serves on
DUEFLOW_METRICS_PORT is scraped over HTTP and parsed. Counters are per process and earlier tests
add to them, so the tests compare scrapes before and after.

Traces: an in-memory span exporter behind the process's tracer provider follows one trace from a
POST /tasks/{id}/complete through the outbox, the relay (a real HTTP sink) and the recurrence
function, into the task.created event that recurrence writes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._once import Once
from prometheus_client.parser import text_string_to_metric_families

from dueflow import bootstrap
from dueflow.adapters.outbox_relay import HttpSink, OutboxRelay
from dueflow.domain import events as ev
from tests.conftest import auth
from tests.functions.conftest import clock, event_client, event_env, mail_dir  # noqa: F401
from tests.support.event_functions import (
    RENT,
    act,
    create,
    one_event_per_reminder,  # noqa: F401 (autouse: these tests follow single reminder.due events)
    outbox,
    ping,
)
from tests.support.event_schemas import validate_event
from tests.support.events import deliver, outcome
from tests.support.http import free_port
from tests.support.polling import wait_until

Samples = dict[tuple[str, frozenset], float]
WEEKLY = {
    "title": "Water the plants",
    "due_at": "2026-12-02T08:00:00Z",
    "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=WEEKLY"},
}


# -- metrics -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def metrics_port() -> int:
    """One port for the module: the endpoint starts once per process and stays on it."""
    return free_port()


@pytest.fixture(autouse=True)
def _metrics_endpoint(function_env, metrics_port) -> None:
    """DUEFLOW_METRICS_PORT on the module's port, before any fixture builds the runtime (autouse
    fixtures come first): the runtime starts the endpoint when it is built."""
    function_env["DUEFLOW_METRICS_PORT"] = str(metrics_port)


@pytest.fixture
def scrape(metrics_port) -> Callable[[], Samples]:
    """Build the runtime (so the endpoint runs) and return a function that scrapes the endpoint:
    {(sample name, labels): value}."""
    bootstrap.runtime()

    def read() -> Samples:
        answer = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
        assert answer.status_code == 200
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(answer.text)
            for s in family.samples
        }

    return read


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_requests_are_counted_by_route_template_method_and_status(client, scrape):
    before = scrape()
    task = client.post("/tasks", json={"title": "Count me"}, headers=auth()).json
    task_id = task["id"]
    assert client.get(f"/tasks/{task_id}", headers=auth()).status_code == 200
    assert client.get(f"/tasks/{uuid.uuid4()}", headers=auth()).status_code == 404
    assert client.post(f"/tasks/{task_id}/complete", headers=auth()).status_code == 200
    assert client.put(f"/tasks/{task_id}", headers=auth()).status_code == 405
    assert client.get(f"/no/such/{task_id}", headers=auth()).status_code == 404
    assert client.get("/healthz").status_code == 200
    after = scrape()

    def requests_(route: str, method: str, status: str) -> float:
        labels = {"route": route, "method": method, "status": status}
        return delta(before, after, "dueflow_http_requests_total", **labels)

    assert requests_("/tasks", "POST", "201") == 1
    assert requests_("/tasks/<task_id>", "GET", "200") == 1
    assert requests_("/tasks/<task_id>", "GET", "404") == 1
    assert requests_("/tasks/<task_id>/complete", "POST", "200") == 1
    assert requests_("/tasks/<task_id>", "PUT", "405") == 1
    assert requests_("unmatched", "GET", "404") == 1
    assert requests_("/healthz", "GET", "200") == 1
    latency = "dueflow_http_request_duration_seconds_count"
    assert delta(before, after, latency, route="/tasks/<task_id>", method="GET") == 2
    assert delta(before, after, latency, route="/tasks", method="POST") == 1
    # raw paths never become labels: nothing names the task
    assert not [labels for _, labels in after if any(task_id in v for _, v in labels)]


def test_events_are_counted_by_function_type_and_outcome(
    client, engine, event_client, scrape  # noqa: F811 (fixtures imported above)
):
    recurrence = event_client("recurrence")
    task = create(client, WEEKLY)
    act(client, task["id"], "complete")
    [completed] = outbox(engine, ev.TASK_COMPLETED)
    before = scrape()
    assert outcome(deliver(recurrence, completed, "binary")) == "next instance created"
    assert outcome(deliver(recurrence, completed, "structured")) == "next instance exists"
    broken = {**completed, "id": str(uuid.uuid4()), "data": {"task": {}}}
    assert deliver(recurrence, broken, "binary").status_code == 422
    stranger = {**completed, "id": str(uuid.uuid4()), "type": "com.example.stranger"}
    assert deliver(recurrence, stranger, "binary").status_code == 400
    assert recurrence.post("/", data=b"{}", headers={"ce-specversion": "1.0"}).status_code == 400
    after = scrape()

    def handled(type_: str, outcome_: str) -> float:
        labels = {"function": "recurrence", "type": type_, "outcome": outcome_}
        return delta(before, after, "dueflow_events_handled_total", **labels)

    assert handled(ev.TASK_COMPLETED, "ok") == 1
    assert handled(ev.TASK_COMPLETED, "duplicate") == 1
    assert handled(ev.TASK_COMPLETED, "invalid") == 1
    assert handled("other", "unhandled") == 1  # a sender-chosen type is no label value
    assert handled("other", "malformed") == 1
    timing = "dueflow_event_duration_seconds_count"
    labels = {"function": "recurrence", "type": ev.TASK_COMPLETED}
    assert delta(before, after, timing, **labels) == 3


def test_a_sent_reminder_counts_the_email_and_its_lateness(
    client, engine, event_client, clock, scrape  # noqa: F811
):
    create(client, RENT)  # its one-hour reminder is due at the clock's T0
    clock.advance(seconds=90)  # the tick comes a minute and a half late
    before = scrape()
    assert ping("binary", event_client) == "emitted 1"
    [due] = outbox(engine, ev.REMINDER_DUE)
    assert outcome(deliver(event_client("notify"), due, "binary")) == "sent"
    assert outcome(deliver(event_client("notify"), due, "binary")) == "already sent"
    after = scrape()

    def handled(function: str, type_: str, outcome_: str) -> float:
        labels = {"function": function, "type": type_, "outcome": outcome_}
        return delta(before, after, "dueflow_events_handled_total", **labels)

    assert handled("reminders", "dev.knative.sources.ping", "ok") == 1
    assert handled("notify", ev.REMINDER_DUE, "ok") == 1
    assert handled("notify", ev.REMINDER_DUE, "duplicate") == 1
    assert delta(before, after, "dueflow_emails_total", backend="eml", outcome="sent") == 1
    lateness = "dueflow_reminder_lateness_seconds"
    assert delta(before, after, f"{lateness}_count") == 1
    assert delta(before, after, f"{lateness}_sum") == pytest.approx(90)
    assert delta(before, after, f"{lateness}_bucket", le="60.0") == 0
    assert delta(before, after, f"{lateness}_bucket", le="90.0") == 1


def test_an_email_failing_for_good_is_counted_as_failed(
    client, engine, event_client, clock, scrape  # noqa: F811
):
    create(client, RENT, mail=None)  # the token has no e-mail: nowhere to send it
    before = scrape()
    assert ping("binary", event_client) == "emitted 1"
    [due] = outbox(engine, ev.REMINDER_DUE)
    assert outcome(deliver(event_client("notify"), due, "binary")) == "failed"
    after = scrape()
    assert delta(before, after, "dueflow_emails_total", backend="eml", outcome="failed") == 1
    assert delta(before, after, "dueflow_reminder_lateness_seconds_count") == 0


def test_dead_letters_are_counted_when_stored(
    client, engine, event_client, scrape  # noqa: F811
):
    task = create(client, WEEKLY)
    [created] = outbox(engine, ev.TASK_CREATED)
    letter = {**created, "knativeerrorcode": "503", "knativeerrordest": "http://recurrence"}
    before = scrape()
    assert outcome(deliver(event_client("deadletter"), letter, "binary")) == "stored"
    assert outcome(deliver(event_client("deadletter"), letter, "binary")) == "duplicate"
    after = scrape()
    assert delta(before, after, "dueflow_dead_letters_total") == 1
    labels = {"function": "deadletter", "type": ev.TASK_CREATED}
    assert delta(before, after, "dueflow_events_handled_total", outcome="ok", **labels) == 1
    assert delta(before, after, "dueflow_events_handled_total", outcome="duplicate", **labels) == 1
    assert task["id"] == created["subject"]


def test_the_relay_measures_outbox_backlog_age_and_pending_dead_letters(
    function_env, sink, event_client, metrics_port  # noqa: F811
):
    """The gauges come from the running relay (K_SINK set, the sink refusing every event)."""
    sink.down(503)
    function_env.update({"K_SINK": sink.url, "DUEFLOW_OUTBOX_POLL": "0.05"})
    bootstrap.reset()
    client = event_client("deadletter")  # any function: every one runs the relay
    for n in range(3):
        letter = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/test",
            "type": "com.example.lost",
            "knativeerrorcode": "500",
            "data": {"n": n},
        }
        assert outcome(deliver(client, letter, "binary")) == "stored"
    runtime = bootstrap.runtime()
    for title in ("one", "two"):
        runtime.tasks.create("alice", {"title": title})
    time.sleep(0.2)  # the oldest event ages while the sink refuses it

    def gauges() -> tuple[float, float, float]:
        answer = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        samples = {s.name: s.value for f in text_string_to_metric_families(answer)
                   for s in f.samples}
        return (
            samples.get("dueflow_outbox_backlog", -1),
            samples.get("dueflow_outbox_oldest_age_seconds", -1),
            samples.get("dueflow_dead_letters_pending", -1),
        )

    assert wait_until(lambda: gauges()[0] == 2 and gauges()[1] >= 0.2, timeout=10), gauges()
    assert gauges()[2] == 3
    assert sink.requests(), "the relay tried the sink"


# -- traces --------------------------------------------------------------------------------------


@pytest.fixture
def spans(function_env) -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider that keeps finished spans in memory, as the process's global one for
    this test only, and OTEL_EXPORTER_OTLP_ENDPOINT set so the tasks function instruments Flask
    (it keeps a provider set before it, so nothing is sent to that address).

    OpenTelemetry lets a process set its provider once; the test restores the unset state the
    way opentelemetry-test-utils' reset_trace_globals does, so later tests run untraced."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = trace_api._TRACER_PROVIDER, trace_api._TRACER_PROVIDER_SET_ONCE
    trace_api._TRACER_PROVIDER_SET_ONCE = Once()
    trace_api._TRACER_PROVIDER = None
    trace_api.set_tracer_provider(provider)
    function_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    yield exporter
    provider.shutdown()
    trace_api._TRACER_PROVIDER, trace_api._TRACER_PROVIDER_SET_ONCE = saved


def traceparent(event: dict) -> tuple[str, str]:
    """(trace id, parent span id) of an event's traceparent extension."""
    version, trace_id, parent_id, flags = event["traceparent"].split("-")
    assert version == "00" and len(flags) == 2
    return trace_id, parent_id


def ids(span: ReadableSpan) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def ancestors(span: ReadableSpan, finished: list[ReadableSpan]) -> list[str]:
    by_id = {s.context.span_id: s for s in finished}
    chain = []
    while span.parent is not None:
        chain.append(f"{span.parent.span_id:016x}")
        if (span := by_id.get(span.parent.span_id)) is None:
            break
    return chain


def test_a_trace_runs_from_the_request_through_outbox_relay_and_recurrence(
    spans, client, engine, event_client, clock, sink  # noqa: F811
):
    task = create(client, WEEKLY)
    spans.clear()
    act(client, task["id"], "complete")
    [request] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert request.name == "POST /tasks/<task_id>/complete"
    assert request.attributes["http.route"] == "/tasks/<task_id>/complete"
    trace_id, request_span_id = ids(request)

    # the stored event carries the request's span
    [completed] = outbox(engine, ev.TASK_COMPLETED)
    validate_event(completed)
    assert traceparent(completed) == (trace_id, request_span_id)

    # the relay sends it along in binary mode, under a span of its own in the same trace
    relay = OutboxRelay(engine, HttpSink(sink.url, timeout=5), clock=clock)
    assert relay.run_once() == 2  # task.created, task.completed
    [received] = [r for r in sink.requests() if r.headers["ce-id"] == completed["id"]]
    assert received.headers["ce-traceparent"] == completed["traceparent"]
    [publish] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER
                 and s.attributes["cloudevents.event_id"] == completed["id"]]
    assert ids(publish)[0] == trace_id and ancestors(publish, [request]) == [request_span_id]
    assert received.headers["traceparent"].split("-")[1:3] == list(ids(publish))

    # delivered to recurrence as the Broker would: its handler span continues the trace
    forwarded = {k: v for k, v in received.headers.items()
                 if k.startswith("ce-") or k in ("content-type", "traceparent")}
    answer = event_client("recurrence").post("/", headers=forwarded, data=received.body)
    assert outcome(answer) == "next instance created"
    finished = spans.get_finished_spans()
    [handler] = [s for s in finished if s.kind == SpanKind.CONSUMER]
    assert handler.name == f"recurrence {ev.TASK_COMPLETED}"
    assert handler.attributes["dueflow.outcome"] == "ok"
    assert ids(handler)[0] == trace_id
    assert request_span_id in ancestors(handler, list(finished))

    # and the next instance's task.created carries the handler's span: the same trace
    [created] = outbox(engine, ev.TASK_CREATED)
    validate_event(created)
    assert created["data"]["task"]["series_id"] == task["series_id"]
    assert traceparent(created) == ids(handler)


def test_the_calendar_feeds_secret_path_stays_out_of_its_span(spans, client):
    created = client.post("/calendar/token", headers=auth())
    path = urlsplit(created.json["url"]).path
    spans.clear()
    assert client.get(path + "?as=events").status_code == 200
    [request] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert request.name == "GET /calendar/<token>.ics"
    token = path.removeprefix("/calendar/").removesuffix(".ics")
    assert not [k for k, v in request.attributes.items() if token in str(v)]
    assert request.attributes["http.target"] == "/calendar/<token>.ics"


def test_without_a_trace_context_the_handler_starts_a_new_trace(
    spans, client, engine, event_client, clock  # noqa: F811
):
    task = create(client, WEEKLY)
    act(client, task["id"], "complete")
    [completed] = outbox(engine, ev.TASK_COMPLETED)
    untraced = {k: v for k, v in completed.items() if k != "traceparent"}
    spans.clear()
    assert outcome(deliver(event_client("recurrence"), untraced, "structured")) == (
        "next instance created"
    )
    [handler] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER]
    assert handler.parent is None
    [created] = [e for e in outbox(engine, ev.TASK_CREATED) if e["subject"] != task["id"]]
    assert traceparent(created) == ids(handler)

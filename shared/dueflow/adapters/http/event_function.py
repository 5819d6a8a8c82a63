"""The HTTP edge of dueflow's event functions: CloudEvents in (binary or structured mode, from a
Knative Trigger, KafkaSource or PingSource), Dapr input-binding POSTs, and Dapr's OPTIONS probe.

Answers tell the sender what to do: 2xx done (also for a duplicate), 4xx never retry (the event
is bad: a Broker sends it to its dead-letter sink), 5xx retry later (a transient failure).

Each delivery is handled in a span continuing the trace the event carries (its `traceparent`
extension, else the HTTP request's), and counted by function, type and outcome.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import from_http
from werkzeug.wrappers import Request, Response

from dueflow import metrics, observability
from dueflow.adapters.http.problems import instance_of, problem, request_id
from dueflow.domain.delivery import InboundEvent
from dueflow.domain.errors import DomainError, ValidationFailed
from dueflow.service.outcome import Outcome

log = logging.getLogger("dueflow.events")


Handler = Callable[[InboundEvent], Outcome]  # returns what it did
# A Dapr job's callback: daprd POSTs /job/<name> to the app that scheduled it when it is due;
# 2xx means done, anything else makes the scheduler retry by the job's failure policy.
JOB_PATH, DAPR_JOB = "/job/", "dapr.job"


@dataclass(frozen=True)
class Routes:
    """An event function's routing table, as its `functions/<name>/main.py` spells it out."""

    handlers: Mapping[str, Handler]  # event type -> handler
    default: Handler | None = None  # for any other delivery (the reminders tick takes every ping)
    known_types: Iterable[str] = ()  # other types counted under their own name
    # failures that may pass unchanged later, besides the database's (notify: TransientEmailError,
    # named by notify's main.py so no other function imports the e-mail code)
    transient: Iterable[type[Exception]] = ()


def read_delivery(request: Request) -> InboundEvent:
    """A CloudEvent, a Dapr job's callback POST to /job/<name> (type `dapr.job`, id the job's
    name), or a Dapr binding POST to /<binding> (type `dapr.binding.<binding>`)."""
    body = request.get_data()
    # Kafka's binary mode names headers ce_type: a Dapr Kafka binding passes them on like that
    headers = {_http_name(k): v for k, v in request.headers.items()}
    is_structured = request.mimetype == "application/cloudevents+json"
    if "ce-specversion" in headers or is_structured:
        event = from_http(headers, body)
        data = event.data
        if isinstance(data, bytes | bytearray):
            data = _json_or_text(bytes(data))
        attributes = dict(event.get_attributes())
        return InboundEvent(event["type"], event["source"], event["id"], data, attributes)
    if request.path.startswith(JOB_PATH):  # a Dapr job is due: POST /job/<name>
        name = request.path[len(JOB_PATH) :]
        return InboundEvent(DAPR_JOB, f"dapr/job/{name}", name, _json_or_text(body))
    binding = request.path.strip("/") or "root"
    return InboundEvent(f"dapr.binding.{binding}", f"dapr/{binding}", "", _json_or_text(body))


def _http_name(name: str) -> str:
    name = name.lower()
    return "ce-" + name[3:] if name.startswith("ce_") else name


def _json_or_text(body: bytes) -> object:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class EventFunction:
    def __init__(self, name: str, routes: Routes, ready: Callable[[], None]):
        self.name = name
        self.handlers = routes.handlers
        self.default = routes.default
        self.ready = ready
        # here, not at import: gunicorn's master, which imports this module, then needs no
        # SQLAlchemy (the worker's first request loads it; see bootstrap.freeze_heap_at_fork)
        from sqlalchemy.exc import OperationalError

        self.transient = (OperationalError, *routes.transient)
        self._unavailable = OperationalError
        # event types counted under their own name; senders choose types, so any other is "other"
        self.known_types = frozenset(routes.handlers) | frozenset(routes.known_types)

    def handle(self, request: Request) -> Response:
        response = self._answer(request)
        response.headers["X-Request-Id"] = request_id(request)
        return response

    def _answer(self, request: Request) -> Response:
        if request.method == "OPTIONS":  # Dapr probes an app's binding routes before delivering
            return Response(status=200)
        if request.method == "GET" and request.path in ("/healthz", "/readyz"):
            if request.path == "/readyz":
                try:
                    self.ready()
                except self._unavailable:
                    return problem(
                        503,
                        "the database is unavailable",
                        instance=instance_of(request),
                        headers={"Retry-After": "1"},
                    )
            return Response(json.dumps({"status": "ok"}), content_type="application/json")
        if request.method != "POST":
            return problem(
                405,
                "deliver events with POST",
                instance=instance_of(request),
                headers={"Allow": "POST, OPTIONS"},
            )
        started = time.perf_counter()
        try:
            delivery = read_delivery(request)
        except CloudEventError as exc:
            metrics.EVENTS_HANDLED.labels(self.name, "other", "malformed").inc()
            return problem(400, f"not a valid CloudEvent: {exc}", instance=instance_of(request))
        type_label = self._type_label(delivery.type)
        # the event's own context first: the HTTP header is only the last hop's (the Broker's)
        carrier = observability.trace_carrier(delivery.attributes) or observability.trace_carrier(
            request.headers
        )
        span_attributes = {
            "cloudevents.event_id": delivery.id,
            "cloudevents.event_source": delivery.source,
            "cloudevents.event_type": delivery.type,
            "faas.name": self.name,
        }
        with observability.child_span(
            f"{self.name} {type_label}", carrier, "CONSUMER", span_attributes
        ) as span:
            status, label, outcome = self._dispatch(delivery, instance_of(request))
            elapsed = time.perf_counter() - started
            span.set_attribute("dueflow.outcome", label)
            span.set_attribute("http.response.status_code", status.status_code)
            if status.status_code >= 500:
                observability.mark_error(span, outcome)
            log.info(
                "event",
                extra={
                    "function": self.name,
                    "ce_type": delivery.type,
                    "ce_source": delivery.source,
                    "ce_id": delivery.id,
                    "status": status.status_code,
                    "outcome": outcome,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
        metrics.EVENTS_HANDLED.labels(self.name, type_label, label).inc()
        metrics.EVENT_DURATION.labels(self.name, type_label).observe(elapsed)
        return status

    def _type_label(self, event_type: str) -> str:
        if event_type in self.known_types:
            return event_type
        if event_type.startswith("dapr.binding."):
            return "dapr.binding"  # the rest is the request path: anyone's choice
        return "other"

    def _dispatch(self, delivery: InboundEvent, path: str) -> tuple[Response, str, str]:
        """The answer, the metric's outcome label (the edge's word for a failure, else the
        handler's kind: ok or duplicate) and the outcome in words."""
        handler = self.handlers.get(delivery.type, self.default)
        if handler is None:
            return _failed(
                problem(400, f"{self.name} does not handle {delivery.type}", instance=path),
                "unhandled",
            )
        try:
            outcome = handler(delivery)
        except ValidationFailed as exc:
            return _failed(
                problem(422, "the event has invalid fields", instance=path, errors=exc.errors),
                "invalid",
            )
        except DomainError as exc:
            return _failed(problem(422, str(exc), instance=path), "rejected")
        except self.transient as exc:
            log.warning("transient failure; the sender will retry", exc_info=True)
            return _failed(
                problem(
                    503,
                    f"transient failure: {type(exc).__name__}",
                    instance=path,
                    headers={"Retry-After": "1"},
                ),
                "retry",
            )
        except Exception:
            log.exception("event handler failed")
            return _failed(problem(500, "the handler failed", instance=path), "error")
        body = json.dumps({"outcome": outcome.detail})
        response = Response(body, status=200, content_type="application/json")
        return response, outcome.kind.value, outcome.detail


def _failed(response: Response, word: str) -> tuple[Response, str, str]:
    return response, word, word

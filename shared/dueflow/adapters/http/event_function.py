"""The HTTP edge of dueflow's event functions: CloudEvents in (binary or structured mode, from a
Knative Trigger, KafkaSource or PingSource), Dapr input-binding POSTs, and Dapr's OPTIONS probe.

Answers tell the sender what to do: 2xx done (also for a duplicate), 4xx never retry (the event
is bad: a Broker sends it to its dead-letter sink), 5xx retry later (a transient failure).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import from_http
from sqlalchemy.exc import OperationalError
from werkzeug.wrappers import Request, Response

from dueflow.adapters.email import TransientEmailError
from dueflow.adapters.http.problems import problem
from dueflow.domain.delivery import Delivery
from dueflow.domain.errors import DomainError, ValidationFailed

log = logging.getLogger("dueflow.events")


Handler = Callable[[Delivery], str]  # returns what it did


def read_delivery(request: Request) -> Delivery:
    """A CloudEvent, or a Dapr binding POST to /<binding> (type `dapr.binding.<binding>`)."""
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
        return Delivery(event["type"], event["source"], event["id"], data, attributes)
    binding = request.path.strip("/") or "root"
    return Delivery(f"dapr.binding.{binding}", f"dapr/{binding}", "", _json_or_text(body))


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
    def __init__(
        self,
        name: str,
        handlers: dict[str, Handler],
        ready: Callable[[], None],
        default: Handler | None = None,
    ):
        self.name = name
        self.handlers = handlers
        self.default = default  # for any other delivery (the reminders tick takes every ping)
        self.ready = ready

    def handle(self, request: Request) -> Response:
        if request.method == "OPTIONS":  # Dapr probes an app's binding routes before delivering
            return Response(status=200)
        if request.method == "GET" and request.path in ("/healthz", "/readyz"):
            if request.path == "/readyz":
                try:
                    self.ready()
                except OperationalError:
                    return problem(503, "the database is unavailable", instance=request.path)
            return Response(json.dumps({"status": "ok"}), content_type="application/json")
        if request.method != "POST":
            return problem(
                405,
                "deliver events with POST",
                instance=request.path,
                headers={"Allow": "POST, OPTIONS"},
            )
        started = time.perf_counter()
        try:
            delivery = read_delivery(request)
        except CloudEventError as exc:
            return problem(400, f"not a valid CloudEvent: {exc}", instance=request.path)
        status, outcome = self._dispatch(delivery, request.path)
        log.info(
            "event",
            extra={
                "function": self.name,
                "ce_type": delivery.type,
                "ce_source": delivery.source,
                "ce_id": delivery.id,
                "status": status.status_code,
                "outcome": outcome,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        return status

    def _dispatch(self, delivery: Delivery, path: str) -> tuple[Response, str]:
        handler = self.handlers.get(delivery.type, self.default)
        if handler is None:
            return problem(
                400, f"{self.name} does not handle {delivery.type}", instance=path
            ), "unhandled type"
        try:
            outcome = handler(delivery)
        except ValidationFailed as exc:
            return problem(
                422, "the event has invalid fields", instance=path, errors=exc.errors
            ), "invalid"
        except DomainError as exc:
            return problem(422, str(exc), instance=path), "rejected"
        except (OperationalError, TransientEmailError) as exc:
            log.warning("transient failure; the sender will retry", exc_info=True)
            return problem(
                503,
                f"transient failure: {type(exc).__name__}",
                instance=path,
                headers={"Retry-After": "1"},
            ), "retry"
        except Exception:
            log.exception("event handler failed")
            return problem(500, "the handler failed", instance=path), "error"
        body = json.dumps({"outcome": outcome})
        return Response(body, status=200, content_type="application/json"), outcome

"""A local stand-in for the Knative Broker: takes CloudEvents on HTTP (the relays' K_SINK) and
hands each to the subscribers whose Trigger matches, with each Trigger's retry, backoff and
dead-letter sink as the manifests in eventing/ declare them.

Without Kafka it stores nothing: it answers 202 once every matching Trigger delivered the event
(or dead-lettered it, as Knative does) and 503 otherwise, so the sender's outbox keeps the event
and retries it. With Kafka (local/kafka.py) the ingress appends to a topic and answers 202 once
Kafka has the event; per-Trigger consumer groups then deliver it.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from cloudevents.conversion import to_binary
from cloudevents.exceptions import GenericException as CloudEventError
from cloudevents.http import CloudEvent, from_http

from dueflow_local.manifests import Trigger, Wiring

log = logging.getLogger("dueflow.local.broker")
# Knative retries these 4xx answers too; any other 4xx is final.
RETRYABLE_4XX = {404, 408, 409, 429}
Message = tuple[dict[str, str], bytes]  # a binary-mode CloudEvent: headers and body
Sink = Callable[[dict[str, str], bytes], None]  # e.g. a KafkaSink: raises when it fails


def binary(event: CloudEvent) -> Message:
    headers, body = to_binary(event)
    return {k.lower(): v for k, v in headers.items()}, body or b""


class Dispatcher:
    """Delivers one event to one Trigger's subscriber: retries, backoff, dead-letter sink."""

    def __init__(
        self,
        endpoints: Mapping[str, str],
        sinks: Mapping[str, Sink] | None = None,
        *,
        max_wait: float | None = None,
        timeout: float = 30,
    ):
        self.endpoints = endpoints  # function name -> base URL
        self.sinks = sinks or {}  # KafkaSink name -> producer
        self.max_wait = max_wait  # caps each backoff (synchronous mode: the sender is waiting)
        self.timeout = timeout
        self.session = requests.Session()

    def deliver(
        self, trigger: Trigger, message: Message, stop: threading.Event | None = None
    ) -> bool:
        """True once the subscriber or, failing that, the dead-letter sink accepted the event."""
        headers, body = message
        status, detail = 0, ""
        for attempt in range(trigger.delivery.retry + 1):
            if attempt:
                wait = trigger.delivery.delay(attempt)
                wait = min(wait, self.max_wait) if self.max_wait is not None else wait
                if stop is not None and stop.wait(wait):
                    return False
                if stop is None:
                    time.sleep(wait)
            status, detail = self._send(trigger, headers, body)
            if 200 <= status < 300:
                return True
            if 400 <= status < 500 and status not in RETRYABLE_4XX:
                break  # the subscriber says the event is bad: never retry it
        log.warning(
            "delivery failed",
            extra={"trigger": trigger.name, "status": status, "ce_type": headers.get("ce-type")},
        )
        dead_letter = trigger.delivery.dead_letter
        if dead_letter is None or dead_letter not in self.endpoints:
            return False
        errors = {
            "ce-knativeerrorcode": str(status),
            "ce-knativeerrordest": self._url(trigger),
            "ce-knativeerrordata": base64.b64encode(detail.encode()[:1024]).decode(),
        }
        code, _ = self._post(self.endpoints[dead_letter], {**headers, **errors}, body)
        return 200 <= code < 300

    def _send(self, trigger: Trigger, headers: dict, body: bytes) -> tuple[int, str]:
        if trigger.subscriber_kind == "KafkaSink":
            try:
                self.sinks[trigger.subscriber](headers, body)
            except Exception as exc:  # the sink is down: retried like an HTTP 503
                return 503, str(exc)
            return 202, ""
        return self._post(self._url(trigger), headers, body)

    def _url(self, trigger: Trigger) -> str:
        return self.endpoints.get(trigger.subscriber, f"kafkasink:{trigger.subscriber}")

    def _post(self, url: str, headers: dict, body: bytes) -> tuple[int, str]:
        try:
            answer = self.session.post(url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return 503, str(exc)
        return answer.status_code, answer.text[:1024]


class LocalBroker:
    """The HTTP ingress. `accept` decides what taking an event means (see module doc)."""

    def __init__(
        self,
        wiring: Wiring,
        dispatcher: Dispatcher,
        accept: Callable[[Message], bool] | None = None,
    ):
        self.wiring = wiring
        self.dispatcher = dispatcher
        self.accept = accept or self.deliver_now
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LocalBroker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def deliver_now(self, message: Message) -> bool:
        attributes = attributes_of(message)
        delivered = [
            self.dispatcher.deliver(t, message)
            for t in self.wiring.matching(attributes)
            if t.subscriber_kind == "Service" or t.subscriber in self.dispatcher.sinks
        ]
        return all(delivered)

    def _handler(self):
        broker = self

        class Handler(BaseHTTPRequestHandler):
            # keep-alive, as Knative's ingress: a relay's connection (and the thread serving
            # it) lasts for many events, not one (a connection per event was a third of the
            # relay's CPU and much of the broker's, docs/performance.md)
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    message = binary(from_http(dict(self.headers.items()), body))
                except CloudEventError:
                    status = 400
                else:
                    status = 202 if broker.accept(message) else 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # the functions log what they handle
                pass

        return Handler


def attributes_of(message: Message) -> dict[str, str]:
    """CloudEvent attributes from binary-mode headers (ce-type -> type)."""
    headers, _ = message
    return {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}

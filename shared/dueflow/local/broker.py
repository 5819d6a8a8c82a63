"""A local stand-in for the Knative Broker: takes CloudEvents on HTTP (the relays' K_SINK) and
hands each to the functions whose Trigger matches its type.

It stores nothing: it answers 202 only once every subscriber accepted the event, and 503
otherwise, so the sender's outbox keeps the event and retries it with backoff. Subscribers are
idempotent, so redelivering to one that already succeeded is harmless.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from dueflow.local.manifests import Wiring

log = logging.getLogger("dueflow.local.broker")
_FORWARD = ("content-type",)


class LocalBroker:
    def __init__(self, wiring: Wiring, endpoints: Mapping[str, str], timeout: float = 30):
        self.wiring = wiring
        self.endpoints = endpoints  # function name -> base URL
        self.timeout = timeout
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> LocalBroker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def route(self, headers: dict[str, str], body: bytes) -> int:
        event_type = headers.get("ce-type")
        if event_type is None and headers.get("content-type", "").startswith(
            "application/cloudevents+json"
        ):
            event_type = json.loads(body).get("type")
        if event_type is None:
            return 400
        forward = {k: v for k, v in headers.items() if k.startswith("ce-") or k in _FORWARD}
        for name in self.wiring.subscribers(event_type):
            try:
                answer = requests.post(
                    self.endpoints[name], data=body, headers=forward, timeout=self.timeout
                )
            except requests.RequestException as exc:
                log.warning("subscriber unreachable", extra={"subscriber": name, "error": str(exc)})
                return 503
            if answer.status_code >= 500:
                return 503  # transient: the producer's outbox retries
            if answer.status_code >= 400:
                # never retried; the dead-letter sink of the wiring issue will keep these
                log.error(
                    "subscriber rejected an event",
                    extra={
                        "subscriber": name,
                        "ce_type": event_type,
                        "status": answer.status_code,
                        "detail": answer.text[:500],
                    },
                )
        return 202

    def _handler(self):
        broker = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                self.send_response(broker.route(headers, body))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # the functions log what they handle
                pass

        return Handler

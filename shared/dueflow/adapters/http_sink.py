"""The event sink of the outbox relay: one CloudEvent POSTed in binary mode to K_SINK (the Broker),
accepted only with a 2xx answer."""

from __future__ import annotations

import threading

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from opentelemetry import propagate


class DeliveryError(Exception):
    """The sink did not accept an event (it will be retried). `sink_down`: the sink itself is
    unreachable or unwell (no answer, a 5xx, a 429), not refusing this one event."""

    def __init__(self, message: str, *, sink_down: bool = False):
        super().__init__(message)
        self.sink_down = sink_down


class HttpSink:
    """POSTs one CloudEvent (binary mode) and requires a 2xx answer. Safe to call from several
    threads: each keeps its own keep-alive session."""

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        if (session := getattr(self._local, "session", None)) is None:
            session = self._local.session = requests.Session()
        return session

    @session.setter
    def session(self, session: requests.Session) -> None:
        """The calling thread's session (tests hand in a recording one)."""
        self._local.session = session

    def __call__(self, event: dict) -> None:
        attributes = {k: v for k, v in event.items() if k != "data"}
        headers, body = to_binary(CloudEvent(attributes, event.get("data")))
        propagate.inject(headers)  # transport context: the relay's span (ce-traceparent stays)
        try:
            response = self.session.post(self.url, headers=headers, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", sink_down=True) from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(
                f"sink answered {response.status_code}: {response.text[:200]}",
                sink_down=response.status_code >= 500 or response.status_code == 429,
            )

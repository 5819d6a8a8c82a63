"""A real HTTP event sink (K_SINK) that records every CloudEvent posted to it and answers what the
test plans (statuses, delays, an outage): the outbox relay's counterpart in the tests."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from cloudevents.http import from_http

from tests.support.http import Answer, RecordingServer, Request


@dataclass
class Received:
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int  # what the sink answered

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    def event(self):
        return from_http(self.headers, self.body)

    def structured(self) -> dict:
        """The received binary-mode event rebuilt as a structured-mode CloudEvent dict."""
        ev = self.event()
        return {**ev.get_attributes(), "data": ev.data}

    @property
    def ce_id(self) -> str:
        return self.headers["ce-id"]


class Sink(RecordingServer):
    """A real HTTP event sink. Answers from `plan` (a queue of (status, delay_seconds)) in turn,
    then `default`; records each request before waiting and answering."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.plan: deque[tuple[int, float]] = deque()
        self.default: tuple[int, float] = (202, 0.0)
        self._lock = threading.Lock()
        super().__init__(self._answer)

    def _answer(self, request: Request) -> Answer:
        with self._lock:
            status, delay = self.plan.popleft() if self.plan else self.default
            self.received.append(Received(request.lower_headers(), request.body, status))
        if delay:
            time.sleep(delay)
        payload = b"accepted" if 200 <= status < 300 else b"unavailable"
        return Answer(status, payload, {"Content-Type": "text/plain"})

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def answer(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in turn."""
        with self._lock:
            self.plan.extend((s, 0.0) for s in statuses)

    def down(self, status: int = 503) -> None:
        with self._lock:
            self.default = (status, 0.0)

    def up(self) -> None:
        with self._lock:
            self.default = (202, 0.0)

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def accepted(self) -> list[Received]:
        return [r for r in self.requests() if r.accepted]

    def accepted_ids(self) -> list[str]:
        return [r.ce_id for r in self.accepted()]

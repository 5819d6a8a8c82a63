"""A real HTTP server on 127.0.0.1 for the tests' peers (event sinks, subscribers, the Broker's
ingress, mail APIs, a JWKS endpoint): it records every request as it arrives and answers what the
test's `respond` says. One implementation instead of a hand-written handler per test module."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from requests.structures import CaseInsensitiveDict


@dataclass(frozen=True)
class Request:
    """One request as the server received it; `headers` are looked up in any case."""

    method: str
    path: str
    headers: CaseInsensitiveDict
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def lower_headers(self) -> dict[str, str]:
        """The headers as a plain dict with lower-case names."""
        return dict(self.headers.lower_items())


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class RecordingServer:
    """Serves until `close()`, each request in its own thread. `respond(request)` runs in that
    thread after the request is recorded; it may block (to hold a request in flight)."""

    def __init__(self, respond: Callable[[Request], Answer] = lambda _request: Answer()) -> None:
        self.respond = respond
        self._requests: list[Request] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Request(
                    self.command, self.path, CaseInsensitiveDict(self.headers.items()), body
                )
                with server.lock:
                    server._requests.append(request)
                answer = server.respond(request)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except OSError:
                    pass  # the client gave up waiting (timeout tests)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 (http.server's naming)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def recorded(self) -> list[Request]:
        with self.lock:
            return list(self._requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FakeHTTP(RecordingServer):
    """A fake of a JSON HTTP API (SendGrid, the Dapr sidecar): records requests and answers
    `status` + `reply`."""

    def __init__(self):
        self.status, self.reply = 200, b""
        super().__init__(
            lambda _request: Answer(self.status, self.reply, {"Content-Type": "application/json"})
        )

    @property
    def requests(self) -> list[Request]:
        return self.recorded()

    def answer(self, status: int, reply: dict | None = None) -> None:
        self.status, self.reply = status, json.dumps(reply).encode() if reply else b""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

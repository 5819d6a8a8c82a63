"""dueflow_local.frontdoor: `make run`'s one origin, a real proxy on a real port in front of tiny
real HTTP servers standing in for the functions (one echoes what it got, one streams server-sent
events one at a time, on the test's signal)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from dueflow_local.frontdoor import FrontDoor
from dueflow_local.manifests import PathMatch, Routes

ROUTES = Routes(
    (
        PathMatch("Exact", "/", "web"),
        PathMatch("PathPrefix", "/tasks", "tasks"),
        PathMatch("PathPrefix", "/live", "live"),
        PathMatch("Exact", "/mcp", "assistant"),
    )
)
WAIT = 20  # seconds: a bound on every wait, never a timing assertion


class _Upstream(BaseHTTPRequestHandler):
    """Echoes the request as JSON; on /live streams events, each once the test releases it."""

    protocol_version = "HTTP/1.1"
    releases: list[threading.Event]

    def do_GET(self) -> None:
        if self.path.startswith("/live"):
            self._stream()
        else:
            self._echo(b"")

    def do_POST(self) -> None:
        self._echo(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _echo(self, body: bytes) -> None:
        answer = json.dumps(
            {
                "path": self.path,
                "method": self.command,
                "headers": dict(self.headers.items()),
                "body": body.decode(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.end_headers()
        self.wfile.write(answer)

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for n, release in enumerate(self.server.releases, 1):  # type: ignore[attr-defined]
            if not release.wait(WAIT):
                return
            self.wfile.write(f"id: {n}\ndata: event {n}\n\n".encode())
            self.wfile.flush()

    def log_message(self, *args) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def upstream() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    server.releases = [threading.Event() for _ in range(3)]  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    for release in server.releases:  # type: ignore[attr-defined]
        release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def door(upstream) -> Iterator[str]:
    """The front door: tasks and live on the upstream, the assistant on a port nobody listens
    on (a function that is down), web not in the tree."""
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    upstreams = {"tasks": base, "live": base, "assistant": f"http://127.0.0.1:{_free_port()}"}
    running = FrontDoor(ROUTES, upstreams, _free_port()).start()
    yield f"http://127.0.0.1:{running.port}"
    running.stop()


def test_routes_by_path_and_keeps_the_host_and_the_query(door):
    got = requests.get(f"{door}/tasks/abc?limit=5&q=a%20b", headers={"Host": "app.example"})
    assert got.status_code == 200
    echoed = got.json()
    assert echoed["path"] == "/tasks/abc?limit=5&q=a%20b"
    assert echoed["headers"]["Host"] == "app.example"
    assert got.cookies.get("a") == "1" and got.cookies.get("b") == "2"  # repeated headers kept


def test_adds_the_forwarded_headers(door):
    echoed = requests.get(f"{door}/tasks", headers={"X-Forwarded-For": "203.0.113.7"}).json()
    assert echoed["headers"]["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert echoed["headers"]["X-Forwarded-Proto"] == "http"
    plain = requests.get(f"{door}/tasks", headers={"X-Forwarded-Proto": "https"}).json()
    assert plain["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert plain["headers"]["X-Forwarded-Proto"] == "http"  # the edge's own, not the client's


def test_passes_the_request_body_on(door):
    echoed = requests.post(f"{door}/tasks", json={"title": "Call mum"}).json()
    assert echoed["method"] == "POST" and json.loads(echoed["body"]) == {"title": "Call mum"}


def test_streams_server_sent_events_one_by_one_while_other_requests_pass(door, upstream):
    releases = upstream.releases
    with requests.get(f"{door}/live", stream=True, timeout=WAIT) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        lines = stream.iter_lines(chunk_size=1, decode_unicode=True)
        for n, release in enumerate(releases, 1):
            release.set()  # the next event is written only now: it must arrive before the next
            assert next(lines) == f"id: {n}"
            assert next(lines) == f"data: event {n}"
            assert next(lines) == ""
            # the open stream holds no slot: another request through the door answers meanwhile
            if n == 1:
                assert requests.get(f"{door}/tasks", timeout=WAIT).status_code == 200


def test_a_function_that_is_down_is_a_502_problem(door):
    got = requests.post(f"{door}/mcp", json={}, timeout=WAIT)
    assert got.status_code == 502
    assert got.headers["Content-Type"] == "application/problem+json"
    problem = got.json()
    assert problem["status"] == 502 and "assistant" in problem["detail"]
    assert problem["instance"] == "/mcp"


@pytest.mark.parametrize("path", ["/nope", "/tasksx", "/mcp/extra"])
def test_an_unrouted_path_is_a_404_problem(door, path):
    got = requests.get(f"{door}{path}", timeout=WAIT)
    assert got.status_code == 404
    assert got.headers["Content-Type"] == "application/problem+json"
    assert got.json()["status"] == 404 and got.json()["instance"] == path


def test_a_function_missing_from_the_tree_is_not_routed(door):
    """web has a row in the table but no process: its paths are 404, not 502."""
    assert requests.get(f"{door}/", timeout=WAIT).status_code == 404


def test_answers_its_own_health(door):
    for path in ("/healthz", "/readyz"):
        assert requests.get(f"{door}{path}", timeout=WAIT).status_code == 200


def test_the_port_taken_is_said_at_start(door):
    port = int(door.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        FrontDoor(ROUTES, {"tasks": door}, port).start()


def test_a_client_that_expects_100_continue_gets_its_body_through(door):
    """curl sends `Expect: 100-continue` with a large body: the door answers it itself."""
    body = json.dumps({"title": "x" * 200_000})
    got = requests.post(
        f"{door}/tasks",
        data=body,
        headers={"Expect": "100-continue", "Content-Type": "application/json"},
        timeout=WAIT,
    )
    echoed = got.json()
    assert echoed["body"] == body and "Expect" not in echoed["headers"]


def test_stopping_ends_open_streams(upstream):
    """Ctrl-C with an SSE reader connected: the door stops (its streams cut), it does not wait
    for them to end."""
    base = f"http://127.0.0.1:{upstream.server_address[1]}"
    running = FrontDoor(ROUTES, {"live": base}, _free_port()).start()
    with requests.get(f"http://127.0.0.1:{running.port}/live", stream=True, timeout=WAIT) as got:
        upstream.releases[0].set()
        lines = got.iter_lines(chunk_size=1, decode_unicode=True)
        assert next(lines) == "id: 1"
        running.stop()
        assert not running._thread.is_alive()
        with pytest.raises(requests.RequestException):
            list(lines)  # the stream is cut, not left open

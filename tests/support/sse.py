"""A Server-Sent Events client for tests, on httpx's streaming responses: it reads a stream on a
thread and parses it as a browser's EventSource does (id, event, data, retry, comments; a message
is dispatched at a blank line; one with an id and no data only moves the position)."""

from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field

import httpx


@dataclass
class Message:
    id: str | None
    event: str | None
    data: str | None  # None: an id-only message (it moves the position, nothing is dispatched)
    retry: int | None = None

    def json(self) -> dict:
        assert self.data is not None
        return json.loads(self.data)


@dataclass
class SSEStream:
    url: str
    headers: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.messages: queue.Queue[Message] = queue.Queue()
        self.comments: list[str] = []
        self.status: int | None = None
        self.content_type = ""
        self.body = b""
        self.ended = threading.Event()  # the server ended the stream (or it failed)
        self._opened = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=60.0))
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._opened.wait(15):
            raise AssertionError(f"{self.url} did not answer")

    def _read(self) -> None:
        try:
            with self._client.stream(
                "GET", self.url, headers=self.headers, params=self.params
            ) as response:
                self._response = response
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                if response.status_code != 200:
                    self.body = response.read()
                    self._opened.set()
                    return
                self._opened.set()
                self._parse(response.iter_lines())
        except (httpx.HTTPError, RuntimeError):  # closed by close(), or the server went away
            pass
        finally:
            self._opened.set()
            self.ended.set()

    def _parse(self, lines) -> None:
        last_id: str | None = None
        event: str | None = None
        data: list[str] = []
        retry: int | None = None
        seen_id = False
        for line in lines:
            if line == "":
                if data or seen_id or retry is not None:
                    self.messages.put(
                        Message(last_id, event, "\n".join(data) if data else None, retry)
                    )
                event, data, retry, seen_id = None, [], None, False
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                self.comments.append(value)
            elif name == "id":
                last_id, seen_id = value, True
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "retry":
                retry = int(value)

    def json_body(self) -> dict:
        return json.loads(self.body)

    def next(self, timeout: float = 10.0) -> Message:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message from {self.url} within {timeout} s") from None

    def changes(self, count: int, timeout: float = 10.0) -> list[Message]:
        """The next `count` dispatched messages (id-only ones skipped)."""
        found: list[Message] = []
        while len(found) < count:
            message = self.next(timeout)
            if message.data is not None:
                found.append(message)
        return found

    def quiet(self, seconds: float = 0.5) -> list[Message]:
        """Whatever arrives within `seconds` (nothing, when all was delivered)."""
        found = []
        try:
            while True:
                found.append(self.messages.get(timeout=seconds))
        except queue.Empty:
            return found

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SSEStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

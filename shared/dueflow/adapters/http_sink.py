"""The event sink of the outbox relay: one CloudEvent POSTed in binary mode to K_SINK (the Broker),
accepted only with a 2xx answer."""

from __future__ import annotations

import threading
import urllib.request

import urllib3
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from opentelemetry import propagate


class DeliveryError(Exception):
    """The sink did not accept an event (it will be retried). `sink_down`: the sink itself is
    unreachable or unwell (no answer, a 5xx, a 429), not refusing this one event."""

    def __init__(self, message: str, *, sink_down: bool = False):
        super().__init__(message)
        self.sink_down = sink_down


class Answer:
    """The sink's answer: its status and the start of its body."""

    def __init__(self, status_code: int, text: str):
        self.status_code, self.text = status_code, text


class Session:
    """One keep-alive connection to the sink, on urllib3 directly.

    Not `requests`: its per-call machinery (settings merged from the environment, hooks,
    cookies, a `PreparedRequest`) cost 0.45 ms of CPU per event on top of urllib3's 0.3 ms, more
    than half of the relay's CPU per event (docs/performance.md). The environment's proxy for
    the sink (`HTTP_PROXY`, `NO_PROXY`) is looked up once, here; the sink is never retried here
    (the outbox retries)."""

    def __init__(self) -> None:
        self.url: str | None = None

    def _connect(self, url: str) -> None:
        parsed = urllib3.util.parse_url(url)
        proxy = urllib.request.getproxies().get((parsed.scheme or "http").lower())
        if proxy and not urllib.request.proxy_bypass(parsed.host or ""):
            manager = urllib3.ProxyManager(proxy, num_pools=1, maxsize=1)
            self.target = url  # a proxy is asked for the whole URL
        else:
            manager = urllib3.PoolManager(num_pools=1, maxsize=1)
            self.target = parsed.request_uri
        self.pool = manager.connection_from_url(url)  # the sink's pool: no lookup per event
        self.url = url

    def post(self, url: str, headers: dict, data: bytes | None, timeout: float) -> Answer:
        if url != self.url:
            self._connect(url)
        response = self.pool.urlopen(
            "POST", self.target, body=data, headers=headers, timeout=timeout, retries=False
        )
        return Answer(response.status, response.data[:1024].decode("utf-8", "replace"))


class HttpSink:
    """POSTs one CloudEvent (binary mode) and requires a 2xx answer. Safe to call from several
    threads: each keeps its own keep-alive session."""

    def __init__(self, url: str, timeout: float):
        self.url, self.timeout = url, timeout
        self._local = threading.local()

    @property
    def session(self) -> Session:
        if (session := getattr(self._local, "session", None)) is None:
            session = self._local.session = Session()
        return session

    @session.setter
    def session(self, session: Session) -> None:
        """The calling thread's session (tests hand in a recording one)."""
        self._local.session = session

    def __call__(self, event: dict) -> None:
        attributes = {k: v for k, v in event.items() if k != "data"}
        headers, body = to_binary(CloudEvent(attributes, event.get("data")))
        propagate.inject(headers)  # transport context: the relay's span (ce-traceparent stays)
        try:
            response = self.session.post(self.url, headers=headers, data=body, timeout=self.timeout)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", sink_down=True) from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(
                f"sink answered {response.status_code}: {response.text[:200]}",
                sink_down=response.status_code >= 500 or response.status_code == 429,
            )

"""The outbox relay's life in one function process: started once the first response has gone
out, woken after each commit, stopped with the process.

The import and start of the relay (urllib3, the CloudEvents encoder) stay off the path of a cold
start's first answer, a readiness probe's or a real request's, whose events the relay then
delivers at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from dueflow import config

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from werkzeug.wrappers import Response

    from dueflow.adapters.outbox_relay import OutboxRelay

log = logging.getLogger("dueflow.bootstrap")
Sink = Callable[[dict], None]


class RelayLifecycle:
    """Starts, wakes and stops one process's outbox relay; without a sink there is none."""

    def __init__(
        self,
        engine: Engine,
        make_sink: Callable[[], Sink] | None,
        *,
        start_delay: float,
        on_start: Callable[[], None] = lambda: None,
        relay_options: dict | None = None,
    ):
        self.engine = engine
        self._relay_options = relay_options or {}  # e.g. the job relay's kinds and lease
        self._make_sink = make_sink  # None: no K_SINK, nothing relays
        self._start_delay = start_delay
        self._on_start = on_start
        self._lock = threading.Lock()
        self._relay: OutboxRelay | None = None
        self._closed = False
        self._responded = threading.Event()  # the first response has gone out
        self._starter: threading.Thread | None = None
        if make_sink is not None:
            self._starter = threading.Thread(
                target=self._start_soon, name="outbox-relay-start", daemon=True
            )
            self._starter.start()

    @property
    def relay(self) -> OutboxRelay | None:
        """The outbox relay once started; None before, and always without a sink."""
        return self._relay

    def kick(self) -> None:
        """After a commit: wake the relay (a relay started later delivers the event anyway)."""
        if (relay := self._relay) is not None:
            relay.kick()

    def after_response(self, response: Response) -> Response:
        """`response`, set to start the relay once it has been sent."""
        if self._starter is not None and not self._responded.is_set():
            response.call_on_close(self._responded.set)
        return response

    def _start_soon(self) -> None:
        self._responded.wait(self._start_delay)
        try:
            self.start()
        except Exception:  # the next start() tries again
            log.exception("the outbox relay did not start")

    def start(self) -> OutboxRelay | None:
        """Start the outbox relay now unless it runs already; None without a sink."""
        with self._lock:
            if self._relay is None and self._make_sink is not None and not self._closed:
                from dueflow.adapters.outbox_relay import OutboxRelay

                relay = OutboxRelay(
                    self.engine,
                    self._make_sink(),
                    batch_size=config.outbox_batch_size(),
                    max_backoff=config.outbox_max_backoff(),
                    poll_interval=config.outbox_poll_interval(),
                    concurrency=config.outbox_concurrency(),
                    reminders_overdue_after=config.reminder_reemit_after(),
                    **self._relay_options,
                )
                relay.start()
                self._on_start()
                self._relay = relay  # commits from now on wake it (`kick`)
                relay.kick()  # and a pass at once for those before: the first request's events
            return self._relay

    def close(self) -> None:
        with self._lock:
            self._closed = True  # no relay starts from now on
        self._responded.set()
        if self._starter is not None:
            self._starter.join(timeout=10)
        if self._relay is not None:
            self._relay.stop()

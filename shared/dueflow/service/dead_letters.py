"""The deadletter function's use case: keep events that exhausted their retries, to list and
replay them (`make dlq-list`, `make dlq-replay`)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime

from dueflow.domain.delivery import InboundEvent
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.service.outcome import Outcome, done, duplicate
from dueflow.service.ports import NoMetrics, ServiceMetrics, UnitOfWorkFactory
from dueflow.service.tasks import utcnow

# Extensions a Knative dead-letter sink receives, saying why the event died.
ERROR_EXTENSIONS = ("knativeerrorcode", "knativeerrordest", "knativeerrordata")


class DeadLetterService:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Callable[[], datetime] = utcnow,
        metrics: ServiceMetrics | None = None,
    ):
        self.uow_factory = uow_factory
        self.clock = clock
        self.metrics = metrics or NoMetrics()

    def store(self, delivery: InboundEvent) -> Outcome:
        if not delivery.attributes:
            raise ValidationFailed([FieldError("", "a dead letter must be a CloudEvent")])
        attributes = dict(delivery.attributes)
        code = attributes.pop("knativeerrorcode", None)
        dest = attributes.pop("knativeerrordest", None)
        error = _decode(attributes.pop("knativeerrordata", None))
        event = {**attributes, "data": delivery.data}
        record = {
            "event_source": delivery.source,
            "event_id": delivery.id,
            "event_type": delivery.type,
            "event": json.dumps(event, default=str),
            "error_code": None if code is None else str(code)[:16],
            "error_dest": dest or "",  # "" not NULL: NULLs never collide in the unique key
            "error_data": error,
            "received_at": self.clock(),
        }
        with self.uow_factory() as uow:
            stored = uow.dead_letters.add(record)
            uow.commit()
        if stored:
            self.metrics.dead_letter_stored()
        return done("stored") if stored else duplicate("duplicate")

    def list(self, *, include_replayed: bool = False, limit: int = 100) -> list[dict]:
        with self.uow_factory(write=False) as uow:
            return uow.dead_letters.list(include_replayed=include_replayed, limit=limit)

    def _mark(self, letter_id: int, when: datetime | None) -> None:
        with self.uow_factory() as uow:
            uow.dead_letters.mark_replayed(letter_id, when)
            uow.commit()

    def replay(self, send: Callable[[dict], None], ids: set[int] | None = None) -> list[int]:
        """Send stored events (the original, without the error extensions) back to the Broker,
        oldest first; stops at the first failure. Returns the ids replayed."""
        done = []
        for letter in self.list(limit=10_000):
            if ids is not None and letter["id"] not in ids:
                continue
            # marked first: if the replayed event dies again (at once, when the broker delivers
            # while we wait) the deadletter function finds it replayed and lists it anew
            self._mark(letter["id"], self.clock())
            try:
                send(json.loads(letter["event"]))
            except Exception:
                self._mark(letter["id"], None)
                raise
            done.append(letter["id"])
        return done


def _decode(value) -> str | None:
    """knativeerrordata is the failed response body, base64-encoded."""
    if value is None:
        return None
    try:
        return base64.b64decode(str(value), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return str(value)

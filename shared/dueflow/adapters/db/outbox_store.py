"""The one door into the outbox: events appended in the caller's transaction."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.engine import Connection

from dueflow import observability
from dueflow.adapters.db.schema import outbox


class Outbox:
    """Appends events to the outbox in the caller's transaction (the relay delivers them).

    Each event is stored with the trace context of the span writing it (the CloudEvents
    `traceparent` extension): here, at the one door into the outbox, the domain that builds
    events stays free of tracing and no use case can forget it."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, event: dict, now: datetime) -> None:
        self.add_many([event], now)

    def add_many(self, events: list[dict], now: datetime) -> None:
        if not events:
            return
        events = [observability.with_trace_context(e) for e in events]
        self.conn.execute(
            outbox.insert(),
            [
                {
                    "event_id": e["id"],
                    "event_type": e["type"],
                    "partition_key": e.get("partitionkey"),
                    "payload": json.dumps(e, separators=(",", ":")),
                    "created_at": now,
                    "next_attempt_at": now,
                }
                for e in events
            ],
        )

"""Command CloudEvents applied, by (source, id): what makes a redelivered command a no-op."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.schema import processed_commands

_CLAIM_COMMAND = processed_commands.insert()


class Commands:
    def __init__(self, conn: Connection):
        self.conn = conn

    def claim(self, source: str, event_id: str, now: datetime) -> bool:
        """Record a command CloudEvent as applied in this transaction; False if it already was.

        The primary key decides (a concurrent duplicate waits for the first, then fails)."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    _CLAIM_COMMAND, {"source": source, "event_id": event_id, "processed_at": now}
                )
        except sa.exc.IntegrityError:
            return False
        return True

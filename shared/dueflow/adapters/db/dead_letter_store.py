"""Dead letters: events that exhausted their retries, kept to list and replay."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.schema import dead_letters


class DeadLetters:
    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, record: dict) -> bool:
        """Store a dead letter; False if the same one (source, id, destination) is stored and
        not replayed. One that died again after a replay is listed again, with the new reason."""
        try:
            with self.conn.begin_nested():
                self.conn.execute(dead_letters.insert().values(**record))
        except sa.exc.IntegrityError:
            again = self.conn.execute(
                dead_letters.update()
                .where(
                    dead_letters.c.event_source == record["event_source"],
                    dead_letters.c.event_id == record["event_id"],
                    dead_letters.c.error_dest == record["error_dest"],
                    dead_letters.c.replayed_at.is_not(None),
                )
                .values(**record, replayed_at=None)
            )
            return again.rowcount > 0
        return True

    def list(self, *, include_replayed: bool = False, limit: int = 100) -> list[dict]:
        stmt = sa.select(dead_letters).order_by(dead_letters.c.id).limit(limit)
        if not include_replayed:
            stmt = stmt.where(dead_letters.c.replayed_at.is_(None))
        return [dict(r) for r in self.conn.execute(stmt).mappings()]

    def mark_replayed(self, letter_id: int, now: datetime | None) -> None:
        self.conn.execute(
            dead_letters.update().where(dead_letters.c.id == letter_id).values(replayed_at=now)
        )

    def pending(self) -> int:
        """Dead letters not replayed."""
        return self.conn.execute(
            sa.select(sa.func.count())
            .select_from(dead_letters)
            .where(dead_letters.c.replayed_at.is_(None))
        ).scalar_one()

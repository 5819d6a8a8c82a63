"""The live feed's change log: one row per task change, appended in the transaction of the change
(the outbox adds it with the task event, see Outbox.add_many), read by each `live` replica's tail
in id order, pruned after the retention; and the live feed's tickets. All SQL on these tables is
here."""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.schema import live_tickets, task_changes, task_changes_horizon
from dueflow.domain.events import live_change
from dueflow.service.ports import Change

#: PostgreSQL advisory lock id taken by each transaction that appends changes (see `record`)
_APPEND_LOCK = 7_204_184
_HORIZON = task_changes_horizon.c.name == "live"
_COLUMNS = (task_changes.c.id, task_changes.c.user_id, task_changes.c.event_type)
_MESSAGE = (
    task_changes.c.event_id,
    task_changes.c.event_time,
    task_changes.c.task_id,
    task_changes.c.data,
)


class ChangeLog:
    def __init__(self, conn: Connection):
        self.conn = conn

    def record(self, events: list[dict], now: datetime) -> None:
        """Append the task changes among `events` (other events are not the live feed's).

        Ids must become visible in id order, or a tail that has read id 6 would never see a 5
        committed after it. A sequence alone does not give that (two transactions take 5 and 6,
        6 commits first), so on PostgreSQL each appending transaction takes one advisory lock
        just before its insert, released at its commit: the appends of concurrent task changes
        commit one after another (their inserts come last in each use case, so the lock is held
        for the insert and the commit only). SQLite already runs one write transaction at a
        time."""
        changes = [c for c in map(live_change, events) if c is not None]
        if not changes:
            return
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPEND_LOCK})
        self.conn.execute(
            task_changes.insert(),
            [
                {
                    "user_id": c["user_id"],
                    "task_id": c["message"]["task_id"],
                    "event_type": c["message"]["type"],
                    "event_id": c["message"]["id"],
                    "event_time": c["message"]["time"],
                    "data": json.dumps(c["message"]["data"], separators=(",", ":")),
                    "created_at": now,
                }
                for c in changes
            ],
        )

    # -- reading -----------------------------------------------------------------------------
    def after(self, position: int, limit: int, user_id: str | None = None) -> list[Change]:
        """Up to `limit` changes with an id above `position`, in id order (one user's, or all)."""
        query = (
            sa.select(*_COLUMNS, *_MESSAGE)
            .where(task_changes.c.id > position)
            .order_by(task_changes.c.id)
            .limit(limit)
        )
        if user_id is not None:
            query = query.where(task_changes.c.user_id == user_id)
        return [_change(row) for row in self.conn.execute(query)]

    def head(self) -> int:
        """The highest id written (or pruned): where a tail starting now begins."""
        last = self.conn.execute(sa.select(sa.func.max(task_changes.c.id))).scalar_one()
        return max(last or 0, self.horizon())

    def horizon(self) -> int:
        """Every change with an id up to this one may have been pruned."""
        pruned = self.conn.execute(
            sa.select(task_changes_horizon.c.pruned_through).where(_HORIZON)
        ).scalar_one_or_none()
        return pruned or 0

    def count(self, user_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(task_changes)
        if user_id is not None:
            query = query.where(task_changes.c.user_id == user_id)
        return self.conn.execute(query).scalar_one()

    # -- retention ---------------------------------------------------------------------------
    def prune(self, before: datetime, now: datetime) -> int:
        """Delete the changes written before `before` (and tickets expired by `now`); raise the
        horizon to the highest id deleted. Returns how many changes went."""
        self.conn.execute(live_tickets.delete().where(live_tickets.c.expires_at <= now))
        through = self.conn.execute(
            sa.select(sa.func.max(task_changes.c.id)).where(task_changes.c.created_at < before)
        ).scalar_one()
        if through is None:
            return 0
        gone = self.conn.execute(task_changes.delete().where(task_changes.c.id <= through))
        raised = self.conn.execute(
            task_changes_horizon.update()
            .where(_HORIZON, task_changes_horizon.c.pruned_through < through)
            .values(pruned_through=through)
        )
        if raised.rowcount == 0 and self.horizon() < through:  # its row is gone (emptied)
            self.conn.execute(
                task_changes_horizon.insert().values(name="live", pruned_through=through)
            )
        return gone.rowcount

    # -- tickets -----------------------------------------------------------------------------
    def add_ticket(self, ticket_hash: str, user_id: str, expires_at: datetime) -> None:
        self.conn.execute(
            live_tickets.insert().values(
                ticket_hash=ticket_hash, user_id=user_id, expires_at=expires_at
            )
        )

    def ticket_user(self, ticket_hash: str, now: datetime) -> str | None:
        """The user a ticket was issued to, while it has not expired."""
        return self.conn.execute(
            sa.select(live_tickets.c.user_id).where(
                live_tickets.c.ticket_hash == ticket_hash, live_tickets.c.expires_at > now
            )
        ).scalar_one_or_none()


def _change(row) -> Change:
    message = {
        "type": row.event_type,
        "id": row.event_id,
        "time": row.event_time,
        "task_id": row.task_id,
        "data": json.loads(row.data),
    }
    return Change(row.id, row.user_id, row.event_type, json.dumps(message, separators=(",", ":")))

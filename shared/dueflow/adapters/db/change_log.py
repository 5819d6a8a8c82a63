"""The live feed's change log: one row per task change, appended in the transaction of the change
(the outbox adds it with the task event, see Outbox.add_many), read by each `live` replica's tail
in id order, pruned after the retention; and the live feed's tickets. All SQL on these tables is
here."""

from __future__ import annotations

import functools
import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.schema import live_tickets, task_changes, task_changes_horizon
from dueflow.domain.events import live_change
from dueflow.service.ports import Change, ChangesRead

_HORIZON = task_changes_horizon.c.name == "live"
_COLUMNS = (task_changes.c.id, task_changes.c.user_id, task_changes.c.event_type)
# who may still be writing, as of the statement's snapshot (PostgreSQL 13+; xid8 has no driver
# type: as text): the oldest transaction running, the one after the last ended, and a fresh
# transaction id (the statement's own, assigned after its snapshot: above every writer's)
_XMIN = sa.literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
_XMAX = sa.literal_column("pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
_FENCE = sa.literal_column("pg_current_xact_id()::text::bigint")
_MESSAGE = (
    task_changes.c.event_id,
    task_changes.c.event_time,
    task_changes.c.task_id,
    task_changes.c.data,
)


_ARRAY_COLUMNS = ("user_id", "task_id", "event_type", "event_id", "event_time", "data")


def change_rows(events: list[dict], now: datetime) -> list[dict]:
    """The change log's rows for the task changes among `events`, in their order."""
    return [
        {
            "user_id": c["user_id"],
            "task_id": c["message"]["task_id"],
            "event_type": c["message"]["type"],
            "event_id": c["message"]["id"],
            "event_time": c["message"]["time"],
            "data": json.dumps(c["message"]["data"], separators=(",", ":")),
            "created_at": now,
        }
        for c in map(live_change, events)
        if c is not None
    ]


@functools.cache
def _insert_after(write: sa.CTE) -> sa.Insert:
    columns = tuple(task_changes.c[c] for c in _ARRAY_COLUMNS)
    arrays = (
        sa.cast(sa.bindparam(f"change_{c.name}", type_=sa.ARRAY(c.type)), sa.ARRAY(c.type))
        for c in columns
    )
    names = [c.name for c in columns]
    change = sa.func.unnest(*arrays).table_valued(*names, with_ordinality="n").render_derived()
    created_at = sa.bindparam("change_created_at", type_=task_changes.c.created_at.type)
    rows = (
        sa.select(*(change.c[n] for n in names), created_at)
        .where(sa.exists(sa.select(write.c[0])))  # after `write`: see `insert_after`
        .order_by(change.c.n)  # ids in the events' order
    )
    return task_changes.insert().from_select([*names, "created_at"], rows).add_cte(write)


class ChangeLog:
    def __init__(self, conn: Connection):
        self.conn = conn

    def record(self, events: list[dict], now: datetime) -> None:
        """Append the task changes among `events` (other events are not the live feed's).

        Ids are drawn from a sequence before commit, so they may become visible out of order
        (two transactions take 5 and 6, 6 commits first). Writers are not serialized for that
        (an advisory lock did it until issue 16, and made every create wait for the one before
        it): the reading side delivers an id only once every transaction that could still
        commit a lower one has ended (`read`, and `dueflow.service.live.settle`). That needs
        the transaction to have its id before it draws change ids: the outbox inserts its rows
        (a write, which assigns it) before calling this."""
        rows = change_rows(events, now)
        if rows:
            self.conn.execute(task_changes.insert(), rows)

    @staticmethod
    def insert_after(write: sa.CTE) -> sa.Insert:
        """PostgreSQL: the change rows of `change_params` inserted in the statement of `write`
        (a data-modifying CTE, e.g. the outbox rows of the same events) and after it: the rows
        draw their ids once `write` has written a row, so the transaction has its id by then
        (`record` says why that matters). One statement, one round trip, for both."""
        return _insert_after(write)

    @staticmethod
    def change_params(events: list[dict], now: datetime) -> dict | None:
        """The parameters of `insert_after` for the task changes among `events`; None if there are
        none."""
        rows = change_rows(events, now)
        if not rows:
            return None
        params = {f"change_{c}": [row[c] for row in rows] for c in _ARRAY_COLUMNS}
        params["change_created_at"] = now
        return params

    # -- reading -----------------------------------------------------------------------------
    def after(
        self, position: int, limit: int, user_id: str | None = None, through: int | None = None
    ) -> list[Change]:
        """Up to `limit` changes with an id above `position` (and up to `through`), in id order,
        one user's or all."""
        query = _after(position, limit)
        if user_id is not None:
            query = query.where(task_changes.c.user_id == user_id)
        if through is not None:
            query = query.where(task_changes.c.id <= through)
        return [_change(row) for row in self.conn.execute(query)]

    def read(self, position: int, limit: int, messages: bool = True) -> ChangesRead:
        """Everyone's next `limit` changes after `position`, and who could still be writing
        (one statement: the rows and the bounds are of one snapshot; the fence is drawn only
        when there are rows). Without `messages`, only each change's id, owner and type (its
        `message` None): what a tail with no open stream needs to keep its position."""
        query = _after(position, limit, messages)
        if self.conn.dialect.name != "postgresql":  # one writer at a time: ids commit in order
            return ChangesRead([_change(row) for row in self.conn.execute(query)], 0, 0, 0)
        query = query.add_columns(_XMIN.label("xmin"), _XMAX.label("xmax"), _FENCE.label("fence"))
        rows = self.conn.execute(query).all()
        if not rows:
            return ChangesRead([], 0, 0, 0)
        first = rows[0]
        return ChangesRead([_change(row) for row in rows], first.xmin, first.xmax, first.fence)

    def fence(self) -> int:
        """A transaction id drawn now, above every transaction started before (0 on SQLite)."""
        if self.conn.dialect.name != "postgresql":
            return 0
        return self.conn.execute(sa.select(_FENCE)).scalar_one()

    def oldest_writer(self) -> int:
        """The oldest transaction still running: every one below it has ended (0 on SQLite)."""
        if self.conn.dialect.name != "postgresql":
            return 0
        return self.conn.execute(sa.select(_XMIN)).scalar_one()

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


def _after(position: int, limit: int, messages: bool = True) -> sa.Select:
    return (
        sa.select(*_COLUMNS, *(_MESSAGE if messages else ()))
        .where(task_changes.c.id > position)
        .order_by(task_changes.c.id)
        .limit(limit)
    )


def _change(row) -> Change:
    if "data" not in row._fields:  # read without messages
        return Change(row.id, row.user_id, row.event_type, None)
    message = {
        "type": row.event_type,
        "id": row.event_id,
        "time": row.event_time,
        "task_id": row.task_id,
        "data": json.loads(row.data),
    }
    return Change(row.id, row.user_id, row.event_type, json.dumps(message, separators=(",", ":")))

"""The one door into the outbox: events appended in the caller's transaction, and the relay's
reads and writes of the rows waiting for delivery. All SQL on the outbox table is here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from dueflow import observability
from dueflow.adapters.db.change_log import ChangeLog
from dueflow.adapters.db.schema import outbox
from dueflow.adapters.db.task_rows import _task_ctes, _with_children_params
from dueflow.domain.task import Task


@dataclass(frozen=True)
class RowKinds:
    """Which outbox rows a relay delivers, by type: `only` these, or all but `excluded`."""

    only: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def where(self, column) -> tuple:
        if self.only:
            return (column.in_(self.only),)
        return (column.not_in(self.excluded),) if self.excluded else ()


class Outbox:
    """Appends events to the outbox in the caller's transaction (the relay delivers them).

    Each event is stored with the trace context of the span writing it (the CloudEvents
    `traceparent` extension): here, at the one door into the outbox, the domain that builds
    events stays free of tracing and no use case can forget it. For the same reason the task
    changes among the events go into the live feed's change log here, in the same transaction:
    every path that changes a task (the API, the assistant, commands, recurrence) writes its
    task event through this door."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def add(self, event: dict, now: datetime) -> None:
        self.add_many([event], now)

    def add_many(self, events: list[dict], now: datetime, task: Task | None = None) -> None:
        """Append `events`; with `task` (PostgreSQL only), insert that new task in the same
        statement (UnitOfWork.add_task)."""
        if not events:
            return
        traced = [observability.with_trace_context(e) for e in events]
        rows = [
            {
                "event_id": e["id"],
                "event_type": e["type"],
                "partition_key": e.get("partitionkey"),
                "payload": json.dumps(e, separators=(",", ":")),
            }
            for e in traced
        ]
        if self.conn.dialect.name == "postgresql":
            changes = ChangeLog.change_params(events, now)
            if changes is not None:  # the outbox rows and the change log's in one statement
                params = {f"event_{c}": [row[c] for row in rows] for c in _ARRAY_COLUMNS}
                params.update(changes, event_at=now)
                if task is None:
                    self.conn.execute(ChangeLog.insert_after(_new_events()), params)
                else:  # and the task's rows
                    stmt = _with_task(bool(task.tags), bool(task.reminders))
                    self.conn.execute(stmt, {**params, **_with_children_params(task)})
                return
        if task is not None:
            raise ValueError("a task goes with its events only on PostgreSQL, with a change")
        # the outbox rows first: this write gives the transaction its id before the change log
        # draws change ids (ChangeLog.record says why that matters)
        self.conn.execute(
            outbox.insert(),
            [{**row, "created_at": now, "next_attempt_at": now} for row in rows],
        )
        ChangeLog(self.conn).record(events, now)

    # -- the relay's side ------------------------------------------------------------------------
    def waiting(self, now: datetime, limit: int, kinds: RowKinds | None = None) -> list[Row]:
        """Up to `limit` rows in sequence order, skipping partitions whose head is backing off;
        only rows of `kinds` when given (each relay delivers its own kinds of rows)."""
        return self.conn.execute(_waiting(kinds, limit), {"now": now}).all()

    def delete(self, seqs: list[int]) -> None:
        """Delivered rows: gone in one statement."""
        self.conn.execute(outbox.delete().where(outbox.c.seq.in_(seqs)))

    def postpone(self, seq: int, attempts: int, error: str, next_attempt_at: datetime) -> None:
        self.conn.execute(
            outbox.update()
            .where(outbox.c.seq == seq)
            .values(attempts=attempts, last_error=error[:2000], next_attempt_at=next_attempt_at)
        )

    def make_due(self, now: datetime, kinds: RowKinds | None = None) -> None:
        """Every postponed event (of `kinds`) is due at `now` (the sink answers again after an
        outage)."""
        where = kinds.where(outbox.c.event_type) if kinds is not None else ()
        self.conn.execute(
            outbox.update()
            .where(outbox.c.next_attempt_at > now, *where)
            .values(next_attempt_at=now)
        )

    def count(self) -> int:
        return self.conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()

    def backlog(self) -> tuple[int, datetime | None]:
        """Rows waiting and the oldest one's created_at."""
        waiting, oldest = self.conn.execute(
            sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).select_from(outbox)
        ).one()
        return waiting, oldest


@lru_cache(maxsize=16)
def _waiting(kinds: RowKinds | None, limit: int) -> sa.Select:
    """The relay's read, built once per kinds of rows and batch size (it runs on every pass)."""
    waiting = outbox.alias("waiting")
    now = sa.bindparam("now", type_=outbox.c.next_attempt_at.type)
    return (
        sa.select(
            outbox.c.seq,
            outbox.c.partition_key,
            outbox.c.payload,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
        )
        .where(
            ~sa.exists().where(  # skip partitions whose head is backing off
                waiting.c.partition_key == outbox.c.partition_key,
                waiting.c.next_attempt_at > now,
            )
        )
        .where(*(kinds.where(outbox.c.event_type) if kinds is not None else ()))
        .order_by(outbox.c.seq)
        .limit(limit)
    )


_ARRAY_COLUMNS = ("event_id", "event_type", "partition_key", "payload")


@lru_cache(maxsize=4)
def _with_task(with_tags: bool, with_reminders: bool) -> sa.Insert:
    """PostgreSQL: a new task's rows, its events' and their changes', in one statement."""
    return ChangeLog.insert_after(_new_events()).add_cte(*_task_ctes(with_tags, with_reminders))


@lru_cache(maxsize=1)
def _new_events() -> sa.CTE:
    """PostgreSQL: the outbox rows of `add_many` from arrays, in the events' order (their seqs
    keep it), as a data-modifying CTE the change log's insert follows (ChangeLog.insert_after)."""
    columns = tuple(outbox.c[c] for c in _ARRAY_COLUMNS)
    arrays = (
        sa.cast(sa.bindparam(f"event_{c.name}", type_=sa.ARRAY(c.type)), sa.ARRAY(c.type))
        for c in columns
    )
    event = sa.func.unnest(*arrays).table_valued(*_ARRAY_COLUMNS, with_ordinality="n")
    event = event.render_derived()
    at = sa.bindparam("event_at", type_=outbox.c.created_at.type)
    rows = sa.select(*(event.c[c] for c in _ARRAY_COLUMNS), at, at).order_by(event.c.n)
    return (
        outbox.insert()
        .from_select([*_ARRAY_COLUMNS, "created_at", "next_attempt_at"], rows)
        .returning(outbox.c.seq)
        .cte("new_events")
    )

"""Reminder storage for the tick (claiming due reminders) and for notify (the reminders' state,
locked, and the outcome recorded per reminder instance), for one reminder or a batch alike."""

from __future__ import annotations

import functools
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db.schema import notifications, outbox, reminders, tasks, users
from dueflow.domain import events


class Reminders:
    """Due reminders for the tick, and the state of reminders for the notify function."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def claim_due(
        self,
        now: datetime,
        limit: int,
        reemit_before: datetime | None = None,
        reminder_id: str | None = None,
    ) -> list[dict]:
        """Scheduled reminders of open tasks due by `now`, oldest first: those not yet emitted,
        and those emitted before `reemit_before` but still not sent (their event left the
        outbox and was lost downstream, e.g. to the dead-letter store: notify is idempotent,
        so emitting again is safe). Each row says whether it was emitted before (`reemitted`).
        While reminder events written before `reemit_before` still wait in the outbox, nothing
        is emitted again: the relay has not delivered them yet (the sink is down), and more
        events behind the same sink would only grow the backlog it must catch up on.

        On PostgreSQL the rows stay locked until commit and rows locked by a concurrent tick are
        skipped (FOR UPDATE SKIP LOCKED), so ticks and replicas share the work; SQLite's single
        writer (BEGIN IMMEDIATE) serialises them instead.

        With `reminder_id`, that reminder alone, on the same terms (a Dapr job's callback): a
        job delivered twice, late or after the tick finds it claimed already."""
        stmt = (
            sa.select(
                reminders.c.id.label("reminder_id"),
                reminders.c.remind_at,
                reminders.c.user_id,
                tasks.c.id.label("task_id"),
                tasks.c.title,
                tasks.c.due_at,
                tasks.c.timezone,
                reminders.c.emitted_at.is_not(None).label("reemitted"),
            )
            .join(tasks, tasks.c.id == reminders.c.task_id)
            .where(
                reminders.c.status == "scheduled",
                reminders.c.emitted_at.is_(None)
                if reemit_before is None
                else sa.or_(
                    reminders.c.emitted_at.is_(None),
                    sa.and_(
                        reminders.c.emitted_at < reemit_before,
                        ~_reminder_events_waiting(reemit_before),
                    ),
                ),
                reminders.c.remind_at <= now,
                tasks.c.status == "open",
                *([reminders.c.id == reminder_id] if reminder_id is not None else []),
            )
            .order_by(reminders.c.remind_at)
            .limit(limit)
        )
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=reminders)
        return [dict(row) for row in self.conn.execute(stmt).mappings()]

    def count_overdue(self, due_before: datetime) -> int:
        """Reminders of open tasks due before `due_before` and still not sent: what the stuck
        reminder alert watches (one index range scan on status, emitted_at, remind_at)."""
        return self.conn.execute(
            sa.select(sa.func.count())
            .select_from(reminders.join(tasks, tasks.c.id == reminders.c.task_id))
            .where(
                reminders.c.status == "scheduled",
                reminders.c.remind_at < due_before,
                tasks.c.status == "open",
            )
        ).scalar_one()

    def mark_emitted(self, reminder_ids: list[str], now: datetime) -> None:
        self.conn.execute(self._sql.mark_emitted, {"ids": reminder_ids, "now": now})

    @property
    def _sql(self) -> SimpleNamespace:
        return _statements(self.conn.dialect.name)

    def lock_many(self, reminder_ids: list[str]) -> dict[str, dict]:
        """The reminders found (by id), each with its owner, the owner's e-mail address and its
        task's status, all locked for this transaction: three statements however many.

        Tasks are locked first and in id order, then reminders in id order: an edit (task row,
        then its reminders) and every other batch take locks in the same order, so they wait
        for each other instead of deadlocking."""
        sql = self._sql
        pairs = self.conn.execute(sql.task_ids, {"ids": reminder_ids}).all()
        if not pairs:
            return {}
        task_ids = sorted({task_id for _, task_id in pairs})
        statuses = dict(self.conn.execute(sql.lock_tasks, {"ids": task_ids}).all())
        found = [rid for rid, _ in pairs]
        return {
            row["id"]: {**row, "task_status": statuses.get(row["task_id"])}
            for row in self.conn.execute(sql.lock_reminders, {"ids": found}).mappings()
        }

    def notified_many(self, instances: list[tuple[str, datetime]]) -> dict[tuple, str]:
        """The outcomes already recorded for these (reminder_id, remind_at) instances."""
        if not instances:
            return {}
        wanted = set(instances)
        ids = sorted({rid for rid, _ in wanted})
        rows = self.conn.execute(self._sql.notified, {"ids": ids}).all()
        return {(r, at): s for r, at, s in rows if (r, at) in wanted}

    def concurrent_writers(self) -> bool:
        """Whether another connection can write while this transaction holds its locks (so
        notify can record each accepted e-mail at once): PostgreSQL yes, SQLite no (one
        writer at a time)."""
        return self.conn.dialect.name != "sqlite"

    def insert_notifications(self, outcomes: list[dict], backend: str, now: datetime) -> None:
        """The outcome rows alone (reminder_id, remind_at, user_id, status, error); the
        reminders' status is set by `record_notifications`."""
        insert = self._sql.insert_notifications
        if insert is not None and len(outcomes) > 1:  # one row of arrays, not one per outcome
            params = {c: [o.get(c) for o in outcomes] for c in _OUTCOME_COLUMNS}
            self.conn.execute(insert, {**params, "backend": backend, "now": now})
            return
        self.conn.execute(
            notifications.insert(),
            [
                {
                    **{c: o.get(c) for c in _OUTCOME_COLUMNS},
                    "backend": backend,
                    "created_at": now,
                }
                for o in outcomes
            ],
        )

    def record_notifications(self, outcomes: list[dict], backend: str, now: datetime) -> None:
        """Record each outcome (reminder_id, remind_at, user_id, status, error) and set each
        reminder's status: two statements per status, however many reminders. An outcome
        marked `recorded` has its row already (written as soon as its e-mail was accepted)."""
        if not outcomes:
            return
        if new := [o for o in outcomes if not o.get("recorded")]:
            self.insert_notifications(new, backend, now)
        for status in sorted({o["status"] for o in outcomes}):
            ids = [o["reminder_id"] for o in outcomes if o["status"] == status]
            self.conn.execute(self._sql.set_status, {"ids": ids, "status": status})


def _reminder_events_waiting(written_before: datetime):
    """EXISTS: a reminder event written before `written_before` is still in the outbox."""
    return sa.exists().where(
        outbox.c.event_type.in_([events.REMINDER_DUE, events.REMINDERS_DUE]),
        outbox.c.created_at < written_before,
    )


@functools.cache
def _statements(dialect: str) -> SimpleNamespace:
    """The statements of a batch, built once per dialect: on PostgreSQL a list of ids is one
    array parameter (`= ANY(:ids)`), the same SQL for any number, where `IN` renders a
    parameter per id on each call, and the outcomes go in as one row of arrays (the `IN` lists
    and a row of parameters per outcome were about a third of notify's Python time in a storm);
    SQLite has no arrays: it expands `IN (:ids)` and inserts a row each."""
    postgres = dialect == "postgresql"

    def among(column) -> sa.ColumnElement:
        if not postgres:
            return column.in_(sa.bindparam("ids", expanding=True))
        return column == sa.any_(sa.bindparam("ids", type_=sa.ARRAY(column.type)))

    lock_tasks = sa.select(tasks.c.id, tasks.c.status).where(among(tasks.c.id)).order_by(tasks.c.id)
    lock_reminders = (
        sa.select(
            reminders.c.id,
            reminders.c.task_id,
            reminders.c.remind_at,
            reminders.c.status,
            reminders.c.user_id,
            users.c.email,
        )
        .outerjoin(users, users.c.id == reminders.c.user_id)
        .where(among(reminders.c.id))
        .order_by(reminders.c.id)
    )
    return SimpleNamespace(
        task_ids=sa.select(reminders.c.id, reminders.c.task_id).where(among(reminders.c.id)),
        lock_tasks=lock_tasks.with_for_update() if postgres else lock_tasks,
        lock_reminders=lock_reminders.with_for_update(of=reminders) if postgres else lock_reminders,
        notified=sa.select(
            notifications.c.reminder_id, notifications.c.remind_at, notifications.c.status
        ).where(among(notifications.c.reminder_id)),
        set_status=reminders.update()
        .where(among(reminders.c.id))
        .values(status=sa.bindparam("status")),
        insert_notifications=_insert_from_arrays() if postgres else None,
        mark_emitted=reminders.update()
        .where(among(reminders.c.id))
        .values(emitted_at=sa.bindparam("now")),
    )


_OUTCOME_COLUMNS = ("reminder_id", "remind_at", "user_id", "status", "error")


def _insert_from_arrays() -> sa.Insert:
    """PostgreSQL: INSERT INTO notifications SELECT ... FROM unnest(:reminder_id, ...), one
    array per column, however many outcomes."""
    arrays = (sa.bindparam(c, type_=sa.ARRAY(notifications.c[c].type)) for c in _OUTCOME_COLUMNS)
    rows = sa.func.unnest(*arrays).table_valued(*_OUTCOME_COLUMNS).render_derived()
    select = sa.select(
        *(rows.c[c] for c in _OUTCOME_COLUMNS),
        sa.bindparam("backend", type_=notifications.c.backend.type),
        sa.bindparam("now", type_=notifications.c.created_at.type),
    )
    return notifications.insert().from_select([*_OUTCOME_COLUMNS, "backend", "created_at"], select)

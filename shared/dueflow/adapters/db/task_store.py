"""Task storage on SQLAlchemy Core: whole task aggregates, list queries, tag counts. The row
mapping is in task_rows, the list filters and keyset paging in paging."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db import paging
from dueflow.adapters.db.direct import DirectSelect
from dueflow.adapters.db.schema import reminders, task_tags, tasks
from dueflow.adapters.db.task_rows import (
    _insert_with_children,
    _reminder_row,
    _task,
    _task_row,
    _with_children_params,
)
from dueflow.domain.errors import Conflict
from dueflow.domain.listing import ListQuery, encode_cursor
from dueflow.domain.task import Reminder, Task

# Statements built once, values bound at execution, so SQLAlchemy compiles each once per process
# (`insert().values(**row)` built a new statement per call, with a bound value per column that
# its cache key then had to visit: the most expensive part of an INSERT on the Python side).
_INSERT_TASK = tasks.insert()
_UPDATE_TASK = tasks.update().where(tasks.c.id == sa.bindparam("task_id"))
_INSERT_TAG = task_tags.insert()
_INSERT_REMINDER = reminders.insert()
# A task's reminders as extra columns of its row (NULL when it has none), so a read is one
# statement: `_assemble` folds the joined rows (a task's rows consecutive, by position) back.
_REMINDER_FIELDS = ("id", "remind_at", "before", "at", "status", "emitted_at")
_REMINDER_COLUMNS = tuple(reminders.c[f].label(f"reminder_{f}") for f in _REMINDER_FIELDS)
# Reads run on the DB-API cursor (`DirectSelect`): SQLAlchemy's execution machinery cost a GET
# more CPU than anything else in it.
_GET_WITH_REMINDERS = DirectSelect(
    sa.select(tasks, *_REMINDER_COLUMNS)
    .outerjoin(reminders, reminders.c.task_id == tasks.c.id)
    .where(tasks.c.id == sa.bindparam("task_id"), tasks.c.user_id == sa.bindparam("user_id"))
    .order_by(reminders.c.position)
)


class TaskRepository:
    """Reads and writes whole task aggregates (task row, its tag rows, its reminder rows)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def get(self, user_id: str, task_id: str, *, for_update: bool = False) -> Task | None:
        if not for_update:  # the task with its reminders: one statement, one round trip
            rows = _GET_WITH_REMINDERS.rows(self.conn, {"task_id": task_id, "user_id": user_id})
            found = _assemble(rows)
            return found[0][0] if found else None
        stmt = sa.select(tasks).where(tasks.c.id == task_id, tasks.c.user_id == user_id)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).mappings().first()
        return self._load([row])[0] if row else None

    def add(self, task: Task) -> None:
        if self.conn.dialect.name == "postgresql" and (task.tags or task.reminders):
            # the task with its tag and reminder rows: one statement, one round trip
            stmt = _insert_with_children(bool(task.tags), bool(task.reminders))
            self.conn.execute(stmt, _with_children_params(task))
            return
        self.conn.execute(_INSERT_TASK, _task_row(task))
        self._write_children(task)

    def job_commands(self, previous: Task | None, current: Task | None, now: datetime) -> list:
        """The outbox commands a write of the task from `previous` to `current` adds beside its
        rows at `now`: none here (reminder_job_store.JobSchedulingTasks: its reminders' jobs)."""
        return []

    def update(self, task: Task, previous: Task) -> None:
        """Write what changed from `previous` (the task as loaded in this transaction).

        Reminder rows are updated in place, column by column: rows the change leaves alone keep
        what the reminder tick or the notify function wrote to them meanwhile."""
        row = _task_row(task)
        del row["id"], row["user_id"], row["created_at"]
        try:
            with self.conn.begin_nested():
                self.conn.execute(_UPDATE_TASK, {**row, "task_id": task.id})
        except sa.exc.IntegrityError:
            raise Conflict("another instance of this series already has that occurrence") from None
        if task.tags != previous.tags:
            self.conn.execute(task_tags.delete().where(task_tags.c.task_id == task.id))
            self._insert_tags(task)
        self._sync_reminders(task, previous)

    def add_if_absent(self, task: Task) -> bool:
        """Insert a series instance unless its (series_id, occurrence) exists: False then.

        The unique constraint decides, not a prior read, so racing deliveries insert one row."""
        try:
            with self.conn.begin_nested():  # a savepoint: PostgreSQL aborts the rest otherwise
                self.add(task)
        except sa.exc.IntegrityError:
            return False
        return True

    def delete(self, task: Task) -> None:
        # children go by ON DELETE CASCADE (SQLite: PRAGMA foreign_keys=ON, set per connection)
        self.conn.execute(tasks.delete().where(tasks.c.id == task.id))

    def list(self, user_id: str, query: ListQuery, now: datetime) -> tuple[list[Task], str | None]:
        # the page (one row more, to know whether there is a next one) with its reminders, in
        # one statement built once per shape of query (paging.statement), the values bound
        dialect = self.conn.dialect.name
        page = paging.statement(paging.shape(query, dialect), _REMINDER_COLUMNS)
        found = _assemble(page.rows(self.conn, paging.params(query, user_id, now, dialect)))
        cursor = None
        if len(found) > query.limit:
            last = found[query.limit - 1][1]
            cursor = encode_cursor(query.sort, [last[key.column] for key in query.keys])
        return [task for task, _row in found[: query.limit]], cursor

    def open_tasks(self, user_id: str) -> list[Task]:
        """Every open task of the user, soonest due first (no due date last): the calendar feed."""
        stmt = (
            sa.select(tasks)
            .where(tasks.c.user_id == user_id, tasks.c.status == "open")
            .order_by(tasks.c.due_at.is_(None), tasks.c.due_at, tasks.c.id)
        )
        return self._load(self.conn.execute(stmt).mappings().all())

    def tag_counts(self, user_id: str) -> list[tuple[str, int]]:
        count = sa.func.count().label("count")
        stmt = (
            sa.select(task_tags.c.tag, count)
            .join(tasks, tasks.c.id == task_tags.c.task_id)
            .where(task_tags.c.user_id == user_id, tasks.c.status == "open")
            .group_by(task_tags.c.tag)
            .order_by(count.desc(), task_tags.c.tag)
        )
        return [(r.tag, r.count) for r in self.conn.execute(stmt)]

    def _write_children(self, task: Task) -> None:
        self._insert_tags(task)
        self._insert_reminders(task, list(enumerate(task.reminders)))

    def _insert_tags(self, task: Task) -> None:
        if task.tags:
            self.conn.execute(
                _INSERT_TAG,
                [{"task_id": task.id, "tag": tag, "user_id": task.user_id} for tag in task.tags],
            )

    def _insert_reminders(self, task: Task, placed: list[tuple[int, Reminder]]) -> None:
        if placed:
            self.conn.execute(
                _INSERT_REMINDER,
                [
                    {"id": r.id, "task_id": task.id, "user_id": task.user_id, **_reminder_row(i, r)}
                    for i, r in placed
                ],
            )

    def _sync_reminders(self, task: Task, previous: Task) -> None:
        old = {r.id: _reminder_row(i, r) for i, r in enumerate(previous.reminders)}
        kept = {r.id for r in task.reminders}
        if gone := [rid for rid in old if rid not in kept]:
            self.conn.execute(reminders.delete().where(reminders.c.id.in_(gone)))
        fresh = []
        for i, reminder in enumerate(task.reminders):
            if reminder.id not in old:
                fresh.append((i, reminder))
                continue
            row = _reminder_row(i, reminder)
            if changes := {k: v for k, v in row.items() if old[reminder.id][k] != v}:
                self.conn.execute(
                    reminders.update().where(reminders.c.id == reminder.id).values(**changes)
                )
        self._insert_reminders(task, fresh)

    def _load(self, rows: Iterable) -> list[Task]:
        rows = list(rows)
        by_task: dict[str, list[Reminder]] = defaultdict(list)
        ids = [r["id"] for r in rows if r is not None]
        if ids:
            stmt = (
                sa.select(reminders)
                .where(reminders.c.task_id.in_(ids))
                .order_by(reminders.c.task_id, reminders.c.position)
            )
            for r in self.conn.execute(stmt).mappings():
                by_task[r["task_id"]].append(_reminder(r))
        return [_task(row, tuple(by_task[row["id"]])) for row in rows]


def _assemble(rows: Iterable) -> list[tuple[Task, dict]]:
    """Tasks from rows of a task joined to its reminders (`_REMINDER_COLUMNS`), a task's rows
    consecutive and in reminder order; each task with its first row (for a paging cursor)."""
    out: list[tuple[Task, dict]] = []
    current: dict | None = None
    found: list[Reminder] = []
    for row in rows:
        if current is None or row["id"] != current["id"]:
            if current is not None:
                out.append((_task(current, tuple(found)), current))
            current, found = row, []
        if row["reminder_id"] is not None:
            found.append(_reminder(row, "reminder_"))
    if current is not None:
        out.append((_task(current, tuple(found)), current))
    return out


def _reminder(row, prefix: str = "") -> Reminder:
    return Reminder(**{f: row[prefix + f] for f in _REMINDER_FIELDS})

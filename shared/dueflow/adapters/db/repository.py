"""Task storage on SQLAlchemy Core: rows <-> domain objects, list queries, search, tag counts."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dueflow.adapters.db import search
from dueflow.adapters.db.schema import (
    dead_letters,
    processed_commands,
    reminders,
    task_tags,
    tasks,
    users,
)
from dueflow.domain.errors import Conflict
from dueflow.domain.listing import ListQuery, SortKey, encode_cursor
from dueflow.domain.task import PRIORITIES, Recurrence, Reminder, Task
from dueflow.domain.timefmt import parse_instant

# Statements built once, values bound at execution, so SQLAlchemy compiles each once per process
# (`insert().values(**row)` built a new statement per call, with a bound value per column that
# its cache key then had to visit: the most expensive part of an INSERT on the Python side).
_INSERT_TASK = tasks.insert()
_UPDATE_TASK = tasks.update().where(tasks.c.id == sa.bindparam("task_id"))
_INSERT_TAG = task_tags.insert()
_INSERT_REMINDER = reminders.insert()
_CLAIM_COMMAND = processed_commands.insert()
_INSERT_USER = users.insert()
_REMINDER_FIELDS = ("position", "before", "at", "remind_at", "status", "emitted_at")


class TaskRepository:
    """Reads and writes whole task aggregates (task row, its tag rows, its reminder rows)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def get(self, user_id: str, task_id: str, *, for_update: bool = False) -> Task | None:
        stmt = sa.select(tasks).where(tasks.c.id == task_id, tasks.c.user_id == user_id)
        if for_update and self.conn.dialect.name == "postgresql":
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
        cols = {key.column: tasks.c[key.column] for key in query.keys}
        stmt = sa.select(tasks).where(
            tasks.c.user_id == user_id, tasks.c.status.in_(query.statuses)
        )
        stmt = stmt.where(*_filters(query, now, self.conn.dialect.name))
        if query.after is not None:
            stmt = stmt.where(_after(query.keys, cols, query.after))
        stmt = stmt.order_by(*(_order(key, cols[key.column]) for key in query.keys))
        rows = self.conn.execute(stmt.limit(query.limit + 1)).mappings().all()
        page = self._load(rows[: query.limit])
        cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            cursor = encode_cursor(query.sort, [last[key.column] for key in query.keys])
        return page, cursor

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
                by_task[r["task_id"]].append(
                    Reminder(
                        id=r["id"],
                        remind_at=r["remind_at"],
                        before=r["before"],
                        at=r["at"],
                        status=r["status"],
                        emitted_at=r["emitted_at"],
                    )
                )
        return [_task(row, tuple(by_task[row["id"]])) for row in rows]


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


class Users:
    def __init__(self, conn: Connection):
        self.conn = conn

    def remember(self, user_id: str, email: str | None, now: datetime) -> None:
        """Store the e-mail address from the user's token (reminders are mailed there), unless
        the user chose one in their profile."""
        current = self.conn.execute(
            sa.select(users.c.email, users.c.email_from_profile).where(users.c.id == user_id)
        ).first()
        if current is None:
            try:  # a user's first requests can race: the primary key settles it, not the read
                with self.conn.begin_nested():
                    self.conn.execute(
                        _INSERT_USER, {"id": user_id, "email": email, "updated_at": now}
                    )
                return
            except sa.exc.IntegrityError:
                current = self.conn.execute(
                    sa.select(users.c.email, users.c.email_from_profile).where(
                        users.c.id == user_id
                    )
                ).first()
        if email is not None and current.email != email and not current.email_from_profile:
            self.conn.execute(
                users.update().where(users.c.id == user_id).values(email=email, updated_at=now)
            )

    def email(self, user_id: str) -> str | None:
        return self.conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).scalar()

    def profile(self, user_id: str, *, for_update: bool = False) -> dict | None:
        """The user's profile (`email`, `timezone`), or None for a user never seen."""
        query = sa.select(users.c.email, users.c.timezone).where(users.c.id == user_id)
        row = self.conn.execute(query.with_for_update() if for_update else query).first()
        return None if row is None else {"email": row.email, "timezone": row.timezone}

    def update_profile(self, user_id: str, changes: dict, now: datetime) -> None:
        """Set profile fields; an `email` set here wins over later tokens' claims (None: the
        next token's claim sets it again)."""
        values = dict(changes, updated_at=now)
        if "email" in changes:
            values["email_from_profile"] = changes["email"] is not None
        self.conn.execute(users.update().where(users.c.id == user_id).values(**values))


@functools.cache
def _insert_with_children(with_tags: bool, with_reminders: bool) -> sa.Insert:
    """PostgreSQL: one INSERT statement for a task row and its tag rows, reminder rows or both:
    the task in a data-modifying CTE, the children from arrays (foreign keys are checked at the
    end of the statement, when the task row is there). Parameters: `_with_children_params`.

    Only the children the task has are in it: an unneeded branch costs the server its planning,
    and the statement is planned on every execution."""
    task = (
        tasks.insert()
        .values({c.name: sa.bindparam(c.name, type_=c.type) for c in tasks.c})
        .returning(tasks.c.id, tasks.c.user_id)
        .cte("new_task")
    )
    children: list[sa.Insert] = []
    if with_tags:
        tag = sa.func.unnest(_array("tag_names", task_tags.c.tag.type))
        tag = tag.table_valued("tag").render_derived()
        rows = sa.select(task.c.id, tag.c.tag, task.c.user_id)
        rows = rows.select_from(task.join(tag, sa.true()))
        children.append(task_tags.insert().from_select(["task_id", "tag", "user_id"], rows))
    if with_reminders:
        fields = ("id", *_REMINDER_FIELDS)
        reminder = sa.func.unnest(*(_array(f"reminder_{f}", reminders.c[f].type) for f in fields))
        reminder = reminder.table_valued(*fields).render_derived()
        rows = sa.select(task.c.id, task.c.user_id, *(reminder.c[f] for f in fields))
        rows = rows.select_from(task.join(reminder, sa.true()))
        children.append(reminders.insert().from_select(["task_id", "user_id", *fields], rows))
    last, *others = reversed(children)
    return last.add_cte(*(child.cte(f"new_{child.table.name}") for child in others))


def _array(name: str, item_type) -> sa.ColumnElement:
    return sa.cast(sa.bindparam(name, type_=sa.ARRAY(item_type)), sa.ARRAY(item_type))


def _with_children_params(task: Task) -> dict:
    params = _task_row(task)
    if task.tags:
        params["tag_names"] = list(task.tags)
    if task.reminders:
        rows = [{"id": r.id, **_reminder_row(i, r)} for i, r in enumerate(task.reminders)]
        for name in ("id", *_REMINDER_FIELDS):
            params[f"reminder_{name}"] = [row[name] for row in rows]
    return params


def _reminder_row(position: int, r: Reminder) -> dict:
    return {
        "position": position,
        "before": r.before,
        "at": r.at,
        "remind_at": r.remind_at,
        "status": r.status,
        "emitted_at": r.emitted_at,
    }


def _task_row(task: Task) -> dict:
    return {
        "id": task.id,
        "user_id": task.user_id,
        "title": task.title,
        "title_sort": task.title.casefold(),
        "description": task.description,
        "status": task.status,
        "priority": task.priority_rank,
        "tags": list(task.tags),
        "due_at": task.due_at,
        "timezone": task.timezone,
        "recurrence": task.recurrence.to_storage() if task.recurrence else None,
        "series_id": task.series_id,
        "occurrence": task.occurrence,
        "completed_at": task.completed_at,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }


def _task(row, task_reminders: tuple[Reminder, ...]) -> Task:
    rec = row["recurrence"]
    recurrence = None
    if rec is not None:
        exdates = tuple(parse_instant(d, "exdates") for d in rec.get("exdates", []))
        anchor = rec.get("anchor")
        recurrence = Recurrence(
            rec["rrule"],
            rec.get("basis", "due"),
            exdates,
            datetime.fromisoformat(anchor) if anchor else None,
            rec.get("index", 1),
        )
    return Task(
        id=row["id"],
        user_id=row["user_id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["description"],
        status=row["status"],
        priority=PRIORITIES[row["priority"]],
        tags=tuple(row["tags"]),
        due_at=row["due_at"],
        timezone=row["timezone"],
        recurrence=recurrence,
        reminders=task_reminders,
        series_id=row["series_id"],
        occurrence=row["occurrence"],
        completed_at=row["completed_at"],
    )


def _filters(query: ListQuery, now: datetime, dialect: str) -> list[sa.ColumnElement]:
    out: list[sa.ColumnElement] = []
    if query.words:
        out.append(search.matches(query.words, dialect))
    if query.priorities:
        out.append(tasks.c.priority.in_([PRIORITIES.index(p) for p in query.priorities]))
    for tag in query.tags:  # every tag must match
        out.append(sa.exists().where(task_tags.c.task_id == tasks.c.id, task_tags.c.tag == tag))
    if query.due_before is not None:
        out.append(tasks.c.due_at < query.due_before)
    if query.due_after is not None:
        out.append(tasks.c.due_at >= query.due_after)
    if query.overdue:
        out += [tasks.c.status == "open", tasks.c.due_at < now]
    return out


def _order(key: SortKey, col: sa.ColumnElement) -> sa.ColumnElement:
    ordered = col.desc() if key.descending else col.asc()
    return ordered.nulls_last() if key.nullable else ordered


def _after(keys: tuple[SortKey, ...], cols: dict, values: tuple) -> sa.ColumnElement:
    """Keyset predicate: rows strictly after `values` in the order `keys` (nulls last)."""
    clauses = []
    for i, key in enumerate(keys):
        strictly = _strictly_after(key, cols[key.column], values[i])
        if strictly is None:
            continue
        equal_before = [_equal(cols[k.column], values[j]) for j, k in enumerate(keys[:i])]
        clauses.append(sa.and_(*equal_before, strictly))
    return sa.or_(*clauses) if clauses else sa.false()


def _strictly_after(key: SortKey, col, value):
    if value is None:  # nothing sorts after null in this column (nulls are last)
        return None
    beyond = col < value if key.descending else col > value
    return sa.or_(beyond, col.is_(None)) if key.nullable else beyond


def _equal(col, value):
    return col.is_(None) if value is None else col == value

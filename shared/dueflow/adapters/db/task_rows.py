"""Task aggregates <-> rows of tasks, task_tags and reminders (and PostgreSQL's one-statement
insert of a task with its children)."""

from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa

from dueflow.adapters.db.schema import reminders, task_tags, tasks
from dueflow.domain.task import PRIORITIES, Recurrence, Reminder, Task
from dueflow.domain.timefmt import parse_instant

_REMINDER_FIELDS = ("position", "before", "at", "remind_at", "status", "emitted_at")


@functools.cache
def _insert_with_children(with_tags: bool, with_reminders: bool) -> sa.Insert:
    """PostgreSQL: one INSERT statement for a task row and its tag rows, reminder rows or both:
    the task in a data-modifying CTE, the children from arrays (foreign keys are checked at the
    end of the statement, when the task row is there). Parameters: `_with_children_params`.

    Only the children the task has are in it: an unneeded branch costs the server its planning,
    and the statement is planned on every execution."""
    task, *children = _task_inserts(with_tags, with_reminders)
    last, *others = reversed(children)
    return last.add_cte(task, *(child.cte(f"new_{child.table.name}") for child in others))


@functools.cache
def _task_ctes(with_tags: bool, with_reminders: bool) -> tuple[sa.CTE, ...]:
    """The statements of `_insert_with_children` as data-modifying CTEs, to put in front of
    another statement (the task's events, adapters/db/unit_of_work.py)."""
    task, *children = _task_inserts(with_tags, with_reminders)
    return (task, *(child.cte(f"new_{child.table.name}") for child in children))


@functools.cache
def _task_inserts(with_tags: bool, with_reminders: bool) -> tuple:
    """The task row's CTE and the INSERTs of the children the task has (see above)."""
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
    return (task, *children)


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

"""List queries: the page statement of a ListQuery (its filters, keyset paging: rows strictly
after a cursor in the query's order, nulls last, with the page's reminders joined), built once
per shape of query with every value bound at execution."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from dueflow.adapters.db import search
from dueflow.adapters.db.direct import DirectSelect
from dueflow.adapters.db.schema import reminders, task_tags, tasks
from dueflow.domain.listing import SORTS, ListQuery, SortKey
from dueflow.domain.task import PRIORITIES

# Building a page's statement cost more CPU than running it (a profile of GET /tasks: the page
# subquery's column collection, coercing every filter's value, its cache key), so the statement
# depends only on what decides its SQL text, `Shape`, and is built and compiled once per shape.
_SHAPES = 512  # sorts × which filters × how many tags...: far more than real traffic uses


@dataclass(frozen=True)
class Shape:
    """What decides a list query's SQL: which filters, how many values each, the sort, and
    which of the cursor's values are null (a null key has no `after` clause)."""

    dialect: str
    sort: str
    statuses: int
    words: int  # 0: no search; 1: one word; 2: more (the words before the last are matched whole)
    priorities: int
    tags: int
    due_before: bool
    due_after: bool
    overdue: bool
    after: tuple[bool, ...] | None  # per sort key: is the cursor's value null


def shape(query: ListQuery, dialect: str) -> Shape:
    return Shape(
        dialect,
        query.sort,
        len(query.statuses),
        min(len(query.words), 2),
        len(query.priorities),
        len(query.tags),
        query.due_before is not None,
        query.due_after is not None,
        query.overdue,
        None if query.after is None else tuple(v is None for v in query.after),
    )


def params(query: ListQuery, user_id: str, now: datetime, dialect: str) -> dict:
    """The values of `statement(shape(query, dialect))` for this query."""
    out: dict = {"user_id": user_id, "limit": query.limit + 1}  # one more: is there a next page
    out.update((f"status_in_{i}", s) for i, s in enumerate(query.statuses))
    out.update((f"priority_in_{i}", PRIORITIES.index(p)) for i, p in enumerate(query.priorities))
    out.update((f"tag_in_{i}", t) for i, t in enumerate(query.tags))
    if query.words:
        out.update(search.params(query.words, dialect))
    if query.due_before is not None:
        out["due_before"] = query.due_before
    if query.due_after is not None:
        out["due_after"] = query.due_after
    if query.overdue:
        out["now"] = now
    if query.after is not None:
        out.update((f"after_{i}", v) for i, v in enumerate(query.after) if v is not None)
    return out


@functools.lru_cache(maxsize=_SHAPES)
def statement(shape: Shape, reminder_columns: tuple) -> DirectSelect:
    """A page of tasks (one row more than asked) with their reminders (`reminder_columns`),
    in the page's order: each task's rows consecutive, its reminders in order. Run on the
    DB-API cursor (`DirectSelect`), compiled once."""
    keys = SORTS[shape.sort]
    cols = {key.column: tasks.c[key.column] for key in keys}
    stmt = sa.select(tasks).where(
        tasks.c.user_id == sa.bindparam("user_id"),
        tasks.c.status.in_([sa.bindparam(f"status_in_{i}") for i in range(shape.statuses)]),
        *_filters(shape),
    )
    if shape.after is not None:
        stmt = stmt.where(_after(keys, cols, shape.after))
    stmt = stmt.order_by(*(_order(key, cols[key.column]) for key in keys))
    page = stmt.limit(sa.bindparam("limit", type_=sa.Integer)).subquery("page")
    return DirectSelect(
        sa.select(page, *reminder_columns)
        .outerjoin(reminders, reminders.c.task_id == page.c.id)
        .order_by(*(_order(key, page.c[key.column]) for key in keys), reminders.c.position)
    )


def _filters(shape: Shape) -> list[sa.ColumnElement]:
    out: list[sa.ColumnElement] = []
    if shape.words:
        out.append(search.matches(shape.words > 1, shape.dialect))
    if shape.priorities:
        picked = [sa.bindparam(f"priority_in_{i}") for i in range(shape.priorities)]
        out.append(tasks.c.priority.in_(picked))
    for i in range(shape.tags):  # every tag must match
        tag = sa.bindparam(f"tag_in_{i}", type_=task_tags.c.tag.type)
        out.append(sa.exists().where(task_tags.c.task_id == tasks.c.id, task_tags.c.tag == tag))
    if shape.due_before:
        out.append(tasks.c.due_at < sa.bindparam("due_before"))
    if shape.due_after:
        out.append(tasks.c.due_at >= sa.bindparam("due_after"))
    if shape.overdue:
        out += [tasks.c.status == "open", tasks.c.due_at < sa.bindparam("now")]
    return out


def _order(key: SortKey, col: sa.ColumnElement) -> sa.ColumnElement:
    ordered = col.desc() if key.descending else col.asc()
    return ordered.nulls_last() if key.nullable else ordered


def _after(keys: tuple[SortKey, ...], cols: dict, nulls: tuple[bool, ...]) -> sa.ColumnElement:
    """Keyset predicate: rows strictly after the cursor's values (`after_<i>`, `nulls[i]` when
    null) in the order `keys` (nulls last)."""
    clauses = []
    for i, key in enumerate(keys):
        if nulls[i]:  # nothing sorts after null in this column (nulls are last)
            continue
        equal_before = [_equal(cols[k.column], j, nulls[j]) for j, k in enumerate(keys[:i])]
        clauses.append(sa.and_(*equal_before, _strictly_after(key, cols[key.column], i)))
    return sa.or_(*clauses) if clauses else sa.false()


def _strictly_after(key: SortKey, col, i: int):
    value = sa.bindparam(f"after_{i}", type_=col.type)
    beyond = col < value if key.descending else col > value
    return sa.or_(beyond, col.is_(None)) if key.nullable else beyond


def _equal(col, i: int, null: bool):
    return col.is_(None) if null else col == sa.bindparam(f"after_{i}", type_=col.type)

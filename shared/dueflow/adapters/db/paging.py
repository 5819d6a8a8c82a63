"""List queries: the filters of a ListQuery and keyset paging (rows strictly after a cursor in
the query's order, nulls last)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from dueflow.adapters.db import search
from dueflow.adapters.db.schema import task_tags, tasks
from dueflow.domain.listing import ListQuery, SortKey
from dueflow.domain.task import PRIORITIES


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

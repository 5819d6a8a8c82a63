"""Full-text search predicates: every word must match (stemmed); the last also as a prefix."""

from __future__ import annotations

import sqlalchemy as sa

from dueflow.adapters.db.schema import tasks


def matches(words: tuple[str, ...], dialect: str) -> sa.ColumnElement:
    """`words` are lower-cased \\w+ tokens (see listing.parse_list_query), so quoting is safe."""
    if dialect == "postgresql":
        return _postgres(words)
    return _sqlite(words)


def _sqlite(words: tuple[str, ...]) -> sa.ColumnElement:
    *head, last = words
    stemmed = " AND ".join(f'"{w}"' for w in words)
    whole = sa.text("SELECT task_id FROM tasks_fts WHERE tasks_fts MATCH :whole")
    prefix = sa.text("SELECT task_id FROM tasks_fts_prefix WHERE tasks_fts_prefix MATCH :prefix")
    found = tasks.c.id.in_(whole.bindparams(whole=stemmed).columns(task_id=tasks.c.id.type))
    by_prefix = tasks.c.id.in_(
        prefix.bindparams(prefix=f'"{last}"*').columns(task_id=tasks.c.id.type)
    )
    if head:
        rest = " AND ".join(f'"{w}"' for w in head)
        head_q = sa.text("SELECT task_id FROM tasks_fts WHERE tasks_fts MATCH :head")
        by_prefix = sa.and_(
            tasks.c.id.in_(head_q.bindparams(head=rest).columns(task_id=tasks.c.id.type)), by_prefix
        )
    return sa.or_(found, by_prefix)


def _postgres(words: tuple[str, ...]) -> sa.ColumnElement:
    search = sa.literal_column("tasks.search")
    *head, last = words
    query = sa.func.plainto_tsquery("english", " ".join(head)) if head else None
    last_q = sa.func.to_tsquery("english", last).op("||")(sa.func.to_tsquery("simple", f"{last}:*"))
    full = last_q if query is None else query.op("&&")(last_q.self_group())
    return search.op("@@")(full)

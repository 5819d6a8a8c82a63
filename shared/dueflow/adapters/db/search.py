"""Full-text search predicates: every word must match (stemmed); the last also as a prefix.

The predicate depends only on whether there are words before the last (`head`); the words
themselves are bound at execution (`params`), so a statement with it is built once."""

from __future__ import annotations

import sqlalchemy as sa

from dueflow.adapters.db.schema import tasks


def matches(head: bool, dialect: str) -> sa.ColumnElement:
    """The predicate; its values are `params(words, dialect)`."""
    if dialect == "postgresql":
        return _postgres(head)
    return _sqlite(head)


def params(words: tuple[str, ...], dialect: str) -> dict[str, str]:
    """`words` are lower-cased \\w+ tokens (see listing.parse_list_query), so quoting is safe."""
    *head, last = words
    if dialect == "postgresql":
        out = {"q_last": last, "q_prefix": f"{last}:*"}
        if head:
            out["q_head"] = " ".join(head)
        return out
    out = {"q_whole": " AND ".join(f'"{w}"' for w in words), "q_prefix": f'"{last}"*'}
    if head:
        out["q_head"] = " AND ".join(f'"{w}"' for w in head)
    return out


def _sqlite(head: bool) -> sa.ColumnElement:
    whole = sa.text("SELECT task_id FROM tasks_fts WHERE tasks_fts MATCH :q_whole")
    prefix = sa.text("SELECT task_id FROM tasks_fts_prefix WHERE tasks_fts_prefix MATCH :q_prefix")
    found = tasks.c.id.in_(whole.columns(task_id=tasks.c.id.type))
    by_prefix = tasks.c.id.in_(prefix.columns(task_id=tasks.c.id.type))
    if head:
        head_q = sa.text("SELECT task_id FROM tasks_fts WHERE tasks_fts MATCH :q_head")
        by_prefix = sa.and_(tasks.c.id.in_(head_q.columns(task_id=tasks.c.id.type)), by_prefix)
    return sa.or_(found, by_prefix)


def _postgres(head: bool) -> sa.ColumnElement:
    search = sa.literal_column("tasks.search")
    text = sa.String()
    last_q = sa.func.to_tsquery("english", sa.bindparam("q_last", type_=text)).op("||")(
        sa.func.to_tsquery("simple", sa.bindparam("q_prefix", type_=text))
    )
    if not head:
        return search.op("@@")(last_q)
    query = sa.func.plainto_tsquery("english", sa.bindparam("q_head", type_=text))
    return search.op("@@")(query.op("&&")(last_q.self_group()))

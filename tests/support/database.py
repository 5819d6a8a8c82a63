"""Emptying a migrated test database between tests: every table of the schema's metadata (so a
new table is cleaned without a list to keep up), children before parents, Alembic's version kept."""

from __future__ import annotations

from dueflow.adapters.db.engine import make_engine
from dueflow.adapters.db.schema import metadata


def empty_tables(url: str) -> None:
    """Delete every row of every table dueflow's schema defines, in one transaction."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
    finally:
        engine.dispose()

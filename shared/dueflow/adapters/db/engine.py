"""Engines for SQLite (embedded default) and PostgreSQL, and applying migrations."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

#: Execution option that marks a connection as one that will write (see `writer`).
WRITE = "dueflow_write"
_MIGRATION_LOCK = 7_204_183  # arbitrary constant: the PostgreSQL advisory lock id for migrations


def make_engine(url: str) -> Engine:
    """An engine tuned for the dialect: WAL and immediate write transactions on SQLite."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, flagged so SQLite starts its transactions with BEGIN IMMEDIATE."""
    return engine.execution_options(**{WRITE: True})


def _sqlite_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is deferred).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn) -> None:
    # A deferred transaction that later writes can fail with SQLITE_BUSY without waiting for the
    # busy timeout; taking the write lock up front makes concurrent writers queue instead.
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def migrate(engine: Engine) -> None:
    """Apply every Alembic migration, once even when several processes start together."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(__file__), "migrations"))
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def main() -> None:
    """`python -m dueflow.adapters.db.engine`: migrate DATABASE_URL (for a deploy hook Job)."""
    from dueflow import config

    migrate(make_engine(config.database_url()))


if __name__ == "__main__":
    main()

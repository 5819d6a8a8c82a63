"""Engines for SQLite (embedded default) and PostgreSQL, and applying migrations."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from dueflow.adapters.db.direct import raise_as_sqlalchemy

#: Execution option that marks a connection as one that will write (see `writer`).
WRITE = "dueflow_write"
_MIGRATION_LOCK = 7_204_183  # arbitrary constant: the PostgreSQL advisory lock id for migrations
#: Seconds after which a pooled server connection is replaced: below the idle timeouts that
#: proxies, NATs and managed databases commonly apply, so the pool rarely hands out a dead one.
POOL_RECYCLE_S = 1800.0
#: A pooled connection idle for longer than this is pinged (SELECT 1) before it is handed out.
PING_IDLE_AFTER_S = 10.0
_IDLE_SINCE = "dueflow_idle_since"
_WRITER = "_dueflow_writer"


def make_engine(
    url: str,
    *,
    pool_recycle: float = POOL_RECYCLE_S,
    ping_idle_after: float = PING_IDLE_AFTER_S,
) -> Engine:
    """An engine tuned for the dialect: WAL and immediate write transactions on SQLite; on a
    database server, a pool that pings a connection only after it sat idle (see `_idle_ping`)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, pool_recycle=pool_recycle)
        event.listen(engine, "checkin", _checkin)
        event.listen(engine, "checkout", _idle_ping(engine.dialect, ping_idle_after))
        return engine
    pool: dict = {}
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # as many kept connections as a server's pool: with SQLAlchemy's default of 5, a worker's
        # 8 request threads opened (and closed) a connection, PRAGMAs and all, for 2% of reads
        pool = {"pool_size": 10, "max_overflow": 20}
    from dueflow.adapters.db.write_queue import QueuedConnection  # imports sqlite3: here only

    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30, "factory": QueuedConnection},
        **pool,
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine, flagged so SQLite starts its transactions with BEGIN IMMEDIATE.

    Built once per engine: `execution_options` makes a new engine object each call, a cost that
    every write request paid (10-15 µs)."""
    flagged = vars(engine).get(_WRITER)
    if flagged is None:  # two threads may both build one here: harmless, they are equivalent
        flagged = engine.execution_options(**{WRITE: True})
        setattr(engine, _WRITER, flagged)  # a reference cycle the collector frees with the engine
    return flagged


def read_only(conn: Connection) -> None:
    """Run `conn`'s statements each on its own (autocommit) until it goes back to the pool, on a
    database server: a one-statement read is then its statement's round trip alone, without a
    BEGIN before it and a ROLLBACK after. What a reader sees is unchanged: under READ COMMITTED,
    PostgreSQL's default, each statement sees its own snapshot inside a transaction too. SQLite
    keeps its transactions (no round trips there; a WAL read wants one snapshot).

    The driver's flag, not SQLAlchemy's isolation_level="AUTOCOMMIT": resetting that on the way
    back to the pool sends a SET, a round trip; `_checkin` clears the flag without one."""
    if conn.dialect.name != "sqlite":
        conn.connection.dbapi_connection.autocommit = True


# How a server connection that died (server restart, failover, an idle timeout somewhere) is
# recovered without `pool_pre_ping`, whose SELECT 1 was a round trip on every request:
# * a connection idle for more than `ping_idle_after` seconds is pinged when checked out; if the
#   ping fails, the pool discards it and connects anew (up to three tries). So after a quiet
#   spell no request meets a dead connection, and /readyz answers as it did with the pre-ping;
# * a connection used moments ago is handed out unchecked. If its server went away meanwhile, the
#   statement fails with a disconnect error, the API answers 503 with Retry-After: 1 and
#   SQLAlchemy discards every connection of the pool made before the error, so the next requests
#   connect anew. What a restart under load costs, beyond the requests in flight (lost either
#   way), is the requests that took a dead connection before the first error: at most one per
#   request thread, usually one per process;
# * `pool_recycle` replaces connections older than that on checkout.


def _checkin(dbapi_connection, record) -> None:
    """Back in the pool: idle from now on, and in transactions again (see `read_only`)."""
    record.info[_IDLE_SINCE] = time.monotonic()
    if dbapi_connection is not None and getattr(dbapi_connection, "autocommit", False):
        dbapi_connection.autocommit = False  # psycopg2: a flag, no round trip


def _idle_ping(dialect, idle_after: float):
    def ping_if_idle(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < idle_after:
            return  # a new connection, or one in use moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # the pool invalidates this connection and checks out another
            raise sa.exc.DisconnectionError(f"pooled connection failed its ping: {exc}") from exc

    return ping_if_idle


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
    # Sent on the DB-API connection: through `exec_driver_sql` it cost every SQLite request
    # 45 µs of CPU in SQLAlchemy's execution machinery, for a statement with no result.
    immediate = conn.get_execution_options().get(WRITE, False)
    sql = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    dbapi_connection = conn.connection.dbapi_connection
    try:
        if immediate and hasattr(dbapi_connection, "begin_write"):  # write_queue's connection
            dbapi_connection.begin_write()  # BEGIN IMMEDIATE in this process's turn
        else:
            dbapi_connection.execute(sql)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise_as_sqlalchemy(conn, exc, sql, ())


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

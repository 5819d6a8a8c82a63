"""Hot SELECTs run on the DB-API cursor: compiled once per dialect, their values and rows
converted by SQLAlchemy's own type processors, their errors raised as SQLAlchemy's, and the
engine's `before_cursor_execute` / `after_cursor_execute` listeners called as for any statement.

What it skips is SQLAlchemy's execution context and result objects, about 70 µs of CPU per
statement (measured: a GET's statement 150-170 µs through `Connection.execute`, 82 µs on the
cursor, PostgreSQL; 85 vs 5 µs on SQLite), the largest single cost of a read request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect


class Compiled:
    """`stmt` compiled for one dialect: its SQL text, how to bind a request's values, and (after
    its first execution, which shows the driver's column types) how to convert its rows."""

    def __init__(self, stmt: sa.Select, dialect: Dialect):
        compiled = stmt.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("expanding or literal parameters: run it through SQLAlchemy")
        self.sql = compiled.string
        self.keys = tuple(stmt.selected_columns.keys())
        self._compiled = compiled
        self._positions = compiled.positiontup if compiled.positional else None
        self._binders = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        self._types = [c.type for c in stmt.selected_columns]
        self._dialect = dialect
        self._converters: list[tuple[int, str, Callable]] | None = None

    def parameters(self, values: Mapping[str, Any]) -> dict | tuple:
        """The driver's parameters: `values` with the statement's literals, each converted."""
        params = self._compiled.construct_params(values)
        for name, processor in self._binders.items():
            params[name] = processor(params[name])
        if self._positions is None:
            return params
        return tuple(params[name] for name in self._positions)

    def rows(self, cursor) -> list[dict]:
        """The cursor's rows as dicts by column key, each value as SQLAlchemy would return it."""
        converters = self._converters
        if converters is None:  # the driver's column types are known once it answered
            converters = self._converters = [
                (i, key, convert)
                for i, (key, t, d) in enumerate(
                    zip(self.keys, self._types, cursor.description, strict=True)
                )
                if (convert := t.dialect_impl(self._dialect).result_processor(self._dialect, d[1]))
            ]
        keys = self.keys
        out = []
        for row in cursor.fetchall():
            found = dict(zip(keys, row, strict=True))
            for i, key, convert in converters:  # only the columns that need it, not NULLs
                if (value := row[i]) is not None:
                    found[key] = convert(value)
            out.append(found)
        return out


class DirectSelect:
    """A SELECT built once, executed on the connection's DB-API cursor (see the module)."""

    def __init__(self, stmt: sa.Select):
        self.stmt = stmt
        self._by_dialect: dict[str, Compiled] = {}
        self._lock = threading.Lock()

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            with self._lock:
                found = self._by_dialect.get(dialect.name)
                if found is None:
                    found = self._by_dialect[dialect.name] = Compiled(self.stmt, dialect)
        return found

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[dict]:
        """Its rows for `values` on `conn` (in `conn`'s transaction, if one is open)."""
        compiled = self.compiled(conn.dialect)
        params = compiled.parameters(values)
        dbapi_connection = conn.connection.dbapi_connection
        cursor = None
        try:
            cursor = dbapi_connection.cursor()
            if (setup := _CURSOR_SETUP.get(conn.dialect.driver)) is not None:
                setup(cursor)
            events = conn._has_events or conn.engine._has_events
            if events:  # listeners see it as any statement (tests count round trips so)
                conn.dispatch.before_cursor_execute(conn, cursor, compiled.sql, params, None, False)
            cursor.execute(compiled.sql, params)
            if events:
                conn.dispatch.after_cursor_execute(conn, cursor, compiled.sql, params, None, False)
            return compiled.rows(cursor)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise_as_sqlalchemy(conn, exc, compiled.sql, params, cursor)
        finally:
            if cursor is not None:
                cursor.close()


def _psycopg2_uuids_as_text(cursor) -> None:
    """UUID columns as the server's text: psycopg2 makes each a `uuid.UUID` (a Python call per
    value, 1-2 µs) that SQLAlchemy's `Uuid(as_uuid=False)` then turns back into that text."""
    import psycopg2.extensions

    global _UUID_AS_TEXT
    if _UUID_AS_TEXT is None:
        _UUID_AS_TEXT = psycopg2.extensions.new_type((2950,), "UUID_AS_TEXT", _text)
    psycopg2.extensions.register_type(_UUID_AS_TEXT, cursor)


def _text(value: str | None, _cursor) -> str | None:
    return value


_UUID_AS_TEXT = None  # psycopg2's type caster, made on first use (psycopg2 may be absent)
_CURSOR_SETUP: dict[str, Callable] = {"psycopg2": _psycopg2_uuids_as_text}


def raise_as_sqlalchemy(
    conn: Connection, exc: Exception, sql: str, params, cursor=None
) -> NoReturn:
    """Raise the driver's `exc` as SQLAlchemy does for its own statements: the same exception
    classes (an OperationalError answers 503), and a lost server discards the pool's connections.
    (`_handle_dbapi_exception` is SQLAlchemy's own handler; it always raises.)"""
    conn._handle_dbapi_exception(exc, sql, params, cursor, None)
    raise exc  # not reached

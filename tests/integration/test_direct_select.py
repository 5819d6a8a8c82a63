"""A SELECT run on the DB-API cursor (`DirectSelect`) answers what SQLAlchemy's own execution
answers, value for value, and fails as it fails."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import psycopg2
import pytest
import sqlalchemy as sa

from dueflow.adapters.db.direct import DirectSelect
from dueflow.adapters.db.engine import make_engine, read_only, writer
from dueflow.adapters.db.schema import reminders, tasks
from dueflow.adapters.db.task_store import _REMINDER_COLUMNS, TaskRepository
from dueflow.domain.task import Recurrence, Reminder, Task

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def _stored(engine) -> list[Task]:
    due = NOW + timedelta(days=1)
    every_kind = [
        Task(id=str(uuid.uuid4()), user_id="alice", title="Bare", created_at=NOW, updated_at=NOW),
        Task(
            id=str(uuid.uuid4()),
            user_id="alice",
            title="Water the plants",
            description="Balcony",
            priority="high",
            tags=("home", "garden"),
            due_at=due,
            timezone="Europe/Berlin",
            recurrence=Recurrence("FREQ=DAILY", "due", (NOW + timedelta(days=3),), due, 2),
            series_id=str(uuid.uuid4()),
            occurrence=2,
            reminders=(
                Reminder(str(uuid.uuid4()), due - timedelta(hours=1), before="PT1H"),
                Reminder(str(uuid.uuid4()), NOW, at=NOW, status="sent", emitted_at=NOW),
            ),
            created_at=NOW,
            updated_at=NOW,
        ),
    ]
    with writer(engine).begin() as conn:
        for task in every_kind:
            TaskRepository(conn).add(task)
    return every_kind


def test_rows_are_sqlalchemys_rows_value_for_value(engine):
    _stored(engine)
    stmt = (
        sa.select(tasks, *_REMINDER_COLUMNS)
        .outerjoin(reminders, reminders.c.task_id == tasks.c.id)
        .where(tasks.c.user_id == sa.bindparam("user_id"), tasks.c.status == "open")
        .order_by(tasks.c.title, reminders.c.position)
    )
    direct = DirectSelect(stmt)
    with engine.connect() as conn:
        read_only(conn)
        expected = [dict(row) for row in conn.execute(stmt, {"user_id": "alice"}).mappings()]
        for _ in range(2):  # the first run learns the driver's column types, the second uses them
            got = direct.rows(conn, {"user_id": "alice"})
            assert got == expected
            assert [{k: type(v) for k, v in r.items()} for r in got] == [
                {k: type(v) for k, v in r.items()} for r in expected
            ]
    assert len(expected) == 3  # the bare task, and the other one once per reminder
    assert expected[0]["due_at"] is None and expected[1]["due_at"].tzinfo is not None


def test_a_bound_value_is_converted_as_sqlalchemy_converts_it(engine):
    """Time values (UTCDateTime: UTC, naive text on SQLite) and ids (hex on SQLite) reach the
    driver as SQLAlchemy would send them, so the comparison finds the same rows."""
    bare, planned = _stored(engine)
    stmt = sa.select(tasks.c.id).where(
        tasks.c.due_at >= sa.bindparam("after", type_=tasks.c.due_at.type),
        tasks.c.id == sa.bindparam("id", type_=tasks.c.id.type),
    )
    berlin = planned.due_at.astimezone(timezone(timedelta(hours=1)))  # UTC+1, the same instant
    with engine.connect() as conn:
        assert DirectSelect(stmt).rows(conn, {"after": berlin, "id": planned.id}) == [
            {"id": planned.id}
        ]
        assert DirectSelect(stmt).rows(conn, {"after": berlin, "id": bare.id}) == []


def test_a_driver_error_is_raised_as_sqlalchemys_and_listeners_see_the_statement(engine):
    missing = sa.table("no_such_table", sa.column("id"))
    direct = DirectSelect(sa.select(missing.c.id).where(missing.c.id == sa.bindparam("id")))
    seen: list[str] = []
    with engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", lambda *args: seen.append(args[2]))
        with pytest.raises(sa.exc.DBAPIError) as raised:
            direct.rows(conn, {"id": 1})
    assert isinstance(raised.value.orig, engine.dialect.loaded_dbapi.Error)
    assert raised.value.statement == direct.compiled(engine.dialect).sql
    assert seen == [direct.compiled(engine.dialect).sql]


def test_a_lost_server_fails_once_as_with_sqlalchemy_then_the_pool_recovers(postgres):
    """A read whose server connection died answers OperationalError (the API: 503, Retry-After)
    and discards the pool's connections, as a statement through SQLAlchemy does."""
    engine = make_engine(postgres.url)
    backend_pid = DirectSelect(sa.select(sa.func.pg_backend_pid().label("pid")))
    try:
        with engine.connect() as a, engine.connect() as b:  # two pooled connections
            pids = [backend_pid.rows(c, {})[0]["pid"] for c in (a, b)]
        admin = psycopg2.connect(postgres.url.replace("postgresql+psycopg2", "postgresql"))
        admin.autocommit = True
        with admin.cursor() as cur:
            for pid in pids:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        admin.close()
        with pytest.raises(sa.exc.OperationalError) as failed, engine.connect() as conn:
            backend_pid.rows(conn, {})
        assert failed.value.connection_invalidated
        with engine.connect() as conn:  # the other dead connection is not handed out
            assert backend_pid.rows(conn, {})[0]["pid"] not in pids
    finally:
        engine.dispose()

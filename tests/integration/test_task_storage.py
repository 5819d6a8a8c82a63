"""A task is stored whole (task row, tag rows, reminder rows) and read back as it was written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dueflow.adapters.db.engine import writer
from dueflow.adapters.db.task_store import TaskRepository
from dueflow.domain.task import Recurrence, Reminder, Task

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def _id() -> str:
    return str(uuid.uuid4())


def _task(**fields) -> Task:
    fields = {"title": "Water the plants", "created_at": NOW, "updated_at": NOW, **fields}
    return Task(id=_id(), user_id="alice", **fields)


def _recurring(occurrence: int = 1, series_id: str | None = None, **fields) -> Task:
    due = NOW + timedelta(days=1)
    return _task(
        due_at=due,
        timezone="Europe/Berlin",
        recurrence=Recurrence("FREQ=DAILY", "due", (NOW + timedelta(days=3),), due, occurrence),
        series_id=series_id or _id(),
        occurrence=occurrence,
        **fields,
    )


def _rows(engine, table: str, user_id: str = "alice") -> list[tuple]:
    with engine.connect() as conn:
        return conn.execute(
            sa.text(f"SELECT * FROM {table} WHERE user_id = :u ORDER BY 1, 2"), {"u": user_id}
        ).all()


@pytest.mark.parametrize(
    "task",
    [
        _task(),
        _task(description="Balcony", priority="high", tags=("home", "garden")),
        _recurring(
            tags=("home",),
            reminders=(
                Reminder(_id(), NOW + timedelta(hours=23), before="PT1H"),
                Reminder(_id(), NOW + timedelta(hours=2), at=NOW + timedelta(hours=2)),
                Reminder(_id(), NOW, at=NOW, status="sent", emitted_at=NOW),
            ),
        ),
        _task(reminders=(Reminder(_id(), NOW, at=NOW),)),  # every `before` null
    ],
    ids=["bare", "tags", "recurring-with-reminders", "absolute-reminder"],
)
def test_a_task_is_read_back_as_it_was_added(engine, task):
    with writer(engine).begin() as conn:
        TaskRepository(conn).add(task)
    with engine.connect() as conn:
        assert TaskRepository(conn).get("alice", task.id) == task
    assert sorted(r.tag for r in _rows(engine, "task_tags")) == sorted(task.tags)
    assert len(_rows(engine, "reminders")) == len(task.reminders)


def test_a_repeated_series_occurrence_adds_nothing(engine):
    first = _recurring(tags=("home",), reminders=(Reminder(_id(), NOW, before="P1D"),))
    again = _recurring(
        series_id=first.series_id, tags=("work",), reminders=(Reminder(_id(), NOW, before="PT1H"),)
    )
    with writer(engine).begin() as conn:
        repo = TaskRepository(conn)
        assert repo.add_if_absent(first) is True
        assert repo.add_if_absent(again) is False
        assert repo.add_if_absent(_recurring(2, first.series_id)) is True
    assert [r.tag for r in _rows(engine, "task_tags")] == ["home"]
    assert [r.before for r in _rows(engine, "reminders")] == ["P1D"]


@pytest.mark.parametrize(
    "children",
    [
        {},
        {"tags": ("a", "b")},
        {"reminders": (Reminder(_id(), NOW, at=NOW),)},
        {"tags": ("a",), "reminders": (Reminder(_id(), NOW, before="PT1H"),)},
    ],
    ids=["bare", "tags", "reminders", "both"],
)
def test_postgresql_adds_a_task_in_one_statement(engine, children):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs in-process: a statement is not a round trip there")
    statements: list[str] = []
    task = _task(due_at=NOW + timedelta(days=1), **children)
    with writer(engine).begin() as conn:
        sa.event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        TaskRepository(conn).add(task)
    assert len(statements) == 1
    with engine.connect() as conn:
        assert TaskRepository(conn).get("alice", task.id) == task
    assert len(_rows(engine, "task_tags")) == len(task.tags)

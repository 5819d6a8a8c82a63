"""A task is stored whole (task row, tag rows, reminder rows) and read back as it was written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dueflow.adapters.db import paging
from dueflow.adapters.db.engine import writer
from dueflow.adapters.db.task_store import TaskRepository
from dueflow.adapters.db.unit_of_work import UnitOfWork
from dueflow.domain.listing import parse_list_query
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


def _with_reminders(count: int, **fields) -> Task:
    """A task with `count` reminders, in an order their ids do not sort in."""
    ids = sorted((_id() for _ in range(count)), reverse=True)
    return _task(
        reminders=tuple(
            Reminder(rid, NOW + timedelta(hours=i), at=NOW + timedelta(hours=i))
            for i, rid in enumerate(ids)
        ),
        **fields,
    )


def test_a_read_is_one_statement_with_the_reminders_in_order(engine):
    """get and a list page each read tasks with their reminders in one statement (one round
    trip on PostgreSQL): every task whole, reminders in their order, pages as before."""
    added = [
        _with_reminders(i % 4, due_at=NOW + timedelta(days=i), tags=("home",) * (i % 2))
        for i in range(7)
    ]
    with writer(engine).begin() as conn:
        for task in added:
            TaskRepository(conn).add(task)
    statements: list[str] = []
    pages: list[list[Task]] = []
    with engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        repo = TaskRepository(conn)
        assert [repo.get("alice", t.id) for t in added] == added
        assert repo.get("bob", added[0].id) is None  # another user's task is not found
        args: dict[str, list[str]] = {"sort": ["due_at"], "limit": ["3"]}
        while True:
            page, cursor = repo.list("alice", parse_list_query(args), NOW)
            pages.append(page)
            if cursor is None:
                break
            args["cursor"] = [cursor]
    assert len([s for s in statements if s != "BEGIN"]) == len(added) + 1 + len(pages)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [t for p in pages for t in p] == added


def test_read_units_of_work_are_one_round_trip_on_postgresql(engine):
    """A read-only unit of work sends its statement alone: no BEGIN before, no ROLLBACK after;
    a writing one keeps its transaction."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs in-process, and its reads keep one snapshot per transaction")
    task = _with_reminders(2)
    with writer(engine).begin() as conn:
        TaskRepository(conn).add(task)
    with UnitOfWork(engine, write=False) as uow:
        assert uow.tasks.get("alice", task.id) == task
        assert uow.conn.connection.dbapi_connection.autocommit is True
    with UnitOfWork(engine, write=True) as uow:
        assert uow.conn.connection.dbapi_connection.autocommit is False
        uow.tasks.add(_task())
    assert len(_rows(engine, "tasks")) == 1  # left without commit: rolled back


def test_list_queries_of_one_shape_share_one_statement_with_their_values_bound(engine):
    """A list or search page's statement is built once per shape of query (which filters, how
    many values, the sort, the cursor's nulls); each query's own values are bound, so pages of
    one shape but other values find their own tasks, and the SQL text is the same."""
    home = _task(title="Water the plants", tags=("home",), priority="high", due_at=NOW)
    work = _task(title="Write the report", tags=("work",), priority="low", due_at=NOW)
    with writer(engine).begin() as conn:
        for task in (home, work):
            TaskRepository(conn).add(task)
    statements: list[str] = []
    built = paging.statement.cache_info()
    with engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        repo = TaskRepository(conn)

        def titles(**args: str) -> list[str]:
            query = parse_list_query({k: [v] for k, v in args.items()})
            return [t.title for t in repo.list("alice", query, NOW)[0]]

        assert titles(tag="home", priority="high", q="plant") == ["Water the plants"]
        assert titles(tag="work", priority="low", q="repo") == ["Write the report"]
        assert titles(tag="work", priority="high", q="repo") == []
        assert titles(q="water plan") == ["Water the plants"]  # another shape: two words
        assert titles(q="write rep") == ["Write the report"]
    reused = paging.statement.cache_info()
    assert reused.misses - built.misses <= 2 and reused.hits - built.hits >= 3  # 2 shapes
    pages = [s for s in statements if s != "BEGIN"]
    assert len(pages) == 5
    assert pages[0] == pages[1] == pages[2] and pages[3] == pages[4] != pages[0]
    assert "plant" not in " ".join(pages) and "home" not in " ".join(pages)


def test_a_new_task_with_its_events_is_one_statement_and_all_or_nothing(engine):
    """UnitOfWork.add_task (a create): the task's rows, its events' outbox rows and their change
    log rows in one autocommitted statement on PostgreSQL (no BEGIN, no COMMIT), in the events'
    order; a failing one writes none of them, and the pooled connection is in transactions again.
    """
    from dueflow.domain import events

    task = _task(tags=("home",), reminders=(Reminder(_id(), NOW, before="PT1H"),))
    sent = [events.task_event(t, task, NOW) for t in (events.TASK_CREATED, events.TASK_UPDATED)]
    statements: list[str] = []
    with UnitOfWork(engine, write=True) as uow:
        sa.event.listen(uow.conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        uow.add_task(task, sent, NOW)
        uow.commit()
    if engine.dialect.name == "postgresql":
        assert len(statements) == 1
    with engine.connect() as conn:
        assert TaskRepository(conn).get("alice", task.id) == task
        outbox = conn.execute(sa.text("SELECT event_id FROM outbox ORDER BY seq")).scalars()
        changes = conn.execute(sa.text("SELECT event_id FROM task_changes ORDER BY id")).scalars()
        assert list(outbox) == list(changes) == [e["id"] for e in sent]

    again = [events.task_event(events.TASK_CREATED, task, NOW)]  # the same id: a conflict
    with pytest.raises(sa.exc.IntegrityError), UnitOfWork(engine, write=True) as uow:
        uow.add_task(task, again, NOW)
        uow.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar() == 2
        assert conn.execute(sa.text("SELECT count(*) FROM task_changes")).scalar() == 2
    with UnitOfWork(engine, write=True) as uow:  # the next unit has its transaction
        uow.tasks.add(_task())
        if engine.dialect.name == "postgresql":
            assert uow.conn.connection.dbapi_connection.autocommit is False
    assert len(_rows(engine, "tasks")) == 1  # left without commit: rolled back


def test_a_new_task_after_a_claim_and_with_its_jobs_is_the_same_one_statement_in_the_unit(engine):
    """The same create when the unit ran something before (a command's dedupe claim) and a job
    relay runs (reminders scheduled as jobs): on PostgreSQL still one statement for the task, its
    jobs' commands and its events, now inside the unit's transaction; the jobs' commands come
    before the events; and a failing statement undoes the claim too."""
    from dueflow.domain import events
    from dueflow.domain.reminder_jobs import JOB_PUT

    def unit() -> UnitOfWork:
        return UnitOfWork(engine, write=True, reminder_jobs=lambda conn: True, clock=lambda: NOW)

    task = _task(reminders=(Reminder(_id(), NOW + timedelta(hours=1), before="PT1H"),))
    sent = [events.task_event(events.TASK_CREATED, task, NOW)]
    statements: list[str] = []
    with unit() as uow:
        sa.event.listen(uow.conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert uow.commands.claim("test", "command-1", NOW)
        claimed = len(statements)
        uow.add_task(task, sent, NOW)
        uow.commit()
    if engine.dialect.name == "postgresql":
        assert len(statements) - claimed == 1
    with engine.connect() as conn:
        assert TaskRepository(conn).get("alice", task.id) == task
        outbox = conn.execute(sa.text("SELECT event_type FROM outbox ORDER BY seq")).scalars()
        assert list(outbox) == [JOB_PUT, events.TASK_CREATED]
        changes = conn.execute(sa.text("SELECT event_id FROM task_changes")).scalars()
        assert list(changes) == [sent[0]["id"]]

    with pytest.raises(sa.exc.IntegrityError), unit() as uow:  # the same task id again
        assert uow.commands.claim("test", "command-2", NOW)
        uow.add_task(task, [events.task_event(events.TASK_CREATED, task, NOW)], NOW)
        uow.commit()
    with engine.connect() as conn:
        claims = conn.execute(sa.text("SELECT event_id FROM processed_commands")).scalars()
        assert list(claims) == ["command-1"]  # the failed unit's claim is gone with it
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar() == 2

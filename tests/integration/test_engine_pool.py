"""PostgreSQL connection pool: no ping on a busy connection, a ping after an idle spell, and
recovery when the server side of pooled connections goes away."""

from __future__ import annotations

import psycopg2
import pytest
import sqlalchemy as sa

from dueflow.adapters.db.engine import make_engine, writer

BACKEND_PID = sa.text("SELECT pg_backend_pid()")


@pytest.fixture
def make(postgres):
    engines: list[sa.Engine] = []

    def make_counted(**options) -> tuple[sa.Engine, list[int]]:
        engine = make_engine(postgres.url, **options)
        pings: list[int] = []
        real_ping = engine.dialect.do_ping

        def counting_ping(dbapi_connection):
            pings.append(1)
            return real_ping(dbapi_connection)

        engine.dialect.do_ping = counting_ping
        engines.append(engine)
        return engine, pings

    yield make_counted
    for engine in engines:
        engine.dispose()


def _pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(BACKEND_PID).scalar_one()


def _terminate(postgres, *pids: int) -> None:
    """What a server restart, a failover or an idle timeout does to pooled connections."""
    conn = psycopg2.connect(postgres.url.replace("postgresql+psycopg2", "postgresql"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for pid in pids:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        conn.close()


def test_a_connection_in_use_moments_ago_is_not_pinged(make):
    engine, pings = make()
    pid = _pid(engine)
    assert [_pid(engine) for _ in range(5)] == [pid] * 5  # the same pooled connection
    assert pings == []


def test_an_idle_connection_is_pinged_and_replaced_when_dead(make, postgres):
    engine, pings = make(ping_idle_after=0.0)  # every reused connection counts as idle
    dead = _pid(engine)
    _terminate(postgres, dead)
    assert _pid(engine) != dead
    assert pings == [1]


def test_only_the_first_use_after_the_server_dropped_busy_connections_fails(make, postgres):
    engine, pings = make()
    with engine.connect() as a, engine.connect() as b:  # two pooled connections
        pids = [c.execute(BACKEND_PID).scalar_one() for c in (a, b)]
    _terminate(postgres, *pids)
    with pytest.raises(sa.exc.OperationalError) as failed:
        _pid(engine)
    assert failed.value.connection_invalidated  # the API answers it 503 with Retry-After
    # the disconnect discarded the whole pool: the other dead connection is not handed out
    assert _pid(engine) not in pids
    with writer(engine).begin() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    assert pings == []


def test_connections_are_recycled(make):
    engine, _ = make(pool_recycle=0.0)
    first = _pid(engine)
    assert _pid(engine) != first

"""Self-test for tests.support.postgres: a real server starts, serves SQL and goes away."""

from __future__ import annotations

import socket

import sqlalchemy

from tests.support.postgres import PostgresServer


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_postgres_server_lifecycle() -> None:
    server = PostgresServer().start()
    try:
        assert server.start() is server  # idempotent
        port = server.port
        assert port is not None and _accepts_connections(port)

        url = server.create_database("dueflow_selftest")
        assert url == f"postgresql+psycopg2://postgres@127.0.0.1:{port}/dueflow_selftest"
        assert server.url.endswith(f":{port}/postgres")

        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as conn:
                version = conn.execute(sqlalchemy.text("select version()")).scalar_one()
                assert "PostgreSQL" in version
                assert conn.execute(sqlalchemy.text("select current_database()")).scalar_one() == (
                    "dueflow_selftest"
                )
        finally:
            engine.dispose()
    finally:
        server.stop()

    assert not _accepts_connections(port)
    server.stop()  # safe to call twice

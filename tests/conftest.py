"""Shared fixtures: a real database per dialect (SQLite file, and a PostgreSQL server that the test
setup installs and starts), the tasks function through functions-framework's test client, tokens."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest
import sqlalchemy as sa
from functions_framework import create_app

from dueflow import bootstrap
from dueflow.adapters.db.engine import make_engine, migrate
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[1]
SECRET = "test-secret-that-is-long-enough-for-hs256"
DIALECTS = ["sqlite", "postgresql"]
_TABLES = [
    "outbox",
    "leases",
    "notifications",
    "reminders",
    "task_tags",
    "tasks",
    "users",
    "processed_commands",
    "dead_letters",
]


@pytest.fixture(autouse=True)
def _restore_environ():
    """Each test may change os.environ freely; it is restored afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory, request):
    """One migrated database per dialect for the whole session; tests empty it before use."""
    urls: dict[str, str] = {}

    def url_for(dialect: str) -> str:
        if dialect not in urls:
            if dialect == "sqlite":
                url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'dueflow.db'}"
            else:
                url = request.getfixturevalue("postgres").create_database("dueflow_test")
            engine = make_engine(url)
            migrate(engine)
            engine.dispose()
            urls[dialect] = url
        return urls[dialect]

    return url_for


@pytest.fixture(params=DIALECTS)
def database_url(request, _migrated) -> str:
    """A migrated, empty database: a test using it runs once on SQLite, once on PostgreSQL."""
    url = _migrated(request.param)
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in _TABLES:
            conn.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()
    return url


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def function_env(database_url):
    """Environment of a deployed tasks function, pointed at the test database."""
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "DUEFLOW_JWT_SECRET": SECRET,
            "DUEFLOW_ENV": "test",
            "DUEFLOW_AUTO_MIGRATE": "0",
            "DUEFLOW_CORS_ORIGINS": "https://app.example.com",
            "DUEFLOW_METRICS_PORT": "0",  # no fixed port in tests; test_observability picks one
        }
    )
    os.environ.pop("K_SINK", None)
    bootstrap.reset()
    yield os.environ
    bootstrap.reset()


@pytest.fixture
def client(function_env):
    """The tasks function as functions-framework serves it, through its test client."""
    app = create_app("tasks", str(ROOT / "functions" / "tasks" / "main.py"))
    return app.test_client()


def token(
    sub: str = "alice",
    email: str | None = "alice@example.com",
    *,
    secret: str = SECRET,
    ttl: int = 600,
    **claims,
) -> str:
    payload = {"sub": sub, "exp": int(time.time()) + ttl, **claims}
    if email is not None:
        payload["email"] = email
    return jwt.encode(payload, secret, algorithm="HS256")


def auth(sub: str = "alice", **kwargs) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, **kwargs)}"}

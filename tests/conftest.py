"""Shared fixtures: a real database per dialect (SQLite file, and a PostgreSQL server that the test
setup installs and starts), the tasks function through functions-framework's test client, tokens."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest
from functions_framework import create_app
from hypothesis import settings

from dueflow import bootstrap
from dueflow.adapters.db.engine import make_engine, migrate
from tests.support.database import empty_tables
from tests.support.postgres import PostgresServer

# the `sidecar` fixture: a fake Dapr sidecar (gRPC, from the SDK's stubs) for the Dapr mode's tests
pytest_plugins = ["tests.support.dapr_sidecar"]

ROOT = Path(__file__).resolve().parents[1]
SECRET = "test-secret-that-is-long-enough-for-hs256"
# The databases a `database_url` test runs on: both by default (`make test`), SQLite alone under
# `make check` (DUEFLOW_TEST_DIALECTS=sqlite), which then starts no PostgreSQL server.
DIALECTS = os.environ.get("DUEFLOW_TEST_DIALECTS", "sqlite,postgresql").split(",")

# Hypothesis profiles, chosen by DUEFLOW_HYPOTHESIS_PROFILE: `fast` (the default, and `make check`)
# for the edit loop, `thorough` (`make test`, CI) with Hypothesis's own defaults. A test's own
# @settings(max_examples=...) still wins over either.
settings.register_profile("fast", max_examples=20)
settings.register_profile("thorough", settings.get_profile("default"))
settings.load_profile(os.environ.get("DUEFLOW_HYPOTHESIS_PROFILE", "fast"))


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
    empty_tables(url)
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

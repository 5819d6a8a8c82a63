"""Fixtures for the event functions (recurrence, reminders, notify) as functions-framework serves
them, sharing the environment, database and runtime of the tasks function (`client`).

Nothing here is autouse: the tasks API tests in this directory are unaffected.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from functions_framework import create_app

from dueflow import bootstrap
from tests.conftest import ROOT
from tests.support.clock import T0, Clock, install_clock
from tests.support.smtp import smtp_servers

SENDER = "dueflow <reminders@dueflow.test>"


@pytest.fixture(params=["binary", "structured"])
def mode(request) -> str:
    """Each delivery in both CloudEvents modes: binary (ce-* headers) and structured."""
    return request.param


@pytest.fixture
def smtp_server():
    """Starts aiosmtpd controllers on 127.0.0.1 (a free port unless given); stops them all."""
    with smtp_servers() as start:
        yield start


@pytest.fixture
def mail_dir(tmp_path):
    return tmp_path / "mail"


@pytest.fixture
def event_env(function_env, mail_dir):
    """`function_env` plus the e-mail settings of the notify function (the `eml` backend).

    The shared test database is emptied by `database_url`, except for `notifications` (not in
    the root conftest's list): emptied here so counts are per test."""
    function_env.update(
        {
            "DUEFLOW_EMAIL_BACKEND": "eml",
            "DUEFLOW_EML_DIR": str(mail_dir),
            "DUEFLOW_EMAIL_FROM": SENDER,
            "DUEFLOW_EMAIL_TIMEOUT": "5",
        }
    )
    for name in ("SMTP_URL", "SENDGRID_API_KEY", "DUEFLOW_SENDGRID_HOST"):
        function_env.pop(name, None)
    engine = sa.create_engine(function_env["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM notifications"))
    engine.dispose()
    bootstrap.reset()
    return function_env


@pytest.fixture
def clock(event_env) -> Clock:
    """One frozen clock for the tasks, recurrence, reminders and notify services."""
    frozen = Clock(T0)
    install_clock(frozen)
    return frozen


@pytest.fixture
def reconfigure(event_env, clock) -> Callable[..., None]:
    """Change the environment of the running functions (as a redeploy would): the runtime is
    rebuilt from it and the frozen clock is installed again."""

    def apply(**env: str | None) -> None:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        bootstrap.reset()
        install_clock(clock)

    return apply


@pytest.fixture
def event_client(event_env) -> Callable:
    """`event_client(name)`: the event function `name` through functions-framework's client."""
    apps: dict = {}

    def make(name: str):
        if name not in apps:
            apps[name] = create_app(name, str(ROOT / "functions" / name / "main.py"))
        return apps[name].test_client()

    return make

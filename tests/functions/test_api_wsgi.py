"""The tasks API answered from WSGI without Flask's dispatch (adapters/http/wsgi.py), and the
cases where functions-framework's Flask path keeps serving it."""

from __future__ import annotations

import io
import logging

import flask
import pytest
from werkzeug.test import Client, EnvironBuilder
from werkzeug.wrappers import Request, Response

from dueflow.adapters.http.wsgi import ApiWsgi
from tests.conftest import ROOT, auth
from tests.support.tasks_api import assert_problem


@pytest.fixture
def flask_dispatches():
    """How many requests went through Flask's dispatch (its `request_started` signal)."""
    seen: list[object] = []

    def started(sender, **_extra):
        seen.append(sender)

    flask.request_started.connect(started)
    yield seen
    flask.request_started.disconnect(started)


def test_untraced_the_api_answers_without_flasks_dispatch(client, flask_dispatches):
    assert isinstance(client.application.wsgi_app, ApiWsgi)
    created = client.post("/tasks", json={"title": "Direct"}, headers=auth())
    assert created.status_code == 201
    got = client.get(created.headers["Location"], headers=auth())
    assert got.status_code == 200 and got.json == created.json
    assert got.headers["X-Request-Id"]
    # what Flask answered itself before answers as the API: problem+json with the request id
    for path in ("/robots.txt", "/favicon.ico", "/nowhere"):
        response = client.get(path, headers={"X-Request-Id": "probe-1"})
        assert_problem(response, 404)
        assert response.headers["X-Request-Id"] == "probe-1"
    assert flask_dispatches == []


@pytest.fixture
def logging_restored():
    """functions-framework's execution-id logging reconfigures logging (`dictConfig`, which
    disables every logger there is): put it back for the tests after this one."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = [
        v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)
    ]
    disabled = {logger: logger.disabled for logger in loggers}
    yield
    root.handlers[:], root.level = handlers, level
    for logger, was in disabled.items():
        logger.disabled = was


def test_with_execution_id_logging_functions_framework_serves_through_flask(
    function_env, flask_dispatches, logging_restored
):
    from functions_framework import create_app

    function_env["LOG_EXECUTION_ID"] = "true"
    app = create_app("tasks", str(ROOT / "functions" / "tasks" / "main.py"))
    assert not isinstance(app.wsgi_app, ApiWsgi)
    response = app.test_client().get("/tasks", headers=auth())
    assert response.status_code == 200 and response.json["items"] == []
    assert len(flask_dispatches) == 1


class Recorded(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_error_escaping_the_api_answers_500_as_a_problem_and_is_logged():
    def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    client = Client(ApiWsgi(broken), Response)
    recorded = Recorded()
    logging.getLogger("dueflow.http").addHandler(recorded)
    try:
        response = client.get("/tasks/x%0Ay", headers={"X-Request-Id": "req-7"})
    finally:
        logging.getLogger("dueflow.http").removeHandler(recorded)
    assert_problem(response, 500)
    assert response.json["detail"] == "an unexpected error occurred"  # no internals
    assert response.json["instance"] == "/tasks/x%0Ay"
    assert response.headers["X-Request-Id"] == "req-7"
    assert [r.exc_info[0] for r in recorded.records] == [RuntimeError]


def test_the_request_body_is_read_to_its_end_before_the_answer():
    """As functions-framework's `read_request` hook does: an answer given before the body was
    read (a 401, a 404) must not leave it unread on a kept-alive connection."""
    body = io.BytesIO(b'{"title": "' + b"x" * 50_000 + b'"}')

    def refuses(request: Request) -> Response:
        return Response("no", status=401)

    environ = EnvironBuilder("/tasks", method="POST", input_stream=body).get_environ()
    environ["CONTENT_LENGTH"] = str(len(body.getvalue()))
    chunks = ApiWsgi(refuses)(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(chunks) == b"no"
    assert body.read() == b""
    # sent in chunks, without a length (gunicorn then marks the input terminated)
    body = io.BytesIO(b'{"title": "' + b"y" * 50_000 + b'"}')
    environ = EnvironBuilder("/tasks", method="POST", input_stream=body).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input_terminated"] = True
    chunks = ApiWsgi(refuses)(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(chunks) == b"no"
    assert body.read() == b""

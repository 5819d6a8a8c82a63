"""The `tasks` function: dueflow's HTTP API (Knative Service `tasks`)."""

import flask
import functions_framework

from dueflow import bootstrap, observability
from dueflow.adapters.http.problems import answer_errors_as_problems

# Runs while functions-framework loads this file: refuse to start on an unusable configuration,
# and instrument the Flask app before it serves its first request (Flask forbids it later).
bootstrap.check_config("tasks")
traced = observability.instrument_flask(flask.current_app)
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too
# Untraced, the API answers straight from WSGI, without Flask's dispatch (adapters/http/wsgi.py)
bootstrap.serve_api_directly(flask.current_app, traced)


@functions_framework.http
def tasks(request: flask.Request) -> flask.Response:
    return bootstrap.handle_api(request)

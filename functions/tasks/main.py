"""The `tasks` function: dueflow's HTTP API (Knative Service `tasks`)."""

import flask
import functions_framework

from dueflow import bootstrap, observability
from dueflow.adapters.http.problems import answer_errors_as_problems

# Runs while functions-framework loads this file: refuse to start on an unusable configuration,
# and instrument the Flask app before it serves its first request (Flask forbids it later).
bootstrap.check_config("tasks")
observability.instrument_flask(flask.current_app)
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


@functions_framework.http
def tasks(request: flask.Request) -> flask.Response:
    return bootstrap.handle_api(request)

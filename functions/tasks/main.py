"""The `tasks` function: dueflow's HTTP API (Knative Service `tasks`)."""

import flask
import functions_framework

from dueflow import bootstrap, observability

# Runs while functions-framework loads this file: refuse to start on an unusable configuration,
# and instrument the Flask app before it serves its first request (Flask forbids it later).
bootstrap.check_config("tasks")
observability.instrument_flask(flask.current_app)


@functions_framework.http
def tasks(request: flask.Request) -> flask.Response:
    return bootstrap.handle_api(request)

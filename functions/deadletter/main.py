"""The `deadletter` function: the Broker's dead-letter sink. Keeps every event that exhausted its
retries, with the knativeerror* extensions saying why; `make dlq-list` and `make dlq-replay` read
and resend them. Knative Service `deadletter` (cluster-local)."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.problems import answer_errors_as_problems

bootstrap.check_config(needs_auth=False)
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def deadletter(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("deadletter", request)

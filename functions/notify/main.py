"""The `notify` function: e-mails each reminder of a dev.dueflow.reminders.due batch (or a single
dev.dueflow.reminder.due), once.
Knative Service `notify`."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.problems import answer_errors_as_problems

bootstrap.check_config(needs_auth=False)  # events carry no user tokens
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def notify(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("notify", request)

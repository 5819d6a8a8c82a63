"""The `reminders` function: each tick (PingSource event, Dapr cron binding POST or the local
ticker) emits dev.dueflow.reminder.due for every due reminder. Knative Service `reminders`."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.problems import answer_errors_as_problems

bootstrap.check_config(needs_auth=False)  # events carry no user tokens
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def reminders(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("reminders", request)

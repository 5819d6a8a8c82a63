"""The `notify` function: e-mails each reminder of a dev.dueflow.reminders.due batch (or a single
dev.dueflow.reminder.due), once.
Knative Service `notify`."""

import flask
import functions_framework

from dueflow import bootstrap

bootstrap.check_config(needs_auth=False)  # events carry no user tokens


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def notify(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("notify", request)

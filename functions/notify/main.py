"""The `notify` function: e-mails each reminder of a dev.dueflow.reminders.due batch (or of a
single dev.dueflow.reminder.due, a batch of one), once. Knative Service `notify`."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.event_function import Routes
from dueflow.adapters.http.problems import answer_errors_as_problems
from dueflow.domain import events
from dueflow.service.ports import TransientEmailError

bootstrap.check_config("notify")  # events carry no user tokens; e-mail settings checked
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


def routes(rt: bootstrap.Runtime) -> Routes:
    """Event type -> handler, built with the service on the first request. A transient e-mail
    failure answers 503: the Broker redelivers later."""
    service = rt.notify
    return Routes(
        {
            events.REMINDERS_DUE: lambda d: service.on_reminders_due(d.data),
            events.REMINDER_DUE: lambda d: service.on_reminder_due(d.data),
        },
        transient=[TransientEmailError],
    )


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def notify(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("notify", routes, request)

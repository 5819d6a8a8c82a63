"""The `reminders` function: each tick (PingSource event, Dapr cron binding POST or the local
ticker) emits the due reminders, DUEFLOW_REMINDER_EVENT_BATCH to a dev.dueflow.reminders.due
event (or one dev.dueflow.reminder.due each when that is 1). Knative Service `reminders`."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.event_function import Routes
from dueflow.adapters.http.problems import answer_errors_as_problems
from dueflow.service.outcome import done

bootstrap.check_config("reminders")  # events carry no user tokens
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too

PING = "dev.knative.sources.ping"


def routes(rt: bootstrap.Runtime) -> Routes:
    """Any delivery is a tick: a PingSource event, a Dapr cron POST, the local ticker."""
    service = rt.reminders
    return Routes({}, default=lambda _d: done(f"emitted {service.tick()}"), known_types=[PING])


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def reminders(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("reminders", routes, request)

"""The `deadletter` function: the Broker's dead-letter sink. Keeps every event that exhausted its
retries, with the knativeerror* extensions saying why; `make dlq-list` and `make dlq-replay` read
and resend them. Knative Service `deadletter` (cluster-local)."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.event_function import Routes
from dueflow.adapters.http.problems import answer_errors_as_problems
from dueflow.domain import events

bootstrap.check_config("deadletter")
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too

PING = "dev.knative.sources.ping"
#: the types dueflow emits, counted under their own name (any sender may dead-letter anything)
EMITTED = {
    events.TASK_CREATED,
    events.TASK_UPDATED,
    events.TASK_COMPLETED,
    events.TASK_REOPENED,
    events.TASK_DELETED,
    events.REMINDER_DUE,
    events.REMINDERS_DUE,
    events.NOTIFICATION_SENT,
    events.NOTIFICATION_FAILED,
    events.NOTIFICATIONS_RECORDED,
}


def routes(rt: bootstrap.Runtime) -> Routes:
    """Every delivery is a dead letter to store."""
    from dueflow.service.commands import command_types

    return Routes(
        {}, default=rt.dead_letters.store, known_types=EMITTED | command_types() | {PING}
    )


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def deadletter(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("deadletter", routes, request)

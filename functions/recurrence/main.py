"""The `recurrence` function: a completed instance of a recurring task begets the next one
(dev.dueflow.task.completed -> dev.dueflow.task.created). Knative Service `recurrence`."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.event_function import Routes
from dueflow.adapters.http.problems import answer_errors_as_problems
from dueflow.domain import events

bootstrap.check_config("recurrence")  # events carry no user tokens
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


def routes(rt: bootstrap.Runtime) -> Routes:
    """Event type -> handler, built with the service on the first request."""
    service = rt.recurrence
    return Routes({events.TASK_COMPLETED: lambda d: service.on_task_completed(d.data)})


# An HTTP function, not @cloud_event: that decorator cannot answer 4xx (never retry) or 5xx
# (retry) and rejects Dapr binding deliveries, which are plain POSTs.
@functions_framework.http
def recurrence(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("recurrence", routes, request)

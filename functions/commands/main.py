"""The `commands` function: task commands from the `task-events` Kafka topic (through KafkaSource
and the Broker, or a Dapr Kafka binding), applied like the API, once per CloudEvent.
Knative Service `commands` (cluster-local: only the Broker may send commands)."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.event_function import Routes
from dueflow.adapters.http.problems import answer_errors_as_problems

bootstrap.check_config("commands")  # producers are trusted by Kafka topic ACLs
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


def routes(rt: bootstrap.Runtime) -> Routes:
    """Every delivery goes to the command service: command events, raw Kafka records, Dapr Kafka
    binding POSTs (it unwraps and checks the type itself)."""
    from dueflow.service.commands import command_types

    return Routes({}, default=rt.commands.handle, known_types=command_types())


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def commands(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("commands", routes, request)

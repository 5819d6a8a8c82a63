"""The `commands` function: task commands from the `task-events` Kafka topic (through KafkaSource
and the Broker, or a Dapr Kafka binding), applied like the API, once per CloudEvent.
Knative Service `commands` (cluster-local: only the Broker may send commands)."""

import flask
import functions_framework

from dueflow import bootstrap
from dueflow.adapters.http.problems import answer_errors_as_problems

bootstrap.check_config(needs_auth=False)  # producers are trusted by Kafka topic ACLs
answer_errors_as_problems(flask.current_app)  # Flask's own 404/405/400 too


@functions_framework.http  # an HTTP function: see functions/recurrence/main.py for why
def commands(request: flask.Request) -> flask.Response:
    return bootstrap.handle_event("commands", request)

"""The commands function's use case: task commands from Kafka (the chat assistant and other
systems), applied with exactly the API's validation and semantics, once per CloudEvent."""

from __future__ import annotations

from dueflow.domain.delivery import InboundEvent
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.service.outcome import Outcome, done, duplicate
from dueflow.service.tasks import AlreadyApplied, TaskService

PREFIX = "dev.dueflow.command.task."
KINDS = ("create", "update", "complete", "delete")
# Deliveries that wrap a record instead of being the command: KafkaSource's type for a record
# that is no CloudEvent, and the Dapr Kafka binding's POST of the raw record value.
RAW_RECORD = "dev.knative.kafka.event"


def command_types() -> frozenset[str]:
    """The event types of task commands (counted under their own name by the edge)."""
    return frozenset([*(PREFIX + kind for kind in KINDS), RAW_RECORD])


class CommandService:
    def __init__(self, tasks: TaskService):
        self.tasks = tasks

    def handle(self, delivery: InboundEvent) -> Outcome:
        """Apply one command; says what it did. Invalid commands raise ValidationFailed (the edge
        answers 422, so the Broker sends them to the dead-letter sink and never retries)."""
        command = _unwrap(delivery)
        kind = command.type.removeprefix(PREFIX)
        if not command.type.startswith(PREFIX) or kind not in KINDS:
            raise _bad("type", f"not a task command: {command.type!r}")
        if not command.source or not command.id:
            raise _bad("id", "a command needs a source and an id (they make it idempotent)")
        if len(command.source) > 255 or len(command.id) > 255:
            raise _bad("id", "source and id must be at most 255 characters each")
        data = command.data
        if not isinstance(data, dict):
            raise _bad("data", "must be a JSON object")
        user_id = data.get("user_id")
        if (
            not isinstance(user_id, str)
            or not user_id
            or len(user_id) > 255
            or any(c.isspace() for c in user_id)
        ):
            raise _bad("data.user_id", "must be 1..255 characters without spaces")
        dedupe = (command.source, command.id)
        rest = {k: v for k, v in data.items() if k != "user_id"}
        try:
            if kind == "create":
                return done(f"created {self.tasks.create(user_id, rest, dedupe).id}")
            task_id = rest.pop("id", None)
            if not isinstance(task_id, str):
                raise _bad("data.id", "must be the task's id")
            if kind == "update":
                self.tasks.update(user_id, task_id, rest, dedupe)
            elif rest:
                raise _bad(f"data.{next(iter(rest))}", "unknown field")
            elif kind == "complete":
                self.tasks.complete(user_id, task_id, dedupe)
            else:
                self.tasks.delete(user_id, task_id, dedupe)
            return done(f"{kind}d {task_id}")  # updated, completed, deleted
        except AlreadyApplied:
            return duplicate("duplicate: already applied")


def _unwrap(delivery: InboundEvent) -> InboundEvent:
    """A wrapped record must itself hold a structured-mode CloudEvent command."""
    if delivery.type != RAW_RECORD and not delivery.type.startswith("dapr.binding."):
        return delivery
    event = delivery.data
    if not isinstance(event, dict) or event.get("specversion") != "1.0":
        raise _bad("data", "the record is not a CloudEvent (send binary or structured mode)")
    if not all(isinstance(event.get(k), str) for k in ("type", "source", "id")):
        raise _bad("data", "the record's CloudEvent lacks type, source or id")
    return InboundEvent(event["type"], event["source"], event["id"], event.get("data"), event)


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, message)])

"""JSON Schemas of the CloudEvents dueflow emits, and helpers to check events against them.

The schema files live in ``dueflow/schemas/events/`` (package data of the runtime package, the
published contract) and are read with :mod:`importlib.resources`, so this works against an
installed package too. The validator itself is test code: it needs ``jsonschema``, which no
function uses, so it lives here and not in the deployable package.

* ``cloudevent.json`` (``urn:dueflow:schema:cloudevent:1``): the structured-mode envelope
  of the task events (``source`` ``/dueflow/tasks``). The reminder and notification events
  share it except for ``source`` and ``type``; :func:`validate_event` derives their envelope
  from it (see ``OTHER_SOURCES``), and that of the task commands dueflow accepts on Kafka
  topic ``task-events`` (see ``COMMAND_TYPES``).
* ``task.json`` (``urn:dueflow:schema:task:1``): the Task object.
* ``<type>.json`` (``urn:dueflow:schema:<type>:<version>``): the ``data`` of one event
  type; its ``$id`` is exactly the value of the event's ``dataschema`` attribute (optional
  for commands: without it ``data`` is checked against the type's latest version).
"""

from __future__ import annotations

import copy
import json
import re
from collections import deque
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = [
    "BATCH_TYPES",
    "COMMAND_TYPES",
    "ENVELOPE_SCHEMA_ID",
    "OTHER_SOURCES",
    "TASK_SCHEMA_ID",
    "load_event_schemas",
    "validate_event",
]

ENVELOPE_SCHEMA_ID = "urn:dueflow:schema:cloudevent:1"
TASK_SCHEMA_ID = "urn:dueflow:schema:task:1"

#: The event types outside the task family, with the ``source`` that emits each. Their
#: ``data`` names the task by ``task_id`` (the task events carry the whole ``task``).
OTHER_SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "dev.dueflow.reminder.due": "/dueflow/reminders",
        "dev.dueflow.reminders.due": "/dueflow/reminders",
        "dev.dueflow.notification.sent": "/dueflow/notify",
        "dev.dueflow.notification.failed": "/dueflow/notify",
        "dev.dueflow.notifications.recorded": "/dueflow/notify",
    }
)

#: Batches of reminder and notification data: subject and partitionkey name the batch itself.
BATCH_TYPES: tuple[str, ...] = ("dev.dueflow.reminders.due", "dev.dueflow.notifications.recorded")

#: The task commands: requests from other systems (the chat assistant) on Kafka topic
#: ``task-events``, not facts. Their ``source`` and ``id`` are the producer's (any URI-reference,
#: any string: together they make a command idempotent), ``subject``, ``time``, ``dataschema``
#: and ``partitionkey`` are optional, and the key that orders them is the task id
#: (``data.id``), except for ``create``, which has no task yet: the user id (``data.user_id``).
COMMAND_TYPES: tuple[str, ...] = (
    "dev.dueflow.command.task.create",
    "dev.dueflow.command.task.update",
    "dev.dueflow.command.task.complete",
    "dev.dueflow.command.task.delete",
)

# The input shapes shared by the command schemas live in the create command's $defs.
_COMMAND_DEFS = "urn:dueflow:schema:dev.dueflow.command.task.create:1#/$defs"

_EVENT_SCHEMA_ID = re.compile(
    r"^urn:dueflow:schema:(?P<type>dev\.dueflow\.[a-z0-9.]+):(?P<version>[1-9][0-9]*)$"
)


@cache
def _schemas_by_id() -> dict[str, dict[str, Any]]:
    """Every schema file in ``events/``, keyed by its ``$id``."""
    schemas: dict[str, dict[str, Any]] = {}
    folder = files("dueflow").joinpath("schemas", "events")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        schema = json.loads(entry.read_text(encoding="utf-8"))
        if "$id" not in schema:
            raise RuntimeError(f"schema file {entry.name} has no $id")
        schema_id = schema["$id"]
        if schema_id in schemas:
            raise RuntimeError(f"duplicate schema $id {schema_id!r} ({entry.name})")
        schemas[schema_id] = schema
    return schemas


@cache
def _registry() -> Registry:
    return Registry().with_resources(
        (schema_id, DRAFT202012.create_resource(schema))
        for schema_id, schema in _schemas_by_id().items()
    )


@cache
def _validator(schema_id: str) -> Draft202012Validator:
    return Draft202012Validator(
        _schemas_by_id()[schema_id],
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _variant(event_type: str) -> dict[str, Any]:
    """A copy of ``cloudevent.json`` for one event type outside the task family."""
    schema = copy.deepcopy(_schemas_by_id()[ENVELOPE_SCHEMA_ID])
    del schema["$id"]  # a variant, not the registered resource; its $refs are absolute URNs
    del schema["allOf"]  # the type/dataschema pairing of the task events
    properties = schema["properties"]
    properties["type"] = {"const": event_type}
    properties["dataschema"]["pattern"] = (
        f"^urn:dueflow:schema:{re.escape(event_type)}:[1-9][0-9]*$"
    )
    return schema


def _command_envelope(command_type: str) -> dict[str, Any]:
    """The envelope of a task command, as its producer writes it: only what the CloudEvents
    spec requires is required; ``source`` and ``id`` are the producer's own."""
    schema = _variant(command_type)
    key = "data.user_id" if command_type.endswith(".create") else "data.id"
    properties = schema["properties"]
    properties["source"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "format": "uri-reference",
        "pattern": "^[^\\s]+$",
        "description": "The producer, e.g. '/chat-assistant'; with id it makes the command "
        "idempotent.",
    }
    properties["id"] = {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "description": "Unique per command of this source; a redelivery keeps it.",
    }
    properties["time"] = {
        "$ref": f"{_COMMAND_DEFS}/offsetDateTime",
        "description": "When the producer wrote the command. Optional.",
    }
    properties["datacontenttype"] = {"type": "string", "pattern": "^application/json(;.*)?$"}
    for attribute in ("subject", "partitionkey"):
        properties[attribute] = {
            "type": "string",
            "minLength": 1,
            "description": f"Optional; if present, equals {key}.",
        }
    schema["required"] = ["specversion", "id", "source", "type", "data"]
    return schema


@cache
def _envelope_validator(other_type: str | None) -> Draft202012Validator:
    """The envelope validator: ``cloudevent.json`` itself for the task events; for a type in
    ``OTHER_SOURCES`` the same envelope with that type's own ``source`` and ``type``; for a
    type in ``COMMAND_TYPES`` the producer's envelope (:func:`_command_envelope`)."""
    if other_type is None:
        return _validator(ENVELOPE_SCHEMA_ID)
    if other_type in COMMAND_TYPES:
        schema = _command_envelope(other_type)
    else:
        schema = _variant(other_type)
        properties = schema["properties"]
        properties["source"] = {"const": OTHER_SOURCES[other_type]}
        for attribute in ("subject", "partitionkey"):
            properties[attribute]["description"] = "The task id (equals data.task_id)."
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def load_event_schemas() -> dict[str, dict[str, Any]]:
    """Return ``{event type: data schema}`` for every event type dueflow emits, and for the
    task commands it accepts (``COMMAND_TYPES``).

    If several versions of a type's schema are present, the highest version wins. The
    returned dicts are copies; mutating them does not affect :func:`validate_event`.
    """
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for schema_id, schema in _schemas_by_id().items():
        match = _EVENT_SCHEMA_ID.match(schema_id)
        if match is None:  # cloudevent.json, task.json
            continue
        event_type, version = match["type"], int(match["version"])
        if event_type not in latest or version > latest[event_type][0]:
            latest[event_type] = (version, schema)
    return {event_type: copy.deepcopy(schema) for event_type, (_, schema) in latest.items()}


def _raise_first(validator: Draft202012Validator, instance: Any, prefix: str | None) -> None:
    """Raise the most relevant error, with its path made relative to the whole event."""
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return
    # best_match may return an error from inside an anyOf/oneOf, whose own path is relative
    # to its parent error: detach it so that error.path is the full path within the event.
    path = ([prefix] if prefix is not None else []) + list(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    error.parent = None
    error.path = error.relative_path = deque(path)
    error.schema_path = error.relative_schema_path = deque(schema_path)
    error.message = f"{error.json_path}: {error.message}"
    raise error


def _latest_schema_id(event_type: str) -> str | None:
    versions = [
        int(match["version"])
        for match in map(_EVENT_SCHEMA_ID.match, _schemas_by_id())
        if match is not None and match["type"] == event_type
    ]
    return f"urn:dueflow:schema:{event_type}:{max(versions)}" if versions else None


def validate_event(ce: dict[str, Any]) -> None:
    """Validate a structured-mode (JSON) CloudEvent emitted, or as a command accepted, by dueflow.

    ``ce`` is the decoded JSON object: envelope attributes plus ``data``. Checks, in order:

    1. the envelope against ``cloudevent.json`` (this also checks that ``dataschema``
       names the event's ``type``); for the reminder and notification types, against
       the same envelope with their own ``source`` and ``type`` (``OTHER_SOURCES``); for
       the task commands (``COMMAND_TYPES``), against the envelope a producer writes:
       any ``source``, any ``id``, and ``subject``, ``time``, ``dataschema`` and
       ``partitionkey`` optional;
    2. ``data`` against the schema whose ``$id`` equals ``dataschema`` (for a command
       without ``dataschema``, the latest version of its type's schema);
    3. cross-field rules JSON Schema cannot express: ``subject`` and ``partitionkey``
       equal the task id (``data.task.id``, or ``data.task_id`` for the reminder and
       notification types; not checked for the batches, ``BATCH_TYPES``), and every tag
       is lower-case (also outside ASCII); for a command, each of the two is optional and
       if present equals its key: ``data.id``, or ``data.user_id`` for ``create``.

    Returns ``None`` if the event is valid, otherwise raises
    :class:`jsonschema.ValidationError` (``error.path`` points into ``ce``).
    """
    if not isinstance(ce, Mapping):
        raise ValidationError(f"a CloudEvent must be a JSON object, got {type(ce).__name__}")

    event_type = ce.get("type")
    other_type = (
        event_type
        if isinstance(event_type, str)
        and (event_type in OTHER_SOURCES or event_type in COMMAND_TYPES)
        else None
    )
    _raise_first(_envelope_validator(other_type), ce, prefix=None)

    is_command = other_type in COMMAND_TYPES
    if is_command and "dataschema" not in ce:
        dataschema = _latest_schema_id(other_type)
    else:
        dataschema = ce["dataschema"]
    if dataschema not in _schemas_by_id():
        raise ValidationError(
            f"$.dataschema: no schema has the $id {dataschema!r}",
            path=["dataschema"],
            instance=dataschema,
        )
    _raise_first(_validator(dataschema), ce["data"], prefix="data")

    if is_command:
        task, where = None, "data.user_id" if other_type.endswith(".create") else "data.id"
        key = ce["data"][where.removeprefix("data.")]
    elif other_type in BATCH_TYPES:
        return  # a batch's subject and partitionkey are its own id: nothing to cross-check
    elif other_type is not None:
        task, key, where = None, ce["data"]["task_id"], "data.task_id"
    else:
        task = ce["data"]["task"]
        key, where = task["id"], "data.task.id"
    for attribute in ("subject", "partitionkey"):
        if is_command and attribute not in ce:
            continue
        if ce[attribute] != key:
            raise ValidationError(
                f"$.{attribute}: {ce[attribute]!r} is not {where} {key!r}",
                path=[attribute],
                instance=ce[attribute],
            )
    if task is None:
        return
    for index, tag in enumerate(task["tags"]):
        if tag != tag.lower():
            raise ValidationError(
                f"$.data.task.tags[{index}]: {tag!r} is not lower-case",
                path=["data", "task", "tags", index],
                instance=tag,
            )

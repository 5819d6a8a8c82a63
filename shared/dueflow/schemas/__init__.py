"""JSON Schemas of the CloudEvents dueflow emits, and helpers to check events against them.

The schema files live in ``dueflow/schemas/events/`` and are read with
:mod:`importlib.resources`, so this works from an installed package too (as long as the
``*.json`` files are shipped as package data).

* ``cloudevent.json`` (``urn:dueflow:schema:cloudevent:1``): the structured-mode envelope
  of the task events (``source`` ``/dueflow/tasks``). The reminder and notification events
  share it except for ``source`` and ``type``; :func:`validate_event` derives their envelope
  from it (see ``OTHER_SOURCES``).
* ``task.json`` (``urn:dueflow:schema:task:1``): the Task object.
* ``<type>.json`` (``urn:dueflow:schema:<type>:<version>``): the ``data`` of one event
  type; its ``$id`` is exactly the value of the event's ``dataschema`` attribute.
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
        "dev.dueflow.notification.sent": "/dueflow/notify",
        "dev.dueflow.notification.failed": "/dueflow/notify",
    }
)

_EVENT_SCHEMA_ID = re.compile(
    r"^urn:dueflow:schema:(?P<type>dev\.dueflow\.[a-z0-9.]+):(?P<version>[1-9][0-9]*)$"
)


@cache
def _schemas_by_id() -> dict[str, dict[str, Any]]:
    """Every schema file in ``events/``, keyed by its ``$id``."""
    schemas: dict[str, dict[str, Any]] = {}
    for entry in sorted(files(__name__).joinpath("events").iterdir(), key=lambda e: e.name):
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


@cache
def _envelope_validator(other_type: str | None) -> Draft202012Validator:
    """The envelope validator: ``cloudevent.json`` itself for the task events, and for a type
    in ``OTHER_SOURCES`` the same envelope with that type's own ``source`` and ``type``."""
    if other_type is None:
        return _validator(ENVELOPE_SCHEMA_ID)
    schema = copy.deepcopy(_schemas_by_id()[ENVELOPE_SCHEMA_ID])
    del schema["$id"]  # a variant, not the registered resource; its $refs are absolute URNs
    del schema["allOf"]  # the type/dataschema pairing of the task events
    properties = schema["properties"]
    properties["source"] = {"const": OTHER_SOURCES[other_type]}
    properties["type"] = {"const": other_type}
    properties["dataschema"]["pattern"] = (
        f"^urn:dueflow:schema:{re.escape(other_type)}:[1-9][0-9]*$"
    )
    for attribute in ("subject", "partitionkey"):
        properties[attribute]["description"] = "The task id (equals data.task_id)."
    return Draft202012Validator(
        schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def load_event_schemas() -> dict[str, dict[str, Any]]:
    """Return ``{event type: data schema}`` for every event type dueflow emits.

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


def validate_event(ce: dict[str, Any]) -> None:
    """Validate a structured-mode (JSON) CloudEvent emitted by dueflow.

    ``ce`` is the decoded JSON object: envelope attributes plus ``data``. Checks, in order:

    1. the envelope against ``cloudevent.json`` (this also checks that ``dataschema``
       names the event's ``type``); for the reminder and notification types, against
       the same envelope with their own ``source`` and ``type`` (``OTHER_SOURCES``);
    2. ``data`` against the schema whose ``$id`` equals ``dataschema``;
    3. cross-field rules JSON Schema cannot express: ``subject`` and ``partitionkey``
       equal the task id (``data.task.id``, or ``data.task_id`` for the reminder and
       notification types), and every tag is lower-case (also outside ASCII).

    Returns ``None`` if the event is valid, otherwise raises
    :class:`jsonschema.ValidationError` (``error.path`` points into ``ce``).
    """
    if not isinstance(ce, Mapping):
        raise ValidationError(f"a CloudEvent must be a JSON object, got {type(ce).__name__}")

    event_type = ce.get("type")
    other_type = event_type if isinstance(event_type, str) and event_type in OTHER_SOURCES else None
    _raise_first(_envelope_validator(other_type), ce, prefix=None)

    dataschema = ce["dataschema"]
    if dataschema not in _schemas_by_id():
        raise ValidationError(
            f"$.dataschema: no schema has the $id {dataschema!r}",
            path=["dataschema"],
            instance=dataschema,
        )
    _raise_first(_validator(dataschema), ce["data"], prefix="data")

    if other_type is not None:
        task, task_id, where = None, ce["data"]["task_id"], "data.task_id"
    else:
        task = ce["data"]["task"]
        task_id, where = task["id"], "data.task.id"
    for attribute in ("subject", "partitionkey"):
        if ce[attribute] != task_id:
            raise ValidationError(
                f"$.{attribute}: {ce[attribute]!r} is not {where} {task_id!r}",
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

"""Contract tests for the JSON Schemas of dueflow's CloudEvents.

Schemas live in shared/dueflow/schemas/events/. Every event schema's ``$id`` is the
``dataschema`` of the events it describes; cross-file ``$ref``s use absolute URNs, which
resolve because all files are registered in one ``referencing.Registry``.

The task events (``dev.dueflow.task.*``, source ``/dueflow/tasks``) carry the whole task;
the delivery events (``dev.dueflow.reminder.due`` from ``/dueflow/reminders``,
``dev.dueflow.notification.sent|failed`` from ``/dueflow/notify``) name it by ``task_id``.
The batches (``dev.dueflow.reminders.due``: several reminder.due data; and
``dev.dueflow.notifications.recorded``: the outcomes of e-mailing one) are their own partition:
their ``subject`` and ``partitionkey`` are the batch's id, not a task's.
The commands (``dev.dueflow.command.task.*``) are what other systems write to Kafka topic
``task-events``: the producer's envelope, and ``data`` as the API's input plus ``user_id``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from dueflow.domain import events
from dueflow.domain.validation import parse_create, parse_patch
from tests.support.event_schemas import COMMAND_TYPES, load_event_schemas, validate_event

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "shared" / "dueflow" / "schemas" / "events"
CATALOGUE = REPO_ROOT / "docs" / "events.md"
OPENAPI = REPO_ROOT / "shared" / "dueflow" / "adapters" / "http" / "openapi.json"

EVENT_TYPES = (
    "dev.dueflow.task.created",
    "dev.dueflow.task.updated",
    "dev.dueflow.task.completed",
    "dev.dueflow.task.reopened",
    "dev.dueflow.task.deleted",
)
REMINDER_DUE = "dev.dueflow.reminder.due"
NOTIFICATION_SENT = "dev.dueflow.notification.sent"
NOTIFICATION_FAILED = "dev.dueflow.notification.failed"
DELIVERY_TYPES = (REMINDER_DUE, NOTIFICATION_SENT, NOTIFICATION_FAILED)
REMINDERS_DUE = "dev.dueflow.reminders.due"
NOTIFICATIONS_RECORDED = "dev.dueflow.notifications.recorded"
BATCH_TYPES = (REMINDERS_DUE, NOTIFICATIONS_RECORDED)
SOURCES = {
    REMINDER_DUE: "/dueflow/reminders",
    NOTIFICATION_SENT: "/dueflow/notify",
    NOTIFICATION_FAILED: "/dueflow/notify",
    REMINDERS_DUE: "/dueflow/reminders",
    NOTIFICATIONS_RECORDED: "/dueflow/notify",
}
ALL_EVENT_TYPES = EVENT_TYPES + DELIVERY_TYPES
CREATE_CMD = "dev.dueflow.command.task.create"
UPDATE_CMD = "dev.dueflow.command.task.update"
COMPLETE_CMD = "dev.dueflow.command.task.complete"
DELETE_CMD = "dev.dueflow.command.task.delete"
COMMANDS = (CREATE_CMD, UPDATE_CMD, COMPLETE_CMD, DELETE_CMD)
ALL_TYPES = ALL_EVENT_TYPES + BATCH_TYPES + COMMANDS
SHARED_FILES = {
    "task.json": "urn:dueflow:schema:task:1",
    "cloudevent.json": "urn:dueflow:schema:cloudevent:1",
}
ALL_FILES = sorted([f"{t}.json" for t in ALL_TYPES] + list(SHARED_FILES))

TASK_ID = "3f1c2a9e-5b7d-4e8a-9c6f-1a2b3c4d5e6f"
USER_ID = "usr_7Hq2LmX9"
DONE_AT = "2025-04-10T07:55:00Z"


def dataschema(event_type: str) -> str:
    return f"urn:dueflow:schema:{event_type}:1"


# --------------------------------------------------------------------------- fixtures


def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def registry() -> Registry:
    """All schema files, read from the source tree, registered under their ``$id``."""
    return Registry().with_resources(
        (schema["$id"], DRAFT202012.create_resource(schema))
        for schema in (_load(name) for name in ALL_FILES)
    )


def data_validator(registry: Registry, event_type: str) -> Draft202012Validator:
    """Validator for ``data`` straight from the file (no format assertion)."""
    return Draft202012Validator(_load(f"{event_type}.json"), registry=registry)


def make_task(**overrides: Any) -> dict[str, Any]:
    """A realistic open, recurring task with one relative and one absolute reminder."""
    task = {
        "id": TASK_ID,
        "title": "Submit quarterly VAT return",
        "description": "Export invoices from the accounting tool first.",
        "status": "open",
        "priority": "high",
        "tags": ["finance", "admin"],
        "due_at": "2025-04-10T08:00:00Z",
        "timezone": "Europe/Berlin",
        "recurrence": {
            "rrule": "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=10",
            "basis": "due",
            "exdates": ["2025-07-10T08:00:00Z"],
        },
        "reminders": [
            {
                "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                "before": "P1D",
                "remind_at": "2025-04-09T08:00:00Z",
                "status": "scheduled",
            },
            {
                "id": "0c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f",
                "at": "2025-04-10T06:30:00Z",
                "remind_at": "2025-04-10T06:30:00Z",
                "status": "sent",
            },
        ],
        "series_id": "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e9f",
        "occurrence": 3,
        "completed_at": None,
        "created_at": "2025-01-10T09:12:44.123456Z",
        "updated_at": "2025-04-02T17:03:05.000001Z",
    }
    task.update(overrides)
    return task


def make_data(event_type: str) -> dict[str, Any]:
    if event_type == "dev.dueflow.task.completed":
        task = make_task(status="done", completed_at=DONE_AT)
    else:
        task = make_task()
    data: dict[str, Any] = {"user_id": USER_ID, "task": task}
    if event_type == "dev.dueflow.task.updated":
        data["changed"] = ["due_at", "reminders"]
    return data


def make_event(event_type: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": "b7e2c1d0-3f4a-4b5c-9d6e-7f8091a2b3c4",
        "source": "/dueflow/tasks",
        "type": event_type,
        "subject": TASK_ID,
        "time": "2025-04-10T07:55:00.482913Z",
        "datacontenttype": "application/json",
        "dataschema": dataschema(event_type),
        "partitionkey": TASK_ID,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": make_data(event_type),
    }
    event.update(overrides)
    return event


# --------------------------------------------------------------------------- the schemas


def test_schema_directory_holds_exactly_the_expected_files() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == ALL_FILES


@pytest.mark.parametrize("name", ALL_FILES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = _load(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_event_schema_id_is_the_dataschema(event_type: str) -> None:
    assert _load(f"{event_type}.json")["$id"] == f"urn:dueflow:schema:{event_type}:1"


@pytest.mark.parametrize(("name", "schema_id"), sorted(SHARED_FILES.items()))
def test_shared_schema_ids(name: str, schema_id: str) -> None:
    assert _load(name)["$id"] == schema_id


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_ref_resolves(name: str, registry: Registry) -> None:
    schema = _load(name)
    resolver = registry.resolver(base_uri=schema["$id"])
    for ref in _refs(schema):
        assert not ref.endswith(".json"), f"{name}: use the $id URN, not a file name: {ref}"
        resolver.lookup(ref)  # raises referencing.exceptions.Unresolvable


def test_load_event_schemas_reads_the_packaged_files() -> None:
    schemas = load_event_schemas()
    assert sorted(schemas) == sorted(ALL_TYPES)
    for event_type, schema in schemas.items():
        assert schema == _load(f"{event_type}.json")


def test_load_event_schemas_returns_copies() -> None:
    load_event_schemas()["dev.dueflow.task.created"]["properties"].clear()
    validate_event(make_event("dev.dueflow.task.created"))


# --------------------------------------------------------------------------- valid events


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_realistic_event_is_valid(event_type: str, registry: Registry) -> None:
    event = make_event(event_type)
    data_validator(registry, event_type).validate(event["data"])
    validate_event(event)


def _minimal_task(task: dict[str, Any]) -> None:
    task.update(
        description=None,
        priority="none",
        tags=[],
        due_at=None,
        recurrence=None,
        reminders=[],
        series_id=None,
        occurrence=None,
    )


VALID_VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "minimal task (nulls, empty arrays)": lambda ev: _minimal_task(ev["data"]["task"]),
    "no traceparent": lambda ev: ev.pop("traceparent"),
    "traceparent with tracestate": lambda ev: ev.update(tracestate="congo=t61rcWkgMzE"),
    "time without fraction": lambda ev: ev.update(time="2025-04-10T07:55:00Z"),
    "max-size strings": lambda ev: ev["data"]["task"].update(
        title="t" * 500, description="d" * 10000
    ),
    "20 tags of 50 chars, non-ASCII lower-case": lambda ev: ev["data"]["task"].update(
        tags=[f"{i:02d}" + "ä" * 48 for i in range(20)]
    ),
    "10 reminders": lambda ev: ev["data"]["task"].update(
        reminders=[
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "before": f"PT{i + 1}H30M",
                "remind_at": "2025-04-09T08:00:00Z",
                "status": status,
            }
            for i, status in enumerate(["scheduled", "sent", "canceled", "failed", "sent"] * 2)
        ]
    ),
    "completion-based recurrence": lambda ev: ev["data"]["task"].update(
        recurrence={"rrule": "FREQ=WEEKLY;BYDAY=MO", "basis": "completion", "exdates": []}
    ),
}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("variant", sorted(VALID_VARIANTS))
def test_valid_variants(variant: str, event_type: str) -> None:
    event = make_event(event_type)
    VALID_VARIANTS[variant](event)
    validate_event(event)


@pytest.mark.parametrize(
    "changed", [["title"], ["tags", "priority"], ["description", "timezone", "recurrence"]]
)
def test_updated_changed_lists(changed: list[str]) -> None:
    event = make_event("dev.dueflow.task.updated")
    event["data"]["changed"] = changed
    validate_event(event)


# --------------------------------------------------------------------------- broken events

Mutator = Callable[[dict[str, Any]], Any]
UPDATED, CREATED = "dev.dueflow.task.updated", "dev.dueflow.task.created"
COMPLETED, REOPENED = "dev.dueflow.task.completed", "dev.dueflow.task.reopened"
OTHER_UUID = "6f5e4d3c-2b1a-4c9d-8e7f-6a5b4c3d2e1f"


def _env(**attributes: Any) -> Mutator:
    return lambda ev: ev.update(attributes)


def _data(**fields: Any) -> Mutator:
    return lambda ev: ev["data"].update(fields)


def _set(**fields: Any) -> Mutator:
    return lambda ev: ev["data"]["task"].update(fields)


def _reminder(index: int = 0, **fields: Any) -> Mutator:
    """Update reminder ``index`` (0 is relative, ``before``; 1 is absolute, ``at``)."""
    return lambda ev: ev["data"]["task"]["reminders"][index].update(fields)


def _recurrence(**fields: Any) -> Mutator:
    return lambda ev: ev["data"]["task"]["recurrence"].update(fields)


def _drop(*path: str) -> Mutator:
    def mutate(ev: dict[str, Any]) -> None:
        node = ev
        for key in path[:-1]:
            node = node[key][0] if key == "reminders" else node[key]
        del node[path[-1]]

    return mutate


def _tracestate_only(ev: dict[str, Any]) -> None:
    del ev["traceparent"]
    ev["tracestate"] = "congo=t61rcWkgMzE"


# (case id, event type or None for "every type", mutator).
# DATA_CASES are rejected by the data schema file alone (no format checker needed);
# ENVELOPE_CASES are rejected by validate_event (envelope schema or cross-field rules).
DATA_CASES: list[tuple[str, str | None, Mutator]] = [
    ("missing task.id", None, _drop("data", "task", "id")),
    ("missing task.series_id (keys always present)", None, _drop("data", "task", "series_id")),
    ("task.id not a uuid", None, _set(id="task-1")),
    ("task.id upper-case uuid", None, _set(id=TASK_ID.upper())),
    ("status not in enum", None, _set(status="archived")),
    ("status wrong case", None, _set(status="Open")),
    ("priority not in enum", None, _set(priority="urgent")),
    ("due_at with +00:00 offset", None, _set(due_at="2025-04-10T08:00:00+00:00")),
    ("due_at with +02:00 offset", None, _set(due_at="2025-04-10T10:00:00+02:00")),
    ("due_at naive", None, _set(due_at="2025-04-10T08:00:00")),
    ("due_at date only", None, _set(due_at="2025-04-10")),
    ("due_at lower-case z", None, _set(due_at="2025-04-10T08:00:00z")),
    ("due_at epoch number", None, _set(due_at=1744272000)),
    ("created_at not Z", None, _set(created_at="2025-01-10T09:12:44+00:00")),
    ("unknown property in data", None, _data(email="a@example.com")),
    ("unknown property in task", None, _set(owner_token="secret")),
    ("unknown property in reminder", None, _reminder(x=1)),
    ("unknown property in recurrence", None, _recurrence(x=1)),
    ("missing user_id", None, _drop("data", "user_id")),
    ("user_id has whitespace", None, _data(user_id="a b")),
    ("empty title", None, _set(title="")),
    ("title too long", None, _set(title="t" * 501)),
    ("description too long", None, _set(description="d" * 10001)),
    ("upper-case tag", None, _set(tags=["Finance"])),
    ("duplicate tags", None, _set(tags=["finance", "finance"])),
    ("empty tag", None, _set(tags=[""])),
    ("tag too long", None, _set(tags=["t" * 51])),
    ("too many tags", None, _set(tags=[f"tag{i}" for i in range(21)])),
    ("timezone empty", None, _set(timezone="")),
    ("recurrence basis not in enum", None, _recurrence(basis="start")),
    ("recurrence without exdates", None, _drop("data", "task", "recurrence", "exdates")),
    ("recurrence rrule without FREQ", None, _recurrence(rrule="BYDAY=MO")),
    ("exdate not Z", None, _recurrence(exdates=["2025-07-10T10:00:00+02:00"])),
    ("reminder with both before and at", None, _reminder(at="2025-04-09T08:00:00Z")),
    ("reminder with neither before nor at", None, _drop("data", "task", "reminders", "before")),
    ("reminder before is not a duration", None, _reminder(before="15 minutes")),
    ("reminder before is an empty duration", None, _reminder(before="PT")),
    ("reminder before is negative", None, _reminder(before="-PT15M")),
    ("reminder at not Z", None, _reminder(1, at="2025-04-10T08:30:00+02:00")),
    ("reminder before is null", None, _reminder(before=None)),
    ("reminder status not in enum", None, _reminder(status="due")),
    ("reminder remind_at not Z", None, _reminder(remind_at="2025-04-09 08:00")),
    ("reminder id missing", None, _drop("data", "task", "reminders", "id")),
    (
        "too many reminders",
        None,
        lambda ev: ev["data"]["task"]["reminders"].extend(ev["data"]["task"]["reminders"] * 5),
    ),
    ("occurrence 0", None, _set(occurrence=0)),
    ("occurrence not an integer", None, _set(occurrence="3")),
    ("open task with completed_at", CREATED, _set(completed_at=DONE_AT)),
    ("done task without completed_at", "dev.dueflow.task.deleted", _set(status="done")),
    ("completed event with open task", COMPLETED, _set(status="open", completed_at=None)),
    ("reopened event with done task", REOPENED, _set(status="done", completed_at=DONE_AT)),
    ("updated without changed", UPDATED, _drop("data", "changed")),
    ("updated with empty changed", UPDATED, _data(changed=[])),
    ("updated with status in changed", UPDATED, _data(changed=["status"])),
    ("updated with updated_at in changed", UPDATED, _data(changed=["updated_at"])),
    ("updated with unknown field in changed", UPDATED, _data(changed=["colour"])),
    ("updated with duplicate changed", UPDATED, _data(changed=["title", "title"])),
    ("changed on a created event", CREATED, _data(changed=["title"])),
]

ENVELOPE_CASES: list[tuple[str, str | None, Mutator]] = [
    ("empty object", None, lambda ev: ev.clear()),
    ("missing partitionkey", None, _drop("partitionkey")),
    ("missing subject", None, _drop("subject")),
    ("missing data", None, _drop("data")),
    ("data is a string", None, lambda ev: ev.update(data=json.dumps(ev["data"]))),
    ("specversion 0.3", None, _env(specversion="0.3")),
    ("other source", None, _env(source="/dueflow/reminders")),
    ("unknown type", None, _env(type="dev.dueflow.task.archived")),
    ("id not a uuid", None, _env(id="42")),
    ("time not Z", None, _env(time="2025-04-10T09:55:00+02:00")),
    ("datacontenttype not JSON", None, _env(datacontenttype="text/plain")),
    ("dataschema of another type", CREATED, _env(dataschema=dataschema(UPDATED))),
    (
        "dataschema version without a schema",
        None,
        lambda ev: _env(dataschema=ev["dataschema"].replace(":1", ":2"))(ev),
    ),
    ("dataschema as URL", None, _env(dataschema="https://dueflow.dev/schemas/task.json")),
    ("subject is not the task id", None, _env(subject=OTHER_UUID)),
    ("partitionkey is not the task id", None, _env(partitionkey=OTHER_UUID)),
    ("unknown envelope attribute", None, _env(authorization="Bearer abc")),
    ("malformed traceparent", None, _env(traceparent="00-abc-def-01")),
    ("all-zero trace id", None, _env(traceparent=f"00-{'0' * 32}-00f067aa0ba902b7-01")),
    ("tracestate without traceparent", None, _tracestate_only),
    ("non-ASCII upper-case tag", None, _set(tags=["ärger", "Ärger"])),
]


def _expand(cases: list[tuple[str, str | None, Mutator]]) -> list[Any]:
    return [
        pytest.param(event_type, mutate, id=f"{case}[{event_type.rsplit('.', 1)[1]}]")
        for case, only_type, mutate in cases
        for event_type in ([only_type] if only_type else EVENT_TYPES)
    ]


@pytest.mark.parametrize(("event_type", "mutate"), _expand(DATA_CASES))
def test_broken_data_is_rejected(event_type: str, mutate: Mutator, registry: Registry) -> None:
    event = make_event(event_type)
    mutate(event)
    assert not data_validator(registry, event_type).is_valid(event["data"])
    with pytest.raises(ValidationError):
        validate_event(event)


@pytest.mark.parametrize(("event_type", "mutate"), _expand(ENVELOPE_CASES))
def test_broken_envelope_is_rejected(event_type: str, mutate: Mutator) -> None:
    event = make_event(event_type)
    mutate(event)
    with pytest.raises(ValidationError):
        validate_event(event)


def test_non_mapping_is_rejected() -> None:
    with pytest.raises(ValidationError):
        validate_event(json.dumps(make_event("dev.dueflow.task.created")))  # type: ignore[arg-type]


def test_error_path_points_into_the_event() -> None:
    event = make_event("dev.dueflow.task.updated")
    event["data"]["task"]["due_at"] = "2025-04-10T10:00:00+02:00"
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path) == ["data", "task", "due_at"]
    assert "$.data.task.due_at" in excinfo.value.message


def test_validate_event_does_not_modify_the_event() -> None:
    event = make_event("dev.dueflow.task.completed")
    before = copy.deepcopy(event)
    validate_event(event)
    assert event == before


# --------------------------------------------------------------------------- delivery events
# dev.dueflow.reminder.due and dev.dueflow.notification.sent|failed: data names the task by
# task_id, and subject and partitionkey must equal it.

REMINDER_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
REMIND_AT = "2025-04-09T08:00:00Z"


def make_delivery_data(event_type: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user_id": USER_ID,
        "task_id": TASK_ID,
        "reminder_id": REMINDER_ID,
        "remind_at": REMIND_AT,
    }
    if event_type == REMINDER_DUE:
        data.update(
            title="Submit quarterly VAT return",
            due_at="2025-04-10T08:00:00Z",
            timezone="Europe/Berlin",
            late=False,
        )
    else:
        data["backend"] = "smtp"
    if event_type == NOTIFICATION_FAILED:
        data["error"] = "SMTP mail.example.net:587 rejected the message: 552 message too large"
    return data


def make_delivery_event(event_type: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "source": SOURCES[event_type],
        "type": event_type,
        "subject": TASK_ID,
        "time": "2025-04-09T08:00:31.207114Z",
        "datacontenttype": "application/json",
        "dataschema": dataschema(event_type),
        "partitionkey": TASK_ID,
        "data": make_delivery_data(event_type),
    }
    event.update(overrides)
    return event


@pytest.mark.parametrize("event_type", DELIVERY_TYPES)
def test_realistic_delivery_event_is_valid(event_type: str, registry: Registry) -> None:
    event = make_delivery_event(event_type)
    data_validator(registry, event_type).validate(event["data"])
    validate_event(event)


NOTIFICATIONS = (NOTIFICATION_SENT, NOTIFICATION_FAILED)
DELIVERY_VALID_VARIANTS: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("task without due date (absolute reminder)", (REMINDER_DUE,), _data(due_at=None)),
    ("late", (REMINDER_DUE,), _data(late=True)),
    ("remind_at with microseconds", DELIVERY_TYPES, _data(remind_at="2025-04-09T08:00:00.5Z")),
    ("max-size title, non-ASCII", (REMINDER_DUE,), _data(title="Ä" * 500)),
    ("title with @ (free text)", (REMINDER_DUE,), _data(title="Call Anna @ 5")),
    ("time without fraction", DELIVERY_TYPES, _env(time="2025-04-09T08:00:31Z")),
    (
        "with traceparent",
        DELIVERY_TYPES,
        _env(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ),
    ("backend eml", NOTIFICATIONS, _data(backend="eml")),
    ("backend outbox (before the rename)", NOTIFICATIONS, _data(backend="outbox")),
    ("backend sendgrid", NOTIFICATIONS, _data(backend="sendgrid")),
    ("backend dapr", NOTIFICATIONS, _data(backend="dapr")),
    ("error of 500 characters", (NOTIFICATION_FAILED,), _data(error="e" * 500)),
    ("error 'unknown error'", (NOTIFICATION_FAILED,), _data(error="unknown error")),
]


def _expand_delivery(cases: list[tuple[str, tuple[str, ...], Mutator]]) -> list[Any]:
    return [
        pytest.param(event_type, mutate, id=f"{case}[{event_type.split('.', 2)[2]}]")
        for case, types, mutate in cases
        for event_type in types
    ]


@pytest.mark.parametrize(("event_type", "mutate"), _expand_delivery(DELIVERY_VALID_VARIANTS))
def test_delivery_valid_variants(event_type: str, mutate: Mutator) -> None:
    event = make_delivery_event(event_type)
    mutate(event)
    validate_event(event)


def _drop_data(name: str) -> Mutator:
    return lambda ev: ev["data"].pop(name)


# Rejected by the data schema file alone (no format checker needed).
DELIVERY_DATA_CASES: list[tuple[str, tuple[str, ...], Mutator]] = [
    *[
        (f"missing {name}", DELIVERY_TYPES, _drop_data(name))
        for name in ("user_id", "task_id", "reminder_id", "remind_at")
    ],
    *[
        (f"missing {name}", (REMINDER_DUE,), _drop_data(name))
        for name in ("title", "due_at", "timezone", "late")
    ],
    ("missing backend", NOTIFICATIONS, _drop_data("backend")),
    ("missing error", (NOTIFICATION_FAILED,), _drop_data("error")),
    ("unknown property", DELIVERY_TYPES, _data(extra=1)),
    ("recipient address in data", DELIVERY_TYPES, _data(email="anna@example.com")),
    ("recipient address as 'to'", NOTIFICATIONS, _data(to="anna@example.com")),
    ("user_id has whitespace", DELIVERY_TYPES, _data(user_id="anna smith")),
    ("whole task instead of task_id", DELIVERY_TYPES, _data(task=make_task())),
    ("task_id not a uuid", DELIVERY_TYPES, _data(task_id="task-1")),
    ("task_id upper-case uuid", DELIVERY_TYPES, _data(task_id=TASK_ID.upper())),
    ("reminder_id not a uuid", DELIVERY_TYPES, _data(reminder_id="r1")),
    ("remind_at with offset", DELIVERY_TYPES, _data(remind_at="2025-04-09T10:00:00+02:00")),
    ("remind_at naive", DELIVERY_TYPES, _data(remind_at="2025-04-09T08:00:00")),
    ("remind_at null", DELIVERY_TYPES, _data(remind_at=None)),
    ("due_at with offset", (REMINDER_DUE,), _data(due_at="2025-04-10T10:00:00+02:00")),
    ("empty title", (REMINDER_DUE,), _data(title="")),
    ("title too long", (REMINDER_DUE,), _data(title="t" * 501)),
    ("title null", (REMINDER_DUE,), _data(title=None)),
    ("empty timezone", (REMINDER_DUE,), _data(timezone="")),
    ("late as a string", (REMINDER_DUE,), _data(late="true")),
    ("late null", (REMINDER_DUE,), _data(late=None)),
    ("late as 0", (REMINDER_DUE,), _data(late=0)),
    ("backend on reminder.due", (REMINDER_DUE,), _data(backend="smtp")),
    ("title on a notification", NOTIFICATIONS, _data(title="Water the plants")),
    ("late on a notification", NOTIFICATIONS, _data(late=True)),
    ("unknown backend", NOTIFICATIONS, _data(backend="ses")),
    ("backend upper-case", NOTIFICATIONS, _data(backend="SMTP")),
    ("error on a sent notification", (NOTIFICATION_SENT,), _data(error="boom")),
    ("error on reminder.due", (REMINDER_DUE,), _data(error="boom")),
    ("empty error", (NOTIFICATION_FAILED,), _data(error="")),
    ("error null", (NOTIFICATION_FAILED,), _data(error=None)),
    ("error too long", (NOTIFICATION_FAILED,), _data(error="e" * 501)),
    (
        "error naming the recipient",
        (NOTIFICATION_FAILED,),
        _data(
            error="SMTP mx:25 refused anna@example.com: "
            "{'anna@example.com': (550, b'no such user')}"
        ),
    ),
]

DELIVERY_ENVELOPE_CASES: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("source of the task events", DELIVERY_TYPES, _env(source="/dueflow/tasks")),
    ("notify source on reminder.due", (REMINDER_DUE,), _env(source="/dueflow/notify")),
    ("reminders source on a notification", NOTIFICATIONS, _env(source="/dueflow/reminders")),
    ("dataschema of a task event", DELIVERY_TYPES, _env(dataschema=dataschema(CREATED))),
    (
        "dataschema of the other outcome",
        (NOTIFICATION_SENT,),
        _env(dataschema=dataschema(NOTIFICATION_FAILED)),
    ),
    (
        "dataschema version without a schema",
        DELIVERY_TYPES,
        lambda ev: _env(dataschema=ev["dataschema"].replace(":1", ":2"))(ev),
    ),
    ("subject is the reminder id", DELIVERY_TYPES, _env(subject=REMINDER_ID)),
    ("partitionkey is the reminder id", DELIVERY_TYPES, _env(partitionkey=REMINDER_ID)),
    ("subject is another task", DELIVERY_TYPES, _env(subject=OTHER_UUID)),
    ("partitionkey is another task", DELIVERY_TYPES, _env(partitionkey=OTHER_UUID)),
    ("partitionkey is the user", DELIVERY_TYPES, _env(partitionkey=USER_ID)),
    ("missing subject", DELIVERY_TYPES, _drop("subject")),
    ("missing partitionkey", DELIVERY_TYPES, _drop("partitionkey")),
    ("unknown envelope attribute", DELIVERY_TYPES, _env(recipient="anna@example.com")),
    ("time not Z", DELIVERY_TYPES, _env(time="2025-04-09T10:00:31+02:00")),
    ("tracestate without traceparent", DELIVERY_TYPES, _env(tracestate="congo=t61rcWkgMzE")),
    ("data is a string", DELIVERY_TYPES, lambda ev: ev.update(data=json.dumps(ev["data"]))),
]


@pytest.mark.parametrize(("event_type", "mutate"), _expand_delivery(DELIVERY_DATA_CASES))
def test_broken_delivery_data_is_rejected(
    event_type: str, mutate: Mutator, registry: Registry
) -> None:
    event = make_delivery_event(event_type)
    mutate(event)
    assert not data_validator(registry, event_type).is_valid(event["data"])
    with pytest.raises(ValidationError):
        validate_event(event)


@pytest.mark.parametrize(("event_type", "mutate"), _expand_delivery(DELIVERY_ENVELOPE_CASES))
def test_broken_delivery_envelope_is_rejected(event_type: str, mutate: Mutator) -> None:
    event = make_delivery_event(event_type)
    mutate(event)
    with pytest.raises(ValidationError):
        validate_event(event)


def test_delivery_subject_error_names_data_task_id() -> None:
    event = make_delivery_event(REMINDER_DUE, subject=REMINDER_ID)
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path) == ["subject"]
    assert "data.task_id" in excinfo.value.message


def test_task_data_under_a_delivery_type_is_rejected() -> None:
    """A task event's data relabelled as reminder.due fails on data, not with a KeyError."""
    event = make_delivery_event(REMINDER_DUE, data=make_data(CREATED))
    with pytest.raises(ValidationError):
        validate_event(event)


def test_events_module_emits_valid_delivery_events() -> None:
    """What dueflow.domain.events builds (and the outbox stores as JSON) validates."""
    now = datetime(2025, 4, 9, 8, 0, 31, 207114, tzinfo=UTC)
    due = {  # a row as the reminders tick claims it
        "user_id": USER_ID,
        "task_id": TASK_ID,
        "reminder_id": REMINDER_ID,
        "remind_at": datetime(2025, 4, 9, 8, 0, tzinfo=UTC),
        "title": "Submit quarterly VAT return",
        "due_at": datetime(2025, 4, 10, 8, 0, tzinfo=UTC),
        "timezone": "Europe/Berlin",
    }
    # an absolute reminder on a task without a due date, remind_at with microseconds
    without_due_date = {
        **due,
        "due_at": None,
        "remind_at": datetime(2025, 4, 9, 6, 30, 0, 5, tzinfo=UTC),
    }
    mailed = {k: due[k] for k in ("user_id", "task_id", "reminder_id", "remind_at")}
    built = [
        events.reminder_due_event(due, now, late=False),
        events.reminder_due_event(without_due_date, now, late=True),
        events.notification_event(events.NOTIFICATION_SENT, mailed, "eml", now),
        events.notification_event(events.NOTIFICATION_SENT, mailed, "dapr", now),
        events.notification_event(
            events.NOTIFICATION_FAILED,
            mailed,
            "sendgrid",
            now,
            'SendGrid answered 400: {"errors":[{"message":"invalid"}]}',
        ),
        events.notification_event(events.NOTIFICATION_FAILED, mailed, "smtp", now, None),
        events.notification_event(events.NOTIFICATION_FAILED, mailed, "smtp", now, "x" * 900),
    ]
    for event in built:
        stored = json.loads(json.dumps(event))  # the outbox keeps events as JSON text
        validate_event(stored)
        assert stored["source"] == SOURCES[stored["type"]]
        assert stored["subject"] == stored["partitionkey"] == TASK_ID
        assert stored["dataschema"] == dataschema(stored["type"])
    assert {event["type"] for event in built} == set(DELIVERY_TYPES)
    assert built[1]["data"]["due_at"] is None and built[1]["data"]["late"] is True
    assert built[5]["data"]["error"] == "unknown error"
    assert len(built[6]["data"]["error"]) == 500
    assert "error" not in built[2]["data"]


# --------------------------------------------------------------------------- batch events
# dev.dueflow.reminders.due (several reminder.due data, from /dueflow/reminders) and
# dev.dueflow.notifications.recorded (the outcomes of e-mailing one, from /dueflow/notify). A
# batch is its own partition: subject and partitionkey are the batch's id, never cross-checked
# against the tasks it lists.

BATCH_ID = "7d3e9b1a-2c4f-4e6a-8b0d-5f1e2a3b4c5d"
OTHER_REMINDER_ID = "0c1d2e3f-4a5b-4c6d-9e7f-8a9b0c1d2e3f"


def make_batch_data(event_type: str) -> dict[str, Any]:
    """Two reminders of two tasks (one late, one without a due date), or their outcomes."""
    first = make_delivery_data(REMINDER_DUE)
    second = {
        **first,
        "task_id": OTHER_UUID,
        "reminder_id": OTHER_REMINDER_ID,
        "remind_at": "2025-04-09T07:58:30.25Z",
        "title": "Anrufen: Tante Käthe",
        "due_at": None,
        "timezone": "UTC",
        "late": True,
    }
    if event_type == REMINDERS_DUE:
        return {"reminders": [first, second]}
    keys = ("user_id", "task_id", "reminder_id", "remind_at")
    return {
        "backend": "smtp",
        "notifications": [
            {**{k: first[k] for k in keys}, "status": "sent"},
            {
                **{k: second[k] for k in keys},
                "status": "failed",
                "error": "SMTP mx.example.net:25 refused <address>: 550 5.1.1 User unknown",
            },
        ],
    }


def make_batch_event(event_type: str, **overrides: Any) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": "e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a7b8",
        "source": SOURCES[event_type],
        "type": event_type,
        "subject": BATCH_ID,
        "time": "2025-04-09T08:00:31.207114Z",
        "datacontenttype": "application/json",
        "dataschema": dataschema(event_type),
        "partitionkey": BATCH_ID,
        "data": make_batch_data(event_type),
    }
    event.update(overrides)
    return event


def _item(index: int, **fields: Any) -> Mutator:
    """Update item ``index`` of the batch (a reminder, or an outcome)."""

    def mutate(ev: dict[str, Any]) -> None:
        key = "reminders" if "reminders" in ev["data"] else "notifications"
        ev["data"][key][index].update(fields)

    return mutate


def _drop_item_field(index: int, name: str) -> Mutator:
    def mutate(ev: dict[str, Any]) -> None:
        key = "reminders" if "reminders" in ev["data"] else "notifications"
        del ev["data"][key][index][name]

    return mutate


def _all_sent(ev: dict[str, Any]) -> None:
    for outcome in ev["data"]["notifications"]:
        outcome["status"] = "sent"
        outcome.pop("error", None)


def _items(count: int) -> Mutator:
    """Make the batch ``count`` items long (copies of its first)."""

    def mutate(ev: dict[str, Any]) -> None:
        key = "reminders" if "reminders" in ev["data"] else "notifications"
        ev["data"][key] = [copy.deepcopy(ev["data"][key][0]) for _ in range(count)]

    return mutate


@pytest.mark.parametrize("event_type", BATCH_TYPES)
def test_realistic_batch_event_is_valid(event_type: str, registry: Registry) -> None:
    event = make_batch_event(event_type)
    data_validator(registry, event_type).validate(event["data"])
    validate_event(event)


def test_each_batch_item_is_reminder_due_data() -> None:
    """The batch's items are exactly reminder.due's data: the item schema is a reference to it."""
    items = _load(f"{REMINDERS_DUE}.json")["properties"]["reminders"]["items"]
    assert items == {"$ref": dataschema(REMINDER_DUE)}
    for item in make_batch_data(REMINDERS_DUE)["reminders"]:
        validate_event(
            make_delivery_event(
                REMINDER_DUE, data=item, subject=item["task_id"], partitionkey=item["task_id"]
            )
        )


BATCH_VALID_VARIANTS: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("one item", BATCH_TYPES, _items(1)),
    ("1000 items", BATCH_TYPES, _items(1000)),
    (
        "subject and partitionkey a task's id",
        BATCH_TYPES,
        _env(subject=TASK_ID, partitionkey=TASK_ID),
    ),
    (
        "with traceparent",
        BATCH_TYPES,
        _env(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ),
    ("every outcome sent", (NOTIFICATIONS_RECORDED,), _all_sent),
    ("every outcome failed", (NOTIFICATIONS_RECORDED,), _item(0, status="failed", error="x")),
    ("backend eml", (NOTIFICATIONS_RECORDED,), _data(backend="eml")),
    ("backend outbox (before the rename)", (NOTIFICATIONS_RECORDED,), _data(backend="outbox")),
    ("backend sendgrid", (NOTIFICATIONS_RECORDED,), _data(backend="sendgrid")),
    ("backend dapr", (NOTIFICATIONS_RECORDED,), _data(backend="dapr")),
    ("error of 500 characters", (NOTIFICATIONS_RECORDED,), _item(1, error="e" * 500)),
]


@pytest.mark.parametrize(("event_type", "mutate"), _expand_delivery(BATCH_VALID_VARIANTS))
def test_batch_valid_variants(event_type: str, mutate: Mutator) -> None:
    event = make_batch_event(event_type)
    mutate(event)
    validate_event(event)


# Rejected by the data schema file alone (no format checker needed).
BATCH_DATA_CASES: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("missing reminders", (REMINDERS_DUE,), _drop_data("reminders")),
    ("reminders empty", (REMINDERS_DUE,), _data(reminders=[])),
    (
        "reminders an object",
        (REMINDERS_DUE,),
        lambda ev: _data(reminders=ev["data"]["reminders"][0])(ev),
    ),
    ("1001 reminders", (REMINDERS_DUE,), _items(1001)),
    ("unknown top-level key", BATCH_TYPES, _data(batch_id=BATCH_ID)),
    ("an item not an object", (REMINDERS_DUE,), lambda ev: ev["data"]["reminders"].append("r")),
    *[
        (f"item missing {name}", (REMINDERS_DUE,), _drop_item_field(1, name))
        for name in (
            "user_id",
            "task_id",
            "reminder_id",
            "remind_at",
            "title",
            "due_at",
            "timezone",
            "late",
        )
    ],
    ("item with an address", (REMINDERS_DUE,), _item(1, email="anna@example.com")),
    ("item task_id not a uuid", (REMINDERS_DUE,), _item(0, task_id="task-1")),
    (
        "item remind_at with offset",
        (REMINDERS_DUE,),
        _item(1, remind_at="2025-04-09T10:00:00+02:00"),
    ),
    ("item late as a string", (REMINDERS_DUE,), _item(1, late="true")),
    ("item title empty", (REMINDERS_DUE,), _item(0, title="")),
    ("item with a status", (REMINDERS_DUE,), _item(0, status="sent")),
    ("missing backend", (NOTIFICATIONS_RECORDED,), _drop_data("backend")),
    ("missing notifications", (NOTIFICATIONS_RECORDED,), _drop_data("notifications")),
    ("notifications empty", (NOTIFICATIONS_RECORDED,), _data(notifications=[])),
    ("1001 notifications", (NOTIFICATIONS_RECORDED,), _items(1001)),
    ("unknown backend", (NOTIFICATIONS_RECORDED,), _data(backend="ses")),
    *[
        (f"outcome missing {name}", (NOTIFICATIONS_RECORDED,), _drop_item_field(0, name))
        for name in ("user_id", "task_id", "reminder_id", "remind_at", "status")
    ],
    ("failed without an error", (NOTIFICATIONS_RECORDED,), _drop_item_field(1, "error")),
    ("sent with an error", (NOTIFICATIONS_RECORDED,), _item(0, error="boom")),
    ("failed with an empty error", (NOTIFICATIONS_RECORDED,), _item(1, error="")),
    ("failed with a null error", (NOTIFICATIONS_RECORDED,), _item(1, error=None)),
    ("error too long", (NOTIFICATIONS_RECORDED,), _item(1, error="e" * 501)),
    (
        "error naming the recipient",
        (NOTIFICATIONS_RECORDED,),
        _item(1, error="SMTP mx:25 refused anna@example.com: (550, b'no such user')"),
    ),
    ("error with a lone @", (NOTIFICATIONS_RECORDED,), _item(1, error="550 rejected @ mx")),
    ("status skipped", (NOTIFICATIONS_RECORDED,), _item(0, status="skipped")),
    ("status retry", (NOTIFICATIONS_RECORDED,), _item(0, status="retry")),
    ("outcome with backend", (NOTIFICATIONS_RECORDED,), _item(0, backend="smtp")),
    ("outcome with the recipient", (NOTIFICATIONS_RECORDED,), _item(0, to="anna@example.com")),
    ("outcome with a title", (NOTIFICATIONS_RECORDED,), _item(0, title="Water the plants")),
    ("outcome user_id with whitespace", (NOTIFICATIONS_RECORDED,), _item(0, user_id="anna smith")),
    (
        "outcome remind_at naive",
        (NOTIFICATIONS_RECORDED,),
        _item(0, remind_at="2025-04-09T08:00:00"),
    ),
    ("outcome reminder_id not a uuid", (NOTIFICATIONS_RECORDED,), _item(0, reminder_id="r1")),
    (
        "reminders in a notifications.recorded",
        (NOTIFICATIONS_RECORDED,),
        lambda ev: _data(reminders=make_batch_data(REMINDERS_DUE)["reminders"])(ev),
    ),
    (
        "one reminder.due's data",
        (REMINDERS_DUE,),
        lambda ev: ev.update(data=make_delivery_data(REMINDER_DUE)),
    ),
    (
        "one notification's data",
        (NOTIFICATIONS_RECORDED,),
        lambda ev: ev.update(data=make_delivery_data(NOTIFICATION_SENT)),
    ),
]

BATCH_ENVELOPE_CASES: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("source of the task events", BATCH_TYPES, _env(source="/dueflow/tasks")),
    ("notify source on reminders.due", (REMINDERS_DUE,), _env(source="/dueflow/notify")),
    (
        "reminders source on notifications.recorded",
        (NOTIFICATIONS_RECORDED,),
        _env(source="/dueflow/reminders"),
    ),
    ("dataschema of the single event", (REMINDERS_DUE,), _env(dataschema=dataschema(REMINDER_DUE))),
    (
        "dataschema of the other batch",
        (NOTIFICATIONS_RECORDED,),
        _env(dataschema=dataschema(REMINDERS_DUE)),
    ),
    (
        "dataschema version without a schema",
        BATCH_TYPES,
        lambda ev: _env(dataschema=ev["dataschema"].replace(":1", ":2"))(ev),
    ),
    ("subject not a uuid", BATCH_TYPES, _env(subject="batch-1")),
    ("partitionkey not a uuid", BATCH_TYPES, _env(partitionkey="batch-1")),
    ("missing subject", BATCH_TYPES, _drop("subject")),
    ("missing partitionkey", BATCH_TYPES, _drop("partitionkey")),
    ("unknown envelope attribute", BATCH_TYPES, _env(recipients="anna@example.com")),
    ("time not Z", BATCH_TYPES, _env(time="2025-04-09T10:00:31+02:00")),
    ("data is a string", BATCH_TYPES, lambda ev: ev.update(data=json.dumps(ev["data"]))),
]


@pytest.mark.parametrize(("event_type", "mutate"), _expand_delivery(BATCH_DATA_CASES))
def test_broken_batch_data_is_rejected(
    event_type: str, mutate: Mutator, registry: Registry
) -> None:
    event = make_batch_event(event_type)
    mutate(event)
    assert not data_validator(registry, event_type).is_valid(event["data"])
    with pytest.raises(ValidationError):
        validate_event(event)


@pytest.mark.parametrize(("event_type", "mutate"), _expand_delivery(BATCH_ENVELOPE_CASES))
def test_broken_batch_envelope_is_rejected(event_type: str, mutate: Mutator) -> None:
    event = make_batch_event(event_type)
    mutate(event)
    with pytest.raises(ValidationError):
        validate_event(event)


@pytest.mark.parametrize(
    ("case", "mutate"),
    [
        pytest.param(case, mutate, id=case)
        for case, types, mutate in DELIVERY_DATA_CASES
        if REMINDER_DUE in types
    ],
)
def test_an_item_that_is_no_valid_reminder_due_data_breaks_the_batch(
    case: str, mutate: Mutator
) -> None:
    """Each way a reminder.due's data is broken, in the middle item of a batch of three."""
    single = make_delivery_event(REMINDER_DUE)
    mutate(single)
    event = make_batch_event(REMINDERS_DUE)
    good = event["data"]["reminders"]
    event["data"]["reminders"] = [good[0], single["data"], good[1]]
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path)[:3] == ["data", "reminders", 1], case


def test_batch_error_path_points_into_the_item() -> None:
    event = make_batch_event(NOTIFICATIONS_RECORDED)
    del event["data"]["notifications"][1]["error"]
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path) == ["data", "notifications", 1]
    assert "$.data.notifications[1]" in excinfo.value.message


def test_a_single_event_type_is_still_cross_checked_against_its_task() -> None:
    """The batch types skip the subject check; reminder.due, with a batch's subject, does not."""
    event = make_delivery_event(REMINDER_DUE, subject=BATCH_ID, partitionkey=BATCH_ID)
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path) == ["subject"]


def test_events_module_emits_valid_batch_events() -> None:
    """What dueflow.domain.events builds for batches (and the outbox stores as JSON) validates."""
    now = datetime(2025, 4, 9, 8, 0, 31, 207114, tzinfo=UTC)
    due = {  # rows as the reminders tick claims them
        "user_id": USER_ID,
        "task_id": TASK_ID,
        "reminder_id": REMINDER_ID,
        "remind_at": datetime(2025, 4, 9, 8, 0, tzinfo=UTC),
        "title": "Submit quarterly VAT return",
        "due_at": datetime(2025, 4, 10, 8, 0, tzinfo=UTC),
        "timezone": "Europe/Berlin",
    }
    other = {
        **due,
        "task_id": OTHER_UUID,
        "reminder_id": OTHER_REMINDER_ID,
        "due_at": None,
        "remind_at": datetime(2025, 4, 9, 6, 30, 0, 5, tzinfo=UTC),
    }
    outcome_keys = ("user_id", "task_id", "reminder_id", "remind_at")
    outcomes = [
        {**{k: due[k] for k in outcome_keys}, "status": "sent"},
        {**{k: other[k] for k in outcome_keys}, "status": "failed", "error": None},
        {**{k: other[k] for k in outcome_keys}, "status": "failed", "error": "x" * 900},
    ]
    reminders_due = events.reminders_due_event([(due, False), (other, True)], now)
    again = events.reminders_due_event([(due, False)], now)
    recorded = events.notifications_recorded_event(outcomes, "smtp", now)

    for event in (reminders_due, again, recorded):
        stored = json.loads(json.dumps(event))  # the outbox keeps events as JSON text
        validate_event(stored)
        assert stored["source"] == SOURCES[stored["type"]]
        assert stored["subject"] == stored["partitionkey"]
        assert stored["subject"] not in (TASK_ID, OTHER_UUID)
        assert stored["dataschema"] == dataschema(stored["type"])
    assert reminders_due["subject"] != again["subject"]  # each batch is a partition of its own
    assert reminders_due["data"]["reminders"] == [
        events.reminder_due_data(due, False),
        events.reminder_due_data(other, True),
    ]
    assert reminders_due["data"]["reminders"][1]["remind_at"] == "2025-04-09T06:30:00.000005Z"
    notifications = recorded["data"]["notifications"]
    assert recorded["data"]["backend"] == "smtp"
    assert "error" not in notifications[0]
    assert notifications[1]["error"] == "unknown error"
    assert len(notifications[2]["error"]) == 500


# --------------------------------------------------------------------------- commands
# dev.dueflow.command.task.create|update|complete|delete, as producers write them to the Kafka
# topic task-events: the producer's source and id, subject/time/dataschema/partitionkey
# optional, and partitionkey (and subject), if present, equal to data.id or, for create,
# data.user_id. data is API input (POST /tasks body or merge patch), not yet normalised.

ASSISTANT = "/chat-assistant"
CREATE_BODY: dict[str, Any] = {
    "title": "  Submit quarterly VAT return ",
    "description": "Export invoices from the accounting tool first.",
    "priority": "high",
    "tags": ["Finance", "admin", "finance"],
    "due_at": "2025-04-10T10:00:00+02:00",
    "timezone": "Europe/Berlin",
    "recurrence": {
        "rrule": "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=10",
        "basis": "due",
        "exdates": ["2025-07-10T10:00:00+02:00"],
    },
    "reminders": [{"before": "P1D"}, {"at": "2025-04-10T06:30:00Z"}],
}


def make_command_data(command_type: str) -> dict[str, Any]:
    if command_type == CREATE_CMD:
        return {"user_id": USER_ID, **copy.deepcopy(CREATE_BODY)}
    data: dict[str, Any] = {"user_id": USER_ID, "id": TASK_ID}
    if command_type == UPDATE_CMD:
        data.update(priority="low", description=None, due_at="2025-04-11T09:00:00-04:00")
    return data


def command_key(command_type: str) -> str:
    return USER_ID if command_type == CREATE_CMD else TASK_ID


def make_command(command_type: str, **overrides: Any) -> dict[str, Any]:
    """A command with every optional attribute set (as a careful producer writes it)."""
    key = command_key(command_type)
    event = {
        "specversion": "1.0",
        "id": "cmd-2025-04-10-0001",
        "source": ASSISTANT,
        "type": command_type,
        "subject": key,
        "time": "2025-04-10T09:55:00.482913+02:00",
        "datacontenttype": "application/json",
        "dataschema": dataschema(command_type),
        "partitionkey": key,
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": make_command_data(command_type),
    }
    event.update(overrides)
    return event


def test_command_types_are_the_ones_validate_event_knows() -> None:
    assert tuple(COMMAND_TYPES) == COMMANDS


def _properties(schema: dict[str, Any]) -> set[str]:
    return set(schema["properties"])


def test_command_data_fields_are_the_api_bodies() -> None:
    """create = TaskCreate + user_id, update = TaskPatch + user_id + id (same field names)."""
    api = json.loads(OPENAPI.read_text(encoding="utf-8"))["components"]["schemas"]
    create, update = _load(f"{CREATE_CMD}.json"), _load(f"{UPDATE_CMD}.json")
    assert _properties(create) == _properties(api["TaskCreate"]) | {"user_id"}
    assert set(create["required"]) == set(api["TaskCreate"]["required"]) | {"user_id"}
    assert _properties(update) == _properties(api["TaskPatch"]) | {"user_id", "id"}
    assert set(update["required"]) == {"user_id", "id"}
    for kind in (COMPLETE_CMD, DELETE_CMD):
        schema = _load(f"{kind}.json")
        assert _properties(schema) == set(schema["required"]) == {"user_id", "id"}
        assert schema["additionalProperties"] is False


@pytest.mark.parametrize("command_type", COMMANDS)
def test_realistic_command_is_valid(command_type: str, registry: Registry) -> None:
    event = make_command(command_type)
    data_validator(registry, command_type).validate(event["data"])
    validate_event(event)


def test_the_api_accepts_the_realistic_command_data() -> None:
    """The fixtures are not only schema-valid: the API's own validation takes them too."""
    body = make_command_data(CREATE_CMD)
    body.pop("user_id")
    assert parse_create(body).tags == ("finance", "admin")
    patch = make_command_data(UPDATE_CMD)
    for name in ("user_id", "id"):
        patch.pop(name)
    assert parse_patch(patch).description is None


def _minimal_envelope(ev: dict[str, Any]) -> None:
    for attribute in ("subject", "time", "datacontenttype", "dataschema", "partitionkey"):
        ev.pop(attribute)
    ev.pop("traceparent")


def _minimal_create(ev: dict[str, Any]) -> None:
    ev["data"] = {"user_id": USER_ID, "title": "x"}


def _cdata(**fields: Any) -> Mutator:
    return lambda ev: ev["data"].update(fields)


def _cdrop(*names: str) -> Mutator:
    def mutate(ev: dict[str, Any]) -> None:
        for name in names:
            ev["data"].pop(name)

    return mutate


ID_CMDS = (UPDATE_CMD, COMPLETE_CMD, DELETE_CMD)
# (case, command types, mutator): valid for validate_event.
COMMAND_VALID_VARIANTS: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("only the required attributes", COMMANDS, _minimal_envelope),
    ("uuid id", COMMANDS, _env(id="b7e2c1d0-3f4a-4b5c-9d6e-7f8091a2b3c4")),
    ("ULID id", COMMANDS, _env(id="01JX3N9P8Q2R5S7T9V1W3Y5Z7A")),
    ("id of 255 characters", COMMANDS, _env(id="i" * 255)),
    ("absolute URI source", COMMANDS, _env(source="https://assistant.example.com/chat")),
    ("URN source", COMMANDS, _env(source="urn:example:assistant")),
    ("time in UTC", COMMANDS, _env(time="2025-04-10T07:55:00Z")),
    ("time with negative offset", COMMANDS, _env(time="2025-04-10T03:55:00-04:00")),
    (
        "datacontenttype with charset",
        COMMANDS,
        _env(datacontenttype="application/json; charset=utf-8"),
    ),
    ("tracestate with traceparent", COMMANDS, _env(tracestate="congo=t61rcWkgMzE")),
    ("no subject", COMMANDS, _drop("subject")),
    ("no partitionkey", COMMANDS, _drop("partitionkey")),
    ("no dataschema (latest version)", COMMANDS, _drop("dataschema")),
    ("create: only title and user_id", (CREATE_CMD,), _minimal_create),
    (
        "create: user_id like an OIDC subject",
        (CREATE_CMD,),
        lambda ev: (
            _cdata(user_id="auth0|6650c2f1a9e4b3d2c1f0e9d8")(ev),
            _env(
                partitionkey="auth0|6650c2f1a9e4b3d2c1f0e9d8",
                subject="auth0|6650c2f1a9e4b3d2c1f0e9d8",
            )(ev),
        ),
    ),
    (
        "create: nulls where the API body allows them",
        (CREATE_CMD,),
        _cdata(description=None, due_at=None, recurrence=None),
    ),
    ("create: due_at in UTC", (CREATE_CMD,), _cdata(due_at="2025-04-10T08:00:00Z")),
    ("create: due_at with fraction", (CREATE_CMD,), _cdata(due_at="2025-04-10T08:00:00.5+00:00")),
    ("create: due_at lower-case t and z", (CREATE_CMD,), _cdata(due_at="2025-04-10t08:00:00z")),
    (
        "create: rrule with RRULE: prefix",
        (CREATE_CMD,),
        _cdata(recurrence={"rrule": "RRULE:FREQ=WEEKLY;BYDAY=MO"}),
    ),
    (
        "create: completion basis",
        (CREATE_CMD,),
        _cdata(recurrence={"rrule": "FREQ=DAILY;INTERVAL=3", "basis": "completion", "exdates": []}),
    ),
    (
        "create: 10 reminders",
        (CREATE_CMD,),
        _cdata(
            reminders=[{"before": f"PT{i}M"} for i in range(5)]
            + [{"at": f"2025-04-0{i + 1}T08:00:00+02:00"} for i in range(5)]
        ),
    ),
    (
        "create: 20 tags, non-ASCII, upper-case",
        (CREATE_CMD,),
        _cdata(tags=[f"Ärger{i}" for i in range(20)]),
    ),
    (
        "create: max-size title and description",
        (CREATE_CMD,),
        _cdata(title="t" * 500, description="d" * 10000),
    ),
    (
        "update: nothing but user_id and id",
        (UPDATE_CMD,),
        _cdrop("priority", "description", "due_at"),
    ),
    (
        "update: every nullable field null",
        (UPDATE_CMD,),
        _cdata(
            description=None,
            priority=None,
            tags=None,
            due_at=None,
            timezone=None,
            recurrence=None,
            reminders=None,
        ),
    ),
    ("update: title", (UPDATE_CMD,), _cdata(title="Renamed")),
    ("update: recurrence basis only", (UPDATE_CMD,), _cdata(recurrence={"basis": "completion"})),
    (
        "update: recurrence members reset",
        (UPDATE_CMD,),
        _cdata(recurrence={"basis": None, "exdates": None}),
    ),
    (
        "update: full recurrence",
        (UPDATE_CMD,),
        _cdata(recurrence={"rrule": "FREQ=WEEKLY", "basis": "due", "exdates": []}),
    ),
    (
        "update: reminders replaced",
        (UPDATE_CMD,),
        _cdata(reminders=[{"before": "PT15M"}, {"at": "2025-04-10T06:30:00+02:00"}]),
    ),
    ("update: empty lists", (UPDATE_CMD,), _cdata(tags=[], reminders=[])),
]


def _expand_commands(cases: list[tuple[str, tuple[str, ...], Mutator]]) -> list[Any]:
    return [
        pytest.param(command_type, mutate, id=f"{case}[{command_type.rsplit('.', 1)[1]}]")
        for case, types, mutate in cases
        for command_type in types
    ]


@pytest.mark.parametrize(("command_type", "mutate"), _expand_commands(COMMAND_VALID_VARIANTS))
def test_command_valid_variants(command_type: str, mutate: Mutator) -> None:
    event = make_command(command_type)
    mutate(event)
    validate_event(event)


# Rejected by the data schema file alone (no format checker needed).
COMMAND_DATA_CASES: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("missing user_id", COMMANDS, _cdrop("user_id")),
    ("empty user_id", COMMANDS, _cdata(user_id="")),
    ("numeric user_id", COMMANDS, _cdata(user_id=7)),
    ("user_id has whitespace", COMMANDS, _cdata(user_id="anna smith")),
    ("user_id with whitespace", COMMANDS, _cdata(user_id="anna smith")),
    ("user_id too long", COMMANDS, _cdata(user_id="u" * 256)),
    ("unknown field", COMMANDS, _cdata(colour="red")),
    ("a token in data", COMMANDS, _cdata(token="eyJhbGciOiJIUzI1NiIs")),
    ("server-managed status", (CREATE_CMD, UPDATE_CMD), _cdata(status="done")),
    (
        "server-managed completed_at",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(completed_at="2025-04-10T08:00:00Z"),
    ),
    ("server-managed series_id", (CREATE_CMD, UPDATE_CMD), _cdata(series_id=OTHER_UUID)),
    ("id on create", (CREATE_CMD,), _cdata(id=TASK_ID)),
    ("missing title", (CREATE_CMD,), _cdrop("title")),
    ("empty title", (CREATE_CMD, UPDATE_CMD), _cdata(title="")),
    ("blank title", (CREATE_CMD, UPDATE_CMD), _cdata(title="   ")),
    ("title too long", (CREATE_CMD, UPDATE_CMD), _cdata(title="t" * 501)),
    ("title null", (CREATE_CMD, UPDATE_CMD), _cdata(title=None)),
    ("description too long", (CREATE_CMD, UPDATE_CMD), _cdata(description="d" * 10001)),
    ("priority not in enum", (CREATE_CMD, UPDATE_CMD), _cdata(priority="urgent")),
    ("priority wrong case", (CREATE_CMD, UPDATE_CMD), _cdata(priority="High")),
    ("tags not a list", (CREATE_CMD, UPDATE_CMD), _cdata(tags="home")),
    ("empty tag", (CREATE_CMD, UPDATE_CMD), _cdata(tags=["ok", ""])),
    ("blank tag", (CREATE_CMD, UPDATE_CMD), _cdata(tags=["  "])),
    ("tag too long", (CREATE_CMD, UPDATE_CMD), _cdata(tags=["t" * 51])),
    ("tag not a string", (CREATE_CMD, UPDATE_CMD), _cdata(tags=[1])),
    ("too many tags", (CREATE_CMD, UPDATE_CMD), _cdata(tags=[f"t{i}" for i in range(21)])),
    ("due_at naive", (CREATE_CMD, UPDATE_CMD), _cdata(due_at="2025-04-10T08:00:00")),
    ("due_at date only", (CREATE_CMD, UPDATE_CMD), _cdata(due_at="2025-04-10")),
    ("due_at in words", (CREATE_CMD, UPDATE_CMD), _cdata(due_at="tomorrow-ish")),
    ("due_at with space", (CREATE_CMD, UPDATE_CMD), _cdata(due_at="2025-04-10 08:00:00Z")),
    (
        "due_at offset without colon",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(due_at="2025-04-10T10:00:00+0200"),
    ),
    ("due_at epoch number", (CREATE_CMD, UPDATE_CMD), _cdata(due_at=1744272000)),
    ("timezone empty", (CREATE_CMD, UPDATE_CMD), _cdata(timezone="")),
    ("timezone too long", (CREATE_CMD, UPDATE_CMD), _cdata(timezone="Z" * 65)),
    ("timezone a path", (CREATE_CMD, UPDATE_CMD), _cdata(timezone="/etc/localtime")),
    ("recurrence a string", (CREATE_CMD, UPDATE_CMD), _cdata(recurrence="weekly")),
    (
        "recurrence unknown member",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(recurrence={"rrule": "FREQ=DAILY", "count": 3}),
    ),
    ("recurrence rrule null", (CREATE_CMD, UPDATE_CMD), _cdata(recurrence={"rrule": None})),
    ("recurrence rrule empty", (CREATE_CMD, UPDATE_CMD), _cdata(recurrence={"rrule": ""})),
    (
        "recurrence rrule too long",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(recurrence={"rrule": "FREQ=DAILY;" + "X" * 490}),
    ),
    (
        "recurrence basis not in enum",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(recurrence={"rrule": "FREQ=DAILY", "basis": "start"}),
    ),
    (
        "recurrence exdate naive",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(recurrence={"rrule": "FREQ=DAILY", "exdates": ["2025-04-11T08:00:00"]}),
    ),
    (
        "recurrence 101 exdates",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(recurrence={"rrule": "FREQ=DAILY", "exdates": ["2025-04-11T08:00:00Z"] * 101}),
    ),
    ("create: recurrence without rrule", (CREATE_CMD,), _cdata(recurrence={"basis": "due"})),
    (
        "create: basis null",
        (CREATE_CMD,),
        _cdata(recurrence={"rrule": "FREQ=DAILY", "basis": None}),
    ),
    ("reminders not a list", (CREATE_CMD, UPDATE_CMD), _cdata(reminders={"before": "PT5M"})),
    (
        "reminder with both before and at",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(reminders=[{"before": "PT5M", "at": "2025-04-10T06:30:00Z"}]),
    ),
    ("reminder with neither", (CREATE_CMD, UPDATE_CMD), _cdata(reminders=[{}])),
    (
        "reminder with an extra field",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(reminders=[{"before": "PT5M", "id": OTHER_UUID}]),
    ),
    (
        "reminder as returned by the API",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(reminders=[{"before": "PT5M", "remind_at": "2025-04-10T07:55:00Z"}]),
    ),
    (
        "reminder before not a duration",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(reminders=[{"before": "15 minutes"}]),
    ),
    (
        "reminder before negative",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(reminders=[{"before": "-PT15M"}]),
    ),
    (
        "reminder before empty duration",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(reminders=[{"before": "PT"}]),
    ),
    (
        "reminder at naive",
        (CREATE_CMD, UPDATE_CMD),
        _cdata(reminders=[{"at": "2025-04-10T06:30:00"}]),
    ),
    ("reminder a string", (CREATE_CMD, UPDATE_CMD), _cdata(reminders=["PT5M"])),
    ("11 reminders", (CREATE_CMD, UPDATE_CMD), _cdata(reminders=[{"before": "PT5M"}] * 11)),
    ("missing id", ID_CMDS, _cdrop("id")),
    ("id not a uuid", ID_CMDS, _cdata(id="task-1")),
    ("id upper-case uuid", ID_CMDS, _cdata(id=TASK_ID.upper())),
    ("id a number", ID_CMDS, _cdata(id=42)),
    ("a title on complete/delete", (COMPLETE_CMD, DELETE_CMD), _cdata(title="x")),
    ("the whole task", (COMPLETE_CMD, DELETE_CMD), _cdata(task=make_task())),
]

COMMAND_ENVELOPE_CASES: list[tuple[str, tuple[str, ...], Mutator]] = [
    ("missing id", COMMANDS, _drop("id")),
    ("empty id", COMMANDS, _env(id="")),
    ("id too long", COMMANDS, _env(id="i" * 256)),
    ("numeric id", COMMANDS, _env(id=42)),
    ("missing source", COMMANDS, _drop("source")),
    ("empty source", COMMANDS, _env(source="")),
    ("source with whitespace", COMMANDS, _env(source="chat assistant")),
    ("source too long", COMMANDS, _env(source="/" + "s" * 255)),
    ("missing data", COMMANDS, _drop("data")),
    ("data is a string", COMMANDS, lambda ev: ev.update(data=json.dumps(ev["data"]))),
    ("data is a list", COMMANDS, _env(data=["title", "x"])),
    ("specversion 0.3", COMMANDS, _env(specversion="0.3")),
    ("missing specversion", COMMANDS, _drop("specversion")),
    ("type outside the command family", COMMANDS, _env(type="dev.dueflow.command.task.reopen")),
    ("time naive", COMMANDS, _env(time="2025-04-10T09:55:00")),
    ("time not a date-time", COMMANDS, _env(time="yesterday")),
    ("datacontenttype not JSON", COMMANDS, _env(datacontenttype="text/plain")),
    ("dataschema of another command", (CREATE_CMD,), _env(dataschema=dataschema(UPDATE_CMD))),
    ("dataschema of a task event", COMMANDS, _env(dataschema=dataschema(CREATED))),
    (
        "dataschema version without a schema",
        COMMANDS,
        lambda ev: _env(dataschema=ev["dataschema"].replace(":1", ":2"))(ev),
    ),
    ("dataschema as URL", COMMANDS, _env(dataschema="https://dueflow.dev/schemas/cmd.json")),
    ("partitionkey is another task", ID_CMDS, _env(partitionkey=OTHER_UUID)),
    ("partitionkey is the user", ID_CMDS, _env(partitionkey=USER_ID)),
    ("partitionkey is another user", (CREATE_CMD,), _env(partitionkey="usr_other")),
    ("partitionkey is a task id", (CREATE_CMD,), _env(partitionkey=TASK_ID)),
    ("empty partitionkey", COMMANDS, _env(partitionkey="")),
    ("subject is another task", ID_CMDS, _env(subject=OTHER_UUID)),
    ("subject is another user", (CREATE_CMD,), _env(subject="usr_other")),
    ("unknown envelope attribute", COMMANDS, _env(authorization="Bearer abc")),
    ("user token as extension", COMMANDS, _env(usertoken="eyJhbGciOiJIUzI1NiIs")),
    ("malformed traceparent", COMMANDS, _env(traceparent="00-abc-def-01")),
    ("tracestate without traceparent", COMMANDS, _tracestate_only),
]


@pytest.mark.parametrize(("command_type", "mutate"), _expand_commands(COMMAND_DATA_CASES))
def test_broken_command_data_is_rejected(
    command_type: str, mutate: Mutator, registry: Registry
) -> None:
    event = make_command(command_type)
    mutate(event)
    assert not data_validator(registry, command_type).is_valid(event["data"])
    with pytest.raises(ValidationError):
        validate_event(event)


@pytest.mark.parametrize(("command_type", "mutate"), _expand_commands(COMMAND_ENVELOPE_CASES))
def test_broken_command_envelope_is_rejected(command_type: str, mutate: Mutator) -> None:
    event = make_command(command_type)
    mutate(event)
    with pytest.raises(ValidationError):
        validate_event(event)


@pytest.mark.parametrize("command_type", COMMANDS)
def test_command_without_dataschema_is_checked_against_the_latest_schema(
    command_type: str,
) -> None:
    event = make_command(command_type)
    del event["dataschema"]
    event["data"]["colour"] = "red"
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path) == ["data"]


def test_command_error_path_points_into_the_command() -> None:
    event = make_command(CREATE_CMD)
    event["data"]["due_at"] = "2025-04-10T10:00:00"
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path) == ["data", "due_at"]
    assert "$.data.due_at" in excinfo.value.message


@pytest.mark.parametrize(
    ("command_type", "where"), [(CREATE_CMD, "data.user_id"), (COMPLETE_CMD, "data.id")]
)
def test_command_partitionkey_error_names_the_key(command_type: str, where: str) -> None:
    event = make_command(command_type, partitionkey="something-else")
    with pytest.raises(ValidationError) as excinfo:
        validate_event(event)
    assert list(excinfo.value.path) == ["partitionkey"]
    assert where in excinfo.value.message


def test_a_task_event_envelope_is_still_strict_about_source() -> None:
    """Commands take any source; the task events keep /dueflow/tasks."""
    validate_event(make_command(DELETE_CMD, source="/dueflow/tasks"))
    with pytest.raises(ValidationError):
        validate_event(make_event(CREATED, source=ASSISTANT))


def test_validate_event_does_not_modify_the_command() -> None:
    event = make_command(UPDATE_CMD)
    del event["dataschema"]
    before = copy.deepcopy(event)
    validate_event(event)
    assert event == before


# --------------------------------------------------------------------------- the catalogue


def test_catalogue_links_every_schema_file() -> None:
    text = CATALOGUE.read_text(encoding="utf-8")
    for name in ALL_FILES:
        link = f"shared/dueflow/schemas/events/{name})"
        assert link in text, f"docs/events.md has no link to {name}"


def test_catalogue_examples_are_valid_events() -> None:
    """Every complete CloudEvent shown as a ```json block in docs/events.md validates."""
    blocks = re.findall(r"```json\n(.*?)```", CATALOGUE.read_text(encoding="utf-8"), re.DOTALL)
    examples = [doc for doc in map(json.loads, blocks) if "specversion" in doc]
    assert {event["type"] for event in examples} >= set(ALL_EVENT_TYPES + BATCH_TYPES)
    for event in examples:
        validate_event(event)


def _catalogue_records() -> list[dict[str, Any]]:
    """The Kafka records shown as ```yaml blocks (topic, key, headers, value) in events.md."""
    blocks = re.findall(r"```yaml\n(.*?)```", CATALOGUE.read_text(encoding="utf-8"), re.DOTALL)
    docs = [yaml.safe_load(block) for block in blocks]
    return [doc for doc in docs if isinstance(doc, dict) and "topic" in doc]


def _record_event(record: dict[str, Any]) -> dict[str, Any]:
    """The structured-mode CloudEvent a Kafka record holds (CloudEvents Kafka binding)."""
    headers = record["headers"]
    assert all(isinstance(v, str) for v in headers.values()), headers
    assert isinstance(record["key"], str) and isinstance(record["value"], str)
    if headers.get("content-type") == "application/cloudevents+json":
        assert set(headers) == {"content-type"}
        return json.loads(record["value"])
    assert set(headers) <= {"content-type"} | {h for h in headers if h.startswith("ce_")}
    event: dict[str, Any] = {
        name.removeprefix("ce_"): value for name, value in headers.items() if name != "content-type"
    }
    event["datacontenttype"] = headers["content-type"]
    event.setdefault("partitionkey", record["key"])
    event["data"] = json.loads(record["value"])
    return event


def test_catalogue_command_records_are_valid_commands() -> None:
    """Every example command in docs/events.md (binary and structured Kafka records)
    validates, is keyed as documented, and its data passes the API's own validation."""
    records = [r for r in _catalogue_records() if r["topic"] == "task-events"]
    modes: dict[str, set[str]] = {t: set() for t in COMMANDS}
    for record in records:
        event = _record_event(record)
        validate_event(event)
        command_type = event["type"]
        data = event["data"]
        key = data["user_id"] if command_type == CREATE_CMD else data["id"]
        assert record["key"] == event["partitionkey"] == key
        fields = {k: v for k, v in data.items() if k not in ("user_id", "id")}
        if command_type == CREATE_CMD:
            parse_create(fields)
        elif command_type == UPDATE_CMD:
            parse_patch(fields)
        else:
            assert not fields
        structured = record["headers"].get("content-type") == "application/cloudevents+json"
        modes[command_type].add("structured" if structured else "binary")
    assert modes == {t: {"binary", "structured"} for t in COMMANDS}


def test_catalogue_task_updates_records_are_valid_task_events() -> None:
    records = [r for r in _catalogue_records() if r["topic"] == "task-updates"]
    assert records
    for record in records:
        assert "content-type" in record["headers"]  # binary mode
        event = _record_event(record)
        validate_event(event)
        assert record["key"] == event["data"]["task"]["id"]

"""The assistant's tool output schemas: without references, yet accepting exactly what the API's
Task schema (with its references) accepts, since clients validate every result against them; and
find_tasks' items, each task in brief, against what the server sends."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator

from dueflow.adapters.mcp import tools
from dueflow.domain import lifecycle
from dueflow.domain.task import Task
from dueflow.domain.validation import parse_create

TASK = tools._api_schemas()["Task"]["examples"][0]


def _api_task_validator() -> Draft202012Validator:
    """The API's Task schema as the OpenAPI document has it, references and all."""
    return Draft202012Validator({"$ref": "#/$defs/Task", "$defs": tools._api_schemas()})


def _get_result(*tasks: dict) -> dict:
    results = [{"index": i, "ok": True, "task": task} for i, task in enumerate(tasks)]
    return {"results": results, "succeeded": len(tasks), "failed": 0}


def _whole_task_schema() -> dict:
    """The task of a get_tasks result: the API's Task, inlined."""
    ok = tools.TOOLS["get_tasks"].output_schema["properties"]["results"]["items"]["oneOf"][0]
    return ok["properties"]["task"]


def _variant(**changes) -> dict:
    task = copy.deepcopy(TASK)
    task.update(changes)
    return task


# Tasks the API's schema accepts (None recurrence, no reminders, absolute reminder) and rejects
# (each a different part of the Task: a nested reminder, the recurrence, a pattern, a type).
VALID = [
    TASK,
    _variant(recurrence=None, reminders=[], series_id=None, occurrence=None, due_at=None),
    _variant(
        reminders=[
            {
                "id": TASK["reminders"][0]["id"],
                "at": "2026-11-23T16:00:00Z",
                "before": None,
                "remind_at": "2026-11-23T16:00:00Z",
                "status": "sent",
            }
        ]
    ),
]
INVALID = [
    _variant(recurrence="FREQ=DAILY"),  # the rule as a string: the API answers an object
    _variant(recurrence={"basis": "due"}),  # no rrule
    _variant(recurrence={**TASK["recurrence"], "extra": 1}),  # unknown field
    _variant(reminders=[{"id": "x", "remind_at": "2026-11-23T16:00:00Z", "status": "lost"}]),
    _variant(due_at="2026-11-23 17:00"),  # not RFC 3339 with Z
    _variant(occurrence="1"),
    {k: v for k, v in TASK.items() if k != "title"},
]


@pytest.mark.parametrize("name", sorted(tools.TOOLS))
def test_output_schemas_have_no_references(name):
    schema = tools.TOOLS[name].output_schema
    Draft202012Validator.check_schema(schema)
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text


@pytest.mark.parametrize("task", VALID + INVALID)
def test_inlined_task_schema_accepts_what_the_api_schema_accepts(task):
    api_ok = _api_task_validator().is_valid(task)
    assert api_ok == (task in VALID)
    get = Draft202012Validator(tools.TOOLS["get_tasks"].output_schema)
    assert get.is_valid(_get_result(task)) == api_ok
    one = Draft202012Validator(tools.TOOLS["reschedule_task"].output_schema)
    assert one.is_valid({"task": task}) == api_ok
    batch = Draft202012Validator(tools.TOOLS["add_tasks"].output_schema)
    result = {"results": [{"index": 0, "ok": True, "task": task}], "succeeded": 1, "failed": 0}
    assert batch.is_valid(result) == api_ok


def test_nullable_objects_become_one_nullable_object():
    recurrence = _whole_task_schema()["properties"]["recurrence"]
    assert recurrence["type"] == ["object", "null"] and "oneOf" not in recurrence
    assert "rrule" in recurrence["properties"]


def test_input_schemas_keep_their_references():
    """The server checks arguments itself; a oneOf there names the forms an argument may take."""
    assert "$defs" in tools.TOOLS["add_tasks"].input_schema


def test_an_enum_carries_its_type():
    """`type: string` beside an enum of strings is one check per task for nothing: dropped, and
    the enum still refuses what the type refused (a task with `status: 1` is in INVALID's kind)."""
    assert _whole_task_schema()["properties"]["status"] == {"enum": ["open", "done"]}
    get = Draft202012Validator(tools.TOOLS["get_tasks"].output_schema)
    assert not get.is_valid(_get_result(_variant(status=1)))
    assert not _api_task_validator().is_valid(_variant(status=1))


# -- find_tasks: each task in brief ---------------------------------------------------------------

NOW = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
BODIES = [
    {"title": "Plain"},
    {
        "title": "Pay rent",
        "description": "Transfer from the joint account. " * 10,
        "priority": "high",
        "tags": ["home", "money"],
        "due_at": "2027-01-01T08:00:00Z",
        "timezone": "Europe/Berlin",
        "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1"},
        "reminders": [{"before": "P2D"}, {"at": "2026-12-30T09:00:00Z"}],
    },
    {
        "title": "Water the ferns",
        "description": "",
        "due_at": "2026-12-02T18:00:00Z",
        "recurrence": {"rrule": "FREQ=DAILY;INTERVAL=3", "basis": "completion"},
        "reminders": [{"before": "PT15M"}],
    },
    {"title": "Exactly the preview", "description": "y" * tools.DESCRIPTION_PREVIEW},
]
#: what a find_tasks item leaves out stands for this value of the whole task's field
DEFAULTS = {"description": None, "priority": "none", "tags": [], "due_at": None, "timezone": "UTC"}


def _task(body: dict) -> Task:
    return lifecycle.new_task("u", parse_create(body), NOW)


def _page(*items: dict) -> dict:
    return {"items": list(items), "next_cursor": None, "filters": {"query": "rent"}}


def _find_validator() -> Draft202012Validator:
    return Draft202012Validator(tools.TOOLS["find_tasks"].output_schema)


@pytest.mark.parametrize("body", BODIES)
def test_a_find_item_is_the_whole_task_in_brief(body):
    task = _task(body)
    whole, item = task.to_json(), tools.compact(task)
    assert _find_validator().is_valid(_page(item))
    assert (item["id"], item["title"], item["status"]) == (task.id, task.title, "open")
    for name in ("priority", "tags", "due_at", "timezone"):
        assert item.get(name, DEFAULTS[name]) == whole[name]
        assert name in item or whole[name] == DEFAULTS[name]  # left out only at the default
    rule = whole["recurrence"] or {"rrule": None, "basis": "due"}
    assert (item.get("rrule"), item.get("basis", "due")) == (rule["rrule"], rule["basis"])
    assert "basis" not in item or item["basis"] == "completion"
    assert item.get("reminder_count", 0) == len(whole["reminders"])
    description = whole["description"] or None
    if description is not None and len(description) > tools.DESCRIPTION_PREVIEW:
        cut = description[: tools.DESCRIPTION_PREVIEW - 1]
        assert item["description"] == cut + "…"
        assert len(item["description"]) == tools.DESCRIPTION_PREVIEW
    else:
        assert item.get("description") == description


BRIEF = tools.compact(_task(BODIES[1]))


@pytest.mark.parametrize(
    "change",
    [
        {"status": "unknown"},
        {"priority": "urgent"},
        {"tags": []},  # left out when empty
        {"tags": ["home", "home"]},
        {"due_at": None},  # left out when unset
        {"due_at": "2027-01-01 08:00"},
        {"rrule": ""},
        {"basis": "due"},  # only completion is said
        {"reminder_count": 0},
        {"description": "z" * (tools.DESCRIPTION_PREVIEW + 1)},
        {"created_at": "2026-12-01T07:00:00Z"},  # the whole task's, not the brief's
        {"reminders": []},
    ],
)
def test_the_find_item_schema_refuses_what_the_server_never_sends(change):
    assert not _find_validator().is_valid(_page({**BRIEF, **change}))


@pytest.mark.parametrize("name", ["id", "title", "status"])
def test_a_find_item_always_has_its_id_title_and_status(name):
    item = {k: v for k, v in BRIEF.items() if k != name}
    assert not _find_validator().is_valid(_page(item))


def test_a_whole_task_is_not_a_find_item():
    assert not _find_validator().is_valid(_page(_task(BODIES[1]).to_json()))


def test_the_find_item_schema_takes_the_api_fields_as_they_are():
    """The fields it keeps are checked as the API's Task checks them (one definition)."""
    brief = tools.TOOLS["find_tasks"].output_schema["properties"]["items"]["items"]
    whole = _whole_task_schema()["properties"]
    for name in ("id", "title", "status"):
        assert brief["properties"][name] == whole[name]
    for key in ("pattern", "format"):
        assert brief["properties"]["due_at"][key] == whole["due_at"][key]
    assert brief["properties"]["tags"]["items"] == whole["tags"]["items"]
    assert brief["required"] == ["id", "title", "status"]

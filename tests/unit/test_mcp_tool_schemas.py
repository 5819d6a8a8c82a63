"""The assistant's tool output schemas: without references, yet accepting exactly what the API's
Task schema (with its references) accepts, since clients validate every result against them."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft202012Validator

from dueflow.adapters.mcp import tools

TASK = tools._api_schemas()["Task"]["examples"][0]


def _api_task_validator() -> Draft202012Validator:
    """The API's Task schema as the OpenAPI document has it, references and all."""
    return Draft202012Validator({"$ref": "#/$defs/Task", "$defs": tools._api_schemas()})


def _find_result(*tasks: dict) -> dict:
    return {"items": list(tasks), "next_cursor": None, "filters": {"query": "plants"}}


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
    find = Draft202012Validator(tools.TOOLS["find_tasks"].output_schema)
    assert find.is_valid(_find_result(task)) == api_ok
    one = Draft202012Validator(tools.TOOLS["reschedule_task"].output_schema)
    assert one.is_valid({"task": task}) == api_ok
    batch = Draft202012Validator(tools.TOOLS["add_tasks"].output_schema)
    result = {"results": [{"index": 0, "ok": True, "task": task}], "succeeded": 1, "failed": 0}
    assert batch.is_valid(result) == api_ok


def test_nullable_objects_become_one_nullable_object():
    recurrence = tools.TOOLS["find_tasks"].output_schema["properties"]["items"]["items"][
        "properties"
    ]["recurrence"]
    assert recurrence["type"] == ["object", "null"] and "oneOf" not in recurrence
    assert "rrule" in recurrence["properties"]


def test_input_schemas_keep_their_references():
    """The server checks arguments itself; a oneOf there names the forms an argument may take."""
    assert "$defs" in tools.TOOLS["add_tasks"].input_schema


def test_an_enum_carries_its_type():
    """`type: string` beside an enum of strings is one check per task for nothing: dropped, and
    the enum still refuses what the type refused (a task with `status: 1` is in INVALID's kind)."""
    task = tools.TOOLS["find_tasks"].output_schema["properties"]["items"]["items"]
    assert task["properties"]["status"] == {"enum": ["open", "done"]}
    find = Draft202012Validator(tools.TOOLS["find_tasks"].output_schema)
    assert not find.is_valid(_find_result(_variant(status=1)))
    assert not _api_task_validator().is_valid(_variant(status=1))

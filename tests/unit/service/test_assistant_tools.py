"""The assistant's tools (adapters.mcp.tools) on the task use cases over in-memory fakes of the
ports (conftest.py): find_tasks lists each task in brief, get_tasks gives whole tasks as the
API's GET /tasks/{id} does, and a batch item whose id names no task of the caller's fails on
its own, naming that id. Through the real server and client: tests/e2e/test_assistant.py."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from dueflow.adapters.mcp import text, tools
from dueflow.service.assistant import AssistantService
from dueflow.service.tasks import TaskService

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def service(uow, clock) -> AssistantService:
    return AssistantService(TaskService(uow, clock=clock))


def run(service: AssistantService, user: str, name: str, arguments: dict) -> tools.Outcome:
    outcome = tools.call(tools.TOOLS[name], tools.Caller(user, service), arguments)
    if not outcome.is_error or "results" in outcome.structured:
        # what the SDK's client checks: the result matches the tool's outputSchema
        Draft202012Validator(tools.TOOLS[name].output_schema).validate(outcome.structured)
    assert outcome.text == text.summary(name, outcome.structured, outcome.is_error)
    return outcome


def test_find_tasks_lists_each_task_in_brief(service):
    rent = service.tasks.create(
        "alice",
        {
            "title": "Pay rent",
            "description": "From the joint account",
            "due_at": "2026-12-31T08:00:00Z",
            "timezone": "Europe/Berlin",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1"},
            "reminders": [{"before": "P2D"}],
        },
    )
    plain = service.tasks.create("alice", {"title": "Call mum"})
    service.tasks.create("bob", {"title": "Bob's"})
    page = run(service, "alice", "find_tasks", {"limit": 20}).structured
    assert page["items"] == [tools.compact(rent), tools.compact(plain)]
    assert page["items"][1] == {"id": plain.id, "title": "Call mum", "status": "open"}
    assert page["items"][0]["rrule"] == "FREQ=MONTHLY;BYMONTHDAY=1"
    assert page["items"][0]["reminder_count"] == 1
    assert "reminders" not in page["items"][0] and "created_at" not in page["items"][0]


def test_get_tasks_gives_whole_tasks_in_input_order_and_fails_per_item(service):
    reminders = [{"at": "2027-01-01T09:00:00Z"}]
    mine = service.tasks.create("alice", {"title": "Mine", "reminders": reminders})
    theirs = service.tasks.create("bob", {"title": "Theirs"})
    ids = [theirs.id, mine.id, MISSING, "not-an-id", mine.id]
    outcome = run(service, "alice", "get_tasks", {"ids": ids})
    assert outcome.is_error  # some items failed: the assistant must notice
    body = outcome.structured
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert [r["ok"] for r in body["results"]] == [False, True, False, False, True]
    assert (body["succeeded"], body["failed"]) == (2, 3)
    # the API's GET /tasks/{id} body, reminder ids and all
    assert body["results"][1]["task"] == mine.to_json() == body["results"][4]["task"]
    for result in (body["results"][i] for i in (0, 2, 3)):
        problem = result["error"]
        # another user's task is not found, as a missing one is: nothing tells them apart
        assert problem["status"] == 404 and problem["type"] == "urn:dueflow:problem:not-found"
        assert [e["field"] for e in problem["errors"]] == [f"ids.{result['index']}"]
    assert body["results"][0]["error"]["detail"] == f"no task {theirs.id}"
    assert f"- [1] {text.task_line(mine.to_json())}" in outcome.text
    assert f"id={mine.reminders[0].id}" in outcome.text


@pytest.mark.parametrize(
    ("arguments", "field"),
    [({}, "ids"), ({"ids": []}, "ids"), ({"ids": [MISSING] * 51}, "ids"), ({"ids": "x"}, "ids")],
)
def test_get_tasks_refuses_a_bad_envelope_as_a_whole(service, arguments, field):
    outcome = run(service, "alice", "get_tasks", arguments)
    assert outcome.is_error and outcome.structured["status"] == 422
    assert [e["field"] for e in outcome.structured["errors"]] == [field]


def test_get_tasks_is_read_only_and_idempotent():
    get = tools.TOOLS["get_tasks"]
    assert (get.read_only, get.destructive, get.idempotent) == (True, False, True)


@pytest.mark.parametrize("name", ["complete_tasks", "reopen_tasks", "delete_tasks"])
def test_a_batch_item_of_no_task_names_its_id(service, name):
    """(update_tasks names `updates.N.id`: tests/e2e, as it reads the profile, which these
    fakes do not keep.)"""
    task = service.tasks.create("alice", {"title": "One"})
    outcome = run(service, "alice", name, {"ids": [task.id, MISSING]})
    assert [r["ok"] for r in outcome.structured["results"]] == [True, False]
    problem = outcome.structured["results"][1]["error"]
    assert problem["status"] == 404 and [e["field"] for e in problem["errors"]] == ["ids.1"]

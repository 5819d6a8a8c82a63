"""The text content of the assistant's tool results: a summary for the model, one line per
task (docs/assistant.md, "Results"), next to the structured content that carries every field."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from dueflow.adapters.http.problems import problem_document
from dueflow.adapters.mcp import text, tools
from dueflow.domain.errors import FieldError

TASK = tools._api_schemas()["Task"]["examples"][0]  # due 17:00Z, Europe/Berlin, weekly, 1 reminder
PLAIN = {
    **copy.deepcopy(TASK),
    "id": "t-2",
    "title": "Call mum",
    "priority": "none",
    "tags": [],
    "due_at": None,
    "timezone": "UTC",
    "recurrence": None,
    "reminders": [],
    "status": "done",
}
INVALID = problem_document(
    422,
    "the request has invalid fields",
    errors=[FieldError("tasks.1.due", 'not understood: "someday"'), FieldError("", "bad")],
)


def test_a_task_line_names_what_an_assistant_acts_on():
    assert text.task_line(TASK) == (
        "Water the plants • due Mon 2026-11-23 18:00 Europe/Berlin • medium • #home #garden • "
        "repeats FREQ=WEEKLY;BYDAY=MO,WE • 1 reminder • id=0b6f1c1e-4a5d-4a8e-9a51-3f0d8c6b2e71"
    )
    assert text.task_line(PLAIN) == "Call mum • done • id=t-2"
    every = {**TASK, "recurrence": {**TASK["recurrence"], "basis": "completion"}}
    two = {**TASK, "reminders": TASK["reminders"] * 2}
    assert "repeats FREQ=WEEKLY;BYDAY=MO,WE from completion •" in text.task_line(every)
    assert "• 2 reminders •" in text.task_line(two)


def test_a_page_says_how_many_what_was_searched_and_how_to_go_on():
    page = {"items": [TASK, PLAIN], "next_cursor": "c2", "filters": {"query": "plants"}}
    assert text.summary("find_tasks", page, False).splitlines() == [
        "Tasks matching \"plants\": 2, more with cursor 'c2'.",
        f"- {text.task_line(TASK)}",
        f"- {text.task_line(PLAIN)}",
    ]
    empty = {"items": [], "next_cursor": None, "filters": {}}
    assert text.summary("find_tasks", empty, False) == "Tasks: 0."


def test_a_batch_answers_each_item_in_input_order():
    result = {
        "results": [
            {"index": 0, "ok": True, "task": TASK},
            {"index": 1, "ok": False, "error": INVALID},
        ],
        "succeeded": 1,
        "failed": 1,
    }
    assert text.summary("add_tasks", result, True).splitlines() == [
        "Added 1 of 2.",
        f"- [0] {text.task_line(TASK)}",
        "- [1] failed: Error 422 (Validation failed): the request has invalid fields: "
        'tasks.1.due: not understood: "someday"; (body): bad',
    ]
    gone = {"results": [{"index": 0, "ok": True, "task": PLAIN}], "succeeded": 1, "failed": 0}
    assert text.summary("delete_tasks", gone, False).startswith("Deleted 1 of 1.\n- [0] Call mum")


def test_a_failed_call_is_its_problem_in_one_line():
    missing = problem_document(404, "no task t-9")
    assert text.summary("reschedule_task", missing, True) == "Error 404 (Not found): no task t-9"
    # a batch tool whose arguments are refused as a whole answers a problem, not results
    assert text.summary("add_tasks", INVALID, True) == text.problem_line(INVALID)


@pytest.mark.parametrize(
    ("tool", "result", "expected"),
    [
        ("reschedule_task", {"task": PLAIN}, "Task: Call mum • done • id=t-2"),
        (
            "list_tags",
            {"items": [{"name": "home", "count": 3}, {"name": "work", "count": 1}]},
            "Tags (open tasks): #home (3), #work (1).",
        ),
        ("list_tags", {"items": []}, "Tags (open tasks): none."),
        (
            "get_profile",
            {"user_id": "u", "email": None, "timezone": "Europe/Berlin"},
            "Profile: e-mail not set, time zone Europe/Berlin.",
        ),
        (
            "preview_recurrence",
            {
                "rrule": "FREQ=MONTHLY;BYMONTHDAY=1",
                "basis": "due",
                "timezone": "Europe/Berlin",
                "dates": ["2027-01-01T08:00:00Z", "2027-02-01T08:00:00Z"],
                "local_dates": ["2027-01-01T09:00:00+01:00", "2027-02-01T09:00:00+01:00"],
            },
            "RRULE FREQ=MONTHLY;BYMONTHDAY=1; next dates in Europe/Berlin: "
            "2027-01-01T09:00:00+01:00, 2027-02-01T09:00:00+01:00.",
        ),
    ],
)
def test_small_results_in_a_sentence(tool, result, expected):
    assert text.summary(tool, result, False) == expected


def test_every_tool_has_a_text():
    """A tool added without a summary fails here, not in a client."""
    samples = {
        "find_tasks": {"items": [], "next_cursor": None, "filters": {}},
        "list_tags": {"items": []},
        "get_profile": {"user_id": "u", "email": "a@b.c", "timezone": "UTC"},
        "update_profile": {"user_id": "u", "email": "a@b.c", "timezone": "UTC"},
        "preview_recurrence": {
            "rrule": "FREQ=DAILY",
            "basis": "completion",
            "timezone": "UTC",
            "dates": [],
            "local_dates": [],
        },
    }
    for name in tools.TOOLS:
        one_task = name in ("reschedule_task", "skip_occurrence", "snooze_reminder")
        batch = {"results": [], "succeeded": 0, "failed": 0}
        result = samples.get(name) or ({"task": TASK} if one_task else batch)
        assert text.summary(name, result, False)


def test_a_result_the_summary_cannot_read_is_sent_as_json(caplog):
    """A bug in the summary must not turn a done write into a protocol error: the text falls
    back to the JSON and the bug is logged."""

    def run(caller, args):
        return {"items": [{"title": "no other field"}], "next_cursor": None, "filters": {}}

    tool = dataclasses.replace(tools.TOOLS["find_tasks"], run=run)
    outcome = tools.call(tool, tools.Caller("u", None), {})
    assert not outcome.is_error
    assert json.loads(outcome.text) == outcome.structured
    assert "no summary of a find_tasks result" in caplog.text

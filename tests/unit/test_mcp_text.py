"""The text content of the assistant's tool results: a summary for the model, one line per
task (docs/assistant.md, "Results"), next to the structured content that carries every field."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from dueflow.adapters.http.problems import problem_document
from dueflow.adapters.mcp import text, tools
from dueflow.domain import lifecycle
from dueflow.domain.errors import FieldError
from dueflow.domain.validation import parse_create
from tests.support.clock import T0

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
MISSING = problem_document(404, "no task t-9", errors=[FieldError("ids.2", "no task t-9")])
INVALID = problem_document(
    422,
    "the request has invalid fields",
    errors=[FieldError("tasks.1.due", 'not understood: "someday"'), FieldError("", "bad")],
)


def _batch(*outcomes: dict) -> dict:
    """A batch tool's result: a task per item that succeeded, a problem per item that failed."""
    results = [
        {"index": i, "ok": False, "error": o}
        if "status" in o and "type" in o
        else {"index": i, "ok": True, "task": o}
        for i, o in enumerate(outcomes)
    ]
    failed = sum(not r["ok"] for r in results)
    return {"results": results, "succeeded": len(results) - failed, "failed": failed}


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


@pytest.mark.parametrize(
    "body",
    [
        {"title": "Plain"},
        {
            "title": "Pay rent",
            "description": "From the joint account",
            "priority": "high",
            "tags": ["home"],
            "due_at": "2027-01-01T08:00:00Z",
            "timezone": "Europe/Berlin",
            "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "basis": "completion"},
            "reminders": [{"before": "P2D"}, {"before": "PT1H"}],
        },
        {"title": "Due", "due_at": "2026-12-02T18:00:00Z", "reminders": [{"before": "PT5M"}]},
    ],
)
def test_a_find_item_reads_as_the_whole_task_does(body):
    """find_tasks lists each task in brief (tools.compact): its line says the same."""
    task = lifecycle.new_task("u", parse_create(body), T0)
    assert text.task_line(tools.compact(task)) == text.task_line(task.to_json())


def test_get_tasks_says_the_rest_of_each_task():
    """The description, each reminder with the id snooze_reminder takes, the series: what a
    client that reads only the text needs from get_tasks."""
    at = {"id": "r-2", "at": "2026-11-23T07:00:00Z", "remind_at": "2026-11-23T07:00:00Z"}
    task = {**TASK, "reminders": [*TASK["reminders"], {**at, "status": "sent"}]}
    plain = {**PLAIN, "description": None, "series_id": None, "occurrence": None}
    result = _batch(task, plain, MISSING)
    assert text.summary("get_tasks", result, True).splitlines() == [
        "Found 2 of 3.",
        f"- [0] {text.task_line(task)}",
        "  description: Balcony and kitchen",
        "  reminder PT15M before: Mon 2026-11-23 17:45 Europe/Berlin, scheduled • "
        "id=5d2b8f0a-9a47-4c3e-8f7e-2a1b0c9d8e7f",
        "  reminder: Mon 2026-11-23 08:00 Europe/Berlin, sent • id=r-2",
        "  occurrence 1 of series 9e4c2a10-7b3d-4f5e-8a6b-1c2d3e4f5a6b",
        f"- [1] {text.task_line(plain)}",
        "- [2] failed: Error 404 (Not found): no task t-9: ids.2: no task t-9",
    ]


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
    result = _batch(TASK, INVALID)
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

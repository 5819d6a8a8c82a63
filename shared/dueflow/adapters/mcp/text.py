"""What a tool result says as text: a short summary for the model to read, next to the
structured content that carries every field (after Doist's todoist-ai, whose tools answer
"Tasks: 3. Preview: <one line per task>" rather than the JSON again).

One line per task with what an assistant acts on: the title, the due date as wall-clock time in
the task's zone, priority, tags, the rule, the reminders' count and the id to pass back (and for
get_tasks, the rest: the description, each reminder with its id, the series). Fewer
tokens for the model than the page as JSON, and a third fewer bytes to encode, send and parse;
a client that wants the fields reads `structuredContent` (docs/assistant.md, "Results").
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_BATCH_VERBS = {
    "add_tasks": "Added",
    "get_tasks": "Found",
    "update_tasks": "Updated",
    "complete_tasks": "Completed",
    "reopen_tasks": "Reopened",
    "delete_tasks": "Deleted",
}


def summary(tool: str, result: dict, is_error: bool) -> str:
    """The text content of `tool`'s result (`result` is its structured content)."""
    if tool in _BATCH_VERBS and "results" in result:
        return _batch(_BATCH_VERBS[tool], result, details=tool == "get_tasks")
    if is_error:
        return problem_line(result)
    if tool == "find_tasks":
        return _page(result)
    if "task" in result:
        return f"Task: {task_line(result['task'])}"
    if tool == "list_tags":
        tags = ", ".join(f"#{t['name']} ({t['count']})" for t in result["items"])
        return f"Tags (open tasks): {tags or 'none'}."
    if tool in ("get_profile", "update_profile"):
        return f"Profile: e-mail {result['email'] or 'not set'}, time zone {result['timezone']}."
    if tool == "preview_recurrence":
        when = ", ".join(result["local_dates"]) or "none (the rule has ended)"
        basis = " (from completion)" if result["basis"] == "completion" else ""
        return f"RRULE {result['rrule']}{basis}; next dates in {result['timezone']}: {when}."
    raise ValueError(f"no text for the tool {tool!r}")


def task_line(task: dict) -> str:
    """`Pay rent • due Fri 2027-01-01 09:00 Europe/Berlin • high • #home • repeats
    FREQ=MONTHLY;BYMONTHDAY=1 • 1 reminder • id=…`, of a whole task or a find_tasks item."""
    bits = [task["title"]]
    if task["status"] == "done":
        bits.append("done")
    if task.get("due_at") is not None:
        bits.append(f"due {_local(task['due_at'], task.get('timezone', 'UTC'))}")
    if task.get("priority", "none") != "none":
        bits.append(task["priority"])
    if task.get("tags"):
        bits.append(" ".join(f"#{tag}" for tag in task["tags"]))
    rrule, basis, reminders = _rule_and_reminders(task)
    if rrule is not None:
        bits.append(f"repeats {rrule}{' from completion' if basis == 'completion' else ''}")
    if reminders:
        bits.append(f"{reminders} reminder{'s' if reminders != 1 else ''}")
    bits.append(f"id={task['id']}")
    return " • ".join(bits)


def _rule_and_reminders(task: dict) -> tuple[str | None, str | None, int]:
    """The RRULE, its basis and the number of reminders of a whole task (`recurrence`,
    `reminders`) or of a find_tasks item (`rrule`, `basis`, `reminder_count`: absent when
    unset; the other fields it leaves out then are read with their defaults above)."""
    if "recurrence" in task:
        rule = task["recurrence"] or {}
        return rule.get("rrule"), rule.get("basis"), len(task["reminders"])
    return task.get("rrule"), task.get("basis"), task.get("reminder_count", 0)


def task_details(task: dict) -> list[str]:
    """What get_tasks adds to a task's line, for a client that reads only the text: the whole
    description, each reminder with its id (for snooze_reminder), the series."""
    lines = []
    if task["description"]:
        lines.append(f"description: {task['description']}")
    for reminder in task["reminders"]:
        before = f" {reminder['before']} before" if reminder.get("before") else ""
        local = _local(reminder["remind_at"], task["timezone"])
        lines.append(f"reminder{before}: {local}, {reminder['status']} • id={reminder['id']}")
    if task["series_id"] is not None:
        lines.append(f"occurrence {task['occurrence']} of series {task['series_id']}")
    return lines


def problem_line(problem: dict) -> str:
    """`Error 422 (Validation failed): the request has invalid fields: due: …; title: …`"""
    text = f"Error {problem['status']} ({problem['title']}): {problem['detail']}"
    if problem.get("errors"):
        named = (f"{e['field'] or '(body)'}: {e['message']}" for e in problem["errors"])
        text += ": " + "; ".join(named)
    return text


def _page(result: dict) -> str:
    items = result["items"]
    filters = result["filters"]
    subject = f'Tasks matching "{filters["query"]}"' if "query" in filters else "Tasks"
    head = f"{subject}: {len(items)}"
    if result["next_cursor"] is not None:
        head += f", more with cursor '{result['next_cursor']}'"
    lines = [head + "."]
    lines += [f"- {task_line(task)}" for task in items]
    return "\n".join(lines)


def _batch(verb: str, result: dict, details: bool = False) -> str:
    total = result["succeeded"] + result["failed"]
    lines = [f"{verb} {result['succeeded']} of {total}."]
    for item in result["results"]:
        if item["ok"]:
            lines.append(f"- [{item['index']}] {task_line(item['task'])}")
            if details:
                lines += [f"  {line}" for line in task_details(item["task"])]
        else:
            lines.append(f"- [{item['index']}] failed: {problem_line(item['error'])}")
    return "\n".join(lines)


def _local(instant: str, zone: str) -> str:
    """A UTC instant (RFC 3339) as wall-clock time in `zone`: `Fri 2027-01-01 09:00 UTC`."""
    local = datetime.fromisoformat(instant).astimezone(_zone(zone))
    # not strftime: twice the cost, per task of a page
    return f"{_DAYS[local.weekday()]} {local.isoformat(' ', 'minutes')[:16]} {zone}"


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)

"""The assistant's tools: their schemas, and each one a thin call of the task use cases.

Designed for an assistant's workflows rather than as a copy of the REST API (after Doist's
todoist-ai): writes take batches whose items succeed or fail on their own, with results in input
order; dates, rules and reminders may be English; every result is structured (an `outputSchema`
per tool); a failure is a result with `isError` whose structured content is the API's problem
details, `errors: [{field, pointer, message}]` naming each bad field. No protocol here: the SDK
does that (server.py). Task shapes come from the API's OpenAPI document, so they cannot drift.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy.exc import OperationalError

from dueflow.adapters.http.problems import problem_document
from dueflow.adapters.mcp.text import summary
from dueflow.domain.errors import Conflict, DomainError, FieldError, NotFound, ValidationFailed
from dueflow.domain.listing import MAX_LIMIT, SORTS
from dueflow.domain.task import PRIORITIES, Task
from dueflow.domain.timefmt import format_instant
from dueflow.service.assistant import MAX_PREVIEW, AssistantService

log = logging.getLogger("dueflow.assistant")
MAX_BATCH = 50
#: the most of a description a find_tasks item carries (get_tasks gives all of it)
DESCRIPTION_PREVIEW = 120
#: API field names that the tools call differently (the assistant gives `due`, not `due_at`).
_TOOL_NAMES = {"due_at": "due"}


@dataclass(frozen=True)
class Caller:
    """Who calls (the token's subject) and the use cases the call runs on."""

    user_id: str
    assistant: AssistantService

    @property
    def tasks(self):
        return self.assistant.tasks


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    input_schema: dict
    output_schema: dict
    read_only: bool
    destructive: bool
    idempotent: bool
    run: Callable[[Caller, dict], dict]
    batch: str | None = None  # the array argument whose items succeed or fail on their own


@dataclass(frozen=True)
class Outcome:
    structured: dict
    is_error: bool
    text: str = ""  # what the model reads: a summary of `structured` (adapters.mcp.text)


def call(tool: Tool, caller: Caller, arguments: dict | None) -> Outcome:
    """Run `tool` for `caller`: its structured result, or a problem with `is_error`, and the
    result's summary as text."""
    outcome = _outcome(tool, caller, arguments)
    try:
        text = summary(tool.name, outcome.structured, outcome.is_error)
    except Exception:  # noqa: BLE001 - a summary's bug must not lose a write that is done
        log.exception("no summary of a %s result", tool.name)
        text = json.dumps(outcome.structured, separators=(",", ":"), ensure_ascii=False)
    return dataclasses.replace(outcome, text=text)


def _outcome(tool: Tool, caller: Caller, arguments: dict | None) -> Outcome:
    arguments = {} if arguments is None else arguments
    errors = _schema_errors(tool, arguments)
    if tool.batch is not None:
        # the envelope here; each item is checked by the use case, with the API's own rules
        errors = [e for e in errors if not _in_item(e.field, tool.batch)]
    if errors:
        return _failure(ValidationFailed(errors))
    if tool.batch is not None:
        return _run_batch(tool, caller, arguments[tool.batch])
    try:
        return Outcome(tool.run(caller, arguments), False)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a tool result
        return _failure(exc)


def _run_batch(tool: Tool, caller: Caller, items: list) -> Outcome:
    results = []
    for index, item in enumerate(items):
        try:
            task = tool.run(caller, item)
            results.append({"index": index, "ok": True, "task": task})
        except ValidationFailed as exc:
            named = _renamed(exc, f"{tool.batch}.{index}")
            results.append({"index": index, "ok": False, "error": _problem(named)})
        except NotFound as exc:  # the id that names no task of the caller's
            field = f"{tool.batch}.{index}" + (".id" if isinstance(item, dict) else "")
            error = problem_document(404, str(exc), errors=[FieldError(field, str(exc))])
            results.append({"index": index, "ok": False, "error": error})
        except Exception as exc:  # noqa: BLE001 - one item's failure never stops the others
            results.append({"index": index, "ok": False, "error": _problem(exc)})
    failed = sum(not r["ok"] for r in results)
    summary = {"results": results, "succeeded": len(results) - failed, "failed": failed}
    return Outcome(summary, failed > 0)


def _in_item(field: str, batch: str) -> bool:
    parts = field.split(".")
    return len(parts) >= 2 and parts[0] == batch


def _renamed(exc: ValidationFailed, prefix: str) -> ValidationFailed:
    """A service's field errors (`due_at`, `reminders.0.before`) as paths into the tool's
    arguments (`tasks.2.due`, `tasks.2.reminders.0.before`)."""
    renamed = []
    for e in exc.errors:
        head, dot, rest = e.field.partition(".")
        field = _TOOL_NAMES.get(head, head) + dot + rest
        renamed.append(FieldError(f"{prefix}.{field}" if field else prefix, e.message))
    return ValidationFailed(renamed)


def _failure(exc: Exception) -> Outcome:
    return Outcome(_problem(exc), True)


def _problem(exc: Exception) -> dict:
    """The API's problem details for what went wrong (the same status, title and errors)."""
    if isinstance(exc, ValidationFailed):
        return problem_document(422, "the request has invalid fields", errors=exc.errors)
    if isinstance(exc, NotFound):
        return problem_document(404, str(exc))
    if isinstance(exc, Conflict):
        return problem_document(409, str(exc))
    if isinstance(exc, DomainError):
        return problem_document(400, str(exc))
    if isinstance(exc, OperationalError):
        log.exception("database unavailable")
        return problem_document(503, "the database is unavailable; retry later")
    log.exception("unhandled error in a tool")
    return problem_document(500, "an unexpected error occurred")


def _schema_errors(tool: Tool, arguments: Any) -> list[FieldError]:
    """The arguments' departures from the tool's input schema, as field errors."""
    errors = []
    for error in _validator(tool.name).iter_errors(arguments):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            missing = [n for n in error.validator_value if n not in error.instance]
            errors += [FieldError(".".join([*path, n]), "is required") for n in missing]
        elif error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            extra = [n for n in error.instance if n not in known]
            errors += [FieldError(".".join([*path, str(n)]), "unknown field") for n in extra]
        else:
            errors.append(FieldError(".".join(path), _message(error)))
    return errors


def _message(error) -> str:
    if error.validator in ("oneOf", "anyOf"):
        return "has none of the accepted forms"
    return error.message


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(TOOLS[name].input_schema)


# -- schemas ------------------------------------------------------------------------------------


@functools.cache
def _api_schemas() -> dict:
    """The OpenAPI document's component schemas, their references rewritten to `#/$defs/…`."""
    text = resources.files("dueflow.adapters.http").joinpath("openapi.json").read_text()
    text = text.replace('"#/components/schemas/', '"#/$defs/')
    return json.loads(text)["components"]["schemas"]


def _with_defs(schema: dict, *names: str) -> dict:
    """`schema` carrying the API schemas `names` (and those they refer to) as `$defs`."""
    api = _api_schemas()
    defs: dict = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in defs:
            continue
        defs[name] = copy.deepcopy(api[name])
        todo += [n for n in api if f'"#/$defs/{n}"' in json.dumps(defs[name])]
    return {**schema, "$defs": defs} if defs else schema


#: keywords that apply subschemas: a nullable object carrying one stays a two-way choice
_APPLICATORS = ("$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else")


def _inlined(schema: dict) -> dict:
    """`schema` with every `#/$defs/…` reference replaced by the definition, each choice
    between an object and null (`oneOf: [{object}, {type: null}]`) as one nullable object, and
    no `type` beside an `enum` whose values all have that type.
    It accepts exactly what `schema` does, but is cheaper to check: a client validates every
    result against the tool's outputSchema (the SDK's client does, with jsonschema), and there
    a reference costs a lookup and a oneOf a check of each branch, per task in the result.
    The API's schemas are not recursive, so the inlining ends."""
    defs = schema.get("$defs", {})

    def walk(node):
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**defs[ref.removeprefix("#/$defs/")], **rest})
        node = {k: walk(v) for k, v in node.items() if k != "$defs"}
        if _typed_by_enum(node):
            del node["type"]  # every value the enum allows has that type: one check less
        for choice in ("oneOf", "anyOf"):
            options = node.get(choice)
            if not (isinstance(options, list) and len(options) == 2 and _NULL in options):
                continue
            (other,) = [o for o in options if o != _NULL]
            if other.get("type") == "object" and not any(k in other for k in _APPLICATORS):
                rest = {k: v for k, v in node.items() if k != choice}
                node = {**other, **rest, "type": ["object", "null"]}
        return node

    return walk(schema)


_NULL = {"type": "null"}
_JSON_TYPES = {"string": str, "boolean": bool}


def _typed_by_enum(node: dict) -> bool:
    """Whether `node`'s `type` (string or boolean) is implied by its `enum`."""
    kind, values = node.get("type"), node.get("enum")
    kind = _JSON_TYPES.get(kind) if isinstance(kind, str) else None
    return kind is not None and isinstance(values, list) and all(type(v) is kind for v in values)


def _obj(properties: dict, required: tuple[str, ...] = (), **extra) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


_STRING = {"type": "string"}
_TASK = {"$ref": "#/$defs/Task"}
_PROBLEM = _obj(
    {
        "type": _STRING,
        "title": _STRING,
        "status": {"type": "integer"},
        "detail": _STRING,
        "errors": {
            "type": "array",
            "items": _obj(
                {"field": _STRING, "pointer": _STRING, "message": _STRING},
                ("field", "pointer", "message"),
            ),
        },
    },
    ("type", "title", "status", "detail"),
    description="The API's problem details: `errors` names each bad field (422).",
)
_DUE = {
    "type": ["string", "null"],
    "description": 'RFC 3339, or English in the user\'s time zone: "tomorrow 9am", "next friday", '
    '"in 2 hours", "dec 24 18:00". null removes the due date (updates).',
}
_TIMEZONE = {
    "type": "string",
    "description": "IANA time zone, e.g. Europe/Berlin (default: the user's profile time zone).",
}
_RECURRENCE = {
    "description": 'An RRULE ("FREQ=MONTHLY;BYMONTHDAY=1"), English ("every month on the 1st at '
    '9", "every weekday", "every! 3 days" = from completion), the API\'s recurrence object, or '
    "null to stop repeating (updates).",
    "anyOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/Recurrence"}, {"type": "null"}],
}
_REMINDERS = {
    "type": "array",
    "maxItems": 10,
    "description": 'Each "30 minutes before", "1 day before", "at 8am", an ISO 8601 duration '
    '("PT30M", before the due time), an RFC 3339 instant, or the API\'s {"before"} / {"at"}.',
    "items": {"anyOf": [{"type": "string", "minLength": 1}, {"$ref": "#/$defs/ReminderInput"}]},
}
_TASK_FIELDS = {
    "title": {"type": "string", "minLength": 1, "maxLength": 500},
    "description": {"type": ["string", "null"], "maxLength": 10000},
    "priority": {"enum": list(PRIORITIES)},
    "tags": {"type": "array", "items": _STRING, "maxItems": 20},
    "due": _DUE,
    "timezone": _TIMEZONE,
    "recurrence": _RECURRENCE,
    "reminders": _REMINDERS,
}
_IDS = {"type": "array", "items": _STRING, "minItems": 1, "maxItems": MAX_BATCH}


def _batch_output(item: dict) -> dict:
    ok = _obj(
        {"index": {"type": "integer"}, "ok": {"const": True}, "task": item}, ("index", "ok", "task")
    )
    failed = _obj(
        {"index": {"type": "integer"}, "ok": {"const": False}, "error": _PROBLEM},
        ("index", "ok", "error"),
    )
    return _with_defs(
        _obj(
            {
                "results": {
                    "type": "array",
                    "items": {"oneOf": [ok, failed]},
                    "description": "One per input item, in input order.",
                },
                "succeeded": {"type": "integer"},
                "failed": {"type": "integer"},
            },
            ("results", "succeeded", "failed"),
        ),
        "Task",
    )


_ONE_TASK = _with_defs(_obj({"task": _TASK}, ("task",)), "Task")


def _compact_task() -> dict:
    """The schema of a find_tasks item (`compact`). The fields it keeps have the API Task's own
    property schemas (so the two cannot drift), but only id, title and status are always
    there: the others only when set."""
    api = _api_schemas()
    task = api["Task"]["properties"]
    rrule = api["Recurrence"]["properties"]["rrule"]
    unset = "Absent when {}."
    properties = {
        "id": task["id"],
        "title": task["title"],
        "description": {
            "type": "string",
            "minLength": 1,
            "maxLength": DESCRIPTION_PREVIEW,
            "description": f"The first {DESCRIPTION_PREVIEW} characters, ending in … when there "
            "is more (get_tasks has all of it). " + unset.format("there is none"),
        },
        "status": task["status"],
        "priority": {**task["priority"], "description": unset.format("`none`")},
        "tags": {**task["tags"], "minItems": 1, "description": unset.format("there are none")},
        "due_at": {
            **task["due_at"],
            "type": "string",
            "description": "When the task is due (UTC). " + unset.format("it has no due date"),
        },
        "timezone": {**task["timezone"], "description": "IANA name. " + unset.format("UTC")},
        "rrule": {
            "type": "string",
            "minLength": rrule["minLength"],
            "maxLength": rrule["maxLength"],
            "description": "The rule the task repeats by (RFC 5545 RRULE). "
            + unset.format("it does not repeat"),
        },
        "basis": {
            "const": "completion",
            "description": "Only when the rule repeats from completion (every!).",
        },
        "reminder_count": {
            "type": "integer",
            "minimum": 1,
            "maximum": task["reminders"]["maxItems"],
            "description": "How many reminders the task has (get_tasks gives them, with the ids "
            "snooze_reminder takes). " + unset.format("it has none"),
        },
    }
    return _obj(
        properties,
        ("id", "title", "status"),
        description="A task as find_tasks lists it: what it takes to choose one and act on it, "
        "each field only when set. get_tasks gives the whole task: the full description, the "
        "reminders, the series, the timestamps.",
    )


def compact(task: Task) -> dict:
    """A task as find_tasks lists it (`_compact_task`): an assistant pays for every field of
    every item in its context (and a client checks each against the outputSchema), so only
    what is set, and no timestamps, series or reminder details."""
    item = {"id": task.id, "title": task.title}
    if task.description:
        description = task.description
        if len(description) > DESCRIPTION_PREVIEW:
            description = description[: DESCRIPTION_PREVIEW - 1] + "…"
        item["description"] = description
    item["status"] = task.status
    if task.priority != "none":
        item["priority"] = task.priority
    if task.tags:
        item["tags"] = list(task.tags)
    if task.due_at is not None:
        item["due_at"] = format_instant(task.due_at)
    if task.timezone != "UTC":
        item["timezone"] = task.timezone
    rule = task.recurrence
    if rule is not None:
        item["rrule"] = rule.rrule
        if rule.basis == "completion":
            item["basis"] = "completion"
    if task.reminders:
        item["reminder_count"] = len(task.reminders)
    return item


_PROFILE = _obj(
    {"user_id": _STRING, "email": {"type": ["string", "null"]}, "timezone": _STRING},
    ("user_id", "email", "timezone"),
)


# -- the tools ----------------------------------------------------------------------------------


def _add(caller: Caller, item: dict) -> dict:
    return caller.assistant.add(caller.user_id, item).to_json()


def _update(caller: Caller, item: Any) -> dict:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise ValidationFailed([FieldError("id", "is required: the task's id")])
    fields = {k: v for k, v in item.items() if k != "id"}
    return caller.assistant.update(caller.user_id, item["id"], fields).to_json()


def _transition(name: str) -> Callable[[Caller, str], dict]:
    def run(caller: Caller, task_id: str) -> dict:
        return getattr(caller.tasks, name)(caller.user_id, task_id).to_json()

    return run


def _delete(caller: Caller, task_id: str) -> dict:
    task = caller.tasks.get(caller.user_id, task_id).to_json()
    caller.tasks.delete(caller.user_id, task_id)
    return task  # what was deleted, so the assistant can say so (or recreate it)


def _find(caller: Caller, args: dict) -> dict:
    query: dict[str, list[str]] = {}
    for name, param in (
        ("query", "q"),
        ("status", "status"),
        ("sort", "sort"),
        ("cursor", "cursor"),
    ):
        if name in args:
            query[param] = [args[name]]
    if "priority" in args:
        query["priority"] = list(args["priority"])
    if "tags" in args:
        query["tag"] = list(args["tags"])
    if "overdue" in args:
        query["overdue"] = ["true" if args["overdue"] else "false"]
    if "limit" in args:
        query["limit"] = [str(args["limit"])]
    dates = [name for name in ("due_before", "due_after") if name in args]
    if dates:  # English too ("due_before": "end of week"), read in the user's zone
        tz, now = caller.assistant.zone(caller.user_id), caller.assistant.clock()
        for name in dates:
            query[name] = [caller.assistant.instant(args[name], now, tz, name)]
    items, cursor = caller.tasks.list(caller.user_id, query)
    return {"items": [compact(t) for t in items], "next_cursor": cursor, "filters": args}


def _get(caller: Caller, task_id: str) -> dict:
    return caller.tasks.get(caller.user_id, task_id).to_json()


def _reschedule(caller: Caller, args: dict) -> dict:
    task = caller.assistant.reschedule(
        caller.user_id, args["id"], args["due"], args.get("timezone")
    )
    return {"task": task.to_json()}


def _skip(caller: Caller, args: dict) -> dict:
    return {"task": caller.tasks.skip(caller.user_id, args["id"]).to_json()}


def _snooze(caller: Caller, args: dict) -> dict:
    task = caller.assistant.snooze(
        caller.user_id,
        args["task_id"],
        args["reminder_id"],
        {k: v for k, v in args.items() if k in ("for", "until")},
    )
    return {"task": task.to_json()}


def _tags(caller: Caller, args: dict) -> dict:
    tags = caller.tasks.tags(caller.user_id)
    return {"items": [{"name": name, "count": count} for name, count in tags]}


def _profile(caller: Caller, args: dict) -> dict:
    return {"user_id": caller.user_id, **caller.tasks.profile(caller.user_id)}


def _update_profile(caller: Caller, args: dict) -> dict:
    return {"user_id": caller.user_id, **caller.tasks.update_profile(caller.user_id, args)}


def _preview(caller: Caller, args: dict) -> dict:
    return caller.assistant.preview_recurrence(caller.user_id, args)


def _tools() -> list[Tool]:
    add_item = _obj(_TASK_FIELDS, ("title",))
    update_item = _obj({"id": _STRING, **_TASK_FIELDS}, ("id",))
    batch_by_id = _batch_output(_TASK)
    ids = _with_defs(_obj({"ids": _IDS}, ("ids",)))

    def by_ids(name: str, title: str, description: str, run, **hints) -> Tool:
        return Tool(name, title, description, ids, batch_by_id, run=run, batch="ids", **hints)

    return [
        Tool(
            "add_tasks",
            "Add tasks",
            "Create 1 to 50 tasks. Each item succeeds or fails on its own; results come in input "
            "order. `due`, `recurrence` and `reminders` take English or exact values and are read "
            "in the user's time zone (or the item's `timezone`); check a rule first with "
            "preview_recurrence when in doubt.",
            _with_defs(
                _obj(
                    {
                        "tasks": {
                            "type": "array",
                            "items": add_item,
                            "minItems": 1,
                            "maxItems": MAX_BATCH,
                        }
                    },
                    ("tasks",),
                ),
                "Recurrence",
                "ReminderInput",
            ),
            _batch_output(_TASK),
            read_only=False,
            destructive=False,
            idempotent=False,
            run=_add,
            batch="tasks",
        ),
        Tool(
            "find_tasks",
            "Find tasks",
            "Search and filter the user's tasks: full-text `query`, `status` (open by default), "
            "`priority`, `tags` (all of them), `due_before` / `due_after` (RFC 3339 or English), "
            "`overdue`, `sort`, and paging with `limit` and the `next_cursor` of the previous "
            "page. Returns the filters applied, and each task in brief: id, title, the start of "
            "its description, status, priority, tags, due date and zone, rule, the number of "
            "reminders. For a task's reminders (their ids), series or timestamps, use get_tasks.",
            _obj(
                {
                    "query": {
                        "type": "string",
                        "description": "Words to search for (stemmed, "
                        "prefix match on the last word).",
                    },
                    "status": {"enum": ["open", "done", "all"]},
                    "priority": {"type": "array", "items": {"enum": list(PRIORITIES)}},
                    "tags": {"type": "array", "items": _STRING},
                    "due_before": {"type": "string"},
                    "due_after": {"type": "string"},
                    "overdue": {"type": "boolean"},
                    "sort": {"enum": list(SORTS)},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    "cursor": {"type": "string"},
                }
            ),
            _obj(
                {
                    "items": {"type": "array", "items": _compact_task()},
                    "next_cursor": {"type": ["string", "null"]},
                    "filters": {"type": "object"},
                },
                ("items", "next_cursor", "filters"),
            ),
            read_only=True,
            destructive=False,
            idempotent=True,
            run=_find,
        ),
        by_ids(
            "get_tasks",
            "Get tasks",
            "The whole of 1 to 50 tasks by id, as the API's GET /tasks/{id} answers them: the full "
            "description, the rule, each reminder with its id (for snooze_reminder), the series "
            "and occurrence, the timestamps. Results come in input order; an id that names no "
            "task of the user's fails on its own (404).",
            _get,
            read_only=True,
            destructive=False,
            idempotent=True,
        ),
        Tool(
            "update_tasks",
            "Update tasks",
            "Change 1 to 50 tasks: each update names the task `id` and only the fields to change "
            "(null clears a field), as a merge patch. Items succeed or fail on their own. "
            "Changing `due` of a recurring task redefines the series from it; to move only this "
            "instance use reschedule_task.",
            _with_defs(
                _obj(
                    {
                        "updates": {
                            "type": "array",
                            "items": update_item,
                            "minItems": 1,
                            "maxItems": MAX_BATCH,
                        }
                    },
                    ("updates",),
                ),
                "Recurrence",
                "ReminderInput",
            ),
            _batch_output(_TASK),
            read_only=False,
            destructive=True,
            idempotent=True,
            run=_update,
            batch="updates",
        ),
        by_ids(
            "complete_tasks",
            "Complete tasks",
            "Mark tasks done. Completing an instance of a recurring task creates the next "
            "instance (shortly after, by the recurrence function). Completing a done task "
            "changes nothing.",
            _transition("complete"),
            read_only=False,
            destructive=False,
            idempotent=True,
        ),
        by_ids(
            "reopen_tasks",
            "Reopen tasks",
            "Mark done tasks open again.",
            _transition("reopen"),
            read_only=False,
            destructive=False,
            idempotent=True,
        ),
        by_ids(
            "delete_tasks",
            "Delete tasks",
            "Delete tasks for good; each result holds the task as it was.",
            _delete,
            read_only=False,
            destructive=True,
            idempotent=True,
        ),
        Tool(
            "reschedule_task",
            "Reschedule a task",
            "Move one task to a new `due` (RFC 3339 or English). For a recurring task only this "
            "instance moves: the series keeps its rule and times.",
            _obj(
                {
                    "id": _STRING,
                    "due": {"type": "string", "description": _DUE["description"]},
                    "timezone": _TIMEZONE,
                },
                ("id", "due"),
            ),
            _ONE_TASK,
            read_only=False,
            destructive=False,
            idempotent=True,
            run=_reschedule,
        ),
        Tool(
            "skip_occurrence",
            "Skip an occurrence",
            "Move a recurring task to its series' next occurrence without completing it.",
            _obj({"id": _STRING}, ("id",)),
            _ONE_TASK,
            read_only=False,
            destructive=False,
            idempotent=False,
            run=_skip,
        ),
        Tool(
            "snooze_reminder",
            "Snooze a reminder",
            'Remind again later: `for` an ISO 8601 duration from now ("PT30M", "P1D"), or '
            '`until` an RFC 3339 instant or English ("tomorrow 8am"); one of the two.',
            _obj(
                {"task_id": _STRING, "reminder_id": _STRING, "for": _STRING, "until": _STRING},
                ("task_id", "reminder_id"),
            ),
            _ONE_TASK,
            read_only=False,
            destructive=False,
            idempotent=False,
            run=_snooze,
        ),
        Tool(
            "list_tags",
            "List tags",
            "The user's tags with the number of open tasks carrying each, most used first.",
            _obj({}),
            _obj(
                {
                    "items": {
                        "type": "array",
                        "items": _obj(
                            {"name": _STRING, "count": {"type": "integer"}}, ("name", "count")
                        ),
                    }
                },
                ("items",),
            ),
            read_only=True,
            destructive=False,
            idempotent=True,
            run=_tags,
        ),
        Tool(
            "get_profile",
            "Get the profile",
            "The user's e-mail (where reminders go) and time zone (where English dates are read).",
            _obj({}),
            _PROFILE,
            read_only=True,
            destructive=False,
            idempotent=True,
            run=_profile,
        ),
        Tool(
            "update_profile",
            "Update the profile",
            "Set the user's `timezone` (IANA name) and/or `email`; null resets a field.",
            _obj({"timezone": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]}}),
            _PROFILE,
            read_only=False,
            destructive=False,
            idempotent=True,
            run=_update_profile,
        ),
        Tool(
            "preview_recurrence",
            "Preview a recurrence",
            "The RRULE and next dates of a rule (an RRULE or English) without creating anything, "
            "to confirm with the user before adding the task. `start` (RFC 3339 or English) is "
            f"the first date; `count` dates, 5 by default, at most {MAX_PREVIEW}.",
            _obj(
                {
                    "recurrence": {"type": "string", "minLength": 1},
                    "start": _STRING,
                    "timezone": _TIMEZONE,
                    "count": {"type": "integer", "minimum": 1, "maximum": MAX_PREVIEW},
                },
                ("recurrence",),
            ),
            _obj(
                {
                    "rrule": _STRING,
                    "basis": {"enum": ["due", "completion"]},
                    "timezone": _STRING,
                    "dates": {
                        "type": "array",
                        "items": _STRING,
                        "description": "UTC, RFC 3339 with Z.",
                    },
                    "local_dates": {
                        "type": "array",
                        "items": _STRING,
                        "description": "The same instants in the time zone.",
                    },
                },
                ("rrule", "basis", "timezone", "dates", "local_dates"),
            ),
            read_only=True,
            destructive=False,
            idempotent=True,
            run=_preview,
        ),
    ]


# Output schemas without references (see _inlined); input schemas keep theirs: the server checks
# them (_schema_errors), and a oneOf there names the forms an argument may take.
TOOLS: dict[str, Tool] = {
    tool.name: dataclasses.replace(tool, output_schema=_inlined(tool.output_schema))
    for tool in _tools()
}

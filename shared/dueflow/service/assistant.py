"""What the chat assistant and the quick-add box need on top of the task use cases: fields given
in English ("tomorrow 9am", "every month on the 1st at 9", "30 minutes before") turned into the
API's fields in the user's time zone, then handed to TaskService, so the same validation, events
and outbox apply. English is read by dueflow.domain.natural_language; nothing here guesses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from dueflow.domain import natural_language as nl
from dueflow.domain import recurrence as rules
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.task import Task
from dueflow.domain.timefmt import format_instant, parse_timezone
from dueflow.domain.validation import printable
from dueflow.service.tasks import TaskService

DEFAULT_PREVIEW, MAX_PREVIEW = 5, 50
#: Fields of a task given the assistant's way: `due` instead of `due_at`, and English allowed
#: in `due`, `recurrence` and each of `reminders`.
TASK_FIELDS = (
    "title",
    "description",
    "priority",
    "tags",
    "due",
    "timezone",
    "recurrence",
    "reminders",
)


class AssistantService:
    """Task use cases that read English; every write goes through `tasks` (TaskService)."""

    def __init__(self, tasks: TaskService):
        self.tasks = tasks

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.tasks.clock

    def zone(self, user_id: str, override: Any = None, field: str = "timezone") -> ZoneInfo:
        """The zone relative dates are read in: `override` when given, else the profile's."""
        if override is not None:
            return ZoneInfo(parse_timezone(override, field))
        return ZoneInfo(self.tasks.profile(user_id)["timezone"])

    # -- without creating anything --------------------------------------------------------------
    def preview_recurrence(self, user_id: str, body: Any) -> dict[str, Any]:
        """`{recurrence, start?, timezone?, count?}` -> the rule and its next `count` dates, as a
        task due at `start` (default: the phrase's first date, else now) would have them."""
        body = _object(body, ("recurrence", "start", "timezone", "count"))
        errors: list[FieldError] = []
        count = DEFAULT_PREVIEW if body.get("count") is None else body["count"]
        if isinstance(count, float) and count.is_integer():
            count = int(count)  # JSON has one number type: 5.0 is the integer 5
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PREVIEW:
            errors.append(FieldError("count", f"must be an integer from 1 to {MAX_PREVIEW}"))
        if not isinstance(body.get("recurrence"), str):
            errors.append(FieldError("recurrence", "is required: an RRULE or a phrase"))
        tz = _collect(errors, lambda: self.zone(user_id, body.get("timezone")))
        if errors:
            raise ValidationFailed(errors)
        now = self.clock()
        phrase = nl.parse_recurrence(body["recurrence"], now=now, tz=tz, field="recurrence")
        start = phrase.first_due or now.replace(second=0, microsecond=0)
        if body.get("start") is not None:
            start = _text(body, "start", lambda v: nl.parse_due(v, now=now, tz=tz, field="start"))
        rules.check_rule(phrase.rrule, start, tz.key)
        dates = [start]
        anchor, index = rules.local_wall_clock(start, tz.key), 1
        while len(dates) < count:
            nxt = rules.next_occurrence(phrase.rrule, tz.key, anchor, index, dates[-1])
            if nxt is None:
                break  # the series ends (COUNT or UNTIL)
            dates.append(nxt.due_at)
            anchor, index = nxt.anchor, nxt.index
        return {
            "rrule": phrase.rrule,
            "basis": phrase.basis,
            "timezone": tz.key,
            "dates": [format_instant(d) for d in dates],
            "local_dates": [d.astimezone(tz).isoformat() for d in dates],
        }

    # -- writes ----------------------------------------------------------------------------------
    def quick_add(self, user_id: str, body: Any) -> Task:
        """`{"text": "Pay rent every month on the 1st at 9 #home !high", "timezone"?}` -> the
        created task."""
        body = _object(body, ("text", "timezone"))
        if not isinstance(body.get("text"), str) or not body["text"].strip():
            raise ValidationFailed([FieldError("text", "is required: one line of text")])
        if not printable(body["text"]):  # what is left of the line becomes the title
            raise ValidationFailed(
                [FieldError("text", "must be printable: no control characters or lone surrogates")]
            )
        tz = self.zone(user_id, body.get("timezone"))
        fields = nl.parse_quick_add(body["text"], now=self.clock(), tz=tz, field="text")
        fields.setdefault("timezone", tz.key)
        return self.tasks.create(user_id, fields)

    def add(self, user_id: str, item: Any) -> Task:
        """Create one task given the assistant's way (see TASK_FIELDS)."""
        return self.tasks.create(user_id, self._task_body(user_id, item, current=None))

    def update(self, user_id: str, task_id: str, item: Any) -> Task:
        """Merge-patch one task given the assistant's way (only the fields it names change)."""
        current = self.tasks.get(user_id, task_id)
        return self.tasks.update(user_id, task_id, self._task_body(user_id, item, current))

    def reschedule(self, user_id: str, task_id: str, due: Any, timezone: Any = None) -> Task:
        """Move one instance to `due` (RFC 3339 or English); a series keeps its rule."""
        if not isinstance(due, str):
            raise ValidationFailed([FieldError("due", "is required: a date-time or a phrase")])
        tz = self.zone(user_id, timezone)
        due_at = nl.parse_due(due, now=self.clock(), tz=tz, field="due")
        return self.tasks.reschedule(user_id, task_id, due_at)

    def snooze(self, user_id: str, task_id: str, reminder_id: str, body: dict) -> Task:
        """Snooze a reminder `{"for": ISO 8601 duration}` or `{"until": RFC 3339 or English}`."""
        if isinstance(body.get("until"), str):
            tz = self.zone(user_id)
            body = {**body, "until": self.instant(body["until"], self.clock(), tz, "until")}
        return self.tasks.snooze(user_id, task_id, reminder_id, body)

    @staticmethod
    def instant(text: str, now: datetime, tz: ZoneInfo, field: str) -> str:
        """RFC 3339 (UTC) of a date-time given exactly or in English."""
        return format_instant(nl.parse_due(text, now=now, tz=tz, field=field))

    def _task_body(self, user_id: str, item: Any, current: Task | None) -> dict[str, Any]:
        """The `POST /tasks` body (or merge patch, with `current`) for an assistant's item."""
        item = _object(item, TASK_FIELDS)
        errors: list[FieldError] = []
        tz = _collect(errors, lambda: self.zone(user_id, item.get("timezone")))
        if tz is None:
            raise ValidationFailed(errors)
        now = self.clock()
        body = {k: v for k, v in item.items() if k not in ("due", "recurrence", "reminders")}
        if "due" in item:
            body["due_at"] = _collect(errors, lambda: _due(item["due"], now, tz))
        if isinstance(item.get("recurrence"), str):
            phrase = _collect(
                errors, lambda: nl.parse_recurrence(item["recurrence"], now=now, tz=tz)
            )
            if phrase is not None:
                body["recurrence"] = {"rrule": phrase.rrule, "basis": phrase.basis}
                has_due = "due" in item or (current is not None and current.due_at is not None)
                if phrase.first_due is not None and not has_due:
                    body["due_at"] = format_instant(phrase.first_due)
        elif "recurrence" in item:
            body["recurrence"] = item["recurrence"]  # an object (or null) as the API takes it
        if isinstance(item.get("reminders"), list):
            body["reminders"] = [
                _collect(errors, lambda i=i, r=r: _reminder(r, now, tz, f"reminders.{i}"))
                for i, r in enumerate(item["reminders"])
            ]
        elif "reminders" in item:
            body["reminders"] = item["reminders"]
        if errors:
            raise ValidationFailed(errors)
        phrased = any(isinstance(item.get(k), str) for k in ("due", "recurrence"))
        if "timezone" not in item and (current is None or phrased):
            body["timezone"] = tz.key  # a phrase's times are the zone's wall-clock times
        return body


def _due(value: Any, now: datetime, tz: ZoneInfo) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed([FieldError("due", "must be a date-time or a phrase, or null")])
    return AssistantService.instant(value, now, tz, "due")


def _reminder(value: Any, now: datetime, tz: ZoneInfo, field: str) -> Any:
    if isinstance(value, str):
        return nl.parse_reminder(value, now=now, tz=tz, field=field)
    return value  # {"before": ...} or {"at": ...}: the API checks it


def _text(body: dict, name: str, parse: Callable[[str], Any]) -> Any:
    if not isinstance(body[name], str):
        raise ValidationFailed([FieldError(name, "must be a date-time or a phrase")])
    return parse(body[name])


def _object(body: Any, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    if unknown := [k for k in body if k not in known]:
        raise ValidationFailed([FieldError(str(k), "unknown field") for k in unknown])
    return body


def _collect(errors: list[FieldError], compute: Callable[[], Any]) -> Any:
    """`compute()`, or None with its field errors added to `errors` (so all are reported)."""
    try:
        return compute()
    except ValidationFailed as exc:
        errors.extend(exc.errors)
        return None

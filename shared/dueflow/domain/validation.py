"""Validation of task input (create bodies and merge patches): pure, and collecting every error."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

from dueflow.domain.durations import parse_duration
from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.recurrence import canonical, parse_rule
from dueflow.domain.reminder_schedule import ReminderInput
from dueflow.domain.task import EDITABLE_FIELDS, PRIORITIES, Recurrence
from dueflow.domain.timefmt import parse_instant, parse_timezone

MAX_TITLE, MAX_DESCRIPTION = 500, 10_000
MAX_TAGS, MAX_TAG_LENGTH = 20, 50
MAX_REMINDERS, MAX_EXDATES = 10, 100

# What no title or tag may hold: control characters (Unicode Cc), line and paragraph separators,
# lone surrogates (no UTF-8 for them). The OpenAPI document states it as this pattern.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


@dataclass(frozen=True)
class TaskFields:
    """A validated create body: every editable field, defaults filled in (see DEFAULTS)."""

    title: str
    description: str | None = None
    priority: str = "none"
    tags: tuple[str, ...] = ()
    due_at: datetime | None = None
    timezone: str = "UTC"
    recurrence: Recurrence | None = None
    reminders: tuple[ReminderInput, ...] = ()


#: What a merge patch's `null` resets each field to: the create defaults (the title has none).
DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TaskFields) if f.name != "title"}


class _Unset:
    """The value of a field a merge patch leaves alone (None would mean "reset it")."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


@dataclass(frozen=True)
class TaskPatch:
    """A validated merge patch: the value of each field it sets (null -> the field's default),
    UNSET for each field it leaves as it is."""

    title: str | _Unset = UNSET
    description: str | None | _Unset = UNSET
    priority: str | _Unset = UNSET
    tags: tuple[str, ...] | _Unset = UNSET
    due_at: datetime | None | _Unset = UNSET
    timezone: str | _Unset = UNSET
    recurrence: Recurrence | None | _Unset = UNSET
    reminders: tuple[ReminderInput, ...] | _Unset = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields the patch sets, by name, in the order of EDITABLE_FIELDS."""
        return {
            f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not UNSET
        }


def parse_create(body: Any) -> TaskFields:
    """Validate a `POST /tasks` body; returns every editable field, defaults filled in."""
    return TaskFields(**_parse(body, partial=False))


def parse_patch(body: Any, current: Recurrence | None = None) -> TaskPatch:
    """Validate a JSON merge patch; returns only the fields it sets (null -> the field's default).

    RFC 7396 merges objects member by member, so a `recurrence` object in the patch is merged
    into the task's `current` recurrence (a member set to null returns to its default).
    """
    if isinstance(body, dict) and isinstance(body.get("recurrence"), dict) and current is not None:
        merged = {**current.to_json(), **body["recurrence"]}
        body = {**body, "recurrence": {k: v for k, v in merged.items() if v is not None}}
    return TaskPatch(**_parse(body, partial=True))


def _parse(body: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    errors: list[FieldError] = []
    out: dict[str, Any] = {}
    for name in body:
        if name not in EDITABLE_FIELDS:
            errors.append(FieldError(printable_name(name), "unknown field"))
    if not partial and "title" not in body:
        errors.append(FieldError("title", "is required"))
    for name in EDITABLE_FIELDS:
        if name not in body:
            continue
        value = body[name]
        try:
            if value is None and name != "title":
                out[name] = DEFAULTS[name]
            else:
                out[name] = _PARSERS[name](value)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return out


def _title(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad("title", "must be a non-empty string")
    value = value.strip()
    if not printable(value):
        raise _bad("title", "must be printable: no control characters or lone surrogates")
    if len(value) > MAX_TITLE:
        raise _bad("title", f"must be at most {MAX_TITLE} characters")
    return value


def _description(value: Any) -> str:
    if not isinstance(value, str):
        raise _bad("description", "must be a string or null")
    # no database stores NUL or a lone surrogate (no UTF-8 for it) in text, and no person types it
    if "\x00" in value or has_surrogate(value):
        raise _bad("description", "must not contain NUL characters or lone surrogates")
    if len(value) > MAX_DESCRIPTION:
        raise _bad("description", f"must be at most {MAX_DESCRIPTION} characters")
    return value


def _priority(value: Any) -> str:
    if value not in PRIORITIES:
        raise _bad("priority", f"must be one of {', '.join(PRIORITIES)}")
    return value


def _tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad("tags", "must be a list of strings")
    tags: list[str] = []
    errors = []
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not tag.strip():
            errors.append(FieldError(f"tags.{i}", "must be a non-empty string"))
        elif len(tag.strip()) > MAX_TAG_LENGTH or not printable(tag):
            errors.append(
                FieldError(f"tags.{i}", f"must be printable, at most {MAX_TAG_LENGTH} characters")
            )
        elif (norm := tag.strip().lower()) not in tags:
            tags.append(norm)
    if errors:
        raise ValidationFailed(errors)
    if len(tags) > MAX_TAGS:
        raise _bad("tags", f"at most {MAX_TAGS} distinct tags")
    return tuple(tags)


def _due_at(value: Any) -> datetime:
    return parse_instant(value, "due_at")


def _timezone(value: Any) -> str:
    return parse_timezone(value, "timezone")


def _recurrence(value: Any) -> Recurrence:
    if not isinstance(value, dict):
        raise _bad("recurrence", "must be an object with rrule, basis and exdates, or null")
    errors = [
        FieldError(f"recurrence.{printable_name(k)}", "unknown field")
        for k in value
        if k not in ("rrule", "basis", "exdates")
    ]
    # RFC 7396: a null member is no member (its default), on create and patch alike
    value = {k: v for k, v in value.items() if v is not None}
    rrule = basis = None
    exdates: list[datetime] = []
    try:
        rrule = canonical(parse_rule(value.get("rrule")))
    except ValidationFailed as exc:
        errors.extend(exc.errors)
    basis = value.get("basis", "due")
    if basis not in ("due", "completion"):
        errors.append(FieldError("recurrence.basis", "must be due or completion"))
    raw = value.get("exdates", [])
    if not isinstance(raw, list) or len(raw) > MAX_EXDATES:
        errors.append(
            FieldError("recurrence.exdates", f"must be a list of at most {MAX_EXDATES} date-times")
        )
    else:
        for i, item in enumerate(raw):
            try:
                exdates.append(parse_instant(item, f"recurrence.exdates.{i}"))
            except ValidationFailed as exc:
                errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return Recurrence(rrule, basis, tuple(sorted(set(exdates))))


def _reminders(value: Any) -> tuple[ReminderInput, ...]:
    if not isinstance(value, list):
        raise _bad("reminders", "must be a list")
    if len(value) > MAX_REMINDERS:
        raise _bad("reminders", f"at most {MAX_REMINDERS} reminders")
    out, errors = [], []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or len(item) != 1 or not ({"before", "at"} & item.keys()):
            errors.append(
                FieldError(f"reminders.{i}", 'must be {"before": duration} or {"at": date-time}')
            )
            continue
        try:
            if "before" in item:
                out.append(
                    ReminderInput(before=parse_duration(item["before"], f"reminders.{i}.before"))
                )
            else:
                out.append(ReminderInput(at=parse_instant(item["at"], f"reminders.{i}.at")))
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return tuple(out)


def printable(text: str) -> bool:
    """No control characters, line or paragraph separators, or lone surrogates."""
    return _UNPRINTABLE.search(text) is None


def has_surrogate(text: str) -> bool:
    """A lone surrogate (JSON's `"\\ud800"`) has no UTF-8: no database can store it."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def printable_name(name: str) -> str:
    """A client's field or parameter name, safe to echo: lone surrogates become U+FFFD."""
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in str(name))


def _bad(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, message)])


_PARSERS = {
    "title": _title,
    "description": _description,
    "priority": _priority,
    "tags": _tags,
    "due_at": _due_at,
    "timezone": _timezone,
    "recurrence": _recurrence,
    "reminders": _reminders,
}


def parse_snooze(body: Any, now: datetime, tz_name: str) -> datetime:
    """`{"for": ISO 8601 duration}` or `{"until": RFC 3339}` -> the instant to remind again."""
    if not isinstance(body, dict) or len(body) != 1 or not ({"for", "until"} & body.keys()):
        raise ValidationFailed([FieldError("", 'send {"for": duration} or {"until": date-time}')])
    if "until" in body:
        return parse_instant(body["until"], "until")
    duration = parse_duration(body["for"], "for")
    if duration.subtract_from(now, tz_name) == now:
        raise ValidationFailed([FieldError("for", "must be longer than zero")])
    return duration.add_to(now, tz_name)

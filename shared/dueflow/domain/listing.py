"""List queries: parameters, sort orders and opaque keyset cursors. Pure."""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.task import PRIORITIES
from dueflow.domain.timefmt import parse_instant
from dueflow.domain.validation import printable, printable_name

MAX_LIMIT, DEFAULT_LIMIT, MAX_WORDS = 200, 50, 10
MAX_TAG_LENGTH = 50  # as a task's tags (domain.validation)
PARAMS = {
    "q",
    "status",
    "priority",
    "tag",
    "due_before",
    "due_after",
    "overdue",
    "sort",
    "limit",
    "cursor",
}


@dataclass(frozen=True)
class SortKey:
    column: str  # due_at | priority | title_sort | created_at | updated_at | id
    descending: bool = False
    nullable: bool = False  # nulls always sort last


# Each sort order ends with `id` so that every position is unique (needed by keyset paging).
# `-` is descending by the field's value; priority's values rank none < low < medium < high.
_DUE = SortKey("due_at", nullable=True)
SORTS: dict[str, tuple[SortKey, ...]] = {
    "due_at": (_DUE, SortKey("priority", True), SortKey("id")),
    "-due_at": (SortKey("due_at", True, True), SortKey("priority", True), SortKey("id")),
    "priority": (SortKey("priority"), _DUE, SortKey("id")),
    "-priority": (SortKey("priority", True), _DUE, SortKey("id")),
    "title": (SortKey("title_sort"), SortKey("id")),
    "-title": (SortKey("title_sort", True), SortKey("id")),
    "created_at": (SortKey("created_at"), SortKey("id")),
    "-created_at": (SortKey("created_at", True), SortKey("id")),
    "updated_at": (SortKey("updated_at"), SortKey("id")),
    "-updated_at": (SortKey("updated_at", True), SortKey("id")),
}
_DATETIME_COLUMNS = {"due_at", "created_at", "updated_at"}


@dataclass(frozen=True)
class ListQuery:
    words: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("open",)
    priorities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue: bool = False
    sort: str = "due_at"
    limit: int = DEFAULT_LIMIT
    after: tuple | None = None  # sort-key values of the last row already seen

    @property
    def keys(self) -> tuple[SortKey, ...]:
        return SORTS[self.sort]


def parse_list_query(args: Mapping[str, Sequence[str]]) -> ListQuery:
    """Validate query parameters (each a list of values); errors name the parameter."""
    errors: list[FieldError] = []
    fields: dict = {}

    def one(name: str) -> str | None:
        values = args.get(name) or []
        if len(values) > 1:
            errors.append(FieldError(name, "give this parameter once"))
        return values[0] if values else None

    for name in args:
        if name not in PARAMS:
            errors.append(FieldError(printable_name(name), "unknown query parameter"))
    if (q := one("q")) is not None:
        words = search_words(q)
        if len(words) > MAX_WORDS or any(len(w) > 64 for w in words):
            errors.append(FieldError("q", f"at most {MAX_WORDS} words of 64 characters"))
        fields["words"] = words
    if (status := one("status")) is not None:
        if status not in ("open", "done", "all"):
            errors.append(FieldError("status", "must be open, done or all"))
        fields["statuses"] = ("open", "done") if status == "all" else (status,)
    priorities = tuple(args.get("priority") or ())
    if bad := [p for p in priorities if p not in PRIORITIES]:
        errors.append(FieldError("priority", f"unknown priority {bad[0]!r}"))
    fields["priorities"] = priorities
    tags = tuple(t.strip().lower() for t in args.get("tag") or () if t.strip())
    if any(len(t) > MAX_TAG_LENGTH or not printable(t) for t in tags):
        errors.append(FieldError("tag", f"must be printable, at most {MAX_TAG_LENGTH} characters"))
    fields["tags"] = tags
    for name in ("due_before", "due_after"):
        if (raw := one(name)) is not None:
            try:
                fields[name] = parse_instant(raw, name)
            except ValidationFailed as exc:
                errors.extend(exc.errors)
    if (overdue := one("overdue")) is not None:
        if overdue not in ("true", "false"):
            errors.append(FieldError("overdue", "must be true or false"))
        fields["overdue"] = overdue == "true"
    sort = one("sort") or "due_at"
    if sort not in SORTS:
        errors.append(FieldError("sort", f"must be one of {', '.join(SORTS)}"))
    fields["sort"] = sort
    if (limit := one("limit")) is not None:
        if not re.fullmatch(r"[0-9]{1,4}", limit) or not 1 <= int(limit) <= MAX_LIMIT:
            errors.append(FieldError("limit", f"must be a whole number from 1 to {MAX_LIMIT}"))
        else:
            fields["limit"] = int(limit)
    if (cursor := one("cursor")) is not None and sort in SORTS:
        try:
            fields["after"] = decode_cursor(cursor, sort)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return ListQuery(**fields)


# PostgreSQL's English stop words (its `english.stop`): dropped on both databases, except a last
# word, which may be the start of a longer one ("the" -> "theme"), so both answer alike.
STOP_WORDS = frozenset(
    """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her
hers herself it its itself they them their theirs themselves what which who whom this that these
those am is are was were be been being have has had having do does did doing a an the and but if
or because as until while of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very s
t can will just don should now""".split()
)


def search_words(q: str) -> tuple[str, ...]:
    """Lower-cased words of letters and digits; stop words dropped except in the last place."""
    words = [w.lower() for w in re.findall(r"[^\W_]+", q)]
    return tuple(w for i, w in enumerate(words) if w not in STOP_WORDS or i == len(words) - 1)


# The sort order a cursor names. The priority orders changed direction in issue 11 (`priority`
# was high-first): their new name makes a cursor issued before refused, not misread.
_CURSOR_NAMES = {"priority": "priority.v2", "-priority": "-priority.v2"}


def _signature(sort: str) -> str:
    return _CURSOR_NAMES.get(sort, sort)


def encode_cursor(sort: str, values: Sequence) -> str:
    """An opaque, URL-safe cursor holding the sort order and the last row's sort values."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([_signature(sort), plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, sort: str) -> tuple:
    bad = ValidationFailed([FieldError("cursor", "is not a cursor returned for this sort order")])
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, values = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise bad from None
    keys = SORTS[sort]
    if cursor_sort != _signature(sort) or not isinstance(values, list) or len(values) != len(keys):
        raise bad
    try:
        return tuple(_cursor_value(k, v) for k, v in zip(keys, values, strict=True))
    except (TypeError, ValueError, OverflowError):
        raise bad from None


def _cursor_value(key: SortKey, value):
    """Check one decoded value as strictly as the column it stands for (cursors can be forged)."""
    if value is None:
        if not key.nullable:
            raise ValueError("null")
        return None
    if key.column in _DATETIME_COLUMNS:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed.astimezone(timezone.utc)
    if key.column == "priority":
        if type(value) is not int or not 0 <= value < len(PRIORITIES):
            raise ValueError("priority")
        return value
    if key.column == "id":
        if not isinstance(value, str):
            raise ValueError("id")
        return str(uuid.UUID(value))
    if not isinstance(value, str) or len(value) > 500 or "\x00" in value:
        raise ValueError("title")
    return value

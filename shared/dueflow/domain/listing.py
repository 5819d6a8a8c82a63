"""List queries: parameters, sort orders and opaque keyset cursors. Pure."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.task import PRIORITIES
from dueflow.domain.timefmt import parse_instant

MAX_LIMIT, DEFAULT_LIMIT, MAX_WORDS = 200, 50, 10
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
_DUE = SortKey("due_at", nullable=True)
SORTS: dict[str, tuple[SortKey, ...]] = {
    "due_at": (_DUE, SortKey("priority", True), SortKey("id")),
    "-due_at": (SortKey("due_at", True, True), SortKey("priority", True), SortKey("id")),
    "priority": (SortKey("priority", True), _DUE, SortKey("id")),
    "-priority": (SortKey("priority"), _DUE, SortKey("id")),
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
            errors.append(FieldError(name, "unknown query parameter"))
    if (q := one("q")) is not None:
        words = tuple(w.lower() for w in re.findall(r"\w+", q))
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
    fields["tags"] = tuple(t.strip().lower() for t in args.get("tag") or () if t.strip())
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
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
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


def encode_cursor(sort: str, values: Sequence) -> str:
    """An opaque, URL-safe cursor holding the sort order and the last row's sort values."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([sort, plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, sort: str) -> tuple:
    bad = ValidationFailed([FieldError("cursor", "is not a cursor returned for this sort order")])
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, values = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise bad from None
    keys = SORTS[sort]
    if cursor_sort != sort or not isinstance(values, list) or len(values) != len(keys):
        raise bad
    out = []
    for key, value in zip(keys, values, strict=True):
        if value is None and not key.nullable:
            raise bad
        if key.column in _DATETIME_COLUMNS and value is not None:
            try:
                value = datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise bad from None
        elif key.column == "priority" and not isinstance(value, int):
            raise bad
        elif key.column in ("id", "title_sort") and not isinstance(value, str):
            raise bad
        out.append(value)
    return tuple(out)

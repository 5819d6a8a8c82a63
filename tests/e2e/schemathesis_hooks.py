"""Schemathesis hooks for tests/e2e/test_api_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

Every built-in check runs, with one replaced: `positive_data_acceptance` (schema-valid input must
not be rejected) becomes `positive_data_acceptance_but_named_rules`, which lets a 422 pass only
when every field it names is one of the rules below. Each is a rule of the server that a JSON
Schema cannot state (state, time or a grammar), documented in openapi.json's descriptions and
docs/api.md. A 422 naming any other field is still a failure.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

_TASK_BODY = {
    "recurrence.rrule": "an RFC 5545 RRULE has a grammar (and COUNT/UNTIL/BY* rules) no pattern "
    "can state; the document names the field and links the RFC",
    "due_at": "a recurrence or a `before` reminder needs a due date: a rule across fields, and "
    "in a patch across the stored task",
    "timezone": "any IANA time zone name of the server's tz database: the list changes with "
    "tzdata releases, so the document does not enumerate it",
    "recurrence.exdates.*": "each exdate must be the instant of one of the rule's occurrences",
    "reminders.*.before": "a `before` reminder needs a due date: a rule across fields",
}
#: operation label -> {field (a glob): why no schema can state the rule}
NAMED_RULES: dict[str, dict[str, str]] = {
    "GET /tasks": {
        "cursor": "opaque: only a cursor the server issued, for the same sort, is valid",
        "q": "at most 10 words of 64 characters, words as the full-text search splits them",
    },
    "POST /tasks": _TASK_BODY,
    "PATCH /tasks/{id}": _TASK_BODY,
    "POST /tasks/{id}/skip": {
        "recurrence": "only a recurring task can be skipped: the stored task's state",
    },
    "PATCH /me": {"timezone": _TASK_BODY["timezone"]},
    "POST /recurrence/preview": {
        "recurrence": "an RRULE or an English phrase (docs/natural-language.md): a grammar",
        "start": "RFC 3339 or an English date (docs/natural-language.md): a grammar",
        "timezone": _TASK_BODY["timezone"],
    },
    "POST /tasks/quick": {
        "text": "a line of English (docs/natural-language.md): a grammar; an unknown phrase is "
        "named, never guessed",
        "timezone": _TASK_BODY["timezone"],
    },
    "POST /tasks/{id}/reminders/{reminder_id}/snooze": {
        "for": "must be longer than zero (a pattern cannot exclude every spelling of zero)",
        "until": "must be in the future: depends on the clock",
    },
}


def _named(label: str, field: str) -> bool:
    return any(fnmatchcase(field, rule) for rule in NAMED_RULES.get(label, {}))


@schemathesis.check
def positive_data_acceptance_but_named_rules(ctx, response, case):
    """`positive_data_acceptance`, except for a 422 naming only fields of NAMED_RULES."""
    if response.status_code == 422:
        try:
            fields = [e["field"] for e in response.json()["errors"]]
        except (ValueError, KeyError, TypeError):
            fields = []
        if fields and all(_named(case.operation.label, f) for f in fields):
            return None
    return positive_data_acceptance(ctx, response, case)

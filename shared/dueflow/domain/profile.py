"""A user's profile: the e-mail address reminders go to and the time zone relative dates are read
in ("tomorrow 9am" is 09:00 there). Validation of its merge patch; pure."""

from __future__ import annotations

import re
from typing import Any

from dueflow.domain.errors import FieldError, ValidationFailed
from dueflow.domain.timefmt import parse_timezone

DEFAULT_TIMEZONE = "UTC"
MAX_EMAIL = 320
# One @, something on both sides, a dot in the domain, no spaces or angle brackets: enough to
# catch typos without rejecting real addresses (the mail server has the last word).
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>.]+$")


def parse_profile_patch(body: Any) -> dict[str, Any]:
    """Validate a JSON merge patch of the profile (`timezone`, `email`); returns the fields it
    sets. `timezone: null` resets it to UTC; `email: null` lets the token's claim set it again."""
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    errors = [FieldError(str(k), "unknown field") for k in body if k not in ("timezone", "email")]
    out: dict[str, Any] = {}
    if "timezone" in body:
        try:
            value = body["timezone"]
            out["timezone"] = DEFAULT_TIMEZONE if value is None else parse_timezone(value)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if "email" in body:
        email = body["email"]
        if email is None:
            out["email"] = None
        elif not isinstance(email, str) or len(email) > MAX_EMAIL or not _EMAIL.match(email):
            errors.append(FieldError("email", "must be an e-mail address such as me@example.com"))
        else:
            out["email"] = email
    if errors:
        raise ValidationFailed(errors)
    return out

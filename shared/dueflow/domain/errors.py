"""Domain errors. The HTTP and event edges map them to 4xx answers that are never retried."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """A request that can never succeed as sent."""


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path, e.g. "recurrence.rrule" or "reminders.2.before"
    message: str

    @property
    def pointer(self) -> str:
        """The same path as an RFC 6901 JSON pointer, e.g. "/recurrence/rrule"."""
        if not self.field:
            return ""
        return "/" + "/".join(
            p.replace("~", "~0").replace("/", "~1") for p in self.field.split(".")
        )


class ValidationFailed(DomainError):
    """One or more fields are invalid; `errors` names each of them."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


class NotFound(DomainError):
    """The thing does not exist, or belongs to someone else (indistinguishable on purpose)."""


class Conflict(DomainError):
    """The request is valid but the thing's current state does not allow it (HTTP 409)."""


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(field, message)])

"""RFC 9457 problem details responses."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

from dueflow.domain.errors import FieldError

TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation", "Validation failed"),
    500: ("internal", "Internal error"),
    503: ("service-unavailable", "Service unavailable"),
}


def problem(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict | None = None,
) -> Response:
    body = problem_document(status, detail, instance=instance, errors=errors)
    return Response(
        json.dumps(body), status=status, headers=headers, content_type="application/problem+json"
    )


def problem_document(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
) -> dict:
    """The problem details object (also what the assistant's tools answer a failure with)."""
    slug, title = TITLES[status]
    body: dict = {
        "type": f"urn:dueflow:problem:{slug}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = [
            {"field": e.field, "pointer": e.pointer, "message": e.message} for e in errors
        ]
    return body

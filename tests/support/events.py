"""Delivering CloudEvents to a function as the Broker, a Trigger or a source does: a
structured-mode event dict sent in binary or structured HTTP mode through functions-framework's
test client, and the outcome the event functions answer."""

from __future__ import annotations

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent


def as_http(event: dict, mode: str) -> tuple[dict, bytes | None]:
    """The HTTP request a Broker/Trigger (or a source) makes for a structured-mode event dict."""
    attributes = {k: v for k, v in event.items() if k != "data"}
    cloud_event = CloudEvent(attributes, event.get("data"))
    return to_binary(cloud_event) if mode == "binary" else to_structured(cloud_event)


def deliver(function, event: dict, mode: str, path: str = "/"):
    headers, body = as_http(event, mode)
    return function.post(path, headers=headers, data=body)


def outcome(response) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.json["outcome"]

"""An event as a function received it, whatever the transport (HTTP CloudEvent, Dapr binding)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class InboundEvent:
    type: str
    source: str
    id: str
    data: object
    attributes: dict = field(default_factory=dict)  # every CloudEvent attribute and extension

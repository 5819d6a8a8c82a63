"""Reads the wiring from the Knative manifests in eventing/: `make run` routes as a cluster does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Trigger:
    name: str
    event_type: str | None  # None: every event
    subscriber: str  # the Knative Service (= function) name


@dataclass(frozen=True)
class Wiring:
    triggers: tuple[Trigger, ...]
    ping_targets: tuple[str, ...]  # functions a PingSource ticks

    def subscribers(self, event_type: str) -> list[str]:
        return [t.subscriber for t in self.triggers if t.event_type in (None, event_type)]


def load(directory: Path) -> Wiring:
    triggers, pings = [], []
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            spec = doc.get("spec", {})
            if doc.get("kind") == "Trigger":
                attributes = (spec.get("filter") or {}).get("attributes") or {}
                triggers.append(
                    Trigger(
                        doc["metadata"]["name"],
                        attributes.get("type"),
                        spec["subscriber"]["ref"]["name"],
                    )
                )
            elif doc.get("kind") == "PingSource":
                pings.append(spec["sink"]["ref"]["name"])
    return Wiring(tuple(triggers), tuple(pings))

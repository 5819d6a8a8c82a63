"""Reads the wiring from the Knative manifests in eventing/: `make run` routes as a cluster does."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import isodate
import yaml


@dataclass(frozen=True)
class Delivery:
    """A Knative delivery spec: retries with backoff, then the dead-letter sink (a Service)."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.2  # seconds
    dead_letter: str | None = None

    def delay(self, attempt: int) -> float:
        """Wait before retry number `attempt` (1-based), as Knative computes it."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * attempt
        return self.backoff_delay * 2 ** (attempt - 1)


@dataclass(frozen=True)
class Trigger:
    name: str
    filters: tuple[dict, ...]  # Knative filters: exact, prefix, suffix, all, any, not
    subscriber: str  # a Service (function) name, or a KafkaSink name
    subscriber_kind: str  # "Service" | "KafkaSink"
    delivery: Delivery
    ordered: bool = False

    def matches(self, attributes: dict) -> bool:
        return all(_matches(f, attributes) for f in self.filters)


@dataclass(frozen=True)
class KafkaSource:
    name: str
    topics: tuple[str, ...]
    consumer_group: str


@dataclass(frozen=True)
class KafkaSink:
    name: str
    topic: str


@dataclass(frozen=True)
class Wiring:
    triggers: tuple[Trigger, ...] = ()
    ping_targets: tuple[str, ...] = ()  # functions a PingSource ticks
    kafka_sources: tuple[KafkaSource, ...] = ()  # each feeds the Broker
    kafka_sinks: dict[str, KafkaSink] = field(default_factory=dict)

    def matching(self, attributes: dict) -> list[Trigger]:
        return [t for t in self.triggers if t.matches(attributes)]

    def subscribers(self, event_type: str) -> list[str]:
        return [t.subscriber for t in self.matching({"type": event_type})]


def load(directory: Path) -> Wiring:
    docs = [
        doc
        for path in sorted(directory.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    # Triggers take each delivery field they leave out from their Broker's spec
    broker = next((d["spec"].get("delivery") or {} for d in docs if d["kind"] == "Broker"), {})
    triggers, pings, sources, sinks = [], [], [], {}
    for doc in docs:
        spec, name = doc.get("spec", {}), doc["metadata"]["name"]
        kind = doc["kind"]
        if kind == "Trigger":
            ref = spec["subscriber"]["ref"]
            annotations = doc["metadata"].get("annotations") or {}
            ordered = annotations.get("kafka.eventing.knative.dev/delivery.order") == "ordered"
            triggers.append(
                Trigger(
                    name,
                    _filters(spec),
                    ref["name"],
                    ref["kind"],
                    _delivery({**broker, **(spec.get("delivery") or {})}),
                    ordered,
                )
            )
        elif kind == "PingSource":
            pings.append(spec["sink"]["ref"]["name"])
        elif kind == "KafkaSource":
            group = spec.get("consumerGroup") or f"knative-kafkasource-{name}"
            sources.append(KafkaSource(name, tuple(spec["topics"]), group))
        elif kind == "KafkaSink":
            sinks[name] = KafkaSink(name, spec["topic"])
    return Wiring(tuple(triggers), tuple(pings), tuple(sources), sinks)


def _filters(spec: dict) -> tuple[dict, ...]:
    """The new `filters` list when present (it wins, as in Knative), else `filter.attributes`."""
    if spec.get("filters"):
        for expression in spec["filters"]:
            _check(expression)
        return tuple(spec["filters"])
    attributes = (spec.get("filter") or {}).get("attributes") or {}
    return ({"exact": attributes},) if attributes else ()


def _check(expression: dict) -> None:
    if not isinstance(expression, dict) or len(expression) != 1:
        raise ValueError(f"a filter expression has exactly one dialect key: {expression!r}")
    ((dialect, value),) = expression.items()
    if dialect in ("all", "any"):
        for inner in value:
            _check(inner)
    elif dialect == "not":
        _check(value)
    elif dialect not in ("exact", "prefix", "suffix"):
        raise ValueError(f"the local broker does not evaluate `{dialect}` filters")


def _matches(expression: dict, attributes: dict) -> bool:
    ((dialect, value),) = expression.items()
    if dialect == "all":
        return all(_matches(e, attributes) for e in value)
    if dialect == "any":
        return any(_matches(e, attributes) for e in value)
    if dialect == "not":
        return not _matches(value, attributes)
    test = {"exact": str.__eq__, "prefix": str.startswith, "suffix": str.endswith}[dialect]
    return all(
        isinstance(attributes.get(k), str) and test(attributes[k], v) for k, v in value.items()
    )


def _delivery(spec: dict | None) -> Delivery:
    if not spec:
        return Delivery()
    delay = spec.get("backoffDelay")
    dead_letter = ((spec.get("deadLetterSink") or {}).get("ref") or {}).get("name")
    return Delivery(
        retry=int(spec.get("retry", 0)),
        backoff_policy=spec.get("backoffPolicy", "exponential"),
        backoff_delay=isodate.parse_duration(delay).total_seconds() if delay else 0.2,
        dead_letter=dead_letter,
    )

"""Reads the Knative and Gateway API manifests, so `make run` starts, wires and routes as a cluster
does: the functions from knative/100-*.yaml, the event wiring from eventing/, the public path
table from gateway/ (the HTTPRoute)."""

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


def _documents(paths) -> list[dict]:
    return [doc for path in sorted(paths) for doc in yaml.safe_load_all(path.read_text()) if doc]


def load(directory: Path) -> Wiring:
    docs = _documents(directory.glob("*.yaml"))
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


# -- the functions: knative/100-*.yaml -------------------------------------------------------


@dataclass(frozen=True)
class Function:
    """How a Knative Service's container starts its function: functions-framework serving
    `target` of /app/main.py (the image's entry point), or the container's own `command` run
    against the function's main.py (`python /app/main.py`, an ASGI app under uvicorn)."""

    name: str
    target: str
    command: tuple[str, ...] = ()  # empty: the image's functions-framework entry point

    def argv(self, root: Path, python: str, port: int) -> list[str]:
        """The command line that starts it on this machine, on 127.0.0.1:`port`."""
        source = root / "functions" / self.name / "main.py"
        if self.command:
            if list(self.command[:1]) != ["python"] or self.command[1:] != ("/app/main.py",):
                raise ValueError(
                    f"{self.name}: `make run` starts a container command `python /app/main.py` "
                    f"only, not {list(self.command)!r}"
                )
            return [python, str(source), "--host", "127.0.0.1", "--port", str(port)]
        ff = str(Path(python).with_name("functions-framework"))
        return [ff, "--source", str(source), "--target", self.target, "--port", str(port),
                "--host", "127.0.0.1"]  # fmt: skip


def functions(directory: Path) -> tuple[Function, ...]:
    """Every Knative Service of knative/100-*.yaml (name order), as its container starts it."""
    found = []
    for doc in _documents(directory.glob("100-*.yaml")):
        if doc.get("kind") != "Service":
            continue
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        name, command = doc["metadata"]["name"], tuple(container.get("command") or ())
        found.append(Function(name, env.get("FUNCTION_TARGET") or name, command))
    return tuple(sorted(found, key=lambda f: f.name))


# -- the public path table: gateway/ (an HTTPRoute) -------------------------------------------


@dataclass(frozen=True)
class PathMatch:
    """One HTTPRoute path match and the Knative Service it routes to."""

    kind: str  # "Exact" | "PathPrefix"
    value: str
    service: str

    def matches(self, path: str) -> bool:
        """Gateway API semantics: Exact is the whole path; PathPrefix matches element-wise
        (`/tasks` matches `/tasks` and `/tasks/1`, never `/tasksx`), a trailing `/` ignored."""
        if self.kind == "Exact":
            return path == self.value
        prefix = self.value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")


@dataclass(frozen=True)
class Routes:
    matches: tuple[PathMatch, ...] = ()

    def service_for(self, path: str) -> str | None:
        """The Service a request path goes to, by the Gateway API's precedence: an Exact match,
        else the longest matching PathPrefix; None when nothing matches (a 404)."""
        candidates = [m for m in self.matches if m.matches(path)]
        if not candidates:
            return None
        best = max(candidates, key=lambda m: (m.kind == "Exact", len(m.value.rstrip("/"))))
        return best.service

    def services(self) -> set[str]:
        return {m.service for m in self.matches}

    def only(self, services) -> Routes:
        """The table without the rows of Services that are not there (not routed, a 404)."""
        return Routes(tuple(m for m in self.matches if m.service in set(services)))


def routes(directory: Path) -> Routes:
    """The path table of the HTTPRoute(s) in `directory`. Every rule rewrites the Host to its
    Knative Service's cluster-local name (`tasks.<namespace>.svc.cluster.local`), by which the
    Knative ingress dispatches: the name's first label is the Service the rule routes to."""
    found = []
    for doc in _documents(directory.glob("*.yaml")):
        if doc.get("kind") != "HTTPRoute":
            continue
        for rule in doc["spec"]["rules"]:
            rewrites = [
                f["urlRewrite"]["hostname"]
                for f in rule.get("filters") or []
                if f.get("type") == "URLRewrite" and "hostname" in f.get("urlRewrite", {})
            ]
            if len(rewrites) != 1:
                raise ValueError(f"a rule rewrites the Host to one Knative Service: {rule!r}")
            service = rewrites[0].split(".", 1)[0]
            for match in rule.get("matches") or [{}]:
                if set(match) - {"path"}:
                    raise ValueError(f"the front door matches by path only, not {match!r}")
                path = match.get("path") or {"type": "PathPrefix", "value": "/"}
                if path.get("type", "PathPrefix") not in ("Exact", "PathPrefix"):
                    raise ValueError(f"the front door does not evaluate {path['type']} paths")
                found.append(PathMatch(path.get("type", "PathPrefix"), path["value"], service))
    return Routes(tuple(found))

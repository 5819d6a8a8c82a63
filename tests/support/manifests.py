"""The deployment manifests as the tests read them: every YAML document of knative/, eventing/,
dapr-bindings/ and gateway/ parsed once, the validators of each kind (see
tests/manifests/test_manifests.py for what each checks), and the facts the manifests must agree
with. Shared by tests/manifests and tests/ship."""

from __future__ import annotations

import copy
import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

with warnings.catch_warnings():
    # cloudcoil's eventing package also imports its messaging models, whose Channel shadows an
    # attribute of cloudcoil's Resource; harmless, and not ours to fix.
    warnings.simplefilter("ignore", UserWarning)
    from cloudcoil.models.knative_eventing.eventing import v1 as eventing_v1
    from cloudcoil.models.knative_eventing.sources import v1 as sources_v1
    from cloudcoil.models.knative_serving.serving import v1 as serving_v1

from dueflow.domain import events

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIRS = ("knative", "eventing", "dapr-bindings", "gateway")
SCHEMA_DIR = ROOT / "tests" / "manifests" / "schemas"

# The Kubernetes version whose schemas the documents and pod specs are checked against: one that
# the Knative releases these manifests need (Serving and Eventing >= 1.15) run on.
KUBERNETES_VERSION = "1.30"

KNATIVE_MODELS = {
    ("serving.knative.dev/v1", "Service"): serving_v1.Service,
    ("eventing.knative.dev/v1", "Broker"): eventing_v1.Broker,
    ("eventing.knative.dev/v1", "Trigger"): eventing_v1.Trigger,
    ("sources.knative.dev/v1", "PingSource"): sources_v1.PingSource,
    ("sources.knative.dev/v1", "SinkBinding"): sources_v1.SinkBinding,
}
JSON_SCHEMAS = {
    ("sources.knative.dev/v1beta1", "KafkaSource"): "urn:dueflow:test-schema:kafkasource-v1beta1",
    ("eventing.knative.dev/v1alpha1", "KafkaSink"): "urn:dueflow:test-schema:kafkasink-v1alpha1",
    ("dapr.io/v1alpha1", "Component"): "urn:dueflow:test-schema:dapr-component-v1alpha1",
}
GATEWAY_API_SCHEMAS = SCHEMA_DIR / "gateway-api"
# Fields of a Knative revision spec that a Kubernetes PodSpec does not have.
KNATIVE_ONLY_POD_FIELDS = (
    "containerConcurrency",
    "timeoutSeconds",
    "responseStartTimeoutSeconds",
    "idleTimeoutSeconds",
)

SECRET_NAME = "dueflow-secrets"
SECRET_KEYS = {  # env variable -> key of the Secret dueflow-secrets
    "DATABASE_URL": "database-url",
    "DUEFLOW_JWT_SECRET": "jwt-secret",
    "SENDGRID_API_KEY": "sendgrid-api-key",
    "SMTP_URL": "smtp-url",
}
# Environment variables Knative sets itself (PORT, K_*) or the SinkBinding injects (K_SINK).
RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "K_SINK"}
# Not dueflow settings, but read by functions-framework, the server in every image.
SERVER_ENV = {"FUNCTION_TARGET", "THREADS"}
PUBLIC_SERVICES = {"tasks", "assistant", "live", "web"}  # API, MCP server, live feed, app
#: ASGI functions whose THREADS are the blocking calls' pool, not one per request in flight: a
#: stream of `live` waits on the event loop (its containerConcurrency counts open streams)
STREAMING = {"live"}
#: static files only: no database connection, no events (and so no SinkBinding label)
STATIC_SERVICES = {"web"}
EMITS_EVENTS_LABEL = "dueflow.dev/emits-events"

AUTOSCALING_ANNOTATIONS = {
    f"autoscaling.knative.dev/{key}"
    for key in (
        "class",
        "metric",
        "target",
        "target-utilization-percentage",
        "min-scale",
        "max-scale",
        "initial-scale",
        "activation-scale",
        "scale-down-delay",
        "scale-to-zero-pod-retention-period",
        "window",
        "panic-window-percentage",
        "panic-threshold-percentage",
    )
}
DAPR_ANNOTATIONS = {
    f"dapr.io/{key}"
    for key in (
        "enabled",
        "app-id",
        "app-port",
        "app-protocol",
        "config",
        "log-level",
        "enable-metrics",
        "metrics-port",
        "disable-builtin-k8s-secret-store",
    )
}
# Ports taken in every Knative pod by the queue-proxy (serving, admin, metrics, profiling) and
# by daprd itself (HTTP and gRPC APIs, internal gRPC, health): Dapr's metrics must avoid them.
QUEUE_PROXY_PORTS = {8012, 8013, 8022, 8112, 9090, 9091}
DAPRD_PORTS = {3500, 3501, 50001, 50002}

# A stock PostgreSQL: max_connections 100, of which superuser_reserved_connections 3.
POSTGRES_CONNECTIONS = 100 - 3

# Every event type dueflow emits, and the subscribers its Triggers deliver it to. An empty set
# must come with the reason in TERMINAL.
EXPECTED_ROUTES = {
    events.TASK_CREATED: {"task-updates"},
    events.TASK_UPDATED: {"task-updates"},
    events.TASK_COMPLETED: {"recurrence", "task-updates"},
    events.TASK_REOPENED: {"task-updates"},
    events.TASK_DELETED: {"task-updates"},
    events.REMINDER_DUE: {"notify"},
    events.REMINDERS_DUE: {"notify"},
    events.NOTIFICATION_SENT: set(),
    events.NOTIFICATION_FAILED: set(),
    events.NOTIFICATIONS_RECORDED: set(),
}
TERMINAL = {
    events.NOTIFICATION_SENT: (
        "the outcome of one e-mail, kept with the reminder by notify; no function reacts to it, "
        "and it is not a task update, so it stays off the task-updates topic. A consumer that "
        "wants it adds its own Trigger on the Broker."
    ),
    events.NOTIFICATION_FAILED: "as dev.dueflow.notification.sent",
    events.NOTIFICATIONS_RECORDED: "as dev.dueflow.notification.sent, for a batch",
}
# App-ids a component may be scoped to although no Service runs them yet (reason in the
# component file): scoping to them loads the component nowhere.
RESERVED_APP_IDS = {"task-updates-relay"}


# -- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    path: Path
    index: int
    body: dict

    @property
    def api_version(self) -> str:
        return self.body.get("apiVersion", "")

    @property
    def kind(self) -> str:
        return self.body.get("kind", "")

    @property
    def name(self) -> str:
        return (self.body.get("metadata") or {}).get("name", "<no name>")

    @property
    def spec(self) -> dict:
        return self.body.get("spec") or {}

    @property
    def ident(self) -> str:
        return f"{self.path.relative_to(ROOT)}#{self.index}-{self.kind}-{self.name}"


def _load() -> list[Doc]:
    docs = []
    for directory in MANIFEST_DIRS:
        paths = sorted((ROOT / directory).rglob("*.yaml")) + sorted(
            (ROOT / directory).rglob("*.yml")
        )
        for path in paths:
            for index, body in enumerate(yaml.safe_load_all(path.read_text())):
                if body is not None:
                    docs.append(Doc(path, index, body))
    return docs


DOCS = _load()


def _of(api_version: str, kind: str) -> list[Doc]:
    return [d for d in DOCS if d.api_version == api_version and d.kind == kind]


ALL_SERVICES = _of("serving.knative.dev/v1", "Service")
SERVICES = {d.name: d for d in ALL_SERVICES if d.path.parent == ROOT / "knative"}
DAPR_VARIANTS = {d.name: d for d in ALL_SERVICES if d.path.parent == ROOT / "knative" / "dapr"}
BROKERS = {d.name: d for d in _of("eventing.knative.dev/v1", "Broker")}
TRIGGERS = _of("eventing.knative.dev/v1", "Trigger")
KAFKA_SINKS = {d.name: d for d in _of("eventing.knative.dev/v1alpha1", "KafkaSink")}
KAFKA_SOURCES = _of("sources.knative.dev/v1beta1", "KafkaSource")
PING_SOURCES = _of("sources.knative.dev/v1", "PingSource")
SINK_BINDINGS = _of("sources.knative.dev/v1", "SinkBinding")
COMPONENTS = {d.name: d for d in _of("dapr.io/v1alpha1", "Component")}
GATEWAYS = _of("gateway.networking.k8s.io/v1", "Gateway")
ROUTES = _of("gateway.networking.k8s.io/v1", "HTTPRoute")
GRANTS = _of("gateway.networking.k8s.io/v1beta1", "ReferenceGrant")
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))


def _ids(docs: Iterable[Doc]) -> list[str]:
    return [d.ident for d in docs]


def _annotations(service: Doc) -> dict[str, str]:
    return (service.spec["template"].get("metadata") or {}).get("annotations") or {}


def _pod(service: Doc) -> dict:
    return service.spec["template"]["spec"]


def _container(service: Doc) -> dict:
    containers = _pod(service)["containers"]
    assert len(containers) == 1, f"{service.ident}: one container per function"
    return containers[0]


def _env(service: Doc) -> dict[str, dict]:
    return {e["name"]: e for e in _container(service).get("env") or []}


def _dapr_enabled(service: Doc) -> bool:
    return _annotations(service).get("dapr.io/enabled") == "true"


def _scale(service: Doc, bound: str) -> int:
    return int(_annotations(service)[f"autoscaling.knative.dev/{bound}"])


def _config_variables() -> set[str]:
    """Every environment variable shared/dueflow/config.py reads."""
    source = (ROOT / "shared" / "dueflow" / "config.py").read_text()
    return set(re.findall(r"_(?:env|float)\(\s*\"([A-Z0-9_]+)\"", source))


def _metadata(component: Doc) -> dict[str, dict]:
    return {m["name"]: m for m in component.spec.get("metadata") or []}


# -- validation ---------------------------------------------------------------------------------


def _registry() -> Registry:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _gateway_api_schemas() -> dict[tuple[str, str], dict]:
    """The vendored Gateway API CRD schemas as strict JSON Schemas, by (apiVersion, kind)."""
    schemas = {}
    for path in sorted(GATEWAY_API_SCHEMAS.glob("*.crd.json")):
        vendored = json.loads(path.read_text())
        source = vendored["x-dueflow-source"]
        api_version = f"gateway.networking.k8s.io/{source['version']}"
        schema = _strict(copy.deepcopy(vendored["openAPIV3Schema"]))
        schema["properties"]["apiVersion"] = {"const": api_version}
        schema["properties"]["kind"] = {"const": source["kind"]}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "spec"})
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:dueflow:test-schema:gateway-api-{path.name.removesuffix('.crd.json')}"
        schemas[(api_version, source["kind"])] = schema
    return schemas


def _strict(node: object) -> object:
    """Every object schema with properties refuses others (a structural schema prunes them)."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


GATEWAY_API = _gateway_api_schemas()
for (_api_version, _kind), _schema in GATEWAY_API.items():
    JSON_SCHEMAS[(_api_version, _kind)] = _schema["$id"]
REGISTRY = _registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in GATEWAY_API.values()
)


def _json_schema_errors(body: dict, schema_id: str) -> list[str]:
    schema = REGISTRY.contents(schema_id)
    validator = jsonschema.Draft202012Validator(schema, registry=REGISTRY)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(body)
    ]


def _dropped_fields(given: object, kept: object, path: str = "") -> list[str]:
    """Paths set in `given` that the model's dump `kept` lacks: fields the model does not know."""
    if isinstance(given, dict) and isinstance(kept, dict):
        dropped = []
        for key, value in given.items():
            if key not in kept:
                dropped.append(f"{path}.{key}")
            else:
                dropped += _dropped_fields(value, kept[key], f"{path}.{key}")
        return dropped
    if isinstance(given, list) and isinstance(kept, list):
        return [
            p
            for i, (g, k) in enumerate(zip(given, kept, strict=False))
            for p in _dropped_fields(g, k, f"{path}[{i}]")
        ]
    return []


def _knative_errors(body: dict, model: type) -> list[str]:
    try:
        parsed = model.model_validate(body)
    except Exception as exc:  # pydantic's ValidationError, or TypeError from a constraint
        return [str(exc)]
    kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return [f"unknown field {p}" for p in _dropped_fields(body, kept)]


def _kubernetes_errors(body: dict) -> list[str]:
    try:
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path)) or '<root>'}: {exc.message}"]
    return []


def validation_errors(body: dict) -> list[str]:
    key = (body.get("apiVersion"), body.get("kind"))
    if key in KNATIVE_MODELS:
        return _knative_errors(body, KNATIVE_MODELS[key])
    if key in JSON_SCHEMAS:
        return _json_schema_errors(body, JSON_SCHEMAS[key])
    try:
        return _kubernetes_errors(body)
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no validator for {key[0]} {key[1]}: add its model or a JSON Schema"]


def _as_pod(service: Doc) -> dict:
    # a deep copy: tests mutate the Pod, and the parsed documents are shared by every test
    spec = copy.deepcopy(
        {k: v for k, v in _pod(service).items() if k not in KNATIVE_ONLY_POD_FIELDS}
    )
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": service.name}, "spec": spec}

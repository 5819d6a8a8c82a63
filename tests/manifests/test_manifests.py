"""The deployment manifests: every YAML document in knative/, eventing/, dapr-bindings/ and gateway/
is valid for its API, and together they wire dueflow the way docs/architecture.md says.

Validation, offline (no cluster, no network):
- Knative Serving and Eventing kinds: cloudcoil's generated Knative models (`model_validate`),
  plus a check that the model kept every field the document sets, since the models ignore
  unknown fields (a misspelt field would otherwise pass and be dropped by the API server).
- Kubernetes kinds, and the pod template of every Knative Service read as a Pod spec:
  kubernetes-validate's strict schemas (unknown fields fail).
- KafkaSource, KafkaSink and Dapr Component, which neither package knows: the JSON Schemas in
  schemas/, written from the upstream types and docs.
- The Gateway API kinds (GatewayClass, Gateway, HTTPRoute, ReferenceGrant): the openAPIV3Schema
  of each CRD of kubernetes-sigs/gateway-api, vendored verbatim in schemas/gateway-api/ and made
  strict here (an object's unknown fields fail, as the API server would prune them).
"""

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
import pytest
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
from dueflow.service import commands as command_service

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_DIRS = ("knative", "eventing", "dapr-bindings", "gateway")
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

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


def test_the_manifest_directories_hold_documents():
    assert DOCS, "no manifests found"
    for doc in DOCS:
        assert isinstance(doc.body, dict) and doc.name != "<no name>", doc.path


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_document_is_valid(doc):
    assert validation_errors(doc.body) == [], doc.ident


@pytest.mark.parametrize("service", ALL_SERVICES, ids=_ids(ALL_SERVICES))
def test_service_pod_template_is_a_valid_pod_spec(service):
    assert _kubernetes_errors(_as_pod(service)) == [], service.ident


def test_json_schemas_are_valid_schemas():
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))
    kinds = sorted(kind for _, kind in GATEWAY_API)
    assert kinds == ["Gateway", "GatewayClass", "HTTPRoute", "ReferenceGrant"]
    for schema in GATEWAY_API.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def _mutated(doc: Doc, change) -> dict:
    body = json.loads(json.dumps(doc.body))
    change(body)
    return body


def test_validators_reject_what_the_api_would_drop_or_refuse():
    """The checks above are not vacuous: one misspelt or invalid field fails each validator."""
    trigger, service = TRIGGERS[0], next(iter(SERVICES.values()))
    sink, source = next(iter(KAFKA_SINKS.values())), KAFKA_SOURCES[0]
    component = COMPONENTS["task-events"]
    bad = [
        _mutated(trigger, lambda b: b["spec"].update(filterz=[])),
        _mutated(trigger, lambda b: b["spec"]["subscriber"].update(reff={})),
        _mutated(service, lambda b: b["spec"]["template"]["spec"].update(containerConcurency=1)),
        _mutated(sink, lambda b: b["spec"].update(contentMode="avro")),
        _mutated(source, lambda b: b["spec"].update(ordering="sorted")),
        _mutated(source, lambda b: b["spec"].update(topic="task-events")),
        _mutated(component, lambda b: b["spec"]["metadata"].append({"name": "consumergroup"})),
        _mutated(component, lambda b: b.update(scope=["commands"])),
        _mutated(ROUTES[0], lambda b: b["spec"]["rules"][0].update(backendRef=[])),
        _mutated(
            ROUTES[0], lambda b: b["spec"]["rules"][0]["matches"][0]["path"].update(type="Glob")
        ),
        _mutated(ROUTES[0], lambda b: b["spec"]["rules"][0]["filters"][0].update(type="Rewrite")),
        _mutated(GATEWAYS[0], lambda b: b["spec"]["listeners"][0].update(port="eighty")),
        _mutated(GRANTS[0], lambda b: b["spec"]["to"][0].update(namespace="default")),
    ]
    for body in bad:
        assert validation_errors(body), json.dumps(body)[:200]
    pod = _as_pod(service)
    pod["spec"]["containers"][0]["securityContext"]["runAsNonRot"] = True
    assert _kubernetes_errors(pod)


# -- Services -----------------------------------------------------------------------------------


def test_every_function_has_a_service_and_every_service_a_function():
    assert sorted(SERVICES) == FUNCTIONS
    for name, service in SERVICES.items():
        assert service.path.name == f"100-{name}.yaml", "one Service per 100-<name>.yaml"


def test_dapr_variants_replace_a_function_service():
    assert DAPR_VARIANTS, "knative/dapr/ holds the Dapr variants"
    for name, service in DAPR_VARIANTS.items():
        assert name in SERVICES, f"{service.ident} replaces no Service of knative/"
        assert service.path.name == f"100-{name}.yaml"
        assert _dapr_enabled(service), f"{service.ident} does not enable Dapr"
    for service in SERVICES.values():
        assert not _dapr_enabled(service), f"{service.ident}: Dapr belongs in knative/dapr/"


@pytest.mark.parametrize("service", ALL_SERVICES, ids=_ids(ALL_SERVICES))
def test_service_shape(service):
    name, labels = service.name, service.body["metadata"].get("labels") or {}
    container = _container(service)
    assert labels.get(EMITS_EVENTS_LABEL) == (None if name in STATIC_SERVICES else "true")
    assert labels.get("app.kubernetes.io/name") == name
    assert re.fullmatch(rf"ghcr\.io/dueflow/{re.escape(name)}:[\w][\w.-]*", container["image"])
    assert container["ports"] == [{"name": "http1", "containerPort": 8080}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod(service)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "/tmp is the one writable path"


@pytest.mark.parametrize("service", ALL_SERVICES, ids=_ids(ALL_SERVICES))
def test_service_environment(service):
    env, known = _env(service), _config_variables() | SERVER_ENV
    assert not set(env) & RESERVED_ENV, "set by Knative or the SinkBinding"
    assert set(env) <= known, f"not read by dueflow: {sorted(set(env) - known)}"
    assert env["FUNCTION_TARGET"]["value"] == service.name
    if service.name in STREAMING:
        assert 1 <= int(env["THREADS"]["value"]) < _pod(service)["containerConcurrency"]
    else:
        assert int(env["THREADS"]["value"]) == _pod(service)["containerConcurrency"] + 2, (
            "gunicorn threads = containerConcurrency + 2 spare for the probes"
        )
    for var, entry in env.items():
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if var in SECRET_KEYS:
            assert ref is not None, f"{var} is a secret: from {SECRET_NAME}, never a value"
            assert (ref["name"], ref["key"]) == (SECRET_NAME, SECRET_KEYS[var]), var
        else:
            assert ref is None, f"{var} comes from a Secret it has no key in"
    assert ("DATABASE_URL" in env) is (service.name not in STATIC_SERVICES)


def test_tasks_has_what_the_api_needs():
    env = _env(SERVICES["tasks"])
    assert {"DUEFLOW_JWT_SECRET", "DUEFLOW_JWKS_URL"} & set(env)
    assert env["DUEFLOW_CORS_ORIGINS"]["value"]


@pytest.mark.parametrize(
    "service", [SERVICES["notify"], DAPR_VARIANTS["notify"]], ids=["knative", "dapr"]
)
def test_notify_has_what_its_email_backend_needs(service):
    env = _env(service)
    backend = env["DUEFLOW_EMAIL_BACKEND"]["value"]
    needs = {"sendgrid": "SENDGRID_API_KEY", "smtp": "SMTP_URL"}
    assert backend in {"eml", "smtp", "sendgrid", "dapr"}
    if backend in needs:
        assert needs[backend] in env
    if backend == "dapr":
        assert _dapr_enabled(service)
        binding = env.get("DUEFLOW_DAPR_EMAIL_BINDING", {}).get("value", "sendgrid")
        component = COMPONENTS[binding]
        assert component.spec["type"] == "bindings.twilio.sendgrid"
        assert _annotations(service)["dapr.io/app-id"] in component.body["scopes"]
        assert "SENDGRID_API_KEY" not in env, "on the Dapr path the key stays in the component"


@pytest.mark.parametrize("service", ALL_SERVICES, ids=_ids(ALL_SERVICES))
def test_service_autoscaling(service):
    annotations, pod = _annotations(service), _pod(service)
    unknown = {
        a for a in annotations if a.startswith("autoscaling.knative.dev/")
    } - AUTOSCALING_ANNOTATIONS
    assert not unknown, f"misspelt autoscaling annotations: {unknown}"
    metric = annotations["autoscaling.knative.dev/metric"]
    assert metric in {"concurrency", "rps"}
    low, high = _scale(service, "min-scale"), _scale(service, "max-scale")
    assert 0 <= low <= high and high >= 1
    target = float(annotations["autoscaling.knative.dev/target"])
    concurrency = pod["containerConcurrency"]
    assert target > 0 and isinstance(concurrency, int) and concurrency > 0
    if metric == "concurrency":
        assert target <= concurrency, "a target above the hard limit is never reached"
    assert 1 <= pod["timeoutSeconds"] <= 600, "Knative's default max-revision-timeout-seconds"
    retention = annotations.get("autoscaling.knative.dev/scale-to-zero-pod-retention-period")
    if retention is not None:
        assert re.fullmatch(r"(\d+h)?(\d+m)?(\d+s)?", retention) and retention
        assert low == 0, "retention only matters for a Service that scales to zero"


def test_only_tasks_is_public():
    for service in ALL_SERVICES:
        visibility = service.body["metadata"]["labels"].get("networking.knative.dev/visibility")
        if service.name in PUBLIC_SERVICES:
            assert visibility is None, service.ident
        else:
            assert visibility == "cluster-local", service.ident


def test_database_connection_budget_fits_a_stock_postgresql():
    """Each pod holds at most THREADS + 1 connections (request and probe threads, the outbox
    relay), notify's one more (it records each accepted e-mail of a batch at once, one at a
    time per pod); `live` runs no relay but THREADS + 2 (its tail's reads and its LISTEN); at
    most max-scale pods of each function run, in whichever variant is applied; and the one
    relay holding the lease keeps one more for its LISTEN."""
    budget = {}
    for service in ALL_SERVICES:
        if service.name in STATIC_SERVICES:
            continue  # no DATABASE_URL (test_service_environment)
        pods, threads = _scale(service, "max-scale"), int(_env(service)["THREADS"]["value"])
        per_pod = threads + 1 + (service.name == "notify") + (service.name in STREAMING)
        budget[service.name] = max(budget.get(service.name, 0), pods * per_pod)
    assert sum(budget.values()) + 1 <= POSTGRES_CONNECTIONS, budget


def test_sinkbinding_injects_k_sink_into_every_service():
    assert len(SINK_BINDINGS) == 1
    binding = SINK_BINDINGS[0].spec
    subject = binding["subject"]
    assert (subject["apiVersion"], subject["kind"]) == ("serving.knative.dev/v1", "Service")
    assert "name" not in subject, "select by label, so new functions are covered"
    wanted = subject["selector"]["matchLabels"]
    for service in ALL_SERVICES:
        labels = service.body["metadata"]["labels"]
        selected = wanted.items() <= labels.items()  # static files emit nothing
        assert selected is (service.name not in STATIC_SERVICES), f"{service.ident}: K_SINK"
    sink = binding["sink"]["ref"]
    assert (sink["apiVersion"], sink["kind"]) == ("eventing.knative.dev/v1", "Broker")
    assert sink["name"] in BROKERS


# -- Triggers and routing -----------------------------------------------------------------------


def _expression_matches(expression: dict, attributes: dict) -> bool:
    """One filter expression of the CloudEvents Subscriptions API dialects Knative supports."""
    assert len(expression) == 1, f"one dialect per filter expression: {expression}"
    ((dialect, argument),) = expression.items()
    if dialect in ("exact", "prefix", "suffix"):
        test = {
            "exact": lambda value, want: value == want,
            "prefix": lambda value, want: value.startswith(want),
            "suffix": lambda value, want: value.endswith(want),
        }[dialect]
        return all(k in attributes and test(attributes[k], v) for k, v in argument.items())
    if dialect == "all":
        return all(_expression_matches(e, attributes) for e in argument)
    if dialect == "any":
        return any(_expression_matches(e, attributes) for e in argument)
    if dialect == "not":
        return not _expression_matches(argument, attributes)
    raise AssertionError(f"filter dialect {dialect!r} is not evaluated by these tests")


def trigger_matches(trigger: Doc, attributes: dict) -> bool:
    """Whether the Broker delivers an event with these attributes to the Trigger: a non-empty
    `filters` wins over `filter`; `filter.attributes` is an exact match on each attribute."""
    if filters := trigger.spec.get("filters"):
        return all(_expression_matches(e, attributes) for e in filters)
    wanted = (trigger.spec.get("filter") or {}).get("attributes") or {}
    return all(attributes.get(k) == v for k, v in wanted.items())


def subscribers(event_type: str) -> set[str]:
    attributes = {"type": event_type, "source": "/dueflow/test", "specversion": "1.0"}
    return {t.spec["subscriber"]["ref"]["name"] for t in TRIGGERS if trigger_matches(t, attributes)}


def emitted_event_types() -> set[str]:
    return {
        value
        for name, value in vars(events).items()
        if name.isupper() and isinstance(value, str) and value.startswith("dev.dueflow.")
    }


@pytest.mark.parametrize("trigger", TRIGGERS, ids=_ids(TRIGGERS))
def test_trigger_wiring(trigger):
    assert trigger.spec["broker"] in BROKERS
    ref = trigger.spec["subscriber"]["ref"]
    if ref["kind"] == "Service":
        assert ref["apiVersion"] == "serving.knative.dev/v1"
        assert ref["name"] in SERVICES, f"no Service {ref['name']}"
        assert ref["name"] != "deadletter", "the dead-letter sink is no subscriber (loops)"
    else:
        assert (ref["apiVersion"], ref["kind"]) == ("eventing.knative.dev/v1alpha1", "KafkaSink")
        assert ref["name"] in KAFKA_SINKS, f"no KafkaSink {ref['name']}"
    has_filter = bool((trigger.spec.get("filter") or {}).get("attributes", {}).get("type"))
    assert has_filter or trigger.spec.get("filters"), "the local runtime routes by type"


def test_every_emitted_event_type_is_routed_or_terminal():
    assert emitted_event_types() == set(EXPECTED_ROUTES), "a new event type needs a route here"
    for event_type, expected in EXPECTED_ROUTES.items():
        assert subscribers(event_type) == expected, event_type
        assert (not expected) == (event_type in TERMINAL), f"{event_type}: route or reason"


def test_every_command_reaches_the_commands_function_only():
    for kind in command_service.KINDS:
        assert subscribers(command_service.PREFIX + kind) == {"commands"}, kind
    assert subscribers(command_service.RAW_RECORD) == {"commands"}
    assert subscribers("dev.dueflow.commandeer") == set()


def test_commands_and_task_updates_keep_per_task_order():
    ordered = "kafka.eventing.knative.dev/delivery.order"
    for trigger in TRIGGERS:
        if trigger.spec["subscriber"]["ref"]["name"] in {"commands", "task-updates"}:
            annotations = trigger.body["metadata"].get("annotations") or {}
            assert annotations.get(ordered) == "ordered", trigger.ident
    for source in KAFKA_SOURCES:
        assert source.spec["ordering"] == "ordered", source.ident


# -- delivery and dead letters ------------------------------------------------------------------


def _assert_retries(delivery: dict, where: str) -> None:
    assert delivery.get("retry", 0) >= 1, f"{where}: no retry"
    assert delivery.get("backoffPolicy") in {"linear", "exponential"}, where
    assert delivery.get("backoffDelay"), where


def _assert_dead_letter_sink(delivery: dict, where: str) -> None:
    ref = delivery["deadLetterSink"]["ref"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        "serving.knative.dev/v1",
        "Service",
        "deadletter",
    ), where
    assert "deadletter" in SERVICES


@pytest.mark.parametrize("broker", BROKERS.values(), ids=_ids(BROKERS.values()))
def test_broker_delivery_retries_and_dead_letters(broker):
    # Triggers inherit the Broker's delivery field by field only on the Kafka Broker class.
    annotations = broker.body["metadata"]["annotations"]
    assert annotations["eventing.knative.dev/broker.class"] == "Kafka"
    _assert_retries(broker.spec["delivery"], broker.ident)
    _assert_dead_letter_sink(broker.spec["delivery"], broker.ident)


@pytest.mark.parametrize("trigger", TRIGGERS, ids=_ids(TRIGGERS))
def test_trigger_delivery_retries_and_dead_letters(trigger):
    delivery = trigger.spec.get("delivery") or {}
    _assert_retries(delivery, trigger.ident)
    if "deadLetterSink" in delivery:
        _assert_dead_letter_sink(delivery, trigger.ident)
    else:
        broker = BROKERS[trigger.spec["broker"]]
        assert "deadLetterSink" in broker.spec["delivery"], f"{trigger.ident}: no dead letters"
        assert "deadLetterSink" in trigger.path.read_text(), "say in a comment where they go"


@pytest.mark.parametrize("source", KAFKA_SOURCES, ids=_ids(KAFKA_SOURCES))
def test_kafka_source_delivery_retries_and_dead_letters(source):
    # Sources inherit nothing from the Broker they deliver to.
    _assert_retries(source.spec["delivery"], source.ident)
    _assert_dead_letter_sink(source.spec["delivery"], source.ident)


# -- Kafka --------------------------------------------------------------------------------------


def test_kafka_resources_agree():
    (source,) = KAFKA_SOURCES
    sink = KAFKA_SINKS["task-updates"]
    assert source.spec["topics"] == ["task-events"]
    assert source.spec["sink"]["ref"] == {
        "apiVersion": "eventing.knative.dev/v1",
        "kind": "Broker",
        "name": "dueflow",
    }
    assert sink.spec["topic"] == "task-updates"
    assert sink.spec["contentMode"] == "binary"
    servers = source.spec["bootstrapServers"]
    assert sink.spec["bootstrapServers"] == servers
    dapr_in, dapr_out = _metadata(COMPONENTS["task-events"]), _metadata(COMPONENTS["task-updates"])
    for component in (dapr_in, dapr_out):
        assert component["brokers"]["value"].split(",") == servers
    assert dapr_in["topics"]["value"].split(",") == source.spec["topics"]
    assert dapr_out["publishTopic"]["value"] == sink.spec["topic"]
    assert dapr_in["consumerGroup"]["value"] != source.spec["consumerGroup"], (
        "the two paths must not share (and split) one consumer group"
    )


# -- PingSource ---------------------------------------------------------------------------------

CRON_FIELDS = (  # name, lowest, highest
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
CRON_NAMES = {
    3: "jan feb mar apr may jun jul aug sep oct nov dec".split(),
    4: "sun mon tue wed thu fri sat".split(),
}


def _cron_field_ok(text: str, position: int) -> bool:
    _, low, high = CRON_FIELDS[position]
    names = CRON_NAMES.get(position, [])

    def number(token: str) -> int | None:
        if token.isdigit():
            return int(token)
        if token.lower() in names:
            return names.index(token.lower()) + (1 if position == 3 else 0)
        return None

    for part in text.split(","):
        match = re.fullmatch(r"(\*|\w+(?:-\w+)?)(?:/(\d+))?", part)
        if not match or (match[2] is not None and int(match[2]) < 1):
            return False
        if match[1] != "*":
            bounds = [number(t) for t in match[1].split("-")]
            if any(b is None or not low <= b <= high for b in bounds) or bounds != sorted(bounds):
                return False
    return True


def test_cron_field_check_itself():
    assert _cron_field_ok("*/5", 0) and _cron_field_ok("1-5,0", 4) and _cron_field_ok("jan", 3)
    assert not _cron_field_ok("60", 0) and not _cron_field_ok("*/0", 1)
    assert not _cron_field_ok("5-1", 2) and not _cron_field_ok("@every", 0)


@pytest.mark.parametrize("ping", PING_SOURCES, ids=_ids(PING_SOURCES))
def test_pingsource_schedule_is_a_five_field_cron(ping):
    fields = ping.spec["schedule"].split()
    assert len(fields) == 5, "PingSource takes standard 5-field cron (minute granularity)"
    for position, text in enumerate(fields):
        assert _cron_field_ok(text, position), f"{CRON_FIELDS[position][0]}: {text!r}"
    ref = ping.spec["sink"]["ref"]
    assert ref["kind"] == "Service" and ref["name"] in SERVICES


# -- Dapr ---------------------------------------------------------------------------------------

DAPR_SERVICES = [s for s in ALL_SERVICES if _dapr_enabled(s)]
APP_IDS = {_annotations(s)["dapr.io/app-id"]: s for s in DAPR_SERVICES}


def _is_input_binding(component: Doc) -> bool:
    type_, metadata = component.spec["type"], _metadata(component)
    if not type_.startswith("bindings."):
        return False
    if "direction" in metadata:
        return "input" in metadata["direction"]["value"]
    return type_ == "bindings.cron" or "topics" in metadata


@pytest.mark.parametrize("service", DAPR_SERVICES, ids=_ids(DAPR_SERVICES))
def test_dapr_service_annotations(service):
    annotations = _annotations(service)
    unknown = {a for a in annotations if a.startswith("dapr.io/")} - DAPR_ANNOTATIONS
    assert not unknown, f"misspelt Dapr annotations: {unknown}"
    assert annotations["dapr.io/app-id"] == service.name
    assert int(annotations["dapr.io/app-port"]) == _container(service)["ports"][0]["containerPort"]
    assert annotations["dapr.io/enable-metrics"] == "true"
    metrics_port = int(annotations["dapr.io/metrics-port"])
    assert metrics_port not in QUEUE_PROXY_PORTS | DAPRD_PORTS, "9090 is the queue-proxy's"
    assert annotations["dapr.io/disable-builtin-k8s-secret-store"] == "true", (
        "the built-in store is unscoped; components use the scoped one"
    )


@pytest.mark.parametrize("component", COMPONENTS.values(), ids=_ids(COMPONENTS.values()))
def test_component_is_scoped_to_the_apps_that_use_it(component):
    scopes = component.body.get("scopes")
    assert scopes, "an unscoped component is loaded by every sidecar in the namespace"
    for app_id in scopes:
        assert app_id in APP_IDS or app_id in RESERVED_APP_IDS, f"no Dapr app {app_id}"


@pytest.mark.parametrize("component", COMPONENTS.values(), ids=_ids(COMPONENTS.values()))
def test_component_secrets_come_from_a_scoped_secret_store(component):
    refs = [m["secretKeyRef"] for m in _metadata(component).values() if "secretKeyRef" in m]
    if not refs:
        return
    store = COMPONENTS[component.body["auth"]["secretStore"]]
    assert store.spec["type"].startswith("secretstores.")
    assert set(component.body["scopes"]) <= set(store.body["scopes"])
    for ref in refs:
        assert ref["name"] == SECRET_NAME and ref["key"] in SECRET_KEYS.values(), ref


def test_no_secret_is_written_into_a_component():
    secret_like = re.compile(r"(?i)(key|password|secret|token)$")
    for component in COMPONENTS.values():
        for name, item in _metadata(component).items():
            if secret_like.search(name):
                assert "secretKeyRef" in item, f"{component.ident}: {name} in plain text"


@pytest.mark.parametrize("component", COMPONENTS.values(), ids=_ids(COMPONENTS.values()))
def test_input_bindings_keep_their_pods_running(component):
    """An input binding lives in the daprd sidecar of a running pod: nothing can wake a pod
    scaled to zero for it, so every app it is scoped to needs min-scale >= 1."""
    if not _is_input_binding(component):
        return
    for app_id in component.body["scopes"]:
        service = APP_IDS[app_id]
        assert _scale(service, "min-scale") >= 1, f"{service.ident} would miss {component.name}"
        if component.spec["type"] == "bindings.cron":
            assert _scale(service, "max-scale") == 1, "each replica's sidecar runs the cron"


def test_every_dapr_input_binding_has_a_dapr_service():
    inputs = [c for c in COMPONENTS.values() if _is_input_binding(c)]
    assert {c.name for c in inputs} == {"reminders-tick", "task-events"}
    for component in inputs:
        assert set(component.body["scopes"]) <= set(APP_IDS)


def test_the_dapr_job_receiver_stays_reachable():
    """Reminder jobs are delivered by the sidecar of a running pod only (the Dapr Scheduler
    streams due jobs to the connected sidecars of the app-id): the function that schedules and
    receives them keeps a pod, and names the setting that makes it do so."""
    receivers = [s for s in DAPR_VARIANTS.values() if "DUEFLOW_REMINDER_JOBS" in _env(s)]
    assert [s.name for s in receivers] == ["reminders"]
    [service] = receivers
    assert _env(service)["DUEFLOW_REMINDER_JOBS"]["value"] == "dapr"
    assert _scale(service, "min-scale") >= 1
    # jobs call back on the app port; the tick under them is the safety net
    assert _annotations(service)["dapr.io/app-port"] == "8080"
    assert any(c.name == "reminders-tick" for c in COMPONENTS.values())


def test_the_dapr_kafka_consumer_lets_the_ce_headers_through():
    """Binary-mode Kafka records arrive with ce_* headers, which functions-framework's gunicorn
    drops unless started with dueflow.serve's settings (tests/functions checks it for real)."""
    container = _container(DAPR_VARIANTS["commands"])
    assert container["command"] == ["python", "-m", "dueflow.serve"]


# -- docs ---------------------------------------------------------------------------------------


def test_architecture_doc_table_matches_the_manifests():
    """docs/architecture.md's autoscaling table has one row per Service (Dapr variants as
    `<name> (Dapr)`) with the manifests' metric, target, containerConcurrency and bounds."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    assert "```mermaid" in text
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] and (cells[0] in FUNCTIONS or cells[0].endswith("(Dapr)")):
            rows[cells[0]] = cells[1:6]
    for service in ALL_SERVICES:
        label = f"{service.name} (Dapr)" if _dapr_enabled(service) else service.name
        annotations = _annotations(service)
        expected = [
            annotations["autoscaling.knative.dev/metric"],
            annotations["autoscaling.knative.dev/target"],
            str(_pod(service)["containerConcurrency"]),
            annotations["autoscaling.knative.dev/min-scale"],
            annotations["autoscaling.knative.dev/max-scale"],
        ]
        assert rows.get(label) == expected, label


# -- the one origin: gateway/ -------------------------------------------------------------------

# Routed Services built on other branches of issues 13 and 14 (their knative/100-*.yaml arrive
# with the merge); any other routed name must be a Service of knative/.
ROUTED_ELSEWHERE = {"web", "live"}
NAMESPACE = "dueflow"  # the plain manifests' namespace (the chart's is the release's)


def _public_host() -> str:
    (route,) = ROUTES
    (host,) = route.spec["hostnames"]
    return host


def test_the_route_attaches_to_the_gateways_listener_for_the_public_host():
    (route,), (gateway,) = ROUTES, GATEWAYS
    (parent,) = route.spec["parentRefs"]
    listeners = {listener["name"]: listener for listener in gateway.spec["listeners"]}
    assert parent["name"] == gateway.name and parent["sectionName"] in listeners
    assert listeners[parent["sectionName"]]["hostname"] == _public_host()


def test_every_rule_goes_to_one_service_through_knatives_cluster_local_ingress():
    """The Host rewrite names the Knative Service; the backend is the ingress the ReferenceGrant
    opens to the route, which dispatches by that Host."""
    (route,), (grant,) = ROUTES, GRANTS
    (allowed,) = grant.spec["to"]
    assert grant.spec["from"] == [
        {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": NAMESPACE}
    ]
    routed = []
    for rule in route.spec["rules"]:
        (rewrite,) = rule["filters"]
        host = rewrite["urlRewrite"]["hostname"]
        service, rest = host.split(".", 1)
        assert rest == f"{NAMESPACE}.svc.cluster.local", host
        assert service in SERVICES or service in ROUTED_ELSEWHERE, host
        assert rule["backendRefs"] == [
            {"name": allowed["name"], "namespace": grant.body["metadata"]["namespace"], "port": 80}
        ]
        routed.append(service)
    assert len(routed) == len(set(routed)), "one rule per Service"
    assert PUBLIC_SERVICES <= set(routed), "every public Service is on the one origin"


def test_the_public_services_follow_the_public_host():
    host = _public_host()
    assistant = {k: e.get("value") for k, e in _env(SERVICES["assistant"]).items()}
    assert assistant["DUEFLOW_MCP_RESOURCE_URL"] == f"https://{host}/mcp"
    allowed = assistant["DUEFLOW_MCP_ALLOWED_HOSTS"].split(",")
    assert allowed == [host, f"assistant.{NAMESPACE}.svc.cluster.local"]  # public, rewritten
    cors = _env(SERVICES["tasks"])["DUEFLOW_CORS_ORIGINS"]["value"].split(",")
    assert f"https://{host}" in cors

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

import json
import re

import jsonschema
import pytest

from dueflow.domain import events
from dueflow.service import commands as command_service
from tests.support.manifests import (
    ALL_SERVICES,
    AUTOSCALING_ANNOTATIONS,
    BROKERS,
    COMPONENTS,
    DAPR_ANNOTATIONS,
    DAPR_VARIANTS,
    DAPRD_PORTS,
    DOCS,
    EMITS_EVENTS_LABEL,
    EXPECTED_ROUTES,
    FUNCTIONS,
    GATEWAY_API,
    GATEWAYS,
    GRANTS,
    KAFKA_SINKS,
    KAFKA_SOURCES,
    PING_SOURCES,
    POSTGRES_CONNECTIONS,
    PUBLIC_SERVICES,
    QUEUE_PROXY_PORTS,
    RESERVED_APP_IDS,
    RESERVED_ENV,
    ROOT,
    ROUTES,
    SCHEMA_DIR,
    SECRET_KEYS,
    SECRET_NAME,
    SERVER_ENV,
    SERVICES,
    SINK_BINDINGS,
    STATIC_SERVICES,
    STREAMING,
    TERMINAL,
    TRIGGERS,
    Doc,
    _annotations,
    _as_pod,
    _config_variables,
    _container,
    _dapr_enabled,
    _env,
    _ids,
    _kubernetes_errors,
    _metadata,
    _pod,
    _scale,
    validation_errors,
)


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

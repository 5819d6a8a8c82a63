"""charts/dueflow, through the Helm engine itself (the Helm v4 Go library of helm-python-sdk):

- `helm lint` (strict, Kubernetes 1.30) passes with the defaults and with every values file.
- Every rendered document (`helm template`) validates with the validators of tests/manifests
  (Knative models, strict Kubernetes schemas, the JSON Schemas of KafkaSource, KafkaSink and Dapr
  Component), for every values file with the Dapr wiring off and on.
- The default render is the plain manifests: the same resources with the same spec, field for
  field, so knative/, eventing/ and dapr-bindings/ (what `make run` routes by and what
  tests/manifests checks) and the chart cannot drift apart.
- values.schema.json and the templates' own checks refuse impossible values.
"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml

from tests.ship import tools
from tests.support import manifests

VALUES_FILES = ["values.yaml", "values-minikube.yaml", "values-aks.yaml", "values-gke.yaml"]
CASES = [(f, dapr) for f in VALUES_FILES for dapr in (False, True)]
CASE_IDS = [f"{f}-{'dapr' if dapr else 'knative'}" for f, dapr in CASES]

# Labels the chart adds to what the plain manifests carry.
CHART_LABELS = {
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
}
HOOK = "helm.sh/hook"
DAPR_FUNCTIONS = {"reminders", "notify", "commands"}
SCHEMA = json.loads((tools.CHART / "values.schema.json").read_text())


def _values(values_file: str, dapr: bool) -> dict:
    values = copy.deepcopy(tools.load_values(values_file))
    values.setdefault("dapr", {})["enabled"] = dapr
    return values


def _merged(values_file: str = "values.yaml", dapr: bool = False) -> dict:
    """The values the chart renders with: the chart's defaults under the file's."""
    return tools.helm().Chart.load(str(tools.CHART)).merge_values(_values(values_file, dapr))


def _key(doc: dict) -> tuple[str, str, str]:
    return doc["apiVersion"], doc["kind"], doc["metadata"]["name"]


def _is_hook(doc: dict) -> bool:
    return HOOK in (doc["metadata"].get("annotations") or {})


def _annotations(service: dict) -> dict:
    return service["spec"]["template"]["metadata"].get("annotations") or {}


def _container(service: dict) -> dict:
    (container,) = service["spec"]["template"]["spec"]["containers"]
    return container


def _env(service: dict) -> dict[str, dict]:
    return {e["name"]: e for e in _container(service).get("env") or []}


@pytest.fixture(scope="module", params=CASES, ids=CASE_IDS)
def rendered(request) -> tuple[str, bool, list[dict]]:
    values_file, dapr = request.param
    return values_file, dapr, tools.render(_values(values_file, dapr))


# -- lint ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", VALUES_FILES)
@pytest.mark.parametrize("dapr", [False, True], ids=["knative", "dapr"])
def test_helm_lint_passes(values_file, dapr):
    report = tools.helm().lint(
        str(tools.CHART),
        _values(values_file, dapr),
        strict=True,
        namespace="dueflow",
        kube_version=f"v{manifests.KUBERNETES_VERSION}.0",
    )
    findings = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert report["total_charts_linted"] == 1
    assert not findings and not report["errors"], json.dumps(report, indent=1)


def test_lint_reports_a_broken_chart(tmp_path):
    """The lint above is not vacuous: a template error and a bad value are reported."""
    broken = tmp_path / "dueflow"
    broken.mkdir()
    for path in tools.CHART.rglob("*"):
        if path.is_file():
            target = broken / path.relative_to(tools.CHART)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (broken / "templates" / "broken.yaml").write_text("kind: {{ .Values.image.tag | nosuchfn }}\n")
    report = tools.helm().lint(str(broken), {}, strict=True)
    assert any("nosuchfn" in error for error in report["errors"]), report
    report = tools.helm().lint(str(tools.CHART), {"image": {"tag": "latest"}}, strict=True)
    assert any("/image/tag" in error for error in report["errors"]), report


# -- every rendered document is valid ----------------------------------------------------------


def test_rendered_documents_are_valid(rendered):
    values_file, dapr, docs = rendered
    assert docs, "nothing rendered"
    for doc in docs:
        assert manifests.validation_errors(doc) == [], f"{values_file} {_key(doc)}"
        if doc["kind"] == "Service" and doc["apiVersion"] == "serving.knative.dev/v1":
            pod = manifests._as_pod(manifests.Doc(tools.CHART, 0, doc))
            assert manifests._kubernetes_errors(pod) == [], f"{values_file} {_key(doc)}"


def test_rendered_names_are_unique(rendered):
    _, _, docs = rendered
    keys = [_key(d) for d in docs]
    assert len(keys) == len(set(keys)), keys


def test_rendered_services_follow_the_manifest_rules(rendered):
    """The rules tests/manifests holds the plain Services to, on whatever the values make."""
    values_file, dapr, docs = rendered
    values = _merged(values_file, dapr)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert sorted(services) == manifests.FUNCTIONS
    known = manifests._config_variables() | manifests.SERVER_ENV
    for name, service in services.items():
        annotations, pod = _annotations(service), service["spec"]["template"]["spec"]
        env = _env(service)
        assert set(env) <= known and not set(env) & manifests.RESERVED_ENV, name
        assert env["FUNCTION_TARGET"]["value"] == name
        if name in manifests.STREAMING:  # its threads serve blocking calls, not open streams
            threads = int(env["THREADS"]["value"])
            assert threads == values["functions"][name]["threads"] < pod["containerConcurrency"]
            timeout = pod["timeoutSeconds"]
            assert float(env["DUEFLOW_LIVE_MAX_STREAM"]["value"]) < timeout, "ends before the cut"
        else:
            assert int(env["THREADS"]["value"]) == pod["containerConcurrency"] + 2, name
        for entry in env.values():
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if ref is not None:
                assert ref["name"] == values["existingSecret"]["name"], name
                assert ref["key"] in values["existingSecret"]["keys"].values(), name
        low = int(annotations["autoscaling.knative.dev/min-scale"])
        high = int(annotations["autoscaling.knative.dev/max-scale"])
        assert 0 <= low <= high, name
        image = _container(service)["image"]
        assert not image.endswith(":latest") and (":" in image or "@sha256:" in image), image
        uses_dapr = annotations.get("dapr.io/enabled") == "true"
        assert uses_dapr == (dapr and name in DAPR_FUNCTIONS), name
        visibility = service["metadata"]["labels"].get("networking.knative.dev/visibility")
        assert visibility == (None if name in manifests.PUBLIC_SERVICES else "cluster-local")


def test_rendered_database_connections_fit_the_budget(rendered):
    values_file, dapr, docs = rendered
    budget = _merged(values_file, dapr)["database"]["maxConnections"]
    used = 1  # the outbox lease holder's LISTEN connection
    for service in (d for d in docs if d["kind"] == "Service"):
        if "DATABASE_URL" not in _env(service):
            continue  # web: static files, no connection
        pods = int(_annotations(service)["autoscaling.knative.dev/max-scale"])
        name = service["metadata"]["name"]
        extra = name == "notify"  # records accepted e-mails at once
        extra += name in manifests.STREAMING  # live: its tail's reads and its LISTEN, no relay
        used += pods * (int(_env(service)["THREADS"]["value"]) + 1 + extra)
    assert used <= budget, (values_file, used, budget)


def test_rendered_wiring_is_closed(rendered):
    """Every reference points at a rendered resource; input bindings keep their pods running."""
    _, dapr, docs = rendered
    present = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for doc in docs:
        spec = doc.get("spec") or {}
        refs = [spec.get("subscriber", {}).get("ref"), spec.get("sink", {}).get("ref")]
        refs.append((spec.get("delivery") or {}).get("deadLetterSink", {}).get("ref"))
        for ref in filter(None, refs):
            assert (ref["kind"], ref["name"]) in present, (_key(doc), ref)
    sources = {d["metadata"]["name"] for d in docs if d["kind"] == "KafkaSource"}
    components = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Component"}
    # The Kafka topic is consumed by one path only, or every command arrives twice.
    assert (sources == set()) == ("task-events" in components)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for component in components.values():
        metadata = {m["name"]: m.get("value") for m in component["spec"]["metadata"]}
        if metadata.get("direction") != "input":
            continue
        for app in component["scopes"]:
            annotations = _annotations(services[app])
            assert annotations["dapr.io/enabled"] == "true"
            assert int(annotations["autoscaling.knative.dev/min-scale"]) >= 1, app
    assert bool(components) == dapr


def test_migration_runs_as_a_hook_before_install_and_upgrade(rendered):
    values_file, dapr, docs = rendered
    values = _merged(values_file, dapr)
    (job,) = [d for d in docs if d["kind"] == "Job"]
    annotations = job["metadata"]["annotations"]
    assert set(annotations[HOOK].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "dueflow.adapters.db.engine"]
    assert (
        container["image"]
        == _container(
            next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "tasks")
        )["image"]
    ), "the migration runs the code of the release it migrates for"
    database = {e["name"]: e for e in container["env"]}["DATABASE_URL"]
    assert database["valueFrom"]["secretKeyRef"] == {
        "name": values["existingSecret"]["name"],
        "key": values["existingSecret"]["keys"]["databaseUrl"],
    }
    assert pod["restartPolicy"] == "Never"
    assert container["securityContext"]["runAsNonRoot"] is True
    assert [d for d in docs if _is_hook(d)] == [job], "only the migration is a hook"


def test_the_image_tag_and_repository_come_from_the_values():
    docs = tools.render({"image": {"repository": "ghcr.io/acme/dueflow", "tag": "0123abc"}})
    images = {_container(d)["image"] for d in docs if d["kind"] == "Service"}
    assert images == {f"ghcr.io/acme/dueflow/{name}:0123abc" for name in manifests.FUNCTIONS}
    digest = "sha256:" + "a" * 64
    docs = tools.render({"functions": {"notify": {"image": {"digest": digest}}}})
    notify = next(d for d in docs if d["metadata"]["name"] == "notify" and d["kind"] == "Service")
    assert _container(notify)["image"] == f"ghcr.io/dueflow/notify@{digest}"


GATEWAY_API = "gateway.networking.k8s.io/"


def _service_env(docs: list[dict], name: str) -> dict[str, str | None]:
    service = next(d for d in docs if d["metadata"]["name"] == name and d["kind"] == "Service")
    return {k: e.get("value") for k, e in _env(service).items()}


def test_the_route_is_the_path_table_of_gateway_with_the_values_around_it():
    """Another host, an existing Gateway elsewhere, net-istio's cluster-local gateway as the
    backend, another release namespace: the rules' matches stay gateway/200-httproute.yaml's."""
    values = {
        "route": {
            "host": "todo.acme.example",
            "gateway": {
                "create": False,
                "name": "edge",
                "namespace": "infra",
                "sectionName": "web",
            },
            "backend": {"name": "knative-local-gateway", "namespace": "istio-system", "port": 80},
        },
        "cors": {"origins": "http://localhost:3000,https://todo.acme.example"},
    }
    docs = tools.render(values, namespace="apps")
    routing = {d["kind"]: d for d in docs if d["apiVersion"].startswith(GATEWAY_API)}
    assert sorted(routing) == ["HTTPRoute", "ReferenceGrant"]  # no Gateway: an existing one
    route, grant = routing["HTTPRoute"], routing["ReferenceGrant"]
    (plain,) = [d.body for d in _plain("gateway").values() if d.body["kind"] == "HTTPRoute"]
    assert route["spec"]["parentRefs"] == [
        {"name": "edge", "namespace": "infra", "sectionName": "web"}
    ]
    assert route["spec"]["hostnames"] == ["todo.acme.example"]
    assert [r["matches"] for r in route["spec"]["rules"]] == [
        r["matches"] for r in plain["spec"]["rules"]
    ]
    for rule, plain_rule in zip(route["spec"]["rules"], plain["spec"]["rules"], strict=True):
        service = plain_rule["filters"][0]["urlRewrite"]["hostname"].split(".")[0]
        assert rule["filters"] == [
            {
                "type": "URLRewrite",
                "urlRewrite": {"hostname": f"{service}.apps.svc.cluster.local"},
            }
        ]
        assert rule["backendRefs"] == [
            {"name": "knative-local-gateway", "namespace": "istio-system", "port": 80}
        ]
    assert grant["metadata"]["namespace"] == "istio-system"
    assert grant["spec"]["from"][0]["namespace"] == "apps"
    assert grant["spec"]["to"] == [
        {"group": "", "kind": "Service", "name": "knative-local-gateway"}
    ]
    for doc in routing.values():
        assert manifests.validation_errors(doc) == [], doc["kind"]
    assistant = _service_env(docs, "assistant")
    assert assistant["DUEFLOW_MCP_RESOURCE_URL"] == "https://todo.acme.example/mcp"
    assert assistant["DUEFLOW_MCP_ALLOWED_HOSTS"] == (
        "todo.acme.example,assistant.apps.svc.cluster.local"
    )
    cors = _service_env(docs, "tasks")["DUEFLOW_CORS_ORIGINS"]
    assert cors == "https://todo.acme.example,http://localhost:3000"  # the public host's first


def test_the_route_can_be_left_out_and_the_assistant_set_by_hand():
    values = {
        "route": {"enabled": False},
        "assistant": {
            "resourceUrl": "https://mcp.acme.example/mcp",
            "allowedHosts": "mcp.acme.example",
        },
    }
    docs = tools.render(values)
    assert not [d for d in docs if d["apiVersion"].startswith(GATEWAY_API)]
    assistant = _service_env(docs, "assistant")
    assert assistant["DUEFLOW_MCP_RESOURCE_URL"] == "https://mcp.acme.example/mcp"
    assert assistant["DUEFLOW_MCP_ALLOWED_HOSTS"] == "mcp.acme.example"
    same_namespace = {"route": {"backend": {"namespace": "dueflow"}}}
    kinds = {
        d["kind"] for d in tools.render(same_namespace) if d["apiVersion"].startswith(GATEWAY_API)
    }
    assert kinds == {"Gateway", "HTTPRoute"}  # a backend in the release namespace needs no grant


def test_the_eml_backend_gets_its_directory_and_the_others_do_not():
    docs = tools.render({"email": {"backend": "eml", "emlDir": "/tmp/mail"}})
    notify = _service_env(docs, "notify")
    assert (notify["DUEFLOW_EMAIL_BACKEND"], notify["DUEFLOW_EML_DIR"]) == ("eml", "/tmp/mail")
    assert "DUEFLOW_OUTBOX_DIR" not in notify  # the old name is read by the function, never set
    notify = _service_env(tools.render({"email": {"backend": "smtp"}}), "notify")
    assert notify["DUEFLOW_EMAIL_BACKEND"] == "smtp" and "DUEFLOW_EML_DIR" not in notify


def test_auth_from_a_jwks_url_or_the_secret():
    docs = tools.render({"auth": {"mode": "jwks", "jwksUrl": "https://id.example/jwks.json"}})
    tasks = next(d for d in docs if d["metadata"]["name"] == "tasks" and d["kind"] == "Service")
    env = _env(tasks)
    assert env["DUEFLOW_JWKS_URL"]["value"] == "https://id.example/jwks.json"
    assert "DUEFLOW_JWT_SECRET" not in env
    docs = tools.render({"auth": {"mode": "jwks", "audience": "dueflow"}})
    tasks = next(d for d in docs if d["metadata"]["name"] == "tasks" and d["kind"] == "Service")
    env = _env(tasks)
    assert env["DUEFLOW_JWKS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "jwks-url"
    assert env["DUEFLOW_JWT_AUDIENCE"]["value"] == "dueflow"



def test_the_web_app_signs_in_with_the_oidc_values_and_holds_no_database_url():
    web = _service_env(tools.render({}), "web")
    assert "DATABASE_URL" not in web and not any(k.startswith("DUEFLOW_OIDC") for k in web)
    values = {"oidc": {"issuer": "https://id.example/realms/d", "clientId": "dueflow-web"}}
    web = _service_env(tools.render(values), "web")
    assert web["DUEFLOW_OIDC_ISSUER"] == "https://id.example/realms/d"
    assert web["DUEFLOW_OIDC_CLIENT_ID"] == "dueflow-web"
    assert web["DUEFLOW_OIDC_SCOPE"] == "openid email"


# -- the default render is the plain manifests -------------------------------------------------


def _plain(*directories: str) -> dict[tuple, manifests.Doc]:
    """The plain manifests of these directories, read afresh from the files (the module-level
    DOCS of tests/manifests may have been changed in place by the tests that use them)."""
    wanted = {tools.ROOT / d for d in directories}
    return {_key(d.body): d for d in manifests._load() if d.path.parent in wanted}


def _split_labels(doc: dict) -> tuple[dict, dict]:
    body = copy.deepcopy(doc)
    labels = body["metadata"].pop("labels", None) or {}
    return body, labels


def _differences(given: object, wanted: object, path: str = "") -> list[str]:
    """Where two documents differ, as paths: what the assertion message shows."""
    if isinstance(given, dict) and isinstance(wanted, dict):
        return [
            p
            for key in sorted(set(given) | set(wanted), key=str)
            for p in _differences(
                given.get(key, "<absent>"), wanted.get(key, "<absent>"), f"{path}.{key}"
            )
        ]
    if isinstance(given, list) and isinstance(wanted, list) and len(given) == len(wanted):
        return [
            p
            for i, (g, w) in enumerate(zip(given, wanted, strict=True))
            for p in _differences(g, w, f"{path}[{i}]")
        ]
    return [] if given == wanted else [f"{path}: chart {given!r}, plain {wanted!r}"]


def _assert_same_resources(rendered_docs: list[dict], plain: dict[tuple, manifests.Doc]) -> None:
    chart = {_key(d): d for d in rendered_docs if not _is_hook(d)}
    assert sorted(chart) == sorted(plain), "the chart and the plain manifests differ in resources"
    for key, doc in chart.items():
        body, labels = _split_labels(doc)
        plain_body, plain_labels = _split_labels(plain[key].body)
        assert body == plain_body, (
            f"{key} differs from {plain[key].ident}: {_differences(body, plain_body)}"
        )
        assert {k: v for k, v in labels.items() if k not in CHART_LABELS} == {
            k: v for k, v in plain_labels.items() if k not in CHART_LABELS
        }, key
        assert CHART_LABELS <= set(labels), key


def test_default_render_is_the_plain_knative_manifests():
    _assert_same_resources(tools.render(), _plain("knative", "eventing", "gateway"))


def test_dapr_render_is_the_plain_dapr_manifests():
    plain = _plain("knative", "eventing", "dapr-bindings", "gateway")
    for key, doc in _plain("knative/dapr").items():
        plain[key] = doc  # the Dapr variants replace the Services of the same name
    del plain[("sources.knative.dev/v1beta1", "KafkaSource", "task-events")]  # never both paths
    _assert_same_resources(tools.render({"dapr": {"enabled": True}}), plain)


def test_every_plain_manifest_is_rendered_by_the_chart():
    rendered_keys = set()
    for dapr in (False, True):
        rendered_keys |= {_key(d) for d in tools.render({"dapr": {"enabled": dapr}})}
    for doc in manifests._load():
        assert _key(doc.body) in rendered_keys, f"{doc.ident} has no template in the chart"


# -- values.schema.json and the templates' own checks -----------------------------------------

BAD_VALUES = {
    "dapr-reminders-min-scale-0": (
        {
            "dapr": {"enabled": True},
            "functions": {"reminders": {"dapr": {"autoscaling": {"minScale": 0}}}},
        },
        "/functions/reminders/dapr/autoscaling/minScale",
    ),
    "dapr-commands-min-scale-0": (
        {
            "dapr": {"enabled": True},
            "functions": {"commands": {"dapr": {"autoscaling": {"minScale": 0}}}},
        },
        "/functions/commands/dapr/autoscaling/minScale",
    ),
    "dapr-cron-two-replicas": (
        {"functions": {"reminders": {"dapr": {"autoscaling": {"maxScale": 2}}}}},
        "/functions/reminders/dapr/autoscaling/maxScale",
    ),
    "negative-max-scale": (
        {"functions": {"tasks": {"autoscaling": {"maxScale": -1}}}},
        "/functions/tasks/autoscaling/maxScale",
    ),
    "negative-min-scale": (
        {"functions": {"notify": {"autoscaling": {"minScale": -2}}}},
        "/functions/notify/autoscaling/minScale",
    ),
    "unknown-top-level-key": ({"replicaCount": 3}, "replicaCount"),
    "unknown-nested-key": (
        {"functions": {"tasks": {"autoscaling": {"minscale": 1}}}},
        "minscale",
    ),
    "unknown-function": ({"functions": {"search": {}}}, "search"),
    "unknown-dapr-key": (
        {"functions": {"notify": {"dapr": {"schedule": "@every 1s"}}}},
        "schedule",
    ),
    "latest-tag": ({"image": {"tag": "latest"}}, "/image/tag"),
    "hpa-metric": ({"functions": {"tasks": {"autoscaling": {"metric": "cpu"}}}}, "metric"),
    "unlimited-concurrency": (
        {"functions": {"deadletter": {"autoscaling": {"containerConcurrency": 0}}}},
        "containerConcurrency",
    ),
    "zero-target": ({"functions": {"tasks": {"autoscaling": {"target": 0}}}}, "target"),
    "retention-without-scale-to-zero": (
        {"functions": {"tasks": {"autoscaling": {"minScale": 1}}}},
        "/functions/tasks/autoscaling/minScale",
    ),
    "timeout-over-knative-max": ({"functions": {"reminders": {"timeoutSeconds": 3600}}}, "timeout"),
    "eml-outside-tmp": ({"email": {"emlDir": "/var/mail"}}, "/email/emlDir"),
    "dapr-email-backend-on-knative": ({"email": {"backend": "dapr"}}, "/email/backend"),
    "reserved-extra-env": (
        {"functions": {"tasks": {"extraEnv": [{"name": "K_SINK", "value": "http://x"}]}}},
        "extraEnv",
    ),
    "bootstrap-server-without-port": ({"kafka": {"bootstrapServers": ["kafka"]}}, "bootstrap"),
    "no-retries": ({"broker": {"delivery": {"retry": 0}}}, "/broker/delivery/retry"),
    "dapr-metrics-on-queue-proxy-port": ({"dapr": {"metricsPort": 9090}}, "/dapr/metricsPort"),
    "auth-mode": ({"auth": {"mode": "basic"}}, "/auth/mode"),
}


@pytest.mark.parametrize("case", BAD_VALUES, ids=list(BAD_VALUES))
def test_helm_refuses_bad_values(case):
    values, where = BAD_VALUES[case]
    helm = tools.helm()
    with pytest.raises(helm.HelmValuesError) as refused:
        tools.render(values)
    assert where in str(refused.value), str(refused.value)
    report = helm.lint(str(tools.CHART), values, strict=True)
    assert any(where in error for error in report["errors"]), report["errors"]


@pytest.mark.parametrize("case", BAD_VALUES, ids=list(BAD_VALUES))
def test_the_schema_alone_refuses_bad_values(case):
    """The same with a second, independent JSON Schema implementation."""
    values, _ = BAD_VALUES[case]
    merged = tools.helm().Chart.load(str(tools.CHART)).merge_values(values)
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(merged)), case


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_the_schema_accepts_every_values_file(values_file):
    merged = _merged(values_file)
    errors = [e.message for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(merged)]
    assert errors == []


def test_the_schema_is_a_valid_draft_7_schema():
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_the_schema_declares_every_default_value():
    """Every key of values.yaml is in the schema (so the schema's additionalProperties: false
    refuses only what really is unknown), and the defaults pass it."""
    defaults = yaml.safe_load((tools.CHART / "values.yaml").read_text())
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(defaults)) == []
    assert set(SCHEMA["required"]) == set(defaults)


BAD_COMBINATIONS = {
    "min-scale-above-max-scale": (
        {"functions": {"recurrence": {"autoscaling": {"minScale": 2, "maxScale": 1}}}},
        "functions.recurrence: minScale 2 is above maxScale 1",
    ),
    "target-above-container-concurrency": (
        {"functions": {"notify": {"autoscaling": {"target": 7}}}},
        "functions.notify: target 7 is above containerConcurrency 6",
    ),
    "dapr-variant-checked-when-used": (
        {
            "dapr": {"enabled": True},
            "functions": {"notify": {"dapr": {"autoscaling": {"minScale": 3, "maxScale": 2}}}},
        },
        "functions.notify: minScale 3 is above maxScale 2",
    ),
    "more-connections-than-the-database-has": (
        {"functions": {"tasks": {"autoscaling": {"maxScale": 10}}}},
        "above database.maxConnections 97",
    ),
}


@pytest.mark.parametrize("case", BAD_COMBINATIONS, ids=list(BAD_COMBINATIONS))
def test_templates_refuse_contradicting_values(case):
    values, message = BAD_COMBINATIONS[case]
    helm = tools.helm()
    with pytest.raises(helm.HelmRenderError) as refused:
        tools.render(values)
    assert message in str(refused.value)


def test_observability_block_is_reserved_for_later():
    defaults = yaml.safe_load((tools.CHART / "values.yaml").read_text())
    assert defaults["observability"] == {
        "enabled": False,
        "grafanaDashboard": False,
        "prometheusRule": False,
        "metricsPort": 9464,
    }
    kinds = {d["kind"] for d in tools.render({"observability": {"enabled": True}})}
    assert not kinds & {"PrometheusRule", "ServiceMonitor", "PodMonitor"}, "not written yet"


def test_observability_renders_the_dashboard_and_alerts_only_when_switched_on():
    kinds = {d["kind"] for d in tools.render()}
    assert "PrometheusRule" not in kinds and not any(
        d["metadata"]["name"] == "dueflow-grafana-dashboard" for d in tools.render()
    )
    switched_on = {
        "observability": {
            "enabled": True,
            "grafanaDashboard": True,
            "prometheusRule": True,
            "metricsPort": 9464,
        }
    }
    docs = tools.render(switched_on)
    (dashboard,) = [d for d in docs if d["metadata"]["name"] == "dueflow-grafana-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["dueflow.json"])["panels"]
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r}
    assert {"DeadLettersPresent", "OutboxBacklogGrowing", "ReminderLatenessHigh"} <= alerts
    # the alert texts keep their Prometheus templates, not rendered away by Helm
    assert any(
        "{{ $labels" in str(r.get("annotations"))
        for g in rule["spec"]["groups"]
        for r in g["rules"]
    )

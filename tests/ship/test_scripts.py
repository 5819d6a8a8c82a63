"""The scripts behind `make images`, `make deploy`, `make deploy-minikube` and the cluster's dead
letters, run for real against stand-ins for docker, podman, helm and kubectl that record how they
were called (no engine or cluster needed), and deploy-minikube.sh through its DRY_RUN."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.ship import tools
from tests.support import manifests

FAKE = r'''#!/usr/bin/env python3
"""Stand-in for {name}: records its arguments, answers what the scripts ask."""
import json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([name] + args) + "\n")
answers = json.loads(os.environ.get("FAKE_ANSWERS", "{}"))
for prefix, (code, output) in answers.get(name, {}).items():
    if " ".join(args).startswith(prefix):
        print(output, end="")
        sys.exit(code)
sys.exit(0)
'''


class Fakes:
    def __init__(self, directory: Path, names: list[str]):
        self.directory, self.log = directory, directory / "calls.jsonl"
        for name in names:
            path = directory / name
            path.write_text(FAKE.replace("{name}", name))
            path.chmod(0o755)

    def run(self, command: list[str], answers: dict | None = None, **env: str):
        self.log.write_text("")
        environment = {
            "PATH": f"{self.directory}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(self.log),
            "FAKE_ANSWERS": json.dumps(answers or {}),
            **env,
        }
        return tools.run(command, env=environment)

    def calls(self, name: str | None = None) -> list[list[str]]:
        lines = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [call[1:] for call in lines if name is None or call[0] == name]


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    for variable in (
        "ENGINE",
        "IMAGE_TAG",
        "IMAGE_REPOSITORY",
        "PUSH",
        "CLOUD",
        "DAPR",
        "NAMESPACE",
        "RELEASE",
        "KUBE_CONTEXT",
        "EXTRA_VALUES",
        "FUNCTIONS",
    ):
        monkeypatch.delenv(variable, raising=False)
    return Fakes(tmp_path, ["docker", "podman", "helm", "kubectl"])


def _script(name: str) -> str:
    return str(tools.ROOT / "scripts" / name)


# -- images.sh ----------------------------------------------------------------------------------

NO_ENGINE = {"docker": {"info": [1, ""]}, "podman": {"info": [1, ""]}}


def test_images_says_clearly_when_no_engine_answers(fakes):
    result = fakes.run([_script("images.sh")], NO_ENGINE, IMAGE_TAG="abc")
    assert result.returncode != 0
    assert "no container engine" in result.stderr and "docker podman" in result.stderr
    assert "Nothing was built" in result.stderr
    assert not [c for c in fakes.calls() if c and c[0] == "build"]


def test_images_says_clearly_when_no_engine_is_installed(fakes):
    result = fakes.run([_script("images.sh")], ENGINE="no-such-engine", IMAGE_TAG="abc")
    assert result.returncode != 0
    assert "no container engine" in result.stderr and "is installed" in result.stderr


def test_images_builds_one_image_per_function(fakes):
    result = fakes.run(
        [_script("images.sh")],
        {"docker": {"info": [1, ""]}},  # docker's daemon is down: podman is used
        IMAGE_TAG="0123abc",
        IMAGE_REPOSITORY="registry.example/team",
        PUSH="1",
    )
    assert result.returncode == 0, result.stderr
    builds = [c for c in fakes.calls("podman") if c[0] == "build"]
    assert len(builds) == len(manifests.FUNCTIONS)
    built = set()
    for call in builds:
        function = call[call.index("--build-arg") + 1].removeprefix("FUNCTION=")
        assert call[call.index("--tag") + 1] == f"registry.example/team/{function}:0123abc"
        assert call[-3:] == ["--file", "Dockerfile", "."]
        built.add(function)
    assert built == set(manifests.FUNCTIONS)
    pushes = [c for c in fakes.calls("podman") if c[0] == "push"]
    assert len(pushes) == len(manifests.FUNCTIONS)
    assert not [c for c in fakes.calls("docker") if c[0] == "build"]


def test_images_refuses_latest_and_unknown_functions(fakes):
    result = fakes.run([_script("images.sh")], IMAGE_TAG="latest")
    assert result.returncode != 0 and "latest" in result.stderr
    result = fakes.run([_script("images.sh")], IMAGE_TAG="x", FUNCTIONS="tasks search")
    assert result.returncode != 0 and "no function 'search'" in result.stderr


def test_images_default_tag_is_the_commit(fakes):
    result = fakes.run([_script("images.sh")], FUNCTIONS="tasks")
    assert result.returncode == 0, result.stderr
    (build,) = [c for c in fakes.calls("docker") if c[0] == "build"]
    tag = build[build.index("--tag") + 1].rsplit(":", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?", tag), tag


# -- deploy.sh ----------------------------------------------------------------------------------


def test_deploy_runs_helm_upgrade_install_atomic_with_the_clouds_values(fakes):
    answers = {"helm": {"version": [0, "v3.19.0"]}}
    result = fakes.run(
        [_script("deploy.sh")], answers, CLOUD="aks", IMAGE_TAG="a" * 40, NAMESPACE="prod"
    )
    assert result.returncode == 0, result.stderr
    (upgrade,) = [c for c in fakes.calls("helm") if c[0] == "upgrade"]
    assert upgrade[:3] == ["upgrade", "--install", "dueflow"]
    assert upgrade[3] == "charts/dueflow"
    for flag, value in [
        ("--namespace", "prod"),
        ("--values", "charts/dueflow/values-aks.yaml"),
        ("--set-string", "image.tag=" + "a" * 40),
    ]:
        assert upgrade[upgrade.index(flag) + 1] == value, flag
    assert "--atomic" in upgrade and "--wait" in upgrade
    checked = [c for c in fakes.calls("kubectl") if c[:2] == ["get", "crd"]]
    assert {c[2] for c in checked} >= {
        "services.serving.knative.dev",
        "kafkasources.sources.knative.dev",
    }
    assert ["get", "secret", "dueflow-secrets", "--namespace", "prod"] in fakes.calls("kubectl")


def test_deploy_uses_helm_4s_name_for_atomic(fakes):
    answers = {"helm": {"version": [0, "v4.0.1"]}}
    result = fakes.run([_script("deploy.sh")], answers, CLOUD="gke", IMAGE_TAG="b" * 40, DAPR="1")
    assert result.returncode == 0, result.stderr
    (upgrade,) = [c for c in fakes.calls("helm") if c[0] == "upgrade"]
    assert "--rollback-on-failure" in upgrade and "--atomic" not in upgrade
    assert "dapr.enabled=true" in upgrade
    assert ["get", "crd", "components.dapr.io"] in fakes.calls("kubectl")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"IMAGE_TAG": "abc"}, "set CLOUD"),
        ({"CLOUD": "azure", "IMAGE_TAG": "abc"}, "no charts/dueflow/values-azure.yaml"),
        ({"CLOUD": "aks"}, "set IMAGE_TAG"),
        ({"CLOUD": "aks", "IMAGE_TAG": "latest"}, "latest is refused"),
    ],
)
def test_deploy_refuses_incomplete_settings(fakes, env, message):
    result = fakes.run([_script("deploy.sh")], **env)
    assert result.returncode != 0 and message in result.stderr
    assert not [c for c in fakes.calls("helm") if c[0] == "upgrade"]


def test_deploy_checks_the_cluster_before_changing_it(fakes):
    answers = {"kubectl": {"get crd kafkasinks.eventing.knative.dev": [1, ""]}}
    result = fakes.run([_script("deploy.sh")], answers, CLOUD="aks", IMAGE_TAG="abc")
    assert result.returncode != 0 and "kafkasinks.eventing.knative.dev" in result.stderr
    assert not [c for c in fakes.calls("helm") if c[0] == "upgrade"]
    answers = {"kubectl": {"get secret dueflow-secrets": [1, ""]}}
    result = fakes.run([_script("deploy.sh")], answers, CLOUD="aks", IMAGE_TAG="abc")
    assert result.returncode != 0 and "dueflow-secrets is missing" in result.stderr


def test_deploy_rolls_back(fakes):
    result = fakes.run([_script("deploy.sh"), "rollback", "7"])
    assert result.returncode == 0, result.stderr
    (rollback,) = [c for c in fakes.calls("helm") if c[0] == "rollback"]
    assert rollback[:3] == ["rollback", "dueflow", "7"] and "--wait" in rollback
    result = fakes.run([_script("deploy.sh"), "rollback"])
    (rollback,) = [c for c in fakes.calls("helm") if c[0] == "rollback"]
    assert rollback[:3] == ["rollback", "dueflow", "--namespace"], "to the previous revision"


def test_deploy_help_needs_no_tools(tmp_path):
    result = tools.run([_script("deploy.sh"), "--help"], env={"PATH": _bare_path(tmp_path / "b")})
    assert result.returncode == 0 and "rollback" in result.stdout


# -- dlq.sh -------------------------------------------------------------------------------------

DLQ_ANSWERS = {
    "kubectl": {
        "--namespace dueflow get ksvc deadletter --output jsonpath={.spec.template.spec."
        "containers[0].image}": [0, "ghcr.io/acme/dueflow/deadletter:abc"],
        "--namespace dueflow get ksvc deadletter --output jsonpath={.spec.template.spec."
        'containers[0].env[?(@.name=="DATABASE_URL")].valueFrom.secretKeyRef.name}': [
            0,
            "dueflow-secrets",
        ],
        "--namespace dueflow get ksvc deadletter --output jsonpath={.spec.template.spec."
        'containers[0].env[?(@.name=="DATABASE_URL")].valueFrom.secretKeyRef.key}': [
            0,
            "database-url",
        ],
        "--namespace dueflow get broker dueflow": [
            0,
            "http://kafka-broker-ingress.knative-eventing.svc.cluster.local/dueflow/dueflow",
        ],
    }
}


def test_dlq_replays_in_a_pod_with_the_releases_image_and_secret(fakes):
    result = fakes.run([_script("dlq.sh"), "replay", "3", "7"], DLQ_ANSWERS)
    assert result.returncode == 0, result.stderr
    (run,) = [c for c in fakes.calls("kubectl") if "run" in c]
    assert run[run.index("--image") + 1] == "ghcr.io/acme/dueflow/deadletter:abc"
    overrides = json.loads(run[run.index("--overrides") + 1])
    (container,) = overrides["spec"]["containers"]
    assert container["command"] == ["python", "-m", "dueflow.dlq", "replay", "3", "7"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "dueflow-secrets",
        "key": "database-url",
    }
    assert env["DUEFLOW_BROKER_URL"]["value"].endswith("/dueflow/dueflow")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dlq"}, **overrides}
    pod["spec"]["containers"][0]["image"] = "ghcr.io/acme/dueflow/deadletter:abc"
    assert manifests._kubernetes_errors(pod) == []


def test_dlq_refuses_bad_arguments(fakes):
    for args in (["replay", "3;rm"], ["purge"], ["list", "--everything"]):
        result = fakes.run([_script("dlq.sh"), *args], DLQ_ANSWERS)
        assert result.returncode != 0, args
        assert not [c for c in fakes.calls("kubectl") if "run" in c]


# -- deploy-minikube.sh -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minikube_dry_run() -> str:
    result = tools.run(
        [_script("deploy-minikube.sh")], env={"DRY_RUN": "1", "IMAGE_TAG": "dev-test"}
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_deploy_minikube_installs_the_whole_platform_then_the_chart(minikube_dry_run):
    commands = [line[2:] for line in minikube_dry_run.splitlines() if line.startswith("+ ")]
    expected = [
        "minikube start --profile dueflow",
        "serving/releases/download/knative-v",
        "serving-core.yaml",
        "net-kourier/releases/download/knative-v",
        "ingress-class",
        "kubernetes.podspec-volumes-emptydir",
        "helm upgrade --install eg oci://docker.io/envoyproxy/gateway-helm",
        "eventing-crds.yaml",
        "eventing-core.yaml",
        "eventing-kafka-controller.yaml",
        "eventing-kafka-broker.yaml",
        "eventing-kafka-source.yaml",
        "eventing-kafka-sink.yaml",
        "strimzi-kafka-operator",
        "kubectl wait kafka/my-cluster",
        "helm upgrade --install dapr dapr/dapr",
        "kubectl create secret generic dueflow-secrets",
        "minikube --profile dueflow image build --tag dev.local/dueflow/tasks:dev-test",
        "helm upgrade --install dueflow charts/dueflow --namespace dueflow "
        "--values charts/dueflow/values-minikube.yaml --set-string image.tag=dev-test",
    ]
    position = 0
    for fragment in expected:
        matches = [i for i, c in enumerate(commands) if fragment in c and i >= position]
        assert matches, f"no step {fragment!r} after step {position}"
        position = matches[0]
    builds = [c for c in commands if " image build " in c]
    assert len(builds) == len(manifests.FUNCTIONS)
    assert "curl" in minikube_dry_run and "kubectl port-forward" in minikube_dry_run
    assert "jwt-secret=" not in minikube_dry_run, "generated secrets are never printed"


def _applied(dry_run: str) -> list[dict]:
    blocks = re.findall(r"\+ kubectl apply -f - <<EOF\n(.*?)\nEOF", dry_run, re.S)
    return [d for block in blocks for d in yaml.safe_load_all(block) if d]


def test_deploy_minikube_manifests_are_valid_and_agree_with_the_chart(minikube_dry_run):
    docs = _applied(minikube_dry_run)
    kinds = {d["kind"] for d in docs}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "StatefulSet", "Service"} <= kinds
    for doc in docs:
        if doc["apiVersion"].startswith("kafka.strimzi.io/"):
            continue  # Strimzi's own kinds: no schema here
        if doc["apiVersion"].startswith("gateway.networking.k8s.io/"):
            assert manifests.validation_errors(doc) == [], doc["kind"]  # the vendored CRDs'
            continue
        kubernetes_validate.validate(doc, manifests.KUBERNETES_VERSION, strict=True)
    (gateway_class,) = [d for d in docs if d["kind"] == "GatewayClass"]
    values = (
        tools.helm()
        .Chart.load(str(tools.CHART))
        .merge_values(tools.load_values("values-minikube.yaml"))
    )
    kafka = next(d for d in docs if d["kind"] == "Kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}"
    assert values["kafka"]["bootstrapServers"] == [f"{bootstrap}:{listener['port']}"]
    topic = next(d for d in docs if d["kind"] == "KafkaTopic")
    assert topic["metadata"]["name"] == values["kafka"]["taskEvents"]["topic"]
    assert topic["spec"]["replicas"] == values["broker"]["config"]["defaultTopicReplicationFactor"]
    assert values["image"]["repository"].startswith("dev.local/"), "not resolved by Knative"
    assert gateway_class["metadata"]["name"] == values["route"]["gateway"]["className"]


def _bare_path(directory: Path) -> str:
    """A PATH with the basic commands the scripts need and none of the cluster tools."""
    directory.mkdir()
    for command in ("bash", "env", "dirname", "date", "git", "sed", "tr", "od"):
        found = shutil.which(command)
        assert found, command
        (directory / command).symlink_to(found)
    return str(directory)


def test_deploy_minikube_fails_clearly_without_its_tools(tmp_path):
    result = tools.run([_script("deploy-minikube.sh")], env={"PATH": _bare_path(tmp_path / "b")})
    assert result.returncode != 0
    assert "minikube is not installed" in result.stderr, result.stderr

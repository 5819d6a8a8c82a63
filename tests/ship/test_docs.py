"""docs/deploy.md and docs/operations.md say what the chart, the values files and the scripts
really do: the autoscaling table against the values, the connection budget against its sum, the
versions against the Minikube script, the commands against the Makefile and scripts, the links
against the files."""

from __future__ import annotations

import re

import pytest

from tests.ship import tools

DOCS = tools.ROOT / "docs"
DEPLOY = (DOCS / "deploy.md").read_text()
OPERATIONS = (DOCS / "operations.md").read_text()
FUNCTIONS = [
    "tasks",
    "recurrence",
    "reminders",
    "notify",
    "commands",
    "deadletter",
    "assistant",
    "live",
]
DAPR_FUNCTIONS = ["reminders", "notify", "commands"]


def _merged(values_file: str) -> dict:
    return tools.helm().Chart.load(str(tools.CHART)).merge_values(tools.load_values(values_file))


def _table_rows(text: str, first_header: str) -> dict[str, list[str]]:
    rows, inside = {}, False
    for line in text.splitlines():
        if line.startswith(f"| {first_header} |"):
            inside = True
            continue
        if inside and not line.startswith("|"):
            break
        if inside and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def _scale(autoscaling: dict) -> str:
    return f"{autoscaling['minScale']}–{autoscaling['maxScale']}"


def test_operations_autoscaling_table_is_the_values():
    defaults, aks, gke = (
        _merged("values.yaml"),
        _merged("values-aks.yaml"),
        _merged("values-gke.yaml"),
    )
    rows = _table_rows(OPERATIONS, "function")
    expected = {}
    for name in FUNCTIONS:
        fn = defaults["functions"][name]
        a = fn["autoscaling"]
        cloud = {
            _scale(aks["functions"][name]["autoscaling"]),
            _scale(gke["functions"][name]["autoscaling"]),
        }
        assert len(cloud) == 1, f"{name}: the table has one column for AKS and GKE"
        expected[name] = [
            a["metric"],
            str(a["target"]),
            str(a["containerConcurrency"]),
            str(a["minScale"]),
            str(a["maxScale"]),
            a.get("scaleToZeroPodRetentionPeriod", ""),
            str(fn["timeoutSeconds"]),
            cloud.pop(),
        ]
    for name in DAPR_FUNCTIONS:
        fn = defaults["functions"][name]
        a = fn["dapr"]["autoscaling"]
        cloud = {
            _scale(aks["functions"][name]["dapr"]["autoscaling"]),
            _scale(gke["functions"][name]["dapr"]["autoscaling"]),
        }
        expected[f"{name} (Dapr)"] = [
            a["metric"],
            str(a["target"]),
            str(a["containerConcurrency"]),
            str(a["minScale"]),
            str(a["maxScale"]),
            a.get("scaleToZeroPodRetentionPeriod", ""),
            str(fn["timeoutSeconds"]),
            cloud.pop(),
        ]
    assert rows == expected


def _connections(values: dict) -> int:
    total = 1  # the lease holder's LISTEN connection
    for name in FUNCTIONS:
        a = values["functions"][name]["autoscaling"]
        per_pod = a["containerConcurrency"] + 3 + (name == "notify")  # + its recording connection
        if name == "live":  # its threads, its tail's reads, its LISTEN; slots are open streams
            per_pod = values["functions"][name]["threads"] + 2
        total += a["maxScale"] * per_pod
    return total


def test_operations_connection_budget_numbers_are_the_sums():
    defaults, aks, gke = (_merged(f) for f in ("values.yaml", "values-aks.yaml", "values-gke.yaml"))
    assert _connections(aks) == _connections(gke)
    sentence = re.search(r"(\d+) are used by the defaults, (\d+) by\s+the AKS and GKE", OPERATIONS)
    assert sentence, "the budget sentence moved"
    assert [int(sentence[1]), int(sentence[2])] == [_connections(defaults), _connections(aks)]
    assert f"({defaults['database']['maxConnections']} by default" in OPERATIONS


def test_deploy_versions_are_the_minikube_scripts():
    script = (tools.ROOT / "scripts" / "deploy-minikube.sh").read_text()
    defaults = dict(re.findall(r"^([A-Z_]+)=\$\{\1:-([^}]+)\}$", script, re.M))
    steps = _table_rows(DEPLOY, "step")
    assert f"Kubernetes {defaults['KUBERNETES_VERSION']}" in steps["1"][1]
    assert f"{defaults['KNATIVE_VERSION']} (`KNATIVE_VERSION`)" in steps["2"][1]
    assert f"{defaults['KNATIVE_VERSION']} (`KNATIVE_VERSION`)" in steps["3"][1]
    assert f"Strimzi {defaults['STRIMZI_VERSION']}" in steps["4"][1]
    assert f"Kafka {defaults['KAFKA_VERSION']}" in steps["4"][1]
    assert f"{defaults['DAPR_VERSION']} (`DAPR_VERSION`)" in steps["5"][1]
    assert len(steps) == script.count('log "') == 8


@pytest.mark.parametrize(
    "text, commands",
    [
        (
            DEPLOY,
            [
                "make images",
                "make deploy-minikube",
                "make deploy CLOUD=aks",
                "make deploy CLOUD=gke",
                "scripts/deploy.sh rollback",
                "helm uninstall",
            ],
        ),
        (
            OPERATIONS,
            [
                "make dlq-list",
                "make dlq-replay",
                "scripts/dlq.sh list",
                "scripts/dlq.sh replay",
                "scripts/deploy.sh rollback",
            ],
        ),
    ],
    ids=["deploy.md", "operations.md"],
)
def test_docs_show_the_commands(text, commands):
    for command in commands:
        assert command in text, command


def test_alerts_are_said_to_come_with_observability():
    section = OPERATIONS.split("## Alerts", 1)[1].split("\n## ", 1)[0]
    assert "observability" in section and "observability.prometheusRule" in section


def test_every_value_the_docs_name_exists():
    defaults = _merged("values.yaml")
    for name in set(
        re.findall(
            r"`((?:functions|existingSecret|auth|email|kafka|broker|dapr|"
            r"database|migration|observability|image)\.[A-Za-z.*<>]+)`",
            DEPLOY + OPERATIONS,
        )
    ):
        node = defaults
        for part in name.split("."):
            if part in ("*", "<name>"):
                break
            assert isinstance(node, dict) and part in node, name
            node = node[part]


@pytest.mark.parametrize("name", ["deploy.md", "operations.md"])
def test_relative_links_resolve(name):
    text = (DOCS / name).read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (DOCS / target).exists(), f"{name} links to missing {target}"
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        headings = {
            re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", text, re.M)
        }
        assert anchor in headings, f"{name}: no heading for #{anchor}"

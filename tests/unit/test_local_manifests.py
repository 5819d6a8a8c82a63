"""dueflow_local.manifests: the Knative manifests read into the local Broker's Wiring, and the
Trigger filter semantics (exact, prefix, suffix, all, any, not) it routes by."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dueflow_local.manifests import (
    Delivery,
    Function,
    KafkaSink,
    KafkaSource,
    PathMatch,
    Routes,
    Trigger,
    Wiring,
    functions,
    load,
    routes,
)
from tests.conftest import ROOT

BROKER = """
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: dueflow
spec:
  delivery:
    retry: 5
    backoffPolicy: linear
    backoffDelay: PT2S
    deadLetterSink:
      ref:
        apiVersion: serving.knative.dev/v1
        kind: Service
        name: deadletter
"""

TRIGGERS = """
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: by-attributes
spec:
  broker: dueflow
  filter:
    attributes:
      type: dev.dueflow.task.completed
      source: /dueflow/tasks
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: recurrence}
  delivery:
    retry: 8
    backoffPolicy: exponential
    backoffDelay: PT0.5S
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: commands
  annotations:
    kafka.eventing.knative.dev/delivery.order: ordered
spec:
  broker: dueflow
  filters:
    - prefix:
        type: dev.dueflow.command.task.
  # ignored: `filters` wins when both are present
  filter:
    attributes:
      type: never.this
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: commands}
  delivery:
    retry: 2
    backoffDelay: PT0.1S
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: combined
  annotations:
    kafka.eventing.knative.dev/delivery.order: unordered
spec:
  broker: dueflow
  filters:
    - all:
        - prefix: {type: dev.dueflow.}
        - any:
            - suffix: {type: .created}
            - exact: {subject: vip}
        - not:
            exact: {source: /test}
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: audit}
  delivery:
    deadLetterSink:
      ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: audit-dlq}
---
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: to-kafka
spec:
  broker: dueflow
  filters:
    - prefix: {type: dev.dueflow.task.}
  subscriber:
    ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, name: task-updates}
  delivery:
    retry: 10
"""

SOURCES = """
apiVersion: sources.knative.dev/v1
kind: PingSource
metadata:
  name: reminders-tick
spec:
  schedule: "* * * * *"
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: reminders}
---
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: task-events
spec:
  topics: [task-events, more-events]
  consumerGroup: dueflow-task-events
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: dueflow}
---
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: no-group
spec:
  topics: [other]
  sink:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: dueflow}
---
apiVersion: eventing.knative.dev/v1alpha1
kind: KafkaSink
metadata:
  name: task-updates
spec:
  topic: task-updates-topic
  bootstrapServers: [kafka:9092]
"""


def write(directory: Path, **files: str) -> Path:
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text))
    return directory


@pytest.fixture
def wiring(tmp_path) -> Wiring:
    write(
        tmp_path,
        **{
            "100-broker.yaml": BROKER,
            "200-triggers.yaml": TRIGGERS,
            "300-sources.yaml": SOURCES,
            "README.md": "not a manifest",
            "notes.yml": "kind: Ignored",  # only *.yaml is read
        },
    )
    return load(tmp_path)


def by_name(wiring: Wiring) -> dict[str, Trigger]:
    return {t.name: t for t in wiring.triggers}


# -- load --------------------------------------------------------------------------------------


def test_load_reads_every_trigger_in_file_order(wiring):
    assert [t.name for t in wiring.triggers] == [
        "by-attributes",
        "commands",
        "combined",
        "to-kafka",
    ]


def test_filter_attributes_become_one_exact_filter(wiring):
    trigger = by_name(wiring)["by-attributes"]

    assert trigger.filters == (
        {"exact": {"type": "dev.dueflow.task.completed", "source": "/dueflow/tasks"}},
    )
    assert (trigger.subscriber, trigger.subscriber_kind) == ("recurrence", "Service")


def test_filters_win_over_filter(wiring):
    assert by_name(wiring)["commands"].filters == (
        {"prefix": {"type": "dev.dueflow.command.task."}},
    )


def test_nested_filters_are_kept_as_written(wiring):
    [expression] = by_name(wiring)["combined"].filters
    assert list(expression) == ["all"]
    assert [next(iter(e)) for e in expression["all"]] == ["prefix", "any", "not"]


def test_the_ordered_annotation(wiring):
    triggers = by_name(wiring)
    assert triggers["commands"].ordered
    assert not triggers["combined"].ordered  # "unordered"
    assert not triggers["by-attributes"].ordered  # no annotation


def test_a_triggers_full_delivery_is_its_own_with_the_brokers_dead_letter_sink(wiring):
    assert by_name(wiring)["by-attributes"].delivery == Delivery(
        retry=8, backoff_policy="exponential", backoff_delay=0.5, dead_letter="deadletter"
    )


def test_a_triggers_retry_overrides_the_brokers(wiring):
    delivery = by_name(wiring)["commands"].delivery
    assert delivery.retry == 2
    assert delivery.backoff_delay == pytest.approx(0.1)
    assert delivery.dead_letter == "deadletter"  # inherited


def test_a_triggers_dead_letter_sink_overrides_the_brokers(wiring):
    delivery = by_name(wiring)["combined"].delivery
    assert delivery.dead_letter == "audit-dlq"
    assert delivery.retry == 5  # inherited


def test_a_kafka_sink_subscriber(wiring):
    trigger = by_name(wiring)["to-kafka"]
    assert (trigger.subscriber, trigger.subscriber_kind) == ("task-updates", "KafkaSink")
    assert trigger.delivery.retry == 10 and trigger.delivery.dead_letter == "deadletter"


def test_sources_and_sinks(wiring):
    assert wiring.ping_targets == ("reminders",)
    assert wiring.kafka_sources == (
        KafkaSource("task-events", ("task-events", "more-events"), "dueflow-task-events"),
        KafkaSource("no-group", ("other",), "knative-kafkasource-no-group"),
    )
    assert wiring.kafka_sinks == {"task-updates": KafkaSink("task-updates", "task-updates-topic")}


def test_without_a_broker_a_trigger_keeps_its_own_delivery(tmp_path):
    trigger_only = TRIGGERS.split("---")[0]
    wiring = load(write(tmp_path, **{"t.yaml": trigger_only}))

    [trigger] = wiring.triggers
    assert trigger.delivery == Delivery(8, "exponential", 0.5, None)


def test_a_trigger_without_delivery_and_no_broker_gets_the_defaults(tmp_path):
    text = """
    apiVersion: eventing.knative.dev/v1
    kind: Trigger
    metadata: {name: bare}
    spec:
      broker: dueflow
      subscriber:
        ref: {kind: Service, name: notify}
    """
    [trigger] = load(write(tmp_path, **{"t.yaml": text})).triggers

    assert trigger.filters == ()  # no filter: every event
    assert trigger.delivery == Delivery()
    assert trigger.delivery.retry == 0 and trigger.delivery.dead_letter is None


def test_an_empty_directory_is_an_empty_wiring(tmp_path):
    wiring = load(tmp_path)
    assert wiring == Wiring()
    assert wiring.matching({"type": "anything"}) == []


def test_a_trigger_without_delivery_inherits_the_brokers_backoff(tmp_path):
    text = """
    apiVersion: eventing.knative.dev/v1
    kind: Trigger
    metadata: {name: bare}
    spec:
      broker: dueflow
      filter: {attributes: {type: dev.dueflow.reminder.due}}
      subscriber:
        ref: {kind: Service, name: notify}
    """
    wiring = load(write(tmp_path, **{"100-broker.yaml": BROKER, "200-t.yaml": text}))

    [trigger] = wiring.triggers
    assert trigger.delivery == Delivery(5, "linear", 2.0, "deadletter")


# -- cesql and other dialects ----------------------------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        "- cesql: \"type LIKE 'dev.dueflow.%'\"",
        "- all:\n      - exact: {type: a}\n      - cesql: \"source = 'x'\"",
        "- not:\n        cesql: \"type = 'a'\"",
        "- any:\n      - prefix: {type: a}\n      - sql: \"type = 'a'\"",
    ],
    ids=["top-level", "in-all", "in-not", "unknown-dialect"],
)
def test_filters_the_local_broker_cannot_evaluate_are_rejected(tmp_path, filters):
    text = f"""
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {{name: sql}}
spec:
  broker: dueflow
  filters:
    {filters}
  subscriber:
    ref: {{kind: Service, name: notify}}
"""
    write(tmp_path, **{"t.yaml": text})

    with pytest.raises(ValueError, match=r"does not evaluate `(cesql|sql)` filters"):
        load(tmp_path)


# -- matching ---------------------------------------------------------------------------------


def t(*filters: dict) -> Trigger:
    return Trigger("t", filters, "s", "Service", Delivery())


EVENT = {"type": "dev.dueflow.task.created", "source": "/dueflow/tasks", "subject": "42"}


@pytest.mark.parametrize(
    ("expression", "matches"),
    [
        ({"exact": {"type": "dev.dueflow.task.created"}}, True),
        ({"exact": {"type": "dev.dueflow.task"}}, False),
        ({"exact": {"type": "dev.dueflow.task.created", "source": "/dueflow/tasks"}}, True),
        ({"exact": {"type": "dev.dueflow.task.created", "source": "/other"}}, False),
        ({"exact": {"partitionkey": "42"}}, False),  # a missing attribute never matches
        ({"exact": {"type": "DEV.DUEFLOW.TASK.CREATED"}}, False),  # case-sensitive
        ({"prefix": {"type": "dev.dueflow.task."}}, True),
        ({"prefix": {"type": "dev.dueflow.command.task."}}, False),
        ({"prefix": {"type": "dev.dueflow.", "source": "/dueflow"}}, True),
        ({"prefix": {"partitionkey": ""}}, False),
        ({"suffix": {"type": ".created"}}, True),
        ({"suffix": {"type": ".deleted"}}, False),
        ({"all": [{"prefix": {"type": "dev."}}, {"suffix": {"type": "created"}}]}, True),
        ({"all": [{"prefix": {"type": "dev."}}, {"suffix": {"type": "deleted"}}]}, False),
        ({"all": []}, True),
        ({"any": [{"exact": {"subject": "7"}}, {"exact": {"subject": "42"}}]}, True),
        ({"any": [{"exact": {"subject": "7"}}, {"exact": {"subject": "8"}}]}, False),
        ({"any": []}, False),
        ({"not": {"exact": {"source": "/test"}}}, True),
        ({"not": {"prefix": {"type": "dev."}}}, False),
        ({"not": {"exact": {"partitionkey": "42"}}}, True),
        (
            {
                "all": [
                    {"prefix": {"type": "dev.dueflow."}},
                    {"any": [{"suffix": {"type": ".updated"}}, {"exact": {"subject": "42"}}]},
                    {"not": {"exact": {"source": "/test"}}},
                ]
            },
            True,
        ),
    ],
)
def test_filter_semantics(expression, matches):
    assert t(expression).matches(EVENT) is matches


def test_every_filter_of_a_trigger_must_match():
    trigger = t({"prefix": {"type": "dev."}}, {"exact": {"subject": "42"}})
    assert trigger.matches(EVENT)
    assert not trigger.matches({**EVENT, "subject": "7"})


def test_a_trigger_without_filters_matches_everything():
    assert t().matches(EVENT) and t().matches({})


def test_non_string_attribute_values_do_not_match():
    assert not t({"exact": {"subject": "42"}}).matches({**EVENT, "subject": 42})


def test_matching_and_subscribers(wiring):
    def names(attributes: dict) -> list[str]:
        return [trigger.name for trigger in wiring.matching(attributes)]

    completed = {"type": "dev.dueflow.task.completed", "source": "/dueflow/tasks"}
    assert names(completed) == ["by-attributes", "to-kafka"]
    assert names({**completed, "source": "/elsewhere"}) == ["to-kafka"]
    assert names({"type": "dev.dueflow.command.task.create", "source": "/a"}) == ["commands"]
    assert names({"type": "dev.dueflow.task.created", "source": "/a"}) == ["combined", "to-kafka"]
    assert names({"type": "dev.dueflow.task.created", "source": "/test"}) == ["to-kafka"]
    assert names({"type": "dev.dueflow.x.y", "source": "/a", "subject": "vip"}) == ["combined"]
    assert names({"type": "never.this"}) == []
    # subscribers() looks at the type alone
    assert wiring.subscribers("dev.dueflow.task.created") == ["audit", "task-updates"]
    assert wiring.subscribers("dev.dueflow.task.completed") == ["task-updates"]  # no source


# -- the repository's eventing/ ----------------------------------------------------------------


@pytest.fixture(scope="module")
def repo_wiring() -> Wiring:
    return load(ROOT / "eventing")


def is_function(name: str) -> bool:
    return (ROOT / "functions" / name / "main.py").is_file()


def test_the_repositorys_manifests_load(repo_wiring):
    assert repo_wiring.triggers
    assert len({t.name for t in repo_wiring.triggers}) == len(repo_wiring.triggers)


def test_every_trigger_delivers_to_a_function_or_a_declared_kafka_sink(repo_wiring):
    for trigger in repo_wiring.triggers:
        if trigger.subscriber_kind == "Service":
            assert is_function(trigger.subscriber), trigger
        else:
            assert trigger.subscriber_kind == "KafkaSink", trigger
            assert trigger.subscriber in repo_wiring.kafka_sinks, trigger


def test_every_trigger_has_retries_and_the_deadletter_function(repo_wiring):
    for trigger in repo_wiring.triggers:
        assert trigger.delivery.retry > 0, trigger
        assert trigger.delivery.dead_letter == "deadletter", trigger
        assert trigger.delivery.backoff_delay > 0, trigger
    assert is_function("deadletter")


def test_every_ping_target_is_a_function(repo_wiring):
    assert repo_wiring.ping_targets == ("reminders",)
    assert all(is_function(name) for name in repo_wiring.ping_targets)


def test_the_repositorys_routes(repo_wiring):
    def routes(event_type: str) -> set[str]:
        return set(repo_wiring.subscribers(event_type))

    for kind in ("create", "update", "complete", "delete"):
        assert routes(f"dev.dueflow.command.task.{kind}") == {"commands"}
    assert routes("dev.knative.kafka.event") == {"commands"}
    assert routes("dev.dueflow.task.completed") == {"recurrence", "task-updates"}
    for kind in ("created", "updated", "reopened", "deleted"):
        assert routes(f"dev.dueflow.task.{kind}") == {"task-updates"}
    assert routes("dev.dueflow.reminder.due") == {"notify"}
    assert routes("dev.knative.sources.ping") == set()


def test_the_repositorys_kafka_source_and_sink(repo_wiring):
    assert repo_wiring.kafka_sources == (
        KafkaSource("task-events", ("task-events",), "dueflow-task-events"),
    )
    assert repo_wiring.kafka_sinks == {"task-updates": KafkaSink("task-updates", "task-updates")}


def test_commands_are_delivered_in_order(repo_wiring):
    ordered = {t.name for t in repo_wiring.triggers if t.ordered}
    command_triggers = {t.name for t in repo_wiring.triggers if t.subscriber == "commands"}
    assert command_triggers and command_triggers <= ordered


# -- the public path table (gateway/) and the functions (knative/) ---------------------------


def test_the_repository_table_routes_every_public_path_of_issue_14():
    table = routes(ROOT / "gateway")
    expected = {
        "/": "web",
        "/assets/app.3f2a.js": "web",
        "/docs": "web",
        "/tasks": "tasks",
        "/tasks/quick": "tasks",
        "/tags": "tasks",
        "/me": "tasks",
        "/recurrence/preview": "tasks",
        "/calendar/token": "tasks",
        "/calendar/abc.ics": "tasks",
        "/openapi.json": "tasks",
        "/mcp": "assistant",
        "/.well-known/oauth-protected-resource/mcp": "assistant",
        "/live": "live",
        "/live/tickets": "live",
    }
    assert {path: table.service_for(path) for path in expected} == expected
    for unrouted in ("/readyz", "/metrics", "/tasksx", "/assetsx", "/docs/x", "/favicon"):
        assert table.service_for(unrouted) is None, unrouted


def test_path_matches_follow_the_gateway_api():
    table = Routes(
        (
            PathMatch("PathPrefix", "/", "web"),
            PathMatch("PathPrefix", "/tasks/", "tasks"),
            PathMatch("PathPrefix", "/tasks/special", "special"),
            PathMatch("Exact", "/tasks/special/x", "exact"),
        )
    )
    assert table.service_for("/anything") == "web"  # "/" prefixes every path
    assert table.service_for("/tasks") == "tasks"  # a trailing "/" of a prefix is ignored
    assert table.service_for("/tasksx") == "web"  # element-wise, not by characters
    assert table.service_for("/tasks/special/y") == "special"  # the longest prefix wins
    assert table.service_for("/tasks/special/x") == "exact"  # an Exact match wins over any prefix
    assert table.only({"web"}).service_for("/tasks/1") == "web"  # rows of absent Services dropped


ROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  rules:
    - matches:
        - {MATCH}
      filters:
        - type: URLRewrite
          urlRewrite:
            hostname: tasks.ns.svc.cluster.local
      backendRefs:
        - name: kourier-internal
          port: 80
"""


@pytest.mark.parametrize(
    "match",
    [
        "path: {type: RegularExpression, value: /t.*}",
        "headers: [{name: x, value: y}]",
        "method: GET",
    ],
)
def test_routes_refuse_what_the_front_door_does_not_evaluate(tmp_path, match):
    (tmp_path / "r.yaml").write_text(ROUTE.replace("{MATCH}", match))
    with pytest.raises(ValueError):
        routes(tmp_path)


def test_routes_need_the_host_rewrite_that_names_the_service(tmp_path):
    (tmp_path / "r.yaml").write_text(ROUTE.replace("{MATCH}", "path: {value: /t}"))
    assert routes(tmp_path).matches == (PathMatch("PathPrefix", "/t", "tasks"),)
    (tmp_path / "r.yaml").write_text(
        ROUTE.replace("{MATCH}", "path: {value: /t}").replace("filters:", "x-filters:")
    )
    with pytest.raises(ValueError):
        routes(tmp_path)


def test_functions_start_as_their_containers_do():
    found = {f.name: f for f in functions(ROOT / "knative")}
    assert set(found) >= {"tasks", "assistant", "notify", "commands", "deadletter"}
    assert found["tasks"] == Function("tasks", "tasks")
    assert found["assistant"].command == ("python", "/app/main.py")
    argv = found["assistant"].argv(ROOT, "/venv/bin/python", 9000)
    assert argv == [
        "/venv/bin/python",
        str(ROOT / "functions/assistant/main.py"),
        "--host",
        "127.0.0.1",
        "--port",
        "9000",
    ]
    argv = found["notify"].argv(ROOT, "/venv/bin/python", 9001)
    assert argv[0] == "/venv/bin/functions-framework"
    assert argv[argv.index("--target") + 1] == "notify"
    assert argv[argv.index("--port") + 1] == "9001"


def test_a_container_command_the_local_runtime_cannot_start_is_refused():
    with pytest.raises(ValueError):
        Function("x", "x", ("gunicorn", "app:app")).argv(ROOT, "python", 1)

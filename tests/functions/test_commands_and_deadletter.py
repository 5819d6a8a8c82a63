"""The commands and deadletter functions as functions-framework serves them.

commands: task commands (dev.dueflow.command.task.create|update|complete|delete) delivered as
CloudEvents in binary and structured mode, as raw KafkaSource records (dev.knative.kafka.event)
and as Dapr Kafka binding POSTs; applied with exactly the API's validation and semantics (the
tasks API, `client`, is the reference), once per (source, id), emitting the API's task.* events.

deadletter: what a Broker sends its dead-letter sink (the knativeerror* extensions), kept once,
listed and replayed by `python -m dueflow.dlq` against a real HTTP server.

Every test runs on SQLite and on PostgreSQL; every delivery test in both CloudEvents modes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import uuid

import pytest
import requests
import sqlalchemy as sa
from functions_framework import create_app

from dueflow import dlq
from dueflow.adapters.outbox_relay import DeliveryError
from dueflow.domain import events as ev
from tests.conftest import ROOT, auth
from tests.support import processes
from tests.support.events import as_http, deliver, outcome
from tests.support.http import Answer, RecordingServer, Request, free_port

COMMAND = "dev.dueflow.command.task."
ASSISTANT = "/chat-assistant"
KAFKA_SOURCE = "/apis/v1/namespaces/dueflow/kafkasources/task-events#task-events"
COMMANDS_URL = "http://commands.dueflow.svc.cluster.local"
BODY = {
    "title": "  File the tax return ",
    "description": "Before the deadline",
    "priority": "high",
    "tags": ["Admin", "money", "admin"],
    "due_at": "2026-12-02T08:00:00Z",
    "timezone": "Europe/Berlin",
    "reminders": [{"before": "PT1H"}, {"at": "2026-12-01T20:00:00Z"}],
}
RECURRING = {
    "title": "Water the plants",
    "due_at": "2026-12-02T08:00:00Z",
    "timezone": "Europe/Berlin",
    "recurrence": {"rrule": "FREQ=WEEKLY"},
    "reminders": [{"before": "P1D"}],
}


@pytest.fixture(params=["binary", "structured"])
def mode(request) -> str:
    return request.param


@pytest.fixture
def apps(function_env):
    """`apps(name)`: an event function's test client (same runtime and database as `client`)."""
    made: dict = {}

    def make(name: str):
        if name not in made:
            made[name] = create_app(name, str(ROOT / "functions" / name / "main.py"))
        return made[name].test_client()

    return make


@pytest.fixture
def commands(apps):
    return apps("commands")


@pytest.fixture
def deadletter(apps):
    return apps("deadletter")


# -- events and deliveries ----------------------------------------------------------------------


def command(kind: str, data, *, event_id: str | None = None, source: str = ASSISTANT) -> dict:
    """A task command as its producer writes it: a structured-mode CloudEvent dict."""
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": COMMAND + kind,
        "datacontenttype": "application/json",
        "data": data,
    }


def problem(response, status: int = 422) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == status and body["type"].startswith("urn:dueflow:problem:")
    return body


def fields(body: dict) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


def created_id(response) -> str:
    result = outcome(response)
    assert result.startswith("created "), result
    return result.removeprefix("created ")


# -- the tasks API (the reference) --------------------------------------------------------------


def api_create(client, body: dict, user: str = "alice") -> dict:
    response = client.post("/tasks", json=body, headers=auth(user))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def api_get(client, task_id: str, user: str = "alice") -> dict:
    response = client.get(f"/tasks/{task_id}", headers=auth(user))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def comparable(task: dict) -> dict:
    """A task without what differs between two creations of the same body."""
    generated = ("id", "created_at", "updated_at", "series_id", "completed_at")
    out = {k: v for k, v in task.items() if k not in generated}
    out["reminders"] = [{k: v for k, v in r.items() if k != "id"} for r in task["reminders"]]
    return out


# -- what the database holds --------------------------------------------------------------------


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def snapshot(engine) -> dict[str, int]:
    return {t: count(engine, t) for t in ("tasks", "outbox", "processed_commands", "dead_letters")}


def outbox(engine, event_type: str | None = None, subject: str | None = None) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT payload FROM outbox ORDER BY seq")).scalars().all()
    found = [json.loads(row) for row in rows]
    return [
        e
        for e in found
        if (event_type is None or e["type"] == event_type)
        and (subject is None or e["subject"] == subject)
    ]


def dead_letter_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        stmt = sa.text("SELECT * FROM dead_letters ORDER BY id")
        return [dict(r) for r in conn.execute(stmt).mappings()]


# =============================================================================================
# commands: create
# =============================================================================================


@pytest.mark.parametrize(
    "body", [BODY, RECURRING, {"title": "Minimal"}], ids=["full", "rrule", "min"]
)
def test_create_command_creates_the_task_the_api_would(client, commands, engine, mode, body):
    reference = api_create(client, body)

    task_id = created_id(deliver(commands, command("create", {**body, "user_id": "alice"}), mode))

    made = api_get(client, task_id)
    assert made["id"] == task_id != reference["id"]
    assert comparable(made) == comparable(reference)
    # owned by user_id: invisible to anyone else
    assert client.get(f"/tasks/{task_id}", headers=auth("bob")).status_code == 404
    [created] = outbox(engine, ev.TASK_CREATED, task_id)
    [api_created] = outbox(engine, ev.TASK_CREATED, reference["id"])
    assert created["data"] == {"user_id": "alice", "task": made}
    assert set(created) == set(api_created)
    for attribute in ("specversion", "source", "type", "datacontenttype", "dataschema"):
        assert created[attribute] == api_created[attribute]


INVALID_BODIES = {
    "missing-title": {"description": "no title"},
    "unknown-field": {"title": "x", "colour": "red"},
    "bad-due-at": {"title": "x", "due_at": "tomorrow-ish"},
    "bad-priority": {"title": "x", "priority": "urgent"},
    "bad-tags": {"title": "x", "tags": ["ok", ""]},
    "bad-reminder": {"title": "x", "due_at": "2026-12-02T08:00:00Z", "reminders": [{"b": 1}]},
    "bad-rrule": {"title": "x", "due_at": "2026-12-02T08:00:00Z", "recurrence": {"rrule": "NO"}},
    "rrule-without-due": {"title": "x", "recurrence": {"rrule": "FREQ=DAILY"}},
    "bad-timezone": {"title": "x", "timezone": "Mars/Olympus"},
}


@pytest.mark.parametrize("body", INVALID_BODIES.values(), ids=INVALID_BODIES.keys())
def test_create_command_validates_exactly_like_the_api(client, commands, engine, mode, body):
    reference = client.post("/tasks", json=body, headers=auth("alice"))
    expected = problem(reference)["errors"]
    before = snapshot(engine)

    response = deliver(commands, command("create", {**body, "user_id": "alice"}), mode)

    assert problem(response)["errors"] == expected
    assert snapshot(engine) == before  # nothing written, not even the command's id


def test_the_same_create_command_delivered_three_times_creates_one_task(commands, engine, mode):
    event = command("create", {**BODY, "user_id": "alice"})

    first = created_id(deliver(commands, event, mode))
    again = [outcome(deliver(commands, event, mode)) for _ in range(2)]

    assert again == ["duplicate: already applied"] * 2
    assert count(engine, "tasks") == 1
    assert [e["subject"] for e in outbox(engine, ev.TASK_CREATED)] == [first]


def test_the_same_command_id_from_another_source_is_another_command(commands, engine, mode):
    event_id = str(uuid.uuid4())
    data = {**BODY, "user_id": "alice"}

    a = created_id(deliver(commands, command("create", data, event_id=event_id), mode))
    b = created_id(
        deliver(commands, command("create", data, event_id=event_id, source="/other"), mode)
    )

    assert a != b and count(engine, "tasks") == 2


def test_a_different_id_with_the_same_body_creates_another_task(client, commands, engine, mode):
    data = {**BODY, "user_id": "alice"}

    first = created_id(deliver(commands, command("create", data), mode))
    second = created_id(deliver(commands, command("create", data), mode))

    assert first != second
    assert count(engine, "tasks") == 2
    assert comparable(api_get(client, first)) == comparable(api_get(client, second))
    assert len(outbox(engine, ev.TASK_CREATED)) == 2


def test_concurrent_deliveries_of_one_create_command_create_one_task(function_env, engine, mode):
    app = create_app("commands", str(ROOT / "functions" / "commands" / "main.py"))
    event = command("create", {**BODY, "user_id": "alice"})
    headers, body = as_http(event, mode)
    start = threading.Barrier(4)
    answers: list = []
    lock = threading.Lock()

    def post() -> None:
        test_client = app.test_client()
        start.wait()
        response = test_client.post("/", headers=headers, data=body)
        with lock:
            answers.append((response.status_code, response.get_data(as_text=True)))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert [status for status, _ in answers] == [200] * 4, answers
    outcomes = sorted(json.loads(text)["outcome"] for _, text in answers)
    assert outcomes[0].startswith("created ")
    assert outcomes[1:] == ["duplicate: already applied"] * 3
    assert count(engine, "tasks") == 1
    assert len(outbox(engine, ev.TASK_CREATED)) == 1
    assert count(engine, "processed_commands") == 1


# =============================================================================================
# commands: update, complete, delete
# =============================================================================================


def test_update_complete_delete_commands_emit_the_apis_events(client, commands, engine, mode):
    patch = {"title": "Renamed", "description": None, "tags": ["x"], "priority": "low"}
    by_api = api_create(client, BODY)
    by_command = created_id(
        deliver(commands, command("create", {**BODY, "user_id": "alice"}), mode)
    )

    # update: a JSON merge patch (null resets), with user_id and the task's id
    response = client.patch(f"/tasks/{by_api['id']}", json=patch, headers=auth("alice"))
    assert response.status_code == 200
    update = command("update", {**patch, "user_id": "alice", "id": by_command})
    assert outcome(deliver(commands, update, mode)) == f"updated {by_command}"
    assert comparable(api_get(client, by_command)) == comparable(api_get(client, by_api["id"]))
    assert api_get(client, by_command)["description"] is None
    [api_updated] = outbox(engine, ev.TASK_UPDATED, by_api["id"])
    [updated] = outbox(engine, ev.TASK_UPDATED, by_command)
    assert updated["data"]["changed"] == api_updated["data"]["changed"]
    assert sorted(updated["data"]["changed"]) == ["description", "priority", "tags", "title"]
    assert outcome(deliver(commands, update, mode)) == "duplicate: already applied"

    # complete
    assert client.post(f"/tasks/{by_api['id']}/complete", headers=auth("alice")).status_code == 200
    done = command("complete", {"user_id": "alice", "id": by_command})
    assert outcome(deliver(commands, done, mode)) == f"completed {by_command}"
    assert comparable(api_get(client, by_command)) == comparable(api_get(client, by_api["id"]))
    assert api_get(client, by_command)["completed_at"] is not None
    [completed] = outbox(engine, ev.TASK_COMPLETED, by_command)
    assert completed["data"]["task"] == api_get(client, by_command)

    # delete
    assert client.delete(f"/tasks/{by_api['id']}", headers=auth("alice")).status_code == 204
    gone = command("delete", {"user_id": "alice", "id": by_command})
    assert outcome(deliver(commands, gone, mode)) == f"deleted {by_command}"
    assert client.get(f"/tasks/{by_command}", headers=auth("alice")).status_code == 404
    assert outcome(deliver(commands, gone, mode)) == "duplicate: already applied"

    def history(task_id: str) -> list[str]:
        return [e["type"] for e in outbox(engine, subject=task_id)]

    assert (
        history(by_command)
        == history(by_api["id"])
        == [
            ev.TASK_CREATED,
            ev.TASK_UPDATED,
            ev.TASK_COMPLETED,
            ev.TASK_DELETED,
        ]
    )
    for event_type in (ev.TASK_COMPLETED, ev.TASK_DELETED):
        [a] = outbox(engine, event_type, by_api["id"])
        [c] = outbox(engine, event_type, by_command)
        assert set(a["data"]) == set(c["data"]) and c["data"]["user_id"] == "alice"


def test_an_update_command_that_changes_nothing_emits_nothing(client, commands, engine, mode):
    task = api_create(client, BODY)
    before = len(outbox(engine))

    same = command("update", {"user_id": "alice", "id": task["id"], "priority": "high"})

    assert outcome(deliver(commands, same, mode)) == f"updated {task['id']}"
    assert len(outbox(engine)) == before


# =============================================================================================
# commands: invalid commands -> 422, nothing written
# =============================================================================================


INVALID_COMMANDS = {
    "missing-user-id": ("create", {"title": "x"}, "data.user_id"),
    "empty-user-id": ("create", {"title": "x", "user_id": ""}, "data.user_id"),
    "numeric-user-id": ("create", {"title": "x", "user_id": 7}, "data.user_id"),
    "unknown-field": ("create", {"title": "x", "user_id": "alice", "colour": "red"}, "colour"),
    "bad-due-at": ("create", {"title": "x", "user_id": "alice", "due_at": "soon"}, "due_at"),
    "data-not-object": ("create", ["title", "x"], "data"),
    "unknown-type": ("archive", {"user_id": "alice", "id": "x"}, "type"),
    "update-without-id": ("update", {"user_id": "alice", "title": "y"}, "data.id"),
    "complete-extra-field": ("complete", {"user_id": "alice", "id": "x", "note": 1}, "data.note"),
}


@pytest.mark.parametrize(
    ("kind", "data", "field"), INVALID_COMMANDS.values(), ids=INVALID_COMMANDS.keys()
)
def test_an_invalid_command_is_422_naming_the_field(
    client, commands, engine, mode, kind, data, field
):
    api_create(client, BODY)
    before = snapshot(engine)

    response = deliver(commands, command(kind, data), mode)

    body = problem(response)
    assert field in fields(body), body
    assert snapshot(engine) == before


def test_a_type_outside_the_command_namespace_is_422(commands, engine, mode):
    event = {**command("create", {"title": "x", "user_id": "alice"}), "type": "dev.dueflow.task.x"}

    assert fields(problem(deliver(commands, event, mode))) == {"type"}
    assert count(engine, "tasks") == 0


@pytest.mark.parametrize("kind", ["update", "complete", "delete"])
def test_a_command_on_another_users_task_is_4xx_but_never_404(client, commands, engine, mode, kind):
    task = api_create(client, BODY)
    before = snapshot(engine)
    data = {"user_id": "bob", "id": task["id"]}
    if kind == "update":
        data["title"] = "Hijacked"

    response = deliver(commands, command(kind, data), mode)

    # Knative retries 404 (and 408, 409, 429): a command that can never apply must not be one
    assert 400 <= response.status_code < 500
    assert response.status_code not in (404, 408, 409, 429)
    problem(response, response.status_code)
    assert snapshot(engine) == before
    assert api_get(client, task["id"]) == task


def test_a_command_on_a_task_that_does_not_exist_is_422(commands, engine, mode):
    for task_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = deliver(commands, command("complete", {"user_id": "alice", "id": task_id}), mode)
        problem(response)
    assert count(engine, "processed_commands") == 0


def test_an_invalid_update_patch_is_422_and_changes_nothing(client, commands, engine, mode):
    task = api_create(client, BODY)
    reference = client.patch(f"/tasks/{task['id']}", json={"title": ""}, headers=auth("alice"))
    before = snapshot(engine)

    update = command("update", {"user_id": "alice", "id": task["id"], "title": ""})

    assert problem(deliver(commands, update, mode))["errors"] == problem(reference)["errors"]
    assert snapshot(engine) == before and api_get(client, task["id"]) == task


# =============================================================================================
# commands: raw KafkaSource records and Dapr Kafka binding POSTs
# =============================================================================================


def raw_record(value, offset: int = 42, *, content_type: str | None = "application/json") -> dict:
    """What a KafkaSource sends for a record that is no CloudEvent: the value as data."""
    event = {
        "specversion": "1.0",
        "id": f"partition:0/offset:{offset}",
        "source": KAFKA_SOURCE,
        "type": "dev.knative.kafka.event",
        "subject": "partition:0#offset:42",
        "data": value,
    }
    if content_type:
        event["datacontenttype"] = content_type
    return event


def test_a_raw_kafka_record_holding_a_structured_command_is_applied(client, commands, engine, mode):
    inner = command("create", {**BODY, "user_id": "alice"})

    task_id = created_id(deliver(commands, raw_record(inner), mode))

    assert comparable(api_get(client, task_id)) == comparable(api_create(client, BODY))
    # deduplicated by the command's own source and id, not by the record's
    again = deliver(commands, raw_record(inner, offset=43), mode)
    assert outcome(again) == "duplicate: already applied"
    assert len(outbox(engine, ev.TASK_CREATED, task_id)) == 1


def test_a_raw_kafka_record_without_content_type_is_still_unwrapped(commands, engine, mode):
    inner = command("create", {"title": "No content type", "user_id": "alice"})

    created_id(deliver(commands, raw_record(inner, content_type=None), mode))

    assert count(engine, "tasks") == 1


RAW_NOT_COMMANDS = {
    "json-not-ce": {"title": "x", "user_id": "alice"},
    "ce-0.3": {"specversion": "0.3", "type": COMMAND + "create", "source": "s", "id": "1"},
    "ce-without-id": {"specversion": "1.0", "type": COMMAND + "create", "source": "s"},
    "text": "create task x",
}


@pytest.mark.parametrize("value", RAW_NOT_COMMANDS.values(), ids=RAW_NOT_COMMANDS.keys())
def test_a_raw_kafka_record_that_is_not_a_cloudevent_is_422(commands, engine, mode, value):
    content_type = "text/plain" if isinstance(value, str) else "application/json"

    response = deliver(commands, raw_record(value, content_type=content_type), mode)

    assert fields(problem(response)) == {"data"}
    assert snapshot(engine)["tasks"] == snapshot(engine)["processed_commands"] == 0


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_a_dapr_binding_post_of_a_structured_command_is_applied(client, commands, content_type):
    event = command("create", {**BODY, "user_id": "alice"})
    headers = {"Content-Type": content_type} if content_type else {}

    response = commands.post("/task-events", data=json.dumps(event), headers=headers)

    task_id = created_id(response)
    assert comparable(api_get(client, task_id)) == comparable(api_create(client, BODY))
    again = commands.post("/task-events", data=json.dumps(event), headers=headers)
    assert outcome(again) == "duplicate: already applied"


def kafka_headers(event: dict) -> dict:
    """A binary-mode Kafka record's headers (ce_type, ...), as a Dapr Kafka binding passes them."""
    headers = {f"ce_{k}": v for k, v in event.items() if k not in ("data", "datacontenttype")}
    headers["content-type"] = event["datacontenttype"]
    return headers


def test_a_dapr_binding_post_with_kafka_ce_underscore_headers_is_applied(client, commands, engine):
    event = command("create", {**BODY, "user_id": "alice"})

    response = commands.post(
        "/task-events", headers=kafka_headers(event), data=json.dumps(event["data"])
    )

    task_id = created_id(response)
    assert api_get(client, task_id)["title"] == "File the tax return"
    assert count(engine, "processed_commands") == 1


def test_a_dapr_binding_post_that_is_not_a_cloudevent_is_422(commands, engine):
    response = commands.post("/task-events", json={"title": "x", "user_id": "alice"})

    assert fields(problem(response)) == {"data"}
    assert count(engine, "tasks") == 0


@pytest.mark.parametrize("path", ["/", "/task-events"])
def test_the_dapr_options_probe_is_answered_200(commands, path):
    assert commands.options(path).status_code == 200


def test_a_post_that_claims_to_be_structured_but_is_not_a_cloudevent_is_400(commands, engine):
    response = commands.post(
        "/", data=b'{"hello": 1}', headers={"Content-Type": "application/cloudevents+json"}
    )

    problem(response, 400)
    assert count(engine, "tasks") == 0


@pytest.fixture
def served_commands(function_env):
    """The commands function served by functions-framework (gunicorn), as its Dapr manifest
    runs it (knative/dapr/100-commands.yaml: `python -m dueflow.serve`, functions-framework's
    server letting the sidecar's ce_* headers through)."""
    port = free_port()
    source = ROOT / "functions" / "commands" / "main.py"
    args = [sys.executable, "-m", "dueflow.serve", "--source", str(source), "--target", "commands"]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    # its own process group, stopped (gunicorn's worker too) whatever happens
    server = processes.start(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert processes.wait_ready(f"{url}/readyz", server, timeout=60), "did not start"
        yield url
    finally:
        processes.stop(server)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_dapr_structured_post_works_on_the_real_functions_framework_server(served_commands):
    event = command("create", {"title": "From Dapr", "user_id": "alice"})

    response = requests.post(
        f"{served_commands}/task-events",
        headers={"Content-Type": "application/json"},
        data=json.dumps(event),
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert response.json()["outcome"].startswith("created ")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_kafka_ce_underscore_headers_survive_the_real_functions_framework_server(served_commands):
    event = command("create", {"title": "From Dapr", "user_id": "alice"})

    response = requests.post(
        f"{served_commands}/task-events",
        headers=kafka_headers(event),
        data=json.dumps(event["data"]),
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert response.json()["outcome"].startswith("created ")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_both_spellings_of_an_attribute_are_refused_not_confused(served_commands):
    """ce_type and ce-type in one request land in one WSGI variable, joined: no valid type, so
    the command is refused (4xx, never retried), never applied as either spelling's."""
    event = command("create", {"title": "Smuggled", "user_id": "alice"})
    headers = {**kafka_headers(event), "ce-type": "dev.dueflow.something.else"}

    response = requests.post(
        f"{served_commands}/task-events",
        headers=headers,
        data=json.dumps(event["data"]),
        timeout=30,
    )

    assert 400 <= response.status_code < 500, response.text


# =============================================================================================
# deadletter: store, list, replay
# =============================================================================================


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def rejected_command(commands) -> tuple[dict, dict]:
    """A command the commands function rejects, and the problem it answered (as a Broker saw
    it); returns the command and the dead letter a Broker sends for it."""
    event = command("create", {"title": "No owner"}, event_id="cmd-7")
    answer = deliver(commands, event, "binary")
    assert answer.status_code == 422
    letter = {
        **event,
        "knativeerrorcode": "422",
        "knativeerrordest": COMMANDS_URL,
        "knativeerrordata": b64(answer.get_data(as_text=True)),
    }
    return event, letter


def test_a_dead_letter_is_stored_once_with_its_decoded_reason(commands, deadletter, engine, mode):
    event, letter = rejected_command(commands)

    assert outcome(deliver(deadletter, letter, mode)) == "stored"
    assert outcome(deliver(deadletter, letter, mode)) == "duplicate"

    [row] = dead_letter_rows(engine)
    assert (row["event_source"], row["event_id"], row["event_type"]) == (
        ASSISTANT,
        "cmd-7",
        COMMAND + "create",
    )
    assert (row["error_code"], row["error_dest"]) == ("422", COMMANDS_URL)
    reason = json.loads(row["error_data"])
    assert reason["status"] == 422 and reason["errors"][0]["field"] == "data.user_id"
    stored = json.loads(row["event"])
    assert not any(k.startswith("knativeerror") for k in stored)
    assert stored["data"] == event["data"]
    assert {k: stored[k] for k in ("id", "source", "type", "specversion")} == {
        k: event[k] for k in ("id", "source", "type", "specversion")
    }
    assert row["replayed_at"] is None


def test_the_same_event_dead_lettered_by_two_subscribers_is_kept_twice(deadletter, engine, mode):
    event = command("create", {"title": "x", "user_id": "alice"})
    for dest in (COMMANDS_URL, "http://recurrence.dueflow.svc.cluster.local"):
        letter = {**event, "knativeerrorcode": "500", "knativeerrordest": dest}
        assert outcome(deliver(deadletter, letter, mode)) == "stored"

    assert len(dead_letter_rows(engine)) == 2


def test_knativeerrordata_that_is_not_base64_is_kept_as_sent(deadletter, engine, mode):
    letter = {
        **command("delete", {"user_id": "alice", "id": "x"}),
        "knativeerrorcode": "503",
        "knativeerrordest": COMMANDS_URL,
        "knativeerrordata": "not base64!",
    }

    assert outcome(deliver(deadletter, letter, mode)) == "stored"
    assert dead_letter_rows(engine)[0]["error_data"] == "not base64!"


def test_a_dead_letter_must_be_a_cloudevent(deadletter, engine):
    response = deadletter.post("/", json={"not": "an event"})

    assert 400 <= response.status_code < 500 and response.status_code != 404
    assert count(engine, "dead_letters") == 0


def test_a_dead_letter_without_a_destination_redelivered_is_stored_once(deadletter, engine, mode):
    letter = {**command("create", {"title": "x"}), "knativeerrorcode": "422"}

    deliver(deadletter, letter, mode)
    deliver(deadletter, letter, mode)

    assert count(engine, "dead_letters") == 1


class Receiver(RecordingServer):
    """A real HTTP server on 127.0.0.1 standing in for the Broker's ingress: records what it is
    sent and answers `status`."""

    def __init__(self, status: int = 202):
        self.status = status
        self.received: list[tuple[dict, bytes]] = []
        super().__init__(self._answer)

    def _answer(self, request: Request) -> Answer:
        self.received.append((request.lower_headers(), request.body))
        return Answer(self.status)

    def stop(self) -> None:
        self.close()


@pytest.fixture
def receiver():
    started = Receiver()
    yield started
    started.stop()


def test_dlq_list_prints_each_dead_letter_with_its_decoded_reason(commands, deadletter, capsys):
    _, letter = rejected_command(commands)
    outcome(deliver(deadletter, letter, "structured"))

    assert dlq.main(["list"]) == 0

    out, err = capsys.readouterr()
    [line] = out.splitlines()
    assert f"{COMMAND}create  {ASSISTANT} cmd-7" in line
    assert f"-> {COMMANDS_URL} answered 422" in line
    assert '"status": 422' in line and "Validation failed" in line  # the decoded problem
    assert "replayed" not in line
    assert "1 dead letter(s)" in err


def test_dlq_replay_resends_the_original_event_and_marks_it(
    commands, deadletter, receiver, capsys, mode
):
    event, letter = rejected_command(commands)
    outcome(deliver(deadletter, letter, mode))
    os.environ["DUEFLOW_BROKER_URL"] = receiver.url

    assert dlq.main(["replay"]) == 0

    [(headers, body)] = receiver.received
    assert headers["ce-id"] == "cmd-7"
    assert headers["ce-source"] == ASSISTANT
    assert headers["ce-type"] == COMMAND + "create"
    assert headers["ce-specversion"] == "1.0"
    assert headers["content-type"] == "application/json"
    assert not [k for k in headers if "knativeerror" in k]
    assert json.loads(body) == event["data"]
    capsys.readouterr()
    assert dlq.main(["list"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "0 dead letter(s)" in err
    assert dlq.main(["list", "--all"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "cmd-7" in line and " replayed " in line
    # replaying again sends nothing: it was replayed
    assert dlq.main(["replay"]) == 0
    assert len(receiver.received) == 1


def test_dlq_replay_of_chosen_ids_leaves_the_others(deadletter, engine, receiver):
    for n in range(3):
        letter = {
            **command("delete", {"user_id": "alice", "id": str(n)}, event_id=f"e{n}"),
            "knativeerrorcode": "500",
            "knativeerrordest": COMMANDS_URL,
        }
        outcome(deliver(deadletter, letter, "binary"))
    ids = [row["id"] for row in dead_letter_rows(engine)]
    os.environ["DUEFLOW_BROKER_URL"] = receiver.url

    assert dlq.main(["replay", str(ids[2]), str(ids[0])]) == 0

    assert [h["ce-id"] for h, _ in receiver.received] == ["e0", "e2"]  # oldest first
    left = [row["event_id"] for row in dead_letter_rows(engine) if row["replayed_at"] is None]
    assert left == ["e1"]


def test_dlq_replay_that_the_broker_refuses_keeps_the_dead_letter(deadletter, engine, receiver):
    letter = {
        **command("complete", {"user_id": "alice", "id": "x"}),
        "knativeerrorcode": "500",
        "knativeerrordest": COMMANDS_URL,
    }
    outcome(deliver(deadletter, letter, "binary"))
    receiver.status = 503
    os.environ["DUEFLOW_BROKER_URL"] = receiver.url

    try:
        status = dlq.main(["replay"])
    except DeliveryError:
        status = 1

    assert status != 0
    assert len(receiver.received) == 1
    [row] = dead_letter_rows(engine)
    assert row["replayed_at"] is None


def test_dlq_replay_without_a_broker_says_so(deadletter, capsys, tmp_path, monkeypatch):
    for name in ("DUEFLOW_BROKER_URL", "K_SINK"):
        os.environ.pop(name, None)
    monkeypatch.chdir(tmp_path)  # no .dueflow/broker-url of a running `make run`

    assert dlq.main(["replay"]) == 2
    assert "DUEFLOW_BROKER_URL" in capsys.readouterr().err

"""`make run` with KAFKA_BOOTSTRAP_SERVERS, against a real Kafka-protocol broker (Tansu): commands
on `task-events` drive dueflow, every task change lands on `task-updates`, bad commands end in the
dead-letter store and can be replayed."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
import requests
from cloudevents.http import CloudEvent
from cloudevents.kafka import to_binary
from confluent_kafka import Consumer, Producer

from dueflow.config import DEV_JWT_SECRET
from tests.conftest import token
from tests.support.kafka import KafkaServer
from tests.support.local_stack import poll, running_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kafka():
    server = KafkaServer().start()
    yield server
    server.stop()


@pytest.fixture
def kafka_stack(kafka, tmp_path):
    with running_stack(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap_servers,
        DUEFLOW_KAFKA_SESSION_TIMEOUT_MS="3000",  # Tansu answers a group join after half of it
    ) as (base, _proc, env):
        yield base, env


def _command(kind: str, data: dict, event_id: str | None = None) -> CloudEvent:
    return CloudEvent(
        {
            "type": f"dev.dueflow.command.task.{kind}",
            "source": "/chat-assistant",
            "id": event_id or str(uuid.uuid4()),
            "partitionkey": data.get("id", data["user_id"]),
            "datacontenttype": "application/json",
        },
        data,
    )


def _send(kafka: KafkaServer, *events: CloudEvent) -> None:
    producer = Producer(kafka.producer_config())
    for event in events:
        message = to_binary(event, key_mapper=lambda e: e["partitionkey"])
        producer.produce(
            "task-events", key=message.key, value=message.value, headers=message.headers
        )
    assert producer.flush(10) == 0


def _user_tasks(base: str, user: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {token(user, secret=DEV_JWT_SECRET)}"}
    return requests.get(f"{base}/tasks?status=all", headers=headers, timeout=10).json()["items"]


def test_a_command_delivered_twice_creates_one_task_and_reaches_task_updates(kafka, kafka_stack):
    base, _ = kafka_stack
    create = _command(
        "create",
        {"user_id": "carol", "title": "Book flights", "tags": ["Travel"]},
        event_id="cmd-1",
    )
    _send(kafka, create, create)  # the same CloudEvent twice: applied once
    (task,) = poll(lambda: _user_tasks(base, "carol"), 30)
    assert task["title"] == "Book flights" and task["tags"] == ["travel"]
    _send(kafka, _command("complete", {"user_id": "carol", "id": task["id"]}))
    assert poll(lambda: _user_tasks(base, "carol")[0]["status"] == "done", 30)
    assert len(_user_tasks(base, "carol")) == 1

    consumer = Consumer(kafka.consumer_config(f"watcher-{uuid.uuid4()}"))
    consumer.subscribe(["task-updates"])
    seen: list[tuple[str, str, bytes]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(seen) < 2:
        record = consumer.poll(0.5)
        if record is not None and not record.error():
            headers = dict(record.headers() or [])
            seen.append((headers["ce_type"].decode(), headers["ce_subject"].decode(), record.key()))
    consumer.close()
    assert seen == [
        ("dev.dueflow.task.created", task["id"], task["id"].encode()),
        ("dev.dueflow.task.completed", task["id"], task["id"].encode()),
    ]


def test_a_bad_command_is_dead_lettered_and_can_be_replayed(kafka, kafka_stack):
    base, env = kafka_stack
    bad = _command("create", {"user_id": "dave", "title": ""})  # empty title: 422, no retry
    _send(kafka, bad)

    def dead_letters() -> str:
        out = subprocess.run(
            [sys.executable, "-m", "dueflow.dlq", "list"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out if bad["id"] in out else ""

    listing = poll(dead_letters, 30)
    assert "422" in listing and "title" in listing
    assert _user_tasks(base, "dave") == []
    replay = subprocess.run(
        [sys.executable, "-m", "dueflow.dlq", "replay"], env=env, capture_output=True, text=True
    )
    assert replay.returncode == 0 and "replayed 1" in replay.stderr, replay.stderr
    # still invalid: the replayed command went through the Broker and died again, listed anew
    assert poll(dead_letters, 30)

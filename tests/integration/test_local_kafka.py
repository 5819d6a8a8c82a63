"""The local Broker over Kafka (dueflow_local.kafka) against a real Kafka-protocol broker (Tansu).

An appended event reaches its Trigger's subscriber; its offset is committed only once the event
was delivered, so one that was not comes again after a restart while one that was does not; and
one partition's stuck event holds up its own partition only, as Knative's ordered delivery does.
Every test uses Triggers of its own (so consumer groups of its own) and event types of its own.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterator

import pytest
from cloudevents.http import CloudEvent
from confluent_kafka import Consumer, TopicPartition

from dueflow_local.broker import Dispatcher, binary
from dueflow_local.kafka import BROKER_TOPIC, KafkaRuntime
from dueflow_local.manifests import Delivery, Trigger, Wiring
from tests.support.http import Answer, RecordingServer, Request
from tests.support.kafka import KafkaServer

SESSION_TIMEOUT_MS = 3000  # Tansu answers a group join after half of it
DEADLINE = 30.0  # seconds for anything to arrive: a group join alone takes ~1.5 s


class Subscriber(RecordingServer):
    """Records the ids (and requests) of the events it is sent; answers 503 to those `refuse`
    says no to."""

    def __init__(self, refuse=lambda event_id: False):
        self.refuse = refuse
        self.ids: list[str] = []
        self.received: dict[str, Request] = {}
        super().__init__(self._answer)

    def _answer(self, request: Request) -> Answer:
        event_id = request.headers["ce-id"]
        self.ids.append(event_id)
        self.received[event_id] = request
        return Answer(503 if self.refuse(event_id) else 200)

    def stop(self) -> None:
        self.close()


@pytest.fixture(scope="module")
def kafka() -> Iterator[KafkaServer]:
    server = KafkaServer().start()
    yield server
    server.stop()


@pytest.fixture
def runtime(kafka):
    """`runtime(trigger, subscriber)`: a started KafkaRuntime, stopped after the test."""
    started: list[KafkaRuntime] = []

    def start(trigger: Trigger, subscriber: Subscriber) -> KafkaRuntime:
        dispatcher = Dispatcher({"sub": subscriber.url}, max_wait=0.001, timeout=10)
        wiring = Wiring(triggers=(trigger,))
        started.append(
            KafkaRuntime(kafka.bootstrap_servers, wiring, dispatcher, SESSION_TIMEOUT_MS).start()
        )
        return started[-1]

    yield start
    for one in started:
        one.stop()
    started.clear()
    gc.collect()  # their clients go now, not after the broker: no reconnect errors on stderr


def _trigger(event_type: str) -> Trigger:
    """Retry 0 and no dead-letter sink: a refused event is retried by the loop, for ever."""
    filters = ({"exact": {"type": event_type}},)
    return Trigger(f"t-{event_type}", filters, "sub", "Service", Delivery(retry=0), ordered=True)


def _append(runtime: KafkaRuntime, event_type: str, key: str | None = None, **extra: str) -> str:
    event_id = str(uuid.uuid4())
    attributes = {"id": event_id, "source": "/test", "type": event_type, **extra}
    attributes["partitionkey"] = key or event_id
    assert runtime.append(binary(CloudEvent(attributes, {"n": 1})))
    return event_id


def _wait(check) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, "still waiting after the deadline"
        time.sleep(0.05)


def _committed_behind(kafka: KafkaServer, trigger: Trigger) -> int:
    """How many records of the broker topic the Trigger's group has not committed yet."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"dueflow-broker-trigger-{trigger.name}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(BROKER_TOPIC, timeout=10).topics[BROKER_TOPIC].partitions
        committed = consumer.committed(
            [TopicPartition(BROKER_TOPIC, p) for p in partitions], timeout=10
        )
        return sum(
            consumer.get_watermark_offsets(tp, timeout=10)[1] - max(tp.offset, 0)
            for tp in committed
        )
    finally:
        consumer.close()


def test_delivered_events_are_committed_without_a_restart_and_not_delivered_again(kafka, runtime):
    event_type = f"test.delivered.{uuid.uuid4().hex[:8]}"
    trigger, sub = _trigger(event_type), Subscriber()
    first = runtime(trigger, sub)
    ids = [_append(first, event_type) for _ in range(5)]
    _wait(lambda: len(sub.ids) == 5)
    assert sorted(sub.ids) == sorted(ids)
    # committed in the background, every record of the topic (the other types' too): settled
    _wait(lambda: _committed_behind(kafka, trigger) == 0)
    first.stop()

    later = _append(runtime(trigger, sub), event_type)
    _wait(lambda: later in sub.ids)
    assert sorted(sub.ids) == sorted([*ids, later])  # nothing of the first five came again
    sub.stop()


def test_an_event_not_delivered_is_not_committed_and_comes_again_after_a_restart(kafka, runtime):
    event_type = f"test.refused.{uuid.uuid4().hex[:8]}"
    trigger, refusing = _trigger(event_type), Subscriber(refuse=lambda _id: True)
    first = runtime(trigger, refusing)
    event_id = _append(first, event_type)
    _wait(lambda: refusing.ids.count(event_id) >= 2)  # refused, retried
    assert _committed_behind(kafka, trigger) >= 1
    first.stop()  # a clean stop commits what was settled: not this one
    refusing.stop()

    accepting = Subscriber()
    runtime(trigger, accepting)
    _wait(lambda: event_id in accepting.ids)
    _wait(lambda: _committed_behind(kafka, trigger) == 0)
    accepting.stop()


def test_a_stuck_event_holds_up_its_own_partition_only(runtime):
    event_type = f"test.stuck.{uuid.uuid4().hex[:8]}"
    stuck_key = f"stuck-{uuid.uuid4()}"
    held: list[str] = []
    sub = Subscriber(refuse=lambda event_id: event_id == held[0])
    one = runtime(_trigger(event_type), sub)
    held.append(_append(one, event_type, key=stuck_key))
    _wait(lambda: held[0] in sub.ids)
    same_key = [_append(one, event_type, key=stuck_key) for _ in range(3)]
    others = [_append(one, event_type) for _ in range(12)]
    # with 10 partitions, some of the 12 keys land on another partition than the stuck one
    _wait(lambda: any(i in sub.ids for i in others))
    time.sleep(0.5)
    assert not any(i in sub.ids for i in same_key)  # ordered: they wait behind the stuck one
    sub.stop()


def test_a_trigger_filters_on_any_attribute_and_its_subscriber_gets_the_whole_event(runtime):
    """A lane matches a record's `ce_` headers and key before it builds the event: extension
    attributes and the partition key filter as they did on the built event, and what is
    delivered is the whole event."""
    event_type = f"test.filtered.{uuid.uuid4().hex[:8]}"
    key = f"task-{uuid.uuid4()}"
    filters = ({"exact": {"type": event_type, "tenant": "blue", "partitionkey": key}},)
    trigger = Trigger(f"t-{event_type}", filters, "sub", "Service", Delivery(retry=0))
    sub = Subscriber()
    one = runtime(trigger, sub)
    wanted = _append(one, event_type, key=key, tenant="blue")
    skipped = [
        _append(one, event_type, key=key, tenant="red"),
        _append(one, event_type, key=key),
        _append(one, event_type, tenant="blue"),  # another partition key
        _append(one, f"{event_type}.other", key=key, tenant="blue"),
    ]
    last = _append(one, event_type, key=key, tenant="blue")  # after the skipped, in order
    _wait(lambda: last in sub.ids)
    assert sub.ids == [wanted, last]
    assert not set(skipped) & set(sub.ids)
    headers = sub.received[wanted].lower_headers()
    assert headers["ce-type"] == event_type
    assert headers["ce-source"] == "/test"
    assert headers["ce-tenant"] == "blue"
    assert headers["ce-partitionkey"] == key
    assert sub.received[wanted].json() == {"n": 1}
    sub.stop()

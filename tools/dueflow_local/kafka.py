"""`make run` over Kafka (KAFKA_BOOTSTRAP_SERVERS): the Broker, the KafkaSource on `task-events`
and the KafkaSink to `task-updates`, with the CloudEvents Kafka protocol binding (binary mode,
`partitionkey` as the record key).

The Broker keeps its events in a topic and every Trigger reads it with a consumer group of its own,
committing an event's offset only after the subscriber (or the dead-letter sink) took it, so
nothing is lost when a subscriber, or the whole stack, stops midway. Each partition is delivered
in order, one event at a time, and the partitions side by side (Knative's ordered delivery).

Latency (bench scenario 2): a produce waits for its own acknowledgement only, never for a flush of
everything in flight; consumers fetch with a short long-poll, since Tansu answers an empty fetch
only after a fixed share of `fetch.wait.max.ms`, not when a record arrives; offsets are stored
after delivery and committed in the background instead of one synchronous commit per record.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time

from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_binary, to_binary
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from dueflow_local.broker import Dispatcher, Message, binary
from dueflow_local.manifests import KafkaSource, Trigger, Wiring

log = logging.getLogger("dueflow.local.kafka")
BROKER_TOPIC = "knative-broker-dueflow"
BROKER_PARTITIONS = 10
RAW_RECORD = "dev.knative.kafka.event"  # KafkaSource's type for a record that is no CloudEvent
POLL_TIMEOUT = 0.05  # seconds; a poll returns at once with a record, this bounds the wait to store
LANE_DEPTH = 100  # events fetched ahead per partition and Trigger before the partition is paused
PRODUCE_TIMEOUT = 10.0  # seconds an append or a KafkaSink waits for Kafka's acknowledgement
PRODUCER_SETTINGS = {
    # no loss, no reordering: every in-sync replica has the record before it counts as sent, and
    # the producer's own retries neither duplicate nor reorder it
    "enable.idempotence": True,
    "acks": "all",
    # each sender waits for its record's acknowledgement, so lingering only adds latency; records
    # sent while a request is in flight still travel together in the next one
    "linger.ms": 0,
    # after an outage the broker is found again within a second (librdkafka's default backs off
    # reconnects up to 10 s: the outbox's catch-up would wait for it)
    "reconnect.backoff.max.ms": 1000,
}
CONSUMER_SETTINGS = {
    "auto.offset.reset": "earliest",
    # a fetch returns as soon as there is one byte; and when there is none, Tansu holds it for
    # roughly half of fetch.wait.max.ms even if a record arrives meanwhile: 500 ms (the default)
    # added ~150 ms to every event (p50). 50 ms costs Tansu ~0.01-0.02 core per idle consumer.
    "fetch.min.bytes": 1,
    "fetch.wait.max.ms": 50,
    # at-least-once without a round trip per record: a loop stores an offset only once the event
    # was delivered (or dead-lettered, or filtered out) and librdkafka commits what is stored
    # every second, on a rebalance and on close. A crash redelivers at most that last second.
    "enable.auto.commit": True,
    "enable.auto.offset.store": False,
    "auto.commit.interval.ms": 1000,
    "reconnect.backoff.max.ms": 1000,  # as the producer's: back within a second of Kafka
}


class KafkaRuntime:
    def __init__(
        self, bootstrap: str, wiring: Wiring, dispatcher: Dispatcher, session_timeout_ms: int = 6000
    ):
        self.bootstrap = bootstrap
        self.wiring = wiring
        self.dispatcher = dispatcher
        self.session_timeout_ms = session_timeout_ms
        self.producer = Producer({"bootstrap.servers": bootstrap, **PRODUCER_SETTINGS})
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        # serves the producer's delivery reports, each of which wakes the sender waiting for it
        self._reports_stop = threading.Event()
        self._reports = threading.Thread(target=self._serve_delivery_reports, daemon=True)
        self._reports.start()

    # -- the Broker ------------------------------------------------------------------------
    def append(self, message: Message) -> bool:
        """The ingress: True once Kafka has the event (then the sender may forget it)."""
        try:
            self._produce(BROKER_TOPIC, message)
        except KafkaException:
            log.exception("cannot append to the broker topic")
            return False
        return True

    def sink(self, topic: str):
        """A KafkaSink: produces each event to `topic`."""
        return lambda headers, body: self._produce(topic, (headers, body))

    def start(self) -> KafkaRuntime:
        topics = {
            BROKER_TOPIC,
            *(t for s in self.wiring.kafka_sources for t in s.topics),
            *(s.topic for s in self.wiring.kafka_sinks.values()),
        }
        self._create_topics(topics)
        for trigger in self.wiring.triggers:
            self._spawn(self._dispatch_loop, trigger)
        for source in self.wiring.kafka_sources:
            self._spawn(self._source_loop, source)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self._reports_stop.set()
        self._reports.join(timeout=5)
        self.producer.flush(5)

    def _dispatch_loop(self, trigger: Trigger) -> None:
        """One Trigger: a lane per partition delivers that partition's events in order, one at a
        time, as Knative's ordered delivery does, while the other partitions' lanes go on. Only
        this thread touches the consumer: with confluent-kafka 2.16, a store_offsets from another
        thread waits until this one stops polling."""
        lanes: dict[int, _Lane] = {}
        settled: queue.SimpleQueue = queue.SimpleQueue()  # records the lanes are done with

        def revoked(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            _store_offsets(consumer, settled)  # committed with the revocation: fewer repeats
            for partition in partitions:
                if (lane := lanes.get(partition.partition)) is not None:
                    lane.drop()

        consumer = self._consumer(
            f"dueflow-broker-trigger-{trigger.name}", [BROKER_TOPIC], on_revoke=revoked
        )
        try:
            while not self.stop_event.is_set():
                _store_offsets(consumer, settled)
                for lane in lanes.values():
                    lane.throttle(consumer)
                record = consumer.poll(POLL_TIMEOUT)
                if record is None or record.error():
                    continue
                if (lane := lanes.get(record.partition())) is None:
                    lane = lanes[record.partition()] = _Lane(self, trigger, record, settled)
                lane.put(record)
        finally:
            for lane in lanes.values():
                lane.close()
            deadline = time.monotonic() + 10  # a lane may be in the middle of a delivery
            for lane in lanes.values():
                lane.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            _store_offsets(consumer, settled)
            consumer.close()  # commits the offsets stored

    def _source_loop(self, source: KafkaSource) -> None:
        """KafkaSource: records of its topics into the Broker, as CloudEvents."""
        consumer = self._consumer(source.consumer_group, list(source.topics))
        try:
            while not self.stop_event.is_set():
                record = consumer.poll(0.2)
                if record is None or record.error():
                    continue
                message = _message(record) if _is_cloudevent(record) else _raw(source, record)
                while not self.append(message):
                    if self.stop_event.wait(1.0):
                        return
                consumer.store_offsets(record)
        finally:
            consumer.close()

    def _produce(self, topic: str, message: Message) -> None:
        headers, body = message
        attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        attributes["datacontenttype"] = headers.get("content-type", "application/json")
        event = CloudEvent(attributes, None)
        kafka = to_binary(event, key_mapper=lambda e: e.get("partitionkey"))
        record_headers = dict(kafka.headers)  # ce_* and content-type
        acknowledged = threading.Event()
        errors: list = []

        def report(err, _msg) -> None:
            if err is not None:
                errors.append(err)
            acknowledged.set()

        self.producer.produce(
            topic, value=body, key=kafka.key, headers=record_headers, on_delivery=report
        )
        # this record's acknowledgement only: flush() would also wait for every other sender's
        if not acknowledged.wait(PRODUCE_TIMEOUT) or errors:
            raise KafkaException(errors[0] if errors else "produce timed out")

    def _serve_delivery_reports(self) -> None:
        while not self._reports_stop.is_set():
            self.producer.poll(0.1)  # returns as soon as a report is served

    def _consumer(self, group: str, topics: list[str], **callbacks) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                **CONSUMER_SETTINGS,
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": max(100, self.session_timeout_ms // 6),
            }
        )
        consumer.subscribe(topics, **callbacks)
        return consumer

    def _create_topics(self, topics: set[str]) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=_partitions(t)) for t in sorted(topics)]
        )
        for topic, future in futures.items():
            try:
                future.result(timeout=15)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
            log.info("topic ready", extra={"topic": topic})

    def _spawn(self, target, arg) -> None:
        thread = threading.Thread(target=target, args=(arg,), daemon=True)
        thread.start()
        self.threads.append(thread)


class _Lane:
    """One partition of a Trigger's consumer: its events in offset order, each delivered (or
    dead-lettered) before the next and then handed back as settled, for its offset to be
    stored. The consumer's loop pauses the partition while LANE_DEPTH events wait here."""

    def __init__(self, runtime: KafkaRuntime, trigger: Trigger, record, settled: queue.SimpleQueue):
        self.runtime = runtime
        self.trigger = trigger
        self.partition = TopicPartition(record.topic(), record.partition())
        self.settled = settled
        self.waiting: queue.SimpleQueue = queue.SimpleQueue()
        self.paused = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def put(self, record) -> None:
        self.waiting.put(record)

    def close(self) -> None:
        self.waiting.put(None)

    def drop(self) -> None:
        """The partition was revoked: its next owner fetches these again from the committed
        offset (and a pause ends with the assignment)."""
        with contextlib.suppress(queue.Empty):
            while self.waiting.get_nowait() is not None:
                pass
        self.paused = False

    def throttle(self, consumer: Consumer) -> None:
        depth = self.waiting.qsize()
        if not self.paused and depth >= LANE_DEPTH:
            consumer.pause([self.partition])
            self.paused = True
        elif self.paused and depth <= LANE_DEPTH // 2:
            consumer.resume([self.partition])
            self.paused = False

    def _run(self) -> None:
        stop, dispatcher = self.runtime.stop_event, self.runtime.dispatcher
        while (record := self.waiting.get()) is not None and not stop.is_set():
            if self.trigger.matches(_attributes(record)):
                message = _message(record)
                while not dispatcher.deliver(self.trigger, message, stop):
                    if stop.wait(1.0):
                        return  # not settled, so not committed: redelivered after a restart
            self.settled.put(record)


def _store_offsets(consumer: Consumer, settled: queue.SimpleQueue) -> None:
    """Stores the offsets after the settled records; librdkafka commits them in the background."""
    latest: dict[int, object] = {}
    with contextlib.suppress(queue.Empty):
        while True:
            record = settled.get_nowait()
            latest[record.partition()] = record  # a lane settles its records in offset order
    for record in latest.values():
        try:
            consumer.store_offsets(record)
        except KafkaException as exc:  # revoked meanwhile: its next owner delivers it again
            log.info("offset not stored", extra={"partition": record.partition(), "error": exc})


def _partitions(topic: str) -> int:
    """The Broker's topic gets Knative's default.topic.partitions (10, as the chart's values.yaml
    sets it): each Trigger delivers that many partitions side by side, in order within each."""
    return BROKER_PARTITIONS if topic == BROKER_TOPIC else 3


def _is_cloudevent(record) -> bool:
    return any(k == "ce_specversion" for k, _ in record.headers() or [])


def _attributes(record) -> dict[str, str]:
    """The CloudEvent attributes a Trigger filters on, read from the record's `ce_` headers
    and key as `_message` sets them, without building the event: every Trigger's consumer
    reads every record of the Broker's topic and most match none of its filters, so the two
    CloudEvents conversions are made only for a record that is delivered."""
    attributes = {
        name[3:]: (value or b"").decode()
        for name, value in record.headers() or []
        if name.startswith("ce_")
    }
    if (key := record.key()) is not None:
        attributes["partitionkey"] = key.decode() if isinstance(key, bytes) else key
    return attributes


def _message(record) -> Message:
    """A binary-mode Kafka record back into binary-mode HTTP headers and body."""
    headers = {k: v for k, v in record.headers() or []}
    key = record.key()
    event = from_binary(
        KafkaMessage(headers=headers, key=key, value=record.value() or b""),
        data_unmarshaller=lambda body: body,
    )
    if key is not None:
        event["partitionkey"] = key.decode() if isinstance(key, bytes) else key
    message_headers, body = binary(event)
    content_type = headers.get("content-type")
    if content_type is not None:
        message_headers["content-type"] = content_type.decode()
    return message_headers, event.data if isinstance(event.data, bytes) else body


def _raw(source: KafkaSource, record) -> Message:
    """What Knative's KafkaSource makes of a record that is no CloudEvent."""
    partition, offset = record.partition(), record.offset()
    attributes = {
        "type": RAW_RECORD,
        "source": f"/apis/v1/namespaces/local/kafkasources/{source.name}#{record.topic()}",
        "id": f"partition:{partition}/offset:{offset}",
        "subject": f"partition:{partition}#{offset}",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if (key := record.key()) is not None:
        attributes["key"] = key.decode("utf-8", "replace")
    headers, _ = binary(CloudEvent(attributes, None))
    headers["content-type"] = "application/json"
    return headers, record.value() or b""

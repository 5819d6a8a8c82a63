"""`make run` over Kafka (KAFKA_BOOTSTRAP_SERVERS): the Broker, the KafkaSource on `task-events`
and the KafkaSink to `task-updates`, with the CloudEvents Kafka protocol binding (binary mode,
`partitionkey` as the record key).

The Broker keeps its events in a topic and every Trigger reads it with a consumer group of its own,
committing an event's offset only after the subscriber (or the dead-letter sink) took it, so
nothing is lost when a subscriber, or the whole stack, stops midway.
"""

from __future__ import annotations

import logging
import threading
import time

from cloudevents.http import CloudEvent
from cloudevents.kafka import KafkaMessage, from_binary, to_binary
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from dueflow.local.broker import Dispatcher, Message, attributes_of, binary
from dueflow.local.manifests import KafkaSource, Trigger, Wiring

log = logging.getLogger("dueflow.local.kafka")
BROKER_TOPIC = "knative-broker-dueflow"
RAW_RECORD = "dev.knative.kafka.event"  # KafkaSource's type for a record that is no CloudEvent


class KafkaRuntime:
    def __init__(
        self, bootstrap: str, wiring: Wiring, dispatcher: Dispatcher, session_timeout_ms: int = 6000
    ):
        self.bootstrap = bootstrap
        self.wiring = wiring
        self.dispatcher = dispatcher
        self.session_timeout_ms = session_timeout_ms
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 1,
            }
        )
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

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
        self.producer.flush(5)

    def _dispatch_loop(self, trigger: Trigger) -> None:
        consumer = self._consumer(f"dueflow-broker-trigger-{trigger.name}", [BROKER_TOPIC])
        try:
            while not self.stop_event.is_set():
                record = consumer.poll(0.2)
                if record is None or record.error():
                    continue
                message = _message(record)
                if trigger.matches(attributes_of(message)):
                    # ordered per partition: the next record waits until this one is settled
                    while not self.dispatcher.deliver(trigger, message, self.stop_event):
                        if self.stop_event.wait(1.0):
                            return  # not committed: redelivered after a restart
                consumer.commit(record, asynchronous=False)
        finally:
            consumer.close()

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
                consumer.commit(record, asynchronous=False)
        finally:
            consumer.close()

    def _produce(self, topic: str, message: Message) -> None:
        headers, body = message
        attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        attributes["datacontenttype"] = headers.get("content-type", "application/json")
        event = CloudEvent(attributes, None)
        kafka = to_binary(event, key_mapper=lambda e: e.get("partitionkey"))
        record_headers = dict(kafka.headers)  # ce_* and content-type
        errors: list = []
        self.producer.produce(
            topic,
            value=body,
            key=kafka.key,
            headers=record_headers,
            on_delivery=lambda err, _msg: errors.append(err) if err else None,
        )
        if self.producer.flush(10) or errors:
            raise KafkaException(errors[0] if errors else "produce timed out")

    def _consumer(self, group: str, topics: list[str]) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": self.session_timeout_ms,
                "heartbeat.interval.ms": max(100, self.session_timeout_ms // 6),
            }
        )
        consumer.subscribe(topics)
        return consumer

    def _create_topics(self, topics: set[str]) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(t, num_partitions=3) for t in sorted(topics)])
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


def _is_cloudevent(record) -> bool:
    return any(k == "ce_specversion" for k, _ in record.headers() or [])


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

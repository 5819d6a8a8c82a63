"""The local Broker (dueflow_local.broker) against real HTTP servers on 127.0.0.1.

Subscribers answer scripted statuses and record what they were sent. The Dispatcher retries as
Knative does (5xx and 404/408/409/429; other 4xx never), waits its backoff (capped by `max_wait`,
tiny here: no test measures time) and hands what it gave up on to the dead-letter sink with the
knativeerror* extensions. The LocalBroker ingress routes by the Triggers' filters. The last
tests run the whole loop with the real deadletter function and `dueflow.dlq replay`.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import types
import uuid

import pytest
import requests
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from functions_framework import create_app
from werkzeug.serving import make_server

from dueflow import dlq
from dueflow_local import broker as broker_module
from dueflow_local.broker import Dispatcher, LocalBroker, binary
from dueflow_local.manifests import Delivery, Trigger, Wiring
from tests.conftest import ROOT
from tests.support.http import Answer, RecordingServer, Request

TINY = 0.001  # max_wait: every backoff capped to a millisecond
CREATED = "dev.dueflow.task.created"
PROBLEM = {"type": "urn:dueflow:problem:validation", "status": 400, "detail": "bad event"}


class Subscriber(RecordingServer):
    """A subscriber answering the scripted statuses in order, then `then` (default 200)."""

    def __init__(self, *script: int, then: int = 200):
        self.script = list(script)
        self.then = then
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        super().__init__(self._answer)

    def _answer(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append((request.lower_headers(), request.body))
            status = self.script.pop(0) if self.script else self.then
        answer = b"" if status < 300 else json.dumps({**PROBLEM, "status": status}).encode()
        return Answer(status, answer, {"Content-Type": "application/problem+json"})

    @property
    def count(self) -> int:
        return len(self.requests)

    def stop(self) -> None:
        self.close()


@pytest.fixture
def subscriber():
    """`subscriber(*statuses, then=200)`: a started Subscriber, stopped after the test."""
    started: list[Subscriber] = []

    def start(*script: int, then: int = 200) -> Subscriber:
        sub = Subscriber(*script, then=then)
        started.append(sub)
        return sub

    yield start
    for sub in started:
        sub.stop()


def closed_port_url() -> str:
    """A URL nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def event(event_type: str = CREATED, data: dict | None = None, **extra) -> CloudEvent:
    attributes = {
        "id": str(uuid.uuid4()),
        "source": "/dueflow/tasks",
        "type": event_type,
        "datacontenttype": "application/json",
        **extra,
    }
    return CloudEvent(attributes, data if data is not None else {"task": {"title": "x"}})


def trigger(
    subscriber: str = "sub",
    *,
    retry: int = 3,
    dead_letter: str | None = "deadletter",
    filters: tuple[dict, ...] = ({"exact": {"type": CREATED}},),
    policy: str = "exponential",
    delay: float = 0.2,
    name: str = "t",
) -> Trigger:
    return Trigger(
        name, filters, subscriber, "Service", Delivery(retry, policy, delay, dead_letter)
    )


def dispatcher(**endpoints: str) -> Dispatcher:
    return Dispatcher(endpoints, max_wait=TINY, timeout=10)


# =============================================================================================
# Dispatcher.deliver: retries
# =============================================================================================


def test_503_503_200_is_delivered_on_the_third_attempt(subscriber):
    sub, dead = subscriber(503, 503), subscriber()
    message = binary(event())

    assert dispatcher(sub=sub.url, deadletter=dead.url).deliver(trigger(), message)

    assert sub.count == 3 and dead.count == 0
    assert all(r == sub.requests[0] for r in sub.requests)  # the same event each time
    headers, body = sub.requests[0]
    assert headers["ce-id"] == message[0]["ce-id"] and body == message[1]


@pytest.mark.parametrize("status", [404, 408, 409, 429, 500, 502, 504])
def test_retryable_answers_are_retried(subscriber, status):
    sub, dead = subscriber(status), subscriber()

    assert dispatcher(sub=sub.url, deadletter=dead.url).deliver(trigger(), binary(event()))

    assert sub.count == 2 and dead.count == 0


@pytest.mark.parametrize("status", [400, 401, 403, 405, 410, 413, 415, 422])
def test_other_4xx_is_never_retried_and_dead_lettered_at_once(subscriber, status):
    sub, dead = subscriber(then=status), subscriber()
    headers, body = binary(event())

    assert dispatcher(sub=sub.url, deadletter=dead.url).deliver(trigger(), (headers, body))

    assert sub.count == 1
    [(got, got_body)] = dead.requests
    assert got["ce-knativeerrorcode"] == str(status)
    assert got["ce-knativeerrordest"] == sub.url
    reason = json.loads(base64.b64decode(got["ce-knativeerrordata"]))
    assert reason == {**PROBLEM, "status": status}
    # the original event, untouched, besides the three extensions
    assert got_body == body
    for name, value in headers.items():
        assert got[name] == value


def test_a_subscriber_that_always_fails_gets_retry_plus_one_attempts(subscriber):
    sub, dead = subscriber(then=503), subscriber()

    assert dispatcher(sub=sub.url, deadletter=dead.url).deliver(trigger(retry=4), binary(event()))

    assert sub.count == 5
    [(got, _)] = dead.requests
    assert got["ce-knativeerrorcode"] == "503"
    assert got["ce-knativeerrordest"] == sub.url
    assert json.loads(base64.b64decode(got["ce-knativeerrordata"]))["status"] == 503


def test_retry_zero_means_one_attempt(subscriber):
    sub, dead = subscriber(then=500), subscriber()

    assert dispatcher(sub=sub.url, deadletter=dead.url).deliver(trigger(retry=0), binary(event()))

    assert (sub.count, dead.count) == (1, 1)


def test_an_unreachable_subscriber_is_retried_then_dead_lettered(subscriber):
    dead = subscriber()
    url = closed_port_url()

    assert dispatcher(sub=url, deadletter=dead.url).deliver(trigger(retry=2), binary(event()))

    [(got, _)] = dead.requests
    assert got["ce-knativeerrorcode"] == "503" and got["ce-knativeerrordest"] == url
    assert base64.b64decode(got["ce-knativeerrordata"])  # the connection error, for the record


def test_without_a_dead_letter_sink_a_failed_delivery_returns_false(subscriber):
    sub = subscriber(then=503)

    assert not dispatcher(sub=sub.url).deliver(trigger(retry=2, dead_letter=None), binary(event()))

    assert sub.count == 3


def test_a_bad_event_without_a_dead_letter_sink_returns_false_at_once(subscriber):
    sub = subscriber(then=422)

    assert not dispatcher(sub=sub.url).deliver(trigger(dead_letter=None), binary(event()))

    assert sub.count == 1


def test_a_dead_letter_sink_that_is_down_returns_false(subscriber):
    sub = subscriber(then=400)

    delivered = dispatcher(sub=sub.url, deadletter=closed_port_url()).deliver(
        trigger(), binary(event())
    )

    assert not delivered and sub.count == 1


def test_a_dead_letter_sink_that_fails_returns_false(subscriber):
    sub, dead = subscriber(then=503), subscriber(then=500)

    assert not dispatcher(sub=sub.url, deadletter=dead.url).deliver(trigger(), binary(event()))

    assert dead.count == 1  # the sink's own failure is not retried


def test_a_dead_letter_sink_without_an_endpoint_returns_false(subscriber):
    sub = subscriber(then=400)

    assert not dispatcher(sub=sub.url).deliver(trigger(), binary(event()))


def test_a_stop_request_ends_the_retries(subscriber):
    sub, dead = subscriber(then=503), subscriber()
    stop = threading.Event()
    stop.set()

    assert not dispatcher(sub=sub.url, deadletter=dead.url).deliver(
        trigger(retry=5), binary(event()), stop
    )

    assert (sub.count, dead.count) == (1, 0)


def test_a_kafka_sink_subscriber_is_retried_while_it_raises(subscriber):
    dead = subscriber()
    produced: list[tuple[dict, bytes]] = []
    failures = [RuntimeError("kafka down"), RuntimeError("still down")]

    def sink(headers: dict, body: bytes) -> None:
        if failures:
            raise failures.pop(0)
        produced.append((headers, body))

    updates = Trigger("u", (), "task-updates", "KafkaSink", Delivery(3, dead_letter="deadletter"))
    dispatch = Dispatcher({"deadletter": dead.url}, {"task-updates": sink}, max_wait=TINY)
    message = binary(event())

    assert dispatch.deliver(updates, message)

    assert produced == [message] and dead.count == 0


# =============================================================================================
# backoff
# =============================================================================================


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("exponential", [0.5, 1.0, 2.0, 4.0, 8.0]),  # delay * 2^(n-1)
        ("linear", [0.5, 1.0, 1.5, 2.0, 2.5]),  # delay * n
    ],
)
def test_delivery_delay_follows_knative(policy, expected):
    spec = Delivery(retry=5, backoff_policy=policy, backoff_delay=0.5)

    assert [spec.delay(n) for n in range(1, 6)] == pytest.approx(expected)


def test_the_default_backoff_policy_is_exponential():
    assert Delivery(backoff_delay=0.1).delay(3) == pytest.approx(0.4)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The Dispatcher's waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(broker_module, "time", types.SimpleNamespace(sleep=recorded.append))
    return recorded


@pytest.mark.parametrize(
    ("policy", "max_wait", "expected"),
    [
        ("exponential", None, [0.25, 0.5, 1.0, 2.0]),
        ("exponential", 0.6, [0.25, 0.5, 0.6, 0.6]),
        ("linear", None, [0.25, 0.5, 0.75, 1.0]),
    ],
)
def test_the_dispatcher_waits_the_backoff_between_attempts(
    subscriber, waits, policy, max_wait, expected
):
    sub = subscriber(then=503)
    dispatch = Dispatcher({"sub": sub.url}, max_wait=max_wait)
    spec = trigger(retry=4, dead_letter=None, policy=policy, delay=0.25)

    assert not dispatch.deliver(spec, binary(event()))

    assert waits == pytest.approx(expected)
    assert sub.count == 5


def test_no_wait_before_the_first_attempt_nor_after_a_success(subscriber, waits):
    sub = subscriber(503)

    assert Dispatcher({"sub": sub.url}).deliver(trigger(delay=0.3), binary(event()))

    assert waits == pytest.approx([0.3])


# =============================================================================================
# LocalBroker: the HTTP ingress
# =============================================================================================


@pytest.fixture
def broker():
    """`broker(wiring, dispatcher)`: a started LocalBroker, stopped after the test."""
    started: list[LocalBroker] = []

    def start(wiring: Wiring, dispatch: Dispatcher) -> LocalBroker:
        instance = LocalBroker(wiring, dispatch).start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


def post(url: str, cloud_event: CloudEvent, mode: str) -> requests.Response:
    headers, body = to_binary(cloud_event) if mode == "binary" else to_structured(cloud_event)
    return requests.post(url, headers=headers, data=body, timeout=30)


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_the_broker_fans_an_event_out_to_every_matching_trigger(subscriber, broker, mode):
    exact, prefix, other = subscriber(), subscriber(), subscriber()
    wiring = Wiring(
        (
            trigger("exact", name="by-type"),
            trigger(
                "prefix", name="by-prefix", filters=({"prefix": {"type": "dev.dueflow.task."}},)
            ),
            trigger(
                "other", name="other", filters=({"exact": {"type": "dev.dueflow.reminder.due"}},)
            ),
        )
    )
    ingress = broker(wiring, dispatcher(exact=exact.url, prefix=prefix.url, other=other.url))
    sent = event(data={"task": {"title": "Hello"}}, subject="t-1", partitionkey="t-1")

    response = post(ingress.url, sent, mode)

    assert response.status_code == 202
    assert other.count == 0
    for sub in (exact, prefix):
        [(headers, body)] = sub.requests
        # binary mode, whatever mode the sender used
        assert headers["content-type"] == "application/json"
        assert headers["ce-specversion"] == "1.0"
        assert headers["ce-id"] == sent["id"]
        assert headers["ce-type"] == CREATED
        assert headers["ce-source"] == "/dueflow/tasks"
        assert headers["ce-subject"] == "t-1" and headers["ce-partitionkey"] == "t-1"
        assert json.loads(body) == {"task": {"title": "Hello"}}


def test_an_event_no_trigger_matches_is_accepted_and_goes_nowhere(subscriber, broker):
    sub = subscriber()
    ingress = broker(Wiring((trigger(),)), dispatcher(sub=sub.url))

    assert post(ingress.url, event("dev.dueflow.other"), "binary").status_code == 202
    assert sub.count == 0


def test_a_subscriber_that_keeps_failing_without_dead_letter_is_503(subscriber, broker):
    sub, healthy = subscriber(then=503), subscriber()
    wiring = Wiring(
        (trigger(retry=2, dead_letter=None), trigger("healthy", name="other", dead_letter=None))
    )
    ingress = broker(wiring, dispatcher(sub=sub.url, healthy=healthy.url))

    response = post(ingress.url, event(), "structured")

    assert response.status_code == 503  # the sender keeps the event and retries it
    assert sub.count == 3 and healthy.count == 1


def test_a_dead_lettered_event_counts_as_accepted(subscriber, broker):
    sub, dead = subscriber(then=422), subscriber()
    ingress = broker(Wiring((trigger(),)), dispatcher(sub=sub.url, deadletter=dead.url))

    assert post(ingress.url, event(), "binary").status_code == 202
    assert (sub.count, dead.count) == (1, 1)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Content-Type": "application/json"}, b'{"title": "not an event"}'),
        ({"Content-Type": "application/cloudevents+json"}, b'{"specversion": "1.0"'),
        ({"ce-specversion": "1.0", "ce-type": CREATED}, b"{}"),  # no ce-id, no ce-source
    ],
    ids=["plain-json", "broken-structured", "binary-missing-attributes"],
)
def test_a_post_that_is_not_a_cloudevent_is_400(subscriber, broker, headers, body):
    sub = subscriber()
    ingress = broker(Wiring((trigger(filters=()),)), dispatcher(sub=sub.url))

    response = requests.post(ingress.url, headers=headers, data=body, timeout=30)

    assert response.status_code == 400
    assert sub.count == 0


# =============================================================================================
# The whole loop: subscriber fails -> retries -> deadletter function -> dlq replay
# =============================================================================================


@pytest.fixture
def deadletter_url(function_env):
    """The deadletter function (functions-framework's app) served by werkzeug on 127.0.0.1."""
    app = create_app("deadletter", str(ROOT / "functions" / "deadletter" / "main.py"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)


def test_a_dead_lettered_event_is_replayed_to_the_healthy_subscriber(
    subscriber, broker, deadletter_url, capsys
):
    sub = subscriber(503, 503, 503)  # down for the three attempts, healthy afterwards
    ingress = broker(
        Wiring((trigger(retry=2),)), dispatcher(sub=sub.url, deadletter=deadletter_url)
    )
    sent = event(data={"task": {"title": "Replay me"}})

    assert post(ingress.url, sent, "structured").status_code == 202
    assert sub.count == 3

    assert dlq.main(["list"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert f"{CREATED}  /dueflow/tasks {sent['id']}" in line
    assert f"-> {sub.url} answered 503" in line and '"status": 503' in line

    os.environ["DUEFLOW_BROKER_URL"] = ingress.url
    assert dlq.main(["replay"]) == 0

    assert sub.count == 4
    headers, body = sub.requests[-1]
    assert headers["ce-id"] == sent["id"] and headers["ce-type"] == CREATED
    assert not [k for k in headers if "knativeerror" in k]
    assert json.loads(body) == {"task": {"title": "Replay me"}}
    capsys.readouterr()
    assert dlq.main(["list"]) == 0
    assert capsys.readouterr().out == ""
    assert dlq.main(["list", "--all"]) == 0
    assert " replayed " in capsys.readouterr().out


def test_a_replayed_event_that_fails_again_is_listed_again(
    subscriber, broker, deadletter_url, capsys
):
    sub = subscriber(then=503)  # never recovers
    ingress = broker(
        Wiring((trigger(retry=1),)), dispatcher(sub=sub.url, deadletter=deadletter_url)
    )
    sent = event()
    assert post(ingress.url, sent, "binary").status_code == 202
    os.environ["DUEFLOW_BROKER_URL"] = ingress.url

    assert dlq.main(["replay"]) == 0
    assert sub.count == 4  # it did fail again, and was dead-lettered again

    capsys.readouterr()
    assert dlq.main(["list"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert sent["id"] in line

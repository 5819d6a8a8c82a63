"""`python -m bench.relay`: CPU per event of the outbox relay and of the local broker, PostgreSQL.

    .venv/bin/python -m bench.relay                     # 2,000 events, committed at 300/s
    .venv/bin/python -m bench.relay --rate 0 --events 5000    # a backlog, drained at once

An A/B tool for the write path's second half, steadier than creates/s on a shared machine. A
writer process commits one `task.created`-sized event per transaction into the outbox at `--rate`
per second (as the API's creates do; 0: all before the relay starts), the relay runs in this
process as a function runs it (`OutboxRelay` with its `HttpSink`, woken by the outbox's NOTIFY),
and the local broker (`dueflow_local.broker`, routing by eventing/, as `make run` without Kafka
starts it) runs in a process of its own. Prints the CPU per delivered event of this process (the
relay), of the broker process and of PostgreSQL (its server's processes), and the passes the
relay made. To compare two commits, run it in each checkout, back to back.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
import uuid
from datetime import UTC, datetime

from bench import cpu, stack

TASK = {  # a task as the API writes it into its task.created event
    "id": "0b6f1c1e-4a5d-4a8e-9a51-3f0d8c6b2e71",
    "title": "Water the plants",
    "description": "Balcony and kitchen",
    "status": "open",
    "priority": "medium",
    "tags": ["home", "garden"],
    "due_at": "2026-11-23T17:00:00Z",
    "timezone": "Europe/Berlin",
    "recurrence": None,
    "reminders": [],
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=300.0, help="commits per second; 0: backlog")
    parser.add_argument("--concurrency", type=int, default=8, help="DUEFLOW_OUTBOX_CONCURRENCY")
    args = parser.parse_args()
    infra = stack.Infra()
    try:
        print(measure(infra, args))
    finally:
        infra.close()


def measure(infra: stack.Infra, args) -> str:
    from dueflow.adapters.db.engine import make_engine
    from dueflow.adapters.http_sink import HttpSink
    from dueflow.adapters.outbox_relay import OutboxRelay

    url = infra.database("postgresql", "relay")
    broker_url = multiprocessing.Queue()
    broker = multiprocessing.Process(target=_broker, args=(broker_url,), daemon=True)
    broker.start()
    sink_url = broker_url.get(timeout=30)
    engine = make_engine(url)
    relay = OutboxRelay(
        engine, HttpSink(sink_url, 10.0), poll_interval=1.0, concurrency=args.concurrency
    )
    passes = _count_passes(relay)
    writer = multiprocessing.Process(target=_write, args=(url, args.events, args.rate))
    if args.rate <= 0:
        writer.start()
        writer.join()
    before = _cpu(broker.pid)
    relay.start()
    if args.rate > 0:
        writer.start()
    t0 = time.monotonic()
    left = args.events
    while (left or writer.is_alive()) and time.monotonic() - t0 < 300:
        time.sleep(0.1)
        left = stack.count(engine, "SELECT count(*) FROM outbox")
    seconds = time.monotonic() - t0
    after = _cpu(broker.pid)
    relay.stop()
    writer.join()
    broker.terminate()
    engine.dispose()
    done = args.events - left
    per = {k: (after[k] - before[k]) / max(done, 1) * 1000 for k in before}
    return (
        f"{done} events in {seconds:.2f} s, {passes[0]} passes; CPU ms per event: "
        f"relay {per['relay']:.3f}, broker {per['broker']:.3f}, postgresql {per['postgresql']:.3f}"
    )


def _count_passes(relay) -> list[int]:
    passes = [0]
    run_once = relay.run_once

    def counted() -> int:
        passes[0] += 1
        return run_once()

    relay.run_once = counted
    return passes


def _cpu(broker_pid: int) -> dict[str, float]:
    snap = cpu.snapshot()
    relay = time.process_time()  # this process's own: not its reaped children's (the writer)
    pg = sum(c for _, (name, c) in snap.items() if name == "postgresql")
    return {"relay": relay, "broker": snap.get(broker_pid, ("", 0.0))[1], "postgresql": pg}


def _broker(out) -> None:
    from dueflow_local import manifests
    from dueflow_local.broker import Dispatcher, LocalBroker

    broker = LocalBroker(manifests.load(stack.ROOT / "eventing"), Dispatcher({}, max_wait=1.0))
    out.put(broker.start().url)
    while True:
        time.sleep(3600)


def _write(url: str, events: int, rate: float) -> None:
    """One event per transaction, through the outbox's own door (as a create writes it)."""
    from dueflow.adapters.db.engine import make_engine
    from dueflow.adapters.db.outbox_store import Outbox
    from dueflow.domain.events import TASK_CREATED, TASKS_SOURCE, envelope

    engine = make_engine(url)
    start = time.monotonic()
    for i in range(events):
        if rate > 0 and (wait := start + i / rate - time.monotonic()) > 0:
            time.sleep(wait)
        task = dict(TASK, id=str(uuid.uuid4()))
        event = envelope(
            TASK_CREATED,
            TASKS_SOURCE,
            task["id"],
            datetime.now(UTC),
            {"user_id": "relay-user", "task": task},
        )
        with engine.begin() as conn:
            Outbox(conn).add(event, datetime.now(UTC))
    engine.dispose()


if __name__ == "__main__":
    main()

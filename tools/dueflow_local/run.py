"""`make run`: the whole of dueflow on one machine, on embedded defaults, in the foreground.

Every Knative Service of knative/100-*.yaml runs in its own process exactly as its container
starts it (functions-framework serving its FUNCTION_TARGET, or the container's `command`), on its
own port; a local broker routes events by the Triggers in eventing/ (each process's outbox relay
posts to it through K_SINK, as Knative's SinkBinding would arrange), and a ticker stands in for
the PingSource every DUEFLOW_REMINDER_TICK seconds. The front door on PORT (frontdoor.py) routes
the public paths to the functions by the HTTPRoute in gateway/, one origin as in the cluster; it
opens only once every function is ready. A function process that dies is started again after a
backoff, as Knative restarts a pod, while the others serve on (the front door answers 502 for it
meanwhile); Ctrl-C or SIGTERM stops everything, and so does a crash loop.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

from dueflow import config
from dueflow.adapters.db.engine import make_engine, migrate
from dueflow_local import manifests
from dueflow_local.broker import Dispatcher, LocalBroker
from dueflow_local.frontdoor import FrontDoor

ROOT = Path(__file__).resolve().parents[2]
BROKER_URL_FILE = ROOT / ".dueflow" / "broker-url"  # for `make dlq-replay` against a local run
# Seconds a function has to answer /readyz: the assistant imports the MCP SDK (seconds on a quiet
# machine, far more on a busy one).
READY_WITHIN = 120


def main() -> int:
    _embedded_defaults()
    config.auth()  # fail early on an unusable auth configuration
    engine = make_engine(config.database_url())
    migrate(engine)
    engine.dispose()
    os.environ["DUEFLOW_AUTO_MIGRATE"] = "0"  # done above, once for every process

    port = int(os.environ["PORT"])
    # the MCP endpoint's public URL is the front door's, not the assistant's own port
    os.environ.setdefault("DUEFLOW_MCP_RESOURCE_URL", f"http://127.0.0.1:{port}/mcp")
    functions = {f.name: f for f in manifests.functions(ROOT / "knative") if _in_tree(f.name)}
    ports = {name: _own_port(name) or _free_port() for name in functions}
    endpoints = {name: f"http://127.0.0.1:{p}" for name, p in ports.items()}
    metrics = _metrics_ports(functions)
    wiring = manifests.load(ROOT / "eventing")
    kafka = None
    if (bootstrap := config.kafka_bootstrap_servers()) is not None:
        from dueflow_local.kafka import KafkaRuntime  # confluent-kafka only when asked for

        dispatcher = Dispatcher(endpoints)
        kafka = KafkaRuntime(bootstrap, wiring, dispatcher, config.kafka_session_timeout_ms())
        dispatcher.sinks = {n: kafka.sink(s.topic) for n, s in wiring.kafka_sinks.items()}
        broker = LocalBroker(wiring, dispatcher, accept=kafka.append).start()
    else:
        # in-process: the sender waits while the broker delivers, so backoffs are kept short
        broker = LocalBroker(wiring, Dispatcher(endpoints, max_wait=1.0)).start()
    BROKER_URL_FILE.parent.mkdir(parents=True, exist_ok=True)
    BROKER_URL_FILE.write_text(broker.url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    processes: dict[str, subprocess.Popen] = {}
    door = None
    try:
        # all at once (their imports overlap); the front door opens once every one is ready
        for name, function in functions.items():
            processes[name] = _spawn(function, ports[name], broker.url, metrics[name])
        for name in functions:
            _wait_ready(name, endpoints[name], processes[name], stop)
        if kafka is not None:
            kafka.start()
        ticker = threading.Thread(
            target=_tick, args=([endpoints[n] for n in wiring.ping_targets], stop), daemon=True
        )
        ticker.start()
        door = FrontDoor(manifests.routes(ROOT / "gateway"), endpoints, port).start()
        _say(_ready_message(door, endpoints, metrics, broker.url, bootstrap if kafka else None))
        restarts = _Restarts()
        while not stop.wait(0.2):
            for name, process in processes.items():
                if process.poll() is None or not restarts.due(name, process.returncode):
                    continue
                if restarts.crash_looping(name):
                    _say(
                        f"{name} exited {CRASH_LOOP[0]} times within {CRASH_LOOP[1]} s "
                        "(a crash loop); stopping the stack"
                    )
                    return 1
                processes[name] = _spawn(functions[name], ports[name], broker.url, metrics[name])
                restarts.started(name)
        return 0
    finally:
        stop.set()
        if door is not None:
            door.stop()
        _terminate(processes)
        broker.stop()
        if kafka is not None:
            kafka.stop()
        BROKER_URL_FILE.unlink(missing_ok=True)


def _ready_message(
    door: FrontDoor,
    endpoints: dict[str, str],
    metrics: dict[str, int],
    broker_url: str,
    kafka: str | None,
) -> str:
    """What runs where, said once when everything answers: the one origin first."""
    base = f"http://{door.host}:{door.port}"
    routed = door.routes.services()
    lines = [f"ready: dueflow on {base}/"]
    for service, path, what in PUBLIC_URLS:
        if service in routed:
            lines.append(f"  {what:<16} {base}{path}")
    lines.append("  functions (each on its own port, as each pod):")
    lines += [
        f"    {name:<10} {url}" + (f"  metrics :{metrics[name]}/metrics" if metrics[name] else "")
        for name, url in endpoints.items()
    ]
    lines.append(f"  broker     {broker_url}" + (f" over Kafka at {kafka}" if kafka else ""))
    lines.append(f"  database   {config.database_url()}")
    lines.append(f"  e-mail     {config.email_backend()} -> {config.eml_dir()}")
    return "\n".join(lines)


# The URLs `make run` names when ready: (Service, path, what), each when that Service is routed.
PUBLIC_URLS = (
    ("web", "/", "the app"),
    ("web", "/docs", "API reference"),
    ("tasks", "/tasks", "tasks API"),
    ("tasks", "/openapi.json", "OpenAPI"),
    ("assistant", "/mcp", "MCP server"),
    ("live", "/live", "live feed"),
)


# What Knative does for a pod whose container dies, in small: the dead function is started again
# after a backoff (0.5 s, doubling to 8 s; back to 0.5 s once it has run for a minute) while the
# rest serve on; only a crash loop, CRASH_LOOP[0] exits within CRASH_LOOP[1] seconds, stops the
# stack, since restarting cannot fix what kills it at once (a bad config, a broken import).
RESTART_FIRST, RESTART_MAX, RESTART_RESET = 0.5, 8.0, 60.0
CRASH_LOOP = (5, 60)


class _Restarts:
    """When each dead function process may be started again, and whether it is crash looping."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.exits: dict[str, list[float]] = {}
        self.started_at: dict[str, float] = {}
        self.delay: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}

    def due(self, name: str, status: int | None) -> bool:
        """Called while `name` is dead: True once its restart is due (the first call logs the
        exit and sets the backoff)."""
        now = self.clock()
        if name not in self.restart_at:
            ran = now - self.started_at.get(name, 0.0)
            previous = self.delay.get(name)
            delay = RESTART_FIRST if previous is None or ran >= RESTART_RESET else previous * 2
            self.delay[name] = min(RESTART_MAX, delay)
            self.restart_at[name] = now + self.delay[name]
            self.exits.setdefault(name, []).append(now)
            _say(f"{name} exited (status {status}); restarting it in {self.delay[name]:g} s")
        return now >= self.restart_at[name]

    def crash_looping(self, name: str) -> bool:
        count, window = CRASH_LOOP
        recent = [t for t in self.exits.get(name, []) if self.clock() - t <= window]
        self.exits[name] = recent
        return len(recent) >= count

    def started(self, name: str) -> None:
        self.started_at[name] = self.clock()
        self.restart_at.pop(name, None)
        _say(f"{name} restarted")


def _embedded_defaults() -> None:
    os.environ.setdefault("DUEFLOW_ENV", "local")
    os.environ.setdefault("DUEFLOW_LOG_FORMAT", "text")  # for people; containers keep JSON
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / '.dueflow' / 'dueflow.db'}")
    if not os.environ.get("DUEFLOW_OUTBOX_DIR"):  # the deprecated name, when set, still counts
        os.environ.setdefault("DUEFLOW_EML_DIR", str(ROOT / ".dueflow" / "eml"))
    os.environ.setdefault("PORT", "8080")


def _own_port(name: str) -> int:
    """A function's own port when config has a setting for it, `config.<name>_port()`
    (DUEFLOW_TASKS_PORT, DUEFLOW_ASSISTANT_PORT, ...); 0: none, or 0 set (a free port)."""
    setting = getattr(config, f"{name}_port", None)
    return setting() if callable(setting) else 0


def _in_tree(name: str) -> bool:
    return (ROOT / "functions" / name / "main.py").is_file()


def _metrics_ports(functions) -> dict[str, int]:
    """Each process its own metrics port, as each pod has: tasks on DUEFLOW_METRICS_PORT, the
    other functions on the ports after it, in name order; 0 keeps all off."""
    base = config.metrics_port()
    order = ["tasks", *sorted(set(functions) - {"tasks"})]
    return {name: 0 if base == 0 else base + i for i, name in enumerate(order)}


def _spawn(function: manifests.Function, port: int, sink: str, metrics_port: int):
    env = {**os.environ, "K_SINK": sink, "K_SERVICE": function.name, "PORT": str(port)}
    env["DUEFLOW_METRICS_PORT"] = str(metrics_port)
    env.setdefault("DUEFLOW_SINK_TIMEOUT", "60")  # the in-process broker answers after delivery
    command = function.argv(ROOT, sys.executable, port)
    return subprocess.Popen(command, env=env, preexec_fn=_die_with_parent)


def _die_with_parent() -> None:
    """Linux: a function process gets SIGTERM when the supervisor dies, even by SIGKILL, so a
    killed `make run` leaves no orphans holding ports."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: Ctrl-C and SIGTERM still stop everything


def _wait_ready(name: str, url: str, process: subprocess.Popen, stop: threading.Event) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while not stop.is_set():
        if process.poll() is not None:
            raise SystemExit(f"dueflow: {name} exited while starting")
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"dueflow: {name} did not become ready within {READY_WITHIN} s")
        time.sleep(0.1)


def _tick(targets: list[str], stop: threading.Event) -> None:
    """What the PingSource does, every DUEFLOW_REMINDER_TICK seconds instead of every minute:
    once at start, then on the wall clock's multiples of the period, as a PingSource's cron
    fires at the start of its minute (a reminder due at 09:00:00 is claimed at 09:00:00)."""
    period = config.reminder_tick()
    while not stop.is_set():
        for url in targets:
            headers = {
                "ce-specversion": "1.0",
                "ce-type": "dev.knative.sources.ping",
                "ce-source": "/apis/v1/namespaces/local/pingsources/reminders-tick",
                "ce-id": str(uuid.uuid4()),
                "content-type": "application/json",
            }
            try:
                requests.post(
                    url, data=json.dumps({"tick": "reminders"}), headers=headers, timeout=30
                )
            except requests.RequestException:
                pass  # a missed tick is caught up by the next one
        now = time.time()
        stop.wait((math.floor(now / period) + 1) * period - now)


def _terminate(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes.values():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _say(message: str) -> None:
    print(f"dueflow: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())

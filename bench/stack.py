"""Starting what the scenarios measure, the way `make run` starts it.

* `LocalRun`: `python -m dueflow_local.run` (what `make run` runs) with environment variables.
* `Function`: one function as its own process, with the command line dueflow's local runner uses
  (`functions-framework --source ... --target ... --port ... --host 127.0.0.1`): gunicorn, one
  worker, `THREADS` (default 4 per core) threads.
* `Infra`: the throwaway PostgreSQL server and Kafka-protocol broker (Tansu) of the test suite,
  started once per bench run when a scenario first needs them, and a scratch directory.

Every process is started in its own session and stopped by its own id (its process group: the
local runner's function processes belong to it).
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import jwt
import sqlalchemy as sa

from bench import data, loadgen

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SOURCE = ROOT / "bench" / "reference" / "main.py"
# never inherited from the caller's shell: the bench sets what it needs
_SCRUBBED = (
    "DUEFLOW_JWT_SECRET",
    "DUEFLOW_JWKS_URL",
    "DUEFLOW_JWT_AUDIENCE",
    "DUEFLOW_JWT_ISSUER",
    "K_SINK",
    "KAFKA_BOOTSTRAP_SERVERS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "DATABASE_URL",
    "PORT",
    "DUEFLOW_ASSISTANT_PORT",
    "DUEFLOW_TASKS_PORT",
    "DUEFLOW_EML_DIR",
    "DUEFLOW_OUTBOX_DIR",  # the deprecated name of DUEFLOW_EML_DIR
    "DUEFLOW_METRICS_PORT",
)
# passed through when set, and recorded with the results (what-if runs: DUEFLOW_OUTBOX_POLL=0.05)
TUNING_PREFIXES = ("DUEFLOW_", "THREADS", "WORKERS", "CLOUD_RUN_TIMEOUT_SECONDS")


# The bench's server keeps the statistics and logs that explain a slow request (tail latencies):
# per-statement timings (pg_stat_statements, see `statement_stats`), the plan of any statement
# slower than 50 ms (auto_explain), and every checkpoint, autovacuum and lock wait, in its log.
POSTGRES_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements,auto_explain",
    "pg_stat_statements.track": "all",
    "auto_explain.log_min_duration": "50ms",
    "log_checkpoints": "on",
    "log_autovacuum_min_duration": "0",
    "log_lock_waits": "on",
    "deadlock_timeout": "20ms",  # log_lock_waits reports waits longer than this
}


def statement_stats(url: str, reset: bool = False, top: int = 8) -> list[dict]:
    """The statements that took the most time since the last reset (pg_stat_statements, in
    `url`'s database): calls, mean, max and total ms; `reset` then starts the count anew."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            rows = conn.execute(
                sa.text(
                    "SELECT calls, mean_exec_time, max_exec_time, total_exec_time, query"
                    " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT :n"
                ),
                {"n": top},
            ).all()
            if reset:
                conn.execute(sa.text("SELECT pg_stat_statements_reset()"))
    finally:
        engine.dispose()
    return [
        {
            "calls": r.calls,
            "mean_ms": round(r.mean_exec_time, 3),
            "max_ms": round(r.max_exec_time, 2),
            "total_ms": round(r.total_exec_time, 1),
            "query": " ".join(r.query.split())[:160],
        }
        for r in rows
    ]


def tuning() -> dict[str, str]:
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith(TUNING_PREFIXES) and k not in _SCRUBBED
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(count: int) -> int:
    """The first of `count` consecutive free loopback ports (for per-process metrics ports)."""
    for _ in range(200):
        base = random.randint(20_000, 60_000 - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


def base_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(DUEFLOW_ENV="local", PYTHONUNBUFFERED="1")
    env.update(overrides)
    return env


def token(user: str, email: str | None = None, ttl: int = 6 * 3600) -> str:
    """A bearer token signed with the development secret (DUEFLOW_ENV=local, no secret set)."""
    from dueflow.config import DEV_JWT_SECRET

    claims = {"sub": user, "exp": int(time.time()) + ttl}
    claims["email"] = email or f"{user}@example.com"
    return jwt.encode(claims, DEV_JWT_SECRET, algorithm="HS256")


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


class Infra:
    """Scratch directory, PostgreSQL and Kafka for one bench run (each started on first use)."""

    def __init__(self, keep: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix="dueflow-bench-"))
        self.keep = keep
        self._postgres = None
        self._kafka = None
        self._databases = 0

    @property
    def postgres(self):
        if self._postgres is None:
            from tests.support.postgres import PostgresServer

            self._postgres = PostgresServer(settings=POSTGRES_SETTINGS).start()
            _register_postmaster(self._postgres)
        return self._postgres

    @property
    def kafka(self):
        if self._kafka is None:
            from tests.support.kafka import KafkaServer

            self._kafka = KafkaServer().start()
        return self._kafka

    def database(self, kind: str, name: str) -> str:
        """A new, migrated database: `kind` is "postgresql" or "sqlite"."""
        self._databases += 1
        name = f"{name}_{self._databases}"
        if kind == "postgresql":
            url = self.postgres.create_database(name)
        else:
            url = f"sqlite:///{self.dir / (name + '.db')}"
        migrate(url)
        return url

    def postgres_version(self) -> str | None:
        if self._postgres is None:
            return None
        engine = sa.create_engine(self._postgres.url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text("SHOW server_version")).scalar()
        finally:
            engine.dispose()

    def path(self, name: str) -> Path:
        path = self.dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        if self._kafka is not None:
            self._kafka.stop()
        if self._postgres is not None:
            self._postgres.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def _register_postmaster(server) -> None:
    """Count the PostgreSQL server's CPU as the bench's (its postmaster is no child of ours)."""
    from bench import cpu

    try:
        pid_file = server._data_dir / "postmaster.pid"
        cpu.ROOTS.add(int(pid_file.read_text().split("\n", 1)[0]))
    except (OSError, ValueError, AttributeError):
        pass


def migrate(url: str) -> None:
    from dueflow.adapters.db.engine import make_engine
    from dueflow.adapters.db.engine import migrate as apply

    engine = make_engine(url)
    try:
        apply(engine)
    finally:
        engine.dispose()


class Process:
    """A child process in its own session, logging to a file, stopped by its process group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path):
        self.name, self.argv, self.env, self.log_path = name, argv, env, log
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self.started_at = 0.0  # time.monotonic() just before the process was created

    def start(self) -> Process:
        self._log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _alive.add(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and its children (gunicorn's master and worker), as when a
        container dies: no handler runs, nothing is flushed or rolled back by the process."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (the runner stops its functions itself), then SIGKILL to the whole group."""
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(signal.SIGTERM)
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.pid, signal.SIGKILL)  # whatever of the group is left
            except (ProcessLookupError, PermissionError):
                pass
            if self.proc.poll() is None:
                self.proc.wait(10)
            self.proc = None
        _alive.discard(self)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


_alive: set[Process] = set()


@atexit.register
def _kill_all() -> None:
    """Whatever a failed or interrupted bench left running: its process groups, SIGKILLed."""
    for process in list(_alive):
        if process.proc is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def wait_http(
    port: int, path: str, process: Process, timeout: float = 90, interval: float = 0.1
) -> None:
    """Wait until GET `path` answers 200 (or fail with the process's log)."""
    request = loadgen.request_bytes("GET", path)
    deadline = time.monotonic() + timeout
    while True:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited while starting:\n{process.log_tail()}")
        try:
            if loadgen.call(port, request, timeout=5).status == 200:
                return
        except (OSError, TimeoutError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} not ready after {timeout} s:\n{process.log_tail()}")
        time.sleep(interval)


class LocalRun(Process):
    """`python -m dueflow_local.run`: the whole stack, as `make run` starts it. `port` is the tasks
    API's own port (DUEFLOW_TASKS_PORT): the scenarios measure the function itself, not the front
    door on `front_door` (PORT) that routes the public paths to it, as the Gateway does in the
    cluster (a hop a deployment has too, but not what the API's numbers are about)."""

    def __init__(self, infra: Infra, name: str, database_url: str, **env: str):
        self.port = free_port()
        self.front_door = free_port()
        self.assistant_port = free_port()  # not PORT + 1: several stacks run side by side
        self.eml_dir = infra.path(f"{name}-eml")
        environment = base_env(
            PORT=str(self.front_door),
            DUEFLOW_TASKS_PORT=str(self.port),
            DUEFLOW_ASSISTANT_PORT=str(self.assistant_port),
            DUEFLOW_LIVE_PORT=str(free_port()),  # likewise, not PORT + 2
            DATABASE_URL=database_url,
            DUEFLOW_EML_DIR=str(self.eml_dir),
            # each function process serves /metrics on its own port (base + i), as each pod does
            DUEFLOW_METRICS_PORT=str(free_port_range(12)),
            **env,
        )
        argv = [sys.executable, "-m", "dueflow_local.run"]
        super().__init__(name, argv, environment, infra.dir / f"{name}.log")

    def start(self) -> LocalRun:
        super().start()
        try:
            # the front door opens once every function is ready
            wait_http(self.front_door, "/readyz", self, timeout=120)
        except BaseException:
            self.stop()
            raise
        return self


def function_argv(source: Path, target: str, port: int) -> list[str]:
    """The command line dueflow's local runner starts each function with."""
    ff = Path(sys.executable).with_name("functions-framework")
    return [
        str(ff),
        "--source",
        str(source),
        "--target",
        target,
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]


class Function(Process):
    """One function (functions/<name>/main.py, or the reference) in its own process."""

    def __init__(
        self,
        infra: Infra,
        name: str,
        env: dict[str, str],
        *,
        source: Path | None = None,
        port: int | None = None,
        label: str | None = None,
    ):
        self.port = port or free_port()
        self.function = name
        source = source or ROOT / "functions" / name / "main.py"
        environment = {**env, "K_SERVICE": name, "PORT": str(self.port)}
        environment["DUEFLOW_METRICS_PORT"] = str(free_port())  # its own, as in its pod
        argv = function_argv(source, name, self.port)
        label = label or name
        super().__init__(label, argv, environment, infra.dir / f"{label}.log")

    def start(self, ready_path: str | None = "/readyz") -> Function:
        super().start()
        if ready_path is not None:
            try:
                wait_http(self.port, ready_path, self, timeout=60, interval=0.05)
            except BaseException:
                self.stop()
                raise
        return self


def reference(infra: Infra, label: str = "reference", port: int | None = None) -> Function:
    """The bare functions-framework function (bench/reference/main.py), served the same way."""
    return Function(infra, "reference", base_env(), source=REFERENCE_SOURCE, port=port, label=label)


# -- seeding: rows written with dueflow's own domain code and storage mapping --------------------


def make_engine(url: str):
    from dueflow.adapters.db.engine import make_engine as make

    return make(url)


def build_tasks(user: str, bodies: Iterable[dict], now: datetime | None = None) -> list:
    """Task aggregates exactly as `POST /tasks` builds them (validation and lifecycle)."""
    from dueflow.domain import lifecycle
    from dueflow.domain.validation import parse_create

    now = now or datetime.now(UTC)
    return [lifecycle.new_task(user, parse_create(body), now) for body in bodies]


def insert_tasks(engine, tasks: list, chunk: int = 2000) -> None:
    """Store task aggregates with the repository's row mapping, in bulk and without events
    (seed data: nothing for the outbox relay to deliver while a scenario measures)."""
    from dueflow.adapters.db import schema
    from dueflow.adapters.db import task_rows as repository

    for start in range(0, len(tasks), chunk):
        part = tasks[start : start + chunk]
        task_rows = [repository._task_row(t) for t in part]
        tag_rows = [{"task_id": t.id, "tag": g, "user_id": t.user_id} for t in part for g in t.tags]
        reminder_rows = [
            {"id": r.id, "task_id": t.id, "user_id": t.user_id, **repository._reminder_row(i, r)}
            for t in part
            for i, r in enumerate(t.reminders)
        ]
        with engine.begin() as conn:
            conn.execute(schema.tasks.insert(), task_rows)
            if tag_rows:
                conn.execute(schema.task_tags.insert(), tag_rows)
            if reminder_rows:
                conn.execute(schema.reminders.insert(), reminder_rows)


def seed(engine, users: list[str], count: int, random_seed: int) -> list:
    """`count` realistic tasks (bench.data, from `random_seed`) owned by `users` in turn,
    stored with the users and fresh statistics: a database as the API would have left it."""
    rng = random.Random(random_seed)
    tasks = []
    for i in range(count):
        tasks += build_tasks(users[i % len(users)], [data.task_body(rng)])
    insert_users(engine, users)
    insert_tasks(engine, tasks)
    analyze(engine)
    return tasks


def analyze(engine) -> None:
    """Fresh statistics after seeding, as a database in service has them (PostgreSQL's autovacuum
    would otherwise analyze in the middle of a measurement and change plans under it). SQLite
    is left as dueflow leaves it: nothing runs ANALYZE there."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))


def insert_users(engine, users: Iterable[str]) -> None:
    from dueflow.adapters.db import schema

    now = datetime.now(UTC)
    rows = [{"id": u, "email": f"{u}@example.com", "updated_at": now} for u in users]
    with engine.begin() as conn:
        conn.execute(schema.users.insert(), rows)


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar() or 0)


def drain_outbox(engine, timeout: float = 120) -> dict:
    """Wait until the outbox is empty: how many events waited and how long delivering took."""
    t0 = time.monotonic()
    backlog = count(engine, "SELECT count(*) FROM outbox")
    left = backlog
    while left and time.monotonic() - t0 < timeout:
        time.sleep(0.05)
        left = count(engine, "SELECT count(*) FROM outbox")
    return {"backlog": backlog, "seconds": round(time.monotonic() - t0, 2), "left": left}


class Broker:
    """The local runner's in-process broker (dueflow_local.broker), routing by eventing/, in a
    thread of the bench: for stacks the bench assembles from single functions."""

    def __init__(self, endpoints: dict[str, str]):
        from dueflow_local import manifests
        from dueflow_local.broker import Dispatcher, LocalBroker

        wiring = manifests.load(ROOT / "eventing")
        # as `make run` without Kafka: the sender waits while the broker delivers
        self._broker = LocalBroker(wiring, Dispatcher(endpoints, max_wait=1.0)).start()
        self.url = self._broker.url
        self.ping_targets = [endpoints[n] for n in wiring.ping_targets if n in endpoints]

    def stop(self) -> None:
        self._broker.stop()


REMINDER_PATH = ("reminders", "notify", "deadletter")


def reminder_path(url: str, mail_dir, **env: str) -> tuple[dict, dict, Broker, dict]:
    """The reminder path of `make run` as the reminder scenarios start it: a free port for each
    of REMINDER_PATH, their endpoints, the in-process broker routing between them, and their
    environment (PostgreSQL `url`, e-mail as .eml files in `mail_dir`, K_SINK to the broker)."""
    ports = {name: free_port() for name in REMINDER_PATH}
    endpoints = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    broker = Broker(endpoints)
    environment = base_env(
        DATABASE_URL=url,
        DUEFLOW_EML_DIR=str(mail_dir),
        K_SINK=broker.url,
        DUEFLOW_AUTO_MIGRATE="0",
        **env,
    )
    return ports, endpoints, broker, environment


class Ticker:
    """The local runner's reminder ticker (a PingSource every DUEFLOW_REMINDER_TICK seconds)."""

    def __init__(self, targets: list[str]):
        import threading

        from dueflow_local.run import _tick

        self._stop = threading.Event()
        self._thread = threading.Thread(target=_tick, args=(targets, self._stop), daemon=True)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(35)


def json_logs(path: Path) -> list[dict]:
    """The JSON log lines dueflow wrote to a process's log file."""
    import json

    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out

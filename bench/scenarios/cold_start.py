"""Scenario 5: cold start. Each function's process start until its first successful answer to a
real request, against the bare reference function started the same way; and the import time of
each entry point.

Each function starts with the local runner's command line (`functions-framework --source
functions/<name>/main.py --target <name> ...`) and environment (PostgreSQL, migrated already,
DUEFLOW_AUTO_MIGRATE=0, K_SINK set), and from the moment the process is created it gets the request
a freshly scaled-up pod would get first, every 10 ms until one is answered 2xx: `GET /tasks` with a
token, a `task.completed` CloudEvent, a PingSource tick, a `reminder.due`, a task command, a dead
letter; the reference gets `GET /`. Rounds of [reference, each function] interleave them; figures
are medians over the rounds.

Import time: a fresh interpreter running `functions_framework.create_app(target, source)` (what the
CLI does before serving), timed inside the interpreter, interpreter start-up excluded.

CPU: the seconds of CPU the function's process tree (gunicorn master and worker) used until that
first answer, from /proc: a steadier figure than the wall time while other jobs share the cores.

Idle memory: IDLE_AFTER_S after that first answer (the outbox relay has started by then), the
process tree's proportional set size (gunicorn master and worker, shared pages counted once: about
what a pod's memory cgroup is charged) and each process's RSS, from /proc.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from bench import cpu, loadgen, stack
from bench.context import Context
from bench.results import Target, fmt, table
from bench.stats import median, ratio

KEY, NUMBER = "cold", "5"
TITLE = "Cold start: process start → first successful response, and import time"
FUNCTIONS = ("tasks", "recurrence", "reminders", "notify", "commands", "deadletter")
LIMIT_S, RATIO_LIMIT = 1.0, 1.5
IDLE_AFTER_S, IDLE_MIB = 2.0, 80.0  # idle memory: measured this long after the first answer
IMPORT_CODE = (
    "import time; t = time.perf_counter()\n"
    "from functions_framework import create_app\n"
    "create_app({target!r}, {source!r})\n"
    "print(time.perf_counter() - t)\n"
)


def applies(profile) -> bool:
    return True


class _Sink:
    """Stands in for the Broker behind K_SINK: takes every event (202)."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _cloudevent(kind: str, data: dict, **extensions: str) -> bytes:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": kind,
        "ce-source": "/bench/cold-start",
        "ce-id": str(uuid.uuid4()),
        **{f"ce-{k}": v for k, v in extensions.items()},
    }
    return loadgen.request_bytes("POST", "/", headers=headers, body=data)


def first_request(name: str) -> bytes:
    """The first real request a new pod of `name` gets (answered 2xx on an empty database)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == "tasks":
        return loadgen.request_bytes("GET", "/tasks", headers=stack.auth("cold-user"))
    if name == "recurrence":
        data = {"user_id": "cold-user", "task": {"id": str(uuid.uuid4()), "completed_at": now}}
        return _cloudevent("dev.dueflow.task.completed", data)
    if name == "reminders":
        return _cloudevent("dev.knative.sources.ping", {"tick": "reminders"})
    if name == "notify":
        data = {
            "user_id": "cold-user",
            "task_id": str(uuid.uuid4()),
            "reminder_id": str(uuid.uuid4()),
            "remind_at": now,
            "title": "Cold start",
            "due_at": now,
            "timezone": "UTC",
            "late": False,
        }
        return _cloudevent("dev.dueflow.reminder.due", data)
    if name == "commands":
        return _cloudevent(
            "dev.dueflow.command.task.create", {"user_id": "cold-user", "title": "x"}
        )
    if name == "deadletter":
        return _cloudevent(
            "dev.dueflow.task.created", {"user_id": "cold-user"}, knativeerrorcode="500"
        )
    return loadgen.request_bytes("GET", "/")


def _cold_start(
    ctx: Context, name: str, env: dict, round_no: int
) -> tuple[float, float | None, dict | None]:
    """Seconds from creating the process to its first 2xx answer to `first_request(name)`, the
    CPU seconds its process tree used until then, and the tree's memory once idle after it
    (`cpu.memory`)."""
    label = f"cold-{name}-{round_no}"
    if name == "reference":
        function = stack.reference(ctx.infra, label=label)
    else:
        function = stack.Function(ctx.infra, name, env, label=label)
    request = first_request(name)
    try:
        function.start(ready_path=None)
        deadline = function.started_at + 60
        while time.monotonic() < deadline:
            if not function.alive():
                raise RuntimeError(f"{name} exited while starting:\n{function.log_tail()}")
            try:
                answer = loadgen.call(function.port, request, timeout=30)
                if 200 <= answer.status < 300:
                    started = time.monotonic() - function.started_at
                    used = cpu.tree_cpu(function.pid)
                    time.sleep(IDLE_AFTER_S)
                    return started, used, cpu.memory(function.pid)
                request = first_request(name)  # a new event id for the next try
            except (OSError, TimeoutError):
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{name} answered no request within 60 s:\n{function.log_tail()}")
    finally:
        function.stop()


def _import_time(name: str, env: dict) -> float:
    source = stack.REFERENCE_SOURCE if name == "reference" else stack.ROOT / "functions" / name
    if name != "reference":
        source = source / "main.py"
    code = IMPORT_CODE.format(target=name, source=str(source))
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=stack.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing {name} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def compile_bytecode() -> None:
    """Compile dueflow's modules, the entry points and the reference to bytecode, as the image
    does (Dockerfile: `compileall`): a new pod never compiles source, but with
    PYTHONDONTWRITEBYTECODE set (this machine, the image) an editable install left uncompiled
    would compile every module of dueflow at every start here (about 40 ms of CPU)."""
    sources = [stack.ROOT / "shared" / "dueflow", stack.ROOT / "functions", stack.REFERENCE_SOURCE]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *map(str, sources)], check=True)


def run(ctx: Context) -> dict:
    compile_bytecode()
    url = ctx.infra.database("postgresql", "cold")
    sink = _Sink()
    env = stack.base_env(
        DATABASE_URL=url,
        DUEFLOW_AUTO_MIGRATE="0",
        K_SINK=sink.url,
        DUEFLOW_EML_DIR=str(ctx.infra.path("cold-eml")),
    )
    names = ("reference", *FUNCTIONS)
    starts: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    imports: dict[str, list[float]] = {n: [] for n in names}
    memory: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for round_no in range(ctx.profile.cold_rounds):
            ctx.log(f"5 cold: round {round_no + 1} of {ctx.profile.cold_rounds}")
            for name in names:
                started, used, idle = _cold_start(ctx, name, env, round_no)
                starts[name].append(started)
                if used is not None:
                    cpus[name].append(used)
                if idle is not None:
                    memory[name].append(idle)
                imports[name].append(_import_time(name, env))
    finally:
        sink.stop()
    ref_start, ref_import = median(starts["reference"]), median(imports["reference"])
    out = {
        name: {
            "start_s": round(median(starts[name]), 3),
            "start_runs_s": [round(s, 3) for s in starts[name]],
            "start_ratio": ratio(median(starts[name]), ref_start),
            **_start_cpu(cpus[name], cpus["reference"]),
            "import_s": round(median(imports[name]), 3),
            "import_ratio": ratio(median(imports[name]), ref_import),
            **_idle_memory(memory[name]),
        }
        for name in names
    }
    return {
        "config": {
            "rounds": ctx.profile.cold_rounds,
            "database": "postgresql",
            "first_request": "a real request per function (see bench/scenarios/cold_start.py)",
        },
        "functions": out,
        "python_startup_s": round(_python_startup(), 3),
    }


def _start_cpu(runs: list[float], reference: list[float]) -> dict:
    if not runs or not reference:
        return {}
    return {
        "start_cpu_s": round(median(runs), 3),
        "start_cpu_ratio": ratio(median(runs), median(reference)),
    }


def _idle_memory(runs: list[dict]) -> dict:
    if not runs:
        return {}
    pss = median([r["pss_mib"] for r in runs])
    return {
        "idle_pss_mib": round(pss, 1),
        "idle_rss_mib": min(runs, key=lambda r: abs(r["pss_mib"] - pss))["rss_mib"],
    }


def _python_startup() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def targets(result: dict) -> list[Target]:
    out = []
    ref = result["functions"]["reference"]
    for name in FUNCTIONS:
        r = result["functions"][name]
        out.append(Target(NUMBER, f"cold start, {name}", "<", LIMIT_S, "s", r["start_s"]))
        out.append(
            Target(
                NUMBER,
                f"cold start / reference, {name}",
                "<=",
                RATIO_LIMIT,
                "×",
                r["start_ratio"],
                note=f"{fmt(r['start_s'])} s vs {fmt(ref['start_s'])} s"
                + (f"; CPU {fmt(r['start_cpu_ratio'])}×" if "start_cpu_ratio" in r else ""),
            )
        )
        if "idle_pss_mib" in r:
            rss = " + ".join(fmt(x) for x in r["idle_rss_mib"])
            out.append(
                Target(
                    NUMBER,
                    f"idle memory (PSS), {name}",
                    "<=",
                    IDLE_MIB,
                    "MiB",
                    r["idle_pss_mib"],
                    note=f"RSS master + worker {rss} MiB; reference {_pss(ref)} MiB",
                )
            )
    return out


def _pss(r: dict) -> str:
    return fmt(r["idle_pss_mib"]) if "idle_pss_mib" in r else "?"


def markdown(result: dict) -> list[str]:
    rows = [
        [
            name,
            r["start_s"],
            r["start_ratio"] if name != "reference" else "—",
            r.get("start_cpu_s", "?"),
            r.get("start_cpu_ratio", "?") if name != "reference" else "—",
            r["import_s"],
            r["import_ratio"] if name != "reference" else "—",
            _pss(r),
            " + ".join(fmt(x) for x in r.get("idle_rss_mib", [])) or "?",
        ]
        for name, r in result["functions"].items()
    ]
    return [
        f"Median of {result['config']['rounds']} interleaved rounds on PostgreSQL. A bare "
        f"`python -c pass` takes {fmt(result['python_startup_s'])} s here. CPU: what the "
        "function's process tree (master and worker) used until its first answer. Idle memory: "
        f"{fmt(IDLE_AFTER_S)} s after the first answer; PSS of the process tree (gunicorn master "
        "and worker, shared pages counted once), and each process's RSS.",
        "",
        *table(
            [
                "function",
                "cold start s",
                "× reference",
                "CPU until then s",
                "× reference",
                "import s",
                "× reference",
                "idle PSS MiB",
                "idle RSS MiB (master + worker)",
            ],
            rows,
        ),
    ]

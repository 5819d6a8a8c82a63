"""`python -m bench.flame`: flame graphs of the `tasks` function under load, with py-spy.

    .venv/bin/python -m bench.flame --label before   # get, list, search, create; PostgreSQL
    .venv/bin/python -m bench.flame --ops create --seconds 20 --database sqlite --label try
    .venv/bin/python -m bench.flame --wall --label before   # every thread: where time waits

Seeds a database exactly as scenario 1 (`bench/scenarios/api.py`) does, starts the whole stack as
`make run` does (`python -m dueflow_local.run`), warms it up, then per operation runs the
scenario's closed-loop load (16 clients) while py-spy samples the `tasks` process (its gunicorn
master and worker: `--subprocesses`) at 250 Hz: by default only the thread holding the GIL, so the
graph shows where the process's CPU goes; with `--wall` every thread, waiting ones too, so it shows
where a request's time goes (database round trips, waits for the GIL or a lock). Writes
`flame-<op>-<label>.svg` into docs/performance/ (or `--out`), and prints the operation's
throughput during the recording and the self time per package (sqlalchemy, flask, each dueflow
module ...), so the profile can be read without a browser.

py-spy attaches with ptrace: root, or `kernel.yama.ptrace_scope = 0`, or CAP_SYS_PTRACE. Its
sampling costs the target a little time (non-blocking mode: the target is not paused), so the
throughput printed here is a bit below what `make bench` measures.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench import cpu, loadgen, profiles, stack
from bench.context import Context
from bench.scenarios import api

OUT = stack.ROOT / "docs" / "performance"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: make venv (requirements-dev.txt pins it)")
    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    if unknown := set(ops) - set(api.OPS):
        raise SystemExit(f"unknown operations {sorted(unknown)}: choose from {api.OPS}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(profiles.current(args.profile), stack.Infra(keep=args.keep))
    try:
        url, engine, users, requests = api.seed(ctx, args.database, name="flame")
        env = {}
        gc_dir = ctx.infra.path("gc")
        if args.gc:  # every Python process of the stack times its collector's pauses
            probe = str(Path(__file__).with_name("gcprobe"))
            env = {"PYTHONPATH": probe, "BENCH_GC_LOG": str(gc_dir)}
        run = stack.LocalRun(ctx.infra, f"flame-{args.database}", url, **env).start()
        try:
            pick = {op: api.picker(reqs) for op, reqs in requests.items()}
            api.warm_up(run.port, users, pick, 1.0)
            target = tasks_pid(run.pid)
            logged = 0
            if args.database == "postgresql":
                stack.statement_stats(url, reset=True)
                logged = len(ctx.infra.postgres.log_lines())
            gc_before = _gc(gc_dir, target)
            for op in ops:
                suffix = "-wall" if args.wall else ""
                svg = out / f"flame-{op}-{args.label}{suffix}.svg"
                done = record(py_spy, target, svg, run.port, pick[op], args)
                rate = done.ok() / done.duration_s
                lat = done.summary()
                print(f"\n{op}: {rate:,.0f} requests/s while sampled -> {svg}")
                print(
                    f"  latency p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms, max"
                    f" {lat['max_ms']} ms; load generator {lat['loadgen_cpu']} cores busy"
                )
                print("  self time by package:")
                for name, share in self_time(svg)[: args.top]:
                    print(f"  {share:5.1f}%  {name}")
                if args.gc:
                    time.sleep(1.1)  # the probe writes its figures at most once a second
                    gc_after = _gc(gc_dir, target)
                    _print_gc(gc_before, gc_after)
                    gc_before = gc_after
                if args.database == "postgresql":
                    logged = _print_database(ctx, url, logged)
        finally:
            run.stop()
            engine.dispose()
    finally:
        ctx.infra.close()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.flame", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--ops", default=",".join(api.OPS), help="comma-separated: get,list,...")
    parser.add_argument("--database", default="postgresql", choices=api.DATABASES)
    parser.add_argument("--label", default="now", help="file name suffix: before, after, ...")
    parser.add_argument("--seconds", type=float, default=12.0, help="sampling time per operation")
    parser.add_argument("--clients", type=int, default=16, help="closed-loop clients")
    parser.add_argument(
        "--offered", type=float, help="open loop at this many requests/s instead (tails: 200)"
    )
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument(
        "--wall",
        action="store_true",
        help="sample every thread, waiting ones too (wall time: round trips, lock waits); "
        "default: only the thread holding the GIL (where the CPU goes), file suffix -wall",
    )
    parser.add_argument(
        "--gc", action="store_true", help="time the collector's pauses (bench/gcprobe)"
    )
    parser.add_argument("--top", type=int, default=25, help="packages to print per operation")
    parser.add_argument("--profile", help="seed sizes: smoke, quick (default) or full")
    parser.add_argument("--out", default=str(OUT), help=f"directory for the SVGs ({OUT})")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    return parser


def _print_database(ctx: Context, url: str, logged: int) -> int:
    """The server log's events after line `logged`, and the statements that took the most time
    since the last reset (then reset); returns the log's length."""
    log = ctx.infra.postgres.log_lines()
    events = [line for line in log[logged:] if _SERVER_EVENT.search(line)]
    print(f"  server log: {len(events)} checkpoints, vacuums, slow plans, waits")
    for line in events[:12]:
        print(f"    {line[:200]}")
    print("  statements (pg_stat_statements): calls, mean, max, total ms")
    for st in stack.statement_stats(url, reset=True):
        print(
            f"  {st['calls']:>7} {st['mean_ms']:>8} {st['max_ms']:>8}"
            f" {st['total_ms']:>9}  {st['query'][:90]}"
        )
    return len(log)


def _gc(directory: Path, root: int) -> dict:
    """The collector figures of the `tasks` process tree (bench/gcprobe), summed."""
    total = {g: {"collections": 0, "pause_ms": 0.0, "max_ms": 0.0} for g in "012"}
    slow = 0
    for pid in cpu.tree(root):
        try:
            record = json.loads((directory / f"{pid}.json").read_text())
        except (OSError, ValueError):
            continue
        for g, figures in record["generations"].items():
            total[g]["collections"] += figures["collections"]
            total[g]["pause_ms"] += figures["pause_ms"]
            total[g]["max_ms"] = max(total[g]["max_ms"], figures["max_ms"])
        slow += record["count_over_5ms"]
    return {"generations": total, "over_5ms": slow}


def _print_gc(before: dict, after: dict) -> None:
    parts = []
    for g, figures in after["generations"].items():
        n = figures["collections"] - before["generations"][g]["collections"]
        ms = figures["pause_ms"] - before["generations"][g]["pause_ms"]
        longest = figures["max_ms"]
        parts.append(f"gen{g} {n} × {ms / max(n, 1):.2f} ms (longest so far {longest:.1f})")
    print(f"  GC pauses: {'; '.join(parts)}; over 5 ms: {after['over_5ms'] - before['over_5ms']}")


def tasks_pid(root: int) -> int:
    """The `tasks` function's process (functions-framework's gunicorn master) under `root`."""
    for pid in cpu.tree(root):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--target" in argv and argv[argv.index(b"--target") + 1] == b"tasks":
            return pid
    raise RuntimeError(f"no tasks process under {root}")


def record(py_spy: str, pid: int, svg: Path, port: int, make, args) -> loadgen.Run:
    """py-spy samples `pid` while `args.clients` closed-loop clients run for `args.seconds`."""
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--nonblocking",
            *([] if args.wall else ["--gil"]),
            "--rate",
            str(args.rate),
            "--duration",
            str(int(args.seconds)),
            "--format",
            "flamegraph",
            "--output",
            str(svg),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)  # attached before the load starts
    if args.offered:
        run = loadgen.open_loop(port, make, rate=args.offered, duration=int(args.seconds))
    else:
        run = loadgen.closed_loop(port, make, concurrency=args.clients, duration=int(args.seconds))
    _, err = spy.communicate(timeout=60)
    if spy.returncode != 0 or not svg.exists():
        raise RuntimeError(f"py-spy failed ({spy.returncode}): {err.strip()}")
    return run


_FRAME = re.compile(
    r'<title>(.*?) \([\d,]+ samples?, [\d.]+%\)</title><rect [^>]*?y="(\d+)"[^>]*?'
    r'fg:x="(\d+)" fg:w="(\d+)"'
)
_SERVER_EVENT = re.compile(
    r"checkpoint (starting|complete)|automatic (vacuum|analyze)|duration: |still waiting|deadlock"
)
_WHERE = re.compile(r"\(([^()]+?)(?:\.py)?:\d+\)$")


def _package(path: str) -> str:
    """`sqlalchemy/engine/base.py` is sqlalchemy; dueflow's own modules by name."""
    parts = path.split("/")
    if parts[0] == "dueflow":
        return ".".join(parts)
    if parts[0] == "functions" and len(parts) > 1:
        return "/".join(parts[:2])
    return parts[0]


def self_time(svg: Path) -> list[tuple[str, float]]:
    """Samples in each frame itself (not in what it called), summed per top-level package or
    module (sqlalchemy, flask, dueflow, json, ...), as % of all: where the time is spent."""
    frames = [
        (html.unescape(t), int(y), int(x), int(w)) for t, y, x, w in _FRAME.findall(svg.read_text())
    ]
    by_row: dict[int, list[tuple[int, int]]] = {}
    for _t, y, x, w in frames:
        by_row.setdefault(y, []).append((x, w))
    height = min((abs(a - b) for a in by_row for b in by_row if a != b), default=16)
    total = sum(w for _t, y, _x, w in frames if y == min(by_row))  # the root row ("all")
    spent: Counter[str] = Counter()
    for title, y, x, w in frames:
        below = by_row.get(y + height, [])  # callees: drawn under their caller (py-spy's icicle)
        own = w - sum(cw for cx, cw in below if x <= cx < x + w)
        if own > 0:
            where = _WHERE.search(title)
            spent[_package(where.group(1)) if where else title.split(":")[0][:40]] += own
    total = total or sum(spent.values()) or 1
    return [(name, 100 * n / total) for name, n in spent.most_common()]


if __name__ == "__main__":
    raise SystemExit(main())

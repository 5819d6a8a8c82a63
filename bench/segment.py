"""`python -m bench.segment`: one long open-loop segment of one operation, second by second.

    .venv/bin/python -m bench.segment                                  # creates, 200/s, 30 s, PG
    .venv/bin/python -m bench.segment --database sqlite --json /tmp/sq.json
    .venv/bin/python -m bench.segment --spy live --json /tmp/pg.json   # py-spy of `live` too

Scenario 1's 200 requests/s p99 rests on 2 segments of 2 s in the quick profile; this runs one
segment long enough to see what a tail is made of (issue 16). Seeds and starts the stack exactly
as scenario 1 does (`make run`'s `python -m dueflow_local.run`, every Python process with the
collector probe of bench/gcprobe), warms it up, drains the outbox, then offers `--rate` requests
per second for `--seconds` while a thread reads every process's CPU from /proc twice a second.
Prints, per second of the segment, the latency p50/p99 of the requests scheduled in it beside
the cores busy (the machine's, the stack's, other processes', and the busiest processes'), then
the CPU per request of each process, the collector's pauses and, on PostgreSQL, the statements
that took the most time (pg_stat_statements). `--json` keeps everything (every request's
scheduled and answered time) for a closer look. A measurement on a shared machine: run it under
the bench lock, and read `other` before believing a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import cpu, loadgen, profiles, stack
from bench.context import Context
from bench.scenarios import api

GCPROBE = Path(__file__).with_name("gcprobe")
SHOWN = ("tasks", "postgresql", "live")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ctx = Context(profiles.current(args.profile), stack.Infra(keep=args.keep))
    try:
        url, engine, users, requests = api.seed(ctx, args.database, name="segment")
        gc_dir = ctx.infra.path("gc")
        env = {"PYTHONPATH": str(GCPROBE), "BENCH_GC_LOG": str(gc_dir)}
        run = stack.LocalRun(ctx.infra, f"segment-{args.database}", url, **env).start()
        try:
            pick = {op: api.picker(reqs) for op, reqs in requests.items()}
            api.warm_up(run.port, users, pick, 1.0)
            stack.drain_outbox(engine)
            if args.database == "postgresql":
                stack.statement_stats(url, reset=True)
            spy = _spy(run.pid, args) if args.spy else None
            result = _segment(run.port, requests[args.op], args)
            if spy is not None:
                spy.wait(timeout=60)
            result["drain"] = stack.drain_outbox(engine)
            if args.database == "postgresql":
                result["statements"] = stack.statement_stats(url, top=12)
            time.sleep(1.1)  # the collector probe writes its figures at most once a second
            names = {str(pid): cpu._name(pid) for pid in cpu.tree(run.pid)}
            result["gc"] = {
                f"{names[f.stem]} {f.stem}": json.loads(f.read_text())
                for f in gc_dir.glob("*.json")
                if f.stem in names
            }
        finally:
            run.stop()
            engine.dispose()
    finally:
        ctx.infra.close()
    report(result, args.rate)
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", default="create", choices=api.OPS)
    parser.add_argument("--database", default="postgresql", choices=api.DATABASES)
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--spy", help="py-spy this function's process (--gil, raw) meanwhile")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--profile", help="seed sizes: smoke, quick (default) or full")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    return parser


def _spy(root: int, args) -> subprocess.Popen:
    pid = [p for p in cpu.tree(root) if cpu._name(p) == args.spy][-1]  # the worker, not master
    out = f"{args.json or '/tmp/segment'}.{args.spy}.spy.txt"
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("py-spy")),
            *("record", "--pid", str(pid), "--nonblocking", "--gil", "--rate", "200"),
            *("--duration", str(int(args.seconds) - 2), "--format", "raw", "--output", out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # attached before the load starts
    return spy


def _segment(port: int, requests: list[bytes], args) -> dict:
    samples: list[dict] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        before, busy, t = cpu.snapshot(), cpu.machine_busy(), time.monotonic()
        while not stop.wait(0.5):
            now, busy_now, t_now = cpu.snapshot(), cpu.machine_busy(), time.monotonic()
            used: dict[str, float] = {}
            for pid, (name, seconds) in now.items():
                used[name] = used.get(name, 0.0) + max(0.0, seconds - before.get(pid, ("", 0))[1])
            dt, busy_dt = t_now - t, busy_now - busy
            samples.append({"t": t_now - t0, "dt": dt, "busy": busy_dt, "used": used})
            before, busy, t = now, busy_now, t_now

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    answered: list[tuple[float, float, int]] = []

    async def load() -> loadgen.Run:
        pool = loadgen.Pool("127.0.0.1", port, 64)
        loop = asyncio.get_running_loop()

        async def call(i: int) -> int:
            sent = loop.time()
            answer = await pool.send(requests[i % len(requests)], timeout=args.seconds + 10)
            answered.append((sent - offset, loop.time() - offset, answer.status))
            return answer.status

        offset = loop.time() - (time.monotonic() - t0)
        try:
            return await loadgen.open_loop_calls(call, rate=args.rate, duration=args.seconds)
        finally:
            pool.close()

    run = asyncio.run(load())
    stop.set()
    sampler.join()
    return {"summary": run.summary(), "requests": answered, "samples": samples}


def report(result: dict, rate: float) -> None:
    print(json.dumps(result["summary"]))
    requests = result["requests"]
    start = min(sent for sent, _, _ in requests)
    per_second: dict[int, list[float]] = {}
    for sent, done, _ in requests:
        per_second.setdefault(int(sent - start), []).append((done - sent) * 1000)
    cores: dict[int, dict[str, float]] = {}
    for s in result["samples"]:
        c = cores.setdefault(int(s["t"] - start - 0.25), {"dt": 0.0, "busy": 0.0, "ours": 0.0})
        c["dt"] += s["dt"]
        c["busy"] += s["busy"]
        c["ours"] += sum(s["used"].values())
        for name in SHOWN:
            c[name] = c.get(name, 0.0) + s["used"].get(name, 0.0)
    print(f"\n  s    p50    p99 | cores: busy stack other | {' '.join(SHOWN)}")
    for second, latencies in sorted(per_second.items()):
        c = cores.get(second)
        if len(latencies) < rate / 2 or not c or not c["dt"]:
            continue
        latencies.sort()
        n = len(latencies)
        share = {k: v / c["dt"] for k, v in c.items() if k != "dt"}
        other = share["busy"] - share["ours"]
        print(
            f"{second:3d} {latencies[n // 2]:6.1f} {latencies[int(n * 0.99)]:6.1f} |"
            f"       {share['busy']:4.2f}  {share['ours']:4.2f}  {other:5.2f}"
            f" | {'  '.join(f'{share.get(k, 0):4.2f}' for k in SHOWN)}"
        )
    spent: dict[str, float] = {}
    elapsed = sum(s["dt"] for s in result["samples"])
    for s in result["samples"]:
        for name, seconds in s["used"].items():
            spent[name] = spent.get(name, 0.0) + seconds
    done = len(requests) or 1
    print("\nCPU per request (ms) and cores busy, by process:")
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        if seconds / elapsed >= 0.005:
            print(f"  {name:28s} {1000 * seconds / done:6.2f} ms  {seconds / elapsed:5.2f} cores")
    print("\ncollector pauses over 5 ms (count, longest ms), by process:")
    for name, record in sorted(result["gc"].items()):
        if record["count_over_5ms"]:
            print(f"  {name:28s} {record['count_over_5ms']:4d}  {record['pauses_over_5ms'][0]}")
    for st in result.get("statements", []):
        print(f"  {st['calls']:>7} {st['mean_ms']:>7} {st['max_ms']:>7}  {st['query'][:80]}")


if __name__ == "__main__":
    raise SystemExit(main())

"""Scenario 7: the live feed. Many concurrent Server-Sent Events streams on one `live` process,
task changes committed at a steady rate, and the time from each change's commit to its message
parsed by each stream of its owner; and the memory an open stream costs.

One `live` process (`python functions/live/main.py`, as its container starts it) on PostgreSQL, so
a NOTIFY wakes its tail. The streams are opened by this process (httpx, asyncio), `streams_per_user`
to a user, as tabs and phones; a thread commits changes at the offered rate (open loop) through
TaskService, the code path every change takes (the outbox, and the change log in the same
transaction), round robin over the users. A change's latency runs from its commit returning to
each of its owner's streams parsing the message: `streams_per_user` samples a change. Memory per
stream is the live process's RSS with every stream open, less its RSS before, over the streams.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from bench import stack
from bench.context import Context
from bench.results import Target, fmt, table
from bench.stats import summarize

KEY, NUMBER = "live", "7"
TITLE = "Live feed: change → delivered over SSE, many streams on one process"
LIMIT_P99_MS = 250.0
STREAMS_PER_USER = 4


def applies(profile) -> bool:
    return True


def run(ctx: Context) -> dict:
    p = ctx.profile
    url = ctx.infra.database("postgresql", "live")
    port = stack.free_port()
    env = stack.base_env(
        DATABASE_URL=url,
        PORT=str(port),
        DUEFLOW_AUTO_MIGRATE="0",
        DUEFLOW_METRICS_PORT=str(stack.free_port()),
        K_SERVICE="live",
    )
    argv = [sys.executable, str(stack.ROOT / "functions" / "live" / "main.py")]
    live = stack.Process("live", argv, env, ctx.infra.dir / "live.log").start()
    try:
        stack.wait_http(port, "/readyz", live, timeout=60, interval=0.05)
        rss_before = _rss_kib(live.pid)
        result = asyncio.run(_measure(ctx, url, f"http://127.0.0.1:{port}", live.pid))
    finally:
        live.stop()
    streams = p.live_streams
    result["memory"]["rss_before_kib"] = rss_before
    delta = result["memory"]["rss_open_kib"] - rss_before
    result["memory"]["per_stream_kib"] = round(delta / streams, 1)
    result["config"] = {
        "streams": streams,
        "users": streams // STREAMS_PER_USER,
        "streams_per_user": STREAMS_PER_USER,
        "offered_per_s": p.live_rate,
        "seconds": p.live_seconds,
        "database": "postgresql (LISTEN/NOTIFY)",
        "server": "uvicorn + sse-starlette, one process",
    }
    ctx.log(
        f"7 live: p50 {fmt(result['latency']['p50_ms'])} ms, p99 "
        f"{fmt(result['latency']['p99_ms'])} ms, {result['memory']['per_stream_kib']} KiB/stream"
    )
    return result


async def _measure(ctx: Context, url: str, base: str, pid: int) -> dict:
    import httpx

    p = ctx.profile
    users = [f"live-user-{n}" for n in range(p.live_streams // STREAMS_PER_USER)]
    received: list[tuple[str, float]] = []  # (task id, monotonic time parsed)
    opened = 0
    ready = asyncio.Event()
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(30.0, read=None)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:

        async def stream(user: str) -> None:
            nonlocal opened
            headers = stack.auth(user)
            async with client.stream("GET", f"{base}/live", headers=headers) as response:
                assert response.status_code == 200, response.status_code
                async for line in response.aiter_lines():
                    if line.startswith("id:") and not ready.is_set():
                        opened += 1
                        if opened == len(users) * STREAMS_PER_USER:
                            ready.set()
                    elif line.startswith("data:"):
                        received.append((json.loads(line[5:])["task_id"], time.monotonic()))

        tasks = []
        for user in users:
            for _ in range(STREAMS_PER_USER):
                tasks.append(asyncio.create_task(stream(user)))
            await asyncio.sleep(0)  # spread the opening over the loop
        await asyncio.wait_for(ready.wait(), 120)
        ctx.log(f"7 live: {opened} streams open")
        await asyncio.sleep(1.0)
        rss_open = _rss_kib(pid)
        committed = await asyncio.to_thread(_changes, url, users, p.live_rate, p.live_seconds)
        deadline = time.monotonic() + 10
        want = len(committed) * STREAMS_PER_USER
        while len(received) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [(at - committed[tid]) * 1000 for tid, at in received if tid in committed]
    summary = summarize(latencies)
    summary.update(sent=len(committed), expected=want, delivered=len(latencies))
    return {"latency": summary, "memory": {"rss_open_kib": rss_open}}


def _changes(url: str, users: list[str], rate: float, seconds: float) -> dict[str, float]:
    """Create tasks at `rate` per second for `seconds` (open loop), round robin over `users`;
    each task id with the monotonic time its commit returned."""
    from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
    from dueflow.service.tasks import TaskService

    engine = stack.make_engine(url)
    service = TaskService(UnitOfWorkFactory(engine))
    committed: dict[str, float] = {}
    count = int(rate * seconds)
    start = time.monotonic()
    try:
        for n in range(count):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            task = service.create(users[n % len(users)], {"title": f"Change {n}"})
            committed[task.id] = time.monotonic()
    finally:
        engine.dispose()
    return committed


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def targets(result: dict) -> list[Target]:
    r, cfg = result["latency"], result["config"]
    return [
        Target(
            NUMBER,
            f"change → delivered p99, {cfg['streams']:,} streams, {cfg['offered_per_s']:g}/s",
            "<",
            LIMIT_P99_MS,
            "ms",
            r["p99_ms"],
            note=f"p50 {fmt(r['p50_ms'])} ms; {fmt(r['delivered'])} of {fmt(r['expected'])} "
            f"deliveries; {result['memory']['per_stream_kib']} KiB a stream",
        ),
        Target(
            NUMBER,
            "every change delivered to every stream of its owner",
            "==",
            r["expected"],
            "",
            r["delivered"],
        ),
    ]


def markdown(result: dict) -> list[str]:
    cfg, r, m = result["config"], result["latency"], result["memory"]
    return [
        f"{cfg['streams']:,} streams ({cfg['users']:,} users × {cfg['streams_per_user']}) on one "
        f"`live` process ({cfg['server']}, {cfg['database']}); {cfg['offered_per_s']:g} changes/s "
        f"for {cfg['seconds']:g} s committed through TaskService; latency from the commit to the "
        "message parsed by each stream of the owner (the client runs in the bench process).",
        "",
        *table(
            [
                "deliveries",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "RSS before KiB",
                "RSS open KiB",
                "KiB / stream",
            ],
            [
                [
                    f"{r['delivered']}/{r['expected']}",
                    r["p50_ms"],
                    r["p90_ms"],
                    r["p99_ms"],
                    r["max_ms"],
                    m["rss_before_kib"],
                    m["rss_open_kib"],
                    m["per_stream_kib"],
                ]
            ],
        ),
    ]

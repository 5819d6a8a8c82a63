"""Scenario 2: the event path. Completing an instance of a recurring task until the next instance
is visible through the API, with events routed in-process and over Kafka.

Each mode runs `python -m dueflow_local.run` on PostgreSQL (with KAFKA_BOOTSTRAP_SERVERS pointing at
the test suite's Tansu broker for the Kafka mode). One user owns N open daily series, created a day
ago; completions (POST /tasks/{id}/complete) are offered at a fixed rate (open loop) and a poller
lists the user's newest open tasks (`GET /tasks?sort=-created_at&limit=50`) every 10 ms. A
completion's latency runs from its scheduled send time to the answer of the first list that shows
its series' next instance: what a client polling the API would see, including the poll's own
latency (reported as the resolution).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from bench import loadgen, stack
from bench.context import Context
from bench.results import Target, fmt, table
from bench.stats import summarize

KEY, NUMBER = "events", "2"
TITLE = "Event path: complete a recurring task → next instance visible via the API"
LIMITS_MS = {"in-process": 100.0, "kafka": 300.0}
POLL_INTERVAL_S = 0.01
WARM_UP = 5
USER = "event-user"


def applies(profile) -> bool:
    return True


def run(ctx: Context) -> dict:
    modes = {}
    for mode in ("in-process", "kafka"):
        modes[mode] = _mode(ctx, mode)
    p = ctx.profile
    return {
        "config": {
            "completions": p.event_completions,
            "offered_per_s": p.event_rate,
            "poll_interval_ms": POLL_INTERVAL_S * 1000,
            "database": "postgresql",
            "rule": "FREQ=DAILY, Europe/Berlin",
        },
        "modes": modes,
    }


def _mode(ctx: Context, mode: str) -> dict:
    p = ctx.profile
    n = p.event_completions
    url = ctx.infra.database("postgresql", f"events_{mode.replace('-', '_')}")
    engine = stack.make_engine(url)
    ctx.log(f"2 events/{mode}: seeding {n + WARM_UP} recurring tasks")
    created = datetime.now(UTC) - timedelta(days=1)
    due = created.replace(hour=7, minute=0, second=0, microsecond=0)
    bodies = [
        {
            "title": f"Daily chore {i}",
            "due_at": due.isoformat(),
            "timezone": "Europe/Berlin",
            "recurrence": {"rrule": "FREQ=DAILY"},
        }
        for i in range(n + WARM_UP)
    ]
    tasks = stack.build_tasks(USER, bodies, now=created)
    stack.insert_users(engine, [USER])
    stack.insert_tasks(engine, tasks)
    stack.analyze(engine)
    engine.dispose()
    env = {}
    if mode == "kafka":
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": ctx.infra.kafka.bootstrap_servers,
            "DUEFLOW_KAFKA_SESSION_TIMEOUT_MS": "3000",  # Tansu joins a group after half of it
        }
    ctx.log(f"2 events/{mode}: starting the stack")
    run = stack.LocalRun(ctx.infra, f"events-{mode}", url, **env).start()
    try:
        ctx.log(f"2 events/{mode}: {n} completions at {p.event_rate:g}/s")
        series = [(t.id, t.series_id) for t in tasks]
        result = asyncio.run(_measure(run.port, series[:WARM_UP], series[WARM_UP:], p.event_rate))
    finally:
        run.stop()
    ctx.log(
        f"2 events/{mode}: p50 {fmt(result['p50_ms'])} ms, p99 {fmt(result['p99_ms'])} ms, "
        f"{result['unseen']} never seen"
    )
    return result


async def _measure(port: int, warm: list, measured: list, rate: float) -> dict:
    loop = asyncio.get_running_loop()
    headers = stack.auth(USER)
    pool, poll_pool = loadgen.Pool("127.0.0.1", port, 32), loadgen.Pool("127.0.0.1", port, 1)
    listing = loadgen.request_bytes("GET", "/tasks?sort=-created_at&limit=50", headers=headers)
    scheduled: dict[str, float] = {}
    visible: dict[str, float] = {}
    polls: list[float] = []
    complete_ms: list[float] = []
    failures = {"complete": 0, "poll": 0}
    done = asyncio.Event()

    async def poller() -> None:
        while not done.is_set():
            sent = loop.time()
            try:
                answer = await poll_pool.send(listing, timeout=30)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                failures["poll"] += 1
                await asyncio.sleep(0.1)
                continue
            now = loop.time()
            polls.append((now - sent) * 1000)
            if answer.status != 200:
                failures["poll"] += 1
            else:
                for item in json.loads(answer.body)["items"]:
                    key = item["series_id"]
                    if item["occurrence"] == 2 and key in scheduled and key not in visible:
                        visible[key] = now
            await asyncio.sleep(POLL_INTERVAL_S)

    async def complete(task_id: str, at: float) -> None:
        request = loadgen.request_bytes("POST", f"/tasks/{task_id}/complete", headers=headers)
        try:
            answer = await pool.send(request, timeout=30)
            ok = answer.status == 200
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            ok = False
        complete_ms.append((loop.time() - at) * 1000)
        if not ok:
            failures["complete"] += 1

    async def wait_visible(keys: list[str], timeout: float) -> None:
        deadline = loop.time() + timeout
        while loop.time() < deadline and any(k not in visible for k in keys):
            await asyncio.sleep(0.02)

    polling = asyncio.create_task(poller())
    # warm-up, one at a time: the first also waits for Kafka's consumer groups to form
    for task_id, key in warm:
        scheduled[key] = loop.time()
        await complete(task_id, scheduled[key])
        await wait_visible([key], 90)
    warm_ms = [(visible[k] - scheduled[k]) * 1000 for _, k in warm if k in visible]
    polls.clear()
    complete_ms.clear()
    start = loop.time() + 0.05
    workers = []
    for i, (task_id, key) in enumerate(measured):
        at = start + i / rate
        if (delay := at - loop.time()) > 0:
            await asyncio.sleep(delay)
        scheduled[key] = at
        workers.append(asyncio.create_task(complete(task_id, at)))
    await asyncio.gather(*workers)
    keys = [k for _, k in measured]
    await wait_visible(keys, 30)
    done.set()
    await polling
    now = loop.time()
    latencies = [((visible[k] if k in visible else now) - scheduled[k]) * 1000 for k in keys]
    pool.close()
    poll_pool.close()
    out = summarize(latencies)
    out.update(
        unseen=sum(1 for k in keys if k not in visible),
        failed_completions=failures["complete"],
        failed_polls=failures["poll"],
        complete_request=summarize(complete_ms),
        poll_request=summarize(polls),
        warm_up_ms=[round(ms, 1) for ms in warm_ms],
    )
    return out


def targets(result: dict) -> list[Target]:
    out = []
    for mode, r in result["modes"].items():
        out.append(
            Target(
                NUMBER,
                f"completion → next instance p99, {mode}",
                "<",
                LIMITS_MS[mode],
                "ms",
                r["p99_ms"],
                note=f"p50 {fmt(r['p50_ms'])} ms over {fmt(r['n'])} completions",
            )
        )
    return out


def markdown(result: dict) -> list[str]:
    cfg = result["config"]
    rows = [
        [
            mode,
            r["n"],
            r["p50_ms"],
            r["p90_ms"],
            r["p99_ms"],
            r["max_ms"],
            r["unseen"],
            r["complete_request"]["p50_ms"],
            r["poll_request"]["p50_ms"],
        ]
        for mode, r in result["modes"].items()
    ]
    return [
        f"{fmt(cfg['completions'])} completions per mode offered at {fmt(cfg['offered_per_s'])}/s "
        f"on {cfg['database']}; the API is polled every {fmt(cfg['poll_interval_ms'])} ms.",
        "",
        *table(
            [
                "routing",
                "completions",
                "p50 ms",
                "p90 ms",
                "p99 ms",
                "max ms",
                "never seen",
                "complete request p50 ms",
                "poll request p50 ms",
            ],
            rows,
        ),
    ]

"""Scenario 3b (the reminder scenario's lateness): how late each e-mail leaves, sent - remind_at,
p50 and p99, when reminders fire from the tick and when they fire as Dapr jobs.

The stack is the reminder path of scenario 3 (`reminders`, `notify`, `deadletter` as `make run`
starts them, on PostgreSQL, the runner's in-process broker, e-mail to .eml files watched with
inotify). N reminders of N tasks are due at whole seconds spread over the next few seconds, each
written through dueflow's own task service (so, in the jobs run, with its job commands in the
outbox).

- tick: a tick every `lateness_tick_s` seconds (the local ticker's cadence; a PingSource ticks
  every 60 s, and the lateness grows with the period: about half of it at p50, all of it at p99).
- jobs: DUEFLOW_REMINDER_JOBS=dapr; the reminders function's job relay schedules each reminder
  through the Dapr SDK on a fake sidecar (tests/support/dapr_sidecar.py, gRPC from the SDK's own
  stubs) that fires each job on time (polling every 20 ms) at POST /job/<name>, as daprd does.
  No tick runs, so every e-mail is a job's. Target: p99 <= 1 s.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests

from bench import stack
from bench.context import Context
from bench.mailwatch import MailWatch
from bench.results import Target, table
from bench.stats import median

KEY, NUMBER = "lateness", "3b"
TITLE = "Reminder lateness: sent - remind_at, from the tick and from Dapr jobs"
JOBS_P99_TARGET_S = 1.0
SPREAD_S = 5  # reminders are due at whole seconds over this many seconds


def applies(profile) -> bool:
    return True


def run(ctx: Context) -> dict:
    n = ctx.profile.lateness_reminders
    period = ctx.profile.lateness_tick_s
    return {
        "config": {
            "reminders": n,
            "spread_s": SPREAD_S,
            "tick_period_s": period,
            "database": "postgresql",
            "jobs": "fake Dapr sidecar firing each job on time (20 ms polling)",
        },
        "runs": {"tick": _run(ctx, n, jobs=False, period=period), "jobs": _run(ctx, n, jobs=True)},
    }


def _seed(engine, n: int, t0: datetime, jobs: bool) -> dict[str, datetime]:
    """N tasks with one reminder each, due at t0 + 0..SPREAD_S-1 s; reminder id -> remind_at."""
    from dueflow.adapters.db.unit_of_work import UnitOfWorkFactory
    from dueflow.service.tasks import TaskService

    stack.insert_users(engine, ["late-user"])
    service = TaskService(UnitOfWorkFactory(engine, reminder_jobs=lambda _conn: jobs))
    due: dict[str, datetime] = {}
    for i in range(n):
        at = t0 + timedelta(seconds=i % SPREAD_S)
        body = {
            "title": f"Lateness {i}",
            "due_at": (at + timedelta(hours=1)).isoformat(),
            "reminders": [{"at": at.isoformat()}],
        }
        task = service.create("late-user", body)
        due[task.reminders[0].id] = at
    return due


def _run(ctx: Context, n: int, jobs: bool, period: float = 0.0) -> dict:
    mode = "jobs" if jobs else "tick"
    url = ctx.infra.database("postgresql", f"lateness_{mode}")
    engine = stack.make_engine(url)
    mail_dir = ctx.infra.path(f"lateness-{mode}-mail")
    watch = MailWatch(mail_dir).start()
    ports, endpoints, broker, env = stack.reminder_path(url, mail_dir)
    sidecar = None
    if jobs:
        from tests.support.dapr_sidecar import FakeSidecar

        sidecar = FakeSidecar().start()
        env.update(sidecar.env(), DUEFLOW_REMINDER_JOBS="dapr")
    functions: dict[str, stack.Function] = {}
    stop = threading.Event()
    ticker = None
    try:
        for name in stack.REMINDER_PATH:
            label = f"lateness-{mode}-{name}"
            functions[name] = stack.Function(ctx.infra, name, env, port=ports[name], label=label)
            functions[name].start()
        if jobs:
            _post_tick(endpoints["reminders"])  # its first delivery starts the job relay
            _wait_for_lease(engine)
            sidecar.fire_on_time(endpoints["reminders"])
        t0 = datetime.fromtimestamp(int(time.time()) + 4, UTC)
        ctx.log(f"3b lateness/{mode}: {n} reminders due from {t0:%H:%M:%S}")
        due = _seed(engine, n, t0, jobs)
        if not jobs:
            ticker = threading.Thread(
                target=_tick, args=(endpoints["reminders"], period, stop), daemon=True
            )
            ticker.start()
        keys = {_key(rid, at): at for rid, at in due.items()}
        deadline = time.time() + SPREAD_S + max(period, 1) + 60
        while time.time() < deadline and not set(keys) <= set(watch.first_seen):
            time.sleep(0.05)
    finally:
        stop.set()
        if ticker is not None:
            ticker.join(10)
        for function in functions.values():
            function.stop()
        if sidecar is not None:
            sidecar.stop()
        broker.stop()
        watch.stop()
        engine.dispose()
    late = sorted(
        watch.first_seen[k] - at.timestamp() for k, at in keys.items() if k in watch.first_seen
    )
    out = {
        "reminders": n,
        "e_mails": len(late),
        "early": sum(1 for s in late if s < 0),
        "p50_s": _pct(late, 0.50),
        "p99_s": _pct(late, 0.99),
        "max_s": round(late[-1], 3) if late else None,
        "median_s": round(median(late), 3) if late else None,
    }
    if sidecar is not None:
        out["jobs_scheduled"] = len(sidecar.rpcs("ScheduleJob"))
        out["jobs_fired"] = len(sidecar.fired)
    ctx.log(f"3b lateness/{mode}: p50 {out['p50_s']} s, p99 {out['p99_s']} s, {len(late)}/{n}")
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def _key(reminder_id: str, at: datetime) -> str:
    return f"r-{reminder_id}-{at:%Y%m%dT%H%M%SZ}"


def _post_tick(url: str) -> None:
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/bench/lateness",
        "type": "dev.knative.sources.ping",
    }
    headers = {"Content-Type": "application/cloudevents+json"}
    requests.post(url, data=json.dumps(event), headers=headers, timeout=30)


def _tick(url: str, period: float, stop: threading.Event) -> None:
    while not stop.wait(period):
        try:
            _post_tick(url)
        except requests.RequestException:
            pass


def _wait_for_lease(engine, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stack.count(engine, "SELECT count(*) FROM leases WHERE name = 'reminder-jobs-relay'"):
            return
        time.sleep(0.1)
    raise RuntimeError("the reminders function's job relay did not take its lease")


def targets(result: dict) -> list[Target]:
    jobs = result["runs"]["jobs"]
    return [
        Target(
            NUMBER, "reminder lateness p99, Dapr jobs", "<=", JOBS_P99_TARGET_S, "s", jobs["p99_s"]
        )
    ]


def markdown(result: dict) -> list[str]:
    config = result["config"]
    rows = [
        [mode, r["e_mails"], r["reminders"], r["p50_s"], r["p99_s"], r["max_s"], r["early"]]
        for mode, r in result["runs"].items()
    ]
    return [
        f"{config['reminders']} reminders due at whole seconds over {config['spread_s']} s, "
        f"PostgreSQL; the tick every {config['tick_period_s']} s (a PingSource: 60 s, so "
        "about 30 s at p50 and 60 s at p99); jobs fired on time by a fake Dapr sidecar.",
        "",
        *table(["fired by", "e-mails", "of", "p50 s", "p99 s", "max s", "early"], rows),
    ]

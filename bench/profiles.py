"""Sizes per profile: `smoke` (make test: tiny, seconds), `quick` (default: under 10 minutes on
2 cores), `full` (BENCH=full: the issue's large sizes, and search at scale)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # 1. tasks API: per database, `api_rounds` rounds of [reference, create, get, list, search]
    api_users: int
    api_seed_tasks: int  # tasks per database before measuring (get, list, search read them)
    api_rounds: int
    api_rate: float  # offered load of the latency runs, requests/s
    api_latency_s: float  # seconds per latency segment
    api_throughput_s: float  # seconds per max-throughput segment
    api_concurrency: int  # clients of the max-throughput (closed-loop) runs
    # 2. event path: completions per routing mode, offered at this rate
    event_completions: int
    event_rate: float
    # 3. reminder storm
    storm_reminders: int
    storm_timeout_s: float  # per run: gives up (and counts what is missing) after this
    # 3b. reminder lateness: reminders per run, and the tick run's period
    lateness_reminders: int
    lateness_tick_s: float
    # 4. recurrence cost: timed batches per (rule, instance)
    recurrence_batches: int
    # 5. cold start: rounds of [reference, each function]
    cold_rounds: int
    # 6. search at scale (0 tasks: skipped in this profile)
    search_tasks: int
    search_users: int
    search_requests: int  # per query kind
    search_rate: float
    # 8. assistant: MCP tool calls and the same REST calls, `assistant_rounds` rounds of segments
    assistant_users: int
    assistant_seed_tasks: int
    assistant_rate: float  # calls/s offered per segment (open loop)
    assistant_segment_s: float
    assistant_rounds: int
    # 7. live feed: open streams on one process, changes offered per second, for this long
    live_streams: int
    live_rate: float
    live_seconds: float


PROFILES = {
    "smoke": Profile(
        name="smoke",
        api_users=3,
        api_seed_tasks=60,
        api_rounds=1,
        api_rate=100,
        api_latency_s=0.3,
        api_throughput_s=0.3,
        api_concurrency=4,
        event_completions=4,
        event_rate=10,
        storm_reminders=20,
        storm_timeout_s=60,
        lateness_reminders=10,
        lateness_tick_s=2.0,
        recurrence_batches=3,
        cold_rounds=1,
        search_tasks=400,
        search_users=4,
        search_requests=5,
        search_rate=20,
        assistant_users=2,
        assistant_seed_tasks=40,
        assistant_rate=50,
        assistant_segment_s=0.4,
        assistant_rounds=1,
        live_streams=20,
        live_rate=10,
        live_seconds=2,
    ),
    "quick": Profile(
        name="quick",
        api_users=20,
        api_seed_tasks=2_000,
        api_rounds=2,
        api_rate=200,
        api_latency_s=2.0,
        api_throughput_s=1.5,
        api_concurrency=16,
        event_completions=1_000,
        event_rate=25,
        storm_reminders=10_000,
        storm_timeout_s=60,
        lateness_reminders=50,
        lateness_tick_s=5.0,
        recurrence_batches=200,
        cold_rounds=3,
        search_tasks=0,
        search_users=0,
        search_requests=0,
        search_rate=0,
        assistant_users=4,
        assistant_seed_tasks=400,
        assistant_rate=50,
        assistant_segment_s=4.0,
        assistant_rounds=2,
        live_streams=1_000,
        live_rate=100,
        live_seconds=10,
    ),
    "full": Profile(
        name="full",
        api_users=100,
        api_seed_tasks=20_000,
        api_rounds=3,
        api_rate=200,
        api_latency_s=5.0,
        api_throughput_s=4.0,
        api_concurrency=16,
        event_completions=1_000,
        event_rate=25,
        storm_reminders=100_000,
        storm_timeout_s=1_800,
        lateness_reminders=200,
        lateness_tick_s=10.0,
        recurrence_batches=1_000,
        cold_rounds=10,
        search_tasks=1_000_000,
        search_users=1_000,
        search_requests=500,
        search_rate=20,
        assistant_users=10,
        assistant_seed_tasks=2_000,
        assistant_rate=50,
        assistant_segment_s=10.0,
        assistant_rounds=3,
        live_streams=1_000,
        live_rate=100,
        live_seconds=30,
    ),
}


def current(name: str | None = None) -> Profile:
    """The profile `name`, else $BENCH, else quick."""
    name = (name or os.environ.get("BENCH") or "quick").strip().lower()
    if name not in PROFILES:
        raise SystemExit(f"BENCH must be one of {', '.join(PROFILES)}, not {name!r}")
    return PROFILES[name]

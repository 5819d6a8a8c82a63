"""Scenario 6: search at scale (full profile). 1,000,000 tasks of 1,000 users on PostgreSQL: `q`
queries with and without filters, and a filtered, sorted list page.

The tasks are generated inside PostgreSQL (INSERT ... SELECT over generate_series, same vocabulary
as bench/data.py, rows shaped as dueflow writes them: title_sort, JSON tags and their task_tags
rows, the generated search column and every index the migrations create), then ANALYZEd. The API
runs as `python -m dueflow_local.run`; each kind of request goes out at a fixed offered load (open
loop), in rounds interleaved with the reference function, from a random user each time.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from bench import data, loadgen, stack
from bench.context import Context
from bench.results import Target, fmt, table
from bench.stats import ratio

KEY, NUMBER = "search", "6"
TITLE = "Search at scale: q with and without filters, filtered sorted list page"
KINDS = ("q", "q + filters", "list page")
P99_LIMIT_MS = 50.0
ROUNDS = 5
CHUNK = 100_000


def applies(profile) -> bool:
    return profile.search_tasks > 0


def _sql_array(words) -> str:
    return "ARRAY[" + ",".join("'" + w.replace("'", "''") + "'" for w in words) + "]"


def _pick(array: str, n: int, salt: int) -> str:
    """A deterministic pseudo-random element of `array` (n long) for row g."""
    return f"({array})[1 + ((hashint4(g * 31 + {salt})::bigint + 2147483648) % {n})]"


def _seed(ctx: Context, engine, total: int, users: int) -> float:
    verbs, objects, extras = (
        _sql_array(data.VERBS),
        _sql_array(data.OBJECTS),
        _sql_array(data.EXTRAS),
    )
    tags = _sql_array(data.TAGS)
    n_v, n_o, n_e, n_t = len(data.VERBS), len(data.OBJECTS), len(data.EXTRAS), len(data.TAGS)
    title = (
        f"initcap({_pick(verbs, n_v, 1)}) || ' ' || {_pick(objects, n_o, 2)} || ' ' || "
        f"{_pick(extras, n_e, 3)}"
    )
    description = (
        f"CASE WHEN g % 2 = 0 THEN 'Remember to ' || {_pick(verbs, n_v, 4)} || ' the ' || "
        f"{_pick(objects, n_o, 5)} || ' too' END"
    )
    tag1 = _pick(tags, n_t, 6)
    tag2 = (
        f"({tags})[1 + (((hashint4(g * 31 + 6)::bigint + 2147483648) % {n_t}) + 1 "
        f"+ ((hashint4(g * 31 + 7)::bigint + 2147483648) % {n_t - 1})) % {n_t}]"
    )
    insert = sa.text(
        f"""
        INSERT INTO tasks (id, user_id, title, title_sort, description, status, priority, tags,
                           due_at, timezone, created_at, updated_at, completed_at)
        SELECT gen_random_uuid(), 'scale-user-' || (g % {users}), t.title, lower(t.title),
               t.description, CASE WHEN g % 5 = 0 THEN 'done' ELSE 'open' END, (g / 7) % 4,
               CASE g % 3 WHEN 0 THEN '[]'::json WHEN 1 THEN json_build_array({tag1})
                    ELSE json_build_array({tag1}, {tag2}) END,
               CASE WHEN g % 10 < 8 THEN CAST(:now AS timestamptz) + make_interval(
                    mins => ((hashint4(g * 31 + 8)::bigint + 2147483648) % 86400)::int - 43200)
               END,
               'UTC', CAST(:now AS timestamptz) - make_interval(secs => g % 1000000),
               CAST(:now AS timestamptz) - make_interval(secs => g % 1000000),
               CASE WHEN g % 5 = 0 THEN CAST(:now AS timestamptz) END
        FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g,
             LATERAL (SELECT {title} AS title, {description} AS description) AS t
        """
    )
    t0 = time.monotonic()
    now = datetime.now(UTC)
    for lo in range(1, total + 1, CHUNK):
        hi = min(total, lo + CHUNK - 1)
        with engine.begin() as conn:
            conn.execute(insert, {"now": now, "lo": lo, "hi": hi})
        ctx.log(f"6 search: {hi:,} of {total:,} tasks ({time.monotonic() - t0:.0f} s)")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO task_tags (task_id, tag, user_id) "
                "SELECT id, json_array_elements_text(tags), user_id FROM tasks"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO users (id, email, updated_at) SELECT DISTINCT user_id, "
                "user_id || '@example.com', now() FROM tasks"
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    return time.monotonic() - t0


def run(ctx: Context) -> dict:
    p = ctx.profile
    url = ctx.infra.database("postgresql", "search")
    engine = stack.make_engine(url)
    ctx.log(f"6 search: generating {p.search_tasks:,} tasks of {p.search_users:,} users")
    seed_s = _seed(ctx, engine, p.search_tasks, p.search_users)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT count(*) FROM tasks")).scalar()
        size = conn.execute(sa.text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
        size = size.scalar()
    engine.dispose()
    rng = random.Random(3)
    users = [f"scale-user-{i}" for i in range(p.search_users)]
    headers = {u: stack.auth(u) for u in rng.sample(users, min(len(users), 200))}
    now = datetime.now(UTC)

    def requests(kind: str) -> list[bytes]:
        out = []
        for _ in range(p.search_requests):
            user = rng.choice(list(headers))
            if kind == "q":
                path = data.search_query(rng)
            elif kind == "q + filters":
                path = data.search_query(rng, filtered=True)
            else:
                path = data.list_query(rng, now)
            out.append(loadgen.request_bytes("GET", path, headers=headers[user]))
        return out

    pools = {kind: requests(kind) for kind in KINDS}
    ctx.log("6 search: starting the stack")
    ref = stack.reference(ctx.infra, label="search-reference").start(ready_path="/")
    run_ = stack.LocalRun(ctx.infra, "search", url).start()
    try:
        for user in headers:  # remembered once per process: not part of the figures
            loadgen.call(run_.port, loadgen.request_bytes("GET", "/tags", headers=headers[user]))
        per_round = max(1, p.search_requests // ROUNDS)
        runs: dict[str, list[loadgen.Run]] = {k: [] for k in ("reference", *KINDS)}
        reference_request = loadgen.request_bytes("GET", "/")
        duration = per_round / p.search_rate
        for r in range(ROUNDS):
            ctx.log(f"6 search: round {r + 1} of {ROUNDS}")
            runs["reference"].append(
                loadgen.open_loop(
                    ref.port, lambda i: reference_request, rate=p.search_rate, duration=duration
                )
            )
            for kind in KINDS:
                part = pools[kind][r * per_round : (r + 1) * per_round] or pools[kind]
                runs[kind].append(
                    loadgen.open_loop(
                        run_.port,
                        lambda i, part=part: part[i % len(part)],
                        rate=p.search_rate,
                        duration=duration,
                        grace=30,
                    )
                )
    finally:
        run_.stop()
        ref.stop()
    out = {name: loadgen.pooled(parts) for name, parts in runs.items()}
    for kind in KINDS:
        out[kind]["p50_ratio"] = ratio(out[kind]["p50_ms"], out["reference"]["p50_ms"])
    return {
        "config": {
            "tasks": rows,
            "users": p.search_users,
            "database_size": size,
            "seed_s": round(seed_s, 1),
            "offered_rps": p.search_rate,
            "requests_per_kind": p.search_requests,
        },
        "latency": out,
    }


def targets(result: dict) -> list[Target]:
    lat = result["latency"]
    n = fmt(result["config"]["tasks"])
    return [
        Target(
            NUMBER,
            f"{kind} p99, {n} tasks",
            "<",
            P99_LIMIT_MS,
            "ms",
            lat[kind]["p99_ms"],
            note=f"p50 {fmt(lat[kind]['p50_ms'])} ms ({fmt(lat[kind]['p50_ratio'])}× reference)",
        )
        for kind in KINDS
    ]


def markdown(result: dict) -> list[str]:
    cfg, lat = result["config"], result["latency"]
    rows = [
        [
            kind,
            lat[kind]["n"],
            lat[kind]["p50_ms"],
            lat[kind]["p90_ms"],
            lat[kind]["p99_ms"],
            lat[kind]["max_ms"],
            lat[kind].get("p50_ratio", "—"),
            lat[kind]["failed"],
        ]
        for kind in ("reference", *KINDS)
    ]
    return [
        f"{fmt(cfg['tasks'])} tasks of {fmt(cfg['users'])} users ({cfg['database_size']}, "
        f"generated in {fmt(cfg['seed_s'])} s); {fmt(cfg['offered_rps'])} requests/s offered, "
        f"{fmt(cfg['requests_per_kind'])} per kind in {ROUNDS} interleaved rounds.",
        "",
        *table(
            ["request", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "p50 × ref", "errors"], rows
        ),
    ]

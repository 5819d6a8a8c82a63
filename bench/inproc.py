"""`python -m bench.inproc`: CPU per request of the `tasks` function's own app, in-process.

    .venv/bin/python -m bench.inproc                       # get, list, search, create; PostgreSQL
    .venv/bin/python -m bench.inproc --database sqlite --requests 500

An A/B tool for changes to the request path, steadier than throughput on a shared machine: the
Flask app functions-framework builds from `functions/tasks/main.py` and the bare reference
(`bench/reference/main.py`) are driven in this process by werkzeug's test client (gunicorn left
out: it costs every operation and the reference the same), on a database seeded as scenario 1
seeds it, with the requests scenario 1 sends. Per operation, `time.process_time()` over
`--requests` requests, `--rounds` rounds interleaved with the reference; prints the median CPU
per request and the reference's over it (the function's log lines go to stderr). To compare two
commits, run it in each checkout, back to back.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time
from datetime import UTC, datetime

from bench import data, stack

OPS = ("reference", "get", "list", "search", "create")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc", description=__doc__)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--requests", type=int, default=300, help="per operation and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=2000, help="seeded tasks")
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    infra = stack.Infra()
    try:
        for line in measure(infra, args):
            print(line)
    finally:
        infra.close()


def measure(infra: stack.Infra, args) -> list[str]:
    from functions_framework import create_app

    from dueflow.adapters.db.engine import make_engine

    url = infra.database(args.database, "inproc")
    engine = make_engine(url)
    users = [f"api-user-{i}" for i in range(args.users)]
    tasks = stack.seed(engine, users, args.tasks, random_seed=7)
    engine.dispose()
    os.environ.update(stack.base_env(DATABASE_URL=url))
    apps = {
        "tasks": create_app("tasks", str(stack.ROOT / "functions/tasks/main.py"), "http"),
        "reference": create_app("reference", str(stack.ROOT / "bench/reference/main.py"), "http"),
    }
    clients = {name: app.test_client() for name, app in apps.items()}
    rng = random.Random(3)
    headers = {user: stack.auth(user) for user in users}

    def requests(op: str, count: int) -> list[tuple[str, dict]]:
        if op == "reference":
            return [("/", {})] * count
        out = []
        for _ in range(count):
            if op == "get":
                task = rng.choice(tasks)
                out.append((f"/tasks/{task.id}", headers[task.user_id]))
            elif op == "list":
                out.append((data.list_query(rng), headers[rng.choice(users)]))
            elif op == "create":  # no K_SINK here: the events stay in the outbox, unrelayed
                body = data.task_body(rng, datetime.now(UTC))
                out.append(("/tasks", {**headers[rng.choice(users)], "json": body}))
            else:
                out.append((data.search_query(rng), headers[rng.choice(users)]))
        return out

    def cpu_per_request(op: str, count: int) -> float:
        client = clients["reference" if op == "reference" else "tasks"]
        batch = requests(op, count)
        started = time.process_time()
        for path, hdrs in batch:
            if (body := hdrs.get("json")) is not None:
                hdrs = {k: v for k, v in hdrs.items() if k != "json"}
                response = client.post(path, headers=hdrs, json=body)
            else:
                response = client.get(path, headers=hdrs)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{op} {path}: {response.status_code} {response.data[:300]!r}")
        return (time.process_time() - started) / count * 1e6

    for op in OPS:  # warm up: first requests build the runtime, statements, caches
        cpu_per_request(op, 50)
    gc.freeze()  # as the served process does after its first request
    runs: dict[str, list[float]] = {op: [] for op in OPS}
    for _ in range(args.rounds):
        for op in OPS:
            runs[op].append(cpu_per_request(op, args.requests))
    ref = statistics.median(runs["reference"])
    lines = [f"{args.database}: CPU µs per request, median of {args.rounds} rounds"]
    for op in OPS:
        median = statistics.median(runs[op])
        spread = f"{min(runs[op]):,.0f}-{max(runs[op]):,.0f}"
        lines.append(f"  {op:<9} {median:7,.0f}  ({spread})  reference / this {ref / median:.2f}")
    return lines


if __name__ == "__main__":
    main()

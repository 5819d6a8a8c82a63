"""`python -m bench.imports [function ...]`: where a function's cold start goes, by module.

    .venv/bin/python -m bench.imports tasks notify

Per function, on a migrated PostgreSQL database (the bench's server), a fresh interpreter with
`-X importtime` imports functions-framework, runs `create_app` (which imports the entry point, as
the CLI does before serving) and answers the first real request a new pod gets (the one of
scenario 5, `cold_start.first_request`) through Flask's test client, then a second one. Prints
the time of each phase and the modules that took the longest to import (cumulative, so a
package includes what it imports), split into those imported before serving and those the first
request imported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench import stack
from bench.scenarios import cold_start

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from functions_framework import create_app
t1 = time.perf_counter()
app = create_app(sys.argv[1], sys.argv[2])
t2 = time.perf_counter()
print("\0served", file=sys.stderr, flush=True)  # imports after this: the first request's
request = json.loads(sys.argv[3])
client = app.test_client()
answers = []
for _ in range(2):
    t = time.perf_counter()
    answer = client.open(request["path"], method=request["method"], headers=request["headers"],
                         data=request["body"].encode("latin-1"))
    answers.append((time.perf_counter() - t, answer.status_code))
print(json.dumps({"ff_import_s": t1 - t0, "create_app_s": t2 - t1, "first": answers[0],
                  "second": answers[1]}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("functions", nargs="*", default=["tasks"])
    parser.add_argument("--top", type=int, default=15, help="modules to print per phase")
    args = parser.parse_args(argv)
    cold_start.compile_bytecode()  # as scenario 5 and the image
    infra = stack.Infra()
    try:
        url = infra.database("postgresql", "imports")
        env = stack.base_env(DATABASE_URL=url, DUEFLOW_AUTO_MIGRATE="0", DUEFLOW_METRICS_PORT="0")
        for name in args.functions:
            profile(name, env, args.top)
    finally:
        infra.close()
    return 0


def profile(name: str, env: dict, top: int) -> None:
    source = stack.ROOT / "functions" / name / "main.py"
    request = _request(cold_start.first_request(name))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, name, str(source), json.dumps(request)],
        env={**env, "K_SERVICE": name},
        cwd=stack.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    phases = json.loads(done.stdout.strip().splitlines()[-1])
    before, _, after = done.stderr.partition("\0served")
    (first_s, first_status), (second_s, _) = phases["first"], phases["second"]
    print(
        f"\n{name}: functions-framework import {phases['ff_import_s']:.3f} s, create_app"
        f" {phases['create_app_s']:.3f} s, first request {first_s:.3f} s ({first_status}),"
        f" second {second_s * 1000:.1f} ms"
    )
    for label, text in (("imported before serving", before), ("by the first request", after)):
        modules = _imports(text)
        total = sum(us for us, module in modules if not module.startswith(" "))
        print(f"  {label}: {total / 1e6:.3f} s in all; the longest (cumulative):")
        for us, module in sorted(modules, reverse=True)[:top]:
            print(f"    {us / 1000:8.1f} ms  {module.rstrip()}")


def _request(raw: bytes) -> dict:
    """A request as `loadgen.request_bytes` encodes it, for Flask's test client."""
    head, _, body = raw.partition(b"\r\n\r\n")
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ")
    headers = dict(line.split(": ", 1) for line in lines)
    for computed in ("Host", "Content-Length"):
        headers.pop(computed, None)
    return {"method": method, "path": path, "headers": headers, "body": body.decode("latin-1")}


def _imports(text: str) -> list[tuple[int, str]]:
    """(cumulative µs, module with its nesting indent) per line of `-X importtime`."""
    out = []
    for line in text.splitlines():
        if line.startswith("import time:") and "|" in line:
            _self, cumulative, module = line[len("import time:") :].split("|", 2)
            if cumulative.strip().isdigit():
                out.append((int(cumulative), module[1:]))
    return out


if __name__ == "__main__":
    raise SystemExit(main())

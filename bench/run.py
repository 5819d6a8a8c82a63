"""`python -m bench` (`make bench`): run the scenarios, write bench/results/latest.{json,md}.

    python -m bench                      # quick profile (BENCH=quick), every scenario
    BENCH=full python -m bench           # large sizes, and search at scale
    python -m bench --only api,storm     # some scenarios (keys or numbers: --only 1,3)
    python -m bench --results-dir /tmp/x # somewhere else (the smoke test does this)

A target that is missed is a result, not a failure: the exit status is non-zero only when a
scenario could not be run at all.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import cpu, profiles, results, stack
from bench.context import Context
from bench.results import Target, fmt
from bench.scenarios import ALL, BY_KEY

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    report = run_bench(
        profile=args.profile,
        only=args.only,
        results_dir=Path(args.results_dir) if args.results_dir else DEFAULT_RESULTS,
        keep=args.keep,
    )
    print(report["markdown"])
    return 1 if any("error" in s for s in report["results"]["scenarios"].values()) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", help="smoke, quick or full (default: $BENCH, else quick)")
    parser.add_argument("--only", help="comma-separated scenario keys or numbers")
    parser.add_argument("--results-dir", help=f"where to write (default {DEFAULT_RESULTS})")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (logs)")
    return parser


def select(only: str | None) -> list:
    if not only:
        return list(ALL)
    chosen = []
    for item in (s.strip() for s in only.split(",") if s.strip()):
        module = BY_KEY.get(item) or next((m for m in ALL if m.NUMBER == item), None)
        if module is None:
            keys = ", ".join(f"{m.NUMBER}={m.KEY}" for m in ALL)
            raise SystemExit(f"unknown scenario {item!r} (known: {keys})")
        chosen.append(module)
    return sorted(set(chosen), key=ALL.index)


def run_bench(
    profile: str | None = None,
    only: str | None = None,
    results_dir: Path = DEFAULT_RESULTS,
    keep: bool = False,
    quiet: bool = False,
) -> dict:
    chosen = select(only)
    prof = profiles.current(profile)
    infra = stack.Infra(keep=keep)
    ctx = Context(prof, infra, quiet=quiet)
    started_at = datetime.now(UTC)
    scenarios: dict[str, dict] = {}
    all_targets: list[Target] = []
    ctx.log(f"profile {prof.name}; scratch directory {infra.dir}")
    noise = _Noise()
    code_at_start = _code_state()
    try:
        for module in chosen:
            entry: dict = {"number": module.NUMBER, "title": module.TITLE}
            if not module.applies(prof):
                entry["skipped"] = f"not part of the {prof.name} profile (run BENCH=full)"
                scenarios[module.KEY] = entry
                ctx.log(f"{module.NUMBER} {module.KEY}: skipped in the {prof.name} profile")
                continue
            t0 = time.monotonic()
            ctx.log(f"{module.NUMBER} {module.KEY}: {module.TITLE}")
            try:
                entry.update(module.run(ctx))
                found = module.targets(entry)
                entry["targets"] = found
                all_targets += found
            except Exception as exc:  # the other scenarios still run; the exit status says it
                entry["error"] = f"{type(exc).__name__}: {exc}"
                entry["traceback"] = traceback.format_exc()
                ctx.log(f"{module.NUMBER} {module.KEY} failed:\n{entry['traceback']}")
            entry["seconds"] = round(time.monotonic() - t0, 1)
            scenarios[module.KEY] = entry
            ctx.log(f"{module.NUMBER} {module.KEY}: done in {entry['seconds']} s")
        meta = _meta(prof.name, started_at, time.monotonic() - ctx.started, infra)
        meta["machine"] = noise.done()
        meta["code_changed_during_run"] = _code_state() != code_at_start
    finally:
        infra.close()
    report = {"meta": meta, "targets": all_targets, "scenarios": scenarios}
    markdown = render(report)
    json_path, md_path = results.write(report, markdown, results_dir)
    ctx.log(f"wrote {json_path} and {md_path}")
    return {"results": report, "markdown": markdown, "json": json_path, "md": md_path}


def _meta(profile: str, started_at: datetime, seconds: float, infra: stack.Infra) -> dict:
    return {
        "profile": profile,
        "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "postgresql": infra.postgres_version(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "threads_per_worker": os.environ.get("THREADS") or f"{(os.cpu_count() or 1) * 4} (default)",
        "environment": stack.tuning(),
    }


class _Noise:
    """How busy the machine was with other things while the bench ran."""

    def __init__(self):
        self.load = _loadavg()
        self.t0, self.busy, self.ours = time.monotonic(), cpu.machine_busy(), cpu.ours()

    def done(self) -> dict:
        elapsed = time.monotonic() - self.t0
        busy = cpu.machine_busy() - self.busy
        ours = cpu.ours() - self.ours
        return {
            "load_average_start": self.load,
            "load_average_end": _loadavg(),
            "bench_cores": round(ours / elapsed, 2) if elapsed else None,
            "other_cores": round(max(0.0, busy - ours) / elapsed, 2) if elapsed else None,
        }


def _loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _code_state() -> tuple:
    """What is being measured: the commit and the uncommitted changes to tracked files."""
    return _git("rev-parse", "HEAD"), _git("diff", "HEAD")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=stack.ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def render(report: dict) -> str:
    meta, targets = report["meta"], report["targets"]
    machine = meta.get("machine", {})
    met = sum(1 for t in targets if t.ok)
    commit = f"{meta['commit']}{' (with local changes)' if meta['dirty'] else ''}"
    if meta.get("code_changed_during_run"):
        commit += " (**the code changed during the run**)"
    lines = [
        f"# dueflow benchmark — {meta['profile']} profile",
        "",
        f"{meta['started_at']} · {meta['cores']} cores ({meta['cpu']}), "
        f"{fmt(meta['memory_gib'])} GiB · Python {meta['python']} · "
        f"PostgreSQL {meta['postgresql'] or '—'} · commit {commit} · "
        f"ran {fmt(meta['seconds'])} s",
        "",
        f"Other processes on the machine kept {fmt(machine['other_cores'])} cores busy on average "
        f"while this ran (the bench's own processes {fmt(machine['bench_cores'])}; load average "
        f"{fmt(machine['load_average_start'])} before, {fmt(machine['load_average_end'])} after): "
        "figures taken while others compete for the cores are slower; the ratios to the "
        "reference, measured interleaved, much less so.",
        "",
        *(
            [f"Environment: {', '.join(f'`{k}={v}`' for k, v in meta['environment'].items())}", ""]
            if meta["environment"]
            else []
        ),
        f"## Targets: {met} of {len(targets)} met",
        "",
        *results.targets_table(targets),
        "",
    ]
    for key, entry in report["scenarios"].items():
        module = BY_KEY[key]
        lines += [f"## {entry['number']}. {entry['title']}", ""]
        if "skipped" in entry:
            lines += [f"Skipped: {entry['skipped']}.", ""]
        elif "error" in entry:
            lines += [f"Failed: `{entry['error']}` (traceback in latest.json).", ""]
        else:
            lines += [*module.markdown(entry), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

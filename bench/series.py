"""Consecutive runs side by side: every target's figure in each run and whether it held in all.

    .venv/bin/python -m bench.series bench/results/run-1 bench/results/run-2 bench/results/run-3

reads each directory's `latest.json` (as `make bench --results-dir DIR` writes it) and prints a
markdown table; `--out FILE` writes it too. One run can be lucky: a target counts as met only
when it held in every run given, so tails are shown stable rather than asserted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.results import Target, fmt, table, unit_text


def load(directory: Path) -> dict:
    return json.loads((directory / "latest.json").read_text())


def render(runs: list[dict]) -> str:
    metas = [run["meta"] for run in runs]
    lines = ["| run | commit | started | ran s | other processes' cores |", "|---|---|---|---|---|"]
    for i, meta in enumerate(metas, 1):
        noise = (meta.get("machine") or {}).get("other_cores")
        lines.append(
            f"| {i} | {meta.get('commit', '?')} | {meta.get('started_at', '?')} | "
            f"{fmt(meta.get('seconds'))} | {fmt(noise)} |"
        )
    by_key: dict[tuple[str, str], list[Target | None]] = {}
    for i, run in enumerate(runs):
        for raw in run["targets"]:
            t = Target(
                **{k: raw[k] for k in ("scenario", "what", "op", "threshold", "unit")},
                measured=raw["measured"],
            )
            by_key.setdefault((t.scenario, t.what), [None] * len(runs))[i] = t
    rows, held = [], 0
    for (scenario, what), found in by_key.items():
        first = next(t for t in found if t is not None)
        all_ok = all(t is not None and t.ok for t in found)
        held += all_ok
        figures = [
            "—" if t is None else f"{fmt(t.measured)}{unit_text(t.unit)}{'' if t.ok else ' ✗'}"
            for t in found
        ]
        verdict = "met in all" if all_ok else f"missed in {sum(not (t and t.ok) for t in found)}"
        rows.append([scenario, what, first.target_text, *figures, verdict])
    headers = ["#", "what", "target", *[f"run {i}" for i in range(1, len(runs) + 1)], "verdict"]
    out = [f"## {len(runs)} consecutive runs: {held} of {len(by_key)} targets met in every run", ""]
    return "\n".join([*out, *lines, "", *table(headers, rows), ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.series", description=__doc__)
    parser.add_argument("dirs", nargs="+", type=Path, help="results directories, in run order")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    text = render([load(d) for d in args.dirs])
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

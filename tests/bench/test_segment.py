"""`python -m bench.segment` runs end to end at a tiny size: every request answered, and the
per-second table and the CPU per request of the `tasks` process reported (no timing is judged)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT


def test_segment_answers_every_request_and_reports_per_second_and_per_process(tmp_path):
    out = tmp_path / "segment.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.segment", "--profile", "smoke"),
            *("--database", "sqlite", "--rate", "20", "--seconds", "3", "--json", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.splitlines()[0])
    assert summary["sent"] == summary["ok"] == 60, summary
    assert re.search(r"^  0 +[\d.]+ +[\d.]+ \|", done.stdout, re.MULTILINE), done.stdout
    assert re.search(r"^  tasks +[\d.]+ ms +[\d.]+ cores", done.stdout, re.MULTILINE), done.stdout
    kept = json.loads(out.read_text())
    assert len(kept["requests"]) == 60 and all(status == 201 for *_, status in kept["requests"])

"""`python -m bench.relay` runs end to end at a tiny size: every event delivered, and the CPU per
event of the relay, the broker and PostgreSQL reported (no timing is judged)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_relay_probe_delivers_every_event_and_reports_cpu_per_event():
    done = subprocess.run(
        [sys.executable, "-m", "bench.relay", "--events", "30", "--rate", "100"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^30 events in [\d.]+ s, \d+ passes", done.stdout, re.MULTILINE), done.stdout
    cpu = dict(re.findall(r"(relay|broker|postgresql) ([\d.]+)", done.stdout))
    assert set(cpu) == {"relay", "broker", "postgresql"}, done.stdout
    assert float(cpu["relay"]) > 0, done.stdout

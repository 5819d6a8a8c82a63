"""`python -m bench.inproc` runs end to end at tiny sizes and reports every operation (no timing
is judged: a machine running the test suite is no place for that)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_inproc_reports_cpu_per_request_of_every_operation():
    done = subprocess.run(
        [sys.executable, "-m", "bench.inproc", "--database", "sqlite"]
        + ["--requests", "5", "--rounds", "1", "--tasks", "40", "--users", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = dict(re.findall(r"^  (\w+)\s+([\d,]+) ", done.stdout, re.MULTILINE))
    assert set(rows) == {"reference", "get", "list", "search", "create"}, done.stdout
    assert all(int(value.replace(",", "")) > 0 for value in rows.values())

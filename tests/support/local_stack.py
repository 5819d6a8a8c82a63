"""The stack `make run` starts (`python -m dueflow_local.run`), for the end-to-end tests: on free
ports and a scratch SQLite database, ready, stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import sys
import time

import pytest

from tests.support import processes
from tests.support.http import free_port


@contextlib.contextmanager
def running_stack(tmp_path, **extra_env: str):
    """`python -m dueflow_local.run` (what `make run` runs) on a free port, ready; stopped after.

    Yields (base URL, process, environment)."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DUEFLOW_ASSISTANT_PORT": str(free_port()),  # not PORT + 1: stacks run side by side
        "DUEFLOW_LIVE_PORT": str(free_port()),  # not PORT + 2, likewise
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dueflow.db'}",
        "DUEFLOW_ENV": "local",
        "DUEFLOW_EML_DIR": str(tmp_path / "eml"),
    }
    for name in ("DUEFLOW_JWT_SECRET", "DUEFLOW_JWKS_URL", "K_SINK"):  # not the caller's own
        env.pop(name, None)
    env.update(extra_env)
    # its own process group: stopped with its function processes whatever happens, even when
    # starting fails or the test is interrupted; its output goes to a file (a pipe nobody reads
    # would fill up and block every process of the stack that logs)
    log = tmp_path / "localrun.log"
    with open(log, "ab") as out:
        proc = processes.start(
            [sys.executable, "-m", "dueflow_local.run"], env=env, stdout=out, stderr=out
        )
    proc.log = log
    base = f"http://127.0.0.1:{port}"
    try:
        if not processes.wait_ready(f"{base}/readyz", proc, timeout=180):
            processes.stop(proc)
            pytest.fail(f"local stack did not start:\n{log.read_text(errors='replace')[-5000:]}")
        yield base, proc, env
    finally:
        processes.stop(proc)  # SIGTERM: the supervisor stops its functions; then the group



def poll(check, timeout: float = 20.0):
    """Polls until `check()` returns something truthy (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    return check()

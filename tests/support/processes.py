"""Processes that tests start, stopped whatever happens: each runs in a session (process group) of
its own, so stopping it stops its children too (the local runner's function processes, gunicorn's
workers), and every group still running when the interpreter exits is killed then.

Readiness polls treat a timeout like a refused connection: "not ready yet", on a loaded machine
as on an idle one; only the overall deadline (or the process exiting) ends them.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import time

import requests

_running: set[subprocess.Popen] = set()


def start(argv: list[str], **popen: object) -> subprocess.Popen:
    """`subprocess.Popen(argv, **popen)` in a new session, remembered until `stop`."""
    proc = subprocess.Popen(argv, start_new_session=True, **popen)
    _running.add(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the leader (the local runner stops its functions itself), then SIGKILL to
    whatever is left of its group. Safe to call twice."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    kill_group(proc)
    _running.discard(proc)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and every process of its group; reaps the leader."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90) -> bool:
    """Poll GET `url` until it answers 200 (True), the process exits or the deadline passes
    (False). Connection errors and read timeouts both mean "not ready yet"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


@atexit.register
def _stop_all() -> None:
    for proc in list(_running):
        kill_group(proc)

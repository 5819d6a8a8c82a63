"""The stack `make run` starts (python -m dueflow.localrun): a real server on a real port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from dueflow.config import DEV_JWT_SECRET
from tests.conftest import token

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_stack(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dueflow.db'}",
        "DUEFLOW_ENV": "local",
    }
    for name in ("DUEFLOW_JWT_SECRET", "DUEFLOW_JWKS_URL", "K_SINK"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dueflow.localrun"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"local stack did not start:\n{proc.stdout.read().decode()}")
        time.sleep(0.2)
    yield base, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _headers(user: str) -> dict:
    return {"Authorization": f"Bearer {token(user, secret=DEV_JWT_SECRET)}"}


def test_two_hundred_parallel_creates_from_sixteen_clients_all_succeed(local_stack):
    base, _ = local_stack

    def client(n: int) -> list[int]:
        with requests.Session() as session:
            return [
                session.post(
                    f"{base}/tasks",
                    json={"title": f"task {n}-{i}", "tags": ["load"]},
                    headers=_headers("loader"),
                    timeout=30,
                ).status_code
                for i in range(n, 200, 16)
            ]

    with ThreadPoolExecutor(16) as pool:
        statuses = [s for batch in pool.map(client, range(16)) for s in batch]
    assert len(statuses) == 200 and set(statuses) == {201}
    listed = requests.get(f"{base}/tasks?limit=200", headers=_headers("loader"), timeout=10).json()
    assert len(listed["items"]) == 200 and listed["next_cursor"] is None
    tags = requests.get(f"{base}/tags", headers=_headers("loader"), timeout=10).json()
    assert tags == {"items": [{"name": "load", "count": 200}]}


def test_sigterm_stops_everything(local_stack):
    base, proc = local_stack
    created = requests.post(
        f"{base}/tasks", json={"title": "survives restarts"}, headers=_headers("alice"), timeout=10
    )
    assert created.status_code == 201
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/healthz", timeout=1)

"""One function served as its container serves it (the functions-framework CLI on a free port),
for end-to-end tests that need a real server but not the whole `make run` stack."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.http import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def served_function(name: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """`functions-framework --target <name>` on a free port, ready (`/readyz` answers 200);
    yields its base URL and stops it afterwards. Its output goes to `log`."""
    port = free_port()
    cli = str(Path(sys.executable).with_name("functions-framework"))
    source = str(ROOT / "functions" / name / "main.py")
    argv = [cli, "--target", name, "--source", source, "--port", str(port)]
    with _served(argv, env, port, log) as base:
        yield base


@contextlib.contextmanager
def served_asgi_function(name: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """An ASGI function (assistant, live) as its container starts it, `python main.py` with
    PORT, on a free port and ready; yields its base URL and stops it (SIGTERM) afterwards."""
    port = free_port()
    argv = [sys.executable, str(ROOT / "functions" / name / "main.py")]
    with _served(argv, {**env, "PORT": str(port)}, port, log) as base:
        yield base


@contextlib.contextmanager
def _served(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, proc, log)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or migrating on first use
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{base} did not get ready:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)

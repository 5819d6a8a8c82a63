"""Debian packages the tests install for themselves (as root): PostgreSQL, Chromium."""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path


def install_once(package: str, installed: Callable[[], bool]) -> None:
    """`apt-get update` and `apt-get install` the package unless `installed()`, under a file lock
    so parallel pytest processes install it once (the others wait, then find it installed)."""
    lock_path = Path(tempfile.gettempdir()) / f"dueflow-{package}-install.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not installed():
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                install = ["apt-get", "install", "-y", "--no-install-recommends", package]
                for cmd in (["apt-get", "update"], install):
                    check_run(cmd, env=env)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    """Run ``cmd`` capturing output; raise RuntimeError with that output if it fails."""
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {shlex.join(cmd)}\n"
            f"{result.stdout}{result.stderr}"
        )

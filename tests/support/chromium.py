"""Debian's Chromium for the browser tests (tests/browser), driven by Playwright's Python package
through /usr/bin/chromium: no browser download. When it is missing and we are root, the Debian
``chromium`` package is installed with apt-get, under a file lock so parallel pytest processes
install it once (as tests/support/postgres.py does for PostgreSQL)."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from tests.support.postgres import _check_run

CHROMIUM = "/usr/bin/chromium"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "dueflow-chromium-install.lock"


def ensure_chromium() -> str:
    """The path of Debian's chromium, installing the package if needed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"{CHROMIUM} not found. Install it with: "
            "sudo apt-get install -y --no-install-recommends chromium"
        )
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another pytest process may be installing right now
        try:
            if not os.access(CHROMIUM, os.X_OK):
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
                for cmd in (["apt-get", "update"], install):
                    _check_run(cmd, env=env)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return CHROMIUM

"""Debian's Chromium for the browser tests (tests/browser), driven by Playwright's Python package
through /usr/bin/chromium: no browser download. When it is missing and we are root, the Debian
``chromium`` package is installed with apt-get (once, under a file lock: tests/support/apt.py)."""

from __future__ import annotations

import os
import shutil

from tests.support.apt import install_once

CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> str:
    """The path of Debian's chromium, installing the package if needed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            f"{CHROMIUM} not found. Install it with: "
            "sudo apt-get install -y --no-install-recommends chromium"
        )
    install_once("chromium", lambda: os.access(CHROMIUM, os.X_OK))
    return CHROMIUM

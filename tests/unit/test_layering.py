"""The layers' import rules (docs/architecture.md): the domain imports only the domain and the
standard library's pure parts (plus dateutil's rules); services import the domain and the ports,
never an adapter, a framework, a driver or the composition root. Checked on the source (the AST),
so a lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "shared" / "dueflow"
#: never imported by a domain or service module, at any depth
OUTER = (
    "dueflow.adapters",
    "dueflow.bootstrap",
    "dueflow.relay_lifecycle",
    "dueflow.config",
    "dueflow.metrics",
    "dueflow.observability",
    "dueflow.logs",
    "dueflow.local",
    "dueflow.localrun",
    "dueflow.dlq",
    "flask",
    "werkzeug",
    "functions_framework",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "cloudevents",
    "requests",
    "prometheus_client",
    "opentelemetry",
    "jwt",
    "sendgrid",
    "smtplib",
    "socket",
    "urllib.request",
    "http",
)
ALLOWED = {
    "domain": ("dueflow.domain",),
    "service": ("dueflow.domain", "dueflow.service"),
}


def imported(path: Path) -> set[str]:
    """Every module `path` imports, absolute names (relative imports resolved)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    return imports_of(path.read_text(), package)


def imports_of(source: str, package: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


MODULES = sorted((layer, path) for layer in ALLOWED for path in (PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize(
    ("layer", "path"), MODULES, ids=[str(p.relative_to(PACKAGE)) for _, p in MODULES]
)
def test_domain_and_service_modules_import_no_adapter(layer, path):
    names = imported(path)
    outward = sorted(n for n in names if _within(n, OUTER))
    assert outward == [], f"{path.relative_to(ROOT)} imports {outward}"
    ours = {n for n in names if _within(n, ("dueflow",))}
    stray = sorted(n for n in ours if n != "dueflow" and not _within(n, ALLOWED[layer]))
    assert stray == [], f"{path.relative_to(ROOT)} reaches outside its layer: {stray}"


def test_the_check_sees_an_outward_import():
    """The walker finds imports at any depth, relative ones included."""
    assert "dueflow.domain.events" in imported(PACKAGE / "service" / "tasks.py")
    probe = "def f():\n    from ..adapters.db import engine\n    import requests\n"
    names = imports_of(probe, "dueflow.service")
    assert {"dueflow.adapters.db", "dueflow.adapters.db.engine", "requests"} <= names


def test_every_layer_has_modules():
    assert {layer for layer, _ in MODULES} == set(ALLOWED)


# -- the tests' own rule: no test module imports another ------------------------------------------
TEST_MODULES = sorted((ROOT / "tests").rglob("*.py"))


def imported_test_modules(source: str, package: str) -> list[str]:
    """The test modules (`tests/**/test_*.py`) that `source`, in `package`, imports."""
    found = set()
    for name in imports_of(source, package):
        if not name.startswith("tests."):
            continue
        parts = name.split(".")
        for i, part in enumerate(parts, start=1):
            if part.startswith("test_") and ROOT.joinpath(*parts[:i]).with_suffix(".py").is_file():
                found.add(".".join(parts[:i]))
    return sorted(found)


def test_no_test_module_imports_another():
    """What several test modules share lives in tests/support (or a conftest.py's fixtures), so
    running, moving or changing one test module never changes another."""
    offenders = {
        str(path.relative_to(ROOT)): imported
        for path in TEST_MODULES
        if (
            imported := imported_test_modules(
                path.read_text(), ".".join(path.relative_to(ROOT).parts[:-1])
            )
        )
    }
    assert offenders == {}


def test_the_check_sees_a_test_module_import():
    probe = (
        "from tests.functions import test_event_functions as single\n"
        "def f():\n    from ..functions.test_tasks_api import assert_problem\n"
        "from tests.support.events import deliver\n"
        "import tests.manifests.test_manifests\n"
    )
    assert imported_test_modules(probe, "tests.integration") == [
        "tests.functions.test_event_functions",
        "tests.functions.test_tasks_api",
        "tests.manifests.test_manifests",
    ]

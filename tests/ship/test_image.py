"""The Dockerfile and .dockerignore, read as a builder would (no container engine needed): a
multi-stage build on a pinned slim Python, the dependencies in a layer of their own, the shared
package installed (not copied), a non-root final stage without installers, build tools or
tests, and the function served on $PORT. hadolint runs in test_linters.py."""

from __future__ import annotations

import re
from pathlib import Path

from tests.ship import tools
from tests.support import manifests

DOCKERFILE = (tools.ROOT / "Dockerfile").read_text()


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _args() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for word, rest in _instructions() if word == "ARG" and "=" in rest
    )


def test_multi_stage_on_a_pinned_slim_python():
    stages = _stages()
    assert len(stages) >= 2, "a build stage and a runtime stage"
    version = _args()["PYTHON_VERSION"]
    assert re.fullmatch(r"3\.11\.\d+", version), "pinned to a patch release of 3.11"
    assert re.fullmatch(r"20\.\d+\.\d+", _args()["NODE_VERSION"]), "the web stage's Node, pinned"
    images = [stage[0][1].split()[0] for stage in stages]
    for image in images:
        # Python, or the web stage's npm (functions/web), whose files alone are copied on
        assert image in (
            "python:${PYTHON_VERSION}-slim-bookworm",
            "node:${NODE_VERSION}-bookworm-slim",
        )
    assert images[-1].startswith("python:"), "the function runs on the slim Python image"


def test_dependencies_are_a_layer_before_the_code():
    build = _stages()[0]
    copies = [(i, rest) for i, (word, rest) in enumerate(build) if word == "COPY"]
    runs = [(i, rest) for i, (word, rest) in enumerate(build) if word == "RUN"]
    first_copy, pyproject = copies[0]
    assert pyproject.split()[0] == "shared/pyproject.toml", "only the dependency list first"
    install_deps = next(i for i, rest in runs if "--requirement" in rest)
    code = next(i for i, rest in copies if rest.split()[0] == "shared/")
    install_code = next(i for i, rest in runs if "./shared" in rest)
    assert first_copy < install_deps < code < install_code
    assert "--no-deps" in build[install_code][1], "the code layer installs no dependencies"
    assert "-e " not in build[install_code][1] and "--editable" not in build[install_code][1]
    assert "--only-binary=:all:" in build[install_deps][1], "wheels only: no compiler needed"


def test_the_final_stage_runs_the_function_as_user_10001_on_port():
    final = _stages()[-1]
    words = [word for word, _ in final]
    user = [rest for word, rest in final if word == "USER"]
    assert user and user[-1].split(":")[0] == "10001", "the user of the manifests' securityContext"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "FUNCTION_TARGET=${FUNCTION}" in env and "FUNCTION_SOURCE=/app/main.py" in env
    assert re.search(r"\bPORT=8080\b", env), "functions-framework listens on $PORT"
    assert final[-1] == ("ENTRYPOINT", '["functions-framework"]')
    copies = [rest for word, rest in final if word == "COPY"]
    assert any(c.startswith("--from=build /opt/venv") for c in copies)
    assert "functions/${FUNCTION}/main.py /app/main.py" in copies
    runs = " ".join(rest for word, rest in final if word == "RUN")
    assert "pip uninstall" in runs and "setuptools" in runs, "no installer in the final image"
    assert "apt-get install" not in DOCKERFILE, "no build tools anywhere"


def test_the_containers_user_matches_every_manifest():
    services = [d for d in manifests._load() if d.kind == "Service"]
    assert services
    for doc in services:
        context = manifests._container(doc)["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (10001, 10001), doc.ident
    assert "--uid 10001" in DOCKERFILE and "--gid 10001" in DOCKERFILE


def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match plus **) as a regex over a slash path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _context_files() -> set[str]:
    """The files a builder sends as the context: the last matching .dockerignore line decides,
    and a line matches a file when it matches the file or one of its parent directories."""
    rules = []
    for line in (tools.ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _pattern_regex(line.lstrip("!").strip("/"))))
    sent = set()
    for path in tools.ROOT.rglob("*"):
        if not path.is_file() or ".git" in path.parts or ".venv" in path.parts:
            continue
        relative = path.relative_to(tools.ROOT).as_posix()
        parts = relative.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        included = True
        for negate, regex in rules:
            if any(regex.fullmatch(c) for c in candidates):
                included = negate
        if included:
            sent.add(relative)
    return sent


def test_the_build_context_is_only_what_the_images_are_built_from():
    sent = _context_files()
    functions = {p.parent.name for p in (tools.ROOT / "functions").glob("*/main.py")}
    assert {f"functions/{f}/main.py" for f in functions} <= sent
    assert "shared/pyproject.toml" in sent and "shared/dueflow/config.py" in sent
    migrations = tools.ROOT / "shared" / "dueflow" / "adapters" / "db" / "migrations"
    assert {
        p.relative_to(tools.ROOT).as_posix()
        for p in migrations.rglob("*.py")
        if "__pycache__" not in p.parts
    } <= sent
    for path in sent:
        top = Path(path).parts[0]
        assert top in {"shared", "functions"}, f"{path} would be sent to the builder"
        assert "__pycache__" not in path and ".egg-info" not in path and "tests" not in path
    assert not any(p.startswith(("tests/", "docs/", "charts/", ".venv/")) for p in sent)


def test_dockerignore_emulation_itself():
    assert _pattern_regex("**/__pycache__").fullmatch("a/b/__pycache__")
    assert _pattern_regex("**/__pycache__").fullmatch("__pycache__")
    assert _pattern_regex("functions/*/main.py").fullmatch("functions/tasks/main.py")
    assert not _pattern_regex("functions/*/main.py").fullmatch("functions/a/b/main.py")
    assert _pattern_regex("*").fullmatch("tests") and not _pattern_regex("*").fullmatch("a/b")

"""The linters, each run on what it checks: hadolint on the Dockerfile, shellcheck on every shell
script, actionlint (with shellcheck on the workflows' run: steps) on every workflow. Each is
shown to reject a known-bad input too, so a linter that checks nothing cannot pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ship import tools

SCRIPTS = sorted((tools.ROOT / "scripts").glob("*.sh"))
WORKFLOWS = sorted((tools.ROOT / ".github" / "workflows").glob("*.yml"))


def _report(result) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def test_there_is_something_to_lint():
    assert (tools.ROOT / "Dockerfile").is_file()
    names = {p.name for p in SCRIPTS}
    assert {"images.sh", "deploy.sh", "deploy-minikube.sh"} <= names
    assert {"ci.yml", "release.yml", "deploy.yml"} <= {p.name for p in WORKFLOWS}


# -- hadolint -----------------------------------------------------------------------------------


def _hadolint(path: Path):
    # style is the lowest threshold: any finding at all fails.
    return tools.run([tools.tool("hadolint"), "--no-color", "--failure-threshold", "style", path])


def test_hadolint_passes_the_dockerfile():
    result = _hadolint(tools.ROOT / "Dockerfile")
    assert result.returncode == 0, _report(result)


def test_hadolint_rejects_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    result = _hadolint(bad)
    assert result.returncode != 0
    assert "DL3007" in result.stdout and "DL3013" in result.stdout, _report(result)


# -- shellcheck ---------------------------------------------------------------------------------


def _shellcheck(*paths: Path):
    command = [tools.tool("shellcheck"), "--severity=style", "--external-sources", "--norc"]
    return tools.run([*command, *map(str, paths)])


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_shellcheck_passes(script):
    result = _shellcheck(script)
    assert result.returncode == 0, _report(result)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_scripts_are_strict_bash_and_executable(script):
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n"), script.name
    assert "set -euo pipefail" in text, script.name
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"


def test_shellcheck_rejects_a_bad_script(tmp_path):
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nfor f in $(ls *.txt); do rm $f; done\n")
    result = _shellcheck(bad)
    assert result.returncode != 0 and "SC2045" in result.stdout, _report(result)


# -- actionlint ---------------------------------------------------------------------------------


def _actionlint(*paths: Path):
    tools.tool("shellcheck")  # actionlint checks run: scripts with it when it is on PATH
    return tools.run([tools.tool("actionlint"), "-no-color", *map(str, paths)])


def test_actionlint_passes_every_workflow():
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, _report(result)


def test_actionlint_rejects_a_bad_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with: {reff: main}\n"
        "      - run: echo ${{ github.event.pull_request.title }} $UNQUOTED\n"
    )
    result = _actionlint(bad)
    assert result.returncode != 0
    assert "reff" in result.stdout and "shellcheck" in result.stdout, _report(result)

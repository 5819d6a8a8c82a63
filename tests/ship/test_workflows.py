"""What the GitHub workflows promise, beyond actionlint's syntax and type checks
(test_linters.py): CI on every change, images per function tagged with the commit SHA only,
staging on every main build, production behind an approval, and a rollback path."""

from __future__ import annotations

import re

import yaml

from tests.ship import tools
from tests.support import manifests

WORKFLOWS = tools.ROOT / ".github" / "workflows"


def _load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def _uses(job: dict) -> list[str]:
    return [step["uses"] for step in job.get("steps", []) if "uses" in step]


def test_ci_runs_on_pull_requests_and_pushes():
    ci = _load("ci.yml")
    assert "pull_request" in ci["on"] and "push" in ci["on"] and "workflow_call" in ci["on"]
    runs = [run for job in ci["jobs"].values() for run in _runs(job)]
    assert "make lint" in runs and "make test" in runs
    assert any("tests/ship/test_chart.py" in r for r in runs), "chart lint as its own job"
    assert any("tests/manifests" in r for r in runs), "manifest validation as its own job"
    assert ci["permissions"] == {"contents": "read"}


def test_main_is_covered_by_ci_through_the_release():
    ci, release = _load("ci.yml"), _load("release.yml")
    assert "main" in ci["on"]["push"]["branches-ignore"]
    assert release["on"]["push"]["branches"] == ["main"]
    assert release["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert release["jobs"]["images"]["needs"] == "ci", "no image of a commit that failed CI"


def test_release_pushes_one_image_per_function_tagged_with_the_sha():
    release = _load("release.yml")
    images = release["jobs"]["images"]
    assert sorted(images["strategy"]["matrix"]["function"]) == manifests.FUNCTIONS
    assert images["permissions"]["packages"] == "write"
    build = next(s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push"))
    settings = build["with"]
    assert settings["push"] is True
    assert settings["tags"].endswith(":${{ github.sha }}") and "\n" not in settings["tags"].strip()
    assert settings["build-args"] == "FUNCTION=${{ matrix.function }}"
    assert settings["sbom"] is True and settings["provenance"] == "mode=max"
    assert any(u.startswith("actions/attest-build-provenance@") for u in _uses(images))
    for path in WORKFLOWS.glob("*.yml"):
        assert not re.search(r":latest\b", path.read_text()), f"{path.name} uses a latest tag"


def test_deploy_goes_to_staging_after_every_release_then_production_on_approval():
    deploy = _load("deploy.yml")
    trigger = deploy["on"]["workflow_run"]
    assert trigger["workflows"] == ["release"] and trigger["branches"] == ["main"]
    jobs = deploy["jobs"]
    assert "conclusion == 'success'" in jobs["staging"]["if"]
    assert jobs["staging"]["with"]["environment"] == "staging"
    assert jobs["staging"]["with"]["sha"] == "${{ github.event.workflow_run.head_sha }}"
    assert jobs["production"]["needs"] == "staging"
    assert jobs["production"]["with"]["environment"] == "production"
    for job in ("staging", "production", "manual"):
        assert jobs[job]["uses"] == "./.github/workflows/deploy-environment.yml"


def test_deploy_can_be_run_by_hand_and_roll_back():
    deploy = _load("deploy.yml")
    inputs = deploy["on"]["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == ["deploy", "rollback"]
    assert inputs["environment"]["type"] == "environment"
    environment = _load("deploy-environment.yml")
    (job,) = environment["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}", "protection rules apply"
    assert job["concurrency"]["cancel-in-progress"] is False
    runs = "\n".join(_runs(job))
    assert "scripts/deploy.sh deploy" in runs and "scripts/deploy.sh rollback" in runs
    setup_helm = next(s for s in job["steps"] if s.get("uses", "").startswith("azure/setup-helm"))
    assert re.fullmatch(r"v3\.\d+\.\d+", setup_helm["with"]["version"]), "a pinned Helm"


def test_deploy_script_is_atomic_with_the_sha_tag():
    script = (tools.ROOT / "scripts" / "deploy.sh").read_text()
    assert "upgrade --install" in script and "--atomic" in script
    assert '--set-string "image.tag=$IMAGE_TAG"' in script

"""The GitHub Actions workflows and the pre-commit hooks, checked offline with the tools made for them.

check-jsonschema validates the workflows against the GitHub workflow schema it bundles; shellcheck checks every
`run:` step as the runner's bash would run it; pre-commit validates its config and runs the hooks in a copy of the
repository. Whether the workflows succeed on GitHub is not tested here (no network to GitHub, no Docker).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the test environment's tools (check-jsonschema, shellcheck, pre-commit)
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def _load(name: str) -> dict:
    # PyYAML reads the key `on` as the boolean True (YAML 1.1); GitHub reads it as "on".
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())
    workflow["on"] = workflow.pop(True)
    return workflow


def _runs(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", []))


def _check_jsonschema(*paths: Path, schema: str = "vendor.github-workflows") -> subprocess.CompletedProcess:
    command = [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_there_are_a_ci_and_a_release_workflow():
    assert [path.name for path in WORKFLOWS] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_matches_the_github_workflow_schema(path):
    result = _check_jsonschema(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: push\njobs:\n  test:\n    steps:\n      - run: make test\n")  # no runs-on

    result = _check_jsonschema(broken)

    assert result.returncode == 1
    assert "broken.yml" in result.stdout


def test_dependabot_config_matches_its_schema_and_keeps_the_actions_current():
    path = REPO_ROOT / ".github" / "dependabot.yml"
    result = _check_jsonschema(path, schema="vendor.dependabot")
    assert result.returncode == 0, result.stdout + result.stderr
    ecosystems = [update["package-ecosystem"] for update in yaml.safe_load(path.read_text())["updates"]]
    assert ecosystems == ["github-actions"]  # Python pins move together through `make lock`, never one by one


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_every_run_step_passes_shellcheck(path, tmp_path):
    workflow = yaml.safe_load(path.read_text())
    for job_name, job in workflow["jobs"].items():
        for index, step in enumerate(job.get("steps", [])):
            if "run" not in step:
                continue
            # GitHub substitutes ${{ }} expressions before bash sees the script (bash -e {0}).
            script = tmp_path / f"{job_name}-{index}.sh"
            script.write_text("#!/usr/bin/env bash\nset -e\n" + EXPRESSION.sub("expression", step["run"]))
            result = subprocess.run([str(BIN / "shellcheck"), str(script)], capture_output=True, text=True)
            assert result.returncode == 0, f"{path.name} job {job_name} step {index}:\n{result.stdout}"


def test_ci_lints_tests_compiles_uploads_the_pipelines_and_builds_both_images():
    ci = _load("ci.yml")
    assert {"push", "pull_request", "workflow_call"} <= set(ci["on"])
    test_steps = ci["jobs"]["test"]["steps"]
    runs = _runs({"jobs": {"test": ci["jobs"]["test"]}})
    assert "bash .ci/run" in runs  # make lint + make test, the project's own CI entry point
    assert "compile.py --output-dir build" in runs
    upload = next(step for step in test_steps if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "build/"
    python = next(step for step in test_steps if step.get("uses", "").startswith("actions/setup-python@"))
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={python['with']['python-version']},<3.12"
    images = ci["jobs"]["images"]
    assert images["strategy"]["matrix"]["image"] == ["components", "serving"]
    assert "images/${{ matrix.image }}/Dockerfile" in _runs({"jobs": {"images": images}})


def test_ci_audits_both_lock_files_with_a_pinned_pip_audit():
    """pip-audit needs PyPI's vulnerability service, which only GitHub's runners reach: it runs in the workflow,
    not in .ci/run. --strict makes an unreachable service fail the job instead of passing as "no vulnerabilities"."""
    audit = _load("ci.yml")["jobs"]["audit"]
    runs = _runs({"jobs": {"audit": audit}})
    assert re.search(r"pip install [^\n]*\bpip-audit==\d+\.\d+\.\d+\b", runs), "install an exact pip-audit version"
    command = next(line for line in runs.splitlines() if line.startswith("pip-audit "))  # `run: >-` folds it
    for flag in ("--strict", "--disable-pip", "--no-deps"):
        assert flag in command, flag
    assert "-r requirements.txt" in command
    assert "-r images/serving/requirements.txt" in command
    ci_run = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert not [line for line in ci_run if "pip-audit" in line.split("#", 1)[0]]  # no vulnerability service there


def test_ci_entry_point_lints_builds_the_images_and_tests_the_one_environment():
    code = [line.split("#", 1)[0] for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    makes = [line.strip() for line in code if "make " in line]
    # The images on a base made from Debian packages (no registry needed), before the suite whose container
    # tier runs them; the base only when this machine has none for this version of its script.
    assert makes == [
        "make lint",
        '"${sudo[@]}" make base-image BASE_IMAGE_TAG="$base" CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt',
        'make images IMAGE_BASE="$base"',
        "make test",
    ]
    assert not [line for line in code if ".venv-serving" in line]  # one environment since issue 15
    for tool in ("dockerd", "debootstrap", "rclone", "promtool"):
        assert f"command -v {tool}" in "\n".join(code), tool


def test_release_runs_ci_then_pushes_versioned_images_and_publishes_the_compiled_yaml():
    release = _load("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["jobs"]["ci"]["uses"] == "./.github/workflows/ci.yml"
    publish = release["jobs"]["publish"]
    assert publish["needs"] == "ci"
    assert publish["permissions"] == {"contents": "write", "packages": "write"}
    runs = _runs(release)
    assert '"v$version"' in runs  # the tag must name the project version
    assert "docker push" in runs
    assert '--image-registry "$REGISTRY" --image-tag "$VERSION"' in runs
    assert "gh release create" in runs
    assert "build/*.yaml build/components/*.yaml" in runs
    assert "latest" not in runs


def test_pre_commit_config_is_valid():
    result = subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pre_commit_hooks_pass_on_the_repository_and_stop_a_bad_change(repository_copy, tmp_path):
    environment = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "SKIP": ""}
    (repository_copy / ".venv").symlink_to(BIN.parent)  # the hooks run .venv/bin/...

    def git(*arguments: str) -> None:
        subprocess.run(["git", *arguments], cwd=repository_copy, check=True, capture_output=True, env=environment)

    def pre_commit() -> subprocess.CompletedProcess:
        command = [str(BIN / "pre-commit"), "run", "--all-files", "--color", "never"]
        return subprocess.run(command, cwd=repository_copy, capture_output=True, text=True, env=environment)

    config = yaml.safe_load((repository_copy / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: hook["name"] for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "generated-docs", "import-guard"}

    def outcome(output: str, hook: str) -> str:
        found = re.search(rf"^{re.escape(hooks[hook])}\.+(Passed|Failed|Skipped)$", output, re.MULTILINE)
        assert found, f"hook {hook} not run:\n{output}"
        return found[1]

    git("init", "-q")
    git("add", "-A")
    clean = pre_commit()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.count("Passed") == len(hooks)
    assert {hook: outcome(clean.stdout, hook) for hook in hooks} == dict.fromkeys(hooks, "Passed")

    logic = repository_copy / "components" / "select_model" / "logic.py"
    # An unused import, and kfp in a module a step runs.
    logic.write_text(logic.read_text().replace("import json\n", "import json\nimport os\n\nimport kfp  # noqa: F401\n"))
    component = repository_copy / "components" / "select_model" / "component.py"
    component.write_text(component.read_text().replace('"""Passes on', '"""Picks and passes on'))  # stale docs
    git("add", "-A")
    dirty = pre_commit()
    assert dirty.returncode == 1
    assert re.search(r"ruff check\.+Failed", dirty.stdout)
    assert "F401" in dirty.stdout
    assert re.search(r"generated docs are current.*\.+Failed", dirty.stdout)
    assert "docs/components.md is stale" in dirty.stdout
    assert outcome(dirty.stdout, "import-guard") == "Failed"
    assert re.search(r"^components/select_model/logic\.py:\d+: .*\bkfp\b", dirty.stdout, re.MULTILINE), dirty.stdout

"""docs/writing-a-component.md works as written: its worked example, typed into a fresh copy of the repository,
compiles into the training pipeline, is documented, and passes its tests and the project's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# The environment running the tests; make must use it as it is (-o: never rebuild it from the copy's files).
VENV = Path(sys.executable).parent.parent
MAKE = ["make", "-s", "-o", f"{VENV}/.installed", f"VENV={VENV}"]
# Not the settings of a `make test` this suite may run under (its variables would reach the nested make).
CLEAN_ENVIRONMENT = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
GUIDE = REPO_ROOT / "docs" / "writing-a-component.md"
# A fenced block the reader is told to put in a file: ```python file=components/... (a diff block: a change to apply)
FILE_BLOCK = re.compile(r"^```(?P<language>\w+) file=(?P<path>\S+)\n(?P<content>.*?)^```$", re.MULTILINE | re.DOTALL)


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=CLEAN_ENVIRONMENT)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_the_guide_names_the_files_of_its_example():
    paths = [block["path"] for block in FILE_BLOCK.finditer(GUIDE.read_text())]
    assert paths == [
        "components/explain_model/logic.py",
        "tests/unit/test_explain_model.py",
        "components/explain_model/component.py",
        "components/explain_model/__init__.py",
        "tests/components/test_explain_model.py",
        "pipelines/training_pipeline.py",
    ]


def test_the_worked_example_works_as_written(repository_copy):
    _run([*MAKE, "new-component", "NAME=explain_model"], repository_copy)
    written = []
    for block in FILE_BLOCK.finditer(GUIDE.read_text()):
        if block["language"] == "diff":
            patch = repository_copy / "guide.patch"
            patch.write_text(block["content"])
            # One line of context each side: the guide's change still applies beside steps you added yourself.
            applied = subprocess.run(
                ["git", "apply", "-C1", str(patch)], cwd=repository_copy, capture_output=True, text=True
            )
            assert applied.returncode == 0, (
                f"the guide's change to {block['path']} no longer applies ({applied.stderr.strip()}): update the "
                "diff in docs/writing-a-component.md. (If you changed that pipeline for a step of your own right "
                "there, this test guards the guide, not your step.)"
            )
            patch.unlink()
        else:
            (repository_copy / block["path"]).write_text(block["content"])
        written.append(block["path"])

    _run([*MAKE, "docs"], repository_copy)
    assert "## explain_model" in (repository_copy / "docs" / "components.md").read_text()
    _run([sys.executable, "compile.py", "--output-dir", "build"], repository_copy)
    training = next(yaml.safe_load_all((repository_copy / "build" / "training_pipeline.yaml").read_text()))
    assert "explain-model" in training["root"]["dag"]["tasks"]
    tests = [
        "tests/unit/test_explain_model.py",
        "tests/components/test_explain_model.py",
        "tests/unit/test_docs_reference.py",
        "tests/pipelines/test_compile.py",
    ]
    result = _run([str(VENV / "bin" / "pytest"), "-v", "-p", "no:cacheprovider", *tests], repository_copy)
    assert "test_explains_a_trained_model_on_its_test_rows PASSED" in result.stdout
    assert "test_the_feature_the_target_depends_on_ranks_first PASSED" in result.stdout
    _run([str(VENV / "bin" / "ruff"), "check", *written], repository_copy)
    _run([str(VENV / "bin" / "ruff"), "format", "--check", *written], repository_copy)

"""`make new-component NAME=...` scaffolds a component that compiles, is documented and passes its own tests as is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from new_component import ScaffoldError, check_name, files, scaffold

REPO_ROOT = Path(__file__).resolve().parents[2]
# The environment running the tests; make must use it as it is (-o: never rebuild it from the copy's files).
VENV = Path(sys.executable).parent.parent
MAKE = ["make", "-s", "-o", f"{VENV}/.installed", f"VENV={VENV}"]
# Not the settings of a `make test` this suite may run under (its variables would reach the nested make).
CLEAN_ENVIRONMENT = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
NAME = "score_rows"


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=CLEAN_ENVIRONMENT)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_a_scaffolded_component_compiles_is_documented_and_passes_its_tests(repository_copy):
    _run([*MAKE, "new-component", f"NAME={NAME}"], repository_copy)

    for path in files(NAME):
        assert (repository_copy / path).is_file(), path
    # compile.py discovers it: its own YAML, loadable for reuse.
    _run([sys.executable, "compile.py", "--output-dir", "build"], repository_copy)
    assert (repository_copy / "build" / "components" / f"{NAME}.yaml").is_file()
    # make new-component regenerated the reference, so the stale-docs test passes with the new entry in it.
    assert f"## {NAME}" in (repository_copy / "docs" / "components.md").read_text()
    tests = [
        f"tests/unit/test_{NAME}.py",
        f"tests/components/test_{NAME}.py",
        "tests/unit/test_docs_reference.py",
        "tests/pipelines/test_compile.py::test_component_yaml_loads_for_reuse",
    ]
    result = _run([str(VENV / "bin" / "pytest"), "-v", "-p", "no:cacheprovider", *tests], repository_copy)
    assert f"tests/unit/test_{NAME}.py::test_keeps_the_chosen_columns_in_the_order_given PASSED" in result.stdout
    assert f"tests/components/test_{NAME}.py::test_writes_the_result_dataset_and_its_metrics PASSED" in result.stdout
    assert f"test_component_yaml_loads_for_reuse[{NAME}] PASSED" in result.stdout
    # The generated code is in the project's style as is.
    generated = [str(path) for path in files(NAME)]
    _run([str(VENV / "bin" / "ruff"), "check", *generated], repository_copy)
    _run([str(VENV / "bin" / "ruff"), "format", "--check", *generated], repository_copy)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("score", "verb_noun"),
        ("ScoreRows", "verb_noun"),
        ("score-rows", "verb_noun"),
        ("_score_rows", "verb_noun"),
        ("score_rows_", "verb_noun"),
        ("2nd_score", "verb_noun"),
        ("train_model", "components/train_model/ already exists"),
    ],
)
def test_a_bad_or_taken_name_is_refused_naming_the_problem(name, problem):
    with pytest.raises(ScaffoldError, match=problem):
        check_name(name, REPO_ROOT)


def test_nothing_is_written_when_one_of_the_files_exists(tmp_path):
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / f"test_{NAME}.py").write_text("# mine\n")

    with pytest.raises(ScaffoldError, match=f"tests/unit/test_{NAME}.py already exist"):
        scaffold(NAME, tmp_path)
    assert not (tmp_path / "components").exists()
    assert (tmp_path / "tests" / "unit" / f"test_{NAME}.py").read_text() == "# mine\n"


def test_make_without_a_name_prints_the_usage():
    result = subprocess.run([*MAKE, "new-component"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "usage: make new-component NAME=verb_noun" in result.stdout

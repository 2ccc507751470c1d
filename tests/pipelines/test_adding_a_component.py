"""Adding a component, as a user does: `make new-component NAME=...` scaffolds one in the catalogue's layout
(components/<name>/ with its tests beside it, its README and metadata) that compiles, is documented and passes its
own tests as is; docs/writing-a-component.md works as written (its worked example, typed into a fresh copy of the
repository, compiles into the training pipeline and passes its tests and the project's)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from new_component import MAX_NAME_LENGTH, PLACEHOLDERS, ScaffoldError, check_name, files, scaffold

REPO_ROOT = Path(__file__).resolve().parents[2]
# The environment running the tests; make must use it as it is (-o: never rebuild it from the copy's files).
VENV = Path(sys.executable).parent.parent
MAKE = ["make", "-s", "-o", f"{VENV}/.installed", f"VENV={VENV}"]
# Not the settings of a `make test` this suite may run under (its variables would reach the nested make).
CLEAN_ENVIRONMENT = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
NAME = "score_rows"
GUIDE = REPO_ROOT / "docs" / "writing-a-component.md"
# A fenced block the reader is told to put in a file: ```python file=components/... (a diff block: a change to apply)
FILE_BLOCK = re.compile(r"^```(?P<language>\w+) file=(?P<path>\S+)\n(?P<content>.*?)^```$", re.MULTILINE | re.DOTALL)


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=CLEAN_ENVIRONMENT)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _pytest(tests: list[str], cwd: Path) -> str:
    """Runs the tests in the copy, verbosely: returns the output, which names each test PASSED."""
    return _run([str(VENV / "bin" / "pytest"), "-v", "-p", "no:cacheprovider", *tests], cwd).stdout


def _check_style(paths: list[str], cwd: Path) -> None:
    """The files pass the project's lint and format checks as written."""
    _run([str(VENV / "bin" / "ruff"), "check", *paths], cwd)
    _run([str(VENV / "bin" / "ruff"), "format", "--check", *paths], cwd)


def test_a_scaffolded_component_compiles_is_documented_and_passes_its_tests(repository_copy):
    made = _run([*MAKE, "new-component", f"NAME={NAME}"], repository_copy)

    # The catalogue's layout: the package, its tests beside it, and the README and metadata make generated.
    component = repository_copy / "components" / NAME
    assert sorted(str(path.relative_to(component)) for path in component.rglob("*") if path.is_file()) == [
        "README.md",
        "__init__.py",
        "component.py",
        "logic.py",
        "metadata.yaml",
        "tests/test_component.py",
        "tests/test_logic.py",
    ]
    for path in files(NAME):
        assert (repository_copy / path).is_file(), path
    metadata = yaml.safe_load((component / "metadata.yaml").read_text())
    assert metadata["name"] == NAME
    assert f"\n# {NAME}\n" in (component / "README.md").read_text()
    # The package is its docstring alone: KFP-facing code imports the component from its module.
    init = (component / "__init__.py").read_text()
    assert init.startswith('"""') and init.count("\n") == 1
    # compile.py discovers it: its own YAML, loadable for reuse.
    _run([sys.executable, "compile.py", "--output-dir", "build"], repository_copy)
    assert (repository_copy / "build" / "components" / f"{NAME}.yaml").is_file()
    assert f"## {NAME}" in (repository_copy / "docs" / "components.md").read_text()
    # The example step's description cannot ship as this component's: make new-component says what to replace,
    # and `make lint`'s docs check refuses the component until each placeholder is gone.
    check = [sys.executable, "docs/reference.py", "--check"]
    refused = subprocess.run(check, cwd=repository_copy, capture_output=True, text=True, env=CLEAN_ENVIRONMENT)
    assert refused.returncode == 1
    for file_name in PLACEHOLDERS:
        assert f"components/{NAME}/{file_name} still says" in made.stderr
        assert f"components/{NAME}/{file_name} still says" in refused.stderr
    for file_name, (text, _) in PLACEHOLDERS.items():
        (component / file_name).write_text((component / file_name).read_text().replace(text, "Scores the rows."))
    _run([*MAKE, "docs"], repository_copy)
    _run(check, repository_copy)
    tests = [
        f"components/{NAME}",
        "tests/unit/test_docs_reference.py",
        "tests/pipelines/test_compile.py::test_component_yaml_loads_for_reuse",
        "tests/static/test_import_guard.py::test_the_repository_passes_every_check",
    ]
    output = _pytest(tests, repository_copy)
    assert f"components/{NAME}/tests/test_logic.py::test_keeps_the_chosen_columns_in_the_order_given PASSED" in output
    assert f"components/{NAME}/tests/test_component.py::test_writes_the_result_dataset_and_its_metrics PASSED" in output
    assert f"test_component_yaml_loads_for_reuse[{NAME}] PASSED" in output
    assert "test_the_repository_passes_every_check PASSED" in output
    # The generated code is in the project's style as is.
    _check_style([str(path) for path in files(NAME)], repository_copy)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("score", "verb_noun"),
        ("ScoreRows", "verb_noun"),
        ("score-rows", "verb_noun"),
        ("_score_rows", "verb_noun"),
        ("score_rows_", "verb_noun"),
        ("2nd_score", "verb_noun"),
        ("compute_permutation_importances", "31 characters, more than 30"),
        ("train_model", "components/train_model/ already exists"),
        ("read_dataset", "imports components._common.datasets.read_dataset beside the component"),
        ("write_dataset", "imports components._common.datasets.write_dataset beside the component"),
        # pytest would collect the component function and its error class, imported by the tests, as tests.
        ("test_rows", "pytest collects names beginning with 'test'"),
        ("testify_rows", "pytest collects names beginning with 'test'"),
    ],
)
def test_a_bad_or_taken_name_is_refused_naming_the_problem(name, problem):
    with pytest.raises(ScaffoldError, match=problem):
        check_name(name, REPO_ROOT)


def test_a_scaffold_with_the_longest_name_passes_the_lint_and_format_checks(repository_copy):
    """Names up to MAX_NAME_LENGTH give lines within the 120 columns `make lint` allows (a long name overflowed)."""
    name = "compute_" + "x" * (MAX_NAME_LENGTH - len("compute_"))

    _check_style([str(path) for path in scaffold(name, repository_copy)], repository_copy)


def test_nothing_is_written_when_one_of_the_files_exists(tmp_path):
    existing = tmp_path / "components" / NAME / "tests" / "test_logic.py"
    existing.parent.mkdir(parents=True)
    existing.write_text("# mine\n")

    with pytest.raises(ScaffoldError, match=f"components/{NAME}/ already exists"):
        scaffold(NAME, tmp_path)
    assert [path for path in tmp_path.rglob("*") if path.is_file()] == [existing]
    assert existing.read_text() == "# mine\n"


def test_make_without_a_name_prints_the_usage():
    result = subprocess.run([*MAKE, "new-component"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode != 0
    assert "usage: make new-component NAME=verb_noun" in result.stdout


def test_the_guide_names_the_files_of_its_example():
    paths = [block["path"] for block in FILE_BLOCK.finditer(GUIDE.read_text())]
    assert paths == [
        "components/explain_model/logic.py",
        "components/explain_model/tests/test_logic.py",
        "components/explain_model/component.py",
        "components/explain_model/__init__.py",
        "components/explain_model/tests/test_component.py",
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
        "components/explain_model",
        "tests/unit/test_docs_reference.py",
        "tests/pipelines/test_compile.py",
        "tests/static/test_import_guard.py::test_the_repository_passes_every_check",
    ]
    output = _pytest(tests, repository_copy)
    assert "test_explains_a_trained_model_on_its_test_rows PASSED" in output
    assert "test_the_feature_the_target_depends_on_ranks_first PASSED" in output
    assert "test_the_repository_passes_every_check PASSED" in output
    _check_style(written, repository_copy)

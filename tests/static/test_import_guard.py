"""The import guard (tools/import_guard.py, also a pre-commit hook): no runtime module imports kfp, directly or when
it is imported, and no component function's body relies on module-level imports. The repository passes it, and it
fails on each kind of breach planted in a copy of the runtime packages (never in the repository itself)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools import import_guard

REPO_ROOT = Path(__file__).resolve().parents[2]

# A component whose body uses two module-level names: an import (json) and a constant read in a comprehension
# (a nested scope). Its parameters, the builtins, the annotations and what the body imports itself are fine.
PLANTED_COMPONENT = '''\
import json

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

LIMIT = 3


@dsl.component(base_image="python:3.11")
def plant_rows(dataset: Input[Dataset], result: Output[Dataset], columns: list = []) -> int:
    """Keeps the first rows."""
    import pathlib

    text = pathlib.Path(dataset.path).read_text()
    rows = [line for line in text.splitlines()][:LIMIT]
    result.metadata["columns"] = json.dumps(columns)
    return len(rows)
'''
# Pulls kfp in without an import statement the syntax tree could see: only importing the module reveals it.
HIDDEN_IMPORT = 'import importlib\n\nimportlib.import_module("".join(["k", "fp"]))\n'


def _plant_at_the_top(path: Path, line: str) -> None:
    """Puts ``line`` among the module's first imports (after a ``from __future__`` import, which must come first)."""
    lines = path.read_text().splitlines(keepends=True)
    future = [index for index, text in enumerate(lines) if text.startswith("from __future__ import")]
    at = future[-1] + 1 if future else 0
    path.write_text("".join([*lines[:at], line + "\n", *lines[at:]]))


def _line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A copy of the runtime packages with one breach of each kind planted in it."""
    root = tmp_path_factory.mktemp("planted")
    for package in import_guard.RUNTIME_PACKAGES:
        shutil.copytree(REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    components = root / "components"
    # A direct import at the top of a logic module: seen in its source and when it is imported.
    logic = components / "ingest_data" / "logic.py"
    _plant_at_the_top(logic, "import kfp  # planted")
    # A logic module importing a helper that pulls kfp in: seen only when imported, naming the chain.
    (components / "_common" / "planted_helper.py").write_text(HIDDEN_IMPORT)
    prepare = components / "prepare_data" / "logic.py"
    prepare.write_text(prepare.read_text() + "\nfrom components._common import planted_helper  # noqa: E402, F401\n")
    # An import inside a function: never runs on import, but would in the step; seen in the source.
    validate = components / "validate_data" / "logic.py"
    validate.write_text(
        validate.read_text() + "\n\ndef planted():\n    from kfp import dsl  # planted\n\n    return dsl\n"
    )
    # Where kfp belongs, or where the guard does not look: a component.py, a component's tests.
    (components / "plant_rows").mkdir()
    (components / "plant_rows" / "component.py").write_text(PLANTED_COMPONENT)
    (components / "ingest_data" / "tests").mkdir()
    (components / "ingest_data" / "tests" / "test_planted.py").write_text("import kfp  # tests may\n")
    return root


@pytest.fixture(scope="module")
def imported(planted) -> list[import_guard.Violation]:
    return import_guard.transitive_kfp_imports(planted)


def test_the_repository_passes_every_check():
    violations = import_guard.check(REPO_ROOT)

    assert violations == [], "\n".join(map(str, violations))
    runtime = {str(path.relative_to(REPO_ROOT)) for path in import_guard.runtime_modules(REPO_ROOT)}
    assert {"components/ingest_data/logic.py", "model_bundle/bundle.py", "serving/app.py"} <= runtime
    assert not {path for path in runtime if path.endswith("/component.py") or "/tests/" in path}
    assert len(import_guard.component_modules(REPO_ROOT)) >= 10


def test_a_kfp_import_planted_in_a_logic_module_fails_the_source_check(planted):
    violations = import_guard.direct_kfp_imports(planted)

    logic = planted / "components" / "ingest_data" / "logic.py"
    validate = planted / "components" / "validate_data" / "logic.py"
    assert sorted(map(str, violations)) == [
        f"components/ingest_data/logic.py:{_line_of(logic, 'import kfp')}: imports kfp: runtime code must not "
        "import kfp",
        f"components/validate_data/logic.py:{_line_of(validate, 'from kfp import dsl')}: imports kfp: runtime code "
        "must not import kfp",
    ]


def test_a_kfp_import_planted_in_a_logic_module_fails_the_import_check(imported):
    messages = {violation.path: violation.message for violation in imported}

    assert messages["components/ingest_data/logic.py"] == (
        "importing it imports kfp (through components.ingest_data.logic)"
    )


def test_kfp_pulled_in_through_another_module_is_found_on_import_naming_the_chain(planted, imported):
    messages = {violation.path: violation.message for violation in imported}

    assert messages["components/prepare_data/logic.py"] == (
        "importing it imports kfp (through components.prepare_data.logic -> components._common.planted_helper)"
    )
    assert messages["components/_common/planted_helper.py"] == (
        "importing it imports kfp (through components._common.planted_helper)"
    )
    # Invisible to the source check: no import statement names kfp.
    assert "components/_common/planted_helper.py" not in {v.path for v in import_guard.direct_kfp_imports(planted)}


def test_only_the_planted_modules_and_those_importing_them_fail(planted, imported):
    planted_modules = ("components.ingest_data.logic", "components._common.planted_helper")
    assert {violation.path for violation in imported} >= {
        "components/ingest_data/logic.py",
        "components/prepare_data/logic.py",
        "components/_common/planted_helper.py",
    }
    # Any other module reported imports a planted one (e.g. prepare_data/report.py imports its logic.py).
    for violation in imported:
        assert violation.message.endswith(tuple(f"{name})" for name in planted_modules)), violation
    # component.py files and a component's tests may import kfp: they are not runtime modules.
    checked = {str(path.relative_to(planted)) for path in import_guard.runtime_modules(planted)}
    assert "components/ingest_data/tests/test_planted.py" not in checked
    assert "components/plant_rows/component.py" not in checked


def test_a_component_body_using_module_level_names_fails_naming_each(planted):
    violations = import_guard.component_body_globals(planted)

    component = planted / "components" / "plant_rows" / "component.py"
    assert [str(violation) for violation in violations] == [
        f"components/plant_rows/component.py:{_line_of(component, '[:LIMIT]')}: component plant_rows uses 'LIMIT' "
        "from the module; import it inside the function body (only the body is compiled into the component)",
        f"components/plant_rows/component.py:{_line_of(component, 'json.dumps')}: component plant_rows uses 'json' "
        "from the module; import it inside the function body (only the body is compiled into the component)",
    ]


def test_the_script_the_pre_commit_hook_runs_fails_on_the_planted_copy(planted):
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "import_guard.py"), "--root", str(planted)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 1
    assert re.search(r"^components/ingest_data/logic.py:\d+: imports kfp", completed.stderr, re.MULTILINE)
    assert "component plant_rows uses 'json' from the module" in completed.stderr
    assert completed.stderr.rstrip().endswith("violation(s)")


def test_the_pre_commit_hook_runs_the_guard_whenever_runtime_code_changes():
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    [hook] = [hook for repo in config["repos"] for hook in repo["hooks"] if hook["id"] == "import-guard"]

    assert hook["entry"] == ".venv/bin/python tools/import_guard.py"
    assert hook["pass_filenames"] is False
    for path in ("components/ingest_data/logic.py", "model_bundle/bundle.py", "serving/app.py"):
        assert re.match(hook["files"], path), path

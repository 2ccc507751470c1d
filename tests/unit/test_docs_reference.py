"""docs/reference.py: docs/components.md, docs/pipeline-parameters.md and each component's README.md and metadata.yaml
are generated from the code (policy keys from the policy dataclasses, dependencies from the imports), complete, and
never stale."""

# No `from __future__ import annotations`: KFP reads the test component's annotations as types.
import datetime
import json
import sys
from pathlib import Path

import pytest
import yaml
from kfp import dsl

from components import discover
from docs import reference
from new_component import PLACEHOLDERS, scaffold
from pipelines import PIPELINES

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_current():
    stale = reference.stale_files()
    assert not stale, f"{', '.join(map(str, stale))} out of date with the code: run `make docs` and commit"


def test_a_changed_or_missing_file_is_reported_stale(tmp_path):
    for path, content in reference.render().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content, encoding="utf-8")
    assert reference.stale_files(tmp_path) == []

    (tmp_path / reference.COMPONENTS_FILE).write_text("edited by hand\n", encoding="utf-8")
    (tmp_path / reference.PIPELINE_PARAMETERS_FILE).unlink()
    assert reference.stale_files(tmp_path) == [reference.COMPONENTS_FILE, reference.PIPELINE_PARAMETERS_FILE]


def test_no_component_ships_the_scaffolds_placeholder_text():
    left = reference.unfinished()
    assert not left, "\n".join(left)


def test_a_scaffolded_component_is_refused_until_each_placeholder_is_replaced(tmp_path):
    scaffold("score_rows", tmp_path)

    assert reference.unfinished(tmp_path) == [
        "components/score_rows/__init__.py still says '(say here what your step does)' (the scaffold's placeholder): "
        "replace it with the package docstring: what the step does",
        "components/score_rows/component.py still says 'Keeps the chosen columns of a dataset, in the order given.' "
        "(the scaffold's placeholder): replace it with the function docstring's first line: what the step does "
        "(the docs and the KFP UI show it)",
        "components/score_rows/logic.py still says 'replace `transform` with your step.' (the scaffold's "
        "placeholder): replace it with the module docstring: what its decisions are",
    ]
    component = tmp_path / "components" / "score_rows" / "component.py"
    component.write_text(component.read_text().replace(PLACEHOLDERS["component.py"][0], "Scores each row."))
    assert [problem.split(" still says")[0] for problem in reference.unfinished(tmp_path)] == [
        "components/score_rows/__init__.py",
        "components/score_rows/logic.py",
    ]


def test_the_check_fails_naming_a_placeholder_left_in_a_component(monkeypatch, capsys):
    monkeypatch.setattr(reference, "stale_files", lambda: [])
    monkeypatch.setattr(reference, "unfinished", lambda: ["components/score_rows/__init__.py still says ..."])
    monkeypatch.setattr(sys, "argv", ["reference.py", "--check"])

    assert reference.main() == 1
    assert "components/score_rows/__init__.py still says ..." in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(discover()))
def test_every_input_and_output_of_every_component_is_described(name):
    component = discover()[name]
    inputs, outputs = reference.ports(component, component.python_func)
    undescribed = [port.name for port in inputs + outputs if not port.description]
    assert not undescribed, f"components/{name}/component.py: document {undescribed} in the docstring"


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_every_pipeline_parameter_is_described(name):
    inputs, _ = reference.ports(PIPELINES[name], PIPELINES[name].pipeline_func)
    assert inputs
    assert not [port.name for port in inputs if not port.description]


def test_types_defaults_and_every_kind_of_description_are_read():
    @dsl.component(base_image="python:3.11")
    def count_rows(
        rows: dsl.Input[list[dsl.Dataset]], report: dsl.Output[dsl.Markdown], limit: int = 10, label: str = ""
    ) -> int:
        """Counts rows.

        Args:
            rows: The datasets.
            report: What was counted.
            limit: At most this many, and a
                second line.
            label: Shown in the report.

        Returns:
            The number of rows.
        """
        return 0

    inputs, outputs = reference.ports(count_rows, count_rows.python_func)

    assert inputs == [
        reference.Port("rows", "List[Dataset]", "The datasets.", "required"),
        reference.Port("limit", "Integer", "At most this many, and a\nsecond line.", "`10`"),
        reference.Port("label", "String", "Shown in the report.", '`""`'),
    ]
    assert outputs == [
        reference.Port("report", "Markdown", "What was counted."),
        reference.Port("Output", "Integer", "The number of rows."),
    ]


def test_named_outputs_are_read_from_the_returns_section():
    _, outputs = reference.ports(discover()["ingest_data"], discover()["ingest_data"].python_func)
    described = {port.name: port.description for port in outputs}

    assert described["rows"] == "Number of rows read."
    assert described["content_sha256"].startswith("sha256 of the data itself")


# --- policies, per-component README.md and metadata.yaml -----------------------------------------------------------

FAKE_POLICY_MODULE = '''
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FakePolicy:
    """How the fake step decides.

    Attributes:
        mode: `fast` or `slow`.
        limit: At most this many, and a
            second line.
        labels: Extra labels.
        strict: Stop at the first problem.
    """

    mode: str = "fast"
    limit: int = 10
    labels: dict = field(default_factory=dict)
    strict: bool = True
'''


@pytest.fixture
def fake_policy(tmp_path, monkeypatch):
    """A package whose policy class sits in a submodule, registered as the policy of `fake_policy`."""
    package = tmp_path / "fake_policies"
    package.mkdir()
    (package / "__init__.py").write_text('"""Fake."""\n')
    (package / "policy.py").write_text(FAKE_POLICY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(reference.POLICIES, "fake_policy", ("fake_policies", "FakePolicy"))
    yield package
    for name in [name for name in sys.modules if name.split(".")[0] == "fake_policies"]:
        del sys.modules[name]  # each test imports its own copy


def test_a_policy_class_is_found_in_its_package_and_its_keys_read_from_the_dataclass(fake_policy):
    policy = reference.policy_class("fake_policy")

    assert policy.__name__ == "FakePolicy" and policy.__module__ == "fake_policies.policy"
    assert reference.policy_keys(policy) == [
        reference.PolicyKey("mode", "str", "fast", "`fast` or `slow`."),
        reference.PolicyKey("limit", "int", 10, "At most this many, and a\nsecond line."),
        reference.PolicyKey("labels", "dict", {}, "Extra labels."),
        reference.PolicyKey("strict", "bool", True, "Stop at the first problem."),
    ]
    assert [key.default for key in reference.policy_keys(policy)] == ['`"fast"`', "`10`", "`{}`", "`true`"]
    assert reference.policy_summary(policy) == "How the fake step decides."


def test_a_policy_parameter_without_a_class_or_a_key_without_a_description_is_refused(fake_policy, monkeypatch):
    with pytest.raises(KeyError, match="parameter unknown_policy has no policy class: add it to POLICIES"):
        reference.policy_class("unknown_policy")

    monkeypatch.setitem(reference.POLICIES, "moved_policy", ("fake_policies", "MovedPolicy"))
    with pytest.raises(LookupError, match="moved_policy -> no class MovedPolicy in fake_policies"):
        reference.policy_class("moved_policy")

    (fake_policy / "policy.py").write_text(
        FAKE_POLICY_MODULE.replace("        strict: Stop at the first problem.\n", "")
    )
    sys.modules.pop("fake_policies.policy", None)
    with pytest.raises(ValueError, match="describe key 'strict' under Attributes:"):
        reference.policy_keys(reference.policy_class("fake_policy"))


def test_policy_keys_and_deprecated_parameters_are_rendered(fake_policy):
    @dsl.component(base_image="python:3.11")
    def fake_step(fake_policy: dict = {}, old_limit: int = None):  # noqa: B006, RUF013 (KFP compiles these)
        """Does the fake thing.

        Args:
            fake_policy: Overrides of the keys below.
            old_limit: Deprecated: use `fake_policy['limit']`.
        """

    text = reference.render_components({"fake_step": fake_step})

    assert "| `old_limit` (deprecated) | Integer | none | Deprecated: use `fake_policy['limit']`. |" in text
    assert "| `fake_policy` | Dict | `{}` | Overrides of the keys below. |" in text
    assert "#### `fake_policy` keys" in text
    assert "Read by `FakePolicy`" in text
    assert "| `limit` | int | `10` | At most this many, and a second line. |" in text
    assert "| `strict` | bool | `true` | Stop at the first problem. |" in text


def _policy_inputs():
    for name, component in discover().items():
        yield f"components/{name}", reference.ports(component, component.python_func)[0]
    for name, pipeline in PIPELINES.items():
        yield f"pipeline {name}", reference.ports(pipeline, pipeline.pipeline_func)[0]


def test_every_policy_parameter_has_its_class_and_every_key_a_default_and_a_description():
    checked = set()
    for where, inputs in _policy_inputs():
        for parameter in reference.policy_parameters(inputs):
            keys = reference.policy_keys(reference.policy_class(parameter))
            assert keys, f"{where}: {parameter} has no keys"
            checked.add(parameter)
    assert checked == set(reference.POLICIES), "every registered policy is some component's parameter"


COMPONENT_FILES = {
    "proj/__init__.py": '"""A project."""\n',
    "proj/step/__init__.py": '"""A step."""\n',
    "proj/step/component.py": "from kfp import dsl\nimport json\n",
    "proj/step/logic.py": (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from proj.shared import helper\n"
        "from . import plain\n"
        "if TYPE_CHECKING:\n"
        "    import yaml\n"
        "def run():\n"
        "    import numpy\n"
    ),
    "proj/step/plain.py": "import os\n",
    "proj/step/tests/test_logic.py": "import pytest\n",
    "proj/shared/__init__.py": "",
    "proj/shared/helper.py": "import pandas as pd\nfrom google.cloud import storage\n",
}


def test_dependencies_are_the_pins_of_what_the_code_imports_followed_through_the_project(tmp_path):
    for path, text in COMPONENT_FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    pins = reference.requirement_pins(
        "kfp==2.17.3\n    # via x\nnumpy==2.4.6\npandas==2.3.3\ngoogle-cloud-storage==3.17.1\n"
        "google-cloud-core==2.8.0\nPyYAML==6.0.4\npytest==9.0.0\n"
    )

    modules = reference.imported_modules(tmp_path / "proj" / "step", tmp_path, project=("proj",))
    found = reference.dependencies(tmp_path / "proj" / "step", tmp_path, pins, project=("proj",))

    # Lazy imports count; TYPE_CHECKING imports, the standard library and the component's tests do not.
    assert modules == {"kfp", "kfp.dsl", "numpy", "pandas", "google.cloud", "google.cloud.storage"}
    assert found == {"google-cloud-storage": "3.17.1", "kfp": "2.17.3", "numpy": "2.4.6", "pandas": "2.3.3"}
    del pins["numpy"]
    with pytest.raises(LookupError, match=r"imports \['numpy'\], which requirements.txt does not pin"):
        reference.dependencies(tmp_path / "proj" / "step", tmp_path, pins, project=("proj",))


def test_a_component_that_loads_a_model_lists_scikit_learn_though_it_imports_none():
    # deploy_model smoke-tests the model file it serves: joblib.load imports scikit-learn.
    modules = reference.imported_modules(REPO_ROOT / "components" / "deploy_model", REPO_ROOT)

    assert "sklearn" in modules


def test_every_component_has_metadata_in_the_catalogue_fields_with_the_pins_of_requirements_txt():
    pins = reference.requirement_pins((REPO_ROOT / "requirements.txt").read_text())
    for path, content in reference.render_component_files(discover()).items():
        if path.name != reference.METADATA:
            continue
        metadata = yaml.safe_load(content)
        assert list(metadata) == ["name", "stability", "dependencies", "lastVerified"], path
        assert metadata["name"] == path.parent.name
        assert metadata["stability"] in reference.STABILITY_LEVELS
        assert metadata["dependencies"]["kubeflow"] == [{"name": "Pipelines", "version": f"=={pins['kfp']}"}]
        python = {item["name"]: item["version"] for item in metadata["dependencies"]["python"]}
        assert python and all(version == f"=={pins[name]}" for name, version in python.items()), path
        assert isinstance(metadata["lastVerified"], datetime.datetime)


def test_last_verified_changes_only_when_the_generated_files_change(tmp_path):
    components = {"select_model": discover()["select_model"]}
    readme = reference.COMPONENTS_DIR / "select_model" / reference.README
    metadata = reference.COMPONENTS_DIR / "select_model" / reference.METADATA

    first = reference.render_component_files(components, tmp_path, today=datetime.date(2030, 1, 1))
    for path, content in first.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content)
    again = reference.render_component_files(components, tmp_path, today=datetime.date(2030, 2, 1))
    (tmp_path / readme).write_text("an older README\n")
    changed = reference.render_component_files(components, tmp_path, today=datetime.date(2030, 2, 1))

    assert "lastVerified: 2030-01-01T00:00:00Z" in first[metadata]
    assert again == first
    assert "lastVerified: 2030-02-01T00:00:00Z" in changed[metadata] and changed[readme] == first[readme]


def test_a_changed_or_missing_component_file_is_reported_stale(tmp_path):
    files = reference.render()
    for path, content in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content, encoding="utf-8")
    name = sorted(discover())[0]

    (tmp_path / reference.COMPONENTS_DIR / name / reference.README).unlink()
    (tmp_path / reference.COMPONENTS_DIR / name / reference.METADATA).write_text("edited\n")

    stale = reference.stale_files(tmp_path)
    assert reference.COMPONENTS_DIR / name / reference.README in stale
    assert reference.COMPONENTS_DIR / name / reference.METADATA in stale
    assert reference.COMPONENTS_FILE not in stale


@pytest.mark.parametrize("name", sorted(discover()))
def test_each_component_readme_has_an_example_pipeline_that_compiles(name, tmp_path, monkeypatch):
    component = discover()[name]
    readme = reference.render_component_readme(name, component, {"kfp": "2.17.3"})
    code = readme.split("```python\n", 1)[1].split("```\n", 1)[0]
    assert f"from components.{name}.component import {name}\n" in code
    monkeypatch.chdir(tmp_path)

    exec(compile(code, f"components/{name}/README.md", "exec"), {"__name__": "example"})

    compiled = yaml.safe_load((tmp_path / f"{name}_example.yaml").read_text())
    assert name.replace("_", "-") in json.dumps(compiled)

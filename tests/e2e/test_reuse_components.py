"""The compiled component YAML files are reusable on their own: examples/reuse_components.py builds a pipeline
from them alone and runs it under kfp.local, as a user's own repository would.

What that needs, precisely (the example's docstring says the same): building and compiling the pipeline need kfp
and the YAML files only, proven in an interpreter where this repository's packages cannot be imported; running the
steps needs the package wherever the steps run: the components image the YAML names (every step's code imports
it, nothing is installed at run time), or, with kfp.local's SubprocessRunner, this Python environment."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from compile import compile_all
from components._image import COMPONENTS_IMAGE

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "reuse_components.py"
PROJECT_PACKAGES = {"components", "pipelines", "model_bundle", "serving", "compile", "run_local"}
# Started first by an interpreter that has it on PYTHONPATH: this repository's packages then cannot be imported, as
# in an environment where the package was never installed (the test environment has it installed, editable).
NOT_INSTALLED = f"""
import sys


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(PROJECT_PACKAGES)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
"""


@pytest.fixture(scope="module")
def components_dir(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("build")
    compile_all(build)
    return build / "components"


def _example(*arguments: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *arguments], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )


@pytest.fixture
def without_the_package(tmp_path) -> dict:
    """An environment for a subprocess in which this repository's packages cannot be imported."""
    site = tmp_path / "not-installed"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NOT_INSTALLED)
    environment = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run(
        [sys.executable, "-c", "import components"], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert "No module named 'components'" in probe.stderr, probe.stderr
    return environment


def test_the_example_imports_nothing_of_this_repository():
    tree = ast.parse(EXAMPLE.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & PROJECT_PACKAGES


def test_a_pipeline_built_from_the_component_yaml_alone_runs_locally(components_dir, tmp_path):
    result = _example(
        "--components-dir", str(components_dir), "--pipeline-root", str(tmp_path / "root"),
        "--source-uri", "sample://house-prices?rows=300&seed=4", "--target", "energy_label",
        cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    outputs = dict(line.split(": ", 1) for line in result.stdout.splitlines() if line.startswith(("train: ", "test: ")))
    train_rows, train_path = outputs["train"].split(" rows at ")
    test_rows, test_path = outputs["test"].split(" rows at ")
    assert (int(train_rows), int(test_rows)) == (240, 60)
    assert pq.read_table(train_path).num_rows == 240
    assert "energy_label" in pq.read_schema(test_path).names
    assert Path(train_path).is_relative_to(tmp_path / "root")


def test_the_same_pipeline_compiles_for_a_cluster_with_kfp_alone_and_runs_in_the_components_image(
    components_dir, tmp_path, without_the_package
):
    result = _example(
        "--components-dir", str(components_dir), "--compile", "pipeline.yaml", cwd=tmp_path, env=without_the_package
    )

    assert result.returncode == 0, result.stderr
    document = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    spec = json_format.ParseDict(document, pipeline_spec_pb2.PipelineSpec())
    assert set(spec.root.dag.tasks) == {"ingest-data", "validate-data", "prepare-data"}
    # What the steps need where they run: the components image, whose package every step's code imports.
    for name, executor in document["deploymentSpec"]["executors"].items():
        container = executor["container"]
        code = " ".join(container.get("command", []) + container.get("args", []))
        assert container["image"] == COMPONENTS_IMAGE, name
        assert "pip install" not in code, f"{name} installs packages at run time"
        assert "from components." in code, f"{name}'s code imports nothing of the package: is the claim still true?"


def test_running_the_steps_locally_needs_the_package_in_this_environment(components_dir, tmp_path, without_the_package):
    result = _example("--components-dir", str(components_dir), cwd=tmp_path, env=without_the_package)

    assert result.returncode == 2
    assert "kfp.local runs each step in this Python environment" in result.stderr
    assert "(components, model_bundle), which is not installed here" in result.stderr
    assert "Running pipeline" not in result.stdout + result.stderr  # refused before any step started


def test_a_missing_components_directory_says_to_compile(tmp_path):
    result = _example("--components-dir", str(tmp_path / "nowhere"), cwd=tmp_path)

    assert result.returncode == 2
    assert "run `make compile` first" in result.stderr

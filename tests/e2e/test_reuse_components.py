"""The compiled component YAML files are reusable on their own: examples/reuse_components.py builds a pipeline
from them alone and runs it under kfp.local, as a user's own repository would."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from compile import compile_all

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "reuse_components.py"
PROJECT_PACKAGES = {"components", "pipelines", "model_bundle", "serving", "compile", "run_local"}


@pytest.fixture(scope="module")
def components_dir(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("build")
    compile_all(build)
    return build / "components"


def _example(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *arguments], cwd=cwd, capture_output=True, text=True, timeout=600
    )


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
        "--data-uri", "sample://house-prices?rows=300&seed=4", "--target", "energy_label",
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


def test_the_same_pipeline_compiles_for_a_cluster(components_dir, tmp_path):
    result = _example("--components-dir", str(components_dir), "--compile", "pipeline.yaml", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    spec = json_format.ParseDict(
        yaml.safe_load((tmp_path / "pipeline.yaml").read_text()), pipeline_spec_pb2.PipelineSpec()
    )
    assert set(spec.root.dag.tasks) == {"ingest-data", "validate-data", "prepare-data"}


def test_a_missing_components_directory_says_to_compile(tmp_path):
    result = _example("--components-dir", str(tmp_path / "nowhere"), cwd=tmp_path)

    assert result.returncode == 2
    assert "run `make compile` first" in result.stderr

"""The monitoring pipeline end to end under kfp.local, in both branches: a batch like the training data retrains
nothing; a drifted batch retrains through the training pipeline's gate and the approved model is served."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from components._common import registry
from components.ingest_data.samples import house_prices
from serving import local_server

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "house-prices"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(pipeline: str, state_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_local.py"), pipeline, "--state-dir", str(state_dir), *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=900,
    )
    completed.stdout = ANSI.sub("", completed.stdout)
    return completed


def versions(state_dir: Path) -> list[str]:
    client = registry.connect(f"sqlite:///{state_dir / 'mlflow.db'}")
    return sorted(str(version.version) for version in client.search_model_versions(f"name='{MODEL_NAME}'"))


def champion(state_dir: Path) -> str:
    client = registry.connect(f"sqlite:///{state_dir / 'mlflow.db'}")
    return str(registry.version_by_alias(client, MODEL_NAME, registry.CHAMPION).version)


@pytest.fixture
def data(tmp_path) -> dict[str, Path]:
    """make monitor-demo's data (last year's sales, this year's shifted market) and a batch like last year's."""
    spec = importlib.util.spec_from_file_location("monitor_demo_under_test", REPO_ROOT / "monitor_demo.py")
    monitor_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(monitor_demo)
    training, shifted = monitor_demo.write_data(tmp_path / "data")
    same = tmp_path / "batch-same.csv"
    house_prices(rows=400, seed=22).to_csv(same, index=False)
    return {"training": training, "same": same, "shifted": shifted}


def test_no_drift_retrains_nothing_and_drift_retrains_through_the_gate(tmp_path, data, free_ports):
    state_dir = tmp_path / "state"
    serving_port, metrics_port = free_ports(2)
    deploy = ["deploy_target=local", f"serving_port={serving_port}", f"metrics_port={metrics_port}"]
    monitor = ["monitoring", state_dir, f"retrain_source_uri={data['training'].parent}/houses-*.csv", *deploy]
    assert data["shifted"].parent == data["training"].parent  # retraining includes the new data
    try:
        trained = run(
            "training",
            state_dir,
            f"source_uri={data['training']}",
            'candidates=[{"model_type": "hist_gradient_boosting", "hyperparameters": {"max_iter": 20}}]',
            *deploy,
        )
        assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr
        assert champion(state_dir) == "1"

        calm = run(*monitor, f"batch_uri={data['same']}")
        assert calm.returncode == 0, calm.stdout[-3000:] + calm.stderr
        assert "# No drift" in calm.stdout
        assert "train-model" not in calm.stdout  # the retraining branch never ran
        assert "\nretraining: not run (no drift)\n" in calm.stdout  # run_local.py's verdict
        assert versions(state_dir) == ["1"]

        drifted = run(*monitor, f"batch_uri={data['shifted']}")
        assert drifted.returncode == 0, drifted.stdout[-3000:] + drifted.stderr
        assert "# Drift detected" in drifted.stdout
        assert re.search(r"passed champion v1: r2 [0-9.]+ vs [0-9.]+, gain \+", drifted.stdout), drifted.stdout[-3000:]
        assert versions(state_dir) == ["1", "2"]
        assert "\nretraining: ran; the gate approved the retrained model, registered as version 2. " in drifted.stdout
        assert champion(state_dir) == "2"
        # The retrained version is what serves, under the model's OIP name, reporting its digest and version.
        served = requests.get(f"http://127.0.0.1:{serving_port}/v2/models/{MODEL_NAME}", timeout=30).json()
        client = registry.connect(f"sqlite:///{state_dir / 'mlflow.db'}")
        assert served["parameters"]["sha256"] == client.get_model_version(MODEL_NAME, "2").tags["model_sha256"]
        assert served["parameters"]["model_version"] == "2"

        run_dir = max((state_dir / "pipeline_root").glob("monitoring-pipeline-*"), key=lambda path: path.name)
        assert "<html" in (run_dir / "detect-drift" / "report").read_text()[:2000].lower()
        assert (run_dir / "detect-drift" / "summary").read_text().startswith("# Drift detected")
    finally:
        local_server.stop_all(state_dir / "serving")

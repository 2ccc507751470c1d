"""The training pipeline run end to end under kfp.local, as a user runs it: `python run_local.py training ...`.

Runs real steps in subprocesses, a real MLflow SQLite registry and a real Seldon Core server on free ports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

import model_bundle
from components._common import registry
from serving import local_server
from serving.oip import table_body

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "house-prices"
SAMPLE = "sample://house-prices?rows=600&seed=11"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_training(state_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_local.py"), "training", "--state-dir", str(state_dir), *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )
    completed.stdout = ANSI.sub("", completed.stdout)
    completed.stderr = ANSI.sub("", completed.stderr)
    return completed


def registry_client(state_dir: Path):
    return registry.connect(f"sqlite:///{state_dir / 'mlflow.db'}")


def champion_version(state_dir: Path) -> str | None:
    version = registry.version_by_alias(registry_client(state_dir), MODEL_NAME, registry.CHAMPION)
    return None if version is None else str(version.version)


@pytest.fixture(scope="module")
def served(tmp_path_factory, free_ports):
    """One registry and one local server shared by the ordered runs of the champion/challenger test."""
    state_dir = tmp_path_factory.mktemp("state")
    serving_port, metrics_port = free_ports(2)
    ports = {"serving_port": serving_port, "metrics_port": metrics_port}
    yield state_dir, ports
    local_server.stop_all(state_dir / "serving")


def executor_output(run_dir: Path, task: str) -> dict:
    """What a step reported to KFP: its output parameters and its output artifacts with their metadata."""
    return json.loads((run_dir / task / "executor_output.json").read_text())


def latest_run_dir(state_dir: Path) -> Path:
    return max((state_dir / "pipeline_root").glob("training-pipeline-*"), key=lambda path: path.name)


def candidates(*configurations: tuple[str, dict]) -> str:
    return "candidates=" + json.dumps(
        [{"model_type": kind, "hyperparameters": params} for kind, params in configurations]
    )


def test_a_degraded_model_never_replaces_the_champion_and_the_best_of_three_candidates_does(served, houses_csv):
    state_dir, ports = served
    deploy = ["deploy_target=local", f"serving_port={ports['serving_port']}", f"metrics_port={ports['metrics_port']}"]
    model_url = f"http://127.0.0.1:{ports['serving_port']}/v2/models/{MODEL_NAME}"
    predictions_url = f"{model_url}/infer"

    # 1. A good model (a short boosting run) on an empty registry: cold start, deployed, champion.
    first = run_training(
        state_dir, f"source_uri={SAMPLE}", candidates(("hist_gradient_boosting", {"max_iter": 20})), *deploy
    )
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr
    assert "passed champion: none registered yet (cold start)" in first.stdout
    assert champion_version(state_dir) == "1"

    rows = pd.read_csv(houses_csv).drop(columns=["price"]).head(3)
    response = requests.post(
        predictions_url, data=table_body(rows), headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["shape"] == [3]
    metrics = requests.get(f"http://127.0.0.1:{ports['metrics_port']}/metrics", timeout=30).text
    assert re.search(r'^model_requests_total\{.*outcome="ok".*\} [1-9]', metrics, re.MULTILINE), metrics[:2000]
    served_sha = requests.get(model_url, timeout=30).json()["parameters"]["sha256"]

    # 2. A deliberately degraded configuration: registered (so the registry explains it), never deployed. Its data
    # is named by the deprecated data_uri, which still works for one release, saying what replaces it.
    degraded = run_training(
        state_dir,
        f"data_uri={SAMPLE}",
        candidates(("hist_gradient_boosting", {"max_iter": 2, "max_depth": 1})),
        *deploy,
    )
    assert degraded.returncode == 0, degraded.stdout[-3000:] + degraded.stderr
    deprecation = "DEPRECATED: parameter data_uri will be removed in the next release; use source_uri instead"
    assert deprecation in degraded.stdout + degraded.stderr
    assert deprecation not in first.stdout + first.stderr
    assert re.search(r"FAILED champion v1: r2 [0-9.]+ vs [0-9.]+, gain -[0-9.]+ \(95% CI \[-", degraded.stdout)
    assert "significantly worse" in degraded.stdout
    client = registry_client(state_dir)
    assert str(client.get_model_version_by_alias(MODEL_NAME, registry.CHALLENGER).version) == "2"
    assert client.get_model_version(MODEL_NAME, "2").tags["gate.approved"] == "false"
    # The lineage is what ingest read, whichever name gave it.
    for version in ("1", "2"):
        run = client.get_run(client.get_model_version(MODEL_NAME, version).run_id)
        assert run.data.params["source_uri"] == SAMPLE, version
    assert champion_version(state_dir) == "1"
    # The champion is still served, byte for byte.
    assert requests.get(model_url, timeout=30).json()["parameters"]["sha256"] == served_sha
    assert served_sha == client.get_model_version(MODEL_NAME, "1").tags["model_sha256"]

    # 3. Three candidates train in the loop; the best by validation score is the one evaluated, gated, deployed.
    better = run_training(
        state_dir,
        f"source_uri={SAMPLE}",
        candidates(("linear", {}), ("hist_gradient_boosting", {}), ("random_forest", {"n_estimators": 50})),
        *deploy,
    )
    assert better.returncode == 0, better.stdout[-3000:] + better.stderr
    run_dir = latest_run_dir(state_dir)
    cards = [
        model_bundle.read_card(run_dir / f"for-loop-1-iteration-{index}" / "train-model" / "model")
        for index in range(3)
    ]
    assert [card.model_type for card in cards] == ["linear", "hist_gradient_boosting", "random_forest"]
    best = max(range(3), key=lambda index: cards[index].validation_scores["r2"])
    assert f"# Model selection: candidate {best} ({cards[best].model_type}) wins" in better.stdout
    assert "significantly better" in better.stdout
    assert champion_version(state_dir) == "3"
    champion = registry_client(state_dir).get_model_version(MODEL_NAME, "3")
    assert champion.tags["model_sha256"] == cards[best].sha256
    assert champion.tags["deployment.endpoint"] == predictions_url
    assert requests.get(model_url, timeout=30).json()["parameters"]["sha256"] == cards[best].sha256

    # What the KFP UI shows for the run, and what MLflow keeps of it.
    evaluation = executor_output(run_dir, "evaluate-model")
    assert evaluation["artifacts"]["metrics"]["artifacts"][0]["metadata"]["test_rows"] == 120
    report = (run_dir / "evaluate-model" / "report").read_text()
    assert report.count('src="data:image/png;base64,') == 2  # predicted vs actual, residuals
    gate_metrics = executor_output(run_dir, "gate-model")["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert gate_metrics["approved"] == 1 and gate_metrics["gain_ci_low"] > 0
    assert (run_dir / "select-model" / "leaderboard").read_text().count("\n| ") == 4  # header and three candidates
    run_id = champion.run_id
    reports = {a.path for a in registry_client(state_dir).list_artifacts(run_id, "reports")}
    assert reports == {
        f"reports/{name}" for name in ("gate.md", "evaluation.html", "validation.md", "cleaning.md", "selection.md")
    }
    # Process-wide settings: tests/fixtures.py puts MLflow's URIs back after every test.
    mlflow.set_tracking_uri(f"sqlite:///{state_dir / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{state_dir / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    test_rows = pd.read_parquet(run_dir / "prepare-data" / "test").drop(columns=["price"]).head(5)
    served_predictions = requests.post(
        predictions_url, data=table_body(test_rows), headers={"Content-Type": "application/json"}, timeout=30
    ).json()["outputs"][0]["data"]
    np.testing.assert_allclose(pyfunc.predict(test_rows), served_predictions, rtol=1e-9)

    # The champion's schema is registered with it: its digest is a tag, the file is among the version's artifacts.
    schema_file = Path(mlflow.artifacts.download_artifacts(f"{champion.source}/schema.json", dst_path=str(state_dir)))
    assert champion.tags["schema_sha256"] == model_bundle.file_sha256(schema_file)
    assert {column["name"] for column in json.loads(schema_file.read_text())["columns"]} >= {"size_sqm", "price"}

    # New data is held to it: a renamed column stops the run at validation, naming the column and the check.
    renamed = state_dir / "renamed.csv"
    pd.read_csv(houses_csv).rename(columns={"size_sqm": "area_sqm"}).to_csv(renamed, index=False)
    changed = run_training(state_dir, f"source_uri={renamed}", *deploy)
    assert changed.returncode == 1
    assert "Inner task failed: 'validate-data'" in changed.stderr
    assert "[columns] column 'size_sqm' of the reference schema is missing" in changed.stdout
    assert "[columns] column 'area_sqm' is new" in changed.stdout
    assert champion_version(state_dir) == "3"

    # And so are requests: a category the champion never saw is refused with a 4xx naming the column.
    unseen = rows.head(1).assign(neighbourhood="Atlantis")
    refused = requests.post(
        predictions_url, data=table_body(unseen), headers={"Content-Type": "application/json"}, timeout=30
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["reason"] == "SCHEMA_VIOLATION"
    assert "column 'neighbourhood' has value(s) ['Atlantis'] outside its domain" in refused.json()["error"]


@pytest.mark.parametrize(
    ("case", "failed_step", "message"),
    [
        ("missing_target", "validate-data", "target column 'no_such_column' not found"),
        ("empty_file", "ingest-data", "is empty (0 bytes)"),
        ("missing_path", "ingest-data", "does not exist"),
        ("single_valued_target", "validate-data", "has a single value"),
    ],
)
def test_bad_input_stops_the_run_at_the_first_step_that_can_see_it(tmp_path, houses_csv, case, failed_step, message):
    if case == "missing_target":
        arguments = [f"source_uri={houses_csv}", "target=no_such_column"]
    elif case == "empty_file":
        (tmp_path / "empty.csv").write_bytes(b"")
        arguments = [f"source_uri={tmp_path / 'empty.csv'}"]
    elif case == "missing_path":
        arguments = [f"source_uri={tmp_path / 'nowhere.csv'}"]
    else:
        frame = pd.read_csv(houses_csv).assign(price=250000.0)
        frame.to_csv(tmp_path / "constant.csv", index=False)
        arguments = [f"source_uri={tmp_path / 'constant.csv'}"]

    completed = run_training(tmp_path / "state", *arguments)
    assert completed.returncode == 1
    assert f"Inner task failed: '{failed_step}'" in completed.stderr
    assert message in completed.stdout
    # The command's last words are the step's own error, not only the name of the step that failed.
    assert message in completed.stderr.strip().split("Inner task failed")[-1]
    assert not (tmp_path / "state" / "mlflow.db").exists(), "nothing may be registered from bad input"


@pytest.mark.parametrize(
    ("target", "task", "metric"),
    [("monthly_rent", "regression", "r2"), ("tenure", "classification", "f1_macro")],
)
def test_any_csv_with_mixed_columns_trains_and_renders_a_deployment(tmp_path, target, task, metric):
    """Not the sample: numeric and text columns, gaps, a text target and a numeric one. Tenure is derived from the
    rent (the leakage check names it), so each run excludes the other target."""
    path = tmp_path / "flats.csv"
    _flats(rows=600, seed=4).to_csv(path, index=False)
    other = {"monthly_rent": "tenure", "tenure": "monthly_rent"}[target]
    completed = run_training(
        tmp_path / "state",
        f"source_uri={path}",
        f"target={target}",
        f'exclude_columns=["{other}"]',
        f"model_name=flats-{task}",
        "deploy_target=none",
        "slice_column=city",
        candidates(("hist_gradient_boosting", {"max_iter": 50})),
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr
    assert f"validation passed: task {task}" in completed.stdout
    assert f"Primary metric `{metric}`" in completed.stdout
    assert f"rendered the SeldonDeployment for flats-{task} v1" in completed.stdout
    run_dir = latest_run_dir(tmp_path / "state")
    assert f"name: flats-{task}" in (run_dir / "deploy-model" / "manifest").read_text()
    card = model_bundle.read_card(run_dir / "select-model" / "model")
    assert card.excluded_columns == {other: "exclude_columns"} and other not in card.feature_names

    report = (run_dir / "evaluate-model" / "report").read_text()
    for city in ("Lyon", "Porto", "Graz", "Turku"):
        assert f"<td>{city}</td>" in report  # per-slice scores
    curves = executor_output(run_dir, "evaluate-model")["artifacts"]["classification_metrics"]["artifacts"][0]
    if task == "classification":
        matrix = curves["metadata"]["confusionMatrix"]
        assert [category["displayName"] for category in matrix["annotationSpecs"]] == ["long", "short"]
        assert sum(map(sum, (row["row"] for row in matrix["rows"]))) == 120
        roc = curves["metadata"]["confidenceMetrics"]
        assert 2 <= len(roc) <= 200
        assert all(0 <= point["falsePositiveRate"] <= 1 and 0 <= point["recall"] <= 1 for point in roc)
    else:
        assert curves["metadata"] == {}


def _flats(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["Lyon", "Porto", "Graz", "Turku"], size=rows)
    area = rng.uniform(20, 140, rows).round(1)
    floor = rng.integers(0, 12, rows).astype(float)
    floor[rng.random(rows) < 0.05] = np.nan
    furnished = rng.choice(["yes", "no", None], size=rows, p=[0.45, 0.5, 0.05])
    rent = (area * np.where(city == "Lyon", 16, 11) + floor * 8 + rng.normal(0, 60, rows)).round(0)
    tenure = np.where(rent > np.nanmedian(rent), "long", "short")
    return pd.DataFrame(
        {"city": city, "area_m2": area, "floor": floor, "furnished": furnished, "monthly_rent": rent, "tenure": tenure}
    )

"""The deploy step records every move of `champion` in the promotion history (components/_common/history.py), with
the digest it serves, what moved it and why, and outputs the history; a deployment that fails records nothing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest

from components._common import history, registry
from components._common.datasets import write_dataset
from components.deploy_model.component import deploy_model
from components.deploy_model.logic import DeploymentError, deploy_local
from components.register_model.logic import register

SCORES = {"r2": 0.9, "rmse": 1.0, "mae": 1.0}
TRAINING_JOB = "training-pipeline-2026-11-30-16-40-01-123456"
MONITORING_JOB = "monitoring-pipeline-2026-12-01-08-00-00-000001"


def _register(bundle, tmp_path, job: str):
    gate = tmp_path / f"gate-{job}.md"
    gate.write_text(f"# Challenger approved ({job})\n")
    return register(
        "", "houses", bundle.directory, SCORES, True, gate.read_text(), pipeline_job_id=job, reports={"gate.md": gate}
    )


def _deploy_locally(bundle, test_path, tmp_path, version: str, ports, **parameters) -> Path:
    """The deploy step as a pipeline runs it (target local); returns its history output."""
    output = tmp_path / f"history-v{version}.md"
    deploy_model.python_func(
        model=SimpleNamespace(path=str(bundle.directory)),
        test=SimpleNamespace(path=str(test_path)),
        model_name="houses",
        model_version=version,
        model_uri="unused by target local",
        serving_image="kfp-mlops-serving:test",
        manifest=SimpleNamespace(path=str(tmp_path / f"manifest-v{version}.yaml")),
        history=SimpleNamespace(path=str(output)),
        deploy_target="local",
        serving_port=ports[0],
        metrics_port=ports[1],
        **parameters,
    )
    return output


@pytest.mark.serving
def test_each_local_deployment_records_the_champion_move_with_the_digest_served(
    mlflow_state, regression_bundle, tmp_path, free_ports
):
    from serving import local_server

    bundle, test = regression_bundle
    test_path = tmp_path / "test.parquet"
    write_dataset(test, test_path)
    ports = free_ports(2)
    _register(bundle, tmp_path, "run-1")
    _register(bundle, tmp_path, "run-2")
    try:
        _deploy_locally(
            bundle, test_path, tmp_path, "1", ports, pipeline_job_name=TRAINING_JOB, pipeline_job_id="run-1"
        )
        output = _deploy_locally(
            bundle,
            test_path,
            tmp_path,
            "2",
            ports,
            pipeline_job_name=MONITORING_JOB,
            pipeline_job_id="run-2",
            reason="retrained on drifted data",
        )
    finally:
        local_server.stop_all(mlflow_state / "serving")

    moves = [move for move in history.read("", "houses") if move.alias == registry.CHAMPION]
    first, second = moves
    assert (first.from_version, first.to_version, second.from_version, second.to_version) == ("", "1", "1", "2")
    assert first.model_sha256 == second.model_sha256 == bundle.card.sha256
    assert (first.cause, first.moved_by) == ("training", f"{TRAINING_JOB} (KFP run run-1)")
    assert (second.cause, second.moved_by) == ("monitoring", f"{MONITORING_JOB} (KFP run run-2)")
    assert (first.gate, first.reason, first.forced) == ("approved", "passed the gate", False)
    assert second.reason == "retrained on drifted data"
    # Where the gate's reasons are: the very report register_model logged for that version.
    assert Path(urlparse(second.gate_reasons).path).read_text() == "# Challenger approved (run-2)\n"
    assert history.previous_champion(history.read("", "houses"), "2") == "1"
    report = output.read_text()
    assert f"| champion | 1 -> 2 | {bundle.card.sha256[:12]} | monitoring | {MONITORING_JOB} (KFP run run-2) |" in (
        report
    )
    assert history.OUTSIDE_THE_SUITE not in report


def test_a_rollback_records_the_reason_given_not_the_gate_s(mlflow_state, regression_bundle, tmp_path):
    from components.deploy_model.logic import Provenance, promote_champion

    bundle, _ = regression_bundle
    _register(bundle, tmp_path, "run-1")
    rollback = Provenance("rollback-pipeline-2026-12-02-03-00-00-000001", "run-9")

    move = promote_champion("", "houses", "1", bundle.card.sha256, {}, rollback)

    assert (move.cause, move.gate, move.reason) == ("rollback", "approved", "")


def test_a_failed_deployment_records_nothing_and_leaves_champion(mlflow_state, regression_bundle, tmp_path):
    bundle, test = regression_bundle
    _register(bundle, tmp_path, "run-1")
    second = _register(bundle, tmp_path, "run-2")
    client = registry.connect("")
    before = history.move_alias(client, "houses", registry.CHAMPION, "1", cause="training", moved_by="run-1")
    # The stored files change after registration: the version fails its digests before anything is started.
    card = Path(urlparse(second.source).path) / "model.json"
    card.write_text(card.read_text().replace('"price"', '"prices"'))
    rows = test[bundle.feature_names].head(3)

    with pytest.raises(DeploymentError, match=r"deploying houses v2 failed, nothing was started: .*model\.json"):
        deploy_local("houses", "2", bundle.card.sha256, rows, bundle.predict(rows), "", 1, 2)

    assert [move for move in history.read("", "houses") if move.alias == registry.CHAMPION] == [before]
    assert str(registry.version_by_alias(client, "houses", registry.CHAMPION).version) == "1"

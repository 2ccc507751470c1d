"""serve_champion_locally before any server starts: which version it serves, and what it refuses to serve."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from components._common import registry
from components.deploy_model.logic import DeploymentError, NoChampionError, serve_champion_locally
from components.register_model.logic import register
from serving import local_server

SCORES = {"r2": 0.9, "rmse": 1.0, "mae": 1.0}


def test_a_model_never_registered_has_no_champion(mlflow_state):
    with pytest.raises(NoChampionError, match=r"houses has no version with the alias 'champion' in the registry at"):
        serve_champion_locally("houses", http_port=9123, metrics_port=6123)


def test_a_version_the_gate_rejected_is_not_served(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    register("", "houses", bundle.directory, SCORES, False, "rejected", pipeline_job_id="run-1")

    with pytest.raises(NoChampionError, match=r"no version has passed the gate and been deployed yet"):
        serve_champion_locally("houses", http_port=9123, metrics_port=6123)


def test_a_champion_without_a_recorded_digest_is_refused(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-1")
    client = registry.connect("")
    client.set_registered_model_alias("houses", registry.CHAMPION, "1")
    client.delete_model_version_tag("houses", "1", "model_sha256")

    with pytest.raises(DeploymentError, match=r"houses v1 \(the champion\) has no model_sha256 tag"):
        serve_champion_locally("houses", http_port=9123, metrics_port=6123)


def test_champion_files_changed_after_registration_are_refused_before_loading(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    registered = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-1")
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, "1")
    with open(Path(urlparse(registered.source).path) / "model.joblib", "ab") as stream:
        stream.write(b"tampered")

    with pytest.raises(DeploymentError, match=r"houses v1 \(the champion\) cannot be served: sha256 digest mismatch"):
        serve_champion_locally("houses", http_port=9123, metrics_port=6123)

    assert local_server.running(mlflow_state / "serving") == []


def test_a_champion_whose_name_cannot_be_served_is_refused_naming_it(mlflow_state, regression_bundle):
    # The OIP model name (and the cluster's) is the deployment name: a name Kubernetes refuses is refused here too.
    bundle, _ = regression_bundle
    register("", "2024_houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-1")
    registry.connect("").set_registered_model_alias("2024_houses", registry.CHAMPION, "1")

    with pytest.raises(DeploymentError, match=r"model_name '2024_houses' .* does not start with a letter"):
        serve_champion_locally("2024_houses", http_port=9123, metrics_port=6123)

    assert local_server.running(mlflow_state / "serving") == []
    assert not (mlflow_state / "serving" / "models").exists()

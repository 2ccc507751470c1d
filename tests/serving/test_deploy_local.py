"""The deploy step's local target against a real registry and real servers: a model that fails to serve
never becomes the champion, and the model served before keeps being served. And serving the registry's champion
when a run deployed nothing (`make demo` after `make stop`, or again while it serves)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

from components._common import registry
from components.deploy_model.logic import DeploymentError, deploy_local, serve_champion_locally, smoke_payload
from components.register_model.logic import register
from serving import local_server

pytestmark = pytest.mark.serving

SCORES = {"r2": 0.9, "rmse": 1.0, "mae": 1.0}


def _served_sha256(port: int) -> str:
    return requests.get(f"http://127.0.0.1:{port}/health/status", timeout=60).json()["jsonData"]["sha256"]


@pytest.fixture
def champion_v1(mlflow_state, regression_bundle, free_ports):
    """Version 1 registered, deployed locally and champion; yields (bundle, test rows, ports)."""
    bundle, test = regression_bundle
    http_port, metrics_port = free_ports(2)
    register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-1")
    rows = test[bundle.feature_names].head(3)
    deploy_local("houses", "1", bundle.card.sha256, rows, bundle.predict(rows), "", http_port, metrics_port)
    yield bundle, rows, http_port, metrics_port
    local_server.stop_all(mlflow_state / "serving")


def test_successful_deploy_serves_the_registered_files_and_moves_champion(mlflow_state, champion_v1):
    bundle, _, http_port, _ = champion_v1
    client = registry.connect("")
    assert str(registry.version_by_alias(client, "houses", registry.CHAMPION).version) == "1"
    tags = client.get_model_version("houses", "1").tags
    assert tags["deployment.endpoint"] == f"http://127.0.0.1:{http_port}/api/v1.0/predictions"
    assert _served_sha256(http_port) == bundle.card.sha256
    [server] = local_server.running(mlflow_state / "serving")
    # Served from the registry's copy, not from the pipeline's own artifact.
    assert server.model_dir.startswith(str(mlflow_state / "serving" / "models" / "houses" / "v1"))


def test_a_version_whose_server_refuses_to_start_is_rolled_back(mlflow_state, champion_v1, tmp_path):
    bundle, rows, http_port, metrics_port = champion_v1
    registered = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-2")
    # The stored files change after registration (register itself refuses a model that fails its digest).
    with open(Path(urlparse(registered.source).path) / "model.joblib", "ab") as stream:
        stream.write(b"tampered")

    with pytest.raises(
        DeploymentError, match=r"(?s)deploying houses v2 failed: .*digest mismatch.*restored the previous"
    ):
        deploy_local("houses", "2", bundle.card.sha256, rows, bundle.predict(rows), "", http_port, metrics_port)

    assert str(registry.version_by_alias(registry.connect(""), "houses", registry.CHAMPION).version) == "1"
    assert _served_sha256(http_port) == bundle.card.sha256


def test_a_version_that_answers_wrongly_is_rolled_back(mlflow_state, champion_v1):
    bundle, rows, http_port, metrics_port = champion_v1
    register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-2")
    wrong = bundle.predict(rows) + 1.0

    with pytest.raises(DeploymentError, match=r"(?s)smoke test: served predictions .* differ .*restored the previous"):
        deploy_local("houses", "2", bundle.card.sha256, rows, wrong, "", http_port, metrics_port)

    assert str(registry.version_by_alias(registry.connect(""), "houses", registry.CHAMPION).version) == "1"
    [server] = local_server.running(mlflow_state / "serving")
    assert "/v1/" in server.model_dir
    assert _served_sha256(http_port) == bundle.card.sha256


def _predict(port: int, rows) -> list:
    response = requests.post(
        f"http://127.0.0.1:{port}/api/v1.0/predictions",
        data=smoke_payload(rows),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["ndarray"]


def test_after_stop_the_champion_is_served_again_from_the_registry(mlflow_state, champion_v1):
    bundle, rows, http_port, metrics_port = champion_v1
    local_server.stop_all(mlflow_state / "serving")

    served = serve_champion_locally("houses", "", http_port, metrics_port)

    assert (served.model_name, served.version, served.started) == ("houses", "1", True)
    assert served.server.metrics_port == metrics_port
    assert [server.pid for server in local_server.running(mlflow_state / "serving")] == [served.server.pid]
    assert served.server.model_dir.startswith(str(mlflow_state / "serving" / "models" / "houses" / "v1"))
    assert _served_sha256(http_port) == bundle.card.sha256
    assert [row[0] for row in _predict(http_port, rows)] == pytest.approx(list(bundle.predict(rows)), rel=1e-9)
    # The alias stays where the deployment put it.
    assert str(registry.version_by_alias(registry.connect(""), "houses", registry.CHAMPION).version) == "1"


def test_a_server_already_serving_the_champion_is_kept(mlflow_state, champion_v1):
    _, rows, http_port, metrics_port = champion_v1
    [before] = local_server.running(mlflow_state / "serving")

    served = serve_champion_locally("houses", "", http_port, metrics_port)

    assert served.started is False
    assert served.server == before
    assert local_server.running(mlflow_state / "serving") == [before]
    assert len(_predict(http_port, rows)) == len(rows)


def test_a_new_champion_replaces_the_served_one_on_the_same_port(mlflow_state, champion_v1, classification_bundle):
    _, _, http_port, metrics_port = champion_v1
    [before] = local_server.running(mlflow_state / "serving")
    other, other_test = classification_bundle
    register("", "houses", other.directory, {"f1_macro": 0.9}, True, "approved", pipeline_job_id="run-2")
    # The alias moved without this port's server being replaced (e.g. deployed elsewhere).
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, "2")

    served = serve_champion_locally("houses", "", http_port, metrics_port)

    assert (served.version, served.started) == ("2", True)
    [after] = local_server.running(mlflow_state / "serving")
    assert after.http_port == http_port and after.pid != before.pid
    assert "/v2/" in after.model_dir
    assert _served_sha256(http_port) == other.card.sha256
    rows = other_test[other.feature_names].head(3)
    assert [row[0] for row in _predict(http_port, rows)] == list(other.predict(rows))

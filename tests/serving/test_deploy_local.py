"""The deploy step's local target and its smoke test against a real registry and real model servers: a model that
fails to serve never becomes the champion, and the model served before keeps being served; an old server can never
pass for a new version. And serving the registry's champion when a run deployed nothing (`make demo` after
`make stop`, or again while it serves), with the "try it" examples a run prints, run as a user would."""

from __future__ import annotations

import ast
import importlib.util
import json
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
import requests

from components._common import registry
from components.deploy_model.logic import DeploymentError, deploy_local, serve_champion_locally
from components.deploy_model.smoke import smoke_test
from components.register_model.logic import register
from serving import local_server
from serving.oip import table_body

pytestmark = pytest.mark.serving

SCORES = {"r2": 0.9, "rmse": 1.0, "mae": 1.0}
REPO_ROOT = Path(__file__).resolve().parents[2]


def _metadata(port: int, model_name: str = "houses") -> dict:
    response = requests.get(f"http://127.0.0.1:{port}/v2/models/{model_name}", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _predict(port: int, rows, model_name: str = "houses") -> list:
    response = requests.post(
        f"http://127.0.0.1:{port}/v2/models/{model_name}/infer",
        data=table_body(rows),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    (prediction,) = [output for output in response.json()["outputs"] if not output["name"].startswith("probability_")]
    return prediction["data"]


# --- the smoke test against real servers ------------------------------------------------------------------------


def test_smoke_test_passes_against_the_server_of_the_model(regression_server, regression_bundle):
    bundle, test = regression_bundle
    rows = test[bundle.feature_names].head(5)

    smoke_test(regression_server.base_url, regression_server.model_name, rows, bundle.predict(rows), bundle.card.sha256)


def test_smoke_test_of_a_classifier_compares_its_labels(classification_server, classification_bundle):
    bundle, test = classification_bundle
    rows = test[bundle.feature_names].head(5)

    smoke_test(
        classification_server.base_url, classification_server.model_name, rows, bundle.predict(rows), bundle.card.sha256
    )


def test_a_server_serving_another_models_digest_fails_naming_both(
    classification_server, classification_bundle, regression_bundle
):
    # E.g. the previous version's pod still answering right after a replace: it must never pass for the new one.
    served, test = classification_bundle
    expected, _ = regression_bundle
    rows = test[served.feature_names].head(5)

    with pytest.raises(
        DeploymentError,
        match=rf"smoke test: {classification_server.metadata_url} serves sha256 {served.card.sha256}, "
        rf"expected {expected.card.sha256}",
    ):
        # Even the predictions would match: the digest decides first.
        smoke_test(
            classification_server.base_url,
            classification_server.model_name,
            rows,
            served.predict(rows),
            expected.card.sha256,
        )


def test_the_same_model_under_another_name_fails_as_not_found(regression_server, regression_bundle):
    bundle, test = regression_bundle
    rows = test[bundle.feature_names].head(2)

    with pytest.raises(
        DeploymentError, match=rf"smoke test: {regression_server.base_url}/v2/models/houses answered 404"
    ):
        smoke_test(regression_server.base_url, "houses", rows, bundle.predict(rows), bundle.card.sha256)


def test_predictions_off_by_more_than_the_tolerance_fail_against_a_real_server(regression_server, regression_bundle):
    bundle, test = regression_bundle
    rows = test[bundle.feature_names].head(3)

    with pytest.raises(DeploymentError, match=r"smoke test: served predictions .* differ from the model's"):
        smoke_test(
            regression_server.base_url,
            regression_server.model_name,
            rows,
            bundle.predict(rows) * (1 + 1e-6),
            bundle.card.sha256,
        )


# --- the local target ---------------------------------------------------------------------------------------------


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
    assert tags["deployment.endpoint"] == f"http://127.0.0.1:{http_port}/v2/models/houses/infer"
    # The OIP model name is the deployment name; the metadata reports the registry version and the digest.
    metadata = _metadata(http_port)
    assert metadata["versions"] == ["1"]
    assert (metadata["parameters"]["sha256"], metadata["parameters"]["model_version"]) == (bundle.card.sha256, "1")
    [server] = local_server.running(mlflow_state / "serving")
    assert server.model_name == "houses"
    # Served from the registry's copy, not from the pipeline's own artifact.
    assert Path(server.model_dir) == mlflow_state / "serving" / "models" / "houses" / "v1"
    # Only the bundle: the model, its card and the documents the card lists, each verified on loading.
    assert sorted(path.name for path in Path(server.model_dir).iterdir()) == sorted(
        ["model.joblib", "model.json", *bundle.card.documents]
    )


def test_a_model_name_becomes_its_deployment_name(mlflow_state, regression_bundle, free_ports):
    bundle, test = regression_bundle
    http_port, metrics_port = free_ports(2)
    register("", "House_Prices", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-1")
    rows = test[bundle.feature_names].head(2)
    try:
        endpoint = deploy_local(
            "House_Prices", "1", bundle.card.sha256, rows, bundle.predict(rows), "", http_port, metrics_port
        )

        assert endpoint == f"http://127.0.0.1:{http_port}/v2/models/house-prices/infer"
        assert _predict(http_port, rows, "house-prices") == pytest.approx(list(bundle.predict(rows)), rel=1e-9)
    finally:
        local_server.stop_all(mlflow_state / "serving")


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
    # The previous server is back as it was: its model, its name and its registry version.
    parameters = _metadata(http_port)["parameters"]
    assert (parameters["sha256"], parameters["model_version"]) == (bundle.card.sha256, "1")


def test_a_version_that_answers_wrongly_is_rolled_back(mlflow_state, champion_v1):
    bundle, rows, http_port, metrics_port = champion_v1
    register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-2")
    wrong = bundle.predict(rows) + 1.0

    with pytest.raises(DeploymentError, match=r"(?s)smoke test: served predictions .* differ .*restored the previous"):
        deploy_local("houses", "2", bundle.card.sha256, rows, wrong, "", http_port, metrics_port)

    assert str(registry.version_by_alias(registry.connect(""), "houses", registry.CHAMPION).version) == "1"
    [server] = local_server.running(mlflow_state / "serving")
    assert Path(server.model_dir) == mlflow_state / "serving" / "models" / "houses" / "v1"
    assert _metadata(http_port)["parameters"]["model_version"] == "1"


def test_a_version_with_another_digest_than_recorded_is_rolled_back(mlflow_state, champion_v1, classification_bundle):
    bundle, rows, http_port, metrics_port = champion_v1
    other, _ = classification_bundle
    register("", "houses", other.directory, {"f1_macro": 0.9}, True, "approved", pipeline_job_id="run-2")

    # The server verifies the files against the digest it is given before loading: a wrong one never serves.
    with pytest.raises(DeploymentError, match=r"(?s)deploying houses v2 failed: .*restored the previous"):
        deploy_local("houses", "2", bundle.card.sha256, rows, bundle.predict(rows), "", http_port, metrics_port)

    assert _metadata(http_port)["parameters"]["sha256"] == bundle.card.sha256


def test_a_version_deployed_on_another_port_stops_the_server_of_the_one_it_replaces(
    mlflow_state, champion_v1, free_ports, capsys
):
    # E.g. `make rollback PORT=...` on another port: the version rolled back from must not keep answering.
    bundle, rows, old_port, _ = champion_v1
    register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-2")
    http_port, metrics_port = free_ports(2)
    capsys.readouterr()

    deploy_local("houses", "2", bundle.card.sha256, rows, bundle.predict(rows), "", http_port, metrics_port)

    [server] = local_server.running(mlflow_state / "serving")
    assert (server.http_port, _metadata(http_port)["parameters"]["model_version"]) == (http_port, "2")
    assert f"stopped the server of houses v1 on port {old_port}: v2 now serves on port {http_port}" in (
        capsys.readouterr().out
    )
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{old_port}/v2/health/ready", timeout=5)


# --- the champion served when a run deployed nothing --------------------------------------------------------------


def test_after_stop_the_champion_is_served_again_from_the_registry(mlflow_state, champion_v1):
    bundle, rows, http_port, metrics_port = champion_v1
    local_server.stop_all(mlflow_state / "serving")

    served = serve_champion_locally("houses", "", http_port, metrics_port)

    assert (served.model_name, served.version, served.started) == ("houses", "1", True)
    assert (served.server.model_name, served.server.metrics_port) == ("houses", metrics_port)
    assert [server.pid for server in local_server.running(mlflow_state / "serving")] == [served.server.pid]
    assert Path(served.server.model_dir) == mlflow_state / "serving" / "models" / "houses" / "v1"
    assert _metadata(http_port)["parameters"]["sha256"] == bundle.card.sha256
    assert _metadata(http_port)["parameters"]["model_version"] == "1"
    assert _predict(http_port, rows) == pytest.approx(list(bundle.predict(rows)), rel=1e-9)
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


def test_a_server_of_the_champions_files_under_another_name_is_replaced(mlflow_state, champion_v1):
    # E.g. `make serve MODEL_DIR=...` of the same files: clients of the champion's URL would get 404.
    bundle, rows, http_port, metrics_port = champion_v1
    [before] = local_server.running(mlflow_state / "serving")
    local_server.start(
        before.model_dir, bundle.card.sha256, mlflow_state / "serving", http_port, metrics_port, model_name="model"
    )

    served = serve_champion_locally("houses", "", http_port, metrics_port)

    assert (served.started, served.server.model_name) == (True, "houses")
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
    assert Path(after.model_dir) == mlflow_state / "serving" / "models" / "houses" / "v2"
    assert _metadata(http_port)["parameters"]["sha256"] == other.card.sha256
    rows = other_test[other.feature_names].head(3)
    assert _predict(http_port, rows) == list(other.predict(rows))


# --- what a run prints to try the champion, run as a user would ---------------------------------------------------


@pytest.fixture(scope="module")
def run_local():
    spec = importlib.util.spec_from_file_location("run_local_under_test", REPO_ROOT / "run_local.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("server_fixture", ["regression_server", "classification_server"])
def test_the_printed_python_example_gets_the_models_prediction(
    run_local, request, server_fixture, regression_bundle, classification_bundle
):
    server = request.getfixturevalue(server_fixture)
    bundle, _ = regression_bundle if server_fixture == "regression_server" else classification_bundle
    example = run_local.python_example(server)

    # The shell block as printed: the interpreter, a heredoc with the script (kserve's client raises on non-2xx).
    completed = subprocess.run(["bash", "-c", example], capture_output=True, text=True, timeout=120, check=False)

    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = ast.literal_eval(completed.stdout.strip().splitlines()[-1])
    expected = bundle.predict(_example_frame(bundle))
    assert list(answer) == [bundle.card.target]
    if bundle.card.task == "regression":
        assert answer[bundle.card.target] == pytest.approx(list(expected), rel=1e-9)
    else:
        assert answer[bundle.card.target] == list(expected)


def test_the_printed_curl_answers_with_the_prediction(regression_server, regression_bundle):
    bundle, _ = regression_bundle
    command = shlex.split(regression_server.example_curl().replace("\\\n", " "))

    completed = subprocess.run([*command, "-w", "\n%{http_code}"], capture_output=True, text=True, timeout=60)

    body, status = completed.stdout.rsplit("\n", 1)
    assert status == "200", body
    (output,) = json.loads(body)["outputs"]
    assert output["data"] == pytest.approx(list(bundle.predict(_example_frame(bundle))), rel=1e-9)


def _example_frame(bundle) -> pd.DataFrame:
    """The model card's input example, the row both printed examples send."""
    return pd.DataFrame([{name: bundle.card.input_example.get(name) for name in bundle.feature_names}])

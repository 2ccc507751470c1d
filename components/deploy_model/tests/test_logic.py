"""deploy_model: the targets and serving platforms, what a kubernetes deployment refuses before it starts (defect D5),
what it records on the version, and the OIP smoke test (against a stub here; against real model servers in
tests/serving/test_deploy_local.py). The SeldonDeployment and InferenceService themselves are tested in
test_manifests.py, their rollout in test_cluster.py."""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from components._common import registry
from components._common.datasets import write_dataset
from components.deploy_model import cluster
from components.deploy_model.component import deploy_model
from components.deploy_model.logic import (
    MAX_WAIT_SECONDS,
    DeploymentError,
    check_cluster_sources,
    check_model_files,
    check_serving_platform,
    check_target,
    deploy,
    deploy_kubernetes,
    write_manifest,
)
from components.deploy_model.manifests import SERVING_PLATFORMS, build_manifest, build_seldon_deployment
from components.deploy_model.smoke import smoke_test
from components.register_model.logic import register
from serving.oip import table_request

SHA = "ab" * 32
URI = "s3://models/houses/7/artifacts/model"


@pytest.mark.parametrize("target", ["kubernetes", "local", "none"])
def test_known_targets_are_accepted(target):
    assert check_target(target) == target


@pytest.mark.parametrize("target", ["k8s", "", "Local"])
def test_unknown_target_is_named(target):
    with pytest.raises(
        DeploymentError,
        match=rf"parameter deploy_target must be one of \('kubernetes', 'local', 'none'\), got '{target}'",
    ):
        check_target(target)


@pytest.mark.parametrize("platform", ["seldon", "kserve"])
def test_known_serving_platforms_are_accepted(platform):
    assert check_serving_platform(platform) == platform


@pytest.mark.parametrize("platform", ["knative", "", "KServe", "kfserving"])
def test_unknown_serving_platform_is_named(platform):
    with pytest.raises(
        DeploymentError,
        match=rf"parameter serving_platform must be one of \('seldon', 'kserve'\), got '{platform}'",
    ):
        check_serving_platform(platform)


@pytest.mark.parametrize("target", ["kubernetes", "local", "none"])
def test_an_unknown_serving_platform_stops_every_target_before_anything_is_rendered(
    regression_bundle, tmp_path, monkeypatch, target
):
    monkeypatch.setattr(cluster, "load_api", lambda: pytest.fail("an unknown serving_platform reached the cluster"))
    rendered = tmp_path / "manifest.yaml"

    with pytest.raises(DeploymentError, match=r"^parameter serving_platform must be one of"):
        deploy(
            regression_bundle[0].directory,
            tmp_path / "absent.parquet",
            "houses",
            "3",
            URI,
            "kfp-mlops-serving:test",
            rendered,
            deploy_target=target,
            serving_platform="knative",
            tracking_uri=CLUSTER_MLFLOW,
        )

    assert not rendered.exists()


def test_manifest_is_written_as_yaml(tmp_path):
    manifest = build_seldon_deployment("House_Prices", "7", URI, SHA, namespace="ml", image="kfp-mlops-serving:test")
    path = tmp_path / "seldondeployment.yaml"

    write_manifest(manifest, path)

    assert yaml.safe_load(path.read_text()) == manifest


# --- kubernetes: refused at once when the cluster could never fetch the model ------------------------------------

CLUSTER_MLFLOW = "http://mlflow.kubeflow.svc.cluster.local:5000"


@pytest.mark.parametrize(
    ("tracking_uri", "model_uri"),
    [
        (CLUSTER_MLFLOW, URI),
        ("https://mlflow.example.com", "gs://bucket/mlflow/3/abc/artifacts/model"),
        ("postgresql://mlflow@db/mlflow", "s3://mlpipeline/mlflow/1/abc/artifacts/model"),
        ("databricks", "s3://bucket/models/houses/1"),
    ],
)
def test_a_registry_server_with_bucket_storage_is_accepted(tracking_uri, model_uri):
    check_cluster_sources(tracking_uri, model_uri)


@pytest.mark.parametrize("tracking_uri", ["", "  "])
def test_an_empty_tracking_uri_is_refused_naming_the_parameter(tracking_uri):
    with pytest.raises(
        DeploymentError,
        match=r"parameter tracking_uri is empty: with deploy_target=kubernetes it must be an MLflow server the "
        r"cluster reaches, e\.g\. http://mlflow\.kubeflow\.svc\.cluster\.local:5000 \(empty means a SQLite registry "
        r"inside this step's own pod\)",
    ):
        check_cluster_sources(tracking_uri, URI)


@pytest.mark.parametrize(
    "tracking_uri", ["sqlite:////opt/state/mlflow.db", "file:///opt/state/mlruns", "/opt/state/mlruns", "mlruns"]
)
def test_a_file_based_tracking_uri_is_refused_naming_the_parameter(tracking_uri):
    with pytest.raises(
        DeploymentError,
        match=rf"parameter tracking_uri '{tracking_uri}' is a file inside this step's own pod: with "
        r"deploy_target=kubernetes it must be an MLflow server",
    ):
        check_cluster_sources(tracking_uri, URI)


@pytest.mark.parametrize(
    "model_uri",
    [
        "file:///opt/kfp-mlops/local_state/mlartifacts/houses/1/abc/artifacts/model",
        "/opt/kfp-mlops/local_state/mlartifacts/houses/1/abc/artifacts/model",
        "mlflow-artifacts:/1/abc/artifacts/model",
        "models:/houses/1",
        "runs:/abc/model",
        "",
    ],
)
def test_a_model_uri_the_storage_initializer_cannot_fetch_is_refused_naming_the_parameter(model_uri):
    with pytest.raises(
        DeploymentError,
        match=rf"parameter model_uri '{model_uri}' cannot be fetched by Seldon's rclone storage initializer: "
        r"deploy_target=kubernetes needs the version's files in object storage",
    ):
        check_cluster_sources(CLUSTER_MLFLOW, model_uri)


@pytest.mark.parametrize(
    ("platform", "initializer", "credentials"),
    [
        (
            "seldon",
            "Seldon's rclone storage initializer",
            "with a remote of that scheme in the seldon-rclone-secret Secret",
        ),
        (
            "kserve",
            "KServe's storage initializer",
            "with its credentials in the Secret the ServiceAccount kserve-model-storage lists",
        ),
    ],
)
def test_the_refusal_names_the_storage_initializer_and_credentials_of_the_platform(platform, initializer, credentials):
    model_uri = "file:///opt/kfp-mlops/local_state/mlartifacts/houses/1/abc/artifacts/model"

    with pytest.raises(DeploymentError) as refused:
        check_cluster_sources(CLUSTER_MLFLOW, model_uri, platform)

    assert str(refused.value) == (
        f"parameter model_uri {model_uri!r} cannot be fetched by {initializer}: deploy_target=kubernetes needs the "
        "version's files in object storage (e.g. s3://mlpipeline/...), i.e. an MLflow server whose artifact root is "
        f"a bucket, {credentials}"
    )
    check_cluster_sources(CLUSTER_MLFLOW, URI, platform)  # a bucket is fetched by either


@pytest.fixture
def s3_bucket(monkeypatch):
    """An in-process S3 (moto) with bucket mlpipeline, reached as the deploy step reaches the cluster's store."""
    from moto import mock_aws

    for name in ("MLFLOW_S3_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "minio")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "minio123")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="mlpipeline")
        yield s3


def test_model_files_at_the_model_uri_pass(s3_bucket, regression_bundle):
    bundle, _ = regression_bundle
    for path in bundle.directory.iterdir():
        s3_bucket.put_object(
            Bucket="mlpipeline", Key=f"mlflow/1/abc/artifacts/model/{path.name}", Body=path.read_bytes()
        )

    check_model_files("s3://mlpipeline/mlflow/1/abc/artifacts/model")


@pytest.mark.parametrize(
    ("files", "missing"),
    [((), "model.joblib or model.json"), (("model.json",), "model.joblib"), (("model.joblib",), "model.json")],
)
def test_a_model_uri_without_the_model_files_is_refused_before_deploying(s3_bucket, files, missing):
    # rclone copies "nothing to transfer" without an error: the pod would start with an empty /mnt/models.
    for name in files:
        s3_bucket.put_object(Bucket="mlpipeline", Key=f"mlflow/1/abc/artifacts/model/{name}", Body=b"x")

    with pytest.raises(
        DeploymentError,
        match=rf"parameter model_uri 's3://mlpipeline/mlflow/1/abc/artifacts/model' holds no {missing} \(found: ",
    ):
        check_model_files("s3://mlpipeline/mlflow/1/abc/artifacts/model")


@pytest.mark.parametrize(
    ("tracking_uri", "model_uri", "platform", "parameter"),
    [
        ("", URI, "seldon", "tracking_uri"),
        ("", URI, "kserve", "tracking_uri"),
        ("sqlite:////opt/kfp-mlops/local_state/mlflow.db", URI, "seldon", "tracking_uri"),
        (
            CLUSTER_MLFLOW,
            "file:///opt/kfp-mlops/local_state/mlartifacts/houses/1/abc/artifacts/model",
            "seldon",
            "model_uri",
        ),
        (
            CLUSTER_MLFLOW,
            "file:///opt/kfp-mlops/local_state/mlartifacts/houses/1/abc/artifacts/model",
            "kserve",
            "model_uri",
        ),
        (CLUSTER_MLFLOW, URI, "knative", "serving_platform"),
    ],
)
def test_the_step_stops_before_anything_is_deployed(
    regression_bundle, tmp_path, monkeypatch, tracking_uri, model_uri, platform, parameter
):
    assert_stops_before_deploying(
        regression_bundle,
        tmp_path,
        monkeypatch,
        parameter,
        model_uri=model_uri,
        serving_platform=platform,
        tracking_uri=tracking_uri,
    )


@pytest.mark.parametrize("wait_timeout_seconds", [3001, 7200, 0, -1])
def test_a_wait_the_steps_pod_would_not_outlive_is_refused_before_anything_is_deployed(
    regression_bundle, tmp_path, monkeypatch, s3_bucket, wait_timeout_seconds
):
    # Model files in place: the wait alone is wrong. A pod stopped at its deadline (3600 s) mid-wait could not roll
    # back, so the new spec would stay live untested.
    s3_bucket.create_bucket(Bucket="models")
    for path in regression_bundle[0].directory.iterdir():
        s3_bucket.put_object(Bucket="models", Key=f"houses/7/artifacts/model/{path.name}", Body=path.read_bytes())
    message = assert_stops_before_deploying(
        regression_bundle, tmp_path, monkeypatch, "wait_timeout_seconds", wait_timeout_seconds=wait_timeout_seconds
    )
    assert f"at most {MAX_WAIT_SECONDS}, got {wait_timeout_seconds}" in message


def test_a_namespace_kubernetes_would_refuse_is_refused_before_anything_is_deployed(
    regression_bundle, tmp_path, monkeypatch
):
    message = assert_stops_before_deploying(
        regression_bundle, tmp_path, monkeypatch, "namespace", namespace="ML_Models"
    )
    assert "is not a Kubernetes namespace name" in message


def assert_stops_before_deploying(regression_bundle, tmp_path, monkeypatch, parameter: str, **arguments) -> str:
    """Runs the step with target kubernetes and ``arguments`` (over a valid deployment's); asserts it is refused
    naming ``parameter`` before any cluster client, manifest or history exists; returns the message."""
    bundle, test = regression_bundle
    test_path = tmp_path / "test.parquet"
    write_dataset(test, test_path)
    cluster_calls = []
    monkeypatch.setattr(cluster, "load_api", lambda: cluster_calls.append("load_api"))
    rendered = tmp_path / "manifest.yaml"

    with pytest.raises(DeploymentError, match=rf"^parameter {parameter} ") as refused:
        deploy_model.python_func(
            model=SimpleNamespace(path=str(bundle.directory)),
            test=SimpleNamespace(path=str(test_path)),
            model_name="houses",
            model_version="3",
            serving_image="kfp-mlops-serving:test",
            manifest=SimpleNamespace(path=str(rendered)),
            history=SimpleNamespace(path=str(tmp_path / "history.md")),
            deploy_target="kubernetes",
            **{"model_uri": URI, "tracking_uri": CLUSTER_MLFLOW, "wait_timeout_seconds": 600, **arguments},
        )

    # At once: no cluster client, not even a manifest that could be applied by hand.
    assert cluster_calls == []
    assert not rendered.exists()
    assert not (tmp_path / "history.md").exists()
    return str(refused.value)


@pytest.mark.parametrize(("platform", "kind"), [("seldon", "SeldonDeployment"), ("kserve", "InferenceService")])
def test_with_a_registry_server_and_bucket_storage_the_step_goes_on_to_the_cluster(
    regression_bundle, tmp_path, monkeypatch, s3_bucket, platform, kind
):
    bundle, test = regression_bundle
    test_path = tmp_path / "test.parquet"
    write_dataset(test, test_path)
    bucket, _, prefix = URI.removeprefix("s3://").partition("/")
    s3_bucket.create_bucket(Bucket=bucket)
    for path in bundle.directory.iterdir():
        s3_bucket.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())

    class ClusterReached(Exception):
        pass

    def load_api():
        raise ClusterReached

    monkeypatch.setattr(cluster, "load_api", load_api)

    with pytest.raises(ClusterReached):
        deploy_model.python_func(
            model=SimpleNamespace(path=str(bundle.directory)),
            test=SimpleNamespace(path=str(test_path)),
            model_name="houses",
            model_version="3",
            model_uri=URI,
            serving_image="kfp-mlops-serving:test",
            manifest=SimpleNamespace(path=str(tmp_path / "manifest.yaml")),
            history=SimpleNamespace(path=str(tmp_path / "history.md")),
            deploy_target="kubernetes",
            serving_platform=platform,
            tracking_uri=CLUSTER_MLFLOW,
            wait_timeout_seconds=600,
        )

    rendered = yaml.safe_load((tmp_path / "manifest.yaml").read_text())
    assert rendered == build_manifest(platform, "houses", "3", URI, bundle.card.sha256, image="kfp-mlops-serving:test")
    assert rendered["kind"] == kind


# --- kubernetes: what a deployment records on the version ----------------------------------------------------


@pytest.mark.parametrize("platform", SERVING_PLATFORMS)
def test_a_kubernetes_deployment_smoke_tests_the_served_name_and_records_its_platform(
    mlflow_state, regression_bundle, monkeypatch, oip_server, platform
):
    bundle, test = regression_bundle
    register("", "houses", bundle.directory, {"r2": 0.9}, True, "approved")
    rendered = build_manifest(platform, "houses", "1", URI, bundle.card.sha256, "ml", image="kfp-mlops-serving:test")
    rows = test[bundle.feature_names].head(2)
    expected = bundle.predict(rows)
    oip_server.metadata = (200, metadata(sha256=bundle.card.sha256))
    oip_server.answer = (200, answer(expected.tolist()))
    endpoint = f"{oip_server.base_url}/v2/models/houses/infer"
    rolled = []

    def roll_out(api, manifest, smoke, timeout):
        rolled.append((manifest, timeout))
        smoke(oip_server.base_url)  # what the rollout does once the new spec is live
        return cluster.Rollout(oip_server.base_url, endpoint, replaced_existing=False)

    monkeypatch.setattr(cluster, "roll_out", roll_out)

    served_at = deploy_kubernetes(rendered, "houses", "1", bundle.card.sha256, rows, expected, "", 42.0, api=object())

    assert served_at == endpoint and rolled == [(rendered, 42.0)]
    assert [request["path"] for request in oip_server.received] == ["/v2/models/houses", "/v2/models/houses/infer"]
    tags = registry.connect("").get_model_version("houses", "1").tags
    assert {key: value for key, value in tags.items() if key.startswith("deployment.")} == {
        "deployment.target": "kubernetes",
        "deployment.platform": platform,
        "deployment.namespace": "ml",
        "deployment.name": "houses",
        "deployment.endpoint": endpoint,
    }
    assert str(registry.version_by_alias(registry.connect(""), "houses", registry.CHAMPION).version) == "1"


def test_the_none_target_says_which_kind_it_rendered(regression_bundle, tmp_path, capsys):
    deploy(
        regression_bundle[0].directory,
        tmp_path / "absent.parquet",
        "houses",
        "3",
        URI,
        "kfp-mlops-serving:test",
        tmp_path / "manifest.yaml",
        serving_platform="kserve",
    )

    assert "rendered the InferenceService for houses v3; nothing deployed" in capsys.readouterr().out


# --- the OIP request the smoke test (and monitor_demo's replay) sends ---------------------------------------------


def test_rows_become_one_input_per_column_with_their_oip_datatype_and_null_for_missing():
    rows = pd.DataFrame(
        {
            "size": [80.5, np.nan],
            "rooms": np.array([3, 4], dtype="int64"),
            "floors": pd.array([1, None], dtype="Int64"),
            "area": ["north", None],
            "renovated": [True, False],
            "zone": pd.Categorical(["a", "b"]),
            "code": pd.Series([7, 8], dtype=object),
            "unknown": [None, None],
        }
    )

    request = table_request(rows)

    assert request == {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": "size", "shape": [2], "datatype": "FP64", "data": [80.5, None]},
            {"name": "rooms", "shape": [2], "datatype": "INT64", "data": [3, 4]},
            {"name": "floors", "shape": [2], "datatype": "INT64", "data": [1, None]},
            {"name": "area", "shape": [2], "datatype": "BYTES", "data": ["north", None]},
            {"name": "renovated", "shape": [2], "datatype": "BOOL", "data": [True, False]},
            {"name": "zone", "shape": [2], "datatype": "BYTES", "data": ["a", "b"]},
            {"name": "code", "shape": [2], "datatype": "INT64", "data": [7, 8]},
            # Nothing to type it by: FP64, whose null the server reads as missing in a number and a category alike.
            {"name": "unknown", "shape": [2], "datatype": "FP64", "data": [None, None]},
        ],
    }
    # JSON-native values only: the request is sent as it is.
    assert json.loads(json.dumps(request, allow_nan=False)) == request


def test_float_values_are_sent_exactly():
    # The server must predict the very rows the in-process predictions were made from.
    values = [0.1 + 0.2, 123.456789012345, 1e-12, 2.5e-7]

    (column,) = json.loads(json.dumps(table_request(pd.DataFrame({"x": values}))))["inputs"]

    assert column["data"] == values


# --- the smoke test ----------------------------------------------------------------------------------------------


class _OipServerStub(BaseHTTPRequestHandler):
    """Answers GET (metadata) and POST (infer) with the server's configured (status, body), recording requests."""

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.server.received.append({"method": "GET", "path": self.path})
        self._answer(*self.server.metadata)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(
            {
                "method": "POST",
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": json.loads(body),
            }
        )
        self._answer(*self.server.answer)

    def log_message(self, format, *args):  # keep test output quiet
        pass


def metadata(sha256: str = SHA, target: str = "price") -> bytes:
    return json.dumps(
        {
            "name": "houses",
            "versions": ["3"],
            "platform": "scikit-learn",
            "inputs": [{"name": "size", "datatype": "FP64", "shape": [-1]}],
            "outputs": [{"name": target, "datatype": "FP64", "shape": [-1]}],
            "parameters": {"sha256": sha256, "model_version": "3", "target": target, "content_type": "pd"},
        }
    ).encode()


def answer(predictions, name: str = "price", datatype: str = "FP64", extra_outputs=()) -> bytes:
    outputs = [{"name": name, "shape": [len(predictions)], "datatype": datatype, "data": predictions}]
    return json.dumps(
        {"model_name": "houses", "model_version": "3", "id": "1", "outputs": [*outputs, *extra_outputs]}
    ).encode()


@pytest.fixture
def oip_server(stub_server):
    """A stub OIP server on 127.0.0.1 (free port); set ``.metadata`` / ``.answer = (status, bytes)``."""
    server = stub_server(_OipServerStub)
    server.received = []
    server.metadata = (200, metadata())
    server.answer = (200, b"{}")
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


ROWS = pd.DataFrame({"size": [80.0, 95.5, np.nan], "area": ["north", "south", "north"]})


def test_matching_answer_passes_after_checking_the_digest_then_sending_the_rows(oip_server):
    oip_server.answer = (200, answer([100000.0, 150000.5, 120000.25]))

    smoke_test(oip_server.base_url, "houses", ROWS, np.array([100000.0, 150000.5, 120000.25]), SHA)

    metadata_request, infer = oip_server.received
    assert metadata_request == {"method": "GET", "path": "/v2/models/houses"}
    assert infer["path"] == "/v2/models/houses/infer"
    assert infer["content_type"] == "application/json"
    assert infer["body"] == table_request(ROWS)


def test_a_server_reporting_another_digest_fails_naming_both_and_gets_no_rows(oip_server):
    other = "cd" * 32
    oip_server.metadata = (200, metadata(sha256=other))
    oip_server.answer = (200, answer([1.0, 2.0, 3.0]))  # it would even answer "right"

    with pytest.raises(
        DeploymentError,
        match=rf"smoke test: {oip_server.base_url}/v2/models/houses serves sha256 {other}, expected {SHA}",
    ):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)

    assert [request["method"] for request in oip_server.received] == ["GET"]


def test_metadata_without_a_digest_fails(oip_server):
    oip_server.metadata = (200, json.dumps({"name": "houses", "versions": ["1"], "platform": "x"}).encode())

    with pytest.raises(DeploymentError, match=r"reports no sha256 parameter in its metadata"):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_an_unknown_model_name_is_reported_with_the_servers_error(oip_server):
    oip_server.metadata = (404, b'{"error": "Model with name housez does not exist.", "reason": "MODEL_NOT_FOUND"}')

    with pytest.raises(
        DeploymentError, match=rf"smoke test: {oip_server.base_url}/v2/models/housez answered 404: .*does not exist"
    ):
        smoke_test(oip_server.base_url, "housez", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_answer_with_probabilities_beside_the_target_compares_the_target(oip_server):
    probabilities = {"name": "probability_A", "shape": [3], "datatype": "FP64", "data": [0.9, 0.1, 0.2]}
    oip_server.metadata = (200, metadata(target="label"))
    oip_server.answer = (200, answer(["A", "C", "B"], name="label", datatype="BYTES", extra_outputs=[probabilities]))

    smoke_test(oip_server.base_url, "houses", ROWS, np.array(["A", "C", "B"], dtype=object), SHA)


def test_matching_answer_of_shape_n_by_1_passes(oip_server):
    oip_server.answer = (200, answer([[1.5], [2.5], [3.5]]))

    smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.5, 2.5, 3.5]), SHA)


def test_matching_integer_and_boolean_labels_pass(oip_server):
    oip_server.answer = (200, answer([1, 0, 1], datatype="INT64"))
    smoke_test(oip_server.base_url, "houses", ROWS, np.array([1, 0, 1]), SHA)

    oip_server.answer = (200, answer([True, False, True], datatype="BOOL"))
    smoke_test(oip_server.base_url, "houses", ROWS, np.array([True, False, True]), SHA)


def test_different_predictions_are_reported(oip_server):
    oip_server.answer = (200, answer([1.0, 2.0, 3.5]))

    with pytest.raises(
        DeploymentError,
        match=r"smoke test: served predictions \[1\.0, 2\.0, 3\.5\] differ from the model's \[1\.0, 2\.0, 3\.0\]",
    ):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_a_difference_beyond_the_relative_tolerance_is_reported(oip_server):
    oip_server.answer = (200, answer([100000.0, 100000.0, 100000.001]))

    with pytest.raises(DeploymentError, match=r"differ from the model's"):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([100000.0, 100000.0, 100000.0]), SHA)


def test_different_class_labels_are_reported(oip_server):
    oip_server.metadata = (200, metadata(target="label"))
    oip_server.answer = (200, answer(["A", "B", "B"], name="label", datatype="BYTES"))

    with pytest.raises(
        DeploymentError, match=r"served predictions \['A', 'B', 'B'\] differ from the model's \['A', 'C', 'B'\]"
    ):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array(["A", "C", "B"]), SHA)


def test_an_answer_without_the_targets_output_is_reported(oip_server):
    oip_server.answer = (200, answer([1.0, 2.0, 3.0], name="prediction"))

    with pytest.raises(DeploymentError, match=r"answered outputs \['prediction'\], expected an output named 'price'"):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_wrong_number_of_predictions_is_reported(oip_server):
    oip_server.answer = (200, answer([1.0, 2.0]))

    with pytest.raises(DeploymentError, match=r"smoke test: sent 3 rows to .*/infer, got 2 predictions"):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_error_status_is_reported_with_the_body(oip_server):
    oip_server.answer = (400, b'{"error": "missing feature column(s) [\'rooms\']", "reason": "MISSING_FEATURES"}')

    with pytest.raises(
        DeploymentError, match=rf"smoke test: {oip_server.base_url}/v2/models/houses/infer answered 400: .*rooms"
    ):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_answer_that_is_not_json_is_a_deployment_error(oip_server):
    oip_server.answer = (200, b"<html>proxy error</html>")

    with pytest.raises(DeploymentError, match=r"did not answer with predictions \(not JSON\)"):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_answer_that_is_no_oip_response_is_a_deployment_error(oip_server):
    oip_server.answer = (200, json.dumps({"data": {"ndarray": [1.0, 2.0, 3.0]}}).encode())

    with pytest.raises(DeploymentError, match=r"did not answer with OIP outputs"):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


@pytest.mark.parametrize("served", [["cheap", "dear", "cheap"], [1.0, None, 3.0], [True, False, True]])
def test_non_numbers_answered_for_a_numeric_model_are_a_deployment_error(oip_server, served):
    oip_server.answer = (200, answer(served))

    with pytest.raises(DeploymentError, match=r"differ from the model's"):
        smoke_test(oip_server.base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA)


def test_unreachable_server_is_reported(monkeypatch):
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"  # nothing listens there any more

    with pytest.raises(DeploymentError, match=rf"smoke test: cannot reach {base_url}/v2/models/houses"):
        smoke_test(base_url, "houses", ROWS, np.array([1.0, 2.0, 3.0]), SHA, timeout=5)

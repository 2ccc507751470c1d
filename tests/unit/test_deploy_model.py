"""deploy_model: Kubernetes names, the SeldonDeployment (checked against the real CRD schema) and the smoke test."""

from __future__ import annotations

import copy
import json
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components._image import SERVING_IMAGE
from components.deploy_model.logic import (
    DeploymentError,
    build_seldon_deployment,
    check_target,
    deployment_name,
    smoke_payload,
    smoke_test,
    write_manifest,
)

SELDON_CRD = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "seldon" / "seldondeployment-crd.yaml"
)
# The operator's admission webhook accepts these graph node types (the CRD schema has a free string).
SELDON_NODE_TYPES = {"MODEL", "ROUTER", "COMBINER", "TRANSFORMER", "OUTPUT_TRANSFORMER"}
SHA = "ab" * 32
URI = "s3://models/houses/7/artifacts/model"


@pytest.fixture
def manifest() -> dict:
    return build_seldon_deployment("House_Prices", "7", URI, SHA, namespace="ml")


def predictor(manifest: dict) -> dict:
    (only,) = manifest["spec"]["predictors"]
    return only


# --- names and targets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [
        ("houses", "houses"),
        ("House_Prices", "house-prices"),
        ("house prices v2", "house-prices-v2"),
        ("--Price@@Model--", "price-model"),
        ("a.b/c", "a-b-c"),
    ],
)
def test_deployment_name_is_a_dns_label(model_name, expected):
    assert deployment_name(model_name) == expected


def test_long_deployment_name_is_cut_to_63_characters_without_a_trailing_dash():
    name = deployment_name("a" * 62 + "_tail")

    assert name == "a" * 62
    assert len(deployment_name("b" * 100)) == 63


@pytest.mark.parametrize("model_name", ["", "___", "@@@"])
def test_model_name_without_valid_characters_is_named(model_name):
    with pytest.raises(DeploymentError, match=rf"model_name '{model_name}' gives no valid Kubernetes name"):
        deployment_name(model_name)


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


# --- the SeldonDeployment ----------------------------------------------------------------------------------------


def test_manifest_identifies_the_deployment(manifest):
    assert manifest["apiVersion"] == "machinelearning.seldon.io/v1"
    assert manifest["kind"] == "SeldonDeployment"
    assert manifest["metadata"]["name"] == "house-prices"
    assert manifest["metadata"]["namespace"] == "ml"
    assert manifest["metadata"]["annotations"] == {
        "kfp-mlops/registered-model": "House_Prices",
        "kfp-mlops/model-version": "7",
        "kfp-mlops/model-sha256": SHA,
        "kfp-mlops/model-uri": URI,
        "kfp-mlops/kfp-run-id": "",
    }
    assert manifest["metadata"]["labels"]["kfp-mlops/model-version"] == "7"


def test_graph_serves_the_model_uri_with_the_digest(manifest):
    graph = predictor(manifest)["graph"]

    assert graph["type"] in SELDON_NODE_TYPES
    assert graph["modelUri"] == URI
    assert graph["envSecretRefName"] == "seldon-rclone-secret"
    parameters = {parameter["name"]: parameter for parameter in graph["parameters"]}
    assert parameters["model_uri"] == {"name": "model_uri", "type": "STRING", "value": "/mnt/models"}
    assert parameters["model_sha256"] == {"name": "model_sha256", "type": "STRING", "value": SHA}


def test_container_name_equals_graph_name(manifest):
    spec = predictor(manifest)
    (component,) = spec["componentSpecs"]
    (container,) = component["spec"]["containers"]

    assert container["name"] == spec["graph"]["name"]
    assert container["image"] == SERVING_IMAGE
    assert not container["image"].endswith(":latest")


def test_custom_image_is_used():
    built = build_seldon_deployment("houses", "1", URI, SHA, image="registry.example/serving:1.2.3")

    (container,) = predictor(built)["componentSpecs"][0]["spec"]["containers"]
    assert container["image"] == "registry.example/serving:1.2.3"


def test_manifest_is_written_as_yaml(tmp_path, manifest):
    import yaml

    path = tmp_path / "seldondeployment.yaml"
    write_manifest(manifest, path)

    assert yaml.safe_load(path.read_text()) == manifest


@pytest.fixture(scope="module")
def crd_validator():
    if not SELDON_CRD.is_file():
        pytest.skip(f"SeldonDeployment CRD not found at {SELDON_CRD} (shared reference files are not checked out)")
    import jsonschema
    import yaml

    crd = yaml.load(SELDON_CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (v1,) = [version for version in crd["spec"]["versions"] if version["name"] == "v1"]
    # OpenAPI v3 keywords such as x-kubernetes-* are unknown to Draft 7 and ignored.
    return jsonschema.Draft7Validator(v1["schema"]["openAPIV3Schema"])


def test_manifest_matches_the_seldon_crd_schema(crd_validator, manifest):
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in crd_validator.iter_errors(manifest)]

    assert errors == []


def test_crd_schema_check_catches_a_broken_manifest(crd_validator, manifest):
    broken = copy.deepcopy(manifest)
    predictor(broken)["replicas"] = "one"
    del predictor(broken)["graph"]["name"]

    messages = {error.message for error in crd_validator.iter_errors(broken)}

    assert "'one' is not of type 'integer'" in messages
    assert "'name' is a required property" in messages


# --- smoke test --------------------------------------------------------------------------------------------------


def test_smoke_payload_names_columns_and_sends_nan_as_null():
    rows = pd.DataFrame({"size": [80.5, np.nan], "area": ["north", None], "renovated": [True, False]})

    payload = json.loads(smoke_payload(rows))

    assert payload == {
        "data": {
            "names": ["size", "area", "renovated"],
            "ndarray": [[80.5, "north", True], [None, None, False]],
        }
    }


def test_smoke_payload_sends_float_values_exactly():
    # The server must predict the very rows the in-process predictions were made from.
    values = [0.1 + 0.2, 123.456789012345, 1e-12, 2.5e-7]
    rows = pd.DataFrame({"x": values})

    sent = [row[0] for row in json.loads(smoke_payload(rows))["data"]["ndarray"]]

    assert sent == values


class _ModelServerStub(BaseHTTPRequestHandler):
    """Answers every POST with the server's configured (status, body) and records what it received."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(
            {"path": self.path, "content_type": self.headers.get("Content-Type"), "body": json.loads(body)}
        )
        status, answer = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format, *args):  # keep test output quiet
        pass


@pytest.fixture
def model_server(stub_server):
    """A local HTTP server on 127.0.0.1 (free port); set ``.answer = (status, bytes)`` before calling it."""
    server = stub_server(_ModelServerStub)
    server.received = []
    server.answer = (200, b"{}")
    server.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1.0/predictions"
    return server


def answer(predictions) -> bytes:
    return json.dumps({"data": {"names": ["price"], "ndarray": predictions}, "meta": {}}).encode()


ROWS = pd.DataFrame({"size": [80.0, 95.5, np.nan], "area": ["north", "south", "north"]})


def test_matching_numeric_answer_passes_and_sends_the_rows(model_server):
    model_server.answer = (200, answer([100000.0, 150000.5, 120000.25]))

    smoke_test(model_server.url, ROWS, np.array([100000.0, 150000.5, 120000.25]))

    (request,) = model_server.received
    assert request["path"] == "/api/v1.0/predictions"
    assert request["content_type"] == "application/json"
    assert request["body"] == json.loads(smoke_payload(ROWS))


def test_matching_nested_numeric_answer_passes(model_server):
    model_server.answer = (200, answer([[1.5], [2.5], [3.5]]))

    smoke_test(model_server.url, ROWS, np.array([1.5, 2.5, 3.5]))


def test_matching_class_labels_pass(model_server):
    model_server.answer = (200, answer(["A", "C", "B"]))

    smoke_test(model_server.url, ROWS, np.array(["A", "C", "B"], dtype=object))


def test_different_predictions_are_reported(model_server):
    model_server.answer = (200, answer([1.0, 2.0, 3.5]))

    with pytest.raises(
        DeploymentError,
        match=r"smoke test: served predictions \[1\.0, 2\.0, 3\.5\] differ from the model's \[1\.0, 2\.0, 3\.0\]",
    ):
        smoke_test(model_server.url, ROWS, np.array([1.0, 2.0, 3.0]))


def test_different_class_labels_are_reported(model_server):
    model_server.answer = (200, answer(["A", "B", "B"]))

    with pytest.raises(
        DeploymentError, match=r"served predictions \['A', 'B', 'B'\] differ from the model's \['A', 'C', 'B'\]"
    ):
        smoke_test(model_server.url, ROWS, np.array(["A", "C", "B"]))


def test_wrong_number_of_predictions_is_reported(model_server):
    model_server.answer = (200, answer([1.0, 2.0]))

    with pytest.raises(DeploymentError, match=r"smoke test: sent 3 rows, got 2 predictions"):
        smoke_test(model_server.url, ROWS, np.array([1.0, 2.0, 3.0]))


def test_error_status_is_reported_with_the_body(model_server):
    model_server.answer = (400, b'{"status": {"info": "missing column(s) [\'rooms\']"}}')

    with pytest.raises(DeploymentError, match=rf"smoke test: {model_server.url} answered 400: .*missing column"):
        smoke_test(model_server.url, ROWS, np.array([1.0, 2.0, 3.0]))


def test_answer_that_is_not_json_is_a_deployment_error(model_server):
    model_server.answer = (200, b"<html>proxy error</html>")

    with pytest.raises(DeploymentError, match=r"smoke test"):
        smoke_test(model_server.url, ROWS, np.array([1.0, 2.0, 3.0]))


def test_text_answer_to_a_numeric_model_is_a_deployment_error(model_server):
    model_server.answer = (200, answer(["cheap", "dear", "cheap"]))

    with pytest.raises(DeploymentError, match=r"smoke test"):
        smoke_test(model_server.url, ROWS, np.array([1.0, 2.0, 3.0]))


def test_unreachable_server_is_reported(monkeypatch):
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/v1.0/predictions"  # nothing listens there any more

    with pytest.raises(DeploymentError, match=rf"smoke test: cannot reach {url}"):
        smoke_test(url, ROWS, np.array([1.0, 2.0, 3.0]), timeout=5)

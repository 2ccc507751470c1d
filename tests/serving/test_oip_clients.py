"""Real server, real clients: the serving entry point (``python -m serving``) answered by third-party Open Inference
Protocol clients (tritonclient's HTTP and gRPC clients) and by plain HTTP, for a regressor and a classifier, started
as the local launcher starts it (flags), with the environment the Seldon Core 1.17.1 operator injects into a
``protocol: v2`` custom container, and as a KServe InferenceService runs it (``STORAGE_URI`` + ``--model_name``).

Every prediction must equal ``joblib.load(<bundle>/model.joblib).predict`` on the same raw held-out rows (missing
values included), class probabilities ``predict_proba``; the model metadata must report each column with its OIP
datatype, the registry version and the model's sha256.

tritonclient's gRPC module and kserve both register the protobuf package ``inference``, so the gRPC client runs in a
child interpreter: the test process never imports it, whatever else the test session imported.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as httpclient
from prometheus_client.parser import text_string_to_metric_families
from threadpoolctl import threadpool_limits
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.serving

REQUEST_TIMEOUT = 60.0  # seconds per request; bounded, never asserted on
# tritonclient's JSON mode sends no Content-Type, and the server (like KServe) reads a body without one as binary.
JSON_HEADERS = {"Content-Type": "application/json"}
# The registry version the Seldon and KServe forms are deployed with (the deploy step passes it as a parameter).
REGISTRY_VERSION = "7"
OIP_NUMERIC, OIP_TEXT = "FP64", "BYTES"


# ---------------------------------------------------------------------------------------------------------------
# servers in each form


@dataclass(frozen=True)
class Served:
    """A running server and what it serves: the bundle, its held-out feature rows and the names it answers to."""

    form: str
    bundle: object  # model_bundle.Bundle
    rows: pd.DataFrame  # raw held-out feature rows, missing values included
    model_name: str
    http_port: int
    grpc_port: int
    metrics_url: str
    version: str  # what versions[0] must say: the registry version, or sha256[:12] without one

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def seldon_environment(name: str, model_dir: Path, sha256: str, ports: list[int]) -> dict[str, str]:
    """What the Seldon Core 1.17.1 operator sets on a custom graph container named ``name`` with ``modelUri``
    (serving-notes §A1, §A3, §A5); ``model_dir`` stands in for /mnt/models."""
    http, grpc, metrics = (str(port) for port in ports)
    parameters = [
        {"name": "model_sha256", "type": "STRING", "value": sha256},
        {"name": "model_version", "type": "STRING", "value": REGISTRY_VERSION},
    ]
    return {
        "PREDICTIVE_UNIT_SERVICE_PORT": http,
        "PREDICTIVE_UNIT_HTTP_SERVICE_PORT": http,
        "MLSERVER_HTTP_PORT": http,
        "PREDICTIVE_UNIT_GRPC_SERVICE_PORT": grpc,
        "MLSERVER_GRPC_PORT": grpc,
        "PREDICTIVE_UNIT_METRICS_SERVICE_PORT": metrics,
        "MLSERVER_METRICS_PORT": metrics,
        "PREDICTIVE_UNIT_METRICS_ENDPOINT": "/prometheus",
        "MLSERVER_METRICS_ENDPOINT": "/prometheus",
        "PREDICTIVE_UNIT_PARAMETERS": json.dumps(parameters),
        "MLSERVER_MODEL_URI": str(model_dir),
        "PREDICTIVE_UNIT_ID": name,
        "MLSERVER_MODEL_NAME": name,
        "PREDICTIVE_UNIT_IMAGE": "kfp-mlops-serving:test",
        "PREDICTOR_ID": "default",
        "PREDICTOR_LABELS": "{}",
        "SELDON_DEPLOYMENT_ID": name,
        "SELDON_EXECUTOR_ENABLED": "true",
    }


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


FORMS = ("local", "seldon_env", "kserve")
TASKS = ("regression", "classification")


@pytest.fixture(scope="module", params=[(form, task) for form in FORMS for task in TASKS], ids="-".join)
def served(request, tmp_path_factory, free_ports, spawn_server) -> Iterator[Served]:
    """A server in each form for each task; pytest runs one parameter's tests together, so at most one spawned
    server runs at a time."""
    form, task = request.param
    bundle, test_frame = request.getfixturevalue(f"{task}_bundle")
    rows = test_frame[bundle.feature_names]
    if form == "local":  # the session servers of tests/serving/conftest.py (local_server.start, flags)
        server = request.getfixturevalue(f"{task}_server")
        yield Served(
            form,
            bundle,
            rows,
            server.model_name,
            server.http_port,
            server.grpc_port,
            server.metrics_url,
            bundle.card.sha256[:12],
        )
        return
    http, grpc, metrics = free_ports(3)
    name = f"houses-{task}"
    log = tmp_path_factory.mktemp("oip-client-server") / f"{form}-{task}.log"
    if form == "seldon_env":
        args, env = [], seldon_environment(name, bundle.directory, bundle.card.sha256, [http, grpc, metrics])
        metrics_url = f"http://127.0.0.1:{metrics}/prometheus"
    else:  # KServe: the storage initializer's copy in STORAGE_URI, the rest as container args
        args = [
            f"--model_name={name}",
            f"--http_port={http}",
            f"--grpc_port={grpc}",
            f"--metrics_port={metrics}",
            f"--model_sha256={bundle.card.sha256}",
            f"--model_version={REGISTRY_VERSION}",
        ]
        env = {"STORAGE_URI": str(bundle.directory)}
        metrics_url = f"http://127.0.0.1:{http}/metrics"  # KServe's own metrics path on the HTTP port
    with spawn_server(args, log, http_port=http, model_name=name, env=env):
        yield Served(form, bundle, rows, name, http, grpc, metrics_url, REGISTRY_VERSION)


# ---------------------------------------------------------------------------------------------------------------
# requests and expectations


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _column(feature: dict, values: pd.Series) -> tuple[str, list]:
    """A feature column as the model metadata types it: FP64 numbers or BYTES text (a category's text is the one
    the model makes of it: True -> "True"), None for a missing value."""
    if feature["type"] == "numeric":
        return OIP_NUMERIC, [None if _is_missing(value) else float(value) for value in values.astype(object)]
    return OIP_TEXT, [None if _is_missing(value) else str(value) for value in values.astype(object)]


def table_inputs(bundle, rows: pd.DataFrame) -> list[dict]:
    """One OIP input per feature column, shape [n]."""
    inputs = []
    for feature in bundle.features:
        datatype, data = _column(feature, rows[feature["name"]])
        inputs.append({"name": feature["name"], "shape": [len(rows)], "datatype": datatype, "data": data})
    return inputs


def output_names(bundle, probabilities: bool) -> list[str]:
    classes = [f"probability_{label}" for label in bundle.card.classes or []] if probabilities else []
    return [bundle.card.target, *classes]


_models: dict[Path, object] = {}


def expected(bundle, rows: pd.DataFrame, probabilities: bool = False) -> dict[str, list]:
    """What the model file alone says for the raw rows: output name -> values, as plain Python values."""
    if bundle.directory not in _models:
        _models[bundle.directory] = joblib.load(bundle.directory / "model.joblib")
    model = _models[bundle.directory]
    with threadpool_limits(limits=1):  # the answer does not depend on threads; the CPUs are shared with the server
        answers = {bundle.card.target: np.asarray(model.predict(rows)).tolist()}
        if probabilities:
            table = model.predict_proba(rows)
            for position, label in enumerate(model.classes_):
                answers[f"probability_{label}"] = table[:, position].tolist()
    return answers


def assert_outputs(served: Served, outputs: dict[str, dict], rows: pd.DataFrame, probabilities: bool) -> None:
    """``outputs``: name -> {"datatype", "shape", "data"} as the client decoded them."""
    bundle = served.bundle
    wanted = expected(bundle, rows, probabilities)
    assert sorted(outputs) == sorted(wanted), f"outputs {sorted(outputs)}, expected {sorted(wanted)}"
    target = outputs[bundle.card.target]
    assert target["shape"] == [len(rows)], target["shape"]
    if bundle.task == "regression":
        assert target["datatype"] == "FP64"
    else:  # the labels are text here
        assert target["datatype"] == "BYTES"
        assert set(target["data"]) <= set(bundle.card.classes)
    for name, values in wanted.items():
        assert outputs[name]["data"] == values, f"{served.form}: output {name} differs from the model file's"
        if name != bundle.card.target:
            assert outputs[name]["datatype"] == "FP64", name
            assert outputs[name]["shape"] == [len(rows)], name


def _json_outputs(response: dict) -> dict[str, dict]:
    return {
        output["name"]: {"datatype": output["datatype"], "shape": output["shape"], "data": output["data"]}
        for output in response["outputs"]
    }


def _post_json(url: str, body: dict) -> tuple[int, dict]:
    data = json.dumps(body, allow_nan=False).encode()
    request = urllib.request.Request(url, data=data, headers=JSON_HEADERS, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _with_missing(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows.isna().any(axis=1)]


# ---------------------------------------------------------------------------------------------------------------
# (c) plain HTTP


def _asks(served: Served) -> list[bool]:
    """Whether to ask for class probabilities: a classifier is asked both ways (a regressor refuses them)."""
    return [False, True] if served.bundle.task == "classification" else [False]


def test_plain_http_predictions_equal_the_model_file(served):
    for probabilities in _asks(served):
        _check_plain_http(served, probabilities)


def _check_plain_http(served: Served, probabilities: bool) -> None:
    bundle, rows = served.bundle, served.rows
    assert len(_with_missing(rows)) > 0, "the held-out rows should include missing values"
    body = {
        "id": f"plain-{served.form}",
        "parameters": {"content_type": "pd", **({"probabilities": True} if probabilities else {})},
        "inputs": table_inputs(bundle, rows),
    }
    assert "null" in json.dumps(body), "missing values travel as JSON null"

    status, response = _post_json(f"{served.base_url}/v2/models/{served.model_name}/infer", body)

    assert status == 200, response
    assert response["model_name"] == served.model_name
    assert response["model_version"] == served.version
    assert response["id"] == body["id"]
    assert response["parameters"]["content_type"] == "pd"
    assert_outputs(served, _json_outputs(response), rows, probabilities)


# ---------------------------------------------------------------------------------------------------------------
# (a) tritonclient HTTP, JSON mode


def _triton_http_inputs(bundle, rows: pd.DataFrame) -> list[httpclient.InferInput]:
    """tritonclient inputs built from numpy arrays, as its users build them.

    JSON has no NaN and OIP no missing value: the server reads JSON null as one. tritonclient writes a numpy NaN
    as the token NaN (not JSON: refused, see test_tritonclient_http_nan_is_refused_as_bad_json) and None in a text
    array as "None", so a missing value is put into the input's JSON data as None: the one way to send one with
    this client.
    """
    inputs = []
    for column in table_inputs(bundle, rows):
        values = column["data"]
        if column["datatype"] == OIP_NUMERIC:
            array = np.array([math.nan if value is None else value for value in values], dtype=np.float64)
        else:
            array = np.array(["" if value is None else value for value in values], dtype=np.object_)
        tensor = httpclient.InferInput(column["name"], list(array.shape), column["datatype"])
        tensor.set_data_from_numpy(array, binary_data=False)
        if any(value is None for value in values):
            tensor._data = [None if value is None else sent for sent, value in zip(tensor._data, values, strict=True)]
        inputs.append(tensor)
    return inputs


def _triton_http_infer(served: Served, rows: pd.DataFrame, probabilities: bool) -> dict[str, dict]:
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{served.http_port}", network_timeout=REQUEST_TIMEOUT)
    try:
        # Without requested outputs tritonclient asks for binary ones, which the Seldon executor cannot carry.
        outputs = [
            httpclient.InferRequestedOutput(name, binary_data=False)
            for name in output_names(served.bundle, probabilities)
        ]
        parameters = {"content_type": "pd", **({"probabilities": True} if probabilities else {})}
        result = client.infer(
            served.model_name,
            _triton_http_inputs(served.bundle, rows),
            outputs=outputs,
            parameters=parameters,
            headers=JSON_HEADERS,
        )
        response = result.get_response()
        assert response["model_name"] == served.model_name
        assert response["model_version"] == served.version
        decoded = {}
        for output in response["outputs"]:
            array = result.as_numpy(output["name"])
            values = [value.decode() if isinstance(value, bytes) else value for value in array.ravel().tolist()]
            decoded[output["name"]] = {"datatype": output["datatype"], "shape": list(array.shape), "data": values}
        return decoded
    finally:
        client.close()


def test_tritonclient_http_predictions_equal_the_model_file(served):
    rows = served.rows
    complete = rows[rows.notna().all(axis=1)]
    for probabilities in _asks(served):
        # Only what the client's public API can express (no missing value), then every held-out row.
        assert_outputs(served, _triton_http_infer(served, complete, probabilities), complete, probabilities)
        assert_outputs(served, _triton_http_infer(served, rows, probabilities), rows, probabilities)


def test_tritonclient_http_nan_is_refused_as_bad_json(regression_server, regression_bundle):
    """A client that lets NaN through gets a 400 saying the body is not JSON, not a prediction made of a guess."""
    bundle, test_frame = regression_bundle
    rows = test_frame[bundle.feature_names]
    numeric = next(feature["name"] for feature in bundle.features if feature["type"] == "numeric")
    rows = rows[rows.notna().all(axis=1)].head(2).copy()
    rows.loc[rows.index[0], numeric] = math.nan
    inputs = []
    for column in table_inputs(bundle, rows):
        dtype = np.float64 if column["datatype"] == OIP_NUMERIC else np.object_
        array = np.array([math.nan if value is None else value for value in column["data"]], dtype=dtype)
        tensor = httpclient.InferInput(column["name"], list(array.shape), column["datatype"])
        tensor.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor)
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{regression_server.http_port}")
    try:
        with pytest.raises(InferenceServerException) as refused:
            client.infer(
                regression_server.model_name,
                inputs,
                outputs=[httpclient.InferRequestedOutput(bundle.card.target, binary_data=False)],
                headers=JSON_HEADERS,
            )
    finally:
        client.close()
    assert refused.value.status() == "400", refused.value
    assert "JSON" in refused.value.message() and "NaN" in refused.value.message(), refused.value.message()


# ---------------------------------------------------------------------------------------------------------------
# (b) tritonclient gRPC, in a child interpreter (the grpc_client fixture)


def _grpc_rows(bundle, rows: pd.DataFrame) -> pd.DataFrame:
    """gRPC carries a missing number (NaN) but no missing text: rows missing a category stay with the REST tests."""
    categorical = [feature["name"] for feature in bundle.features if feature["type"] != "numeric"]
    return rows[rows[categorical].notna().all(axis=1)]


def test_tritonclient_grpc_predictions_equal_the_model_file(served, grpc_client):
    bundle = served.bundle
    rows = _grpc_rows(bundle, served.rows)
    assert rows.isna().any(axis=None), "the gRPC rows should include missing numbers"
    calls = [
        {
            "kind": "infer",
            "model": served.model_name,
            "id": f"grpc-{served.form}-{probabilities}",
            "inputs": table_inputs(bundle, rows),
            "outputs": output_names(bundle, probabilities),
            "parameters": {"content_type": "pd", **({"probabilities": True} if probabilities else {})},
        }
        for probabilities in _asks(served)
    ]

    results = grpc_client(served.grpc_port, calls)

    for call, result, probabilities in zip(calls, results, _asks(served), strict=True):
        assert result["ok"], result
        assert result["model_name"] == served.model_name
        assert result["model_version"] == served.version
        assert result["id"] == call["id"]
        assert_outputs(served, result["outputs"], rows, probabilities)


# ---------------------------------------------------------------------------------------------------------------
# metadata, health, metrics


def _expected_inputs(bundle) -> list[dict]:
    return [
        {"name": f["name"], "datatype": OIP_NUMERIC if f["type"] == "numeric" else OIP_TEXT, "shape": [-1]}
        for f in bundle.features
    ]


def _expected_outputs(bundle) -> dict[str, str]:
    """Output name -> datatype."""
    target = {bundle.card.target: "FP64" if bundle.task == "regression" else "BYTES"}
    return {**target, **{name: "FP64" for name in output_names(bundle, True)[1:]}}


def _check_metadata(served: Served, metadata: dict) -> None:
    bundle = served.bundle
    assert metadata["name"] == served.model_name
    assert metadata["versions"] == [served.version]
    assert metadata["platform"] == "scikit-learn"
    inputs = [
        {"name": entry["name"], "datatype": entry["datatype"], "shape": [int(size) for size in entry["shape"]]}
        for entry in metadata["inputs"]
    ]
    assert inputs == _expected_inputs(bundle)
    assert {entry["name"]: entry["datatype"] for entry in metadata["outputs"]} == _expected_outputs(bundle)


def test_rest_metadata_reports_the_column_contract_version_and_sha256(served):
    bundle = served.bundle
    status, body = _get(f"{served.base_url}/v2/models/{served.model_name}")
    assert status == 200, body[:2000]
    metadata = json.loads(body)
    _check_metadata(served, metadata)
    parameters = metadata["parameters"]
    assert parameters["sha256"] == bundle.card.sha256
    assert parameters["task"] == bundle.task
    assert parameters["target"] == bundle.card.target
    assert parameters["content_type"] == "pd"
    if served.version == REGISTRY_VERSION:
        assert parameters["model_version"] == REGISTRY_VERSION

    # The same through tritonclient, which is what its users read datatypes from.
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{served.http_port}")
    try:
        assert client.get_model_metadata(served.model_name, headers=JSON_HEADERS) == metadata
    finally:
        client.close()


def test_grpc_metadata_and_health(served, grpc_client):
    calls = [{"kind": "metadata", "model": served.model_name}, {"kind": "ready", "model": served.model_name}]

    metadata, health = grpc_client(served.grpc_port, calls)

    assert metadata["ok"], metadata
    _check_metadata(served, metadata["metadata"])
    assert health == {"ok": True, "live": True, "ready": True, "model_ready": True}


def test_rest_health_and_metrics_endpoints(served):
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{served.http_port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(served.model_name)
        assert not client.is_model_ready(f"{served.model_name}-other")
        # A request, so this server's request counter exists whichever test ran before.
        rows = served.rows.head(3)
        _triton_http_infer(served, rows, probabilities=False)
    finally:
        client.close()

    status, body = _get(served.metrics_url)
    assert status == 200, body[:1000]
    samples = [sample for family in text_string_to_metric_families(body.decode()) for sample in family.samples]
    ok = [
        sample
        for sample in samples
        if sample.name == "model_requests_total"
        and sample.labels.get("outcome") == "ok"
        and sample.labels.get("model_name") == served.model_name
    ]
    assert ok and sum(sample.value for sample in ok) >= 1, f"no ok requests counted at {served.metrics_url}"


# ---------------------------------------------------------------------------------------------------------------
# the table as pandas types it, and whole rows


def test_natural_datatypes_shapes_and_whole_rows_give_the_same_predictions(regression_server, regression_bundle):
    """What a pandas user sends without reading the metadata: integers as INT64, booleans as BOOL, columns of shape
    [n, 1], and whole rows with the target column (ignored, as the model card names it)."""
    bundle, test_frame = regression_bundle
    rows = test_frame[test_frame[bundle.feature_names].notna().all(axis=1)].head(20)
    datatypes = {"int64": "INT64", "float64": "FP64", "bool": "BOOL", "object": "BYTES"}
    inputs = []
    for name in [*bundle.feature_names, bundle.card.target]:
        column = rows[name]
        inputs.append(
            {"name": name, "shape": [len(rows), 1], "datatype": datatypes[str(column.dtype)], "data": column.tolist()}
        )
    assert {column["datatype"] for column in inputs} >= {"INT64", "BOOL", "BYTES", "FP64"}
    body = {"parameters": {"content_type": "pd"}, "inputs": inputs}

    status, response = _post_json(f"{regression_server.base_url}/v2/models/{regression_server.model_name}/infer", body)

    assert status == 200, response
    outputs = _json_outputs(response)
    assert outputs[bundle.card.target]["data"] == expected(bundle, rows[bundle.feature_names])[bundle.card.target]

"""Real model servers (``python -m serving``, started by serving.local_server with this interpreter) for the serving
tests, one per task, on free ports.

Helpers are fixtures rather than importable functions, so the tests work under any pytest import mode.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

import model_bundle
from components.prepare_data.logic import prepare
from components.train_model.logic import train
from serving import local_server, processes

# Bounded waits: server start-up (sklearn + kserve imports), a spawned server's start-up and one helper script.
START_TIMEOUT = 60.0
SPAWN_TIMEOUT = 120.0
SUBPROCESS_TIMEOUT = 120.0
# The regression server's batch and body limits (model parameters), small enough to test cheaply.
MAX_ROWS = 1000
MAX_BODY_BYTES = 1 << 20
# The OIP model names the fixture servers serve under (as the deploy step names them: a DNS label).
REGRESSION_MODEL = "house-prices"
CLASSIFICATION_MODEL = "energy-label"
AUDITED_MODEL = "energy-label-audited"


def start_server(
    model_dir: Path,
    sha256: str,
    state_dir: Path,
    ports: list[int],
    timeout: float = START_TIMEOUT,
    parameters: dict | None = None,
    model_name: str = "model",
) -> local_server.LocalServer:
    """``local_server.start`` on the three given ports (http, metrics, grpc)."""
    http_port, metrics_port, grpc_port = ports
    return local_server.start(
        model_dir,
        sha256,
        state_dir,
        http_port,
        metrics_port,
        grpc_port,
        timeout=timeout,
        parameters=parameters,
        model_name=model_name,
    )


@contextlib.contextmanager
def serving(
    bundle: model_bundle.Bundle,
    state_dir: Path,
    ports: list[int],
    parameters: dict | None = None,
    model_name: str = "model",
) -> Iterator[local_server.LocalServer]:
    """A started server for ``bundle``, stopped afterwards whatever happens (start() cleans up its own failures)."""
    server = start_server(
        bundle.directory, bundle.card.sha256, state_dir, ports, parameters=parameters, model_name=model_name
    )
    try:
        yield server
    finally:
        local_server.stop(server.http_port, state_dir)
        leftover = local_server.running(state_dir)
        assert not leftover, f"server(s) still running after stop: {leftover}"


@pytest.fixture(scope="session")
def max_rows() -> int:
    """The regression server's batch limit."""
    return MAX_ROWS


@pytest.fixture(scope="session")
def max_body_bytes() -> int:
    """The regression server's request body limit."""
    return MAX_BODY_BYTES


@pytest.fixture(scope="session")
def regression_server(regression_bundle, tmp_path_factory, free_ports) -> Iterator[local_server.LocalServer]:
    """A real server for the regression bundle (model name ``house-prices``, ``max_rows`` MAX_ROWS,
    ``max_body_bytes`` MAX_BODY_BYTES), with its own state directory."""
    bundle, _ = regression_bundle
    state_dir = tmp_path_factory.mktemp("regression-server-state")
    parameters = {"max_rows": MAX_ROWS, "max_body_bytes": MAX_BODY_BYTES}
    with serving(bundle, state_dir, free_ports(3), parameters, model_name=REGRESSION_MODEL) as server:
        yield server


@pytest.fixture(scope="session")
def classification_server(classification_bundle, tmp_path_factory, free_ports) -> Iterator[local_server.LocalServer]:
    """A real server for the classification bundle (model name ``energy-label``), with its own state directory."""
    bundle, _ = classification_bundle
    state_dir = tmp_path_factory.mktemp("classification-server-state")
    with serving(bundle, state_dir, free_ports(3), model_name=CLASSIFICATION_MODEL) as server:
        yield server


@pytest.fixture(scope="session")
def audited_bundle(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, pd.DataFrame]:
    """An energy-label classifier audited on a column it does not use: ``neighbourhood`` is excluded from the
    features and named in ``sensitive_columns``, so the server counts predictions per neighbourhood when a client
    sends it beside the features. With its held-out rows (neighbourhood included)."""
    target, excluded = "energy_label", {"neighbourhood": "exclude_columns"}
    prepared = prepare(houses, target=target, task="classification", seed=1)
    pipeline, card = train(
        prepared.train,
        target,
        "classification",
        seed=1,
        validation_fraction=0,
        excluded_columns=excluded,
        sensitive_columns=["neighbourhood"],
    )
    directory = tmp_path_factory.mktemp("audited") / "model"
    documents = {model_bundle.SCHEMA_FILE: model_bundle.schema.infer(houses, target, excluded)}
    model_bundle.save(directory, pipeline, card, documents)
    return model_bundle.load(directory), prepared.test


@pytest.fixture(scope="session")
def audited_server(audited_bundle, tmp_path_factory, free_ports) -> Iterator[local_server.LocalServer]:
    """A real server for the audited bundle (model name ``energy-label-audited``), with its own state directory."""
    bundle, _ = audited_bundle
    state_dir = tmp_path_factory.mktemp("audited-server-state")
    with serving(bundle, state_dir, free_ports(3), model_name=AUDITED_MODEL) as server:
        yield server


def _json_value(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def rows_as_json(frame: pd.DataFrame) -> list[list]:
    """The rows of ``frame`` as JSON-native lists: missing values become None (JSON null)."""
    return [[_json_value(value) for value in row] for row in frame.astype(object).itertuples(index=False, name=None)]


@pytest.fixture(scope="session")
def json_rows() -> Callable[[pd.DataFrame], list[list]]:
    """``json_rows(frame)``: the frame's rows as JSON-native lists, NaN as None."""
    return rows_as_json


def table_request(bundle: model_bundle.Bundle, frame: pd.DataFrame, **parameters) -> dict:
    """An OIP table request (one input per column of ``frame``, missing values as null): FP64 for the model's
    numeric columns, BYTES for text, BOOL or FP64 for a categorical column holding booleans or numbers."""
    types = {feature["name"]: feature["type"] for feature in bundle.features}
    inputs = []
    for name in frame.columns:
        values = [_json_value(value) for value in frame[name].astype(object)]
        present = {type(value) for value in values if value is not None}
        if types.get(name) == model_bundle.NUMERIC or (present and present <= {int, float}):
            datatype = "FP64"
        elif present == {bool}:
            datatype = "BOOL"
        else:
            datatype = "BYTES"
        inputs.append({"name": str(name), "shape": [len(values)], "datatype": datatype, "data": values})
    return {"parameters": {"content_type": "pd", **parameters}, "inputs": inputs}


@pytest.fixture(scope="session")
def oip_table() -> Callable[..., dict]:
    """``oip_table(bundle, frame, **parameters)``: the rows of ``frame`` as an OIP table request (see table_request)."""
    return table_request


@pytest.fixture(scope="session")
def run_python() -> Callable[..., subprocess.CompletedProcess]:
    """``run_python(source, *args)``: runs Python source in a fresh process of this interpreter from the repository
    root (so model_bundle and serving import) and fails the test with its output when it fails."""

    def run(source: str, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-c", source, *args],
            cwd=processes.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                f"script exited with code {result.returncode}:\n"
                f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
            )
        return result

    return run


@pytest.fixture(scope="session")
def serve_bundle() -> Callable[..., contextlib.AbstractContextManager[local_server.LocalServer]]:
    """``with serve_bundle(bundle, state_dir, ports[, parameters][, model_name=...]) as server``: a real server for
    any bundle, stopped after."""
    return serving


# ---------------------------------------------------------------------------------------------------------------
# `python -m serving` started by hand (the forms the deployers use: flags, the Seldon operator's env, KServe's), and
# tritonclient's gRPC client in a child interpreter


def clean_environment() -> dict[str, str]:
    """This process's environment without any serving setting (it would leak into the form under test) or proxy
    (requests to 127.0.0.1 must not go through one), with one OpenMP thread."""
    prefixes = ("PREDICTIVE_UNIT_", "MLSERVER_", "SELDON_", "STORAGE_URI", "PREDICTOR_")
    proxies = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(prefixes) and name.lower() not in proxies
    }
    return {**kept, "OMP_NUM_THREADS": "1"}


@contextlib.contextmanager
def spawned_server(
    args: list[str],
    log: Path,
    *,
    http_port: int,
    model_name: str,
    env: dict[str, str] | None = None,
    base_env: dict[str, str] | None = None,
    wait_ready: bool = True,
) -> Iterator[subprocess.Popen]:
    """``python -m serving ARGS`` in its own process group (serving.processes.spawn), output to ``log``, with ``env`` on
    top of ``base_env`` (default: clean_environment()); waits until /v2/models/<model_name>/ready answers 200 on
    ``http_port`` (unless ``wait_ready`` is False, for a server that must refuse to start) and stops the group
    afterwards, whatever happens (serving.processes.stop_group)."""
    environment = {**(clean_environment() if base_env is None else base_env), **(env or {})}
    process = processes.spawn([sys.executable, "-m", "serving", *args], log, environment)
    try:
        if wait_ready:
            ready = f"http://{processes.HOST}:{http_port}/v2/models/{model_name}/ready"
            processes.wait_healthy(ready, process, log, SPAWN_TIMEOUT, "`python -m serving`")
        yield process
    finally:
        processes.stop_group(process.pid)
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def spawn_server() -> Callable[..., contextlib.AbstractContextManager[subprocess.Popen]]:
    """``with spawn_server(args, log, http_port=..., model_name=...[, env=...][, base_env=...][, wait_ready=False])
    as process``: ``python -m serving`` started by hand, ready, stopped after (see spawned_server)."""
    return spawned_server


# tritonclient's gRPC module and kserve both register the protobuf package ``inference``: the client runs in a child
# interpreter, so the test process never imports it, whatever else the session imported.
GRPC_CLIENT = r"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

url, calls_file, results_file = sys.argv[1:4]
with open(calls_file) as stream:
    calls = json.load(stream)
client = grpcclient.InferenceServerClient(url=url)


def infer(call):
    inputs = []
    for spec in call["inputs"]:
        if spec["datatype"] == "BYTES":  # gRPC has no missing text: the caller sends none
            encoding = spec.get("encoding", "utf-8")  # another, as a faulty client sends it
            array = np.array([value.encode(encoding) for value in spec["data"]], dtype=np.object_)
        else:  # a missing number is NaN, as in numpy and pandas
            dtype = triton_to_np_dtype(spec["datatype"])
            array = np.array([np.nan if value is None else value for value in spec["data"]], dtype=dtype)
        array = array.reshape(spec["shape"])
        tensor = grpcclient.InferInput(spec["name"], list(array.shape), spec["datatype"])
        tensor.set_data_from_numpy(array)
        if "wire_shape" in spec:  # a shape that does not match the data, as a faulty client sends it
            tensor.set_shape(spec["wire_shape"])
        inputs.append(tensor)
    outputs = [grpcclient.InferRequestedOutput(name) for name in call.get("outputs", [])] or None
    result = client.infer(
        call["model"], inputs, outputs=outputs, parameters=call.get("parameters"), request_id=call.get("id", "")
    )
    response = result.get_response(as_json=True)
    decoded = {}
    for output in response["outputs"]:
        array = result.as_numpy(output["name"])
        values = [value.decode() if isinstance(value, bytes) else value for value in array.ravel().tolist()]
        decoded[output["name"]] = {
            "datatype": output["datatype"],
            "shape": [int(size) for size in output["shape"]],
            "data": values,
        }
    return {
        "model_name": response.get("model_name"),
        "model_version": response.get("model_version"),
        "id": response.get("id"),
        "parameters": response.get("parameters", {}),
        "outputs": decoded,
    }


results = []
for call in calls:
    try:
        if call["kind"] == "metadata":
            answer = {"metadata": client.get_model_metadata(call["model"], as_json=True)}
        elif call["kind"] == "ready":
            answer = {
                "live": client.is_server_live(),
                "ready": client.is_server_ready(),
                "model_ready": client.is_model_ready(call["model"]),
            }
        else:
            answer = infer(call)
        results.append({"ok": True, **answer})
    except InferenceServerException as error:
        results.append({"ok": False, "status": error.status(), "message": error.message()})
with open(results_file, "w") as stream:
    json.dump(results, stream)
"""


@pytest.fixture
def grpc_client(tmp_path) -> Callable[[int, list[dict]], list[dict]]:
    """``grpc_client(port, calls)``: runs ``calls`` with tritonclient.grpc against 127.0.0.1:``port`` in a child
    interpreter; one result per call, in order.

    A call is ``{"kind": "infer", "model", "inputs": [OIP inputs, JSON data; an optional "wire_shape" is sent
    instead of the data's shape, an optional "encoding" encodes BYTES data instead of UTF-8], "outputs"?: [names],
    "parameters"?: {...}, "id"?: str}``, ``{"kind": "metadata",
    "model"}`` or ``{"kind": "ready", "model"}``. A result is ``{"ok": False, "status", "message"}`` for an error,
    else ``{"ok": True, ...}`` with: model_name, model_version, id, parameters and outputs (name -> {datatype,
    shape, data}); metadata; or live, ready and model_ready.
    """

    def run(port: int, calls: list[dict]) -> list[dict]:
        calls_file, results_file = tmp_path / "grpc-calls.json", tmp_path / "grpc-results.json"
        calls_file.write_text(json.dumps(calls, allow_nan=False))
        child = subprocess.run(
            [sys.executable, "-c", GRPC_CLIENT, f"{processes.HOST}:{port}", str(calls_file), str(results_file)],
            cwd=processes.REPO_ROOT,
            env=clean_environment(),
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )
        assert child.returncode == 0, f"gRPC client failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}"
        results = json.loads(results_file.read_text())
        assert len(results) == len(calls)
        return results

    return run

"""Malformed Open Inference Protocol requests: each gets its exact documented status and reason code and a message
naming the problem, the server keeps serving (a good request right after gets the model file's prediction), the
error metric counts each reason code, and a tampered model never starts.

The corpus runs against a server of its own, started like the image (``python -m serving``) with the limits and
checks it exercises: ``max_rows`` 50, ``max_body_bytes`` 1,000,000 and ``schema_checks`` nulls,domain (a null where
training had none is refused). A few cases that need a classifier use the session's classification server.
"""

from __future__ import annotations

import http.client
import json
import select
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

import model_bundle
from serving.oip import MAX_MESSAGE_CHARS

pytestmark = pytest.mark.serving

REQUEST_TIMEOUT = 60.0  # seconds per request; bounded, never asserted on
REFUSAL_TIMEOUT = 120.0  # a server that must refuse to start exits within this
JSON = {"Content-Type": "application/json"}
MAX_ROWS = 50
MAX_BODY_BYTES = 1_000_000
MODEL_NAME = "houses-strict"
UNKNOWN_MODEL = "no-such-model"

# A complete held-out-like row of each model, as the metadata types it (FP64 numbers, BYTES text).
REGRESSOR_ROW = {
    "size_sqm": 92.4,
    "rooms": 3.0,
    "age_years": 9.0,
    "renovated": "False",
    "distance_to_center_km": 1.09,
    "neighbourhood": "Industrial Park",
    "energy_label": "B",
}
CLASSIFIER_ROW = {**{k: v for k, v in REGRESSOR_ROW.items() if k != "energy_label"}, "price": 203500.0}
PD = {"content_type": "pd"}


# ---------------------------------------------------------------------------------------------------------------
# request builders


def table(row: dict | None = None, rows: int = 1, parameters: dict | None = PD, **changes) -> dict:
    """An OIP table request of ``rows`` copies of ``row``: one input per column, shape [rows].

    ``changes``: column -> a dict merged into that column's input, or None to leave the column out.
    """
    row = REGRESSOR_ROW if row is None else row
    inputs = []
    for name, value in row.items():
        change = changes.get(name, {})
        if change is None:
            continue
        datatype = "BYTES" if isinstance(value, str) else "FP64"
        inputs.append({"name": name, "shape": [rows], "datatype": datatype, "data": [value] * rows, **change})
    body: dict = {"inputs": inputs}
    if parameters is not None:
        body["parameters"] = parameters
    return body


def plus(body: dict, *inputs: dict, **fields) -> dict:
    """``body`` with further inputs and top-level fields."""
    return {**body, "inputs": [*body["inputs"], *inputs], **fields}


def raw(body: dict, old: str, new: str) -> bytes:
    """``body`` as JSON text with the first ``old`` replaced by ``new`` (for text no JSON encoder writes)."""
    text = json.dumps(body)
    assert old in text, old
    return text.replace(old, new, 1).encode()


def _size(value: float) -> dict:
    return {"data": [value]}


@dataclass(frozen=True)
class Case:
    id: str
    body: object  # a JSON value, or bytes sent as they are
    status: int
    reason: str
    fragments: tuple[str, ...]  # each must appear in the error message (case-insensitive)
    headers: dict[str, str] | None = field(default_factory=lambda: dict(JSON))  # None: no Content-Type at all
    model: str = "regressor"  # or "classifier"
    path: str | None = None  # default: /v2/models/<the server's model>/infer
    claimed_length: int | None = None  # send only headers claiming this Content-Length
    chunked: bool = False  # send the body in chunks, without a Content-Length


TEXT_PLAIN = {"Content-Type": "text/plain"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

CASES = [
    # -- not JSON (400 BAD_JSON)
    Case("not_json", b'{"inputs": [', 400, "BAD_JSON", ("JSON",)),
    Case("nan_token", raw(table(), "92.4", "NaN"), 400, "BAD_JSON", ("JSON", "NaN")),
    Case("infinity_token", raw(table(), "92.4", "-Infinity"), 400, "BAD_JSON", ("JSON", "Infinity")),
    Case("empty_body", b"", 400, "BAD_JSON", ("JSON",)),
    # -- not JSON by its Content-Type (415 BAD_CONTENT_TYPE)
    Case("text_plain_content_type", table(), 415, "BAD_CONTENT_TYPE", ("Content-Type", "text/plain"), TEXT_PLAIN),
    Case("no_content_type", table(), 415, "BAD_CONTENT_TYPE", ("Content-Type", "application/json"), None),
    Case("form_content_type", table(), 415, "BAD_CONTENT_TYPE", ("application/x-www-form-urlencoded",), FORM),
    # -- JSON that is no OIP inference request (422 BAD_REQUEST)
    Case("body_not_an_object", [table()], 422, "BAD_REQUEST", ("object",)),
    Case("no_inputs", {"id": "1", "parameters": PD}, 422, "BAD_REQUEST", ("inputs",)),
    Case("inputs_not_a_list", {"inputs": REGRESSOR_ROW}, 422, "BAD_REQUEST", ("inputs", "list")),
    Case("input_not_an_object", {"inputs": [92.4]}, 422, "BAD_REQUEST", ("inputs[0]",)),
    Case("input_without_name", plus(table(size_sqm=None), {"shape": [1], "datatype": "FP64", "data": [92.4]}), 422,
         "BAD_REQUEST", ("name",)),
    Case("input_without_shape", plus(table(size_sqm=None), {"name": "size_sqm", "datatype": "FP64", "data": [92.4]}),
         422, "BAD_REQUEST", ("size_sqm", "shape")),
    Case("input_without_datatype", plus(table(size_sqm=None), {"name": "size_sqm", "shape": [1], "data": [92.4]}),
         422, "BAD_REQUEST", ("size_sqm", "datatype")),
    Case("input_without_data", plus(table(size_sqm=None), {"name": "size_sqm", "shape": [1], "datatype": "FP64"}),
         422, "BAD_REQUEST", ("size_sqm", "data")),
    Case("shape_not_a_list", table(size_sqm={"shape": "1"}), 422, "BAD_REQUEST", ("size_sqm", "shape")),
    Case("datatype_not_a_string", table(size_sqm={"datatype": 64}), 422, "BAD_REQUEST", ("size_sqm", "datatype")),
    Case("data_not_a_list", table(size_sqm={"data": 92.4}), 422, "BAD_REQUEST", ("size_sqm", "data")),
    Case("id_not_a_string", plus(table(), id=7), 422, "BAD_REQUEST", ("id",)),
    Case("parameters_not_an_object", table(parameters=["pd"]), 422, "BAD_REQUEST", ("parameters",)),
    # -- wrong model (404)
    Case("wrong_model_name", table(), 404, "MODEL_NOT_FOUND", (UNKNOWN_MODEL,),
         path=f"/v2/models/{UNKNOWN_MODEL}/infer"),
    Case("version_not_served", table(), 404, "MODEL_NOT_FOUND", ("version '9'", "serves version"),
         path=f"/v2/models/{MODEL_NAME}/versions/9/infer"),
    # -- inputs that do not match the model's columns (400)
    Case("missing_feature_column", table(energy_label=None), 400, "MISSING_FEATURES", ("energy_label",)),
    Case("unknown_input", plus(table(), {"name": "garden_sqm", "shape": [1], "datatype": "FP64", "data": [12.5]}),
         400, "UNKNOWN_INPUT", ("garden_sqm",)),
    Case("duplicate_input", plus(table(), {"name": "size_sqm", "shape": [1], "datatype": "FP64", "data": [80.0]}),
         400, "DUPLICATE_INPUT", ("size_sqm",)),
    Case("bool_for_a_numeric_column", table(rooms={"datatype": "BOOL", "data": [True]}), 400, "BAD_DATATYPE",
         ("rooms", "BOOL", "numeric")),
    Case("bytes_for_a_numeric_column", table(size_sqm={"datatype": "BYTES", "data": ["92.4"]}), 400, "BAD_DATATYPE",
         ("size_sqm", "BYTES")),
    Case("unknown_datatype", table(size_sqm={"datatype": "FLOAT"}), 400, "BAD_DATATYPE", ("FLOAT",)),
    # -- shapes (400 BAD_SHAPE)
    Case("shape_and_data_disagree", table(size_sqm={"shape": [2]}), 400, "BAD_SHAPE", ("size_sqm",)),
    Case("ragged_nested_data", table(rows=2, size_sqm={"shape": [2, 1], "data": [[92.4], [80.0, 3.0]]}), 400,
         "BAD_SHAPE", ("size_sqm",)),
    Case("three_dimensional_shape", table(size_sqm={"shape": [1, 1, 1], "data": [[[92.4]]]}), 400, "BAD_SHAPE",
         ("size_sqm",)),
    Case("inputs_with_different_row_counts", table(size_sqm={"shape": [2], "data": [92.4, 80.0]}), 400, "BAD_SHAPE",
         ("size_sqm",)),
    # -- values (400 BAD_VALUE, SCHEMA_VIOLATION)
    Case("text_in_a_numeric_column", table(size_sqm=_size("abc")), 400, "BAD_VALUE", ("size_sqm", "abc")),
    Case("empty_text_in_a_numeric_column", table(size_sqm=_size("")), 400, "BAD_VALUE", ("size_sqm",)),
    Case("negative_value_in_an_unsigned_datatype", table(rooms={"datatype": "UINT8", "data": [-5]}), 400,
         "BAD_VALUE", ("rooms", "UINT8", "-5", "0 and 255")),
    Case("value_beyond_its_integer_datatype", table(rooms={"datatype": "INT8", "shape": [2], "data": [3, 300]},
                                                    rows=2), 400, "BAD_VALUE", ("rooms", "INT8", "300", "row 1")),
    Case("value_beyond_fp16", table(size_sqm={"datatype": "FP16", "data": [70000.0]}), 400, "BAD_VALUE",
         ("size_sqm", "FP16", "70000.0", "65504")),
    Case("whole_float_beyond_int64", table(rooms={"datatype": "INT64", "data": [1e30]}), 400, "BAD_VALUE",
         ("rooms", "INT64", "1e+30")),
    Case("nested_object_value", table(neighbourhood={"data": [{"name": "Harbour"}]}), 400, "BAD_VALUE",
         ("neighbourhood",)),
    # Valid JSON syntax, but no double: the parser refuses it as it refuses the Infinity token.
    Case("number_too_large_for_a_double", raw(table(), "92.4", "1e999"), 400, "BAD_JSON", ("infinity",)),
    Case("null_where_training_had_none", table(size_sqm=_size(None)), 400, "SCHEMA_VIOLATION",
         ("size_sqm", "nulls")),
    Case("unseen_category", table(neighbourhood={"data": ["Atlantis"]}), 400, "SCHEMA_VIOLATION",
         ("neighbourhood", "Atlantis", "domain")),
    # -- request forms and parameters (400)
    Case("tensor_for_a_model_with_categories",
         {"inputs": [{"name": "input-0", "shape": [1, 7], "datatype": "FP64", "data": [[1.0] * 7]}]},
         400, "TENSOR_NOT_NUMERIC", ("categorical",)),
    Case("probabilities_from_a_regressor", table(parameters={**PD, "probabilities": True}), 400, "NO_PROBABILITIES",
         ("probabilities",)),
    Case("probabilities_not_a_bool", table(CLASSIFIER_ROW, parameters={**PD, "probabilities": "yes"}), 400,
         "BAD_PARAMETER", ("probabilities", "yes"), model="classifier"),
    Case("content_type_not_pd_or_np", table(parameters={"content_type": "csv"}), 400, "BAD_PARAMETER",
         ("content_type", "csv")),
    Case("output_requested_twice", plus(table(), outputs=[{"name": "price"}] * 3), 400, "BAD_PARAMETER",
         ("price", "more than once")),
    Case("long_value_echoed", table(parameters={"content_type": "x" * 100_000}), 400, "BAD_PARAMETER",
         ("content_type", "characters cut", "'pd'")),
    # 12,000 inputs (under the 1 MB limit): once seconds holding the server (list.count per name), a 150 KB message.
    Case("many_unknown_inputs", plus(table(), *({"name": f"c{n}", "shape": [1], "datatype": "FP64", "data": [1]}
                                                 for n in range(12_000))), 400, "UNKNOWN_INPUT",
         ("'c0'", "characters cut", "the model expects")),
    Case("unknown_output_requested", plus(table(), outputs=[{"name": "price_interval"}]), 400, "BAD_PARAMETER",
         ("price_interval",)),
    # -- size (400 EMPTY, 413)
    Case("zero_rows", table(rows=0), 400, "EMPTY", ("rows",)),
    Case("too_many_rows", table(rows=MAX_ROWS + 1), 413, "TOO_MANY_ROWS", (str(MAX_ROWS + 1), str(MAX_ROWS))),
    Case("body_larger_than_the_limit", b"", 413, "BODY_TOO_LARGE", (str(MAX_BODY_BYTES),),
         claimed_length=MAX_BODY_BYTES + 1),
    # Without a Content-Length the limit still holds: the server stops reading past it.
    Case("chunked_body_larger_than_the_limit", raw(table(), "{", "{" + " " * MAX_BODY_BYTES), 413, "BODY_TOO_LARGE",
         (str(MAX_BODY_BYTES),), chunked=True),
]  # fmt: skip


def test_the_corpus_is_large_and_its_rows_fit_the_models(regression_bundle, classification_bundle):
    """At least 25 cases with distinct ids, every documented client reason but NOT_READY, and the good rows the cases
    are built from are the models' columns (else every case would fail for the wrong reason)."""
    ids = [case.id for case in CASES]
    assert len(ids) >= 25 and len(set(ids)) == len(ids)
    documented = {
        "BAD_JSON", "BAD_CONTENT_TYPE", "BODY_TOO_LARGE", "TOO_MANY_ROWS", "BAD_REQUEST", "MODEL_NOT_FOUND",
        "MISSING_FEATURES", "UNKNOWN_INPUT", "DUPLICATE_INPUT", "BAD_DATATYPE", "BAD_SHAPE", "BAD_VALUE",
        "TENSOR_NOT_NUMERIC", "SCHEMA_VIOLATION", "EMPTY", "BAD_PARAMETER", "NO_PROBABILITIES",
    }  # fmt: skip
    assert {case.reason for case in CASES} == documented
    assert list(REGRESSOR_ROW) == regression_bundle[0].feature_names
    assert list(CLASSIFIER_ROW) == classification_bundle[0].feature_names
    tensor = next(case for case in CASES if case.id == "tensor_for_a_model_with_categories")
    assert tensor.body["inputs"][0]["shape"] == [1, len(REGRESSOR_ROW)]


# ---------------------------------------------------------------------------------------------------------------
# the server under test


def _serving_args(model_dir: Path, ports: list[int], *flags: str) -> list[str]:
    """``python -m serving``'s arguments for ``model_dir`` under MODEL_NAME on ``ports`` (http, grpc, metrics)."""
    http, grpc, metrics = ports
    return [
        f"--model_dir={model_dir}",
        f"--model_name={MODEL_NAME}",
        f"--http_port={http}",
        f"--grpc_port={grpc}",
        f"--metrics_port={metrics}",
        *flags,
    ]


@dataclass(frozen=True)
class Target:
    """A server a case is sent to."""

    http_port: int
    grpc_port: int
    model_name: str
    bundle: object  # model_bundle.Bundle
    good_row: dict
    metrics_url: str | None = None


@pytest.fixture(scope="module")
def strict_server(regression_bundle, tmp_path_factory, free_ports, spawn_server) -> Iterator[Target]:
    bundle, _ = regression_bundle
    ports = free_ports(3)
    log = tmp_path_factory.mktemp("strict-server") / "server.log"
    args = _serving_args(
        bundle.directory,
        ports,
        f"--model_sha256={bundle.card.sha256}",
        f"--max_rows={MAX_ROWS}",
        f"--max_body_bytes={MAX_BODY_BYTES}",
        "--schema_checks=nulls,domain",
    )
    with spawn_server(args, log, http_port=ports[0], model_name=MODEL_NAME):
        yield Target(ports[0], ports[1], MODEL_NAME, bundle, REGRESSOR_ROW, f"http://127.0.0.1:{ports[2]}/prometheus")


@pytest.fixture
def target(request, strict_server, classification_bundle) -> Callable[[Case], Target]:
    """``target(case)``: the server that case goes to."""

    def pick(case: Case) -> Target:
        if case.model == "regressor":
            return strict_server
        server = request.getfixturevalue("classification_server")
        return Target(server.http_port, server.grpc_port, server.model_name, classification_bundle[0], CLASSIFIER_ROW)

    return pick


# ---------------------------------------------------------------------------------------------------------------
# sending


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body)


def send(port: int, path: str, body: bytes, headers: dict[str, str] | None, claimed_length: int | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        if claimed_length is None:
            connection.request("POST", path, body=body, headers=headers or {})
        else:  # only the headers: a server that waits for the body before refusing never answers
            connection.putrequest("POST", path)
            for name, value in {**(headers or {}), "Content-Length": str(claimed_length)}.items():
                connection.putheader(name, value)
            connection.endheaders()
        response = connection.getresponse()
        return Answer(response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        connection.close()


def send_chunked(port: int, path: str, body: bytes, headers: dict[str, str] | None, chunk: int = 65536) -> Answer:
    """``body`` with Transfer-Encoding: chunked, stopping as soon as the server answers (a server that refuses
    early stops reading; whatever it left unread must not stand between this client and the answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT) as connection:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked", "Connection: close"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        pieces = [body[start : start + chunk] for start in range(0, len(body), chunk)]
        for piece in [*pieces, b""]:
            if select.select([connection], [], [], 0)[0]:
                break  # answered already
            try:
                connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except OSError:
                break  # the server closed its side: read its answer
        response = http.client.HTTPResponse(connection)
        response.begin()
        return Answer(response.status, response.getheader("Content-Type", ""), response.read())


def send_case(server: Target, case: Case) -> Answer:
    body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    path = case.path or f"/v2/models/{server.model_name}/infer"
    if case.chunked:
        return send_chunked(server.http_port, path, body, case.headers)
    return send(server.http_port, path, body, case.headers, case.claimed_length)


_models: dict[Path, object] = {}


def model_file_predictions(bundle, rows: pd.DataFrame) -> list:
    if bundle.directory not in _models:
        _models[bundle.directory] = joblib.load(bundle.directory / "model.joblib")
    return _models[bundle.directory].predict(rows).tolist()


def assert_still_serving(server: Target) -> None:
    """A good request right after: 200, and the model file's predictions for its rows."""
    body = table(server.good_row, rows=2)
    answer = send(server.http_port, f"/v2/models/{server.model_name}/infer", json.dumps(body).encode(), JSON)
    assert answer.status == 200, f"the good request after failed: {answer.status} {answer.body[:1000]!r}"
    outputs = {output["name"]: output["data"] for output in answer.json()["outputs"]}
    rows = pd.DataFrame([server.good_row] * 2)
    assert outputs[server.bundle.card.target] == model_file_predictions(server.bundle, rows)


def assert_refused(case: Case, answer: Answer) -> None:
    shown = f"{case.id}: HTTP {answer.status} {answer.body[:1000]!r}"
    assert answer.status == case.status, f"expected {case.status} {case.reason}; got {shown}"
    assert answer.content_type.startswith("application/json"), f"{shown} (Content-Type {answer.content_type!r})"
    error = answer.json()
    assert error.get("reason") == case.reason, f"expected reason {case.reason}; got {shown}"
    message = error.get("error")
    assert isinstance(message, str) and message, shown
    assert len(message) <= MAX_MESSAGE_CHARS, f"{case.id}: a {len(message):,}-character message: {shown}"
    missing = [fragment for fragment in case.fragments if fragment.lower() not in message.lower()]
    assert not missing, f"{case.id}: message {message!r} does not name {missing}"


# ---------------------------------------------------------------------------------------------------------------
# the corpus


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_request_gets_its_status_reason_and_message(case, target):
    server = target(case)

    assert_refused(case, send_case(server, case))

    assert_still_serving(server)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_content_type_with_parameters_or_in_capitals_is_json(strict_server, content_type):
    """Media types are case-insensitive and may carry parameters (what Java and .NET clients send)."""
    body = json.dumps(table(rows=2)).encode()
    answer = send(strict_server.http_port, f"/v2/models/{MODEL_NAME}/infer", body, {"Content-Type": content_type})
    assert answer.status == 200, answer.body[:1000]
    predictions = {output["name"]: output["data"] for output in answer.json()["outputs"]}["price"]
    assert predictions == model_file_predictions(strict_server.bundle, pd.DataFrame([REGRESSOR_ROW] * 2))


@pytest.mark.parametrize("path", [f"/v2/models/{UNKNOWN_MODEL}", f"/v2/models/{UNKNOWN_MODEL}/ready"])
def test_unknown_model_in_metadata_and_ready_paths(strict_server, path):
    ready = f"http://127.0.0.1:{strict_server.http_port}/v2/models/{MODEL_NAME}/ready"
    with urllib.request.urlopen(ready, timeout=REQUEST_TIMEOUT) as ok:
        assert ok.status == 200
    connection = http.client.HTTPConnection("127.0.0.1", strict_server.http_port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        answer = Answer(response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        connection.close()
    case = Case(f"GET {path}", b"", 404, "MODEL_NOT_FOUND", (UNKNOWN_MODEL, MODEL_NAME))
    assert_refused(case, answer)
    assert_still_serving(strict_server)


def test_the_served_version_may_be_named_in_the_path(strict_server):
    version = strict_server.bundle.card.sha256[:12]  # no registry version given: the digest's first 12 digits
    path = f"/v2/models/{MODEL_NAME}/versions/{version}"
    answer = send(strict_server.http_port, f"{path}/infer", json.dumps(table(rows=2)).encode(), JSON)
    assert answer.status == 200, answer.body[:1000]
    assert answer.json()["model_version"] == version
    with urllib.request.urlopen(f"http://127.0.0.1:{strict_server.http_port}{path}", timeout=REQUEST_TIMEOUT) as ok:
        assert json.loads(ok.read())["versions"] == [version]


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", f"/v2/models/{MODEL_NAME}/infer", 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/v2/no/such/path", 404, "NOT_FOUND"),
    ],
)
def test_routing_refusals_have_the_error_shape_too(strict_server, method, path, status, reason):
    connection = http.client.HTTPConnection("127.0.0.1", strict_server.http_port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None, headers=JSON)
        response = connection.getresponse()
        answer = Answer(response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        connection.close()
    assert (answer.status, answer.json()["reason"]) == (status, reason), answer.body[:1000]
    assert answer.json()["error"]
    assert_still_serving(strict_server)


def _scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(url, timeout=REQUEST_TIMEOUT) as response:
        text = response.read().decode()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def _requests_total(samples, **labels: str) -> float:
    return sum(
        value
        for name, sample_labels, value in samples
        if name == "model_requests_total" and all(sample_labels.get(k) == v for k, v in labels.items())
    )


def test_error_metrics_carry_each_reason_code(strict_server):
    """model_requests_total{outcome="error", reason} counts every refusal by its reason, those refused before the
    model is reached (Content-Type, body size, JSON, wrong model) included; every series names the model."""
    cases = [case for case in CASES if case.model == "regressor"]
    before = _scrape(strict_server.metrics_url)

    for case in cases:
        assert send_case(strict_server, case).status == case.status, case.id
    assert_still_serving(strict_server)

    after = _scrape(strict_server.metrics_url)
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.reason] = counts.get(case.reason, 0) + 1
    grown = {
        reason: _requests_total(after, outcome="error", reason=reason)
        - _requests_total(before, outcome="error", reason=reason)
        for reason in counts
    }
    assert grown == counts
    assert _requests_total(after, outcome="ok") - _requests_total(before, outcome="ok") == 1
    unnamed = [labels for name, labels, _ in after if name == "model_requests_total" and not labels.get("model_name")]
    assert not unnamed, f"series without model_name: {unnamed}"
    known = {labels["model_name"] for name, labels, _ in after if name == "model_requests_total"}
    assert MODEL_NAME in known and UNKNOWN_MODEL not in known, "model_name must be the served model (bounded labels)"


# ---------------------------------------------------------------------------------------------------------------
# the header section is bounded (max_header_bytes, default 64 KiB)

MAX_HEADER_BYTES = 64 * 1024


def send_head(port: int, lines: list[str], piece: int = 1 << 20) -> Answer:
    """A GET whose head is ``lines`` (after the request line and Host), sent ``piece`` bytes at a time and left
    unfinished when ``lines`` ends with "" (no blank line follows); stops sending once the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT) as connection:
        finished = lines[-1:] != [""]
        head = "\r\n".join([f"GET /v2/models/{MODEL_NAME}/ready HTTP/1.1", "Host: 127.0.0.1", *lines])
        data = (head + ("\r\n\r\n" if finished else "")).encode()
        for start in range(0, len(data), piece):
            if select.select([connection], [], [], 0)[0]:
                break  # answered already
            try:
                connection.sendall(data[start : start + piece])
            except OSError:
                break  # the server closed its side: read its answer
        response = http.client.HTTPResponse(connection)
        response.begin()
        return Answer(response.status, response.getheader("Content-Type", ""), response.read())


@pytest.mark.parametrize(
    "lines",
    [
        ["X-Padding: " + "a" * MAX_HEADER_BYTES],
        [f"X-Header-{number}: 1" for number in range(MAX_HEADER_BYTES // 10)],
        # One header that never ends, sent 16 KiB at a time: refused while it is still being read.
        ["X-Endless: " + "a" * (4 * MAX_HEADER_BYTES), ""],
    ],
    ids=["one_long_header", "many_headers", "unfinished_header_in_pieces"],
)
def test_a_header_section_over_max_header_bytes_is_refused_and_counted(strict_server, lines):
    """Neither uvicorn nor httptools bounds the request line and headers (a 64 MiB header was read whole and
    answered): past max_header_bytes the server answers 431 HEADERS_TOO_LARGE in the error shape, counts it, and
    keeps serving; a head just under the limit is answered as usual."""
    before = _scrape(strict_server.metrics_url)

    answer = send_head(strict_server.http_port, lines, piece=16 << 10)

    assert (answer.status, answer.content_type) == (431, "application/json"), answer
    assert answer.json()["reason"] == "HEADERS_TOO_LARGE"
    assert "max_header_bytes" in answer.json()["error"]
    after = _scrape(strict_server.metrics_url)
    grown = _requests_total(after, outcome="error", reason="HEADERS_TOO_LARGE")
    assert grown - _requests_total(before, outcome="error", reason="HEADERS_TOO_LARGE") == 1
    under = send_head(strict_server.http_port, ["X-Padding: " + "a" * (MAX_HEADER_BYTES - 1024)])
    assert under.status == 200, under
    assert_still_serving(strict_server)


# ---------------------------------------------------------------------------------------------------------------
# gRPC (tritonclient in a child interpreter: the grpc_client fixture)

INVALID, NOT_FOUND, EXHAUSTED = "StatusCode.INVALID_ARGUMENT", "StatusCode.NOT_FOUND", "StatusCode.RESOURCE_EXHAUSTED"
GARDEN = {"name": "garden_sqm", "shape": [1], "datatype": "FP64", "data": [12.5]}

# id, request (model name, body as the REST table), gRPC status, reason, fragments
GRPC_CASES = [
    ("missing_feature_column", (MODEL_NAME, table(energy_label=None)), INVALID, "MISSING_FEATURES", ("energy_label",)),
    ("unknown_input", (MODEL_NAME, plus(table(), GARDEN)), INVALID, "UNKNOWN_INPUT", ("garden_sqm",)),
    ("bytes_for_a_numeric_column", (MODEL_NAME, table(size_sqm={"datatype": "BYTES", "data": ["92.4"]})), INVALID,
     "BAD_DATATYPE", ("size_sqm",)),
    ("shape_and_data_disagree", (MODEL_NAME, table(size_sqm={"wire_shape": [2]})), INVALID, "BAD_SHAPE",
     ("size_sqm",)),
    ("null_where_training_had_none", (MODEL_NAME, table(size_sqm=_size(None))), INVALID, "SCHEMA_VIOLATION",
     ("size_sqm", "nulls")),
    ("unseen_category", (MODEL_NAME, table(neighbourhood={"data": ["Atlantis"]})), INVALID, "SCHEMA_VIOLATION",
     ("neighbourhood", "Atlantis")),
    # Quoted whole, the value made details over gRPC's 16 KB metadata limit: RESOURCE_EXHAUSTED, the reason lost.
    ("long_unseen_category", (MODEL_NAME, table(neighbourhood={"data": ["Atlantis" * 2500]})), INVALID,
     "SCHEMA_VIOLATION", ("neighbourhood", "characters cut")),
    ("text_not_utf8", (MODEL_NAME, table(neighbourhood={"data": ["Café"], "encoding": "latin-1"})), INVALID,
     "BAD_VALUE", ("neighbourhood", "not UTF-8", "row 0")),
    ("zero_rows", (MODEL_NAME, table(rows=0)), INVALID, "EMPTY", ("rows",)),
    ("too_many_rows", (MODEL_NAME, table(rows=MAX_ROWS + 1)), EXHAUSTED, "TOO_MANY_ROWS", (str(MAX_ROWS + 1),)),
    ("probabilities_from_a_regressor", (MODEL_NAME, table(parameters={**PD, "probabilities": True})), INVALID,
     "NO_PROBABILITIES", ("probabilities",)),
    ("content_type_not_pd_or_np", (MODEL_NAME, table(parameters={"content_type": "csv"})), INVALID, "BAD_PARAMETER",
     ("content_type", "csv")),
    ("wrong_model_name", (UNKNOWN_MODEL, table()), NOT_FOUND, "MODEL_NOT_FOUND", (UNKNOWN_MODEL,)),
]  # fmt: skip


def test_grpc_errors_carry_status_and_reason_and_the_server_keeps_serving(strict_server, grpc_client):
    good = {"kind": "infer", "model": MODEL_NAME, "inputs": table(rows=2)["inputs"], "parameters": PD}
    calls = []
    for _, (model, body), *_ in GRPC_CASES:
        refused = {"kind": "infer", "model": model, "inputs": body["inputs"], "parameters": body.get("parameters")}
        calls += [refused, good]

    results = grpc_client(strict_server.grpc_port, calls)

    expected_good = model_file_predictions(strict_server.bundle, pd.DataFrame([REGRESSOR_ROW] * 2))
    problems = []
    for position, (case_id, _, status, reason, fragments) in enumerate(GRPC_CASES):
        bad, after = results[2 * position], results[2 * position + 1]
        if bad["ok"] or bad["status"] != status or not bad["message"].startswith(f"{reason}: "):
            problems.append(f"{case_id}: expected {status} '{reason}: ...', got {bad}")
        elif missing := [f for f in fragments if f.lower() not in bad["message"].lower()]:
            problems.append(f"{case_id}: details {bad['message']!r} do not name {missing}")
        if not after["ok"] or after["outputs"].get("price", {}).get("data") != expected_good:
            problems.append(f"{case_id}: the good request after got {after}")
    assert not problems, "\n".join(problems)


def test_grpc_refusals_are_counted_those_the_sdk_raises_included(strict_server):
    """Every gRPC refusal grows model_requests_total{outcome="error", reason}, as every REST one does: a
    ModelInferRequest the KServe SDK's own check refuses before the model is reached (its details then carry a
    reason code like every other refusal's), metadata and readiness of another model, the repository extension."""
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    # Two inputs but one raw content: the SDK's validate_grpc_request refuses it.
    tensors = [pb.ModelInferRequest.InferInputTensor(name=n, datatype="FP64", shape=[1]) for n in ("size_sqm", "rooms")]
    raw_mismatch = pb.ModelInferRequest(model_name=MODEL_NAME, inputs=tensors, raw_input_contents=[bytes(8)])
    code = grpc.StatusCode
    calls = [
        ("ModelInfer", raw_mismatch, code.INVALID_ARGUMENT, "BAD_REQUEST"),
        ("ModelMetadata", pb.ModelMetadataRequest(name=UNKNOWN_MODEL), code.NOT_FOUND, "MODEL_NOT_FOUND"),
        ("ModelReady", pb.ModelReadyRequest(name=UNKNOWN_MODEL), code.NOT_FOUND, "MODEL_NOT_FOUND"),
        ("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME), code.UNIMPLEMENTED,
         "NOT_SUPPORTED"),
    ]  # fmt: skip
    before = _scrape(strict_server.metrics_url)

    problems = []
    with grpc.insecure_channel(f"127.0.0.1:{strict_server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for method, request, status, reason in calls:
            try:
                answer = getattr(stub, method)(request, timeout=REQUEST_TIMEOUT)
            except grpc.RpcError as error:
                if error.code() != status or not error.details().startswith(f"{reason}: "):
                    problems.append(
                        f"{method}: expected {status} '{reason}: ...', got {error.code()} {error.details()!r}"
                    )
            else:
                problems.append(f"{method}: answered {answer}")
    assert not problems, "\n".join(problems)
    assert_still_serving(strict_server)

    after = _scrape(strict_server.metrics_url)
    counts: dict[str, int] = {}
    for *_, reason in calls:
        counts[reason] = counts.get(reason, 0) + 1
    grown = {
        reason: _requests_total(after, outcome="error", reason=reason)
        - _requests_total(before, outcome="error", reason=reason)
        for reason in counts
    }
    assert grown == counts


# ---------------------------------------------------------------------------------------------------------------
# a tampered model never starts


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("tampered_file", "pass_digest"),
    [("model.joblib", True), ("model.joblib", False), ("schema.json", True)],
    ids=["model_file", "model_file_without_deployer_digest", "bundle_document"],
)
def test_a_tampered_bundle_refuses_to_start_naming_the_digests(
    regression_bundle, tmp_path, free_ports, spawn_server, tampered_file, pass_digest
):
    bundle, _ = regression_bundle
    model_dir = tmp_path / "model"
    shutil.copytree(bundle.directory, model_dir)
    recorded = model_bundle.file_sha256(model_dir / tampered_file)
    _flip_a_byte(model_dir / tampered_file)
    found = model_bundle.file_sha256(model_dir / tampered_file)
    flags = [f"--model_sha256={bundle.card.sha256}"] if pass_digest else []
    ports, log = free_ports(3), tmp_path / "server.log"

    with spawn_server(
        _serving_args(model_dir, ports, *flags), log, http_port=ports[0], model_name=MODEL_NAME, wait_ready=False
    ) as process:
        try:
            process.wait(timeout=REFUSAL_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a server with a tampered {tampered_file} was still running after {REFUSAL_TIMEOUT:.0f} s")
    text = log.read_text(errors="replace")

    assert process.returncode != 0, text[-3000:]
    for needed in (tampered_file, recorded, found):
        assert needed in text, f"the refusal does not name {needed!r}:\n{text[-3000:]}"

"""The real Seldon Core server over HTTP: exact predictions, clear 4xx errors, custom metrics, metadata, health."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from threadpoolctl import threadpool_limits

pytestmark = pytest.mark.serving

REQUEST_TIMEOUT = 60  # seconds per HTTP request; bounded, never asserted on
METRICS_WAIT = 5  # seconds to wait for the metrics process to show what the model recorded


# ---------------------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(params=["regression", "classification"])
def served(request):
    """(server, bundle, test feature rows) for each task; the servers are session-scoped."""
    bundle, test_frame = request.getfixturevalue(f"{request.param}_bundle")
    server = request.getfixturevalue(f"{request.param}_server")
    return server, bundle, test_frame[bundle.feature_names]


def _body(names: list[str], rows: list[list]) -> dict:
    return {"data": {"names": list(names), "ndarray": rows}}


def _post(server, body) -> requests.Response:
    return requests.post(server.predictions_url, json=body, timeout=REQUEST_TIMEOUT)


def _expected(bundle, frame: pd.DataFrame) -> list:
    """In-process predictions, as they look after a JSON round trip (floats keep every bit: repr round-trips).

    One OpenMP thread, so the test process does not fight the server for the CPUs; scikit-learn's predictions
    for a row do not depend on the thread count."""
    with threadpool_limits(limits=1):
        predictions = bundle.predict(frame)
    return json.loads(json.dumps(np.asarray(predictions).tolist()))


def _predictions(response: requests.Response, bundle) -> list:
    assert response.status_code == 200, f"HTTP {response.status_code}: {response.text[:2000]}"
    data = response.json()["data"]
    assert data["names"] == [bundle.card.target]
    column = data["ndarray"]
    assert all(len(row) == 1 for row in column), column[:5]
    return [row[0] for row in column]


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.notna().all(axis=1)]


def _with_missing(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.isna().any(axis=1)]


# ---------------------------------------------------------------------------------------------------------------
# predictions


def test_http_predictions_equal_in_process_predictions(served, json_rows):
    server, bundle, frame = served
    assert len(_with_missing(frame)) > 0, "the test rows should include missing values"
    body = _body(bundle.feature_names, json_rows(frame))
    assert "null" in json.dumps(body, allow_nan=False), "missing values must travel as JSON null"

    predictions = _predictions(_post(server, body), bundle)

    expected = _expected(bundle, frame)
    assert len(predictions) == len(frame)
    if bundle.task == "regression":
        assert all(isinstance(value, float) for value in predictions)
    else:
        assert set(predictions) <= set(bundle.card.classes)
    assert predictions == expected


@pytest.mark.parametrize("subset", ["complete_rows", "rows_with_missing_values", "single_row"])
def test_http_predictions_equal_in_process_for_subsets(served, json_rows, subset):
    """Seldon turns an ndarray without nulls into an array of strings, and one with nulls into objects:
    both paths, and a one-row request, give the in-process predictions."""
    server, bundle, frame = served
    rows = {
        "complete_rows": _complete(frame),
        "rows_with_missing_values": _with_missing(frame),
        "single_row": _with_missing(frame).head(1),
    }[subset]
    assert len(rows) > 0

    predictions = _predictions(_post(server, _body(bundle.feature_names, json_rows(rows))), bundle)

    assert predictions == _expected(bundle, rows)


def test_http_predictions_do_not_depend_on_column_order(served, json_rows):
    server, bundle, frame = served
    rows = frame.head(10)
    reordered = rows[list(reversed(bundle.feature_names))]

    predictions = _predictions(_post(server, _body(list(reordered.columns), json_rows(reordered))), bundle)

    assert predictions == _expected(bundle, rows)


SELDON_CLIENT_SCRIPT = r"""
import json
import sys

import numpy as np
from seldon_core.seldon_client import SeldonClient
from seldon_core.utils import seldon_message_to_json

endpoint, request_file, result_file, transport = sys.argv[1:5]
with open(request_file) as stream:
    calls = json.load(stream)
client = SeldonClient(transport=transport, payload_type="ndarray", microservice_endpoint=endpoint)
results = {}
for name, call in calls.items():
    prediction = client.microservice(
        method="predict", data=np.array(call["rows"], dtype=object), names=call["names"]
    )
    response = prediction.response
    if response is not None and not isinstance(response, dict):
        response = seldon_message_to_json(response)
    results[name] = {"success": prediction.success, "msg": prediction.msg, "response": response}
with open(result_file, "w") as stream:
    json.dump(results, stream)
"""


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_seldon_client_predictions_equal_in_process_predictions(
    served, json_rows, run_serving_script, tmp_path, transport
):
    """Seldon's own Python client (REST or gRPC, straight to the microservice) gets the in-process predictions,
    and a clear failure for a request that lacks a column (over gRPC the status travels in the message)."""
    server, bundle, frame = served
    port = server.http_port if transport == "rest" else server.grpc_port
    names = bundle.feature_names
    rows = json_rows(frame)
    calls = {
        "all_rows": {"names": names, "rows": rows},
        "missing_column": {"names": names[:-1], "rows": [row[:-1] for row in rows[:3]]},
    }
    request_file, result_file = tmp_path / "calls.json", tmp_path / "results.json"
    request_file.write_text(json.dumps(calls, allow_nan=False))

    run_serving_script(SELDON_CLIENT_SCRIPT, f"127.0.0.1:{port}", str(request_file), str(result_file), transport)
    results = json.loads(result_file.read_text())

    good = results["all_rows"]
    assert good["success"], good
    assert good["response"]["data"]["names"] == [bundle.card.target]
    assert [row[0] for row in good["response"]["data"]["ndarray"]] == _expected(bundle, frame)

    bad = results["missing_column"]
    assert bad["response"]["status"]["code"] == 400, bad
    assert bad["response"]["status"]["reason"] == "BAD_FEATURES"
    assert "missing column" in bad["response"]["status"]["info"]
    assert names[-1] in bad["response"]["status"]["info"]


# ---------------------------------------------------------------------------------------------------------------
# malformed requests


def _malformed_requests(bundle, row: list, row_with_null: list, max_rows: int) -> dict[str, tuple[dict, list[str]]]:
    """id -> (keyword arguments for requests.post, fragments the error message must contain).

    ``row`` is a complete good row, ``row_with_null`` one with a missing categorical value.
    """
    names = bundle.feature_names
    numeric = next(i for i, feature in enumerate(bundle.features) if feature["type"] == "numeric")
    numeric_name = names[numeric]
    categorical = next(i for i, feature in enumerate(bundle.features) if feature["type"] == "categorical")

    def replaced(values: list, value) -> list:
        return [value if i == numeric else old for i, old in enumerate(values)]

    def body(names_, rows) -> dict:
        return {"json": _body(names_, rows)}

    infinite_row = json.dumps(_body(names, [replaced(row, "__INF__")])).replace('"__INF__"', "1e999")
    return {
        "missing_column": (body(names[:-1], [row[:-1]]), ["missing column", names[-1]]),
        "unknown_column": (body([*names, "garden_sqm"], [[*row, 12.5]]), ["unknown column", "garden_sqm"]),
        "duplicate_column": (body([*names, names[0]], [[*row, row[0]]]), ["duplicate", names[0]]),
        "too_few_values_per_row": (body(names, [row[:-1]]), [f"{len(names)} values"]),
        "too_many_values_per_row": (body(names, [[*row, 1.0]]), [f"{len(names)} values"]),
        "rows_of_different_lengths": (body(names, [row, row[:-1]]), ["row"]),
        "text_in_numeric_column": (body(names, [replaced(row, "lots")]), [numeric_name, "numeric", "lots"]),
        "boolean_in_numeric_column": (body(names, [replaced(row, True)]), [numeric_name, "numeric", "True"]),
        "boolean_in_numeric_column_with_nulls": (
            body(names, [replaced(row_with_null, True)]),
            [numeric_name, "boolean"],
        ),
        "infinite_number_in_numeric_column": (
            {"data": infinite_row, "headers": {"Content-Type": "application/json"}},
            [numeric_name],
        ),
        "no_names": ({"json": {"data": {"ndarray": [row]}}}, ["names"]),
        "empty_ndarray": (body(names, []), ["no rows"]),
        "no_data": ({"json": {"rows": [row]}}, ["data"]),
        "not_json": ({"data": "size_sqm=120", "headers": {"Content-Type": "application/json"}}, ["JSON"]),
        # Seldon's form encoding (what SeldonClient sends) with a field that is not JSON.
        "form_field_not_json": ({"data": {"json": '{"data": {"names": ['}}, ["JSON"]),
        "wrong_content_type": (
            {"data": json.dumps(_body(names, [row])), "headers": {"Content-Type": "text/plain"}},
            ["Content-Type", "text/plain"],
        ),
        "nested_list_value": (
            body(names, [[[value] if i == categorical else value for i, value in enumerate(row)]]),
            ["nested", names[categorical]],
        ),
        "nan_token": (
            {
                "data": json.dumps(_body(names, [replaced(row, "__NAN__")])).replace('"__NAN__"', "NaN"),
                "headers": {"Content-Type": "application/json"},
            },
            [numeric_name, "NaN", "null"],
        ),
        "over_the_row_limit": (body(names, [row] * (max_rows + 1)), [f"{max_rows + 1} rows", f"limit of {max_rows}"]),
        "records_with_different_keys": (
            {"json": {"jsonData": [dict(zip(names, row, strict=True)), dict(zip(names[:-1], row, strict=False))]}},
            ["record 1", names[-1]],
        ),
        "tensor_for_a_model_with_categories": (
            {"json": {"data": {"names": names, "tensor": {"shape": [1, len(names)], "values": [0.0] * len(names)}}}},
            ["tensor", "categorical"],
        ),
        "category_outside_the_schema_domain": (
            body(names, [["Atlantis" if i == categorical else value for i, value in enumerate(row)]]),
            [names[categorical], "Atlantis", "outside its domain", "check 'domain'"],
        ),
        "probabilities_from_a_regressor": (
            {"json": {**_body(names, [row]), "meta": {"tags": {"probabilities": True}}}},
            ["probabilities", "regressor"],
        ),
    }


MALFORMED = [
    "missing_column",
    "unknown_column",
    "duplicate_column",
    "too_few_values_per_row",
    "too_many_values_per_row",
    "rows_of_different_lengths",
    "text_in_numeric_column",
    "boolean_in_numeric_column",
    "boolean_in_numeric_column_with_nulls",
    "infinite_number_in_numeric_column",
    "no_names",
    "empty_ndarray",
    "no_data",
    "not_json",
    "form_field_not_json",
    "wrong_content_type",
    "nested_list_value",
    "nan_token",
    "over_the_row_limit",
    "records_with_different_keys",
    "tensor_for_a_model_with_categories",
    "category_outside_the_schema_domain",
    "probabilities_from_a_regressor",
]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_request_gets_4xx_naming_the_problem(regression_server, regression_bundle, json_rows, max_rows, case):
    bundle, test_frame = regression_bundle
    frame = test_frame[bundle.feature_names]
    good = _complete(frame).head(1)
    categorical = next(f["name"] for f in bundle.features if f["type"] == "categorical")
    with_null = good.astype(object).assign(**{categorical: None})
    kwargs, fragments = _malformed_requests(bundle, json_rows(good)[0], json_rows(with_null)[0], max_rows)[case]

    response = requests.post(regression_server.predictions_url, timeout=REQUEST_TIMEOUT, **kwargs)

    assert 400 <= response.status_code < 500, (
        f"{case}: expected HTTP 4xx, got {response.status_code}: {response.text[:1000]}"
    )
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    status = response.json()["status"]
    message = status["info"]
    assert status["reason"], status
    missing = [fragment for fragment in fragments if fragment.lower() not in message.lower()]
    assert not missing, f"{case}: message {message!r} does not mention {missing}"

    # The server is unharmed: a good request right after still gets the in-process prediction.
    predictions = _predictions(_post(regression_server, _body(bundle.feature_names, json_rows(good))), bundle)
    assert predictions == _expected(bundle, good)


def test_malformed_cases_cover_every_request(regression_bundle, max_rows):
    bundle, _ = regression_bundle
    row = [0.0] * len(bundle.feature_names)
    assert sorted(_malformed_requests(bundle, row, row, max_rows)) == sorted(MALFORMED)
    assert len(MALFORMED) >= 8


# ---------------------------------------------------------------------------------------------------------------
# metrics


def _scrape(server) -> list[tuple[str, dict[str, str], float]]:
    """The samples on the metrics endpoint (Prometheus text format) as (name, labels, value)."""
    response = requests.get(server.metrics_url, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text[:1000]
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def _total(samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels`` (one series per worker)."""
    return sum(
        value
        for sample_name, sample_labels, value in samples
        if sample_name == name and all(sample_labels.get(key) == wanted for key, wanted in labels.items())
    )


def _class_totals(samples) -> Counter:
    totals: Counter = Counter()
    for name, labels, value in samples:
        if name == "model_predicted_class_total":
            totals[labels["class"]] += value
    return totals


def _health(server) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{server.http_port}/health/status", timeout=REQUEST_TIMEOUT)


def _scrape_until(server, before, wanted: dict[tuple, float]):
    """Scrapes until every wanted (name, labels...) total has grown by at least its value since ``before``, or a
    bounded wait ends (the metrics are served by another process); returns the last scrape."""
    deadline = time.monotonic() + METRICS_WAIT
    while True:
        after = _scrape(server)
        grown = all(
            _total(after, name, **dict(labels)) - _total(before, name, **dict(labels)) >= value
            for (name, *labels), value in wanted.items()
        )
        if grown or time.monotonic() > deadline:
            return after
        time.sleep(0.25)


def test_metrics_count_requests_rows_latency_and_classes(served, json_rows):
    server, bundle, frame = served
    names = bundle.feature_names
    first, second = frame, frame.head(5)
    # Seldon collects the model's pending metrics after each prediction and health check: start from a clean slate.
    assert _health(server).status_code == 200
    before = _scrape(server)

    predicted = _predictions(_post(server, _body(names, json_rows(first))), bundle)
    bad = _post(server, _body(names[:-1], [row[:-1] for row in json_rows(second)]))
    assert bad.status_code == 400, bad.text
    predicted += _predictions(_post(server, _body(names, json_rows(second))), bundle)

    after = _scrape_until(
        server,
        before,
        {("model_requests_total", ("outcome", "ok")): 2, ("model_requests_total", ("outcome", "error")): 1},
    )

    def delta(name, **labels):
        return _total(after, name, **labels) - _total(before, name, **labels)

    assert delta("model_requests_total", outcome="ok") == 2
    assert delta("model_requests_total", outcome="error") == 1
    assert delta("model_requests_total", outcome="error", reason="BAD_FEATURES") == 1
    assert delta("model_prediction_rows_total") == len(first) + len(second)
    buckets = [labels["le"] for name, labels, _ in after if name == "model_prediction_seconds_bucket"]
    assert len(buckets) > 1 and "+Inf" in buckets, f"model_prediction_seconds has buckets {buckets}"
    assert delta("model_prediction_seconds_count") == 2
    assert delta("model_prediction_seconds_bucket", le="+Inf") == 2

    for feature in names:
        missing = int(first[feature].isna().sum() + second[feature].isna().sum())
        assert delta("model_missing_values_total", feature=feature) == missing, feature

    class_delta = _class_totals(after) - _class_totals(before)
    if bundle.task == "classification":
        assert class_delta == Counter(str(label) for label in predicted)
        assert set(_class_totals(after)) <= set(bundle.card.classes)
        assert not [name for name, _, _ in after if name == "model_predicted_value_total"]
    else:
        assert not _class_totals(after), "a regression model must not count predicted classes"
        # Predictions per range between the training target's deciles: 10 ranges, every prediction in one.
        edges = bundle.card.prediction_buckets
        expected = Counter(int(np.searchsorted(edges, value, side="right")) for value in predicted)
        ranges = [f"<{edges[0]:.6g}"] + [f"{a:.6g}-{b:.6g}" for a, b in itertools.pairwise(edges)]
        ranges.append(f">={edges[-1]:.6g}")
        for index, count in expected.items():
            assert delta("model_predicted_value_total", bucket=ranges[index]) == count, ranges[index]
        assert delta("model_predicted_value_total") == len(predicted)

    # Live feature signals: every present value of every feature in one training bin, and a drift gauge each.
    for feature in names:
        present = int(first[feature].notna().sum() + second[feature].notna().sum())
        assert delta("model_feature_values_total", feature=feature) == present, feature
    drift = {labels["feature"]: value for name, labels, value in after if name == "model_feature_drift"}
    assert set(drift) == set(names)
    assert all(0.0 <= value <= 1.0 for value in drift.values())


def test_metrics_count_a_failed_request_without_waiting_for_a_later_one(regression_server, regression_bundle):
    """A failed request shows in model_requests_total{outcome="error"} by itself: when every request fails
    (a client sending a wrong schema), the error rate must still be visible."""
    bundle, _ = regression_bundle
    assert _health(regression_server).status_code == 200
    before = _scrape(regression_server)
    try:
        bad = _post(regression_server, {"data": {"ndarray": [[1.0] * len(bundle.feature_names)]}})
        assert bad.status_code == 400, bad.text

        after = _scrape_until(regression_server, before, {("model_requests_total", ("outcome", "error")): 1})

        errors = _total(after, "model_requests_total", outcome="error", reason="NO_COLUMN_NAMES") - _total(
            before, "model_requests_total", outcome="error", reason="NO_COLUMN_NAMES"
        )
        assert errors == 1, "the failed request is not counted until a later prediction or health check"
    finally:
        _health(regression_server)  # leaves no pending metrics behind for other tests


# ---------------------------------------------------------------------------------------------------------------
# metadata and health


def test_metadata_describes_inputs_and_output(served):
    server, bundle, _ = served
    response = requests.get(f"http://127.0.0.1:{server.http_port}/api/v1.0/metadata", timeout=REQUEST_TIMEOUT)

    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata["name"] == bundle.card.target
    assert [entry["schema"]["names"] for entry in metadata["inputs"]] == [bundle.feature_names]
    assert [entry["schema"]["names"] for entry in metadata["outputs"]] == [[bundle.card.target]]
    assert metadata["custom"]["task"] == bundle.task


def test_health_status(served):
    server, bundle, _ = served
    response = _health(server)

    assert response.status_code == 200, response.text
    status = response.json()["jsonData"]
    assert status["status"] == "ok"
    assert status["sha256"] == bundle.card.sha256
    assert status["target"] == bundle.card.target

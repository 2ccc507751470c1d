"""The real model server over OIP REST: exact predictions, documented 4xx errors, custom metrics, metadata, health."""

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
JSON_HEADERS = {"Content-Type": "application/json"}


# ---------------------------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(params=["regression", "classification"])
def served(request):
    """(server, bundle, test feature rows) for each task; the servers are session-scoped."""
    bundle, test_frame = request.getfixturevalue(f"{request.param}_bundle")
    server = request.getfixturevalue(f"{request.param}_server")
    return server, bundle, test_frame[bundle.feature_names]


def _post(server, body) -> requests.Response:
    return requests.post(server.infer_url, data=json.dumps(body, allow_nan=False), headers=JSON_HEADERS, timeout=60)


def _expected(bundle, frame: pd.DataFrame) -> list:
    """In-process predictions, as they look after a JSON round trip (floats keep every bit: repr round-trips).

    One OpenMP thread, so the test process does not fight the server for the CPUs; scikit-learn's predictions
    for a row do not depend on the thread count."""
    with threadpool_limits(limits=1):
        predictions = bundle.predict(frame)
    return json.loads(json.dumps(np.asarray(predictions).tolist()))


def _predictions(response: requests.Response, bundle) -> list:
    assert response.status_code == 200, f"HTTP {response.status_code}: {response.text[:2000]}"
    answer = response.json()
    [output] = answer["outputs"]
    assert output["name"] == bundle.card.target
    assert output["shape"] == [len(output["data"])]
    assert output["datatype"] == ("FP64" if bundle.task == "regression" else "BYTES")
    return output["data"]


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.notna().all(axis=1)]


def _with_missing(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.isna().any(axis=1)]


# ---------------------------------------------------------------------------------------------------------------
# predictions


def test_http_predictions_equal_in_process_predictions(served, oip_table):
    server, bundle, frame = served
    assert len(_with_missing(frame)) > 0, "the test rows should include missing values"
    body = oip_table(bundle, frame)
    assert "null" in json.dumps(body, allow_nan=False), "missing values must travel as JSON null"

    response = _post(server, body)

    predictions = _predictions(response, bundle)
    assert len(predictions) == len(frame)
    if bundle.task == "regression":
        assert all(isinstance(value, float) for value in predictions)
    else:
        assert set(predictions) <= set(bundle.card.classes)
    assert predictions == _expected(bundle, frame)
    answer = response.json()
    assert answer["model_name"] == server.model_name
    assert answer["model_version"] == bundle.card.sha256[:12]
    assert answer["parameters"] == {"content_type": "pd"}
    assert answer["id"]


@pytest.mark.parametrize("subset", ["complete_rows", "rows_with_missing_values", "single_row"])
def test_http_predictions_equal_in_process_for_subsets(served, oip_table, subset):
    server, bundle, frame = served
    rows = {
        "complete_rows": _complete(frame),
        "rows_with_missing_values": _with_missing(frame),
        "single_row": _with_missing(frame).head(1),
    }[subset]
    assert len(rows) > 0

    predictions = _predictions(_post(server, oip_table(bundle, rows)), bundle)

    assert predictions == _expected(bundle, rows)


def test_http_predictions_do_not_depend_on_column_order_or_shape_form(served, oip_table):
    """Inputs in any order, shape [n] or [n, 1] with flat or nested data, content_type left out: one answer."""
    server, bundle, frame = served
    rows = frame.head(10)
    body = oip_table(bundle, rows[list(reversed(bundle.feature_names))])
    del body["parameters"]
    for position, entry in enumerate(body["inputs"]):
        entry["shape"] = [len(rows), 1]
        if position % 2:
            entry["data"] = [[value] for value in entry["data"]]

    predictions = _predictions(_post(server, body), bundle)

    assert predictions == _expected(bundle, rows)


def test_request_id_is_echoed(regression_server, regression_bundle, oip_table):
    bundle, test = regression_bundle
    body = {**oip_table(bundle, test[bundle.feature_names].head(1)), "id": "request-42"}

    assert _post(regression_server, body).json()["id"] == "request-42"


# ---------------------------------------------------------------------------------------------------------------
# malformed requests (the whole corpus is in test_malformed_requests.py; these are the old server's cases)


def _malformed(bundle, good: dict, max_rows: int) -> dict[str, tuple[dict, int, str, list[str]]]:
    """id -> (keyword arguments for requests.post, status, reason, fragments the error message must contain)."""
    names = bundle.feature_names
    numeric = next(f["name"] for f in bundle.features if f["type"] == "numeric")
    categorical = next(f["name"] for f in bundle.features if f["type"] == "categorical")

    def changed(name: str, **fields) -> dict:
        inputs = [{**entry, **fields} if entry["name"] == name else entry for entry in good["inputs"]]
        return {**good, "inputs": inputs}

    def without(name: str) -> dict:
        return {**good, "inputs": [entry for entry in good["inputs"] if entry["name"] != name]}

    def body(request: dict) -> dict:
        return {"data": json.dumps(request), "headers": JSON_HEADERS}

    numeric_entry = next(entry for entry in good["inputs"] if entry["name"] == numeric)
    nan_body = json.dumps(changed(numeric, data=["__NAN__"])).replace('"__NAN__"', "NaN")
    infinite_body = json.dumps(changed(numeric, data=["__INF__"])).replace('"__INF__"', "1e999")
    extra = {"name": "garden_sqm", "shape": [1], "datatype": "FP64", "data": [12.5]}
    many = {
        **good,
        "inputs": [{**e, "shape": [max_rows + 1], "data": e["data"] * (max_rows + 1)} for e in good["inputs"]],
    }
    return {
        "missing_column": (body(without(names[-1])), 400, "MISSING_FEATURES", ["missing column", names[-1]]),
        "unknown_column": (
            body({**good, "inputs": [*good["inputs"], extra]}),
            400,
            "UNKNOWN_INPUT",
            ["unknown input", "garden_sqm"],
        ),
        "duplicate_column": (
            body({**good, "inputs": [*good["inputs"], numeric_entry]}),
            400,
            "DUPLICATE_INPUT",
            ["more than once", numeric],
        ),
        "more_values_than_shape": (
            body(changed(numeric, data=[1.0, 2.0])),
            400,
            "BAD_SHAPE",
            [numeric, "shape [1]", "2 value"],
        ),
        "columns_of_different_lengths": (
            body(changed(numeric, shape=[2], data=[1.0, 2.0])),
            400,
            "BAD_SHAPE",
            ["different numbers of rows"],
        ),
        "text_in_numeric_column": (
            body(changed(numeric, data=["lots"])),
            400,
            "BAD_VALUE",
            [numeric, "'lots'", "numbers"],
        ),
        "boolean_in_numeric_column": (
            body(changed(numeric, data=[True])),
            400,
            "BAD_VALUE",
            [numeric, "True"],
        ),
        "text_datatype_for_numeric_column": (
            body(changed(numeric, datatype="BYTES", data=["80"])),
            400,
            "BAD_DATATYPE",
            [numeric, "BYTES", "numeric"],
        ),
        "infinite_number": ({"data": infinite_body, "headers": JSON_HEADERS}, 400, "BAD_JSON", ["not valid JSON"]),
        "nan_token": ({"data": nan_body, "headers": JSON_HEADERS}, 400, "BAD_JSON", ["not valid JSON"]),
        "no_inputs": (body({"data": [[1.0]]}), 422, "BAD_REQUEST", ["no 'inputs'"]),
        "empty_columns": (
            body({**good, "inputs": [{**e, "shape": [0], "data": []} for e in good["inputs"]]}),
            400,
            "EMPTY",
            ["no rows"],
        ),
        "not_json": ({"data": "size_sqm=120", "headers": JSON_HEADERS}, 400, "BAD_JSON", ["not valid JSON"]),
        "wrong_content_type": (
            {"data": json.dumps(good), "headers": {"Content-Type": "text/plain"}},
            415,
            "BAD_CONTENT_TYPE",
            ["Content-Type", "text/plain"],
        ),
        "nested_list_value": (
            body(changed(categorical, data=[["Riverside"]])),
            400,
            "BAD_VALUE",
            ["nested", categorical],
        ),
        "over_the_row_limit": (body(many), 413, "TOO_MANY_ROWS", [f"{max_rows + 1} rows", f"limit of {max_rows}"]),
        "tensor_for_a_model_with_categories": (
            body({"inputs": [{"name": "x", "shape": [1, len(names)], "datatype": "FP64", "data": [0.0] * len(names)}]}),
            400,
            "TENSOR_NOT_NUMERIC",
            ["tensor", "categorical"],
        ),
        "category_outside_the_schema_domain": (
            body(changed(categorical, data=["Atlantis"], datatype="BYTES")),
            400,
            "SCHEMA_VIOLATION",
            [categorical, "Atlantis", "outside its domain", "check 'domain'"],
        ),
        "probabilities_from_a_regressor": (
            body({**good, "parameters": {"probabilities": True}}),
            400,
            "NO_PROBABILITIES",
            ["probabilities", "regressor"],
        ),
        "probabilities_not_a_boolean": (
            body({**good, "parameters": {"probabilities": "yes"}}),
            400,
            "BAD_PARAMETER",
            ["probabilities", "'yes'"],
        ),
    }


MALFORMED = [
    "missing_column",
    "unknown_column",
    "duplicate_column",
    "more_values_than_shape",
    "columns_of_different_lengths",
    "text_in_numeric_column",
    "boolean_in_numeric_column",
    "text_datatype_for_numeric_column",
    "infinite_number",
    "nan_token",
    "no_inputs",
    "empty_columns",
    "not_json",
    "wrong_content_type",
    "nested_list_value",
    "over_the_row_limit",
    "tensor_for_a_model_with_categories",
    "category_outside_the_schema_domain",
    "probabilities_from_a_regressor",
    "probabilities_not_a_boolean",
]


@pytest.fixture
def good_row(regression_bundle, oip_table):
    bundle, test_frame = regression_bundle
    frame = _complete(test_frame[bundle.feature_names]).head(1)
    return frame, oip_table(bundle, frame)


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_request_gets_its_status_and_reason_naming_the_problem(
    regression_server, regression_bundle, good_row, max_rows, case
):
    bundle, _ = regression_bundle
    frame, good = good_row
    kwargs, status, reason, fragments = _malformed(bundle, good, max_rows)[case]

    response = requests.post(regression_server.infer_url, timeout=REQUEST_TIMEOUT, **kwargs)

    assert response.status_code == status, f"{case}: HTTP {response.status_code}: {response.text[:1000]}"
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    error = response.json()
    assert error["reason"] == reason, error
    missing = [fragment for fragment in fragments if fragment.lower() not in error["error"].lower()]
    assert not missing, f"{case}: message {error['error']!r} does not mention {missing}"

    # The server is unharmed: a good request right after still gets the in-process prediction.
    assert _predictions(_post(regression_server, good), bundle) == _expected(bundle, frame)


def test_malformed_cases_cover_every_request(regression_bundle, good_row, max_rows):
    bundle, _ = regression_bundle
    assert sorted(_malformed(bundle, good_row[1], max_rows)) == sorted(MALFORMED)


def test_a_body_over_the_limit_is_refused_before_it_is_read(regression_server, good_row, max_body_bytes):
    _, good = good_row
    padded = json.dumps({**good, "id": "x" * max_body_bytes})

    response = requests.post(regression_server.infer_url, data=padded, headers=JSON_HEADERS, timeout=REQUEST_TIMEOUT)

    assert response.status_code == 413, response.text[:1000]
    assert response.json()["reason"] == "BODY_TOO_LARGE"
    assert str(max_body_bytes) in response.json()["error"]
    assert _post(regression_server, good).status_code == 200


def test_an_unknown_model_is_404(regression_server, good_row):
    _, good = good_row
    for url in (
        f"{regression_server.base_url}/v2/models/no-such-model/infer",
        f"{regression_server.base_url}/v2/models/no-such-model",
        f"{regression_server.base_url}/v2/models/no-such-model/ready",
    ):
        if url.endswith("/infer"):
            response = requests.post(url, data=json.dumps(good), headers=JSON_HEADERS, timeout=REQUEST_TIMEOUT)
        else:
            response = requests.get(url, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 404, (url, response.text)
        assert response.json()["reason"] == "MODEL_NOT_FOUND"
        assert "no-such-model" in response.json()["error"]
        assert regression_server.model_name in response.json()["error"]


def test_no_client_can_unload_the_model(regression_server, good_row):
    """The SDK's model repository extension is refused: one model is served, fixed at start."""
    _, good = good_row
    for action in ("unload", "load"):
        url = f"{regression_server.base_url}/v2/repository/models/{regression_server.model_name}/{action}"
        response = requests.post(url, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 501, response.text
        assert response.json()["reason"] == "NOT_SUPPORTED"
    assert requests.get(f"{regression_server.metadata_url}/ready", timeout=REQUEST_TIMEOUT).status_code == 200
    assert _post(regression_server, good).status_code == 200


def test_the_sdk_v1_protocol_is_not_served(regression_server, good_row):
    """KServe's v1 routes would answer in another error shape, past the checks of the OIP route: refused, naming the
    route to use, and the model keeps serving."""
    _, good = good_row
    name = regression_server.model_name
    for method, path in (("POST", f"/v1/models/{name}:predict"), ("POST", f"/v1/models/{name}:explain"),
                         ("GET", "/v1/models"), ("GET", f"/v1/models/{name}")):  # fmt: skip
        response = requests.request(method, f"{regression_server.base_url}{path}", json={}, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 501, (path, response.text)
        assert response.json()["reason"] == "NOT_SUPPORTED"
        assert "POST /v2/models/<name>/infer" in response.json()["error"]
    assert _post(regression_server, good).status_code == 200


# ---------------------------------------------------------------------------------------------------------------
# metrics


def _scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    """The samples on a metrics endpoint (Prometheus text format) as (name, labels, value)."""
    response = requests.get(url, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text[:1000]
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def _total(samples, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels``."""
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


def test_metrics_count_requests_rows_latency_and_classes(served, oip_table):
    server, bundle, frame = served
    names = bundle.feature_names
    first, second = frame, frame.head(5)
    before = _scrape(server.metrics_url)

    predicted = _predictions(_post(server, oip_table(bundle, first)), bundle)
    bad = _post(server, oip_table(bundle, second[names[:-1]]))
    assert bad.status_code == 400, bad.text
    predicted += _predictions(_post(server, oip_table(bundle, second)), bundle)

    after = _scrape(server.metrics_url)

    def delta(name, **labels):
        labels["model_name"] = server.model_name
        return _total(after, name, **labels) - _total(before, name, **labels)

    assert delta("model_requests_total", outcome="ok") == 2
    assert delta("model_requests_total", outcome="error") == 1
    assert delta("model_requests_total", outcome="error", reason="MISSING_FEATURES") == 1
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


def test_errors_before_the_model_are_counted_with_their_reason(regression_server, good_row):
    """Refusals that never reach the model (bad JSON, Content-Type, unknown model, a path or method the server does
    not have, the disabled repository extension) count at once, by reason."""
    _, good = good_row
    base = regression_server.base_url
    before = _scrape(regression_server.metrics_url)

    requests.post(regression_server.infer_url, data="{", headers=JSON_HEADERS, timeout=REQUEST_TIMEOUT)
    requests.post(regression_server.infer_url, data=json.dumps(good), timeout=REQUEST_TIMEOUT)
    requests.post(f"{base}/v2/models/other/infer", data=json.dumps(good), headers=JSON_HEADERS, timeout=REQUEST_TIMEOUT)
    requests.get(f"{base}/v2/models/other", timeout=REQUEST_TIMEOUT)
    requests.get(regression_server.infer_url, timeout=REQUEST_TIMEOUT)
    requests.post(
        f"{regression_server.infer_url}x", data=json.dumps(good), headers=JSON_HEADERS, timeout=REQUEST_TIMEOUT
    )
    requests.post(f"{base}/v2/repository/models/{regression_server.model_name}/unload", timeout=REQUEST_TIMEOUT)

    after = _scrape(regression_server.metrics_url)
    expected = {"BAD_JSON": 1, "BAD_CONTENT_TYPE": 1, "MODEL_NOT_FOUND": 2, "METHOD_NOT_ALLOWED": 1, "NOT_FOUND": 1}
    for reason, count in {**expected, "NOT_SUPPORTED": 1}.items():
        labels = {"model_name": regression_server.model_name, "outcome": "error", "reason": reason}
        grown = _total(after, "model_requests_total", **labels) - _total(before, "model_requests_total", **labels)
        assert grown == count, reason


def test_a_refused_request_is_neither_predicted_nor_monitored(regression_server, good_row):
    """An unknown output is refused before the model runs: the prediction and feature metrics, which drift alerts
    read, count the traffic answered only."""
    _, good = good_row
    before = _scrape(regression_server.metrics_url)

    response = _post(regression_server, {**good, "outputs": [{"name": "price_interval"}]})

    after = _scrape(regression_server.metrics_url)
    assert response.status_code == 400 and response.json()["reason"] == "BAD_PARAMETER", response.text
    assert "['price_interval'] do not exist; this model answers ['price']" in response.json()["error"]
    model_series = {name for name, _, _ in after if name.startswith("model_") and name != "model_requests_total"}
    changed = [name for name in sorted(model_series) if _total(after, name) != _total(before, name)]
    assert not changed, f"a refused request moved {changed}"


def test_metrics_are_served_on_the_metrics_port_at_any_path_and_on_the_http_port(regression_server, good_row):
    _, good = good_row
    assert _post(regression_server, good).status_code == 200
    for url in (
        regression_server.metrics_url,
        f"http://127.0.0.1:{regression_server.metrics_port}/prometheus",
        f"{regression_server.base_url}/metrics",
    ):
        samples = _scrape(url)
        assert _total(samples, "model_requests_total", model_name=regression_server.model_name, outcome="ok") >= 1, url


# ---------------------------------------------------------------------------------------------------------------
# metadata and health


def test_metadata_describes_the_column_contract_version_and_digest(served):
    server, bundle, _ = served
    response = requests.get(server.metadata_url, timeout=REQUEST_TIMEOUT)

    assert response.status_code == 200, response.text
    metadata = response.json()
    assert metadata["name"] == server.model_name
    assert metadata["versions"] == [bundle.card.sha256[:12]]
    assert metadata["platform"] == "scikit-learn"
    assert metadata["inputs"] == [
        {"name": f["name"], "datatype": "FP64" if f["type"] == "numeric" else "BYTES", "shape": [-1]}
        for f in bundle.features
    ]
    outputs = [output["name"] for output in metadata["outputs"]]
    if bundle.task == "classification":
        assert outputs == [bundle.card.target, *[f"probability_{label}" for label in bundle.card.classes]]
    else:
        assert metadata["outputs"] == [{"name": bundle.card.target, "datatype": "FP64", "shape": [-1]}]
    assert metadata["parameters"] == {
        "sha256": bundle.card.sha256,
        "model_version": None,
        "task": bundle.task,
        "target": bundle.card.target,
        "content_type": "pd",
    }


def test_health_and_readiness(served):
    server, _, _ = served
    base = server.base_url
    # The server metadata advertises no extension: the model repository one is refused here.
    assert requests.get(f"{base}/v2", timeout=REQUEST_TIMEOUT).json()["extensions"] == []
    assert requests.get(f"{base}/v2/health/live", timeout=REQUEST_TIMEOUT).json() == {"live": True}
    assert requests.get(f"{base}/v2/health/ready", timeout=REQUEST_TIMEOUT).json() == {"ready": True}
    ready = requests.get(f"{server.metadata_url}/ready", timeout=REQUEST_TIMEOUT)
    assert ready.status_code == 200
    assert ready.json() == {"name": server.model_name, "ready": True}


def test_a_slow_batch_does_not_stall_other_requests(classification_server, classification_bundle, oip_table):
    """scikit-learn's predict runs off the event loop: health checks answer at once while a batch of 20,000 rows
    is checked and predicted. "At once" is measured against the batch itself, so a busy machine (slower batch and
    slower answers alike) does not fail it: an event loop blocked by the prediction would hold a health check for
    most of the batch's time."""
    import concurrent.futures

    bundle, test = classification_bundle
    rows = pd.concat([test[bundle.feature_names]] * (20_000 // len(test) + 1), ignore_index=True).head(20_000)
    body = oip_table(bundle, rows, probabilities=True)
    waits = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        started = time.perf_counter()
        batch = pool.submit(_post, classification_server, body)
        time.sleep(0.2)  # the batch is being read and predicted
        while not batch.done():
            asked = time.perf_counter()
            live = requests.get(f"{classification_server.base_url}/v2/health/live", timeout=REQUEST_TIMEOUT)
            waits.append(time.perf_counter() - asked)
            assert live.status_code == 200
            time.sleep(0.05)
        answer = batch.result()
        took = time.perf_counter() - started
    assert answer.status_code == 200, answer.text[:1000]
    assert len(waits) >= 3, f"the batch took only {took:.2f} s: too short to tell"
    # 0.25 s, or a quarter of the batch on a machine slow enough to make the batch take over a second.
    limit = max(0.25, took / 4)
    assert max(waits) < limit, f"health checks waited up to {max(waits):.3f} s during a {took:.2f} s batch"


# ---------------------------------------------------------------------------------------------------------------
# concurrent requests predicted together


def _mixed_requests(bundle, frame: pd.DataFrame, oip_table, count: int) -> list[tuple[pd.DataFrame, dict]]:
    """``count`` requests of 1 to 7 rows each, their categorical columns in varying forms (booleans as BOOL or as
    text, nulls), classifiers asking for probabilities every other time."""
    requests_ = []
    for number in range(count):
        start = (number * 7) % (len(frame) - 7)
        rows = frame.iloc[start : start + 1 + number % 7]
        body = oip_table(
            bundle, rows, **({"probabilities": True} if bundle.task == "classification" and number % 2 else {})
        )
        if number % 3 == 0:
            for entry in body["inputs"]:
                if entry["datatype"] == "BOOL":
                    entry.update(
                        datatype="BYTES", data=[None if value is None else str(value) for value in entry["data"]]
                    )
        requests_.append((rows, body))
    return requests_


def test_concurrent_requests_get_the_bits_they_get_alone(served, oip_table):
    """Requests arriving while the model is busy are predicted in one call (trees: a row's prediction does not
    depend on the rows beside it); each answer must still be bit for bit the model file's prediction of that
    request's rows alone, probabilities included. model_predict_calls_total shows the calls were shared."""
    import concurrent.futures

    server, bundle, frame = served
    work = _mixed_requests(bundle, frame, oip_table, 96)
    before = _scrape(server.metrics_url)

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda item: _post(server, item[1]), work))

    after = _scrape(server.metrics_url)
    with threadpool_limits(limits=1):
        for (rows, body), response in zip(work, responses, strict=True):
            assert response.status_code == 200, response.text[:1000]
            outputs = {output["name"]: output["data"] for output in response.json()["outputs"]}
            assert outputs[bundle.card.target] == np.asarray(bundle.model.predict(rows)).tolist()
            if body["parameters"].get("probabilities"):
                probabilities = bundle.model.predict_proba(rows)
                for position, label in enumerate(bundle.card.classes):
                    assert outputs[f"probability_{label}"] == probabilities[:, position].tolist()
    labels = {"model_name": server.model_name}
    calls = _total(after, "model_predict_calls_total", **labels) - _total(before, "model_predict_calls_total", **labels)
    assert 0 < calls < len(work), f"{calls:.0f} predict calls for {len(work)} concurrent requests: none shared"


def test_a_linear_model_predicts_each_request_alone(houses, tmp_path, free_ports, serve_bundle, oip_table):
    """A linear model's dot products are summed in an order that depends on the batch (BLAS), so its requests are
    never put together: one predict call per request, each answer the model file's own. Far outside its training
    data it predicts inf, which JSON would write as null (a missing value): refused as NOT_FINITE, naming the row."""
    import concurrent.futures

    import model_bundle
    from components.train_model.logic import train

    pipeline, card = train(houses, target="price", task="regression", seed=1, model_type="linear")
    model_bundle.save(tmp_path / "model", pipeline, card)
    bundle = model_bundle.load(tmp_path / "model")
    frame = houses[bundle.feature_names].head(200)
    work = _mixed_requests(bundle, frame, oip_table, 32)

    with serve_bundle(bundle, tmp_path / "state", free_ports(3)) as server:
        before = _scrape(server.metrics_url)
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(lambda item: _post(server, item[1]), work))
        after = _scrape(server.metrics_url)
        extreme = frame.head(2).assign(size_sqm=[92.0, 1e308])
        assert not np.isfinite(bundle.model.predict(extreme)[1])
        refused = _post(server, oip_table(bundle, extreme))
        still = _post(server, oip_table(bundle, frame.head(2)))

    assert (refused.status_code, refused.json()["reason"]) == (400, "NOT_FINITE"), refused.text
    assert "row(s) [1]" in refused.json()["error"]
    assert still.json()["outputs"][0]["data"] == bundle.model.predict(frame.head(2)).tolist()
    for (rows, _), response in zip(work, responses, strict=True):
        assert response.status_code == 200, response.text[:1000]
        assert response.json()["outputs"][0]["data"] == bundle.model.predict(rows).tolist()
    calls = _total(after, "model_predict_calls_total") - _total(before, "model_predict_calls_total")
    assert calls == len(work)

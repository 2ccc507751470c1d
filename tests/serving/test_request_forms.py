"""Request forms beyond names + ndarray (records, tensors) and class probabilities, over real HTTP."""

from __future__ import annotations

import numpy as np
import pytest
import requests

import model_bundle
from components.train_model.logic import train

pytestmark = pytest.mark.serving


def _post(server, body: dict) -> dict:
    response = requests.post(server.predictions_url, json=body, timeout=60)
    assert response.status_code == 200, response.text[:1000]
    return response.json()


def test_records_list_answers_records_equal_to_in_process_predictions(regression_server, regression_bundle, json_rows):
    bundle, test = regression_bundle
    rows = test[bundle.feature_names].head(20)
    records = [dict(zip(bundle.feature_names, row, strict=True)) for row in json_rows(rows)]

    answer = _post(regression_server, {"jsonData": records})

    assert answer["jsonData"] == [{"price": value} for value in bundle.predict(rows).tolist()]


def test_one_record_answers_one_record(classification_server, classification_bundle, json_rows):
    bundle, test = classification_bundle
    rows = test[bundle.feature_names].head(1)
    record = dict(zip(reversed(bundle.feature_names), reversed(json_rows(rows)[0]), strict=True))

    answer = _post(classification_server, {"jsonData": record})

    assert answer["jsonData"] == {"energy_label": bundle.predict(rows)[0]}


def test_probabilities_on_request_equal_predict_proba(classification_server, classification_bundle, json_rows):
    bundle, test = classification_bundle
    rows = test[bundle.feature_names].head(25)
    classes = [str(label) for label in bundle.model.classes_]

    answer = _post(
        classification_server,
        {
            "data": {"names": bundle.feature_names, "ndarray": json_rows(rows)},
            "meta": {"tags": {"probabilities": True}},
        },
    )

    features = model_bundle.coerce_features(rows, bundle.features)
    expected = [
        [label, *probabilities]
        for label, probabilities in zip(
            bundle.model.predict(features).tolist(), bundle.model.predict_proba(features).tolist(), strict=True
        )
    ]
    assert answer["data"]["names"] == ["energy_label", *[f"probability_{label}" for label in classes]]
    assert answer["data"]["ndarray"] == expected
    assert all(abs(sum(row[1:]) - 1.0) < 1e-9 for row in answer["data"]["ndarray"])


def test_probabilities_for_records(classification_server, classification_bundle, json_rows):
    bundle, test = classification_bundle
    rows = test[bundle.feature_names].head(3)
    records = [dict(zip(bundle.feature_names, row, strict=True)) for row in json_rows(rows)]

    answer = _post(classification_server, {"jsonData": records, "meta": {"tags": {"probabilities": True}}})

    probabilities = bundle.model.predict_proba(model_bundle.coerce_features(rows, bundle.features))
    for record, expected in zip(answer["jsonData"], probabilities.tolist(), strict=True):
        assert record["probabilities"] == dict(zip(map(str, bundle.model.classes_), expected, strict=True))
        assert record["energy_label"] == max(record["probabilities"], key=record["probabilities"].get)


@pytest.fixture(scope="module")
def numeric_bundle(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, object]:
    """A price model on numeric columns only (the case where a tensor request makes sense)."""
    frame = houses[["size_sqm", "rooms", "age_years", "distance_to_center_km", "price"]]
    pipeline, card = train(frame, target="price", task="regression", seed=1)
    directory = tmp_path_factory.mktemp("numeric") / "model"
    model_bundle.save(directory, pipeline, card)
    return model_bundle.load(directory), frame.drop(columns=["price"]).head(10)


@pytest.fixture(scope="module")
def numeric_server(numeric_bundle, tmp_path_factory, free_ports):
    from serving import local_server

    bundle, _ = numeric_bundle
    state = tmp_path_factory.mktemp("numeric-state")
    http_port, metrics_port, grpc_port = free_ports(3)
    server = local_server.start(bundle.directory, bundle.card.sha256, state, http_port, metrics_port, grpc_port)
    yield server
    local_server.stop(http_port, state)


@pytest.mark.parametrize("with_names", [True, False])
def test_tensor_answers_a_tensor_equal_to_in_process_predictions(numeric_server, numeric_bundle, with_names):
    bundle, rows = numeric_bundle
    filled = rows.fillna(0.0)  # a tensor has no null
    tensor = {"shape": list(filled.shape), "values": filled.to_numpy().ravel().tolist()}
    data = {"names": bundle.feature_names, "tensor": tensor} if with_names else {"tensor": tensor}

    answer = _post(numeric_server, {"data": data})

    assert answer["data"]["names"] == ["price"]
    assert answer["data"]["tensor"]["shape"] == [len(filled), 1]
    assert answer["data"]["tensor"]["values"] == bundle.predict(filled).tolist()


def test_tensor_with_a_wrong_value_count_is_refused(numeric_server, numeric_bundle):
    bundle, _ = numeric_bundle
    body = {"data": {"tensor": {"shape": [2, len(bundle.feature_names)], "values": [1.0, 2.0]}}}

    response = requests.post(numeric_server.predictions_url, json=body, timeout=60)

    assert response.status_code == 400
    assert "must hold 2 x 4 numbers, got 2" in response.json()["status"]["info"]
    assert np.isfinite(
        _post(numeric_server, {"data": {"tensor": {"shape": [1, 4], "values": [80, 3, 10, 2]}}})["data"]["tensor"][
            "values"
        ][0]
    )

"""Request forms beyond a plain table (tensors, numbers for categories, requested outputs) and class probabilities,
over real HTTP."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests

import model_bundle
from components.train_model.logic import train

pytestmark = pytest.mark.serving

JSON_HEADERS = {"Content-Type": "application/json"}


def _post(server, body: dict) -> requests.Response:
    return requests.post(server.infer_url, data=json.dumps(body, allow_nan=False), headers=JSON_HEADERS, timeout=60)


def _answer(server, body: dict) -> dict[str, dict]:
    response = _post(server, body)
    assert response.status_code == 200, response.text[:1000]
    return {output["name"]: output for output in response.json()["outputs"]}


def test_probabilities_on_request_equal_predict_proba(classification_server, classification_bundle, oip_table):
    bundle, test = classification_bundle
    rows = test[bundle.feature_names].head(25)
    classes = [str(label) for label in bundle.model.classes_]

    outputs = _answer(classification_server, oip_table(bundle, rows, probabilities=True))

    assert list(outputs) == ["energy_label", *[f"probability_{label}" for label in classes]]
    assert outputs["energy_label"]["data"] == bundle.predict(rows).tolist()
    probabilities = bundle.predict_proba(rows)
    for position, label in enumerate(classes):
        output = outputs[f"probability_{label}"]
        assert output["datatype"] == "FP64" and output["shape"] == [len(rows)]
        assert output["data"] == probabilities[:, position].tolist()
    sums = np.sum([outputs[f"probability_{label}"]["data"] for label in classes], axis=0)
    assert np.allclose(sums, 1.0, atol=1e-9)


def test_requested_outputs_are_answered_in_their_order(classification_server, classification_bundle, oip_table):
    """Asking for probability outputs by name is asking for probabilities; only the outputs asked are answered."""
    bundle, test = classification_bundle
    rows = test[bundle.feature_names].head(3)
    label = bundle.card.classes[0]
    body = {**oip_table(bundle, rows), "outputs": [{"name": f"probability_{label}"}, {"name": "energy_label"}]}

    outputs = _answer(classification_server, body)

    assert list(outputs) == [f"probability_{label}", "energy_label"]
    assert outputs[f"probability_{label}"]["data"] == bundle.predict_proba(rows)[:, 0].tolist()


def test_without_probabilities_only_the_label_is_answered(classification_server, classification_bundle, oip_table):
    bundle, test = classification_bundle
    rows = test[bundle.feature_names].head(3)

    assert list(_answer(classification_server, oip_table(bundle, rows, probabilities=False))) == ["energy_label"]


def test_categories_sent_as_numbers_or_booleans_are_the_categories_training_saw(
    regression_server, regression_bundle, oip_table
):
    """A categorical column may come as BYTES, or as the numbers and booleans it was in the data (converted as the
    model converts them in training): the same predictions."""
    bundle, test = regression_bundle
    rows = test[bundle.feature_names].dropna().head(10)
    as_bool = oip_table(bundle, rows)
    renovated = next(entry for entry in as_bool["inputs"] if entry["name"] == "renovated")
    assert renovated["datatype"] == "BOOL", "the sample's renovated column holds booleans"
    as_text = json.loads(json.dumps(as_bool))
    text = next(entry for entry in as_text["inputs"] if entry["name"] == "renovated")
    text.update(datatype="BYTES", data=[str(value) for value in text["data"]])

    expected = bundle.predict(rows).tolist()
    assert _answer(regression_server, as_bool)["price"]["data"] == expected
    assert _answer(regression_server, as_text)["price"]["data"] == expected


def test_integer_datatypes_are_cast_to_the_training_types(regression_server, regression_bundle, oip_table):
    bundle, test = regression_bundle
    rows = test[bundle.feature_names].dropna().head(5).assign(rooms=lambda frame: frame["rooms"].astype("int64"))
    body = oip_table(bundle, rows)
    rooms = next(entry for entry in body["inputs"] if entry["name"] == "rooms")
    rooms["datatype"] = "INT32"

    assert _answer(regression_server, body)["price"]["data"] == bundle.predict(rows).tolist()


@pytest.fixture(scope="module")
def numeric_bundle(tmp_path_factory, houses) -> tuple[model_bundle.Bundle, object]:
    """A price model on numeric columns only (the case where a tensor request makes sense)."""
    frame = houses[["size_sqm", "rooms", "age_years", "distance_to_center_km", "price"]]
    pipeline, card = train(frame, target="price", task="regression", seed=1)
    directory = tmp_path_factory.mktemp("numeric") / "model"
    model_bundle.save(directory, pipeline, card)
    return model_bundle.load(directory), frame.drop(columns=["price"]).head(10)


@pytest.fixture(scope="module")
def numeric_server(numeric_bundle, tmp_path_factory, free_ports, serve_bundle):
    bundle, _ = numeric_bundle
    with serve_bundle(bundle, tmp_path_factory.mktemp("numeric-state"), free_ports(3)) as server:
        yield server


@pytest.mark.parametrize("form", ["flat", "nested", "np"])
def test_tensor_answers_predictions_equal_to_in_process_ones(numeric_server, numeric_bundle, form):
    bundle, rows = numeric_bundle
    assert rows.isna().any().any(), "the rows should include missing values: null in a tensor"
    values = rows.astype(object).where(rows.notna(), None).to_numpy()
    data = values.tolist() if form == "nested" else values.ravel().tolist()
    body = {"inputs": [{"name": "input-0", "shape": list(values.shape), "datatype": "FP64", "data": data}]}
    if form == "np":
        body["parameters"] = {"content_type": "np"}

    outputs = _answer(numeric_server, body)

    assert outputs["price"]["shape"] == [len(rows)]
    assert outputs["price"]["data"] == bundle.predict(rows).tolist()


def test_tensor_metadata_order_is_the_column_order(numeric_server, numeric_bundle):
    bundle, _ = numeric_bundle
    metadata = requests.get(numeric_server.metadata_url, timeout=60).json()

    assert [entry["name"] for entry in metadata["inputs"]] == bundle.feature_names
    assert {entry["datatype"] for entry in metadata["inputs"]} == {"FP64"}


@pytest.mark.parametrize(
    ("shape", "data", "fragment"),
    [
        ([2, 4], [1.0, 2.0], "it must hold 2 x 4"),
        ([1, 3], [1.0, 2.0, 3.0], "must be [n, 4]"),
        ([2, 4], [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]], "ragged"),
    ],
    ids=["too-few-values", "too-few-columns", "ragged"],
)
def test_a_malformed_tensor_is_refused_naming_the_shape(numeric_server, shape, data, fragment):
    body = {"inputs": [{"name": "input-0", "shape": shape, "datatype": "FP64", "data": data}]}

    response = _post(numeric_server, body)

    assert response.status_code == 400, response.text
    assert response.json()["reason"] == "BAD_SHAPE"
    assert fragment in response.json()["error"]
    good = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [80, 3, 10, 2]}]}
    assert np.isfinite(_answer(numeric_server, good)["price"]["data"][0])

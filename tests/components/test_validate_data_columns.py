"""validate_data's column parameters, through the component function: exclude_columns and column_policy reach the
check, the schema artifact records each column's role, the report and metrics show the exclusions and leakage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kfp import dsl

from components._common.datasets import write_dataset
from components.ingest_data.logic import house_prices
from components.validate_data import validate_data
from components.validate_data.logic import DataValidationError


def _artifact(kind, tmp_path, name):
    return kind(name=name, uri=str(tmp_path / name), metadata={})


def run(tmp_path, **parameters):
    frame = house_prices(rows=400, seed=5)
    frame.insert(0, "listing_id", np.arange(1000, 1400))
    frame["price_eur"] = frame["price"] * 0.92
    dataset = _artifact(dsl.Dataset, tmp_path, "dataset")
    Path(dataset.path).parent.mkdir(parents=True, exist_ok=True)
    write_dataset(frame, dataset.path)
    outputs = {
        "schema": _artifact(dsl.Artifact, tmp_path, "schema"),
        "report": _artifact(dsl.Markdown, tmp_path, "report"),
        "metrics": _artifact(dsl.Metrics, tmp_path, "metrics"),
    }
    validate_data.python_func(dataset=dataset, target="price", **outputs, **parameters)
    return outputs


def test_leakage_stops_the_step_after_writing_its_report(tmp_path):
    with pytest.raises(DataValidationError, match=r"rerun with exclude_columns=\['price_eur'\]"):
        run(tmp_path)
    assert "| leakage | fail | **failed**: price_eur |" in (tmp_path / "report").read_text()


def test_excluded_columns_are_recorded_in_the_schema_report_and_metrics(tmp_path):
    outputs = run(tmp_path, exclude_columns=["price_eur"], column_policy={"leakage": "fail", "identifiers": "exclude"})

    columns = json.loads(Path(outputs["schema"].path).read_text())["columns"]
    assert {c["name"]: c.get("excluded_because") for c in columns if c["role"] == "excluded"} == {
        "listing_id": "identifier: unique integers in sequence",
        "price_eur": "exclude_columns",
    }
    assert "- `price_eur`: exclude_columns" in Path(outputs["report"].path).read_text()
    assert outputs["metrics"].metadata["excluded_columns"] == 2
    assert outputs["metrics"].metadata["leakage_suspects"] == 0


def test_a_bad_column_parameter_stops_the_step_naming_it(tmp_path):
    with pytest.raises(DataValidationError, match=r"exclude_columns names unknown column\(s\) \['id'\]"):
        run(tmp_path, exclude_columns=["id"])
    with pytest.raises(ValueError, match=r"column_policy\['leakage'\] must be one of"):
        run(tmp_path, column_policy={"leakage": "maybe"})


def test_the_schema_roles_decide_the_features_the_card_and_what_requests_may_send(tmp_path):
    from components.train_model import train_model
    from model_bundle import PROFILE_FILE, load
    from model_bundle.profile import build_profile

    outputs = run(tmp_path, exclude_columns=["price_eur"])
    frame = house_prices(rows=400, seed=5)
    frame.insert(0, "listing_id", np.arange(1000, 1400))
    frame["price_eur"] = frame["price"] * 0.92
    train = _artifact(dsl.Dataset, tmp_path, "train")
    write_dataset(frame, train.path)
    profile = _artifact(dsl.Artifact, tmp_path, PROFILE_FILE)
    Path(profile.path).write_text(json.dumps(build_profile(frame, "price")))
    model = _artifact(dsl.Model, tmp_path, "model")

    train_model.python_func(
        train=train,
        schema=outputs["schema"],
        reference_profile=profile,
        target="price",
        task="regression",
        model=model,
        metrics=_artifact(dsl.Metrics, tmp_path, "train_metrics"),
        validation_fraction=0.0,
    )

    bundle = load(model.path)
    assert bundle.card.excluded_columns == {
        "listing_id": "identifier: unique integers in sequence",
        "price_eur": "exclude_columns",
    }
    assert "listing_id" not in bundle.feature_names and "price_eur" not in bundle.feature_names
    # Whole rows, excluded columns and target included, predict as the feature columns alone do.
    np.testing.assert_array_equal(bundle.predict(frame), bundle.predict(frame[bundle.feature_names]))
    assert bundle.non_feature_columns == ["price", "listing_id", "price_eur"]

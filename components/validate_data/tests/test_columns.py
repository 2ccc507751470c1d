"""validate_data's parameters, through the component function: exclude_columns and validation_policy reach the
checks (and the deprecated schema_policy, column_policy and coerce_mixed_types still do), the schema artifact records
each column's role, the report and metrics show the exclusions and leakage, and the champion's schema is read
verified: a tampered one stops the step naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kfp import dsl

from components._common import registry
from components._common.datasets import write_dataset
from components.ingest_data.samples import house_prices
from components.validate_data.component import validate_data
from components.validate_data.logic import DataValidationError
from model_bundle import SCHEMA_FILE, BundleError


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
    outputs = run(
        tmp_path, exclude_columns=["price_eur"], validation_policy={"leakage": "fail", "identifiers": "exclude"}
    )

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
    with pytest.raises(DataValidationError, match=r"sensitive_columns: unknown column\(s\) \['sex'\]"):
        run(tmp_path, exclude_columns=["price_eur"], sensitive_columns=["neighbourhood", "sex"])
    with pytest.raises(ValueError, match=r"validation_policy\['leakage'\] must be one of"):
        run(tmp_path, validation_policy={"leakage": "maybe"})
    with pytest.raises(ValueError, match=r"cleaning_policy\['outliers'\] must be one of"):
        run(tmp_path, exclude_columns=["price_eur"], cleaning_policy={"outliers": "trim"})


def test_the_schema_roles_decide_the_features_the_card_and_what_requests_may_send(tmp_path):
    from components.train_model.component import train_model
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


def test_the_deprecated_parameters_still_decide_and_name_the_new_keys(tmp_path, capsys):
    outputs = run(
        tmp_path,
        column_policy={"leakage": "warn", "identifiers": "keep"},
        schema_policy={"domain": "fail"},
        coerce_mixed_types=True,
    )

    report = Path(outputs["report"].path).read_text()
    assert "| leakage | warn | warning: price_eur |" in report  # warned, not stopped
    assert "| identifiers | keep | kept: listing_id |" in report
    assert "| domain | fail | not run |" in report  # no champion to compare with
    err = capsys.readouterr().err
    for old, new in (
        ("column_policy", "validation_policy['leakage']"),
        ("column_policy", "validation_policy['identifiers']"),
        ("schema_policy", "validation_policy['domain']"),
        ("coerce_mixed_types", "cleaning_policy['coerce_mixed_types']"),
    ):
        assert f"parameter {old} will be removed in the next release; set {new} instead" in err
    for name in ("schema_policy", "column_policy", "coerce_mixed_types"):
        assert validate_data.component_spec.inputs[name].optional


def make_champion(bundle, model_name: str = "houses") -> str:
    from components.register_model.logic import register

    version = register("", model_name, bundle.directory, {"r2": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias(model_name, registry.CHAMPION, version)
    return version


def test_the_data_is_compared_with_the_champion_s_schema(tmp_path, mlflow_state, regression_bundle):
    version = make_champion(regression_bundle[0])

    outputs = run(tmp_path, model_name="houses", exclude_columns=["price_eur"])

    report = Path(outputs["report"].path).read_text()
    assert f"Compared with the {SCHEMA_FILE} of houses version {version} (the champion)." in report
    assert "| columns | fail | passed |" in report


def test_a_tampered_champion_schema_stops_the_step_naming_the_file(tmp_path, mlflow_state, regression_bundle):
    make_champion(regression_bundle[0])
    [registered] = (mlflow_state / "mlartifacts").rglob(SCHEMA_FILE)
    schema = json.loads(registered.read_text())
    schema["columns"] = [column for column in schema["columns"] if column["name"] != "rooms"]  # a looser contract
    registered.write_text(json.dumps(schema))

    with pytest.raises(
        BundleError, match=rf"houses version 1 \(the champion\).*sha256 digest mismatch for \S*{SCHEMA_FILE}"
    ):
        run(tmp_path, model_name="houses", exclude_columns=["price_eur"])
    assert not Path(tmp_path / "schema").exists()  # nothing was validated against it

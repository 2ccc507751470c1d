"""model_bundle.schema: the data contract inferred from training data, compared with new data, held to requests,
and carried (digest-checked) in the model directory."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import model_bundle
from model_bundle import schema as contract


def reference_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "size": [50.0, 60.5, 70.0, 80.0, 90.0, 100.0],
            "area": ["north", "south", "north", "east", "south", "north"],
            "renovated": [True, False, True, True, False, True],
            "price": [1.0, 2.0, 2.0, 3.0, 4.0, 5.0],
        }
    )


@pytest.fixture
def reference() -> dict:
    return contract.infer(reference_frame(), target="price")


def findings_of(reference: dict, frame: pd.DataFrame) -> dict[tuple[str, str], contract.Finding]:
    return {(f.check, f.column): f for f in contract.compare(reference, contract.infer(frame, "price"), frame)}


def test_inference_records_kind_domain_nullability_and_uniqueness(reference):
    columns = contract.column_map(reference)
    assert reference["target"] == "price" and reference["rows"] == 6
    assert {k: columns["id"][k] for k in ("type", "kind", "unique", "nullable")} == {
        "type": "numeric",
        "kind": "integer",
        "unique": True,
        "nullable": False,
    }
    assert columns["size"]["kind"] == "float" and not columns["size"]["unique"]  # measurements are no identifier
    assert (columns["size"]["min"], columns["size"]["max"]) == (50.0, 100.0)
    assert columns["area"]["domain"] == ["east", "north", "south"]
    assert columns["area"]["max_length"] == 5
    assert columns["renovated"]["kind"] == "boolean" and columns["renovated"]["domain"] == ["False", "True"]
    assert not columns["price"]["unique"]  # the target is never an identifier


def test_a_column_with_many_categories_has_an_open_domain():
    frame = pd.DataFrame({"street": [f"street {i}" for i in range(contract.MAX_DOMAIN + 1)]})
    column = contract.infer(frame)["columns"][0]
    assert column["domain"] is None
    assert len(column["categories"]) == contract.MAX_DOMAIN
    assert column["unique"]


def test_identical_data_has_no_findings(reference):
    assert findings_of(reference, reference_frame()) == {}


def test_missing_and_new_columns_are_named(reference):
    frame = reference_frame().rename(columns={"size": "surface"})
    findings = findings_of(reference, frame)
    assert findings[("columns", "size")].message == "column 'size' of the reference schema is missing"
    assert findings[("columns", "surface")].message == "column 'surface' is new: the reference schema does not have it"


def test_type_changes_are_named_but_integer_and_float_are_compatible(reference):
    frame = reference_frame().assign(size=["s", "m", "l", "s", "m", "l"], id=[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
    findings = findings_of(reference, frame)
    assert findings[("types", "size")].message == (
        "column 'size' was numeric (float) in the reference schema, now categorical (string)"
    )
    assert ("types", "id") not in findings
    assert ("range", "size") not in findings  # another type's range says nothing more


def test_boolean_column_turned_text_is_a_type_change(reference):
    frame = reference_frame().assign(renovated=["yes", "no", "yes", "yes", "no", "yes"])
    assert ("types", "renovated") in findings_of(reference, frame)


def test_unseen_categories_are_counted_with_examples(reference):
    frame = reference_frame().assign(area=["north", "west", "west", "up", "south", None])
    finding = findings_of(reference, frame)[("domain", "area")]
    assert finding.count == 3
    assert finding.examples == ("west", "up")  # most frequent first
    assert "outside the reference domain of 3" in finding.message


def test_values_outside_the_range_are_counted_extremes_first(reference):
    frame = reference_frame().assign(size=[10.0, 60.0, 70.0, 500.0, 90.0, 120.0])
    finding = findings_of(reference, frame)[("range", "size")]
    assert finding.count == 3
    assert finding.examples == (10.0, 500.0, 120.0)
    assert "[50, 100]" in finding.message


def test_missing_values_where_there_were_none_or_many_more(reference):
    frame = reference_frame().assign(size=[np.nan, 60.0, 70.0, 80.0, 90.0, 100.0])
    assert findings_of(reference, frame)[("nulls", "size")].count == 1
    nullable = contract.infer(reference_frame().assign(size=[np.nan, 60.0, 70.0, 80.0, 90.0, 100.0]), "price")
    slightly_more = reference_frame().assign(size=[np.nan, 60.0, 70.0, 80.0, 90.0, 100.0])
    assert ("nulls", "size") not in findings_of(nullable, slightly_more)
    many_more = reference_frame().assign(size=[np.nan, np.nan, np.nan, 80.0, 90.0, 100.0])
    assert ("nulls", "size") in findings_of(nullable, many_more)


def test_a_unique_column_that_repeats_is_named(reference):
    frame = reference_frame().assign(id=[1, 2, 2, 4, 4, 4])
    finding = findings_of(reference, frame)[("uniqueness", "id")]
    assert finding.count == 3


def coerced_request(reference: dict, **overrides) -> pd.DataFrame:
    features = [{"name": c["name"], "type": c["type"]} for c in reference["columns"] if c["name"] != "price"]
    row = {"id": 4, "size": 75.0, "area": "north", "renovated": True} | overrides
    return model_bundle.coerce_columns({name: [value] for name, value in row.items()}, features)


def test_requests_are_held_to_the_checks_asked_for(reference):
    contract.check_request(reference, coerced_request(reference), contract.REQUEST_CHECKS)  # a good row passes
    unseen = r"column 'area' has value\(s\) \['west'\] outside its domain"
    with pytest.raises(model_bundle.SchemaViolation, match=unseen):
        contract.check_request(reference, coerced_request(reference, area="west"), ["domain"])
    contract.check_request(reference, coerced_request(reference, area="west"), ["range"])  # domain not asked
    with pytest.raises(model_bundle.SchemaViolation, match=r"column 'size' .*\[500.0\] outside its training range"):
        contract.check_request(reference, coerced_request(reference, size=500.0), ["range"])
    with pytest.raises(model_bundle.SchemaViolation, match=r"column 'size' has 1 missing value\(s\).*check 'nulls'"):
        contract.check_request(reference, coerced_request(reference, size=None), ["nulls"])
    contract.check_request(reference, coerced_request(reference, area=None), ["domain"])  # missing is not unseen
    contract.check_request(None, coerced_request(reference, area="west"), ["domain"])  # no schema, no contract


def test_request_checks_parameter():
    assert contract.parse_request_checks("domain, range") == ("domain", "range")
    assert contract.parse_request_checks("none") == ()
    with pytest.raises(ValueError, match=r"schema_checks names unknown check\(s\) \['types'\]"):
        contract.parse_request_checks("types")


def test_the_schema_travels_in_the_model_directory_and_is_digest_checked(tmp_path, regression_bundle, reference):
    bundle, _ = regression_bundle
    directory = tmp_path / "model"
    card = model_bundle.save(directory, bundle.model, bundle.card, {model_bundle.SCHEMA_FILE: reference})
    assert card.documents[model_bundle.SCHEMA_FILE] == model_bundle.file_sha256(directory / "schema.json")
    assert model_bundle.load(directory).schema == json.loads(json.dumps(reference))

    (directory / "schema.json").write_text(json.dumps({**reference, "rows": 1}))
    with pytest.raises(model_bundle.BundleError, match=r"sha256 digest mismatch for .*schema.json"):
        model_bundle.load(directory)
    (directory / "schema.json").unlink()
    with pytest.raises(model_bundle.BundleError, match=r"schema.json is listed in the model card but does not exist"):
        model_bundle.load(directory)


def test_document_names_are_plain_json_files(tmp_path, regression_bundle):
    bundle, _ = regression_bundle
    for name in ("../escape.json", "model.json", "notes.txt"):
        with pytest.raises(model_bundle.BundleError, match="must be a plain"):
            model_bundle.save(tmp_path / "model", bundle.model, bundle.card, {name: {}})


@pytest.mark.parametrize("repeats", [1, 1000])
def test_distinct_count_equals_nunique_for_many_and_few_distinct_values(repeats):
    values = pd.Series(np.repeat(np.random.default_rng(2).normal(size=60_000 // repeats), repeats))
    values[::7] = np.nan
    assert contract.distinct_count(values, values.isna()) == values.nunique()


def test_every_column_has_a_role_and_excluded_ones_a_reason():
    schema = contract.infer(reference_frame(), "price", {"id": "identifier: unique integers in sequence"})

    assert {c["name"]: c["role"] for c in schema["columns"]} == {
        "id": "excluded",
        "size": "feature",
        "area": "feature",
        "renovated": "feature",
        "price": "target",
    }
    assert contract.column_map(schema)["id"]["excluded_because"] == "identifier: unique integers in sequence"
    assert "excluded_because" not in contract.column_map(schema)["size"]
    assert model_bundle.excluded_columns(schema) == {"id": "identifier: unique integers in sequence"}


def test_excluded_columns_are_listed_in_column_order_and_absent_from_an_older_schema(reference):
    schema = contract.with_excluded(reference, {"renovated": "exclude_columns", "id": "identifier: x"})
    assert list(contract.excluded_columns(schema).items()) == [
        ("id", "identifier: x"),
        ("renovated", "exclude_columns"),
    ]
    assert contract.with_excluded(schema, {})["columns"] == reference["columns"]  # roles are set, not added up

    older = {**reference, "columns": [{k: v for k, v in c.items() if k != "role"} for c in reference["columns"]]}
    assert contract.excluded_columns(older) == {}
    assert contract.excluded_columns(None) == {}


def test_only_known_columns_other_than_the_target_can_be_excluded(reference):
    with pytest.raises(ValueError, match=r"cannot exclude column\(s\) \['garden'\]: not in the data; columns are"):
        contract.with_excluded(reference, {"garden": "exclude_columns"})
    with pytest.raises(ValueError, match=r"cannot exclude the target column 'price'"):
        contract.with_excluded(reference, {"price": "exclude_columns"})


def test_excluded_columns_are_never_missing_new_or_changed(reference):
    excluded = contract.with_excluded(reference, {"id": "identifier", "area": "exclude_columns"})
    # The champion's excluded columns gone, and one retyped; a new column excluded by the new data's schema.
    frame = reference_frame().drop(columns=["id"]).assign(area=[1.5] * 6, ticket=["a", "b", "c", "d", "e", "f"])
    current = contract.infer(frame, "price", {"ticket": "identifier: unique text"})

    assert contract.compare(excluded, current, frame) == []
    assert {f.column for f in contract.compare(reference, contract.infer(frame, "price"), frame)} == {
        "id",
        "area",
        "ticket",
    }


def test_an_excluded_identifier_is_still_held_to_its_uniqueness(reference):
    excluded = contract.with_excluded(reference, {"id": "identifier: unique integers in sequence"})
    frame = reference_frame().assign(id=[1, 2, 2, 4, 4, 4])  # duplicated records, or a wrong join

    findings = contract.compare(excluded, contract.infer(frame, "price"), frame)

    assert [(f.check, f.column, f.count) for f in findings] == [("uniqueness", "id", 3)]


def test_requests_are_not_held_to_an_excluded_column_s_contract(reference):
    excluded = contract.with_excluded(reference, {"size": "exclude_columns"})
    request = coerced_request(reference, size=500.0)

    contract.check_request(excluded, request, contract.REQUEST_CHECKS)  # the model never sees size
    with pytest.raises(model_bundle.SchemaViolation, match=r"column 'size'"):
        contract.check_request(reference, request, contract.REQUEST_CHECKS)

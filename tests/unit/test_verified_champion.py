"""One verified way to the champion: a registered champion whose files are altered afterwards in the registry's
store (its schema.json, its reference_profile.json, the digests its model.json records, a document rewritten
together with its digest in model.json) stops every user of the champion, naming the file: the registry itself,
validate_data, detect_drift, gate_model and serving the champion locally (run_local's and the deploy step's path to
the champion); deploying an altered version is refused too. A champion of another format version is no tampering:
validate_data goes on without its schema and leaves the verdict to the gate."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from kfp import dsl

from components._common import registry
from components._common.datasets import write_dataset
from components.register_model.logic import register
from model_bundle import CARD_FILE, PROFILE_FILE, SCHEMA_FILE, BundleError, file_sha256


@dataclass(frozen=True)
class Tampering:
    edited: str  # the file altered in the registry's store
    edit: Callable[[dict], None]
    named: str  # the file the error must name
    forge_card_digest: bool = False  # also write the edited file's new digest into the card, as a forger would

    def apply(self, state: Path) -> None:
        [path] = (state / "mlartifacts").rglob(self.edited)
        _edit_json(path, self.edit)
        if self.forge_card_digest:
            [card] = (state / "mlartifacts").rglob(CARD_FILE)
            _edit_json(card, _card_digest(self.edited, file_sha256(path)))


def _edit_json(path: Path, edit: Callable[[dict], None]) -> None:
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _set(key: str, value) -> Callable[[dict], None]:
    return lambda document: document.update({key: value})


def _card_digest(document_name: str, digest: str = "0" * 64) -> Callable[[dict], None]:
    return lambda card: card["documents"].update({document_name: digest})


TAMPERINGS = {
    "schema.json": Tampering(SCHEMA_FILE, _set("rows", 1), SCHEMA_FILE),
    "reference_profile.json": Tampering(PROFILE_FILE, _set("rows", 1), PROFILE_FILE),
    # The card's digests: the model's and the schema's are also recorded by the registry, the profile's only in the
    # card, which the registry's card_sha256 anchors.
    "model.json's model digest": Tampering(CARD_FILE, _set("sha256", "0" * 64), CARD_FILE),
    "model.json's schema digest": Tampering(CARD_FILE, _card_digest(SCHEMA_FILE), CARD_FILE),
    "model.json's profile digest": Tampering(CARD_FILE, _card_digest(PROFILE_FILE), PROFILE_FILE),
    # Consistent with the card, so only the registry's digest of the card itself (tag card_sha256) tells.
    "reference_profile.json and its digest in model.json": Tampering(
        PROFILE_FILE, _set("rows", 1), CARD_FILE, forge_card_digest=True
    ),
}
tampered = pytest.mark.parametrize("tampering", TAMPERINGS.values(), ids=TAMPERINGS.keys())


def naming(tampering: Tampering) -> str:
    """What every error must say: a digest mismatch of the file, in the registry's store."""
    return rf"sha256 digest mismatch for file://\S+/{tampering.named}\W"


@pytest.fixture
def champion_of(mlflow_state, regression_bundle) -> Callable[[Tampering], str]:
    """``champion_of(tampering)``: the regression bundle registered as champion of `houses`, then tampered with."""

    def make(tampering: Tampering) -> str:
        version = register("", "houses", regression_bundle[0].directory, {"r2": 0.5}, True, "approved").version
        registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, version)
        tampering.apply(mlflow_state)
        return version

    return make


@pytest.fixture
def batch(artifact, regression_bundle):
    """The regression bundle's test rows as a dataset artifact."""
    dataset = artifact(dsl.Dataset, "batch")
    write_dataset(regression_bundle[1], dataset.path)
    return dataset


def test_intact_files_pass_every_check(champion_of, mlflow_state):
    # The fixture's own control: with nothing altered, the champion is read.
    champion_of(Tampering(SCHEMA_FILE, lambda document: None, SCHEMA_FILE))

    assert registry.champion("", "houses").version == "1"


@tampered
def test_the_registry_refuses_the_champion(champion_of, tampering):
    champion_of(tampering)

    with pytest.raises(BundleError, match=rf"^houses version 1 \(the champion\): {naming(tampering)}"):
        registry.champion("", "houses")


@tampered
def test_validate_data_stops(champion_of, tampering, batch, artifact):
    from components.validate_data.component import validate_data

    champion_of(tampering)

    with pytest.raises(BundleError, match=naming(tampering)):
        validate_data.python_func(
            dataset=batch,
            target="price",
            schema=artifact(dsl.Artifact, "schema"),
            report=artifact(dsl.Markdown, "report"),
            metrics=artifact(dsl.Metrics, "metrics"),
            task="regression",
            model_name="houses",
        )


def test_validate_data_goes_on_without_a_champion_of_another_format_version(
    mlflow_state, regression_bundle, batch, artifact, capsys
):
    from components.validate_data.component import validate_data

    # A champion registered by an older release: its card of another format version, no card_sha256 tag yet.
    version = register("", "houses", regression_bundle[0].directory, {"r2": 0.5}, True, "approved").version
    client = registry.connect("")
    client.set_registered_model_alias("houses", registry.CHAMPION, version)
    client.delete_model_version_tag("houses", version, registry.CARD_SHA256_TAG)
    [card] = (mlflow_state / "mlartifacts").rglob(CARD_FILE)
    _edit_json(card, _set("format_version", 1))
    report = artifact(dsl.Markdown, "report")

    outputs = validate_data.python_func(
        dataset=batch,
        target="price",
        schema=artifact(dsl.Artifact, "schema"),
        report=report,
        metrics=artifact(dsl.Metrics, "metrics"),
        task="regression",
        model_name="houses",
    )

    # Not this step's call: the gate's incompatible_champion policy decides about such a champion.
    assert outputs == ("regression",)
    [warning] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning [champion]")]
    assert "the champion of houses has a model card of another format version" in warning
    assert "gate_model will judge that champion incompatible" in warning
    assert f"houses version {version} (the champion): " in warning and "has format_version 1, expected 2" in warning
    assert f"## Champion not compared\n\n{warning.removeprefix('warning [champion] ')}" in Path(report.path).read_text()


@tampered
def test_detect_drift_stops(champion_of, tampering, batch, artifact):
    from components.detect_drift.component import detect_drift

    champion_of(tampering)

    with pytest.raises(BundleError, match=naming(tampering)):
        detect_drift.python_func(
            dataset=batch,
            model_name="houses",
            report=artifact(dsl.HTML, "report"),
            summary=artifact(dsl.Markdown, "summary"),
            metrics=artifact(dsl.Metrics, "metrics"),
        )


@tampered
def test_the_gate_rejects_naming_the_file(champion_of, tampering, regression_bundle, artifact):
    from components.gate_model.component import gate_model

    champion_of(tampering)
    bundle, test_frame = regression_bundle
    test = artifact(dsl.Dataset, "test")
    write_dataset(test_frame, test.path)
    reasons = artifact(dsl.Markdown, "reasons")

    approved = gate_model.python_func(
        model=dsl.Model(name="model", uri=str(bundle.directory), metadata={}),
        test=test,
        model_name="houses",
        baseline_scores={"r2": -0.01, "rmse": 1e6, "mae": 1e6, "mape": 1.0},
        reasons=reasons,
        metrics=artifact(dsl.Metrics, "metrics"),
        gate_policy={"min_test_rows": 50.0},
    )

    # A champion that cannot be trusted blocks promotion: a person must restore it or move the alias.
    assert approved is False
    assert "its files cannot be loaded" in (report := Path(reasons.path).read_text())
    assert re.search(naming(tampering), report), report


@tampered
def test_serving_the_champion_locally_stops_before_starting_anything(champion_of, tampering, mlflow_state):
    from components.deploy_model.logic import DeploymentError, serve_champion_locally
    from serving import local_server

    champion_of(tampering)

    with pytest.raises(DeploymentError, match=rf"^the champion of houses cannot be served: .*{naming(tampering)}"):
        serve_champion_locally("houses", http_port=9123, metrics_port=6123)

    assert local_server.running(mlflow_state / "serving") == []


@tampered
def test_deploying_a_tampered_version_stops_before_starting_anything(
    mlflow_state, regression_bundle, tampering, free_ports
):
    from components.deploy_model.logic import DeploymentError, deploy_local
    from serving import local_server

    bundle, test = regression_bundle
    register("", "houses", bundle.directory, {"r2": 0.5}, True, "approved")
    tampering.apply(mlflow_state)
    rows = test[bundle.feature_names].head(3)

    with pytest.raises(
        DeploymentError, match=rf"^deploying houses v1 failed, nothing was started: .*{naming(tampering)}"
    ):
        deploy_local("houses", "1", bundle.card.sha256, rows, bundle.predict(rows), "", *free_ports(2))

    assert local_server.running(mlflow_state / "serving") == []
    assert registry.champion("", "houses") is None  # the alias did not move

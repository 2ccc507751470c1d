"""components._common.registry: the champion (and any version) reached one way, its card and documents verified
against their digests before anyone uses them, the model file downloaded and unpickled only when asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import model_bundle
from components._common import registry
from components.register_model.logic import register
from model_bundle import CARD_FILE, MODEL_FILE, PROFILE_FILE, SCHEMA_FILE, BundleError, BundleFormatError

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_champion(bundle, model_name: str = "houses") -> str:
    version = register("", model_name, bundle.directory, {"r2": 0.5}, True, "approved").version
    registry.connect("").set_registered_model_alias(model_name, registry.CHAMPION, version)
    return version


def registered_file(state: Path, name: str) -> Path:
    [path] = (state / "mlartifacts").rglob(name)
    return path


def edit_json(path: Path, edit) -> None:
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def downloads(monkeypatch) -> list[str]:
    """Every artifact URI downloaded through MLflow while the test runs."""
    import mlflow

    seen = []
    download = mlflow.artifacts.download_artifacts

    def recording(*args, **kwargs):
        seen.append(kwargs.get("artifact_uri") or args[0])
        return download(*args, **kwargs)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", recording)
    return seen


# --- cold start ---------------------------------------------------------------------------------------------------


def test_without_a_local_registry_there_is_no_champion_and_none_is_created(tmp_path):
    state = tmp_path / "state"
    script = (
        "import sys\n"
        "from components._common import registry\n"
        "assert registry.champion('', 'houses') is None\n"
        "assert 'mlflow' not in sys.modules, 'reading a champion that cannot exist imported MLflow'\n"
    )
    env = {**os.environ, registry.STATE_DIR_ENV: str(state)}

    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert completed.returncode == 0, completed.stderr
    assert not state.exists()


def test_an_unknown_model_has_no_champion(mlflow_state):
    assert registry.champion("", "houses") is None


def test_a_model_without_the_champion_alias_has_no_champion(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    register("", "houses", bundle.directory, {"r2": 0.5}, True, "approved")  # alias challenger only

    assert registry.champion("", "houses") is None


# --- the champion, verified ---------------------------------------------------------------------------------------


def test_the_champion_comes_with_its_card_and_documents(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    version = make_champion(bundle)

    champion = registry.champion("", "houses")

    assert champion.model_name == "houses" and champion.version == version
    assert champion.source == registry.connect("").get_model_version("houses", version).source
    assert champion.tags["model_sha256"] == bundle.card.sha256
    assert champion.card == bundle.card
    assert champion.documents == bundle.documents
    assert set(champion.documents) == {SCHEMA_FILE, PROFILE_FILE}
    assert champion.document(SCHEMA_FILE) == bundle.schema
    assert champion.document("missing.json") is None
    assert champion.description == f"houses version {version} (the champion)"


def test_the_alias_is_looked_up_once_per_call(mlflow_state, regression_bundle, monkeypatch):
    from mlflow import MlflowClient

    make_champion(regression_bundle[0])
    lookups = []
    look_up = MlflowClient.get_model_version_by_alias

    def counting(self, name, alias):
        lookups.append((name, alias))
        return look_up(self, name, alias)

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", counting)

    registry.champion("", "houses")

    assert lookups == [("houses", registry.CHAMPION)]


def test_the_model_file_is_downloaded_and_unpickled_only_by_load_bundle(
    mlflow_state, regression_bundle, downloads, monkeypatch, tmp_path
):
    bundle, test = regression_bundle
    make_champion(bundle)
    unpickled = []
    joblib_load = model_bundle.bundle.joblib.load
    monkeypatch.setattr(model_bundle.bundle.joblib, "load", lambda *a, **k: unpickled.append(a) or joblib_load(*a, **k))

    champion = registry.champion("", "houses")

    assert sorted(uri.rsplit("/", 1)[-1] for uri in downloads) == sorted([CARD_FILE, SCHEMA_FILE, PROFILE_FILE])
    assert unpickled == []

    loaded = champion.load_bundle(tmp_path / "champion")

    assert any(uri.endswith(f"/{MODEL_FILE}") for uri in downloads)
    assert len(unpickled) == 1
    assert loaded.card == bundle.card and loaded.documents == bundle.documents
    features = test.drop(columns=["price"])
    np.testing.assert_array_equal(loaded.predict(features), bundle.predict(features))


def test_download_fetches_the_bundle_files_without_unpickling(mlflow_state, regression_bundle, monkeypatch, tmp_path):
    make_champion(regression_bundle[0])
    monkeypatch.setattr(model_bundle.bundle.joblib, "load", lambda *a, **k: pytest.fail("the model was unpickled"))

    directory = registry.champion("", "houses").download(tmp_path / "served")

    assert sorted(path.name for path in directory.iterdir()) == sorted(
        [CARD_FILE, MODEL_FILE, SCHEMA_FILE, PROFILE_FILE]
    )


# --- tampered artifacts stop it, naming the file ------------------------------------------------------------------


@pytest.mark.parametrize("name", [SCHEMA_FILE, PROFILE_FILE])
def test_a_tampered_document_is_refused_naming_it(mlflow_state, regression_bundle, name):
    make_champion(regression_bundle[0])
    edit_json(registered_file(mlflow_state, name), lambda document: document.update(tampered=True))

    # Named where it is in the registry, with both digests.
    with pytest.raises(
        BundleError,
        match=rf"^houses version 1 \(the champion\): sha256 digest mismatch for file://\S+/model/{name}: its card "
        r"records \w{64}, found \w{64}",
    ):
        registry.champion("", "houses")


def test_a_card_whose_model_digest_differs_from_the_registry_is_refused(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    make_champion(bundle)
    edit_json(registered_file(mlflow_state, CARD_FILE), lambda card: card.update(sha256="0" * 64))

    with pytest.raises(
        BundleError,
        match=rf"^houses version 1 \(the champion\): sha256 digest mismatch for file://\S+/model\.json: it records "
        rf"{'0' * 64} where the registry's tag model_sha256 records {bundle.card.sha256}",
    ):
        registry.champion("", "houses")


def test_a_schema_rewritten_with_its_digest_in_the_card_is_refused_by_the_registered_digest(
    mlflow_state, regression_bundle
):
    bundle, _ = regression_bundle
    make_champion(bundle)
    schema = registered_file(mlflow_state, SCHEMA_FILE)
    edit_json(schema, lambda document: document.update(tampered=True))
    forged = model_bundle.file_sha256(schema)
    edit_json(registered_file(mlflow_state, CARD_FILE), lambda card: card["documents"].update({SCHEMA_FILE: forged}))

    with pytest.raises(
        BundleError, match=r"file://\S+/model\.json: it records \w+ where the registry's tag schema_sha256 records"
    ):
        registry.champion("", "houses")


def test_a_profile_rewritten_with_its_digest_in_the_card_is_refused_by_the_registered_card_digest(
    mlflow_state, regression_bundle
):
    # The profile's digest is recorded only in the card: the registry's card_sha256 tag is what anchors it.
    bundle, _ = regression_bundle
    make_champion(bundle)
    profile, card = registered_file(mlflow_state, PROFILE_FILE), registered_file(mlflow_state, CARD_FILE)
    registered_card = model_bundle.file_sha256(card)
    edit_json(profile, lambda document: document.update(rows=1))
    forged = model_bundle.file_sha256(profile)
    edit_json(card, lambda card: card["documents"].update({PROFILE_FILE: forged}))

    with pytest.raises(
        BundleError,
        match=rf"^houses version 1 \(the champion\): sha256 digest mismatch for file://\S+/model\.json: found "
        rf"{model_bundle.file_sha256(card)} where the registry's tag card_sha256 records {registered_card}",
    ):
        registry.champion("", "houses")


def test_a_version_registered_without_a_card_digest_is_verified_by_its_files(mlflow_state, regression_bundle):
    # Versions registered before register_model wrote the card_sha256 tag stay usable, every other check still made.
    bundle, _ = regression_bundle
    version = make_champion(bundle)
    registry.connect("").delete_model_version_tag("houses", version, registry.CARD_SHA256_TAG)

    champion = registry.champion("", "houses")

    assert registry.CARD_SHA256_TAG not in champion.tags
    assert champion.card == bundle.card and champion.documents == bundle.documents
    edit_json(registered_file(mlflow_state, PROFILE_FILE), lambda document: document.update(rows=1))
    with pytest.raises(BundleError, match=rf"sha256 digest mismatch for file://\S+/{PROFILE_FILE}: its card records"):
        registry.champion("", "houses")


def test_a_card_listing_another_document_digest_is_refused_naming_the_document(mlflow_state, regression_bundle):
    make_champion(regression_bundle[0])
    edit_json(registered_file(mlflow_state, CARD_FILE), lambda card: card["documents"].update({PROFILE_FILE: "1" * 64}))

    with pytest.raises(
        BundleError, match=rf"sha256 digest mismatch for \S*{PROFILE_FILE}: its card records {'1' * 64}"
    ):
        registry.champion("", "houses")


def test_a_card_listing_a_path_is_refused_before_anything_is_fetched(mlflow_state, regression_bundle, downloads):
    make_champion(regression_bundle[0])
    edit_json(
        registered_file(mlflow_state, CARD_FILE), lambda card: card["documents"].update({"../secrets.json": "1" * 64})
    )

    with pytest.raises(BundleError, match=r"document name '\.\./secrets\.json' must be a plain \*\.json file name"):
        registry.champion("", "houses")
    assert not any("secrets" in uri for uri in downloads)


def test_a_card_of_another_format_version_is_a_format_error(mlflow_state, regression_bundle):
    version = make_champion(regression_bundle[0])
    # As an older release registered it: no card_sha256 tag yet.
    registry.connect("").delete_model_version_tag("houses", version, registry.CARD_SHA256_TAG)
    edit_json(registered_file(mlflow_state, CARD_FILE), lambda card: card.update(format_version=1))

    with pytest.raises(
        BundleFormatError,
        match=r"^houses version 1 \(the champion\): model card file://\S+/model\.json has format_version 1, expected 2",
    ):
        registry.champion("", "houses")


def test_a_format_version_edited_in_a_registered_card_is_tampering_not_an_older_release(
    mlflow_state, regression_bundle
):
    make_champion(regression_bundle[0])
    edit_json(registered_file(mlflow_state, CARD_FILE), lambda card: card.update(format_version=1))

    with pytest.raises(
        BundleError, match=r"sha256 digest mismatch for file://\S+/model\.json: .* tag card_sha256"
    ) as raised:
        registry.champion("", "houses")
    assert not isinstance(raised.value, BundleFormatError)  # the gate would call it incompatible, not tampered


def test_missing_files_are_named(mlflow_state, regression_bundle):
    make_champion(regression_bundle[0])
    registered_file(mlflow_state, CARD_FILE).unlink()

    with pytest.raises(
        BundleError, match=r"^houses version 1 \(the champion\): cannot download model\.json from file://\S+/model: "
    ):
        registry.champion("", "houses")


def test_a_tampered_model_file_is_refused_when_loaded(mlflow_state, regression_bundle, tmp_path):
    make_champion(regression_bundle[0])
    champion = registry.champion("", "houses")  # the card and documents are intact
    with registered_file(mlflow_state, MODEL_FILE).open("ab") as stream:
        stream.write(b"tampered")

    with pytest.raises(
        BundleError, match=rf"^sha256 digest mismatch for {tmp_path}/champion/model\.joblib: expected \w{{64}}, found"
    ):
        champion.load_bundle(tmp_path / "champion")


def test_a_card_changed_after_verification_is_refused_when_downloaded(mlflow_state, regression_bundle, tmp_path):
    make_champion(regression_bundle[0])
    champion = registry.champion("", "houses")
    edit_json(registered_file(mlflow_state, CARD_FILE), lambda card: card.update(training_rows=1))

    with pytest.raises(
        BundleError,
        match=r"^houses version 1 \(the champion\): its model\.json in file://\S+ changed since it was verified",
    ):
        champion.download(tmp_path / "champion")


# --- a given version ----------------------------------------------------------------------------------------------


def test_a_given_version_is_verified_the_same_way(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    version = register("", "houses", bundle.directory, {"r2": 0.5}, True, "approved").version

    found = registry.verified_version("", "houses", version)

    assert found.version == version and found.card == bundle.card and found.documents == bundle.documents
    assert found.description == f"houses version {version}"
    assert registry.verified_version("", "houses", version, "the deployed one").description == "the deployed one"

    edit_json(registered_file(mlflow_state, SCHEMA_FILE), lambda document: document.update(tampered=True))
    with pytest.raises(BundleError, match=rf"^the deployed one: sha256 digest mismatch for file://\S+/{SCHEMA_FILE}"):
        registry.verified_version("", "houses", version, "the deployed one")


@pytest.mark.parametrize(("model_name", "version"), [("houses", "7"), ("flats", "1")])
def test_an_unknown_version_is_named(mlflow_state, regression_bundle, model_name, version):
    register("", "houses", regression_bundle[0].directory, {"r2": 0.5}, True, "approved")

    with pytest.raises(ValueError, match=rf"the registry has no version '{version}' of model '{model_name}'"):
        registry.verified_version("", model_name, version)

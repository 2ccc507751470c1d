"""register_model: every challenger becomes a registry version with its tags, idempotently per pipeline run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from components._common import registry
from components.register_model.logic import register
from model_bundle import BundleError, load

SCORES = {"r2": 0.81, "rmse": 30000.0, "mae": 21000.0}


def test_versions_count_up_and_challenger_follows_the_latest(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    first = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-1")
    second = register("", "houses", bundle.directory, SCORES, False, "rejected", pipeline_job_id="job-2")

    assert (first.version, second.version) == ("1", "2")
    assert first.model_name == second.model_name == "houses"
    assert first.run_id != second.run_id
    client = registry.connect("")
    assert str(registry.version_by_alias(client, "houses", registry.CHALLENGER).version) == "2"
    assert registry.version_by_alias(client, "houses", registry.CHAMPION) is None  # only deployment moves it


def test_tags_record_digest_and_gate_decision(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    approved = register("", "houses", bundle.directory, SCORES, True, "all checks passed", pipeline_job_id="job-1")
    rejected = register("", "houses", bundle.directory, SCORES, False, "worse than v1", pipeline_job_id="job-2")

    client = registry.connect("")
    tags = client.get_model_version("houses", approved.version).tags
    assert tags["model_sha256"] == bundle.card["sha256"]
    assert tags["gate.approved"] == "true"
    assert tags["gate.decision"] == "all checks passed"
    assert tags["kfp.pipeline_job_id"] == "job-1"
    rejected_tags = client.get_model_version("houses", rejected.version).tags
    assert rejected_tags["gate.approved"] == "false"
    assert rejected_tags["gate.decision"] == "worse than v1"


def test_same_pipeline_run_registers_once(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    first = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-7")
    retried = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-7")

    assert retried == first
    assert len(registry.connect("").search_model_versions("name='houses'")) == 1


def test_without_pipeline_job_id_each_call_registers(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    first = register("", "houses", bundle.directory, SCORES, True, "approved")
    second = register("", "houses", bundle.directory, SCORES, True, "approved")

    assert (first.version, second.version) == ("1", "2")


def test_run_records_scores_and_card_parameters(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    registered = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-1")

    run = registry.connect("").get_run(registered.run_id)
    assert run.data.metrics == {f"test_{name}": value for name, value in SCORES.items()}
    assert run.data.params["target"] == "price"
    assert run.data.params["task"] == "regression"
    assert run.data.params["features"] == ",".join(bundle.feature_names)
    assert run.info.status == "FINISHED"


def test_registered_files_load_with_the_registered_digest(mlflow_state, tmp_path, regression_bundle):
    bundle, test = regression_bundle
    registered = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-1")
    client = registry.connect("")
    version = client.get_model_version("houses", registered.version)

    downloaded = registry.download_version(version, tmp_path / "download")
    loaded = load(downloaded, expected_sha256=version.tags["model_sha256"])

    features = test.drop(columns=["price"])
    np.testing.assert_array_equal(loaded.predict(features), bundle.predict(features))
    assert registered.source == version.source


def test_artifacts_stay_under_the_state_directory(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    registered = register("", "houses", bundle.directory, SCORES, True, "approved")

    assert registered.source.startswith((mlflow_state / "mlartifacts").as_uri())


def test_empty_model_name_is_refused(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    with pytest.raises(ValueError, match=r"parameter model_name is empty"):
        register("", "", bundle.directory, SCORES, True, "approved")


def test_directory_without_card_is_refused(mlflow_state, tmp_path, regression_bundle):
    bundle, _ = regression_bundle
    model_dir = shutil.copytree(bundle.directory, tmp_path / "model")
    (model_dir / "model.json").unlink()

    with pytest.raises(BundleError, match=r"no model card"):
        register("", "houses", model_dir, SCORES, True, "approved")

"""register_model: every challenger becomes a registry version with its tags and lineage, idempotently per pipeline
run, and two registrations at once get distinct versions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import model_bundle
from components._common import history, registry
from components.register_model.logic import (
    GIT_SHA_ENV,
    TEXT_LIMIT,
    point_alias_at_newest,
    register,
)
from model_bundle import BundleError

REPO_ROOT = Path(__file__).resolve().parents[3]

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
    assert tags["model_sha256"] == bundle.card.sha256
    # model.json itself, as registered: it anchors the digests the card records (registry.champion checks it).
    assert tags[registry.CARD_SHA256_TAG] == model_bundle.file_sha256(bundle.directory / model_bundle.CARD_FILE)
    assert tags["gate.approved"] == "true"
    assert tags["gate.decision"] == "all checks passed"
    assert tags["kfp.pipeline_job_id"] == "job-1"
    rejected_tags = client.get_model_version("houses", rejected.version).tags
    assert rejected_tags["gate.approved"] == "false"
    assert rejected_tags["gate.decision"] == "worse than v1"


def test_a_decision_longer_than_mlflows_limit_is_cut_not_refused(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    decision = "# Challenger rejected\n" + "- FAILED slice: too small\n" * 400  # about 10,000 characters

    registered = register("", "houses", bundle.directory, SCORES, False, decision)

    version = registry.connect("").get_model_version("houses", registered.version)
    assert version.tags["gate.decision"] == decision[:TEXT_LIMIT]
    assert len(version.description) == TEXT_LIMIT
    assert "gate rejected.\n\n# Challenger rejected\n- FAILED slice: too small\n" in version.description


def test_same_pipeline_run_registers_once(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    first = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-7")
    retried = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-7")

    assert retried == first
    assert len(registry.connect("").search_model_versions("name='houses'")) == 1


def test_a_retry_after_registering_still_moves_the_challenger_alias(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    first = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-7")
    client = registry.connect("")
    client.delete_registered_model_alias("houses", registry.CHALLENGER)  # the attempt stopped before the alias

    retried = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-7")

    assert retried == first
    assert str(registry.version_by_alias(client, "houses", registry.CHALLENGER).version) == first.version


def test_each_challenger_move_is_recorded_in_the_history_and_a_retry_records_none(
    mlflow_state, tmp_path, regression_bundle
):
    bundle, _ = regression_bundle
    (tmp_path / "gate.md").write_text("# Challenger rejected\n")

    register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-1")
    rejected = register(
        "",
        "houses",
        bundle.directory,
        SCORES,
        False,
        "rejected",
        pipeline_job_id="job-2",
        reports={"gate.md": tmp_path / "gate.md"},
        pipeline_job_name="monitoring-pipeline-2026-12-01",
    )
    register("", "houses", bundle.directory, SCORES, False, "rejected", pipeline_job_id="job-2")  # a retry

    first, second = history.read("", "houses")
    assert [(move.alias, move.from_version, move.to_version) for move in (first, second)] == [
        ("challenger", "", "1"),
        ("challenger", "1", "2"),
    ]
    assert first.cause == second.cause == "registration"
    assert first.model_sha256 == second.model_sha256 == bundle.card.sha256
    assert (first.moved_by, first.gate, first.gate_reasons) == ("register_model (KFP run job-1)", "approved", "")
    assert (second.moved_by, second.gate) == ("monitoring-pipeline-2026-12-01 (KFP run job-2)", "rejected")
    # Where the gate's reasons are: the report logged with the version's run, recorded on the version too.
    run = registry.connect("").get_run(rejected.run_id)
    assert second.gate_reasons == f"{run.info.artifact_uri}/reports/gate.md"
    version = registry.connect("").get_model_version("houses", rejected.version)
    assert version.tags[registry.GATE_REASONS_TAG] == second.gate_reasons


def test_without_pipeline_job_id_each_call_registers(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    first = register("", "houses", bundle.directory, SCORES, True, "approved")
    second = register("", "houses", bundle.directory, SCORES, True, "approved")

    assert (first.version, second.version) == ("1", "2")


def test_run_records_scores_and_card_parameters(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    registered = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-1")

    run = registry.connect("").get_run(registered.run_id)
    test_metrics = {name: value for name, value in run.data.metrics.items() if name.startswith("test_")}
    assert test_metrics == {f"test_{name}": value for name, value in SCORES.items()}
    assert run.data.metrics["training_r2"] == bundle.card.training_scores["r2"]
    assert run.data.params["target"] == "price"
    assert run.data.params["task"] == "regression"
    assert run.data.params["features"] == ",".join(bundle.feature_names)
    assert run.info.status == "FINISHED"


def test_registered_files_load_with_the_registered_digest(mlflow_state, tmp_path, regression_bundle):
    bundle, test = regression_bundle
    registered = register("", "houses", bundle.directory, SCORES, True, "approved", pipeline_job_id="job-1")

    version = registry.verified_version("", "houses", registered.version)
    loaded = version.load_bundle(tmp_path / "download")

    features = test.drop(columns=["price"])
    np.testing.assert_array_equal(loaded.predict(features), bundle.predict(features))
    assert registered.source == version.source


def test_artifacts_stay_under_the_state_directory(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    registered = register("", "houses", bundle.directory, SCORES, True, "approved")

    assert registered.source.startswith((mlflow_state / "mlartifacts").as_uri())


@pytest.mark.parametrize(("name", "problem"), [("", "Missing value"), ("team/houses", "cannot contain '/'")])
def test_a_name_the_registry_cannot_take_is_refused_before_a_run_is_logged(
    mlflow_state, regression_bundle, name, problem
):
    from mlflow import MlflowClient

    bundle, _ = regression_bundle

    with pytest.raises(ValueError, match=rf"parameter model_name '{name}' is no registered model name: .*{problem}"):
        register("", name, bundle.directory, SCORES, True, "approved")
    assert not MlflowClient(registry.local_tracking_uri()).search_runs(
        [experiment.experiment_id for experiment in MlflowClient(registry.local_tracking_uri()).search_experiments()]
    )


@pytest.mark.parametrize(("name", "characters", "size"), [("h" * 300, 300, 300), ("häuser" * 40, 240, 280)])
def test_a_name_too_long_for_the_registry_is_refused_before_a_run_is_logged(
    mlflow_state, regression_bundle, name, characters, size
):
    from mlflow import MlflowClient

    bundle, _ = regression_bundle

    with pytest.raises(
        ValueError,
        match=rf"^parameter model_name '{name[:40]}'\.\.\. is {characters} characters \({size} bytes in UTF-8\) long; "
        r"the registry takes at most 255 bytes: use a shorter name$",
    ):
        register("", name, bundle.directory, SCORES, True, "approved")
    client = MlflowClient(registry.local_tracking_uri())
    assert not client.search_runs([experiment.experiment_id for experiment in client.search_experiments()])


def test_a_name_of_the_longest_length_registers(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle

    registered = register("", "h" * registry.MAX_MODEL_NAME_BYTES, bundle.directory, SCORES, True, "approved")

    assert (
        str(registry.version_by_alias(registry.connect(""), registered.model_name, registry.CHALLENGER).version) == "1"
    )


def test_a_name_with_a_quote_registers_once_per_pipeline_run(mlflow_state, regression_bundle):
    # The name goes into MLflow search filters, which its quote used to break.
    bundle, _ = regression_bundle

    first = register("", "o'brien", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-1")
    again = register("", "o'brien", bundle.directory, SCORES, True, "approved", pipeline_job_id="run-1")

    assert first.version == again.version == "1"


def test_directory_without_card_is_refused(mlflow_state, tmp_path, regression_bundle):
    bundle, _ = regression_bundle
    model_dir = shutil.copytree(bundle.directory, tmp_path / "model")
    (model_dir / "model.json").unlink()

    with pytest.raises(BundleError, match=r"no model card"):
        register("", "houses", model_dir, SCORES, True, "approved")


def test_directory_whose_model_does_not_match_its_digest_is_refused(mlflow_state, tmp_path, regression_bundle):
    bundle, _ = regression_bundle
    model_dir = shutil.copytree(bundle.directory, tmp_path / "model")
    with open(model_dir / "model.joblib", "ab") as stream:
        stream.write(b"tampered")

    with pytest.raises(BundleError, match=r"digest mismatch"):
        register("", "houses", model_dir, SCORES, True, "approved")
    assert registry.connect("").search_model_versions("name='houses'") == []


def test_mlflow_loads_the_champion_with_the_sklearn_flavour(mlflow_state, regression_bundle):
    import mlflow

    bundle, test = regression_bundle
    registered = register("", "houses", bundle.directory, SCORES, True, "approved")
    registry.connect("").set_registered_model_alias("houses", registry.CHAMPION, registered.version)

    features = test.drop(columns=["price"])
    pyfunc = mlflow.pyfunc.load_model("models:/houses@champion")
    sklearn_model = mlflow.sklearn.load_model("models:/houses@champion")

    np.testing.assert_allclose(pyfunc.predict(features), bundle.predict(features))
    np.testing.assert_allclose(sklearn_model.predict(features), bundle.predict(features))
    assert [column.name for column in pyfunc.metadata.get_input_schema().inputs] == bundle.feature_names
    with pytest.raises(mlflow.exceptions.MlflowException, match=r"rooms"):
        pyfunc.predict(features.drop(columns=["rooms"]))


def test_run_holds_reports_lineage_and_a_description(mlflow_state, tmp_path, monkeypatch, regression_bundle):
    bundle, _ = regression_bundle
    monkeypatch.setenv(GIT_SHA_ENV, "0123abc")
    (tmp_path / "gate.md").write_text("# Challenger approved\n")
    (tmp_path / "evaluation.html").write_text("<html></html>")

    registered = register(
        "",
        "houses",
        bundle.directory,
        SCORES,
        True,
        "# Challenger approved\n",
        pipeline_job_id="job-3",
        reports={"gate.md": tmp_path / "gate.md", "evaluation.html": tmp_path / "evaluation.html", "cleaning.md": None},
        source_uri="gs://bucket/houses.csv",
        images={"components": "registry/kfp-mlops-components:0.2.0-abc", "serving": "registry/serving:0.2.0-abc"},
    )

    client = registry.connect("")
    version = client.get_model_version("houses", registered.version)
    assert version.tags["git_sha"] == "0123abc"
    assert version.tags["image.components"] == "registry/kfp-mlops-components:0.2.0-abc"
    assert version.tags["image.serving"] == "registry/serving:0.2.0-abc"
    assert version.tags["schema_sha256"] == bundle.card.documents["schema.json"]
    assert version.description.startswith("HistGradientBoostingRegressor predicting `price` (regression), trained on ")
    assert "test r2 0.81; gate approved.\n\n# Challenger approved" in version.description
    run = client.get_run(registered.run_id)
    assert run.data.params["source_uri"] == "gs://bucket/houses.csv"
    assert "data_uri" not in run.data.params  # one name along the way: ingest_data's source_uri
    assert run.data.tags["kfp.pipeline_job_id"] == "job-3"
    reports = sorted(artifact.path for artifact in client.list_artifacts(registered.run_id, "reports"))
    assert reports == ["reports/evaluation.html", "reports/gate.md"]  # no cleaning report made: none logged
    model_files = {artifact.path.split("/")[-1] for artifact in client.list_artifacts(registered.run_id, "model")}
    assert {"model.joblib", "model.json", "schema.json", "MLmodel", "model.pkl", "requirements.txt"} <= model_files


BARRIER_TIMEOUT = 300  # seconds for both processes to start and import MLflow, however slow the machine


def _register_when_both_are_ready(state, model_dir, barrier, lock, inside, overlapped, results) -> None:
    """One registration in its own process (as two pipeline steps run). Both wait at ``barrier`` with MLflow
    imported, so they start together; ``inside`` counts the registrations under way, and ``overlapped`` records
    that one started before the other had finished."""
    import os
    import traceback

    import mlflow.sklearn  # noqa: F401 (imported before the barrier: both start registering, not importing)

    os.environ[registry.STATE_DIR_ENV] = state
    try:
        barrier.wait(timeout=BARRIER_TIMEOUT)
        with lock:
            inside.value += 1
            if inside.value == 2:
                overlapped.value = 1
        try:
            version = register("", "houses", model_dir, SCORES, True, "approved").version
        finally:
            with lock:
                inside.value -= 1
        results.put(("version", version))
    except BaseException:  # reported to the test, which names it
        results.put(("error", traceback.format_exc()))


def test_two_registrations_at_the_same_time_get_distinct_versions_and_one_challenger(mlflow_state, regression_bundle):
    import multiprocessing

    bundle, _ = regression_bundle
    context = multiprocessing.get_context("spawn")
    barrier, lock = context.Barrier(2), context.Lock()
    inside, overlapped = context.Value("i", 0, lock=False), context.Value("i", 0, lock=False)
    results = context.Queue()
    arguments = (str(mlflow_state), str(bundle.directory), barrier, lock, inside, overlapped, results)
    processes = [context.Process(target=_register_when_both_are_ready, args=arguments) for _ in range(2)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=BARRIER_TIMEOUT + 300) for _ in processes]
    for process in processes:
        process.join(timeout=60)

    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert not errors, errors[0]
    # The claim is about registrations at the same time: had they run one after the other, this would fail.
    assert overlapped.value == 1, "the two registrations did not overlap"
    assert sorted(version for _, version in outcomes) == ["1", "2"]
    client = registry.connect("")
    assert sorted(str(v.version) for v in client.search_model_versions("name='houses'")) == ["1", "2"]
    assert len({v.run_id for v in client.search_model_versions("name='houses'")}) == 2
    assert str(registry.version_by_alias(client, "houses", registry.CHALLENGER).version) == "2"
    # Every move either made is in the history, the one to the newest version among them.
    moves = history.read("", "houses")
    assert moves and {move.to_version for move in moves} <= {"1", "2"} and "2" in {m.to_version for m in moves}


def test_alias_set_to_an_older_version_last_is_moved_to_the_newest(mlflow_state, regression_bundle):
    bundle, _ = regression_bundle
    register("", "houses", bundle.directory, SCORES, True, "approved")
    register("", "houses", bundle.directory, SCORES, True, "approved")
    client = registry.connect("")
    client.set_registered_model_alias("houses", registry.CHALLENGER, "1")  # the slower of two writers

    point_alias_at_newest(client, "houses", registry.CHALLENGER)

    assert str(registry.version_by_alias(client, "houses", registry.CHALLENGER).version) == "2"


def test_without_the_image_variable_the_commit_is_asked_of_git(mlflow_state, monkeypatch, regression_bundle):
    bundle, _ = regression_bundle
    monkeypatch.delenv(GIT_SHA_ENV, raising=False)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)

    registered = register("", "houses", bundle.directory, SCORES, True, "approved", images={"serving": ""})

    tags = registry.connect("").get_model_version("houses", registered.version).tags
    assert tags["git_sha"] == head.stdout.strip()
    assert not any(tag.startswith("image.") for tag in tags)  # an image not given is not recorded as ""


def test_the_run_of_a_name_of_the_longest_length_has_a_name_sql_stores_take(mlflow_state, regression_bundle):
    # MLflow's SQL tracking stores hold a run name in 250 characters (runs.name is String(250)); SQLite does not
    # enforce it, PostgreSQL and MySQL refuse the run. Two long names alike in their first 250 characters still get
    # runs of different names.
    from mlflow import MlflowClient
    from mlflow.store.tracking.dbmodels.models import SqlRun

    bundle, _ = regression_bundle
    job = "8f14e45f-ceea-467f-a3b2-d2b5b5e1c2a1"  # a KFP run id
    names = ["h" * (registry.MAX_MODEL_NAME_BYTES - 1) + ending for ending in "ab"]

    runs = [register("", name, bundle.directory, SCORES, True, "ok", pipeline_job_id=job).run_id for name in names]

    client = MlflowClient(registry.local_tracking_uri())
    run_names = [client.get_run(run_id).info.run_name for run_id in runs]
    assert all(len(name) <= SqlRun.__table__.c.name.type.length for name in run_names)
    assert all(name.startswith("h" * 200) and name.endswith(f"-{job}") for name in run_names)
    assert run_names[0] != run_names[1]


def test_a_run_is_named_after_its_model_and_pipeline_run(mlflow_state, regression_bundle):
    from mlflow import MlflowClient

    bundle, _ = regression_bundle

    registered = register("", "houses", bundle.directory, SCORES, True, "ok", pipeline_job_id="job-1")

    assert MlflowClient(registry.local_tracking_uri()).get_run(registered.run_id).info.run_name == "houses-job-1"

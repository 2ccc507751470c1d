"""register_model as a pipeline step: its parameter names, the lineage from ingest_data to the registered version,
and the promotion history it records and outputs."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

from kfp import dsl

import model_bundle
from components._common import history, registry
from components._common.datasets import read_dataset
from model_bundle.profile import build_profile

SCORES = {"r2": 0.81, "rmse": 30000.0, "mae": 21000.0}


def _register_component(model_dir, artifact, **parameters) -> tuple[str, str]:
    from components.register_model.component import register_model

    gate = artifact(dsl.Markdown, "gate.md")
    Path(gate.path).write_text("# Challenger approved\n")
    return register_model.python_func(
        model=dsl.Model(name="model", uri=str(model_dir), metadata={}),
        model_name="houses",
        scores=SCORES,
        approved=True,
        gate_reasons=gate,
        history=artifact(dsl.Markdown, "history.md"),
        **parameters,
    )


def test_the_component_records_source_uri_under_that_name(mlflow_state, artifact, capsys, regression_bundle):
    bundle, _ = regression_bundle

    version, _ = _register_component(bundle.directory, artifact, source_uri="gs://bucket/houses-*.csv")

    client = registry.connect("")
    run = client.get_run(client.get_model_version("houses", version).run_id)
    assert run.data.params["source_uri"] == "gs://bucket/houses-*.csv"
    assert "DEPRECATED" not in capsys.readouterr().err


def test_the_deprecated_data_uri_still_works_and_names_source_uri(mlflow_state, artifact, capsys, regression_bundle):
    bundle, _ = regression_bundle

    version, _ = _register_component(bundle.directory, artifact, data_uri="gs://bucket/old.csv")

    client = registry.connect("")
    run = client.get_run(client.get_model_version("houses", version).run_id)
    assert run.data.params["source_uri"] == "gs://bucket/old.csv"
    assert "data_uri" not in run.data.params
    assert (
        "DEPRECATED: parameter data_uri will be removed in the next release; use source_uri instead"
        in capsys.readouterr().err
    )


def test_the_version_carries_the_content_hash_ingest_computed(mlflow_state, artifact, houses_csv):
    """README, "MLflow: lineage and the registry": the run and the version are tagged with the data's content hash
    (tag ``data_content_sha256``), the one ingest_data computed, carried by train_model's model card."""
    from components.ingest_data.component import ingest_data
    from components.train_model.component import train_model

    dataset = artifact(dsl.Dataset, "dataset")
    ingested = ingest_data.python_func(source_uri=str(houses_csv), dataset=dataset)
    content_sha256 = ingested[1]  # outputs: rows, content_sha256, ...
    frame = read_dataset(dataset.path)
    schema, profile = artifact(dsl.Artifact, "schema"), artifact(dsl.Artifact, "profile")
    Path(schema.path).write_text(json.dumps(model_bundle.schema.infer(frame, "price")))
    Path(profile.path).write_text(json.dumps(build_profile(frame, "price")))
    model = artifact(dsl.Model, "model")
    train_model.python_func(
        train=dataset,
        schema=schema,
        reference_profile=profile,
        target="price",
        task="regression",
        model=model,
        metrics=artifact(dsl.Metrics, "metrics"),
        candidate={"model_type": "linear", "hyperparameters": {}},
        data_content_sha256=content_sha256,
    )

    version, _ = _register_component(model.path, artifact, source_uri=str(houses_csv), pipeline_job_id="job-9")

    assert len(content_sha256) == 64
    client = registry.connect("")
    registered = client.get_model_version("houses", version)
    assert registered.tags["data_content_sha256"] == content_sha256
    run = client.get_run(registered.run_id)
    assert run.data.tags["data_content_sha256"] == content_sha256
    assert run.data.params["source_uri"] == str(houses_csv)


def test_the_component_records_the_challenger_move_and_outputs_the_history(mlflow_state, artifact, regression_bundle):
    bundle, _ = regression_bundle

    version, _ = _register_component(
        bundle.directory,
        artifact,
        pipeline_job_id="4f1c",
        pipeline_job_name="training-pipeline-2026-11-30-16-40-01-123456",
    )

    [move] = history.read("", "houses")
    assert (move.alias, move.from_version, move.to_version) == ("challenger", "", version)
    assert move.moved_by == "training-pipeline-2026-11-30-16-40-01-123456 (KFP run 4f1c)"
    assert (move.cause, move.gate) == ("registration", "approved")
    # The gate's reasons as the step logged them: a file a person opens (the local registry's artifacts).
    assert move.gate_reasons.startswith((mlflow_state / "mlartifacts").as_uri())
    assert Path(urlparse(move.gate_reasons).path).read_text() == "# Challenger approved\n"
    report = (Path(artifact(dsl.Markdown, "history.md").path)).read_text()
    assert report.startswith("# Promotion history of `houses`\n")
    assert f"| challenger | (none) -> {version} | {bundle.card.sha256[:12]} | registration |" in report

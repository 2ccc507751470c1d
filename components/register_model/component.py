"""The KFP component register_model: its parameters and artifacts, handed to ``logic.register``."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Input, Markdown, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    model_name: str,
    scores: dict,
    approved: bool,
    gate_reasons: Input[Markdown],
    history: Output[Markdown],
    evaluation_report: Input[HTML] = None,
    validation_report: Input[Markdown] = None,
    cleaning_report: Input[Markdown] = None,
    selection_report: Input[Markdown] = None,
    source_uri: str = "",
    components_image: str = "",
    serving_image: str = "",
    tracking_uri: str = "",
    pipeline_job_id: str = "",
    pipeline_job_name: str = "",
    data_uri: str = None,  # noqa: RUF013 (KFP takes `str | None` for an artifact type; `= None` makes it optional)
) -> NamedTuple("Outputs", [("model_version", str), ("model_uri", str)]):
    """Logs the pipeline run to MLflow and registers the model as a new version of `model_name`, alias `challenger`.

    One MLflow run per pipeline run: the model's parameters, train/validation/test scores, the reports as artifacts, and
    lineage tags on the run and the version: `kfp.pipeline_job_id`, `data_content_sha256` (ingest_data's
    `content_sha256`, from the model card), `schema_sha256`, `git_sha`, `image.components`, `image.serving`, plus
    the digests `model_sha256` and `card_sha256` (model.json's own) against which every later step verifies the
    version's files. The version holds the model directory plus MLflow's sklearn flavour, so
    `mlflow.pyfunc.load_model("models:/NAME@champion")` works. Every challenger is registered, with the gate's
    decision; only deployment moves `champion`. Retrying the step in the same pipeline run returns the version it
    already created. Each move of `challenger` is recorded in the model's promotion history (registered-model tags
    `kfp_mlops.history.*`: time, from and to version, digest, cause `registration`, the run that moved it, the gate's
    verdict and where its reasons are).

    Args:
        model: The trained model directory.
        model_name: Registered model name.
        scores: The test scores, logged as `test_<metric>`.
        approved: The gate's decision, recorded as tag `gate.approved`.
        gate_reasons: The gate's Markdown report, in the version's description and logged as a report (its URI
            recorded as tag `gate.reasons_uri`).
        history: The model's promotion history after this step (Markdown table), or one line saying why there is
            none.
        evaluation_report: evaluate_model's HTML report, logged under `reports/`.
        validation_report: validate_data's report, logged under `reports/`.
        cleaning_report: prepare_data's report, logged under `reports/`.
        selection_report: select_model's leaderboard, logged under `reports/`.
        source_uri: Where the training data came from (ingest_data's `source_uri`), logged as parameter `source_uri`.
        components_image: Image of the pipeline steps, recorded as tag `image.components`.
        serving_image: Image of the model server, recorded as tag `image.serving`.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        pipeline_job_id: The KFP run, recorded for lineage and used to make retries idempotent.
        pipeline_job_name: The KFP run's name, recorded in the promotion history as what moved `challenger`.
        data_uri: Deprecated: use `source_uri`.

    Returns:
        model_version: The registry version number.
        model_uri: Where the version's model directory is stored (what the server downloads).
    """
    from pathlib import Path

    from components._common.history import write_report
    from components._common.policies import renamed
    from components.register_model.logic import GATE_REPORT, register

    reports = {
        GATE_REPORT: gate_reasons,
        "evaluation.html": evaluation_report,
        "validation.md": validation_report,
        "cleaning.md": cleaning_report,
        "selection.md": selection_report,
    }
    registered = register(
        tracking_uri=tracking_uri,
        model_name=model_name,
        model_dir=model.path,
        scores=scores,
        approved=approved,
        decision=Path(gate_reasons.path).read_text(),
        pipeline_job_id=pipeline_job_id,
        pipeline_job_name=pipeline_job_name,
        reports={name: None if report is None else report.path for name, report in reports.items()},
        source_uri=renamed("data_uri", data_uri, "source_uri", source_uri),
        images={"components": components_image, "serving": serving_image},
    )
    write_report(history.path, tracking_uri, model_name)
    print(
        f"registered {registered.model_name} version {registered.version} (MLflow run {registered.run_id}) "
        f"at {registered.source}"
    )
    return (registered.version, registered.source)

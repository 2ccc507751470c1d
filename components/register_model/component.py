from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Input, Markdown, Model

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    model_name: str,
    scores: dict,
    approved: bool,
    gate_reasons: Input[Markdown],
    evaluation_report: Input[HTML] = None,
    validation_report: Input[Markdown] = None,
    cleaning_report: Input[Markdown] = None,
    selection_report: Input[Markdown] = None,
    data_uri: str = "",
    components_image: str = "",
    serving_image: str = "",
    tracking_uri: str = "",
    pipeline_job_id: str = "",
) -> NamedTuple("Outputs", [("model_version", str), ("model_uri", str)]):
    """Logs the pipeline run to MLflow and registers the model as a new version of `model_name`, alias `challenger`.

    One MLflow run per pipeline run: the model's parameters, train/validation/test scores, the reports as artifacts, and
    lineage tags (KFP run id, data content hash, schema digest, git commit, images). The version holds the model
    directory plus MLflow's sklearn flavour, so `mlflow.pyfunc.load_model("models:/NAME@champion")` works.
    Every challenger is registered, with the gate's decision; only deployment moves `champion`. Retrying the
    step in the same pipeline run returns the version it already created.

    Args:
        model: The trained model directory.
        model_name: Registered model name.
        scores: The test scores, logged as `test_<metric>`.
        approved: The gate's decision, recorded as tag `gate.approved`.
        gate_reasons: The gate's Markdown report, in the version's description and logged as a report.
        evaluation_report: evaluate_model's HTML report, logged under `reports/`.
        validation_report: validate_data's report, logged under `reports/`.
        cleaning_report: prepare_data's report, logged under `reports/`.
        selection_report: select_model's leaderboard, logged under `reports/`.
        data_uri: Where the training data came from, logged as parameter `data_uri`.
        components_image: Image of the pipeline steps, recorded as tag `image.components`.
        serving_image: Image of the model server, recorded as tag `image.serving`.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        pipeline_job_id: The KFP run, recorded for lineage and used to make retries idempotent.

    Returns:
        model_version: The registry version number.
        model_uri: Where the version's model directory is stored (what the server downloads).
    """
    from components.register_model.logic import register

    with open(gate_reasons.path) as stream:
        decision = stream.read()
    reports = {
        "gate.md": gate_reasons,
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
        decision=decision,
        pipeline_job_id=pipeline_job_id,
        reports={name: report.path for name, report in reports.items() if report is not None},
        data_uri=data_uri,
        images={role: image for role, image in (("components", components_image), ("serving", serving_image)) if image},
    )
    print(f"registered {registered.model_name} version {registered.version} at {registered.source}")
    return (registered.version, registered.source)

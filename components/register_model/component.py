from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Markdown, Model

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def register_model(
    model: Input[Model],
    model_name: str,
    scores: dict,
    approved: bool,
    gate_reasons: Input[Markdown],
    tracking_uri: str = "",
    pipeline_job_id: str = "",
) -> NamedTuple("Outputs", [("model_version", str), ("model_uri", str)]):
    """Logs the model to MLflow and registers it as a new version of `model_name` with the alias `challenger`.

    Every challenger is registered, with the gate's decision as tags; only deployment moves `champion`.
    Retrying the step in the same pipeline run returns the version it already created.

    Args:
        model: The trained model directory.
        model_name: Registered model name.
        scores: The test scores, logged as `test_<metric>`.
        approved: The gate's decision, recorded as tag `gate.approved`.
        gate_reasons: The gate's Markdown report, recorded as the version's description.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        pipeline_job_id: The KFP run, recorded for lineage and used to make retries idempotent.

    Returns:
        model_version: The registry version number.
        model_uri: Where the version's model directory is stored (what the server downloads).
    """
    from components.register_model.logic import register

    with open(gate_reasons.path) as stream:
        decision = stream.read()
    registered = register(
        tracking_uri=tracking_uri,
        model_name=model_name,
        model_dir=model.path,
        scores=scores,
        approved=approved,
        decision=decision,
        pipeline_job_id=pipeline_job_id,
    )
    print(f"registered {registered.model_name} version {registered.version} at {registered.source}")
    return (registered.version, registered.source)

"""The monitoring pipeline: a new batch is held to the champion's contract and tested for drift; drift retrains
through the training pipeline, so a new model still has to pass the same gate before it is served."""

from kfp import dsl

from components._image import SERVING_IMAGE
from components.detect_drift.component import detect_drift
from components.ingest_data.component import ingest_data
from components.validate_data.component import validate_data
from pipelines._kubernetes import (
    DATA_MEMORY_LIMIT,
    MODEL_MEMORY_LIMIT,
    use_local_images,
    use_pod_settings,
    use_registry_credentials,
)
from pipelines.training_pipeline import DEFAULT_CANDIDATES, training_pipeline


@dsl.pipeline(
    name="monitoring-pipeline",
    description="Validate a new batch against the champion, detect drift, and on drift retrain through the gate.",
)
def monitoring_pipeline(
    batch_uri: str,
    retrain_source_uri: str = "",
    target: str = "price",
    model_name: str = "house-prices",
    drift_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    validation_policy: dict = {},  # noqa: B006
    cleaning_policy: dict = {},  # noqa: B006
    exclude_columns: list = [],  # noqa: B006
    sensitive_columns: list = [],  # noqa: B006
    candidates: list = DEFAULT_CANDIDATES,
    gate_policy: dict = {},  # noqa: B006
    tracking_uri: str = "",
    deploy_target: str = "none",
    serving_platform: str = "seldon",
    namespace: str = "models",
    serving_port: int = 9000,
    metrics_port: int = 6000,
    serving_image: str = SERVING_IMAGE,
    data_memory_limit: str = DATA_MEMORY_LIMIT.default,
    model_memory_limit: str = MODEL_MEMORY_LIMIT.default,
    # Deprecated, kept for one release (see the training pipeline).
    retrain_data_uri: str = None,  # noqa: RUF013
    schema_policy: dict = None,  # noqa: RUF013
    column_policy: dict = None,  # noqa: RUF013
):
    """Checks `batch_uri` against the champion of `model_name`; when its data drifted, retrains on
    `retrain_source_uri`.

    Args:
        batch_uri: The new batch (with its target, as labels arrive), in any form ingest_data reads.
        retrain_source_uri: What a retraining run trains on, the new data included: typically a glob over the
            training data and the batches, e.g. `gs://bucket/houses/*.csv`. Needed when the batch drifted (the
            retraining run's ingest stops, naming `source_uri`, when it is empty).
        target: Column to predict.
        model_name: Registered model whose champion is the reference.
        drift_policy: detect_drift's policy, e.g. `{"drift_share": 0.3}` (see detect_drift).
        validation_policy: validate_data's policy, e.g. `{"domain": "fail", "leakage": "warn"}`, for the batch's
            validation and the retraining run (see the training pipeline).
        cleaning_policy: The retraining run's cleaning policy, e.g. `{"outliers": "clip"}` (see the training
            pipeline); the batch's validation reads its `coerce_mixed_types`.
        exclude_columns: Columns that are no features (see the training pipeline), for the batch's validation and
            the retraining run.
        sensitive_columns: Columns holding groups of people whose treatment by the model is compared, e.g.
            `["sex"]`; they may be in `exclude_columns`. An unknown name, or the target, stops the run (the batch's
            validation). On a labelled batch, detect_drift measures the champion's fairness gaps between each
            column's groups and raises its `fairness_alert` beyond `drift_policy['max_fairness_gap']`; the
            retraining run audits and gates on them as the training pipeline does (see there). Empty for none.
        candidates: The retraining run's candidate configurations (see the training pipeline).
        gate_policy: The retraining run's gate policy (see gate_model).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store (not with
            `deploy_target=kubernetes`).
        deploy_target: `kubernetes`, `local` or `none`, for an approved retrained model (see the training
            pipeline).
        serving_platform: `seldon` or `kserve`: the control plane a `kubernetes` deployment of the retrained model
            goes to (see the training pipeline).
        namespace: Kubernetes namespace of the SeldonDeployment or InferenceService.
        serving_port: HTTP port of the local model server (OIP REST; its gRPC port is this + 500).
        metrics_port: Metrics port of the local model server.
        serving_image: Model server image of the SeldonDeployment or InferenceService.
        data_memory_limit: Memory limit of each step that holds a dataset (the batch's ingest, validation and
            drift test; the retraining run's data steps), a Kubernetes quantity such as `8Gi` (see the training
            pipeline).
        model_memory_limit: Memory limit of the retraining run's steps that train or load the model, a Kubernetes
            quantity such as `16Gi` (see the training pipeline).
        retrain_data_uri: Deprecated: use `retrain_source_uri`.
        schema_policy: Deprecated: use `validation_policy` (the same keys).
        column_policy: Deprecated: use `validation_policy['identifiers']` and `validation_policy['leakage']`.
    """
    ingest = ingest_data(source_uri=batch_uri)
    # KFP's cache key sees the URI, not the content behind it: a scheduled run must read today's batch.
    ingest.set_caching_options(False)
    validate = validate_data(
        dataset=ingest.outputs["dataset"],
        target=target,
        model_name=model_name,
        tracking_uri=tracking_uri,
        validation_policy=validation_policy,
        cleaning_policy=cleaning_policy,
        exclude_columns=exclude_columns,
        sensitive_columns=sensitive_columns,
        schema_policy=schema_policy,
        column_policy=column_policy,
    )
    validate.set_caching_options(False)  # compares with the registry's current champion
    drift = detect_drift(
        dataset=ingest.outputs["dataset"],
        model_name=model_name,
        drift_policy=drift_policy,
        tracking_uri=tracking_uri,
        sensitive_columns=sensitive_columns,
    ).after(validate)
    drift.set_caching_options(False)  # compares with the registry's current champion
    with dsl.If(drift.outputs["Output"] == True, name="data-drifted"):  # noqa: E712 (a KFP condition, not Python)
        training_pipeline(
            source_uri=retrain_source_uri,
            target=target,
            model_name=model_name,
            candidates=candidates,
            validation_policy=validation_policy,
            cleaning_policy=cleaning_policy,
            exclude_columns=exclude_columns,
            sensitive_columns=sensitive_columns,
            gate_policy=gate_policy,
            tracking_uri=tracking_uri,
            deploy_target=deploy_target,
            serving_platform=serving_platform,
            namespace=namespace,
            serving_port=serving_port,
            metrics_port=metrics_port,
            serving_image=serving_image,
            data_memory_limit=data_memory_limit,
            model_memory_limit=model_memory_limit,
            data_uri=retrain_data_uri,
            schema_policy=schema_policy,
            column_policy=column_policy,
        )
    use_local_images()
    use_pod_settings(data_memory_limit=data_memory_limit)
    use_registry_credentials(validate, drift)

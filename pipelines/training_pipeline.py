"""The training pipeline: raw data in, a gated, registered model out, deployed when it beats the champion."""

from kfp import dsl

from components._image import COMPONENTS_IMAGE, SERVING_IMAGE
from components.deploy_model.component import deploy_model
from components.evaluate_model.component import evaluate_model
from components.gate_model.component import gate_model
from components.ingest_data.component import ingest_data
from components.prepare_data.component import prepare_data
from components.register_model.component import register_model
from components.select_model.component import select_model
from components.train_model.component import train_model
from components.validate_data.component import validate_data
from pipelines._kubernetes import (
    DATA_MEMORY_LIMIT,
    MODEL_MEMORY_LIMIT,
    use_local_images,
    use_pod_settings,
    use_registry_credentials,
)

# Three kinds of model, one pod each on a cluster: boosting, bagging and a linear baseline.
DEFAULT_CANDIDATES = [
    {"model_type": "hist_gradient_boosting", "hyperparameters": {}},
    {"model_type": "random_forest", "hyperparameters": {"n_estimators": 100, "min_samples_leaf": 2}},
    {"model_type": "linear", "hyperparameters": {}},
]
# Candidates training at once on a cluster (a compile-time setting in KFP): bounds the pods of one run.
MAX_PARALLEL_TRAINING = 4


@dsl.pipeline(
    name="training-pipeline",
    description="Ingest, validate, prepare, train candidates in parallel, select, evaluate, gate against the champion, "
    "register, deploy to Seldon or KServe.",
)
def training_pipeline(
    source_uri: str = "sample://house-prices?rows=2000&seed=7",
    csv_delimiter: str = "",
    csv_encoding: str = "",
    csv_decimal: str = "",
    target: str = "price",
    task: str = "auto",
    model_name: str = "house-prices",
    candidates: list = DEFAULT_CANDIDATES,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    max_training_rows: int = 500000,
    seed: int = 42,
    validation_policy: dict = {},  # noqa: B006 (KFP needs a literal default; never mutated)
    cleaning_policy: dict = {},  # noqa: B006
    exclude_columns: list = [],  # noqa: B006
    sensitive_columns: list = [],  # noqa: B006
    slice_column: str = "",
    gate_policy: dict = {},  # noqa: B006
    tracking_uri: str = "",
    deploy_target: str = "none",
    serving_platform: str = "seldon",
    namespace: str = "models",
    serving_port: int = 9000,
    metrics_port: int = 6000,
    wait_timeout_seconds: int = 600,
    serving_image: str = SERVING_IMAGE,
    data_memory_limit: str = DATA_MEMORY_LIMIT.default,
    model_memory_limit: str = MODEL_MEMORY_LIMIT.default,
    # Deprecated, kept for one release and passed to the component that owns each; `= None` is how KFP compiles an
    # optional parameter, and a component given none of them uses its own default.
    data_uri: str = None,  # noqa: RUF013
    schema_policy: dict = None,  # noqa: RUF013
    column_policy: dict = None,  # noqa: RUF013
    drop_duplicates: bool = None,  # noqa: RUF013
    coerce_mixed_types: bool = None,  # noqa: RUF013
    outliers: str = None,  # noqa: RUF013
    outlier_factor: float = None,  # noqa: RUF013
    thresholds: dict = None,  # noqa: RUF013
    min_improvement: float = None,  # noqa: RUF013
    deploy_timeout_seconds: int = None,  # noqa: RUF013
):
    """Trains a model on `source_uri` and makes it the champion when it passes the gate.

    Args:
        source_uri: Source data: a local path or glob, `file://`, `gs://bucket/path` (or a glob), an `https://` URL,
            or `sample://house-prices?rows=N&seed=S`; CSV, Parquet or JSON Lines.
        csv_delimiter: CSV delimiter (one character or `tab`); empty detects it.
        csv_encoding: CSV encoding, e.g. `latin-1`; empty means UTF-8 (with or without a byte-order mark).
        csv_decimal: CSV decimal mark, `.` or `,`; empty means `.` and refuses a column of decimal-comma numbers.
        target: Column to predict.
        task: `regression`, `classification` or `auto` (text, booleans and up to 20 integer labels are classes).
        model_name: Registered model name in MLflow.
        candidates: Configurations to train, each `{"model_type": ..., "hyperparameters": {...}}` with model type
            `hist_gradient_boosting`, `random_forest` or `linear` (Ridge / LogisticRegression) and the
            estimator's own hyperparameter names (an unknown name fails the step); they train in parallel and
            the best validation score (r2 / f1_macro) goes on.
        test_fraction: Share of rows held out for evaluation and the gate.
        validation_fraction: Share of the training rows held out to compare the candidates. 0 skips validation:
            only with a single candidate in `candidates` (nothing to compare; several fail at select_model).
        max_training_rows: The most training rows each candidate fits (0: all): a larger train set is sampled,
            seeded and stratified, while it is read; evaluation and the gate still score the whole test set.
        seed: Seed of the splits and of the estimators.
        validation_policy: validate_data's policy: per schema check against the champion's schema (`columns`,
            `types`, `nulls`, `domain`, `range`, `uniqueness`) `fail`, `warn` or `ignore` (columns and types fail
            by default, the rest warn); identifier columns (`identifiers`: `exclude`, `fail` or `keep`) and
            suspected target leakage (`leakage`: `fail`, `warn` or `ignore`): by default identifiers are excluded
            with a warning and leakage stops the run naming the `exclude_columns` to rerun with (see validate_data).
        cleaning_policy: prepare_data's cleaning, e.g. `{"outliers": "clip"}`: `drop_duplicates` (true),
            `coerce_mixed_types` (false: in a text column that is mostly numbers, set the other values missing
            instead of stopping the run; validate_data reads it too), `outliers` (`keep`, `clip` or `drop` numbers
            outside `[Q1 - k*IQR, Q3 + k*IQR]` of each numeric feature) and `outlier_factor` (`k`, 3.0).
        exclude_columns: Columns that are no features, e.g. identifiers or values only known after the target;
            the model neither trains on them nor needs them in requests. An unknown name stops the run.
        sensitive_columns: Columns holding groups of people whose treatment by the model is compared, e.g.
            `["sex", "age_band"]`; they may be in `exclude_columns` (a model is audited on attributes it does not
            use). An unknown name, or the target, stops the run (validate_data). The evaluation report and metrics
            show each column's per-group rates or errors and the gaps between groups (fairlearn); the gate refuses
            a challenger that widens a gap beyond `gate_policy['max_fairness_gap']` (on by default whenever this is
            set; groups under `gate_policy['min_group_rows']` test rows are not judged); the model server counts
            predictions per group. Empty for none.
        slice_column: Column whose slices get their own scores in the evaluation report and must not get worse
            than under the champion (the gate's slice guard); empty for none.
        gate_policy: The gate's rules and statistics, e.g. `{"thresholds": {"r2": 0.6}, "min_improvement": 0.01,
            "confidence": 0.95, "min_test_rows": 100, "cold_start": "approve", "incompatible_champion": "reject",
            "ties": "keep_champion"}`: `thresholds` are absolute metric bounds the challenger must meet,
            `min_improvement` the gain of the primary metric (r2 / f1_macro) required over the champion
            (see gate_model).
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store (which
            `deploy_target=kubernetes` refuses: the cluster cannot fetch files registered inside a step's pod).
        deploy_target: `kubernetes` (the SeldonDeployment or InferenceService of `serving_platform` in `namespace`),
            `local` (serve on this machine) or `none` (render that manifest only). The server speaks the Open
            Inference Protocol: predictions at `/v2/models/<model name>/infer`.
        serving_platform: The control plane a `kubernetes` deployment goes to (and whose manifest every target
            renders): `seldon` (a SeldonDeployment, Seldon Core 1.17.1) or `kserve` (a KServe InferenceService in
            Standard mode); the same image and OIP path on both. `make run` passes the one `make cluster` installed.
        namespace: Kubernetes namespace of the SeldonDeployment or InferenceService.
        serving_port: HTTP port of the local model server (OIP REST; its gRPC port is this + 500).
        metrics_port: Metrics port of the local model server.
        wait_timeout_seconds: How long deployment may take to roll out and answer correctly; at most 3000:
            the step's pod is stopped after 3600 s (its timeout, pipelines/_kubernetes.py), and a stopped step
            cannot roll the deployment back.
        serving_image: Model server image of the SeldonDeployment or InferenceService (set at compile time by
            --image-registry and --image-tag).
        data_memory_limit: Memory limit of each step that holds the dataset (ingest, validate, prepare, and a step
            you add), a Kubernetes quantity such as `8Gi`: the default holds about 2M rows; raise it for more, which
            otherwise ends a step OOM-killed. Not below the steps' memory request (pipelines/_kubernetes.py), or
            the cluster refuses the pod; a local run ignores it.
        model_memory_limit: Memory limit of each step that trains or loads the model (each candidate's training
            pod, select, evaluate, gate, register, deploy), a Kubernetes quantity such as `16Gi`: a model grows with
            its training data (a random forest on 800,000 rows needs about 4 GB to train). Not below the steps'
            memory request (pipelines/_kubernetes.py); a local run ignores it.
        data_uri: Deprecated: use `source_uri`.
        schema_policy: Deprecated: use `validation_policy` (the same keys).
        column_policy: Deprecated: use `validation_policy['identifiers']` and `validation_policy['leakage']`.
        drop_duplicates: Deprecated: use `cleaning_policy['drop_duplicates']`.
        coerce_mixed_types: Deprecated: use `cleaning_policy['coerce_mixed_types']`.
        outliers: Deprecated: use `cleaning_policy['outliers']`.
        outlier_factor: Deprecated: use `cleaning_policy['outlier_factor']`.
        thresholds: Deprecated: use `gate_policy['thresholds']`.
        min_improvement: Deprecated: use `gate_policy['min_improvement']`.
        deploy_timeout_seconds: Deprecated: use `wait_timeout_seconds`.
    """
    ingest = ingest_data(
        source_uri=source_uri,
        csv_delimiter=csv_delimiter,
        csv_encoding=csv_encoding,
        csv_decimal=csv_decimal,
        data_uri=data_uri,
    )
    # KFP's cache key sees the URI, not the content behind it: a rerun on an updated file must read it again.
    ingest.set_caching_options(False)
    validate = validate_data(
        dataset=ingest.outputs["dataset"],
        target=target,
        task=task,
        model_name=model_name,
        tracking_uri=tracking_uri,
        validation_policy=validation_policy,
        cleaning_policy=cleaning_policy,
        exclude_columns=exclude_columns,
        sensitive_columns=sensitive_columns,
        schema_policy=schema_policy,
        column_policy=column_policy,
        coerce_mixed_types=coerce_mixed_types,
    )
    validate.set_caching_options(False)  # compares with the registry's current champion
    prepare = prepare_data(
        dataset=ingest.outputs["dataset"],
        target=target,
        task=validate.outputs["task"],
        test_fraction=test_fraction,
        seed=seed,
        cleaning_policy=cleaning_policy,
        drop_duplicates=drop_duplicates,
        coerce_mixed_types=coerce_mixed_types,
        outliers=outliers,
        outlier_factor=outlier_factor,
    )
    with dsl.ParallelFor(candidates, parallelism=MAX_PARALLEL_TRAINING, name="candidates") as candidate:
        train = train_model(
            train=prepare.outputs["train"],
            schema=validate.outputs["schema"],
            reference_profile=prepare.outputs["reference_profile"],
            target=target,
            task=validate.outputs["task"],
            candidate=candidate,
            seed=seed,
            validation_fraction=validation_fraction,
            max_training_rows=max_training_rows,
            data_content_sha256=ingest.outputs["content_sha256"],
            sensitive_columns=sensitive_columns,
        )
    select = select_model(models=dsl.Collected(train.outputs["model"]))
    evaluate = evaluate_model(
        model=select.outputs["model"],
        train=prepare.outputs["train"],
        test=prepare.outputs["test"],
        slice_column=slice_column,
        gate_policy=gate_policy,  # the report scores exactly the slices and groups the gate judges
        sensitive_columns=sensitive_columns,
    )
    gate = gate_model(
        model=select.outputs["model"],
        test=prepare.outputs["test"],
        model_name=model_name,
        baseline_scores=evaluate.outputs["baseline_scores"],
        slice_column=slice_column,
        sensitive_columns=sensitive_columns,
        gate_policy=gate_policy,
        tracking_uri=tracking_uri,
        thresholds=thresholds,
        min_improvement=min_improvement,
    )
    gate.set_caching_options(False)  # reads the registry's current champion
    # Every challenger is registered (with the gate's decision) so the registry explains each candidate.
    register = register_model(
        model=select.outputs["model"],
        model_name=model_name,
        scores=evaluate.outputs["scores"],
        approved=gate.outputs["Output"],
        gate_reasons=gate.outputs["reasons"],
        evaluation_report=evaluate.outputs["report"],
        validation_report=validate.outputs["report"],
        cleaning_report=prepare.outputs["cleaning_report"],
        selection_report=select.outputs["leaderboard"],
        source_uri=ingest.outputs["source_uri"],  # what ingest read, however it was named
        components_image=COMPONENTS_IMAGE,
        serving_image=serving_image,
        tracking_uri=tracking_uri,
        pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    )
    register.set_caching_options(False)
    with dsl.If(gate.outputs["Output"] == True, name="challenger-approved"):  # noqa: E712 (a KFP condition, not Python)
        deploy = deploy_model(
            model=select.outputs["model"],
            test=prepare.outputs["test"],
            model_name=model_name,
            model_version=register.outputs["model_version"],
            model_uri=register.outputs["model_uri"],
            serving_image=serving_image,
            deploy_target=deploy_target,
            serving_platform=serving_platform,
            namespace=namespace,
            tracking_uri=tracking_uri,
            serving_port=serving_port,
            metrics_port=metrics_port,
            wait_timeout_seconds=wait_timeout_seconds,
            pipeline_job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            pipeline_job_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            deploy_timeout_seconds=deploy_timeout_seconds,
        )
        deploy.set_caching_options(False)
    use_local_images()
    use_pod_settings(data_memory_limit=data_memory_limit, model_memory_limit=model_memory_limit)
    use_registry_credentials(validate, gate, register, deploy)

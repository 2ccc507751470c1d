"""Kubernetes settings of pipeline tasks: what each step's pod requests, may use, how long it may run and whether it
is retried. A cluster applies them all; kfp.local ignores the resources and timeouts, and run_local.py sets the
retries aside (a local failure is the data or the code, which a retry would only repeat)."""

from __future__ import annotations

from dataclasses import dataclass

from kfp import kubernetes
from kfp.dsl import pipeline_channel, pipeline_context

# Created by `make cluster` (cluster/manifests/mlflow.yaml): S3 credentials with which MLflow's client writes
# model artifacts to the cluster's object store. Optional, so the pipeline also runs where it does not exist.
REGISTRY_CREDENTIALS_SECRET = "mlflow-s3-credentials"
REGISTRY_CREDENTIALS_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL",
}


@dataclass(frozen=True)
class MemoryLimit:
    """A step's memory limit: `default`, or per run the value of the pipeline parameter `parameter` (if any)."""

    default: str
    parameter: str | None = None


@dataclass(frozen=True)
class PodSettings:
    """What one step's pod declares. CPU and memory are Kubernetes quantities ("250m", "512Mi")."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: MemoryLimit
    timeout_seconds: int  # the pod's activeDeadlineSeconds, per attempt
    retry: bool = False


# The two memory limits a run can override: the steps that hold the dataset, and the steps that train or load the
# model (a model's size grows with its training data: a random forest on 800,000 rows peaked at 3.8 GB).
DATA_MEMORY_LIMIT = MemoryLimit("1Gi", "data_memory_limit")
MODEL_MEMORY_LIMIT = MemoryLimit("5Gi", "model_memory_limit")

POD_SETTINGS: dict[str, PodSettings] = {
    "ingest_data": PodSettings("500m", "1", "256Mi", DATA_MEMORY_LIMIT, 3600),
    "validate_data": PodSettings("500m", "1", "320Mi", DATA_MEMORY_LIMIT, 1800),
    "prepare_data": PodSettings("500m", "1", "256Mi", DATA_MEMORY_LIMIT, 1800),
    "train_model": PodSettings("1", "2", "256Mi", MODEL_MEMORY_LIMIT, 7200),
    "select_model": PodSettings("500m", "1", "256Mi", MODEL_MEMORY_LIMIT, 900),
    "evaluate_model": PodSettings("500m", "2", "256Mi", MODEL_MEMORY_LIMIT, 1800),
    "gate_model": PodSettings("500m", "2", "320Mi", MODEL_MEMORY_LIMIT, 1800),
    "register_model": PodSettings("500m", "1", "320Mi", MODEL_MEMORY_LIMIT, 1800, retry=True),
    # The timeout exceeds the step's own bounded wait (deploy_timeout_seconds) by far: a pod stopped by its
    # deadline cannot roll the SeldonDeployment or InferenceService back.
    "deploy_model": PodSettings("500m", "1", "256Mi", MODEL_MEMORY_LIMIT, 3600),
    # Not rehearsed (the monitoring pipeline is not): validate_data's figures, which reads the same batch.
    "detect_drift": PodSettings("500m", "1", "320Mi", DATA_MEMORY_LIMIT, 1800),
    # Not rehearsed (the rollback pipeline is not): deploy_model's figures, which loads the same model.
    "rollback_model": PodSettings("500m", "1", "256Mi", MODEL_MEMORY_LIMIT, 1800),
}
"""Each step's pod settings, by component name: the one place their figures live.

Derived from each step's peak resident memory and CPU measured inside the components image by `make rehearse`
(docs/benchmarks.md, "Step resources"): memory request = the peak on the default data x 1.5, at least 256Mi (what
the default run needs, so a small cluster schedules it); memory limit = the largest peak of the steps sharing it on
a 1M-row table x 1.25, rounded up to whole Gi (data steps: 372 MB -> 1Gi; model steps: train_model's 3,784 MB ->
5Gi), raised per run with the two parameters. CPU: each step keeps one core busy while it runs (0.8-1.2 cores
measured), so it requests half a core and may use one; train_model (OpenMP in HistGradientBoosting, a random
forest's trees built in threads), evaluate_model (the test rows scored in chunks on every core it may use) and
gate_model (the same scoring, 1.5 cores measured in its bootstrap) may use two.

A timeout stops a hung step (a stalled download, a lost connection); each stays far above the step's run time on
a 1M-row table (train_model: 1,109 s for a random forest on 800,000 rows; every other step under 10 s).

Retries: transient errors are retried where they happen, inside the step: MLflow's client retries a registry
request up to 7 times with exponential backoff (connection errors, 408, 429, 5xx; about 4 minutes in all), boto3
and Cloud Storage's client retry theirs, and ingest_data tries an http(s) download again (sources.py). A step's own
failures are verdicts a rerun repeats: bad data (ingest, validate, detect_drift), a bad policy (gate), nothing to
roll back (rollback), an OOM. Retrying the whole step would report them only after three more runs and 30 + 60 +
120 s of backoff. So only register_model is retried as a whole (RETRIES, with exponential backoff): it writes to
the registry and the object store, a pod lost between the two (a node drained) leaves a half-made registration, and
a rerun of the same pipeline run finds the version an earlier attempt registered (by run id and digest) and
completes its alias (an attempt that stopped before registering leaves at most an MLflow run without a version).
deploy_model especially must not be: an attempt stopped mid-rollout (its deadline, a lost node) leaves the new spec
live without rolling back; a retry would take that spec for the previous one and, failing, "restore" it.
"""

DEFAULT_POD_SETTINGS = PodSettings("250m", "1", "512Mi", DATA_MEMORY_LIMIT, 3600)
"""A step with no entry in POD_SETTINGS (one you added): treated as a data step, never retried. Give it an entry
once its figures are measured; retry transient errors inside the step, and give it `retry=True` only if its own
failures are transient and rerunning it after a partial attempt is harmless."""

# Backoff 30 s, 60 s, 120 s: spans an MLflow or object-store pod being rescheduled, beyond the clients' own
# retries. KFP stops retrying once RETRY_WINDOW has passed since the first attempt started.
RETRIES = 3
RETRY_BACKOFF = "30s"
RETRY_BACKOFF_FACTOR = 2.0
RETRY_WINDOW = "3600s"


def pod_settings(component_name: str) -> PodSettings:
    """The settings of a component (its name with - or _), DEFAULT_POD_SETTINGS for one with no entry."""
    return POD_SETTINGS.get(component_name.replace("-", "_"), DEFAULT_POD_SETTINGS)


def use_pod_settings(**memory_limits) -> None:
    """Gives every step of the pipeline being defined its requests, limits, timeout and retry from POD_SETTINGS.

    `memory_limits` are the pipeline's memory-limit parameters by name (`data_memory_limit=data_memory_limit`):
    a step whose limit a parameter overrides gets that parameter, resolved per run. Call it last in the pipeline
    function, like use_local_images(): it sees the steps defined before it, inside loops and conditions too. A
    nested pipeline's steps have their settings from its own function (pass the parameters on to it).
    """
    for task in pipeline_context.Pipeline.get_default_pipeline().tasks.values():
        if task.container_spec is None:  # a nested pipeline
            continue
        settings = pod_settings(task.component_spec.name)
        limit = settings.memory_limit
        if limit.parameter is not None and limit.parameter not in memory_limits:
            raise ValueError(
                f"step {task.name!r}: its memory limit is the pipeline parameter {limit.parameter!r}; declare it "
                f"(`{limit.parameter}: str = {limit.default!r}`) and pass it to use_pod_settings()"
            )
        task.set_cpu_request(settings.cpu_request)
        task.set_cpu_limit(settings.cpu_limit)
        task.set_memory_request(settings.memory_request)
        memory_limit = memory_limits[limit.parameter] if limit.parameter else limit.default
        task.set_memory_limit(memory_limit)
        # kfp 2.17's resource setters do not register the parameter they are given (set_container_image does):
        # a step inside a loop or condition would then reference an input its enclosing DAG is never passed.
        task.register_pipeline_channels(pipeline_channel.extract_pipeline_channels_from_any(memory_limit))
        kubernetes.set_timeout(task, settings.timeout_seconds)
        if settings.retry:
            task.set_retry(
                num_retries=RETRIES,
                backoff_duration=RETRY_BACKOFF,
                backoff_factor=RETRY_BACKOFF_FACTOR,
                backoff_max_duration=RETRY_WINDOW,
            )


def use_local_images() -> None:
    """Pull policy IfNotPresent for every step of the pipeline being defined: images loaded into kind with
    `kind load` are used as they are, never pulled. Call it last in the pipeline function: it sees the steps
    defined before it, inside loops and conditions too, so a step you add needs nothing more."""
    for task in pipeline_context.Pipeline.get_default_pipeline().tasks.values():
        if task.container_spec is not None:  # a step, not a nested pipeline (which set its own)
            kubernetes.set_image_pull_policy(task, "IfNotPresent")


def use_registry_credentials(*tasks) -> None:
    """Gives the tasks that read or write the model registry's artifacts their S3 credentials."""
    for task in tasks:
        kubernetes.use_secret_as_env(
            task, secret_name=REGISTRY_CREDENTIALS_SECRET, secret_key_to_env=REGISTRY_CREDENTIALS_ENV, optional=True
        )

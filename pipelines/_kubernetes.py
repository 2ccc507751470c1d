"""Kubernetes settings of pipeline tasks (kfp-kubernetes); kfp.local ignores them, a cluster applies them."""

from kfp import kubernetes
from kfp.dsl import pipeline_context

# Created by `make cluster` (cluster/manifests/mlflow.yaml): S3 credentials with which MLflow's client writes
# model artifacts to the cluster's object store. Optional, so the pipeline also runs where it does not exist.
REGISTRY_CREDENTIALS_SECRET = "mlflow-s3-credentials"
REGISTRY_CREDENTIALS_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL",
}


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

"""The rollback pipeline: a registered version verified and served again through the training pipeline's own deploy
step, which moves `champion` only once the version answers correctly and records the move in the history."""

from kfp import dsl

from components._image import SERVING_IMAGE
from components.deploy_model.component import deploy_model
from components.rollback_model.component import rollback_model
from pipelines._kubernetes import MODEL_MEMORY_LIMIT, use_local_images, use_pod_settings, use_registry_credentials


@dsl.pipeline(
    name="rollback-pipeline",
    description="Verify a registered version (by default the previous champion) and serve it again through the "
    "training pipeline's deploy step: wait, smoke test, restore on failure, move champion, record the move.",
)
def rollback_pipeline(
    model_name: str = "house-prices",
    to_version: str = "",
    reason: str = "",
    force: bool = False,
    tracking_uri: str = "",
    deploy_target: str = "kubernetes",
    serving_platform: str = "seldon",
    namespace: str = "models",
    serving_port: int = 9000,
    metrics_port: int = 6000,
    wait_timeout_seconds: int = 600,
    serving_image: str = SERVING_IMAGE,
    model_memory_limit: str = MODEL_MEMORY_LIMIT.default,
):
    """Serves `to_version` of `model_name` again (by default the champion before the current one) and makes it the
    champion once it answers correctly.

    Args:
        model_name: Registered model name in MLflow.
        to_version: The registered version to serve again; empty means the previous champion in the model's
            promotion history (`make history MODEL=...` shows it).
        reason: Why: recorded in the promotion history with the move.
        force: Roll back even to a version whose data contract (target, task, features and their types) differs
            from the current champion's, so that requests made for the champion may not suit it; the override is
            recorded in the history. A version whose files fail their digests is refused all the same.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store (which
            `deploy_target=kubernetes` refuses: the cluster cannot fetch files registered inside a step's pod).
        deploy_target: `kubernetes` (the SeldonDeployment or InferenceService of `serving_platform` in
            `namespace`) or `local` (serve on this machine); `none` is refused: a rollback must serve. The same deploy
            step as the training pipeline's: it waits, smoke-tests the version and restores the previous deployment
            on failure.
        serving_platform: The control plane a `kubernetes` rollback deploys to: `seldon` (a SeldonDeployment) or
            `kserve` (a KServe InferenceService): the one serving the champion (`make run PIPELINE=rollback` passes
            the one `make cluster` installed).
        namespace: Kubernetes namespace of the SeldonDeployment or InferenceService.
        serving_port: HTTP port of the local model server (OIP REST; its gRPC port is this + 500).
        metrics_port: Metrics port of the local model server.
        wait_timeout_seconds: How long deployment may take to roll out and answer correctly; at most 3000:
            the step's pod is stopped after 3600 s (its timeout, pipelines/_kubernetes.py), and a stopped step
            cannot roll the deployment back.
        serving_image: Model server image of the SeldonDeployment or InferenceService (set at compile time by
            --image-registry and --image-tag).
        model_memory_limit: Memory limit of each step (both load the model), a Kubernetes quantity such as `16Gi`:
            a model grows with its training data. Not below the steps' memory request (pipelines/_kubernetes.py);
            a local run ignores it.
    """
    rollback = rollback_model(
        model_name=model_name,
        to_version=to_version,
        reason=reason,
        force=force,
        tracking_uri=tracking_uri,
        deploy_target=deploy_target,
        serving_platform=serving_platform,
    )
    rollback.set_caching_options(False)  # reads the registry's current champion and history
    deploy = deploy_model(
        model=rollback.outputs["model"],
        test=rollback.outputs["smoke_rows"],
        model_name=model_name,
        model_version=rollback.outputs["model_version"],
        model_uri=rollback.outputs["model_uri"],
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
        reason=rollback.outputs["recorded_reason"],
        forced=rollback.outputs["forced"],
    )
    deploy.set_caching_options(False)
    use_local_images()
    use_pod_settings(model_memory_limit=model_memory_limit)
    use_registry_credentials(rollback, deploy)

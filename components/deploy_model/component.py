"""The deploy_model KFP component: its parameters and outputs; what it does is decided in logic.py (``deploy``)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from components._image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def deploy_model(
    model: Input[Model],
    test: Input[Dataset],
    model_name: str,
    model_version: str,
    model_uri: str,
    serving_image: str,
    manifest: Output[Artifact],
    history: Output[Markdown],
    deploy_target: str = "none",
    serving_platform: str = "seldon",
    namespace: str = "models",
    tracking_uri: str = "",
    serving_port: int = 9000,
    metrics_port: int = 6000,
    wait_timeout_seconds: int = 600,
    pipeline_job_id: str = "",
    pipeline_job_name: str = "",
    reason: str = "",
    forced: bool = False,
    deploy_timeout_seconds: int = None,  # noqa: RUF013 (KFP compiles `x: T = None` as an optional parameter)
) -> NamedTuple("Outputs", [("endpoint", str)]):
    """Serves the registered model version and, once it answers correctly, moves the `champion` alias to it.

    The server speaks the Open Inference Protocol (OIP, "V2": `/v2/models/<name>/infer`, REST and gRPC), under
    the model name `deployment_name(model_name)` on every target. Target `kubernetes` creates or replaces the
    resource of the cluster's control plane (`serving_platform`: a SeldonDeployment or a KServe InferenceService),
    waits until its new spec is rolled out and smoke-tests it through its in-cluster service; it stops at once,
    before deploying anything, when `tracking_uri` is empty or a file (a registry inside this step's pod), or
    `model_uri` is not in object storage the storage initializer can fetch or holds no model files.
    Target `local` downloads the version's files from the registry (its card and documents checked against their
    digests), starts this project's model server on them on this machine (`python -m serving`, run by the step's
    own Python environment, as the image runs it) and smoke-tests it. The smoke test first checks that the server
    reports this version's sha256 (so a previous server never passes for it), then sends test rows: the answers
    must equal the model's own predictions. On failure the previous deployment is restored and `champion` is not
    moved. Target `none` only renders the manifest.
    Each move of `champion` is recorded in the model's promotion history (registered-model tags
    `kfp_mlops.history.*`): time, from and to version, the digest served, the cause (the pipeline that deployed it:
    `training`, `monitoring`, `rollback`, else `deploy`), the run that moved it, the version's gate verdict and
    where its reasons are, and `reason`. A failed deployment records nothing.

    Args:
        model: The trained model directory (its card gives the digest the server must verify).
        test: Held-out rows; the first few are the smoke test.
        model_name: Registered model name.
        model_version: Registry version to deploy.
        model_uri: Where the version's files are stored (the SeldonDeployment's modelUri, the InferenceService's
            STORAGE_URI).
        serving_image: The model server image the SeldonDeployment or InferenceService runs (images/serving).
        manifest: The SeldonDeployment or InferenceService (YAML) for this version, as `serving_platform` chooses,
            rendered for every target.
        history: The model's promotion history after this step (Markdown table), for every target; one line saying
            why when the registry has no such model yet or cannot be read.
        deploy_target: `kubernetes`, `local` or `none`.
        serving_platform: The control plane that serves the model on Kubernetes (target `kubernetes`; the manifest
            of every target): `seldon` (a SeldonDeployment for the Seldon Core 1.17.1 operator, `protocol: v2`,
            served at `http://<name>-default.<namespace>.svc.cluster.local:8000`) or `kserve` (a KServe v0.20.0
            InferenceService in Standard mode, served at `http://<name>-predictor.<namespace>.svc.cluster.local`).
            The same image and OIP path `/v2/models/<name>/infer` on both.
        namespace: Kubernetes namespace of the SeldonDeployment or InferenceService.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store (refused by target `kubernetes`).
        serving_port: HTTP port of the local server (target `local`).
        metrics_port: Prometheus metrics port of the local server (target `local`).
        wait_timeout_seconds: How long to wait for the new spec to be rolled out and answer correctly (target
            `kubernetes`): more than 0 and at most 3000, or refused before anything is deployed, since the step's pod
            is stopped after 3600 s and a stopped step cannot roll the deployment back.
        pipeline_job_id: The KFP run, recorded as an annotation on the SeldonDeployment or InferenceService and in
            the history.
        pipeline_job_name: The KFP run's name (pipelines pass `dsl.PIPELINE_JOB_NAME_PLACEHOLDER`): recorded in the
            history as what moved `champion`; the pipeline it names gives the move's cause.
        reason: Why the version is deployed, recorded in the history; empty: "passed the gate" for a version the
            gate approved.
        forced: Records the move as forced: a refusal overridden (a rollback with `force=true`).
        deploy_timeout_seconds: Deprecated: use `wait_timeout_seconds`.

    Returns:
        endpoint: The OIP infer URL (`.../v2/models/<name>/infer`): on the in-cluster Service of the
            SeldonDeployment or InferenceService (target `kubernetes`) or on the local server (target `local`);
            empty for target `none`.
    """
    from components._common.policies import renamed
    from components.deploy_model.logic import deploy

    endpoint = deploy(
        model.path,
        test.path,
        model_name,
        model_version,
        model_uri,
        serving_image,
        manifest.path,
        deploy_target=deploy_target,
        serving_platform=serving_platform,
        namespace=namespace,
        tracking_uri=tracking_uri,
        serving_port=serving_port,
        metrics_port=metrics_port,
        wait_timeout_seconds=renamed(
            "deploy_timeout_seconds", deploy_timeout_seconds, "wait_timeout_seconds", wait_timeout_seconds
        ),
        pipeline_job_id=pipeline_job_id,
        pipeline_job_name=pipeline_job_name,
        reason=reason,
        forced=forced,
        history_path=history.path,
    )
    return (endpoint,)

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

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
    deploy_target: str = "none",
    namespace: str = "models",
    tracking_uri: str = "",
    serving_port: int = 9000,
    metrics_port: int = 6000,
    wait_timeout_seconds: int = 600,
    pipeline_job_id: str = "",
) -> NamedTuple("Outputs", [("endpoint", str)]):
    """Serves the registered model version and, once it answers correctly, moves the `champion` alias to it.

    The server speaks the Open Inference Protocol (OIP, "V2": `/v2/models/<name>/infer`, REST and gRPC), under
    the model name `deployment_name(model_name)` on every target. Target `kubernetes` creates or replaces the
    SeldonDeployment (`protocol: v2`), waits until its new generation is Available and smoke-tests it through its
    in-cluster service; it stops at once, before deploying anything, when `tracking_uri` is empty or a file (a
    registry inside this step's pod), or `model_uri` is not in object storage the storage initializer can fetch or
    holds no model files.
    Target `local` starts the same server (`python -m serving`) on this machine and smoke-tests it. The smoke
    test first checks that the server reports this version's sha256 (so a previous server never passes for it),
    then sends test rows: the answers must equal the model's own predictions. On failure the previous deployment
    is restored and `champion` is not moved. Target `none` only renders the SeldonDeployment manifest.

    Args:
        model: The trained model directory (its card gives the digest the server must verify).
        test: Held-out rows; the first few are the smoke test.
        model_name: Registered model name.
        model_version: Registry version to deploy.
        model_uri: Where the version's files are stored (the SeldonDeployment's modelUri).
        serving_image: The model server image the SeldonDeployment runs (images/serving).
        manifest: The SeldonDeployment (YAML) for this version, rendered for every target.
        deploy_target: `kubernetes`, `local` or `none`.
        namespace: Kubernetes namespace of the SeldonDeployment.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store (refused by target `kubernetes`).
        serving_port: HTTP port of the local server (target `local`).
        metrics_port: Prometheus metrics port of the local server (target `local`).
        wait_timeout_seconds: How long to wait for the SeldonDeployment to be Available and answer correctly.
        pipeline_job_id: The KFP run, recorded as an annotation on the SeldonDeployment.

    Returns:
        endpoint: The OIP infer URL (`.../v2/models/<name>/infer`), empty for target `none`.
    """
    from components._common.datasets import read_dataset
    from components.deploy_model.logic import (
        SMOKE_ROWS,
        check_cluster_sources,
        check_model_files,
        check_target,
        deploy_kubernetes,
        deploy_local,
        write_manifest,
    )
    from components.deploy_model.manifests import build_seldon_deployment
    from model_bundle import load

    check_target(deploy_target)
    if deploy_target == "kubernetes":
        check_cluster_sources(tracking_uri, model_uri)
        check_model_files(model_uri)
    bundle = load(model.path)
    sha256 = bundle.card.sha256
    seldon_deployment = build_seldon_deployment(
        model_name, model_version, model_uri, sha256, namespace, image=serving_image, pipeline_job_id=pipeline_job_id
    )
    write_manifest(seldon_deployment, manifest.path)
    if deploy_target == "none":
        print(f"rendered the SeldonDeployment for {model_name} v{model_version}; nothing deployed")
        return ("",)
    rows = read_dataset(test.path)[bundle.feature_names].head(SMOKE_ROWS)
    expected = bundle.predict(rows)
    if deploy_target == "kubernetes":
        endpoint = deploy_kubernetes(seldon_deployment, rows, expected, tracking_uri, timeout=wait_timeout_seconds)
    else:
        endpoint = deploy_local(
            model_name,
            model_version,
            sha256,
            rows,
            expected,
            tracking_uri=tracking_uri,
            http_port=serving_port,
            metrics_port=metrics_port,
        )
    print(f"{model_name} v{model_version} is the champion, served at {endpoint}")
    return (endpoint,)

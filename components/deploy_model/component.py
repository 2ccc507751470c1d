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
    manifest: Output[Artifact],
    deploy_target: str = "none",
    namespace: str = "models",
    tracking_uri: str = "",
    serving_port: int = 9000,
    metrics_port: int = 6000,
) -> NamedTuple("Outputs", [("endpoint", str)]):
    """Serves the registered model version and, once it answers correctly, moves the `champion` alias to it.

    Target `local` starts the Seldon Core Python server from .venv-serving on this machine and smoke-tests it
    with test rows (the answers must equal the model's own predictions); on failure the previous server is
    restored and `champion` is not moved. Target `none` only renders the SeldonDeployment manifest.

    Args:
        model: The trained model directory (its card gives the digest the server must verify).
        test: Held-out rows; the first few are the smoke test.
        model_name: Registered model name.
        model_version: Registry version to deploy.
        model_uri: Where the version's files are stored (the SeldonDeployment's modelUri).
        manifest: The SeldonDeployment (YAML) for this version, rendered for every target.
        deploy_target: `local` or `none`.
        namespace: Kubernetes namespace written into the manifest.
        tracking_uri: MLflow tracking/registry URI; empty means the local SQLite store.
        serving_port: HTTP port of the local server (target `local`).
        metrics_port: Prometheus metrics port of the local server (target `local`).

    Returns:
        endpoint: The predictions URL, empty for target `none`.
    """
    from components._common.datasets import read_dataset
    from components.deploy_model.logic import (
        SMOKE_ROWS,
        build_seldon_deployment,
        check_target,
        deploy_local,
        write_manifest,
    )
    from model_bundle import load

    check_target(deploy_target)
    bundle = load(model.path)
    sha256 = bundle.card["sha256"]
    write_manifest(build_seldon_deployment(model_name, model_version, model_uri, sha256, namespace), manifest.path)
    if deploy_target == "none":
        print(f"rendered the SeldonDeployment for {model_name} v{model_version}; nothing deployed")
        return ("",)
    rows = read_dataset(test.path)[bundle.feature_names].head(SMOKE_ROWS)
    endpoint = deploy_local(
        model_name,
        model_version,
        model_uri,
        sha256,
        rows,
        bundle.predict(rows),
        tracking_uri=tracking_uri,
        http_port=serving_port,
        metrics_port=metrics_port,
    )
    print(f"{model_name} v{model_version} is the champion, served at {endpoint}")
    return (endpoint,)

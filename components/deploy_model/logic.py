"""Deploys a registered model version and, only when it serves correctly, makes it the champion.

Targets:
- ``kubernetes``: refuse at once a registry or model URI the cluster could never fetch (check_cluster_sources),
  create or replace the SeldonDeployment (``protocol: v2``), follow the new spec's rollout, smoke-test it through
  its in-cluster service, then move the registry alias ``champion``; on failure the previous spec is restored (or
  the new object deleted) and the alias is left alone (see cluster.py).
- ``local``: serve it on this machine with the project's Open Inference Protocol server (``python -m serving``,
  as in the image), smoke-test it, then move ``champion``; on failure the previous local server is restored and
  the alias is left alone. ``serve_champion_locally`` serves the current champion the same way when a run
  deployed nothing (run_local).
- ``none``: only render the SeldonDeployment a cluster would apply.
The SeldonDeployment manifest is rendered for every target, by the same builder. Every smoke test (smoke.py) first
checks the digest the server reports, then that it answers test rows exactly as the model predicts in-process.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import numpy as np
import pandas as pd

import model_bundle
from components._common import registry
from components.deploy_model.manifests import RCLONE_SECRET, deployment_name
from components.deploy_model.smoke import DeploymentError, smoke_test

if TYPE_CHECKING:
    from serving.local_server import LocalServer

TARGETS = ("kubernetes", "local", "none")
SMOKE_ROWS = 5
# URIs that only mean something inside one pod (or to an MLflow client): nothing in the cluster can read them.
POD_LOCAL_TRACKING_SCHEMES = ("", "file", "sqlite")
REMOTE_BARE_TRACKING_URIS = ("databricks", "databricks-uc")  # MLflow's names for a hosted registry, not paths
UNFETCHABLE_MODEL_SCHEMES = ("", "file", "models", "runs", "mlflow-artifacts")


def check_target(deploy_target: str) -> str:
    if deploy_target not in TARGETS:
        raise DeploymentError(f"parameter deploy_target must be one of {TARGETS}, got {deploy_target!r}")
    return deploy_target


def check_cluster_sources(tracking_uri: str, model_uri: str) -> None:
    """Refuses, before anything is deployed, a ``kubernetes`` deployment that could never start.

    An empty or file-based ``tracking_uri`` is a registry inside the step's own pod: the version was registered
    there, its files sit on that pod's disk, and the storage initializer (``rclone copy <modelUri>``) can never
    fetch them; without this check the step would fail only after the whole wait, then roll back.
    """
    server = "an MLflow server the cluster reaches, e.g. http://mlflow.kubeflow.svc.cluster.local:5000"
    if not tracking_uri.strip():
        raise DeploymentError(
            "parameter tracking_uri is empty: with deploy_target=kubernetes it must be "
            f"{server} (empty means a SQLite registry inside this step's own pod)"
        )
    if _scheme(tracking_uri) in POD_LOCAL_TRACKING_SCHEMES and tracking_uri.strip() not in REMOTE_BARE_TRACKING_URIS:
        raise DeploymentError(
            f"parameter tracking_uri {tracking_uri!r} is a file inside this step's own pod: with "
            f"deploy_target=kubernetes it must be {server}"
        )
    if _scheme(model_uri) in UNFETCHABLE_MODEL_SCHEMES:
        raise DeploymentError(
            f"parameter model_uri {model_uri!r} cannot be fetched by Seldon's rclone storage initializer: "
            "deploy_target=kubernetes needs the version's files in object storage (e.g. s3://mlpipeline/...), "
            "i.e. an MLflow server whose artifact root is a bucket, with a remote of that scheme in the "
            f"{RCLONE_SECRET} Secret"
        )


def check_model_files(model_uri: str) -> None:
    """Refuses, before anything is deployed, a ``model_uri`` that does not hold the model's files.

    The storage initializer's ``rclone copy`` of a location holding nothing succeeds ("nothing to transfer"), so
    on the cluster the pod would start with an empty /mnt/models and its model server would fail until the wait
    timed out. Listed with the step's own object-store credentials (MLflow's artifact repositories)."""
    import mlflow

    required = (model_bundle.MODEL_FILE, model_bundle.CARD_FILE)
    try:
        found = {Path(info.path).name for info in mlflow.artifacts.list_artifacts(artifact_uri=model_uri)}
    except Exception as error:  # each store raises its own errors (botocore, google.api_core, OSError)
        raise DeploymentError(f"cannot list parameter model_uri {model_uri!r}: {error}") from error
    missing = [name for name in required if name not in found]
    if missing:
        raise DeploymentError(
            f"parameter model_uri {model_uri!r} holds no {' or '.join(missing)} (found: {sorted(found) or 'nothing'}):"
            " the storage initializer would copy nothing the model server can load"
        )


def _scheme(uri: str) -> str:
    """The URI's scheme, "" for a bare path (a one-letter scheme is a Windows drive)."""
    scheme = urlparse(uri.strip()).scheme.lower()
    return "" if len(scheme) <= 1 else scheme


def deploy_local(
    model_name: str,
    model_version: str,
    model_sha256: str,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    tracking_uri: str = "",
    http_port: int = 9000,
    metrics_port: int = 6000,
) -> str:
    """Serves the registered version locally, smoke-tests it, then makes it the champion; returns its OIP
    infer URL.

    The files served are downloaded from the registry (as a cluster would), not taken from the pipeline's
    own artifact. On any failure the previously served model is restored and ``champion`` stays where it was.
    """
    client = registry.connect(tracking_uri)
    downloaded = _download_version(client, model_name, model_version)
    server = _serve_locally(
        model_name, model_version, downloaded, model_sha256, smoke_rows, expected_predictions, http_port, metrics_port
    )
    promote_champion(tracking_uri, model_name, model_version, _local_deployment_tags(server))
    return server.infer_url


@dataclass(frozen=True)
class LocalChampion:
    """The champion version of ``model_name`` and the local server answering for it."""

    model_name: str
    version: str
    server: LocalServer
    started: bool  # False: the server already running on the port was serving this version, and was kept


class NoChampionError(DeploymentError):
    """The model has no version with the ``champion`` alias: none has passed the gate and been deployed."""


def serve_champion_locally(
    model_name: str, tracking_uri: str = "", http_port: int = 9000, metrics_port: int = 6000
) -> LocalChampion:
    """Makes sure ``model_name``'s current champion is what answers on ``http_port``.

    A run whose gate keeps the champion deploys nothing, so after ``make stop`` nothing would be serving it. The
    server this tool runs on ``http_port`` (metrics on ``metrics_port``) is kept only when its OIP metadata, under
    the model's name, reports the digest the registry recorded and the champion's version. Otherwise the champion
    is served as the deploy step serves a version: downloaded from the registry, checked against the recorded
    digest (``model_sha256`` tag) before it is loaded, started in place of whatever ran on the port, smoke-tested
    with the input example of its model card; on failure the previous server is restored. The alias is not moved.
    """
    from model_bundle import BundleError, load
    from serving import local_server

    client = registry.connect(tracking_uri)
    champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"{model_name} has no version with the alias {registry.CHAMPION!r} in the registry at "
            f"{client.tracking_uri}: no version has passed the gate and been deployed yet"
        )
    version = str(champion.version)
    sha256 = champion.tags.get("model_sha256")
    if not sha256:
        raise DeploymentError(
            f"{model_name} v{version} (the champion) has no model_sha256 tag: its files cannot be verified, "
            "so they are not served"
        )

    state = _local_serving_dir()
    current = next((s for s in local_server.running(state) if s.http_port == http_port), None)
    if current is not None and current.metrics_port == metrics_port and _serves(current, model_name, version, sha256):
        return LocalChampion(model_name, version, current, started=False)

    downloaded = _download_version(client, model_name, version)
    try:
        bundle = load(downloaded, expected_sha256=sha256)
    except BundleError as error:
        raise DeploymentError(f"{model_name} v{version} (the champion) cannot be served: {error}") from error
    rows = _example_rows(bundle, f"{model_name} v{version}")
    server = _serve_locally(
        model_name, version, downloaded, sha256, rows, bundle.predict(rows), http_port, metrics_port
    )
    _tag_version(client, model_name, version, _local_deployment_tags(server))
    return LocalChampion(model_name, version, server, started=True)


def _serves(server: LocalServer, model_name: str, version: str, sha256: str) -> bool:
    """Whether ``server`` answers for ``model_name`` and its metadata reports ``version`` with digest ``sha256``
    (what the server loaded, not what its record says it was asked to load)."""
    from serving import local_server

    if server.model_name != deployment_name(model_name):
        return False
    metadata = local_server.health(server)
    parameters = (metadata or {}).get("parameters") or {}
    return parameters.get("sha256") == sha256 and str(parameters.get("model_version")) == version


def _example_rows(bundle, what: str) -> pd.DataFrame:
    """The model card's input example (one real training row) as the smoke test's request."""
    example = bundle.card.input_example
    missing = [name for name in bundle.feature_names if name not in example]
    if missing:
        raise DeploymentError(
            f"{what}: the input_example of its model card lacks feature(s) {missing}, so it cannot be smoke-tested"
        )
    return pd.DataFrame([{name: example[name] for name in bundle.feature_names}])


def _local_serving_dir() -> Path:
    return registry.local_state_dir() / "serving"


def _version_dir(model_name: str, model_version: str) -> Path:
    return _local_serving_dir() / "models" / deployment_name(model_name) / f"v{model_version}"


def _download_version(client, model_name: str, model_version: str) -> Path:
    """The registered version's files, freshly downloaded under the local serving directory."""
    version = client.get_model_version(model_name, model_version)
    model_dir = _version_dir(model_name, model_version)
    shutil.rmtree(model_dir, ignore_errors=True)
    return registry.download_version(version, model_dir)


def _serve_locally(
    model_name: str,
    model_version: str,
    model_dir: Path,
    model_sha256: str,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    http_port: int,
    metrics_port: int,
) -> LocalServer:
    """Starts a server for ``model_dir`` on ``http_port`` (replacing the one there) and smoke-tests it; on failure
    restores the server that ran there before and raises DeploymentError.

    The OIP model name is the one the cluster uses (the SeldonDeployment's graph node), so a client's URL is the
    same path locally and behind Seldon.
    """
    from serving import local_server

    name = deployment_name(model_name)
    state = _local_serving_dir()
    previous = next((s for s in local_server.running(state) if s.http_port == http_port), None)
    # Its registry version is a start parameter the record does not keep: read back from what it serves.
    previous_parameters = _version_parameter(local_server.health(previous)) if previous is not None else {}
    try:
        server = local_server.start(
            model_dir,
            model_sha256,
            state,
            http_port=http_port,
            metrics_port=metrics_port,
            parameters={"model_version": str(model_version)},
            model_name=name,
        )
        smoke_test(server.base_url, server.model_name, smoke_rows, expected_predictions, model_sha256)
    except (local_server.LocalServerError, DeploymentError) as error:
        local_server.stop(http_port, state)
        raise DeploymentError(
            f"deploying {model_name} v{model_version} failed: {error}; {_restore(previous, previous_parameters, state)}"
        ) from error
    return server


def _local_deployment_tags(server: LocalServer) -> dict[str, str]:
    return {"deployment.target": "local", "deployment.endpoint": server.infer_url}


def deploy_kubernetes(
    manifest: dict,
    smoke_rows: pd.DataFrame,
    expected_predictions: np.ndarray,
    tracking_uri: str = "",
    timeout: float = 600.0,
    api=None,
) -> str:
    """Rolls ``manifest`` out to the cluster, smoke-tests it in the cluster, then makes it the champion.

    On any failure the cluster is rolled back and ``champion`` stays where it was. Returns the in-cluster OIP
    infer URL. (The step has already refused, with check_cluster_sources, what the cluster could never fetch.)
    """
    from components.deploy_model import cluster

    annotations = manifest["metadata"]["annotations"]
    model_name, model_version = annotations["kfp-mlops/registered-model"], annotations["kfp-mlops/model-version"]
    sha256 = annotations["kfp-mlops/model-sha256"]
    served_name = manifest["spec"]["predictors"][0]["graph"]["name"]
    try:
        rollout = cluster.roll_out(
            api if api is not None else cluster.load_api(),
            manifest,
            lambda base_url: smoke_test(base_url, served_name, smoke_rows, expected_predictions, sha256),
            timeout=timeout,
        )
    except cluster.ClusterDeploymentError as error:
        raise DeploymentError(f"deploying {model_name} v{model_version} to Kubernetes failed: {error}") from error
    promote_champion(
        tracking_uri,
        model_name,
        model_version,
        {
            "deployment.target": "kubernetes",
            "deployment.namespace": manifest["metadata"]["namespace"],
            "deployment.name": manifest["metadata"]["name"],
            "deployment.endpoint": rollout.predictions_url,
        },
    )
    return rollout.predictions_url


def promote_champion(tracking_uri: str, model_name: str, model_version: str, tags: dict[str, str]) -> None:
    """Moves the ``champion`` alias to a version that serves correctly, and records where it is served."""
    client = registry.connect(tracking_uri)
    client.set_registered_model_alias(model_name, registry.CHAMPION, model_version)
    _tag_version(client, model_name, model_version, tags)


def _tag_version(client, model_name: str, model_version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(model_name, model_version, key, value)


def _version_parameter(metadata: dict | None) -> dict[str, str]:
    version = ((metadata or {}).get("parameters") or {}).get("model_version")
    return {"model_version": str(version)} if version not in (None, "") else {}


def _restore(previous: LocalServer | None, parameters: dict[str, str], state: Path) -> str:
    """Restarts the server that ran before a failed deployment; says what happened, for the error message."""
    from serving import local_server

    if previous is None:
        return "no server was running before"
    try:
        local_server.start(
            previous.model_dir,
            previous.model_sha256,
            state,
            previous.http_port,
            previous.metrics_port,
            previous.grpc_port,
            parameters=parameters,
            model_name=previous.model_name,
        )
    except local_server.LocalServerError as error:
        return f"the previous server of {previous.model_dir} could not be restarted either: {error}"
    return f"restored the previous server of {previous.model_dir}"


def write_manifest(manifest: dict, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(manifest, sort_keys=False))
